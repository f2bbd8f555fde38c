"""Checks of notebook 11: additive (Bahdanau) attention with masking, and the attention decoder."""
from __future__ import annotations

import numpy as np

from course_utils.checking.core import TODO, Case, Mistake, Verdict
from course_utils.checking.exercise_torch import TorchExercise
from course_utils.lessons.nb10_seq2seq.checks import _arrays, _learner_module, _module, _seed, _tensors


def _lengths(g, N, S, full=False):
    """Source lengths of a padded batch: one sequence fills it, the others are random (>= 1)."""
    lengths = np.full(N, S) if full else g.integers(1, S + 1, size=N)
    lengths[0] = S
    return lengths


def _mask(lengths, S):
    return np.arange(S)[None, :] < np.asarray(lengths)[:, None]


# --- 11.1: AdditiveAttention ----------------------------------------------------------------------

ATTENTION_PARAMS = ("W_q.weight", "W_k.weight", "v.weight")


def _attention_cases(rng):
    cases = []
    for label, (N, S, Hq, Hk, A), lengths, seed in [
            ("fixed inputs, lengths [5, 2, 3], Hq=4, Hk=6, A=3", (3, 5, 4, 6, 3), [5, 2, 3], 0),
            ("random inputs, one source position (S=1), N=1", (1, 1, 3, 2, 4), None, None),
            ("random inputs, Hq=Hk=A=4", (4, 6, 4, 4, 4), None, None),
            ("random inputs, no padding", (2, 4, 3, 5, 2), "full", None),
            ("random inputs, N=5, S=8, Hq=3, Hk=2, A=5", (5, 8, 3, 2, 5), None, None)]:
        g = _seed(rng, seed)
        lengths = np.array(lengths) if isinstance(lengths, list) else _lengths(g, N, S, lengths == "full")
        state = {"W_q.weight": g.standard_normal((A, Hq)) / np.sqrt(Hq),
                 "W_k.weight": g.standard_normal((A, Hk)) / np.sqrt(Hk), "v.weight": g.standard_normal((1, A))}
        args = {"query": g.standard_normal((N, Hq)), "keys": g.standard_normal((N, S, Hk)), "mask": _mask(lengths, S)}
        cases.append(Case(label, args, options={"plan": {
            "init": {"query_size": Hq, "key_size": Hk, "attention_size": A}, "state": state,
            "returns": ("context", "weights"), "name": "AdditiveAttention",
            "douts": {"context": g.standard_normal((N, Hk)), "weights": g.standard_normal((N, S))},
            "grad_wrt": ("query", "keys")}}))
    return cases


def _attention_mistake(kind):
    def outputs(case):
        import torch

        att, t = _module(case, "AdditiveAttention"), _tensors(case)
        query, keys, mask = t["query"], t["keys"], t["mask"]
        with torch.no_grad():
            q, k = (att.W_q(keys), att.W_k(query)) if kind == "swapped" else (att.W_q(query), att.W_k(keys))
            hidden = q[:, None] + k if kind != "swapped" else q + k[:, None]
            scores = att.v(hidden if kind == "no tanh" else torch.tanh(hidden))[..., 0]
            if kind == "zero":
                scores = scores.masked_fill(~mask, 0.0)
            elif kind not in ("no mask", "after"):
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=0 if kind == "dim 0" else 1)
            if kind == "after":
                weights = weights * mask
            values = att.W_k(keys) if kind == "projected" else keys
            context = (weights[:, :, None] * values).sum(dim=1)
        return _arrays(context=context, weights=weights)
    return outputs


def _scores(self, query, keys):
    """The (N, S) attention scores of a learner's AdditiveAttention, right: v . tanh(W_q q + W_k k)."""
    import torch

    return self.v(torch.tanh(self.W_q(query)[:, None] + self.W_k(keys)))[..., 0]


def _weighted_keys(weights, keys):
    return (weights[:, :, None] * keys).sum(dim=1), weights


# no mask: the padded positions get weight
def _wrong_attention_no_mask(self, query, keys, mask):
    import torch

    return _weighted_keys(torch.softmax(_scores(self, query, keys), dim=1), keys)


