"""Proofs of notebook 14's checks (session-based recommendation: session_parallel_batches,
recall_mrr_at_k, session_train_step), the outputs its catalogued mistakes are blamed on, the
notebook's worked example and model, and the grading of the notebook (the solution full marks, the
hand-out zero).

The catalogued mistakes are proven from course_utils/lessons/nb14_session_recommendation/checks.py;
here are correct code written differently and the wrong code that no catalogue entry names.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from course_utils.check import EXERCISES
from course_utils.lessons.nb14_session_recommendation.checks import _wrong_batches, _wrong_train_step
from proofs import Proofs, run

proofs = Proofs("nb14_session_recommendation", min_correct=2)

# --- 14.1 session_parallel_batches ---------------------------------------------------------------


def batches_lists(items, offsets, batch_size):
    """Python lists, one lane at a time, a queue of sessions (GRU4Rec's loop, written plainly)."""
    sessions = [list(items[offsets[s]:offsets[s + 1]]) for s in range(len(offsets) - 1)]
    queue = list(range(batch_size, len(sessions)))
    lane = [[sessions[b], 0] for b in range(batch_size)]  # (clicks, index of the next input)
    fresh = [True] * batch_size
    rows = []
    while True:
        rows.append([(c[i], c[i + 1], f) for (c, i), f in zip(lane, fresh)])
        fresh = [False] * batch_size
        for b in range(batch_size):
            lane[b][1] += 1
            if lane[b][1] == len(lane[b][0]) - 1:
                if not queue:
                    out = np.array(rows)
                    return out[..., 0].astype(int), out[..., 1].astype(int), out[..., 2].astype(bool)
                lane[b], fresh[b] = [sessions[queue.pop(0)], 0], True


def batches_counted(items, offsets, batch_size):
    """Counts the steps first: each lane's steps are its sessions' pairs; S is where a lane runs dry."""
    lengths = np.diff(offsets) - 1  # pairs per session
    remaining = lengths[:batch_size].copy()
    pos = offsets[:batch_size].copy()
    nxt = batch_size
    ins, tgs, sts = [], [], []
    new = np.ones(batch_size, bool)
    while True:
        ins.append(items[pos].copy())
        tgs.append(items[pos + 1].copy())
        sts.append(new.copy())
        remaining -= 1
        pos += 1
        new = remaining == 0
        for b in np.where(new)[0]:
            if nxt == len(lengths):
                return np.stack(ins), np.stack(tgs), np.stack(sts)
            remaining[b], pos[b] = lengths[nxt], offsets[nxt]
            nxt += 1


def batches_all_sessions_padded(items, offsets, batch_size):
    """Goes on until every session is used, filling finished lanes with item 0: more steps than GRU4Rec's."""
    i, t, s = batches_lists(items, offsets, batch_size)
    pad = np.zeros((1, batch_size), dtype=int)
    return np.concatenate([i, pad]), np.concatenate([t, pad]), np.concatenate([s, pad.astype(bool)])


proofs.correct("session_parallel_batches", batches_lists)
proofs.correct("session_parallel_batches", batches_counted)
proofs.wrong("session_parallel_batches", batches_all_sessions_padded, message="has the wrong shape",
             hint="stop at the first step at which a lane needs")

# --- 14.2 recall_mrr_at_k ------------------------------------------------------------------------


def metrics_loop(scores, targets, k):
    """One event at a time, in plain Python."""
    hits, rr = 0, 0.0
    for row, target in zip(scores, targets):
        rank = 1 + sum(1 for s in row if s > row[target])
        if rank <= k:
            hits += 1
            rr += 1 / rank
    return hits / len(targets), rr / len(targets)


def metrics_torch(scores, targets, k):
    """With torch, returning NumPy scalars."""
    s = torch.from_numpy(scores)
    t = s.gather(1, torch.from_numpy(targets)[:, None])
    rank = (s > t).sum(dim=1) + 1
    return np.float64((rank <= k).double().mean()), np.float64(((rank <= k) / rank).double().mean())


def metrics_arrays(scores, targets, k):
    t = scores[np.arange(len(targets)), targets][:, None]
    rank = 1 + (scores > t).sum(axis=1)
    return (rank <= k).astype(float), np.where(rank <= k, 1 / rank, 0.0)


proofs.correct("recall_mrr_at_k", metrics_loop)
proofs.correct("recall_mrr_at_k", metrics_torch)
proofs.wrong("recall_mrr_at_k", metrics_arrays, message="has the wrong shape", hint="two plain numbers")

# --- 14.3 session_train_step ---------------------------------------------------------------------


def train_step_masked_fill(model, optimizer, inputs, targets, starts, hidden):
    """masked_fill for the reset, log_softmax + nll_loss, set_to_none=False, the loss as a 0-d tensor."""
    hidden = hidden.masked_fill(starts.unsqueeze(1), 0.0)
    logits, hidden = model(inputs, hidden)
    loss = F.nll_loss(F.log_softmax(logits, dim=1), targets)
    optimizer.zero_grad(set_to_none=False)
    loss.backward()
    optimizer.step()
    return loss.detach(), hidden.detach()


def train_step_in_place(model, optimizer, inputs, targets, starts, hidden):
    """Resets the lanes in place on a copy, zeroes model's gradients, returns hidden.data."""
    hidden = hidden.clone()
    hidden[starts] = 0
    model.zero_grad()
    logits, new_hidden = model(inputs, hidden)
    loss = F.cross_entropy(logits, targets, reduction="sum") / len(targets)
    loss.backward()
    optimizer.step()
    return float(loss), new_hidden.data


def train_step_not_detached(model, optimizer, inputs, targets, starts, hidden):
    hidden = torch.where(starts[:, None], torch.zeros_like(hidden), hidden)
    logits, hidden = model(inputs, hidden)
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), hidden


