"""Proofs of notebook 11's checks (PyTorch): AdditiveAttention and AttentionDecoder.

The generic proofs come from tests/proofs.py (the reference and the correct solutions below pass,
every mistake of the catalogue in course_utils/lessons/nb11_attention/checks.py is rejected with its
hint, the wrong solutions below that are no catalogue mistake are rejected with the check's own
words, stubs are "not attempted yet"). This file adds what is particular to notebook 11: any weight
on a padded position that is not exactly 0, and any row of weights that does not sum to 1, is named
before the values are compared; an AttentionDecoder whose AdditiveAttention is still a stub is told
so; a module with wrong parameter names is told which names are expected; and the instructor's
grader grades both exercises in its sandbox.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import reference as ref
from course_utils.check import EXERCISES
from proofs import Proofs, function_stub, run


def stub(name):
    """An exercise as the notebook hands it out: a module keeps its given __init__ (the reference's, so that
    its parameters load) and its forward raises NotImplementedError; a function only raises it."""
    if not name[:1].isupper():
        return function_stub(name)

    def forward(self, *args):
        raise NotImplementedError(f"Exercise: {name}")
    return type(name, (getattr(ref, name),), {"forward": forward})


proofs = Proofs("nb11_attention", min_correct=2, stub=stub)
correct, wrong = proofs.correct, proofs.wrong

# --- 11.1 AdditiveAttention ------------------------------------------------------------------


class AttentionBase(nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.W_q = nn.Linear(query_size, attention_size, bias=False)
        self.W_k = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def energy(self, query, keys):
        return torch.tanh(self.W_q(query).unsqueeze(1) + self.W_k(keys))  # (N, S, A)


class AttentionBmm(AttentionBase):
    """Scores through the weight matrix, a large negative number for padding, bmm for the context."""

    def forward(self, query, keys, mask):
        scores = (self.energy(query, keys) @ self.v.weight.T).squeeze(-1)
        scores = scores.masked_fill(mask == 0, -1e9)
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights


class AttentionByHand(AttentionBase):
    """einsum, torch.where and a softmax written out."""

    def forward(self, query, keys, mask):
        scores = torch.einsum("nsa,a->ns", self.energy(query, keys), self.v.weight[0])
        scores = torch.where(mask, scores, torch.tensor(float("-inf"), dtype=scores.dtype))
        e = torch.exp(scores - scores.max(dim=1, keepdim=True).values)
        weights = e / e.sum(dim=1, keepdim=True)
        return torch.einsum("ns,nsk->nk", weights, keys), weights


class AttentionMaskMinus100(AttentionBase):
    """-100 is not -inf: the padding keeps a weight of about e-100, tiny but not 0."""

    def forward(self, query, keys, mask):
        scores = self.v(self.energy(query, keys)).squeeze(-1).masked_fill(~mask, -100.0)
        weights = torch.softmax(scores, dim=1)
        return (weights.unsqueeze(-1) * keys).sum(1), weights


class AttentionMaskInverted(AttentionBase):
    def forward(self, query, keys, mask):
        scores = self.v(self.energy(query, keys)).squeeze(-1).masked_fill(mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        return (weights.unsqueeze(-1) * keys).sum(1), weights


class AttentionWeightsNotSqueezed(AttentionBase):
    def forward(self, query, keys, mask):
        scores = self.v(self.energy(query, keys)).masked_fill(~mask[..., None], float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (N, S, 1)
        return (weights * keys).sum(1), weights


class AttentionRenamed(nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.Wa = nn.Linear(query_size, attention_size, bias=False)
        self.Ua = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, query, keys, mask):
        scores = self.v(torch.tanh(self.Wa(query)[:, None] + self.Ua(keys)))[..., 0]
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return (weights[..., None] * keys).sum(1), weights


correct("AdditiveAttention", AttentionBmm)
correct("AdditiveAttention", AttentionByHand)
wrong("AdditiveAttention", AttentionMaskMinus100, hint="set the scores of the padded positions to -inf",
      message="it must be exactly 0", output="weights")
wrong("AdditiveAttention", AttentionMaskInverted, hint="mask where mask is False", message="contains nan",
      output="weights")
wrong("AdditiveAttention", AttentionWeightsNotSqueezed, hint="squeeze the last axis", message="expected (3, 5)",
      output="weights")

# --- 11.2 AttentionDecoder --------------------------------------------------------------------


class DecoderBase(nn.Module):
    attention_class = ref.AdditiveAttention

    def __init__(self, vocab_size, embed_size, hidden_size, attention_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.attention = self.attention_class(hidden_size, hidden_size, attention_size)
        self.rnn = nn.GRUCell(embed_size + hidden_size, hidden_size)
        self.out = nn.Linear(2 * hidden_size, vocab_size)


class DecoderKeysProjectedOnce(DecoderBase):
    """Bahdanau's own shortcut: W_k(keys) does not depend on the step, so compute it once."""

    def forward(self, tokens, hidden, enc_outputs, src_mask):
        projected = self.attention.W_k(enc_outputs)  # (N, S, A), once
        logits, weights = [], []
        for t in range(tokens.shape[1]):
            scores = self.attention.v(torch.tanh(self.attention.W_q(hidden)[:, None] + projected))[..., 0]
            w = torch.softmax(scores.masked_fill(~src_mask, float("-inf")), dim=1)
            context = torch.bmm(w[:, None], enc_outputs)[:, 0]
            hidden = self.rnn(torch.cat([self.embedding(tokens[:, t]), context], dim=-1), hidden)
            logits.append(self.out(torch.cat([hidden, context], dim=-1)))
            weights.append(w)
        return torch.stack(logits, 1), hidden, torch.stack(weights, 1)


