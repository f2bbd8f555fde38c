"""Tests of notebook 12's checks (speech recognition with CTC): a check that cannot fail is a defect.

For every exercise of notebook 12 (ctc_loss, ctc_greedy_decode, AcousticModel, error_rate) these
tests show that its check passes the reference and correct solutions written differently from it
(PyTorch's own ctc_loss among them), under several seeds; rejects realistic mistakes with a hint
that names the mistake; reports a stub as "not attempted yet"; answers within a second or so; and
that the instructor's grader grades these exercises in its sandbox (the solution full marks, the
hand-out zero).
"""
from __future__ import annotations

import functools
import itertools
import json
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import check_proofs
from check_proofs import Proofs
from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.checking.conventions import run_plan

NAMES = ["ctc_loss", "ctc_greedy_decode", "AcousticModel", "error_rate"]
proofs = Proofs(NAMES, min_correct=2)
correct, wrong, run = proofs.correct, proofs.wrong, proofs.run


@pytest.fixture(autouse=True)
def _numpy_exercises_too(monkeypatch):
    """ctc_greedy_decode and error_rate are plain-NumPy exercises: the generic proofs accept them too."""
    monkeypatch.setattr(check_proofs, "TorchExercise", object)


# --- 12.1 ctc_loss ----------------------------------------------------------------------------


def ctc_loss_pytorch(log_probs, targets, input_lengths, target_lengths, blank=0):
    """PyTorch's own: time-first input, one loss per sequence."""
    return F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths, blank=blank,
                      reduction="none")


def ctc_loss_state_by_state(log_probs, targets, input_lengths, target_lengths, blank=0):
    """A loop over the states too, with scalars in Python lists and a finite 'impossible'."""
    NEG = torch.tensor(-1e30, dtype=log_probs.dtype)
    losses = []
    for n in range(len(log_probs)):
        labels = [int(v) for v in targets[n, :target_lengths[n]]]
        ext = [blank]
        for c in labels:
            ext += [c, blank]
        alpha = [log_probs[n, 0, ext[s]] if s < 2 else NEG for s in range(len(ext))]
        for t in range(1, int(input_lengths[n])):
            new = []
            for s in range(len(ext)):
                terms = [alpha[s]] + ([alpha[s - 1]] if s >= 1 else [])
                if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
                    terms.append(alpha[s - 2])
                new.append(torch.logsumexp(torch.stack(terms), 0) + log_probs[n, t, ext[s]])
            alpha = new
        losses.append(-torch.logsumexp(torch.stack(alpha[-2:]), 0))
    return torch.stack(losses)


correct("ctc_loss", ref.ctc_loss)
correct("ctc_loss", ctc_loss_pytorch)
correct("ctc_loss", ctc_loss_state_by_state)


def _ctc_with(transition=None, space="log", impossible=-1e30, reduce=None, frames="own"):
    """The recursion as a learner writes it, with one thing changed."""
    def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0):
        losses = []
        for n in range(len(log_probs)):
            T = log_probs.shape[1] if frames == "all" else int(input_lengths[n])
            S = int(target_lengths[n])
            ext = torch.full((2 * S + 1,), blank, dtype=torch.long)
            ext[1::2] = targets[n, :S]
            lp = log_probs[n, :T, ext]
            skip = torch.zeros(2 * S + 1, dtype=torch.bool)
            skip[2:] = ext[2:] != blank
            if transition != "skip repeats":
                skip[2:] &= ext[2:] != ext[:-2]
            if transition == "no skip":
                skip[:] = False
            if space == "prob":
                p = lp.exp()
                alpha = torch.cat([p[0, :2], torch.zeros(2 * S - 1, dtype=p.dtype)])
                for t in range(1, T):
                    step = torch.cat([alpha.new_zeros(1), alpha[:-1]])
                    jump = torch.where(skip, torch.cat([alpha.new_zeros(2), alpha[:-2]]), alpha.new_zeros(1))
                    alpha = (alpha + step + jump) * p[t]
                losses.append(-torch.log(alpha[-2:].sum()))
                continue
            neg = lp.new_full((2 * S + 1,), impossible)
            alpha = torch.cat([lp[0, :2], neg[2:]])
            for t in range(1, T):
                step = torch.cat([neg[:1], alpha[:-1]])
                jump = torch.where(skip, torch.cat([neg[:2], alpha[:-2]]), neg)
                alpha = torch.logsumexp(torch.stack([alpha, step, jump]), dim=0) + lp[t]
            losses.append(-torch.logsumexp(alpha[-2:], dim=0))
        loss = torch.stack(losses)
        return loss.mean() if reduce == "mean" else loss
    return ctc_loss