# the softmax over the batch axis (dim=0)
def _wrong_attention_softmax_over_batch(self, query, keys, mask):
    import torch

    return _weighted_keys(torch.softmax(_scores(self, query, keys).masked_fill(~mask, float("-inf")), dim=0), keys)


# the weights masked after the softmax: the rows no longer sum to 1
def _wrong_attention_mask_after_softmax(self, query, keys, mask):
    import torch

    return _weighted_keys(torch.softmax(_scores(self, query, keys), dim=1) * mask, keys)


# the padded scores set to 0, not -inf: exp(0) = 1
def _wrong_attention_mask_with_zero(self, query, keys, mask):
    import torch

    return _weighted_keys(torch.softmax(_scores(self, query, keys).masked_fill(~mask, 0.0), dim=1), keys)


# no tanh: v . (W_q q + W_k k)
def _wrong_attention_no_tanh(self, query, keys, mask):
    import torch

    scores = self.v(self.W_q(query)[:, None] + self.W_k(keys))[..., 0]
    return _weighted_keys(torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1), keys)


# the context is a weighted sum of W_k(keys), not of the keys
def _wrong_attention_projected_context(self, query, keys, mask):
    import torch

    weights = torch.softmax(_scores(self, query, keys).masked_fill(~mask, float("-inf")), dim=1)
    return _weighted_keys(weights, self.W_k(keys))


MASK_HINT = ("set the scores of the padded positions to -inf before the softmax, "
             "scores.masked_fill(~mask, float('-inf')): exp(-inf) = 0 gives them no weight at all.")
SUM_HINT = "take the softmax over the source positions, dim=1 of the (N, S) scores, so that each row sums to 1."


class AttentionExercise(TorchExercise):
    """Before the values: the weights of padded positions must be exactly 0 and every row must sum to 1."""

    def judge(self, case, outputs, modified=()):
        """Judged first on the weights: exactly 0 on padded positions and rows summing to 1, then as usual."""
        expected = self.expected(case)
        weights, mask = outputs.get("weights"), case.args["mask"]
        if (weights is not None and weights.shape == expected["weights"].shape and weights.dtype.kind == "f"
                and np.all(np.isfinite(weights))):
            leak = float(np.abs(weights[~mask]).max()) if (~mask).any() else 0.0
            if leak > 0:
                return self.fail(case, "the weights of padded positions are not 0",
                                 f"largest weight on a padded position: {leak:.1e} (it must be exactly 0)",
                                 self.known_mistake(case, outputs) or MASK_HINT, "weights")
            sums = weights.sum(axis=1)
            if np.abs(sums - 1).max() > 1e-6:
                return self.fail(case, "the weights of an example do not sum to 1 over its source positions",
                                 f"row sums from {sums.min():.3f} to {sums.max():.3f}",
                                 self.known_mistake(case, outputs) or SUM_HINT, "weights")
        return super().judge(case, outputs, modified)


