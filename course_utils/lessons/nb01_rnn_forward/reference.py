"""Notebook 01: the vanilla RNN and the temporal affine layer, forward (the backward passes are notebook 02's).

Shapes: N batch, T time steps, D input size, H hidden size, M output size.
    next_h = tanh(x @ Wx + prev_h @ Wh + b),   Wx: (D, H), Wh: (H, H), b: (H,)
"""
from __future__ import annotations

import numpy as np


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One time step.

    x: (N, D), prev_h: (N, H), Wx: (D, H), Wh: (H, H), b: (H,).
    Returns next_h: (N, H) and a cache for rnn_step_backward.
    """
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    return next_h, cache


def rnn_forward(x, h0, Wx, Wh, b):
    """The RNN unrolled over a whole sequence.

    x: (N, T, D), h0: (N, H). Returns h: (N, T, H), the hidden state after every step,
    and a cache (the list of step caches).
    """
    prev_h = h0
    hs, caches = [], []
    for t in range(x.shape[1]):
        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        hs.append(prev_h)
        caches.append(step_cache)
    return np.stack(hs, axis=1), caches


def temporal_affine_forward(x, W, b):
    """The same affine map applied at every time step.

    x: (N, T, H), W: (H, M), b: (M,). Returns out: (N, T, M) and a cache.
    """
    out = x @ W + b
    return out, (x, W)


