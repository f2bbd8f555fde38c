"""Notebook 04's language-model checks (lm_forward, lm_loss_and_grads, lm_train_step) and the
stable traps of temporal_softmax_loss: correct code written differently passes under several
seeds, realistic mistakes are rejected with a hint that names the cause, a stub is "not
attempted yet", and the solution notebook grades full marks.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from conftest import SOLUTIONS
from course_utils import reference as ref
from course_utils.check import EXERCISES

SEEDS = (1, 2, 3)
NAMES = ("lm_forward", "lm_loss_and_grads", "lm_train_step")


def run(exercise, *funcs, seed=0):
    return EXERCISES[exercise].run(*funcs, rng=np.random.default_rng(seed))


# --- a learner's own pieces, written differently from the reference ---------------------------


def my_embedding_forward(x, W):
    return np.take(W, x, axis=0), (x, W)


def my_embedding_backward(dout, cache):
    x, W = cache
    one_hot = np.eye(W.shape[0], dtype=dout.dtype)[x.ravel()]  # (N*T, V)
    return one_hot.T @ dout.reshape(-1, dout.shape[-1])


def my_rnn_forward(x, h0, Wx, Wh, b):
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        hs.append(h)
    return np.stack(hs, axis=1), ref.rnn_forward(x, h0, Wx, Wh, b)[1]


def my_softmax_loss(scores, y, mask):
    N, T, V = scores.shape
    s = scores.reshape(-1, V)
    s = s - s.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    rows, m, count = np.arange(N * T), mask.ravel(), int(mask.sum())
    loss = -logp[rows, y.ravel()][m].sum() / count
    d = np.exp(logp)
    d[rows, y.ravel()] -= 1
    d[~m] = 0
    return float(loss), (d / count).reshape(N, T, V)


def lm_forward_own_pieces(params, x, h0):
    emb, c1 = my_embedding_forward(x, params["W_embed"])
    h, c2 = my_rnn_forward(emb, h0, params["Wx"], params["Wh"], params["b"])
    scores = np.einsum("nth,hv->ntv", h, params["W_out"]) + params["b_out"]
    return scores, h[:, h.shape[1] - 1].copy(), {"emb": c1, "rnn": c2, "h": h}


def lm_loss_and_grads_own_pieces(params, x, y, mask, h):
    scores, last_h, cache = lm_forward_own_pieces(params, x, h)
    loss, dscores = my_softmax_loss(scores, y, mask)
    hs = cache["h"]
    grads = {"W_out": np.einsum("nth,ntv->hv", hs, dscores), "b_out": dscores.sum(axis=(0, 1))}
    dh = dscores @ params["W_out"].T
    demb, _, grads["Wx"], grads["Wh"], grads["b"] = ref.rnn_backward(dh, cache["rnn"])
    grads["W_embed"] = my_embedding_backward(demb, cache["emb"])
    return loss, grads, last_h


def lm_loss_and_grads_ignores_mask(params, x, y, mask, h):
    return ref.lm_loss_and_grads(params, x, y, np.ones_like(mask), h)


def lm_loss_and_grads_from_zeros(params, x, y, mask, h):
    return ref.lm_loss_and_grads(params, x, y, mask, np.zeros_like(h))


def lm_loss_and_grads_embedding_from_dh(params, x, y, mask, h):
    scores, last_h, (c_emb, c_rnn, c_out) = ref.lm_forward(params, x, h)
    loss, dscores = ref.temporal_softmax_loss(scores, y, mask)
    g = {}
    dh, g["W_out"], g["b_out"] = ref.temporal_affine_backward(dscores, c_out)
    _, _, g["Wx"], g["Wh"], g["b"] = ref.rnn_backward(dh, c_rnn)
    g["W_embed"] = ref.embedding_backward(dh, c_emb)  # the hidden states' gradient, not the input's
    return loss, g, last_h


def lm_loss_and_grads_swapped_grads(params, x, y, mask, h):
    loss, g, last_h = ref.lm_loss_and_grads(params, x, y, mask, h)
    return loss, {**g, "Wx": g["Wh"], "Wh": g["Wx"]}, last_h


def lm_loss_and_grads_missing_a_gradient(params, x, y, mask, h):
    loss, g, last_h = ref.lm_loss_and_grads(params, x, y, mask, h)
    del g["W_embed"]
    return loss, g, last_h


def lm_forward_first_state(params, x, h0):
    scores, _, cache = ref.lm_forward(params, x, h0)
    h = ref.rnn_forward(ref.embedding_forward(x, params["W_embed"])[0], h0, params["Wx"], params["Wh"], params["b"])[0]
    return scores, h[:, 0], cache


def lm_forward_swapped_weights(params, x, h0):
    return ref.lm_forward({**params, "Wx": params["Wh"], "Wh": params["Wx"]}, x, h0)


# --- training steps -----------------------------------------------------------------------------


def _steps(params, adam, x, y, h, lr, max_norm, clip="global", t_same=False, keep=True, carry=True, pass_lr=True):
    loss, grads, last_h = lm_loss_and_grads_own_pieces(params, x, y, np.ones(y.shape, dtype=bool), h)
    if clip == "global":
        total = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values()))
        scale = min(1.0, max_norm / total)
        grads = {k: (g * scale).astype(g.dtype) for k, g in grads.items()}
    else:
        total = ref.clip_grad_norm(grads, max_norm)[1]
        if clip == "each":
            grads = {k: ref.clip_grad_norm({k: g}, max_norm)[0][k] for k, g in grads.items()}
    t = adam["t"] + 1
    new = {k: ref.adam_step(params[k], grads[k], adam["m"][k], adam["v"][k], t, lr if pass_lr else 1e-3)
           for k in params}
    new_adam = {"t": adam["t"] if t_same else t,
                "m": {k: r[1] for k, r in new.items()} if keep else adam["m"],
                "v": {k: r[2] for k, r in new.items()} if keep else adam["v"]}
    return {k: r[0] for k, r in new.items()}, new_adam, loss, last_h if carry else h, total


def lm_train_step_own(params, adam, x, y, h, lr, max_norm):
    return _steps(params, adam, x, y, h, lr, max_norm)


def lm_train_step_no_clipping(params, adam, x, y, h, lr, max_norm):
    return _steps(params, adam, x, y, h, lr, max_norm, clip="none")


def lm_train_step_clips_each(params, adam, x, y, h, lr, max_norm):
    return _steps(params, adam, x, y, h, lr, max_norm, clip="each")


def lm_train_step_t_not_incremented(params, adam, x, y, h, lr, max_norm):
    return _steps(params, adam, x, y, h, lr, max_norm, t_same=True)


def lm_train_step_t_from_zero(params, adam, x, y, h, lr, max_norm):
    # adam_step called with t = adam["t"], which is 0 on the first step: 1 - beta**0 = 0
    loss, grads, last_h = ref.lm_loss_and_grads(params, x, y, np.ones(y.shape, dtype=bool), h)
    grads, total = ref.clip_grad_norm(grads, max_norm)
    new = {k: ref.adam_step(params[k], grads[k], adam["m"][k], adam["v"][k], adam["t"], lr) for k in params}
    return ({k: r[0] for k, r in new.items()},
            {"t": adam["t"] + 1, "m": {k: r[1] for k, r in new.items()}, "v": {k: r[2] for k, r in new.items()}},
            loss, last_h, total)


def lm_train_step_moments_dropped(params, adam, x, y, h, lr, max_norm):
    return _steps(params, adam, x, y, h, lr, max_norm, keep=False)


def lm_train_step_state_not_handed_on(params, adam, x, y, h, lr, max_norm):
    return _steps(params, adam, x, y, h, lr, max_norm, carry=False)


def lm_train_step_default_lr(params, adam, x, y, h, lr, max_norm):
    return _steps(params, adam, x, y, h, lr, max_norm, pass_lr=False)


def lm_train_step_in_place(params, adam, x, y, h, lr, max_norm):
    new_params, new_adam, loss, last_h, total = _steps(params, adam, x, y, h, lr, max_norm)
    for k in params:
        params[k][...] = new_params[k]  # the caller's arrays change
    return params, new_adam, loss, last_h, total


CORRECT = [
    ("lm_forward", lm_forward_own_pieces),
    ("lm_loss_and_grads", lm_loss_and_grads_own_pieces),
    ("lm_train_step", lm_train_step_own),
]
WRONG = [  # (exercise, function, words of the hint, words of the message)
    ("lm_forward", lm_forward_first_state, "h[:, -1]", "`last_h` is wrong"),
    ("lm_forward", lm_forward_swapped_weights, "Wx and Wh are swapped", ""),
    ("lm_loss_and_grads", lm_loss_and_grads_ignores_mask, "pass the mask you were given", "`loss` is wrong"),
    ("lm_loss_and_grads", lm_loss_and_grads_from_zeros, "starts from zeros instead of h0", ""),
    ("lm_loss_and_grads", lm_loss_and_grads_embedding_from_dh, "feed embedding_backward the first value", ""),
    ("lm_loss_and_grads", lm_loss_and_grads_swapped_grads, "grads['Wx'] and grads['Wh'] are swapped", ""),
    ("lm_loss_and_grads", lm_loss_and_grads_missing_a_gradient, "should be a dict with the keys", ""),
    ("lm_train_step", lm_train_step_no_clipping, "the gradients are not clipped", ""),
    ("lm_train_step", lm_train_step_clips_each, "you clip each gradient by its own norm", ""),
    ("lm_train_step", lm_train_step_t_not_incremented, "Adam's step count does not grow", ""),
    ("lm_train_step", lm_train_step_t_from_zero, "the first step is t = 1", "nan"),
    ("lm_train_step", lm_train_step_moments_dropped, "the running averages are not kept", ""),
    ("lm_train_step", lm_train_step_state_not_handed_on, "return the last hidden state of this batch", ""),
    ("lm_train_step", lm_train_step_default_lr, "pass lr to adam_step", ""),
    ("lm_train_step", lm_train_step_in_place, "work on new arrays", "params['W_embed']"),
]


@pytest.mark.parametrize("exercise", NAMES)
def test_reference_passes_in_well_under_a_second(exercise):
    start = time.perf_counter()
    verdict = EXERCISES[exercise].run(getattr(ref, exercise))
    assert verdict.status == "passed", verdict.message
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("exercise, fn", CORRECT, ids=[c[1].__name__ for c in CORRECT])
def test_correct_code_written_differently_passes(exercise, fn, seed):
    verdict = run(exercise, fn, seed=seed)
    assert verdict.status == "passed", verdict.message


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("exercise, fn, hint, message", WRONG, ids=[w[1].__name__ for w in WRONG])
def test_mistake_is_rejected_with_a_hint_naming_its_cause(exercise, fn, hint, message, seed):
    verdict = run(exercise, fn, seed=seed)
    assert verdict.status == "wrong", verdict.message
    assert hint in verdict.message, verdict.message
    assert message in verdict.message, verdict.message


@pytest.mark.parametrize("exercise", NAMES)
def test_stub_is_not_attempted(exercise):
    def stub(*args):
        raise NotImplementedError(exercise)
    verdict = run(exercise, stub)
    assert verdict.status == "not attempted" and "not attempted yet" in verdict.message


# --- temporal_softmax_loss: the numerical traps give the same verdict on every draw -----------------


def _loss_parts(scores, y, mask, log_of_probs, shift, clamp=0.0):
    s = scores - scores.max(axis=-1, keepdims=True) if shift else scores
    with np.errstate(all="ignore"):
        probs = np.exp(s) / np.exp(s).sum(axis=-1, keepdims=True)
        one_hot = np.eye(scores.shape[-1], dtype=scores.dtype)[y]
        count = int(mask.sum())
        if log_of_probs:
            logp = np.log((probs * one_hot).sum(axis=-1) + clamp)
        else:
            logp = (s - np.log(np.exp(s).sum(axis=-1, keepdims=True)))[one_hot.astype(bool)].reshape(y.shape)
    return float(-(logp * mask).sum() / count), (probs - one_hot) * mask[..., None] / count


def loss_log_of_shifted_probabilities(scores, y, mask):
    return _loss_parts(scores, y, mask, log_of_probs=True, shift=True)


def loss_without_shift(scores, y, mask):
    return _loss_parts(scores, y, mask, log_of_probs=True, shift=False)


def loss_log_softmax_without_shift(scores, y, mask):
    return _loss_parts(scores, y, mask, log_of_probs=False, shift=False)


def loss_log_of_clamped_probabilities(scores, y, mask):
    return _loss_parts(scores, y, mask, log_of_probs=True, shift=True, clamp=1e-12)


TRAPS = [(loss_log_of_shifted_probabilities, "correct class 800 below", "np.log(0) is -inf"),
         (loss_log_of_clamped_probabilities, "correct class 800 below", "Compute log p directly"),
         (loss_without_shift, "every score about 1000", "subtract each row's maximum"),
         (loss_log_softmax_without_shift, "every score about 1000", "subtract each row's maximum")]


@pytest.mark.parametrize("fn, case, hint", TRAPS, ids=[t[0].__name__ for t in TRAPS])
def test_fragile_loss_gets_the_same_verdict_and_the_real_cause_on_every_seed(fn, case, hint):
    messages = {run("temporal_softmax_loss", fn, seed=seed).message for seed in range(200)}
    assert len(messages) == 1, messages
    (message,) = messages
    assert message.startswith("✗") and case in message and hint in message, message


def test_the_reference_passes_the_traps_on_every_seed():
    for seed in range(50):
        assert run("temporal_softmax_loss", ref.temporal_softmax_loss, seed=seed)


# --- the grader ---------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox needs Linux")
def test_notebook_04_grades_full_marks(tmp_path):
    import grading_corpus as corpus

    from course_utils.grading import Limits, Options, grade

    name = "04_char_rnn_numpy.ipynb"
    corpus.write(corpus.load(SOLUTIONS / name), tmp_path / "solutions" / name)
    corpus.write(corpus.load(SOLUTIONS / name), tmp_path / "subs" / "instructor" / name)
    results = grade(tmp_path / "subs", tmp_path / "out", Options(
        solutions=tmp_path / "solutions", seed="test-seed", jobs=2, progress=False, limits=Limits(wall=60, cpu=60)))
    (student,) = results["students"]
    assert {e["exercise"]: e["status"] for e in student["exercises"] if e["status"] != "passed"} == {}
    assert student["total"] == results["course"]["possible"] > 0
    assert {e["exercise"] for e in student["exercises"]} >= set(NAMES)