ctc_no_skip = _ctc_with(transition="no skip")
ctc_skip_repeats = _ctc_with(transition="skip repeats")
ctc_probabilities = _ctc_with(space="prob")
ctc_minus_inf = _ctc_with(impossible=-float("inf"))
ctc_batch_mean = _ctc_with(reduce="mean")
ctc_all_frames = _ctc_with(frames="all")
wrong("ctc_loss", ctc_no_skip, "jump over the blank between two *different* labels", output="loss")
wrong("ctc_loss", ctc_skip_repeats, "between two equal labels the blank is compulsory", output="loss")
wrong("ctc_loss", ctc_probabilities, "underflows to 0", message="`loss` contains inf", output="loss")
wrong("ctc_loss", ctc_minus_inf, "nan gradient", message="`dlogits` contains nan", output="dlogits")
wrong("ctc_loss", ctc_batch_mean, "one loss per sequence", message="wrong shape", output="loss")
wrong("ctc_loss", ctc_all_frames, "frames after input_lengths[n] are padding", output="loss")


def ctc_loss_item(log_probs, targets, input_lengths, target_lengths, blank=0):
    return torch.tensor([float(v) for v in ref.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank)],
                        dtype=log_probs.dtype)


wrong("ctc_loss", ctc_loss_item, "does not depend on log_probs through autograd")


def test_the_reference_is_pytorchs_ctc_loss_in_value_and_in_gradient():
    """The oracle is outside: the same losses as F.ctc_loss, and the same gradients with respect to the logits
    (PyTorch's ctc_loss returns, for log_probs, the gradient with respect to the logits of a log_softmax)."""
    ex = EXERCISES["ctc_loss"]
    for case in ex.cases(np.random.default_rng(0)):
        mine, _ = run_plan((ref.ctc_loss,), *ex.plan(case))
        torch_, _ = run_plan((ctc_loss_pytorch,), *ex.plan(case))
        for k in ("loss", "dlogits"):
            np.testing.assert_allclose(mine[k], torch_[k], rtol=1e-9, atol=1e-9, err_msg=case.label)


def test_every_ctc_mistake_model_differs_from_the_reference_on_the_fixed_case():
    from course_utils.lessons.nb12_speech_ctc.checks import ctc_variant

    case = next(c for c in EXERCISES["ctc_loss"].cases(np.random.default_rng(0)) if c.label.startswith("fixed"))
    right = ctc_variant(case)["loss"]
    np.testing.assert_allclose(right, EXERCISES["ctc_loss"].expected(case)["loss"], rtol=1e-10)
    for kind in ("no skip", "skip repeats", "blank start", "last label", "final blank", "all frames",
                 "padded targets", "sign", "per label"):
        assert not np.allclose(ctc_variant(case, kind)["loss"], right), kind


# --- 12.2 ctc_greedy_decode ---------------------------------------------------------------------


def decode_vectorised(log_probs, lengths, blank=0):
    best = log_probs.argmax(axis=-1)
    out = []
    for n in range(len(best)):
        b = best[n, :lengths[n]]
        keep = (b != blank) & np.concatenate([[True], b[1:] != b[:-1]])
        out.append(b[keep])  # an integer array is fine too
    return out


def decode_groupby(log_probs, lengths, blank=0):
    return [[c for c, _ in itertools.groupby(np.argmax(lp[:T], axis=1).tolist()) if c != blank]
            for lp, T in zip(log_probs, lengths)]


correct("ctc_greedy_decode", ref.ctc_greedy_decode)
correct("ctc_greedy_decode", decode_vectorised)
correct("ctc_greedy_decode", decode_groupby)


