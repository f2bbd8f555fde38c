"""Proofs of notebook 12's checks (speech recognition with CTC: ctc_loss, ctc_greedy_decode,
AcousticModel, error_rate), the special behaviour of these checks (the reference is PyTorch's own
ctc_loss, the acoustic model is judged on its real frames), and the grading of the exercises in
the grader's sandbox.

The catalogued mistakes are proven from course_utils/lessons/nb12_speech_ctc/checks.py; here are
correct code written differently and the wrong code that no catalogue entry names.
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

from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.checking.conventions import run_plan
from proofs import Proofs, default_stub, run


class AcousticBase(nn.Module):
    def __init__(self, n_features, hidden_size, n_classes):
        super().__init__()
        self.rnn = nn.GRU(n_features, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, n_classes)


class AcousticStub(AcousticBase):
    def forward(self, features, lengths):
        raise NotImplementedError("Exercise 12.3: AcousticModel")


def stub(name):
    """As handed out: the module has its layers (the check loads their weights), its forward raises."""
    return AcousticStub if name == "AcousticModel" else default_stub(name)


proofs = Proofs("nb12_speech_ctc", min_correct=2, stub=stub)

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


proofs.correct("ctc_loss", ctc_loss_pytorch)
proofs.correct("ctc_loss", ctc_loss_state_by_state)


def _ctc_recursion(probabilities=False, impossible=-1e30):
    """The recursion as a learner writes it, in probabilities or with another 'impossible'."""
    def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0):
        losses = []
        for n in range(len(log_probs)):
            T, S = int(input_lengths[n]), int(target_lengths[n])
            ext = torch.full((2 * S + 1,), blank, dtype=torch.long)
            ext[1::2] = targets[n, :S]
            lp = log_probs[n, :T, ext]
            skip = torch.zeros(2 * S + 1, dtype=torch.bool)
            skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
            if probabilities:
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
        return torch.stack(losses)
    return ctc_loss


ctc_probabilities = _ctc_recursion(probabilities=True)
ctc_probabilities.__name__ = "ctc_probabilities"
ctc_minus_inf = _ctc_recursion(impossible=-float("inf"))
ctc_minus_inf.__name__ = "ctc_minus_inf"


def ctc_batch_mean(log_probs, targets, input_lengths, target_lengths, blank=0):
    return ref.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank).mean()


def ctc_loss_item(log_probs, targets, input_lengths, target_lengths, blank=0):
    return torch.tensor([float(v) for v in ref.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank)],
                        dtype=log_probs.dtype)


proofs.wrong("ctc_loss", ctc_probabilities, message="`loss` contains inf", hint="underflows to 0", output="loss")
proofs.wrong("ctc_loss", ctc_minus_inf, message="`dlogits` contains nan", hint="nan gradient", output="dlogits")
proofs.wrong("ctc_loss", ctc_batch_mean, message="wrong shape", hint="one loss per sequence", output="loss")
proofs.wrong("ctc_loss", ctc_loss_item, message="", hint="does not depend on log_probs through autograd")


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


def decode_one_padded_array(log_probs, lengths, blank=0):
    return np.zeros((len(log_probs), 3), dtype=int)


proofs.correct("ctc_greedy_decode", decode_vectorised)
proofs.correct("ctc_greedy_decode", decode_groupby)
proofs.wrong("ctc_greedy_decode", decode_one_padded_array, message="",
             hint="should return a list of N = 3 lists")

# --- 12.3 AcousticModel ---------------------------------------------------------------------------


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


proofs.correct("AcousticModel", AcousticOneByOne)
proofs.correct("AcousticModel", AcousticMaskedOutput)
proofs.wrong("AcousticModel", AcousticOneDirection, message="", hint="rnn.weight_ih_l0_reverse")


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


def test_the_acoustic_model_is_judged_on_the_real_frames_only():
    ex = EXERCISES["AcousticModel"]
    case = ex.cases(np.random.default_rng(0))[0]
    outputs, modified = ex.call((ref.AcousticModel,), case)
    outputs["log_probs"][~case.options["mask"]] = 123.0
    assert ex.judge(case, outputs, modified) is None


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


proofs.correct("error_rate", error_rate_table)
proofs.correct("error_rate", error_rate_recursive)

globals().update(proofs.tests())

# --- what the proofs of the catalogue do not look at: the output a mistake is blamed on ------------

BLAMED = [("ctc_loss", "jump over the blank between two *different* labels", "loss"),
          ("ctc_loss", "between two equal labels the blank is compulsory", "loss"),
          ("ctc_loss", "frames after input_lengths[n] are padding", "loss"),
          ("AcousticModel", "the GRU read the padding", "log_probs"),
          ("AcousticModel", "return log-probabilities", "log_probs")]


@pytest.mark.parametrize("exercise, hint, output", BLAMED)
def test_a_catalogued_mistake_is_blamed_on_the_output_it_gets_wrong(exercise, hint, output):
    ex = EXERCISES[exercise]
    (mistake,) = [m for m in ex.mistakes if hint in m.hint and m.implementation is not None]
    verdict = run(exercise, *ex.with_reference(mistake.implementation))
    assert verdict.hint == mistake.hint and verdict.output == output, verdict.message


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

    solutions, subs, sol, student = corpus.tiny_course(tmp_path, "12_tiny", SOLUTION_CELLS)
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
