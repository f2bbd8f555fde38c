"""Pieces of a character-level language model: embedding, loss, sampling.

Shapes: N batch, T time steps, D embedding size, V vocabulary size.
"""
from __future__ import annotations

import numpy as np

from .basics import softmax


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