AdditiveAttention = AttentionExercise(
    "AdditiveAttention", "torch_module", "AdditiveAttention", _attention_cases,
    ("weights", "context", *[f"d{p}" for p in ATTENTION_PARAMS], "dquery", "dkeys"),
    mistakes=[
        Mistake("padded positions got weight: " + MASK_HINT, _attention_mistake("no mask"),
                _learner_module("AdditiveAttention", _wrong_attention_no_mask)),
        Mistake("the softmax went over the batch axis (dim=0): the weights must sum to 1 over the source "
                "positions of each example, dim=1.", _attention_mistake("dim 0"),
                _learner_module("AdditiveAttention", _wrong_attention_softmax_over_batch)),
        Mistake("masking after the softmax leaves each row summing to less than 1: mask the scores "
                "(with -inf) before the softmax instead.", _attention_mistake("after"),
                _learner_module("AdditiveAttention", _wrong_attention_mask_after_softmax)),
        Mistake("a score of 0 does not mean 'no weight': exp(0) = 1. Fill the padded scores with "
                "float('-inf') instead.", _attention_mistake("zero"),
                _learner_module("AdditiveAttention", _wrong_attention_mask_with_zero)),
        Mistake("the tanh is missing: score = v . tanh(W_q q + W_k k).", _attention_mistake("no tanh"),
                _learner_module("AdditiveAttention", _wrong_attention_no_tanh)),
        Mistake("W_q and W_k are swapped: W_q projects the query, W_k the keys.", _attention_mistake("swapped")),
        Mistake("the context is a weighted sum of the keys themselves, not of W_k(keys): "
                "(weights[:, :, None] * keys).sum(dim=1).", _attention_mistake("projected"),
                _learner_module("AdditiveAttention", _wrong_attention_projected_context)),
    ],
    hints={"weights": "scores = self.v(torch.tanh(self.W_q(query)[:, None] + self.W_k(keys)))[..., 0], (N, S); "
                      "mask them with -inf; weights = softmax over dim=1.",
           "weights.shape": "weights should be (N, S), one weight per source position: squeeze the last axis of "
                            "self.v(...), which is (N, S, 1).",
           "weights.finite": "nan weights come from a row whose every score is -inf: mask where mask is False "
                             "(the padding, ~mask), not where it is True.",
           "context": "context = (weights[:, :, None] * keys).sum(dim=1), or torch.bmm(weights[:, None], keys)[:, 0].",
           "context.shape": "context should be (N, Hk), one weighted sum of the keys per example: "
                            "(weights[:, :, None] * keys).sum(dim=1).",
           "crash": "query (N, Hq) needs a source axis to be added to W_k(keys) (N, S, A): W_q(query)[:, None] is "
                    "(N, 1, A); self.v(...) is (N, S, 1), and [..., 0] makes it (N, S). The mask is a bool "
                    "tensor: ~mask is the padding."},
)
AdditiveAttention.hints.update({f"d{p}": "the outputs are right, so autograd's gradients follow: keep to torch "
                                          "operations (no .detach(), .numpy() or in-place changes of an input)."
                                 for p in (*ATTENTION_PARAMS, "query", "keys")})

# --- 11.2: AttentionDecoder ----------------------------------------------------------------------

DECODER_PARAMS = ("embedding.weight", "attention.W_q.weight", "attention.W_k.weight", "attention.v.weight",
                  "rnn.weight_ih", "rnn.weight_hh", "rnn.bias_ih", "rnn.bias_hh", "out.weight", "out.bias")


def _decoder_cases(rng):
    cases = []
    for label, (N, T, S, V, E, H, A), kind, seed in [
            ("fixed inputs, N=3, T=4, S=5, V=6, E=3, H=4, A=2", (3, 4, 5, 6, 3, 4, 2), "zeros", 0),
            ("random inputs, one step (T=1), N=2", (2, 1, 4, 5, 2, 3, 3), None, None),
            ("random inputs, N=1, S=1", (1, 3, 1, 5, 3, 2, 2), None, None),
            ("random inputs, E=H=A=3", (3, 3, 6, 7, 3, 3, 3), None, None),
            ("random inputs, no padding, N=4, T=5, S=3", (4, 5, 3, 6, 2, 4, 3), "full", None)]:
        g = _seed(rng, seed)
        lengths = _lengths(g, N, S, kind == "full")
        if kind == "zeros" and N > 1:
            lengths[1] = 2
        mask = _mask(lengths, S)
        enc_outputs = g.standard_normal((N, S, H))
        if kind == "zeros":
            enc_outputs = np.tanh(enc_outputs) * mask[..., None]  # as an encoder returns them: 0 on padding
        state = {"embedding.weight": g.standard_normal((V, E)),
                 "attention.W_q.weight": g.standard_normal((A, H)) / np.sqrt(H),
                 "attention.W_k.weight": g.standard_normal((A, H)) / np.sqrt(H),
                 "attention.v.weight": g.standard_normal((1, A)) * 2,
                 "rnn.weight_ih": g.standard_normal((3 * H, E + H)) / np.sqrt(E + H),
                 "rnn.weight_hh": g.standard_normal((3 * H, H)) / np.sqrt(H),
                 "rnn.bias_ih": g.standard_normal(3 * H) * 0.5, "rnn.bias_hh": g.standard_normal(3 * H) * 0.5,
                 "out.weight": g.standard_normal((V, 2 * H)) / np.sqrt(2 * H), "out.bias": g.standard_normal(V) * 0.5}
        args = {"tokens": g.integers(0, V, size=(N, T)), "hidden": np.tanh(g.standard_normal((N, H))),
                "enc_outputs": enc_outputs, "src_mask": mask}
        cases.append(Case(label, args, options={"plan": {
            "init": {"vocab_size": V, "embed_size": E, "hidden_size": H, "attention_size": A}, "state": state,
            "returns": ("logits", "hidden", "weights"), "name": "AttentionDecoder",
            "douts": {"logits": g.standard_normal((N, T, V)), "hidden": g.standard_normal((N, H)),
                      "weights": g.standard_normal((N, T, S))},
            "grad_wrt": ("hidden", "enc_outputs")}}))
    return cases


