"""Notebook 04: a character-level language model: embedding, loss, the model, Adam, a training step, sampling.

Shapes: N batch, T time steps, D embedding size, V vocabulary size.
"""
from __future__ import annotations

import numpy as np

from course_utils.lessons.nb00_welcome.reference import softmax
from course_utils.lessons.nb01_rnn_forward.reference import rnn_forward, temporal_affine_forward
from course_utils.lessons.nb02_bptt.reference import rnn_backward, temporal_affine_backward
from course_utils.lessons.nb03_vanishing_exploding.reference import clip_grad_norm


def embedding_forward(x, W):
    """x: int (N, T) token ids, W: (V, D). Returns out: (N, T, D) with out[n, t] = W[x[n, t]], cache."""
    out = W[x]
    return out, (x, W.shape)


def embedding_backward(dout, cache):
    """dout: (N, T, D). Returns dW: (V, D).

    A token that occurs several times collects the gradient of every occurrence:
    np.add.at adds repeated indices, where dW[x] += dout would keep only one of them.
    """
    x, shape = cache
    dW = np.zeros(shape, dtype=dout.dtype)
    np.add.at(dW, x, dout)
    return dW


def temporal_softmax_loss(scores, y, mask):
    """Mean cross-entropy over the positions where mask is true.

    scores: (N, T, V) unnormalised, y: int (N, T) targets, mask: bool (N, T).
    Returns loss (float) and dscores: (N, T, V).
    """
    count = mask.sum()
    shifted = scores - scores.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]  # (N, T)
    loss = float(np.sum(nll * mask) / count)
    dscores = np.exp(log_probs)  # probabilities
    np.put_along_axis(dscores, y[..., None], np.take_along_axis(dscores, y[..., None], axis=-1) - 1, axis=-1)
    dscores *= (mask / count)[..., None].astype(dscores.dtype)
    return loss, dscores


def sample_with_temperature(logits, temperature, rng):
    """Draw one token per row from softmax(logits / temperature).

    logits: (N, V); temperature >= 0, where 0 means argmax; rng: numpy.random.Generator.
    Returns int (N,).
    """
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    probs = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    # Inverse-CDF sampling: the first token whose cumulative probability exceeds u.
    u = rng.random((probs.shape[0], 1))
    idx = (probs.cumsum(axis=-1) < u).sum(axis=-1)
    return np.minimum(idx, probs.shape[-1] - 1)


# --- the character-level language model of notebook 04 -----------------------------------
# params: a dict of float arrays, W_embed (V, D), Wx (D, H), Wh (H, H), b (H,), W_out (H, V), b_out (V,).

PARAM_NAMES = ("W_embed", "Wx", "Wh", "b", "W_out", "b_out")


def lm_forward(params, x, h0):
    """x: int (N, T), h0: (N, H). Returns scores (N, T, V), the last hidden state (N, H), cache."""
    emb, emb_cache = embedding_forward(x, params["W_embed"])  # (N, T, D)
    h, rnn_cache = rnn_forward(emb, h0, params["Wx"], params["Wh"], params["b"])  # (N, T, H)
    scores, out_cache = temporal_affine_forward(h, params["W_out"], params["b_out"])  # (N, T, V)
    return scores, h[:, -1], (emb_cache, rnn_cache, out_cache)


def lm_loss_and_grads(params, x, y, mask, h0):
    """x, y: int (N, T) inputs and next tokens, mask: bool (N, T), h0: (N, H).

    Returns the loss (nats, mean over the masked positions), the gradients (a dict with the
    names of params) and the last hidden state (N, H). The gradient of h0 is dropped:
    truncated backpropagation through time.
    """
    scores, last_h, (emb_cache, rnn_cache, out_cache) = lm_forward(params, x, h0)
    loss, dscores = temporal_softmax_loss(scores, y, mask)
    grads = {}
    dh, grads["W_out"], grads["b_out"] = temporal_affine_backward(dscores, out_cache)
    demb, _dh0, grads["Wx"], grads["Wh"], grads["b"] = rnn_backward(dh, rnn_cache)
    grads["W_embed"] = embedding_backward(demb, emb_cache)
    return loss, grads, last_h


def lm_train_step(params, adam, x, y, h, lr, max_norm):
    """One training step on one batch: loss and gradients, global-norm clipping, an Adam step.

    params: dict of arrays; adam: {"t": steps taken so far, "m": dict, "v": dict}; x, y: int (N, T);
    h: (N, H), the state carried from the previous batch. Returns new params, the new Adam state,
    the loss, the last hidden state (N, H) and the gradients' global norm before clipping.
    """
    loss, grads, last_h = lm_loss_and_grads(params, x, y, np.ones(y.shape, dtype=bool), h)
    grads, total_norm = clip_grad_norm(grads, max_norm)
    t = adam["t"] + 1
    new_params, m, v = {}, {}, {}
    for name in params:
        new_params[name], m[name], v[name] = adam_step(params[name], grads[name], adam["m"][name],
                                                       adam["v"][name], t, lr)
    return new_params, {"t": t, "m": m, "v": v}, loss, last_h, total_norm


def adam_step(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of one parameter array (Kingma and Ba, 2015).

    param, grad, m, v: arrays of the same shape; m and v are the running averages of the
    gradient and of its square (zeros before the first step); t is the number of this step,
    starting at 1. Returns (new_param, new_m, new_v).
    """
    m = beta1 * m + (1 - beta1) * grad  # first moment: momentum
    v = beta2 * v + (1 - beta2) * grad**2  # second moment: per-entry scale
    m_hat = m / (1 - beta1**t)  # bias correction: m and v start at zero
    v_hat = v / (1 - beta2**t)
    new_param = param - lr * m_hat / (np.sqrt(v_hat) + eps)
    return new_param, m, v