def decode_blanks_first(log_probs, lengths, blank=0):
    out = []
    for lp, T in zip(log_probs, lengths):
        best = [int(c) for c in lp[:T].argmax(-1) if c != blank]
        out.append([c for i, c in enumerate(best) if i == 0 or c != best[i - 1]])
    return out


def decode_no_merge(log_probs, lengths, blank=0):
    return [[int(c) for c in lp[:T].argmax(-1) if c != blank] for lp, T in zip(log_probs, lengths)]


def decode_all_frames(log_probs, lengths, blank=0):
    return [[c for c, _ in itertools.groupby(lp.argmax(-1).tolist()) if c != blank] for lp in log_probs]


def decode_blank_zero(log_probs, lengths, blank=0):
    return [[c for c, _ in itertools.groupby(lp[:T].argmax(-1).tolist()) if c != 0] for lp, T in zip(log_probs, lengths)]


def decode_one_padded_array(log_probs, lengths, blank=0):
    return np.zeros((len(log_probs), 3), dtype=int)


wrong("ctc_greedy_decode", decode_blanks_first, "merge repeats first, then drop the blanks")
wrong("ctc_greedy_decode", decode_no_merge, "merge repeats")
wrong("ctc_greedy_decode", decode_all_frames, "frames after lengths[n] are padding")
wrong("ctc_greedy_decode", decode_blank_zero, "use the `blank` argument")
wrong("ctc_greedy_decode", decode_one_padded_array, "should return a list of N = 3 lists")


# --- 12.3 AcousticModel ---------------------------------------------------------------------------


class AcousticBase(nn.Module):
    def __init__(self, n_features, hidden_size, n_classes):
        super().__init__()
        self.rnn = nn.GRU(n_features, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, n_classes)


class AcousticOneByOne(AcousticBase):
    """Each utterance on its own, cut to its length: no packing, and padding filled with zeros."""

    def forward(self, features, lengths):
        rows = []
        for x, T in zip(features, lengths.tolist()):
            states, _ = self.rnn(x[None, :T])
            states = torch.cat([states[0], states.new_zeros(features.shape[1] - T, states.shape[-1])])
            rows.append(F.log_softmax(self.out(states), dim=-1))
        return torch.stack(rows)


class AcousticMaskedOutput(AcousticBase):
    """Packed, and the padded frames' outputs set to 0 (CTC never reads them)."""

    def forward(self, features, lengths):
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        states = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=features.shape[1])[0]
        mask = torch.arange(features.shape[1])[None, :, None] < lengths[:, None, None]
        return self.out(states).log_softmax(-1) * mask


correct("AcousticModel", ref.AcousticModel)
correct("AcousticModel", AcousticOneByOne)
correct("AcousticModel", AcousticMaskedOutput)


class AcousticNoPacking(AcousticBase):
    def forward(self, features, lengths):
        return self.out(self.rnn(features)[0]).log_softmax(-1)


class AcousticLogits(AcousticBase):
    def forward(self, features, lengths):
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        return self.out(pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=features.shape[1])[0])


class AcousticNoTotalLength(AcousticBase):
    def forward(self, features, lengths):
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        return self.out(pad_packed_sequence(self.rnn(packed)[0], batch_first=True)[0]).log_softmax(-1)


class AcousticOneDirection(nn.Module):
    def __init__(self, n_features, hidden_size, n_classes):
        super().__init__()
        self.rnn = nn.GRU(n_features, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, n_classes)

    def forward(self, features, lengths):
        return self.out(self.rnn(features)[0]).log_softmax(-1)


wrong("AcousticModel", AcousticNoPacking, "the GRU read the padding", output="log_probs")
wrong("AcousticModel", AcousticLogits, "return log-probabilities", output="log_probs")
wrong("AcousticModel", AcousticOneDirection, "rnn.weight_ih_l0_reverse")