def _decoder_mistake(kind):
    """The attention decoder's loop as a learner with a given misunderstanding writes it."""
    def outputs(case):
        import torch

        dec, t = _module(case, "AttentionDecoder"), _tensors(case)
        tokens, hidden, keys, mask = t["tokens"], t["hidden"], t["enc_outputs"], t["src_mask"]
        if kind == "no mask":
            mask = torch.ones_like(mask)
        with torch.no_grad():
            embedded = dec.embedding(tokens)
            context = torch.zeros_like(hidden)
            logits, weights = [], []
            for step in range(tokens.shape[1]):
                if kind != "new state":
                    context, w = dec.attention(hidden, keys, mask)
                rnn_in = [context, embedded[:, step]] if kind == "rnn order" else [embedded[:, step], context]
                prev, hidden = hidden, dec.rnn(torch.cat(rnn_in, dim=1), hidden)
                if kind == "new state":  # attends with the new state; the GRU read the previous context
                    context, w = dec.attention(hidden, keys, mask)
                out_in = {"out order": [context, hidden], "old state": [prev, context]}.get(kind, [hidden, context])
                logits.append(dec.out(torch.cat(out_in, dim=1)))
                weights.append(w)
            if kind == "initial hidden":
                hidden = t["hidden"]
        return _arrays(logits=torch.stack(logits, dim=1), hidden=hidden, weights=torch.stack(weights, dim=1))
    return outputs


def _wrong_decoder_loop(self, tokens, hidden, enc_outputs, src_mask, rnn_in="ec", out_in="hc", mask=True,
                        new_state=False, keep_first=False):
    """A learner's AttentionDecoder loop: the GRU cell reads ``rnn_in`` (e embedding, c context), the output layer
    ``out_in`` (h new state, p previous state, c context); the attention uses src_mask (``mask``) and the state
    before the step (or, ``new_state``, after it); the returned state is the last one (or, ``keep_first``, the
    first)."""
    import torch

    embedded, first = self.embedding(tokens), hidden
    logits, weights, context = [], [], torch.zeros_like(hidden)
    mask_used = src_mask if mask else torch.ones_like(src_mask)
    for t in range(tokens.shape[1]):
        if not new_state:
            context, w = self.attention(hidden, enc_outputs, mask_used)
        parts = {"e": embedded[:, t], "c": context}
        previous, hidden = hidden, self.rnn(torch.cat([parts[k] for k in rnn_in], dim=1), hidden)
        if new_state:
            context, w = self.attention(hidden, enc_outputs, mask_used)
        parts = {"h": hidden, "c": context, "p": previous}
        logits.append(self.out(torch.cat([parts[k] for k in out_in], dim=1)))
        weights.append(w)
    return torch.stack(logits, 1), first if keep_first else hidden, torch.stack(weights, 1)


def _wrong_decoder(name, **mistake):
    """A learner's AttentionDecoder whose loop is ``_wrong_decoder_loop`` with ``mistake``."""
    def forward(self, tokens, hidden, enc_outputs, src_mask):
        return _wrong_decoder_loop(self, tokens, hidden, enc_outputs, src_mask, **mistake)
    forward.__name__ = name
    return _learner_module("AttentionDecoder", forward)