proofs.correct("session_train_step", train_step_masked_fill)
proofs.correct("session_train_step", train_step_in_place)
proofs.wrong("session_train_step", train_step_not_detached, message="backward through the graph",
             hint="return hidden.detach()")

globals().update(proofs.tests())

# --- what the proofs of the catalogue do not look at: the output a mistake is blamed on ------------

BLAMED = [pytest.param("session_parallel_batches", _wrong_batches(kind), output, id=f"batches-{kind}")
          for kind, output in [("never", "starts"), ("ends", "starts"), ("crosses", "inputs"),
                               ("fixed lanes", "inputs")]]
BLAMED += [pytest.param("session_train_step", _wrong_train_step(kind), output, id=f"step-{kind}")
           for kind, output in [("no reset", "loss_1"), ("inverted", "loss_1"), ("zeros", "loss_1"),
                                ("reset after", "loss_1"), ("no zero_grad", "weights_2"), ("step first", "weights_1"),
                                ("no step", "weights_1"), ("sum", "loss_1"), ("softmax", "loss_1"), ("nll", "loss_1"),
                                ("old hidden", "hidden_1")]]


@pytest.mark.parametrize("exercise, func, output", BLAMED)
def test_a_catalogued_mistake_is_blamed_on_the_output_it_gets_wrong(exercise, func, output):
    verdict = run(exercise, func)
    assert verdict.mistake and verdict.output == output, verdict.message


def test_the_fixed_batch_case_is_the_one_worked_out_in_the_notebook():
    from course_utils.reference import session_parallel_batches

    offsets = np.array([0, 3, 5, 9, 11, 14, 17, 20])
    inputs, targets, starts = session_parallel_batches(np.arange(100, 120), offsets, 3)
    assert inputs.tolist() == [[100, 103, 105], [101, 109, 106], [111, 114, 107], [112, 115, 117]]
    assert (targets == inputs + 1).all()
    assert starts.astype(int).tolist() == [[1, 1, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_the_reference_training_step_is_the_one_the_notebook_trains_with():
    """The convention's model has the notebook's architecture: the step runs on notebook 14's SessionGRU."""
    from course_utils.checking.conventions import build_session_gru

    model = build_session_gru({"I": 5, "E": 2, "H": 3}, {k: v.numpy() for k, v in
                                                         _notebook_model(5, 2, 3).double().state_dict().items()})
    assert {k for k, _ in model.named_parameters()} == {k for k, _ in _notebook_model(5, 2, 3).named_parameters()}


def _notebook_model(I, E, H):
    from torch import nn

    class SessionGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden_size = H
            self.embedding = nn.Embedding(I, E)
            self.cell = nn.GRUCell(E, H)
            self.out = nn.Linear(H, I)
    return SessionGRU()


def test_the_plans_encode_for_the_grader():
    sandbox = pytest.importorskip("course_utils.grading.sandbox")
    for name in proofs.names:
        ex = EXERCISES[name]
        for case in ex.cases(np.random.default_rng(0)):
            arrays = {}
            json.dumps(sandbox.encode(ex.plan(case)[1], arrays))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox is Linux's")
def test_the_grader_grades_notebook_14_full_and_its_hand_out_zero(tmp_path):
    grading = pytest.importorskip("course_utils.grading")
    import grading_corpus as corpus
    from conftest import NOTEBOOKS, SOLUTIONS

    name = "14_session_recommendation.ipynb"
    if not (SOLUTIONS / name).exists() or not (NOTEBOOKS / name).exists():
        pytest.skip("notebook 14 is not there yet")
    solutions, subs = tmp_path / "solutions", tmp_path / "subs"
    corpus.write(corpus.load(SOLUTIONS / name), solutions / name)
    corpus.write(corpus.load(SOLUTIONS / name), subs / "instructor" / name)
    corpus.write(corpus.load(NOTEBOOKS / name), subs / "hand_out" / name)
    results = grading.grade(subs, tmp_path / "out", grading.Options(
        solutions=solutions, seed="test-seed", jobs=2, progress=False, limits=grading.Limits(wall=120, cpu=120)))
    by = {s["student"]: s for s in results["students"]}
    assert [e["exercise"] for e in by["instructor"]["exercises"] if e["status"] != "passed"] == [], \
        json.dumps(by["instructor"], indent=1)[:3000]
    assert by["instructor"]["total"] == results["course"]["possible"] == 7
    assert {e["status"] for e in by["hand_out"]["exercises"]} == {"not attempted"}
    assert by["hand_out"]["total"] == 0