def test_a_model_whose_output_is_shorter_than_the_input_is_told_about_total_length():
    from course_utils.lessons.nb12_speech_ctc.checks import _acoustic_cases

    ex = EXERCISES["AcousticModel"]
    # on the random cases no utterance may be as long as the batch... the fixed one has T = lengths[0], so
    # give it a batch whose longest utterance is shorter than T
    case = _acoustic_cases(np.random.default_rng(0))[0]
    case.args["lengths"] = np.array([5, 3, 5])
    case.options["mask"] = np.arange(6)[None] < case.args["lengths"][:, None]
    outputs, modified = ex.call((AcousticNoTotalLength,), case)
    verdict = ex.judge(case, outputs, modified)
    assert verdict is not None and "total_length" in verdict.hint, verdict


# --- 12.4 error_rate ---------------------------------------------------------------------------


def error_rate_table(references, hypotheses):
    errors = 0
    for r, h in zip(references, hypotheses):
        d = np.zeros((len(r) + 1, len(h) + 1), dtype=int)
        d[:, 0], d[0, :] = np.arange(len(r) + 1), np.arange(len(h) + 1)
        for i in range(1, len(r) + 1):
            for j in range(1, len(h) + 1):
                d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (r[i - 1] != h[j - 1]))
        errors += d[-1, -1]
    return errors / sum(map(len, references))  # a NumPy float


def error_rate_recursive(references, hypotheses):
    def distance(r, h):
        @functools.lru_cache(maxsize=None)
        def d(i, j):
            if i == 0 or j == 0:
                return i + j
            return min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (r[i - 1] != h[j - 1]))
        return d(len(r), len(h))
    return sum(distance(r, h) for r, h in zip(references, hypotheses)) / sum(len(r) for r in references)


correct("error_rate", ref.error_rate)
correct("error_rate", error_rate_table)
correct("error_rate", error_rate_recursive)


def error_rate_positions(references, hypotheses):
    errors = sum(sum(a != b for a, b in zip(r, h)) + abs(len(r) - len(h)) for r, h in zip(references, hypotheses))
    return errors / sum(len(r) for r in references)


def error_rate_average(references, hypotheses):
    return float(np.mean([ref.edit_distance(r, h) / len(r) for r, h in zip(references, hypotheses)]))


def error_rate_by_hypotheses(references, hypotheses):
    return sum(ref.edit_distance(r, h) for r, h in zip(references, hypotheses)) / sum(len(h) for h in hypotheses)


def error_rate_substitution_two(references, hypotheses):
    def d(r, h):
        t = np.zeros((len(r) + 1, len(h) + 1), dtype=int)
        t[:, 0], t[0, :] = np.arange(len(r) + 1), np.arange(len(h) + 1)
        for i in range(1, len(r) + 1):
            for j in range(1, len(h) + 1):
                t[i, j] = min(t[i - 1, j] + 1, t[i, j - 1] + 1, t[i - 1, j - 1] + 2 * (r[i - 1] != h[j - 1]))
        return t[-1, -1]
    return sum(d(r, h) for r, h in zip(references, hypotheses)) / sum(len(r) for r in references)


def error_rate_counts(references, hypotheses):
    return sum(ref.edit_distance(r, h) for r, h in zip(references, hypotheses))


wrong("error_rate", error_rate_positions, "position by position")
wrong("error_rate", error_rate_average, "averages each utterance's rate")
wrong("error_rate", error_rate_by_hypotheses, "not in the hypotheses")
wrong("error_rate", error_rate_substitution_two, "a substitution is one edit")
wrong("error_rate", error_rate_counts, "return a rate")


# --- stubs and the generic proofs --------------------------------------------------------------


def _stub(name):
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise 12.x: {name}")
    if name == "AcousticModel":
        class Stub(AcousticBase):
            def forward(self, features, lengths):
                raise NotImplementedError("Exercise 12.3: AcousticModel")
        return Stub
    return stub


globals().update(proofs.tests(stub=_stub))  # the generic proofs: tests/check_proofs.py


def test_the_acoustic_model_is_judged_on_the_real_frames_only():
    ex = EXERCISES["AcousticModel"]
    case = ex.cases(np.random.default_rng(0))[0]
    outputs, modified = ex.call((ref.AcousticModel,), case)
    outputs["log_probs"][~case.options["mask"]] = 123.0
    assert ex.judge(case, outputs, modified) is None


# --- the instructor's grader ------------------------------------------------------------------