_wrong_decoder_no_mask = _wrong_decoder("no_mask", mask=False)  # src_mask not passed to the attention
_wrong_decoder_luong = _wrong_decoder("luong", new_state=True)  # attends with the new state, after the GRU step
_wrong_decoder_rnn_in_swapped = _wrong_decoder("rnn_in_swapped", rnn_in="ce")  # the GRU reads [context; embedding]
_wrong_decoder_out_in_swapped = _wrong_decoder("out_in_swapped", out_in="ch")  # the output reads [context; state]
_wrong_decoder_out_old_state = _wrong_decoder("out_old_state", out_in="pc")  # the output reads the previous state
_wrong_decoder_first_state = _wrong_decoder("first_state", keep_first=True)  # returns the state it started from


class AttentionDecoderExercise(TorchExercise):
    """Says so when the learner's AttentionDecoder cannot run because their AdditiveAttention is a stub."""

    def not_attempted(self, message: str = "") -> Verdict:
        """Names AdditiveAttention (exercise 11.1) when it is the stub that stops the decoder."""
        if "AdditiveAttention" in message:
            return Verdict(self.name, "not attempted", [
                f"{TODO} {self.name}: cannot be checked yet: it uses your AdditiveAttention, which still raises "
                "NotImplementedError (exercise 11.1)."])
        return super().not_attempted(message)


AttentionDecoder = AttentionDecoderExercise(
    "AttentionDecoder", "torch_module", "AttentionDecoder", _decoder_cases,
    ("weights", "logits", "hidden", *[f"d{p}" for p in DECODER_PARAMS], "dhidden", "denc_outputs"),
    mistakes=[
        Mistake("the source mask was not used: pass src_mask to self.attention, so that padded source "
                "positions get no weight.", _decoder_mistake("no mask"), _wrong_decoder_no_mask),
        Mistake("Bahdanau's decoder attends with the state *before* the step: compute context, w = "
                "self.attention(hidden, ...) first, then update hidden with [embedding; context].",
                _decoder_mistake("new state"), _wrong_decoder_luong),
        Mistake("the GRU cell reads [embedding; context], in this order: torch.cat([embedded[:, t], context], dim=1).",
                _decoder_mistake("rnn order"), _wrong_decoder_rnn_in_swapped),
        Mistake("the output layer reads [new state; context], in this order: torch.cat([hidden, context], dim=1).",
                _decoder_mistake("out order"), _wrong_decoder_out_in_swapped),
        Mistake("the output layer should read the *new* state, after the GRU step, with the context: "
                "self.out(torch.cat([hidden, context], dim=1)).", _decoder_mistake("old state"),
                _wrong_decoder_out_old_state),
        Mistake("the returned hidden is the state you started from: return the state after the last step.",
                _decoder_mistake("initial hidden"), _wrong_decoder_first_state),
    ],
    hints={"weights": "at step t: context, w = self.attention(hidden, enc_outputs, src_mask) with the state "
                      "before the step; stack the T weights along dim=1. (Does check.AdditiveAttention pass?)",
           "weights.shape": "weights should be (N, T, S), the S weights of each of the T steps: "
                            "torch.stack(list_of_T_weights, dim=1).",
           "logits": "at step t: context first (from the previous state), then hidden = self.rnn(torch.cat("
                     "[embedded[:, t], context], dim=1), hidden), then logits_t = self.out(torch.cat([hidden, "
                     "context], dim=1)); stack along dim=1.",
           "logits.shape": "logits should be (N, T, V): one (N, V) row of scores per step, stacked along dim=1.",
           "hidden": "return the state after the last step, (N, H).",
           "crash": "nn.GRUCell takes (N, E + H) and (N, H) and returns (N, H), one step at a time: loop over "
                    "t in range(T). self.attention(hidden, enc_outputs, src_mask) returns (context (N, H), "
                    "weights (N, S)); check.AdditiveAttention should pass first."},
)
AttentionDecoder.hints.update({f"d{p}": "the outputs are right, so autograd's gradients follow: keep to torch "
                                         "operations (no .detach(), .numpy() or in-place changes of an input)."
                                for p in (*DECODER_PARAMS, "hidden", "enc_outputs")})
