"""Proofs of notebook 04's checks (embedding, temporal softmax loss, sampling, Adam, the language
model and its training step), the stable traps of temporal_softmax_loss, and the grading of the
solution notebook.

The catalogued mistakes are proven from course_utils/lessons/nb04_char_rnn_numpy/checks.py; here
are correct code written differently and the wrong code that no catalogue entry names.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from conftest import SOLUTIONS
from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.lessons.nb04_char_rnn_numpy import checks
from proofs import Proofs, run

proofs = Proofs("nb04_char_rnn_numpy")

IN_PLACE_HINT = "work on new arrays"
DTYPE_HINT = "keep the dtype of the inputs"

# --- embedding_forward, embedding_backward -------------------------------------------------------


def embedding_forward_one_hot(x, W):
    one_hot = np.eye(W.shape[0], dtype=W.dtype)[x]  # (N, T, V)
    return one_hot @ W, one_hot


def embedding_forward_take(x, W):
    return np.take(W, x, axis=0), {"x": x, "V": W.shape[0], "dtype": W.dtype}


def embedding_forward_float64_loop(x, W):
    N, T = x.shape
    out = np.zeros((N, T, W.shape[1]))  # float64, whatever W is
    for n in range(N):
        for t in range(T):
            out[n, t] = W[x[n, t]]
    return out, (x, W)


def embedding_backward_one_hot(dout, cache):
    one_hot = cache  # (N, T, V)
    V, D = one_hot.shape[-1], dout.shape[-1]
    return one_hot.reshape(-1, V).T @ dout.reshape(-1, D)


def embedding_backward_loop(dout, cache):
    x = cache["x"]
    dW = np.zeros((cache["V"], dout.shape[-1]), dtype=cache["dtype"])
    for n, t in np.ndindex(x.shape):
        dW[x[n, t]] += dout[n, t]
    return dW


def embedding_backward_float64(dout, cache):
    x = cache["x"]
    dW = np.zeros((cache["V"], dout.shape[-1]))  # float64, whatever dout is
    np.add.at(dW, x, dout)
    return dW


proofs.correct("embedding_forward", embedding_forward_one_hot)
proofs.correct("embedding_forward", embedding_forward_take)
proofs.wrong("embedding_forward", embedding_forward_float64_loop, message="`out` has dtype float64",
             hint=DTYPE_HINT, output="out")
proofs.correct("embedding_backward", embedding_forward_one_hot, embedding_backward_one_hot)
proofs.correct("embedding_backward", embedding_forward_take, embedding_backward_loop)
proofs.wrong("embedding_backward", embedding_forward_take, embedding_backward_float64,
             message="`dW` has dtype float64", hint=DTYPE_HINT, output="dW")

# --- temporal_softmax_loss -----------------------------------------------------------------------


def temporal_softmax_loss_flattened(scores, y, mask):
    N, T, V = scores.shape
    s, y, m = scores.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)
    count = m.sum()
    s = s - s.max(axis=1, keepdims=True)
    log_probs = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    rows = np.arange(N * T)
    loss = -log_probs[rows, y][m].sum() / count
    dscores = np.exp(log_probs)
    dscores[rows, y] -= 1
    dscores[~m] = 0
    dscores /= count
    return float(loss), dscores.reshape(N, T, V)


def temporal_softmax_loss_one_hot(scores, y, mask):
    log_probs = scores - scores.max(axis=-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=-1, keepdims=True))
    one_hot = np.eye(scores.shape[-1], dtype=scores.dtype)[y]
    nll = -(one_hot * log_probs).sum(axis=-1)
    count = int(mask.sum())
    loss = np.where(mask, nll, 0).sum() / count
    dscores = (np.exp(log_probs) - one_hot) * mask[..., None] / count
    return loss, dscores


def _log_softmax(scores):
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def temporal_softmax_loss_unstable(scores, y, mask):
    probs = np.exp(scores) / np.exp(scores).sum(axis=-1, keepdims=True)  # nan for large scores
    one_hot = np.eye(scores.shape[-1], dtype=scores.dtype)[y]
    count = int(mask.sum())
    loss = -(np.log((probs * one_hot).sum(axis=-1)) * mask).sum() / count
    return float(loss), (probs - one_hot) * mask[..., None] / count


def temporal_softmax_loss_divides_by_int64_count(scores, y, mask):
    # mask.sum() is a NumPy int64, and float32 / int64 is float64.
    log_probs = _log_softmax(scores)
    one_hot = np.eye(scores.shape[-1], dtype=scores.dtype)[y]
    loss = -((one_hot * log_probs).sum(axis=-1) * mask).sum() / mask.sum()
    return float(loss), (np.exp(log_probs) - one_hot) * mask[..., None] / mask.sum()


proofs.correct("temporal_softmax_loss", temporal_softmax_loss_flattened)
proofs.correct("temporal_softmax_loss", temporal_softmax_loss_one_hot)
proofs.wrong("temporal_softmax_loss", temporal_softmax_loss_unstable, message="very large scores",
             hint="subtract each row's maximum")
proofs.wrong("temporal_softmax_loss", temporal_softmax_loss_divides_by_int64_count,
             message="`dscores` has dtype float64", hint=DTYPE_HINT, output="dscores")

# --- sample_with_temperature ---------------------------------------------------------------------


def _softmax_rows(z):
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def _draw(probs, rng):
    return np.array([rng.choice(len(p), p=p) for p in probs])


def sample_with_temperature_choice(logits, temperature, rng):
    if temperature == 0:
        return logits.argmax(axis=1)
    return _draw(_softmax_rows(logits / temperature), rng)


def sample_with_temperature_searchsorted(logits, temperature, rng):
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    cdf = np.cumsum(_softmax_rows(logits / temperature), axis=-1)
    u = rng.random(len(logits))
    idx = np.array([np.searchsorted(row, u_n, side="right") for row, u_n in zip(cdf, u)])
    return np.minimum(idx, logits.shape[-1] - 1)  # in case rounding leaves cdf[-1] < u


def sample_with_temperature_gumbel_max(logits, temperature, rng):
    if temperature == 0:
        return logits.argmax(axis=-1)
    return np.argmax(logits / temperature + rng.gumbel(size=logits.shape), axis=-1)


def sample_with_temperature_global_np_random(logits, temperature, rng):
    if temperature == 0:
        return logits.argmax(axis=1)
    return np.array([np.random.choice(len(p), p=p) for p in _softmax_rows(logits / temperature)])


def sample_with_temperature_own_generator(logits, temperature, rng):
    rng = np.random.default_rng(42)  # ignores the generator it was given
    return sample_with_temperature_choice(logits, temperature, rng)


def sample_with_temperature_no_greedy_case(logits, temperature, rng):
    with np.errstate(all="ignore"):
        cdf = np.cumsum(_softmax_rows(logits / temperature), axis=-1)  # nan at temperature 0
    return (cdf < rng.random((len(logits), 1))).sum(axis=-1)


def sample_with_temperature_column(logits, temperature, rng):
    if temperature == 0:
        return logits.argmax(axis=1)
    probs = _softmax_rows(logits / temperature)
    return np.array([rng.choice(len(p), size=1, p=p) for p in probs])  # (N, 1)


def sample_with_temperature_shifts_logits_in_place(logits, temperature, rng):
    logits -= logits.max(axis=-1, keepdims=True)  # the caller's logits change
    return sample_with_temperature_choice(logits, temperature, rng)


proofs.correct("sample_with_temperature", sample_with_temperature_choice)
proofs.correct("sample_with_temperature", sample_with_temperature_searchsorted)
proofs.correct("sample_with_temperature", sample_with_temperature_gumbel_max)
proofs.wrong("sample_with_temperature", sample_with_temperature_global_np_random,
             message="the same generator state gave different samples", hint="draw every random number from the rng")
proofs.wrong("sample_with_temperature", sample_with_temperature_own_generator,
             message="two different generators gave exactly the same samples", hint="use the rng passed in")
proofs.wrong("sample_with_temperature", sample_with_temperature_no_greedy_case,
             message="at temperature 0 the samples are not the argmax", hint="temperature 0 means greedy")
proofs.wrong("sample_with_temperature", sample_with_temperature_column, message="wrong shape",
             hint="one token index per row")
proofs.wrong("sample_with_temperature", sample_with_temperature_shifts_logits_in_place,  # regression
             message="changed its input `logits` in place", hint=IN_PLACE_HINT)

# --- adam_step -----------------------------------------------------------------------------------


def adam_step_folded_correction(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    # Kingma and Ba's "more efficient" form: the bias corrections folded into the step size
    # (and eps scaled to match, so that the result is the same).
    new_m = beta1 * m + (1 - beta1) * grad
    new_v = beta2 * v + (1 - beta2) * grad * grad
    root = math.sqrt(1 - beta2 ** t)
    step_size = lr * root / (1 - beta1 ** t)
    return param - step_size * new_m / (np.sqrt(new_v) + eps * root), new_m, new_v


def adam_step_updates_m_and_v_in_place(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad ** 2
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m.copy(), v.copy()


def adam_step_float64_moments(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    new_m = np.zeros(m.shape)  # float64, whatever the inputs
    new_v = np.zeros(v.shape)
    new_m[...] = beta1 * m + (1 - beta1) * grad
    new_v[...] = beta2 * v + (1 - beta2) * grad ** 2
    m_hat, v_hat = new_m / (1 - beta1 ** t), new_v / (1 - beta2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), new_m, new_v


proofs.correct("adam_step", adam_step_folded_correction)
proofs.wrong("adam_step", adam_step_updates_m_and_v_in_place, message="`m`", hint=IN_PLACE_HINT)
proofs.wrong("adam_step", adam_step_float64_moments, message="has dtype float64", hint=DTYPE_HINT)

# --- the language model: a learner's own pieces, written differently from the reference ----------


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


def lm_loss_and_grads_missing_a_gradient(params, x, y, mask, h):
    loss, g, last_h = ref.lm_loss_and_grads(params, x, y, mask, h)
    del g["W_embed"]
    return loss, g, last_h


proofs.correct("lm_forward", lm_forward_own_pieces)
proofs.correct("lm_loss_and_grads", lm_loss_and_grads_own_pieces)
proofs.wrong("lm_loss_and_grads", lm_loss_and_grads_missing_a_gradient,
             message="does not have the expected form", hint="should be a dict with the keys")

# --- lm_train_step -------------------------------------------------------------------------------


def _adam_all(params, grads, adam, t, lr):
    new = {k: ref.adam_step(params[k], grads[k], adam["m"][k], adam["v"][k], t, lr) for k in params}
    state = {"m": {k: r[1] for k, r in new.items()}, "v": {k: r[2] for k, r in new.items()}}
    return {k: r[0] for k, r in new.items()}, state


def lm_train_step_own(params, adam, x, y, h, lr, max_norm):
    loss, grads, last_h = lm_loss_and_grads_own_pieces(params, x, y, np.ones(y.shape, dtype=bool), h)
    total = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values()))
    scale = min(1.0, max_norm / total)
    grads = {k: (g * scale).astype(g.dtype) for k, g in grads.items()}
    new_params, state = _adam_all(params, grads, adam, adam["t"] + 1, lr)
    return new_params, {"t": adam["t"] + 1, **state}, loss, last_h, total


def lm_train_step_t_from_zero(params, adam, x, y, h, lr, max_norm):
    # adam_step called with t = adam["t"], which is 0 on the first step: 1 - beta**0 = 0
    loss, grads, last_h = ref.lm_loss_and_grads(params, x, y, np.ones(y.shape, dtype=bool), h)
    grads, total = ref.clip_grad_norm(grads, max_norm)
    new_params, state = _adam_all(params, grads, adam, adam["t"], lr)
    return new_params, {"t": adam["t"] + 1, **state}, loss, last_h, total


def lm_train_step_in_place(params, adam, x, y, h, lr, max_norm):
    new_params, new_adam, loss, last_h, total = lm_train_step_own(params, adam, x, y, h, lr, max_norm)
    for k in params:
        params[k][...] = new_params[k]  # the caller's arrays change
    return params, new_adam, loss, last_h, total


proofs.correct("lm_train_step", lm_train_step_own)
proofs.wrong("lm_train_step", lm_train_step_t_from_zero, message="nan", hint="the first step is t = 1")
proofs.wrong("lm_train_step", lm_train_step_in_place, message="params['W_embed']", hint=IN_PLACE_HINT)

globals().update(proofs.tests())


# --- the output a catalogued mistake is blamed on -----------------------------------------------

BLAMED = [("adam_step", checks._wrong_v_not_squared, "new_v"),  # the moments are judged first
          ("lm_forward", checks._wrong_first_state, "last_h"),
          ("lm_loss_and_grads", checks._wrong_mask_of_ones, "loss")]


@pytest.mark.parametrize("exercise, implementation, output", BLAMED, ids=[b[0] for b in BLAMED])
def test_catalogued_mistake_blames_its_output(exercise, implementation, output):
    verdict = run(exercise, *EXERCISES[exercise].with_reference(implementation))
    assert verdict.status == "wrong" and verdict.output == output, verdict.message
    assert f"`{output}` is wrong" in verdict.message, verdict.message


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
    assert {e["exercise"] for e in student["exercises"]} >= {"lm_forward", "lm_loss_and_grads", "lm_train_step"}