class DecoderPreallocated(DecoderBase):
    """Writes each step into tensors allocated up front."""

    def forward(self, tokens, hidden, enc_outputs, src_mask):
        N, T = tokens.shape
        logits = hidden.new_zeros(N, T, self.out.out_features)
        weights = hidden.new_zeros(N, T, enc_outputs.shape[1])
        embedded = self.embedding(tokens)
        for t in range(T):
            context, weights[:, t] = self.attention(hidden, enc_outputs, src_mask)
            hidden = self.rnn(torch.cat((embedded[:, t], context), 1), hidden)
            logits[:, t] = self.out(torch.cat((hidden, context), 1))
        return logits, hidden, weights


class DecoderWeightsStackedLast(DecoderBase):
    def forward(self, tokens, hidden, enc_outputs, src_mask):
        logits, weights = [], []
        for t in range(tokens.shape[1]):
            context, w = self.attention(hidden, enc_outputs, src_mask)
            hidden = self.rnn(torch.cat([self.embedding(tokens[:, t]), context], dim=1), hidden)
            logits.append(self.out(torch.cat([hidden, context], dim=1)))
            weights.append(w)
        return torch.stack(logits, 1), hidden, torch.stack(weights, 2)  # (N, S, T), not (N, T, S)


class DecoderWithStubAttention(DecoderBase):
    """The learner's decoder is right, but it uses their AdditiveAttention, still a stub."""

    attention_class = stub("AdditiveAttention")

    def forward(self, tokens, hidden, enc_outputs, src_mask):
        return ref.AttentionDecoder.forward(self, tokens, hidden, enc_outputs, src_mask)


correct("AttentionDecoder", DecoderKeysProjectedOnce)
correct("AttentionDecoder", DecoderPreallocated)
wrong("AttentionDecoder", DecoderWeightsStackedLast, hint="torch.stack(list_of_T_weights, dim=1)",
      message="expected (3, 4, 5)", output="weights")

# --- what is particular to notebook 11 -------------------------------------------------------------


def test_a_decoder_whose_attention_is_still_a_stub_says_so():
    verdict = run("AttentionDecoder", DecoderWithStubAttention)
    assert verdict.status == "not attempted", verdict.message
    assert "it uses your AdditiveAttention, which still raises NotImplementedError" in verdict.message
    assert run("AttentionDecoder", stub("AttentionDecoder")).message.count("AdditiveAttention") == 0  # the usual line


def test_a_module_with_wrong_parameter_names_is_told_which_names_are_expected():
    verdict = run("AdditiveAttention", AttentionRenamed)
    assert verdict.status == "wrong"
    assert ("the parameters of AdditiveAttention are not the expected ones: missing W_k.weight, W_q.weight; "
            "unexpected Ua.weight, Wa.weight.") in verdict.message


def test_padded_positions_of_the_check_hold_keys_that_would_change_the_context():
    """The padded keys are not zero in most cases, so that attending to them shows in the context too."""
    cases = EXERCISES["AdditiveAttention"].cases(np.random.default_rng(0))
    padded = [c for c in cases if (~c.args["mask"]).any()]
    assert len(padded) >= 3
    assert all(np.abs(c.args["keys"][~c.args["mask"]]).max() > 0.1 for c in padded)


def catalogued(exercise, hint_start):
    """The wrong implementations of the catalogue entries of ``exercise`` whose hint starts with ``hint_start``."""
    found = [m.implementation for m in EXERCISES[exercise].mistakes
             if m.hint.startswith(hint_start) and m.implementation is not None]
    assert found, f"no wrong implementation in the catalogue of {exercise} has a hint that starts {hint_start!r}"
    return found


@pytest.mark.parametrize("exercise, hint_start, message, output", [
    ("AdditiveAttention", "padded positions got weight", "the weights of padded positions are not 0", "weights"),
    ("AdditiveAttention", "the softmax went over the batch axis", "do not sum to 1 over its source positions",
     "weights"),
    ("AdditiveAttention", "masking after the softmax", "do not sum to 1", "weights"),
    ("AdditiveAttention", "a score of 0 does not mean", "the weights of padded positions are not 0", "weights"),
    ("AdditiveAttention", "the tanh is missing", "", "weights"),
    ("AdditiveAttention", "the context is a weighted sum of the keys", "`context` has the wrong shape", "context"),
    ("AttentionDecoder", "the source mask was not used", "", "weights"),
    ("AttentionDecoder", "Bahdanau's decoder attends with the state *before*", "", "weights"),
    ("AttentionDecoder", "the GRU cell reads [embedding; context]", "", None),
    ("AttentionDecoder", "the output layer reads [new state; context]", "", "logits"),
    ("AttentionDecoder", "the output layer should read the *new* state", "", "logits"),
    ("AttentionDecoder", "the returned hidden is the state you started from", "", "hidden"),
])
def test_a_catalogued_mistake_is_described_in_the_checks_own_words(exercise, hint_start, message, output):
    """Beyond its hint (proven by tests/proofs.py): what the check says is wrong, and which output it blames."""
    for implementation in catalogued(exercise, hint_start):
        verdict = run(exercise, implementation)
        assert verdict.status == "wrong" and message in verdict.message, verdict.message
        assert output is None or verdict.output == output, verdict.message


