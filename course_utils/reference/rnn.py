"""Vanilla RNN and the temporal affine layer, forward and backward.

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


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one time step.

    dnext_h: (N, H), upstream gradient of next_h.
    Returns dx: (N, D), dprev_h: (N, H), dWx: (D, H), dWh: (H, H), db: (H,).
    """
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)  # tanh'(a) = 1 - tanh(a)^2, from the output
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


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


def rnn_backward(dh, cache):
    """Backpropagation through time.

    dh: (N, T, H), the upstream gradient of every hidden state (from the layers above).
    Returns dx: (N, T, D), dh0: (N, H), dWx: (D, H), dWh: (H, H), db: (H,).
    """
    caches = cache
    T = dh.shape[1]
    dxs = [None] * T
    dWx, dWh, db = 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        # h_t feeds both the layer above (dh[:, t]) and the next step (dprev_h).
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, caches[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t  # shared weights: gradients add up
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


def temporal_affine_forward(x, W, b):
    """The same affine map applied at every time step.

    x: (N, T, H), W: (H, M), b: (M,). Returns out: (N, T, M) and a cache.
    """
    out = x @ W + b
    return out, (x, W)


def temporal_affine_backward(dout, cache):
    """dout: (N, T, M). Returns dx: (N, T, H), dW: (H, M), db: (M,)."""
    x, W = cache
    H, M = W.shape
    dx = dout @ W.T
    dW = x.reshape(-1, H).T @ dout.reshape(-1, M)
    db = dout.sum(axis=(0, 1))
    return dx, dW, db