SOLUTION_CELLS = [
    "import itertools\nimport numpy as np\nimport torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"
    "from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence\nfrom course_utils import check",
    "# EXERCISE 12.1: ctc_loss (3 points)\ndef ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0):\n"
    "    ### BEGIN SOLUTION\n"
    "    return F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, target_lengths, blank=blank, "
    "reduction='none')\n"
    "    ### END SOLUTION",
    "check.ctc_loss(ctc_loss)",
    "# EXERCISE 12.2: ctc_greedy_decode (2 points)\ndef ctc_greedy_decode(log_probs, lengths, blank=0):\n"
    "    ### BEGIN SOLUTION\n"
    "    return [[c for c, _ in itertools.groupby(lp[:T].argmax(-1).tolist()) if c != blank]\n"
    "            for lp, T in zip(log_probs, lengths)]\n"
    "    ### END SOLUTION",
    "check.ctc_greedy_decode(ctc_greedy_decode)",
    "# EXERCISE 12.3: AcousticModel (2 points)\nclass AcousticModel(nn.Module):\n"
    "    def __init__(self, n_features, hidden_size, n_classes):\n        super().__init__()\n"
    "        self.rnn = nn.GRU(n_features, hidden_size, batch_first=True, bidirectional=True)\n"
    "        self.out = nn.Linear(2 * hidden_size, n_classes)\n\n"
    "    def forward(self, features, lengths):\n        ### BEGIN SOLUTION\n"
    "        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)\n"
    "        states = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=features.shape[1])[0]\n"
    "        return self.out(states).log_softmax(-1)\n"
    "        ### END SOLUTION",
    "check.AcousticModel(AcousticModel)",
    "# EXERCISE 12.4: error_rate (2 points)\ndef error_rate(references, hypotheses):\n"
    "    ### BEGIN SOLUTION\n"
    "    def distance(a, b):\n        prev = list(range(len(b) + 1))\n"
    "        for i in range(1, len(a) + 1):\n            row = [i]\n"
    "            for j in range(1, len(b) + 1):\n"
    "                row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])))\n"
    "            prev = row\n        return prev[-1]\n"
    "    return sum(distance(r, h) for r, h in zip(references, hypotheses)) / sum(len(r) for r in references)\n"
    "    ### END SOLUTION",
    "check.error_rate(error_rate)",
    "for step in range(10**9):  # a training loop: never run by the grader\n    pass",
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox is Linux's")
def test_the_grader_grades_notebook_12s_exercises_in_its_sandbox(tmp_path):
    grading = pytest.importorskip("course_utils.grading")
    import grading_corpus as corpus
    import nbformat
    from course_utils.release import student_version

    solutions = tmp_path / "solutions"
    solutions.mkdir()
    solution = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in SOLUTION_CELLS])
    nbformat.write(solution, solutions / "12_tiny.ipynb")
    student = json.loads(nbformat.writes(student_version(solution, "12_tiny.ipynb")))
    sol = json.loads(nbformat.writes(solution))
    subs = tmp_path / "subs"
    corpus.write(sol, subs / "ada" / "12_tiny.ipynb")
    corpus.write(student, subs / "bob" / "12_tiny.ipynb")
    blanks_first = ("out = []\nfor lp, T in zip(log_probs, lengths):\n"
                    "    best = [int(c) for c in lp[:T].argmax(-1) if c != blank]\n"
                    "    out.append([c for i, c in enumerate(best) if i == 0 or c != best[i - 1]])\nreturn out")
    corpus.write(corpus.hostile(student, sol, "ctc_greedy_decode", blanks_first), subs / "cy" / "12_tiny.ipynb")
    limits = grading.Limits(wall=60, cpu=60, memory=2048 << 20)
    results = grading.grade(subs, tmp_path / "out", grading.Options(
        solutions=solutions, seed="test-seed", jobs=2, limits=limits, progress=False))
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 9, "bob": 0, "cy": 7}, json.dumps(results["students"], indent=1)[:3000]
    cy = {e["exercise"]: e for e in next(s for s in results["students"] if s["student"] == "cy")["exercises"]}
    assert cy["ctc_greedy_decode"]["status"] == "wrong"
    assert "merge repeats first" in cy["ctc_greedy_decode"]["hint"]