# --- the instructor's grader ------------------------------------------------------------------

ATTENTION_CELL = (
    "# EXERCISE 11.1: AdditiveAttention (3 points)\nclass AdditiveAttention(nn.Module):\n"
    "    def __init__(self, query_size, key_size, attention_size):\n        super().__init__()\n"
    "        self.W_q = nn.Linear(query_size, attention_size, bias=False)\n"
    "        self.W_k = nn.Linear(key_size, attention_size, bias=False)\n"
    "        self.v = nn.Linear(attention_size, 1, bias=False)\n\n"
    "    def forward(self, query, keys, mask):\n        ### BEGIN SOLUTION\n"
    "        scores = self.v(torch.tanh(self.W_q(query)[:, None] + self.W_k(keys)))[..., 0]\n"
    "        weights = torch.softmax(scores.masked_fill(~mask, float('-inf')), dim=1)\n"
    "        return (weights[:, :, None] * keys).sum(dim=1), weights\n        ### END SOLUTION")
DECODER_CELL = (
    "# EXERCISE 11.2: AttentionDecoder (3 points)\nclass AttentionDecoder(nn.Module):\n"
    "    def __init__(self, vocab_size, embed_size, hidden_size, attention_size):\n        super().__init__()\n"
    "        self.embedding = nn.Embedding(vocab_size, embed_size)\n"
    "        self.attention = AdditiveAttention(hidden_size, hidden_size, attention_size)\n"
    "        self.rnn = nn.GRUCell(embed_size + hidden_size, hidden_size)\n"
    "        self.out = nn.Linear(2 * hidden_size, vocab_size)\n\n"
    "    def forward(self, tokens, hidden, enc_outputs, src_mask):\n        ### BEGIN SOLUTION\n"
    "        logits, weights = [], []\n"
    "        for t in range(tokens.shape[1]):\n"
    "            context, w = self.attention(hidden, enc_outputs, src_mask)\n"
    "            hidden = self.rnn(torch.cat([self.embedding(tokens[:, t]), context], dim=1), hidden)\n"
    "            logits.append(self.out(torch.cat([hidden, context], dim=1)))\n"
    "            weights.append(w)\n"
    "        return torch.stack(logits, dim=1), hidden, torch.stack(weights, dim=1)\n        ### END SOLUTION")
SOLUTION_CELLS = [
    "import numpy as np\nimport torch\nfrom torch import nn\nfrom course_utils import check",
    ATTENTION_CELL, "check.AdditiveAttention(AdditiveAttention)",
    DECODER_CELL, "check.AttentionDecoder(AttentionDecoder)",
    "for step in range(10**9):  # a training loop: never run by the grader\n    pass",
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox is Linux's")
def test_the_grader_grades_notebook_11s_exercises_in_its_sandbox(tmp_path):
    grading = pytest.importorskip("course_utils.grading")
    import grading_corpus as corpus

    solutions, subs, sol, student = corpus.tiny_course(tmp_path, "11_tiny", SOLUTION_CELLS)
    no_mask = ("logits, weights = [], []\n"
               "for t in range(tokens.shape[1]):\n"
               "    context, w = self.attention(hidden, enc_outputs, torch.ones_like(src_mask))\n"
               "    hidden = self.rnn(torch.cat([self.embedding(tokens[:, t]), context], dim=1), hidden)\n"
               "    logits.append(self.out(torch.cat([hidden, context], dim=1)))\n"
               "    weights.append(w)\n"
               "return torch.stack(logits, dim=1), hidden, torch.stack(weights, dim=1)")
    corpus.write(corpus.hostile(student, sol, "AttentionDecoder", no_mask), subs / "cy" / "11_tiny.ipynb")
    limits = grading.Limits(wall=60, cpu=60, memory=2048 << 20)
    results = grading.grade(subs, tmp_path / "out", grading.Options(
        solutions=solutions, seed="test-seed", jobs=2, limits=limits, progress=False))
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 6, "bob": 0, "cy": 3}, json.dumps(results["students"], indent=1)[:3000]
    cy = {e["exercise"]: e for e in next(s for s in results["students"] if s["student"] == "cy")["exercises"]}
    assert cy["AttentionDecoder"]["status"] == "wrong"
    assert "the source mask was not used" in cy["AttentionDecoder"]["hint"]


globals().update(proofs.tests())  # the generic proofs: tests/proofs.py
