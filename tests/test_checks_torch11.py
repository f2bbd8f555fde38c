"""Tests of notebook 11's checks (PyTorch): a check that cannot fail is a defect.

For both exercises of notebook 11 (AdditiveAttention, AttentionDecoder) these tests show that its check

* passes the reference and correct solutions written differently from it, under several seeds;
* rejects realistic mistakes, with a hint that names the mistake, and in particular any weight
  on a padded position that is not exactly 0 and any row of weights that does not sum to 1;
* reports a stub as "not attempted yet" (and an AttentionDecoder whose AdditiveAttention is
  still a stub as such), and a module with wrong parameter names in plain words;
* answers within a second or so;
* and that every mistake in its catalogue is caught, with its own hint;

and that the instructor's grader grades both exercises in its sandbox.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from check_proofs import Proofs
from course_utils import reference as ref
from course_utils.check import EXERCISES

NAMES = ["AdditiveAttention", "AttentionDecoder"]
proofs = Proofs(NAMES, min_correct=2)
correct, wrong, run = proofs.correct, proofs.wrong, proofs.run
CORRECT, WRONG = proofs.CORRECT, proofs.WRONG


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


class AttentionNoMask(AttentionBase):
    def forward(self, query, keys, mask):
        weights = torch.softmax(self.v(self.energy(query, keys)).squeeze(-1), dim=1)
        return (weights.unsqueeze(-1) * keys).sum(1), weights


class AttentionSoftmaxOverBatch(AttentionBase):
    def forward(self, query, keys, mask):
        scores = self.v(self.energy(query, keys)).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=0)
        return (weights.unsqueeze(-1) * keys).sum(1), weights


class AttentionMaskAfterSoftmax(AttentionBase):
    def forward(self, query, keys, mask):
        weights = torch.softmax(self.v(self.energy(query, keys)).squeeze(-1), dim=1) * mask
        return (weights.unsqueeze(-1) * keys).sum(1), weights


class AttentionMaskWithZero(AttentionBase):
    def forward(self, query, keys, mask):
        scores = self.v(self.energy(query, keys)).squeeze(-1).masked_fill(~mask, 0.0)
        weights = torch.softmax(scores, dim=1)
        return (weights.unsqueeze(-1) * keys).sum(1), weights


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


class AttentionNoTanh(AttentionBase):
    def forward(self, query, keys, mask):
        scores = self.v(self.W_q(query).unsqueeze(1) + self.W_k(keys)).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return (weights.unsqueeze(-1) * keys).sum(1), weights


class AttentionProjectedContext(AttentionBase):
    def forward(self, query, keys, mask):
        scores = self.v(self.energy(query, keys)).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        return (weights.unsqueeze(-1) * self.W_k(keys)).sum(1), weights


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


class AttentionStub(AttentionBase):
    def forward(self, query, keys, mask):
        raise NotImplementedError("Exercise 11.1: AdditiveAttention")


correct("AdditiveAttention", AttentionBmm)
correct("AdditiveAttention", AttentionByHand)
wrong("AdditiveAttention", AttentionNoMask, "padded positions got weight", "the weights of padded positions are not 0",
      output="weights")
wrong("AdditiveAttention", AttentionSoftmaxOverBatch, "the softmax went over the batch axis",
      "do not sum to 1 over its source positions", output="weights")
wrong("AdditiveAttention", AttentionMaskAfterSoftmax, "masking after the softmax", output="weights")
wrong("AdditiveAttention", AttentionMaskWithZero, "a score of 0 does not mean 'no weight'", output="weights")
wrong("AdditiveAttention", AttentionMaskMinus100, "set the scores of the padded positions to -inf",
      "it must be exactly 0", output="weights")
wrong("AdditiveAttention", AttentionMaskInverted, "mask where mask is False", "contains nan", output="weights")
wrong("AdditiveAttention", AttentionNoTanh, "the tanh is missing", output="weights")
wrong("AdditiveAttention", AttentionProjectedContext, "not of W_k(keys)", "`context` has the wrong shape",
      output="context")
wrong("AdditiveAttention", AttentionWeightsNotSqueezed, "squeeze the last axis", "expected (3, 5)", output="weights")

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


def _loop(self, tokens, hidden, enc_outputs, src_mask, rnn_order=("e", "c"), out_order=("h", "c"), mask=True,
          new_state=False, keep_first=False, stack_dim=1):
    embedded, first = self.embedding(tokens), hidden
    logits, weights, context = [], [], torch.zeros_like(hidden)
    mask_used = src_mask if mask else torch.ones_like(src_mask)
    for t in range(tokens.shape[1]):
        if not new_state:
            context, w = self.attention(hidden, enc_outputs, mask_used)
        parts = {"e": embedded[:, t], "c": context}
        previous, hidden = hidden, self.rnn(torch.cat([parts[k] for k in rnn_order], dim=1), hidden)
        if new_state:
            context, w = self.attention(hidden, enc_outputs, mask_used)
        parts = {"h": hidden, "c": context, "p": previous}
        logits.append(self.out(torch.cat([parts[k] for k in out_order], dim=1)))
        weights.append(w)
    return torch.stack(logits, 1), first if keep_first else hidden, torch.stack(weights, stack_dim)


class DecoderNoMask(DecoderBase):
    def forward(self, *args):
        return _loop(self, *args, mask=False)


class DecoderLuong(DecoderBase):
    """Attends with the new state, after the GRU step (as Luong et al. do), not with the previous one."""

    def forward(self, *args):
        return _loop(self, *args, new_state=True)


class DecoderRnnInputSwapped(DecoderBase):
    def forward(self, *args):
        return _loop(self, *args, rnn_order=("c", "e"))


class DecoderOutInputSwapped(DecoderBase):
    def forward(self, *args):
        return _loop(self, *args, out_order=("c", "h"))


class DecoderOutFromOldState(DecoderBase):
    def forward(self, *args):
        return _loop(self, *args, out_order=("p", "c"))


class DecoderReturnsFirstState(DecoderBase):
    def forward(self, *args):
        return _loop(self, *args, keep_first=True)


class DecoderWeightsStackedLast(DecoderBase):
    def forward(self, *args):
        return _loop(self, *args, stack_dim=2)


class DecoderWithStubAttention(DecoderBase):
    attention_class = AttentionStub

    def forward(self, *args):
        return _loop(self, *args)


class DecoderStub(DecoderBase):
    def forward(self, tokens, hidden, enc_outputs, src_mask):
        raise NotImplementedError("Exercise 11.2: AttentionDecoder")


correct("AttentionDecoder", DecoderKeysProjectedOnce)
correct("AttentionDecoder", DecoderPreallocated)
wrong("AttentionDecoder", DecoderNoMask, "the source mask was not used", output="weights")
wrong("AttentionDecoder", DecoderLuong, "attends with the state *before* the step", output="weights")
wrong("AttentionDecoder", DecoderRnnInputSwapped, "the GRU cell reads [embedding; context]")
wrong("AttentionDecoder", DecoderOutInputSwapped, "the output layer reads [new state; context]", output="logits")
wrong("AttentionDecoder", DecoderOutFromOldState, "the output layer should read the *new* state", output="logits")
wrong("AttentionDecoder", DecoderReturnsFirstState, "the state you started from", output="hidden")
wrong("AttentionDecoder", DecoderWeightsStackedLast, "torch.stack(list_of_T_weights, dim=1)", "expected (3, 4, 5)",
      output="weights")

STUBS = {"AdditiveAttention": AttentionStub, "AttentionDecoder": DecoderStub}

# --- the generic tests -------------------------------------------------------------------------


def test_a_decoder_whose_attention_is_still_a_stub_says_so():
    verdict = run("AttentionDecoder", DecoderWithStubAttention)
    assert verdict.status == "not attempted", verdict.message
    assert "it uses your AdditiveAttention, which still raises NotImplementedError" in verdict.message
    assert run("AttentionDecoder", DecoderStub).message.count("AdditiveAttention") == 0  # the usual line again


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
    import nbformat
    from course_utils.release import student_version

    solutions = tmp_path / "solutions"
    solutions.mkdir()
    solution = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in SOLUTION_CELLS])
    nbformat.write(solution, solutions / "11_tiny.ipynb")
    student = json.loads(nbformat.writes(student_version(solution, "11_tiny.ipynb")))
    sol = json.loads(nbformat.writes(solution))
    subs = tmp_path / "subs"
    corpus.write(sol, subs / "ada" / "11_tiny.ipynb")
    corpus.write(student, subs / "bob" / "11_tiny.ipynb")
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


globals().update(proofs.tests(stub=STUBS.__getitem__))  # the generic proofs: tests/check_proofs.py
