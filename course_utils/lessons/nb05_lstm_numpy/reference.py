"""Long short-term memory, forward and backward.

Shapes: N batch, T time steps, D input size, H hidden size.
    a = x @ Wx + prev_h @ Wh + b,   Wx: (D, 4H), Wh: (H, 4H), b: (4H,)
    the blocks of a are i, f, g, o (PyTorch's order); i, f, o = sigmoid, g = tanh
    next_c = f * prev_c + i * g,    next_h = o * tanh(next_c)
"""
from __future__ import annotations

import numpy as np

from course_utils.lessons.nb00_welcome.reference import sigmoid


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """x: (N, D), prev_h, prev_c: (N, H). Returns next_h, next_c: (N, H), cache."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = sigmoid(a[:, 0 * H:1 * H])  # input gate
    f = sigmoid(a[:, 1 * H:2 * H])  # forget gate
    g = np.tanh(a[:, 2 * H:3 * H])  # candidate cell
    o = sigmoid(a[:, 3 * H:4 * H])  # output gate
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c)
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """dnext_h, dnext_c: (N, H).

    Returns dx: (N, D), dprev_h: (N, H), dprev_c: (N, H), dWx: (D, 4H), dWh: (H, 4H), db: (4H,).
    """
    x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c = cache
    # next_c reaches the loss directly (dnext_c) and through next_h = o * tanh(next_c).
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    do = dnext_h * tanh_c
    di, df, dg = dc * g, dc * prev_c, dc * i
    dprev_c = dc * f
    # Back through the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - t^2.
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)], axis=1)
    dx = da @ Wx.T
    dprev_h = da @ Wh.T
    dWx = x.T @ da
    dWh = prev_h.T @ da
    db = da.sum(axis=0)
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """x: (N, T, D), h0: (N, H); the initial cell state is zero. Returns h: (N, T, H), cache."""
    prev_h, prev_c = h0, np.zeros_like(h0)
    hs, caches = [], []
    for t in range(x.shape[1]):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        hs.append(prev_h)
        caches.append(step_cache)
    return np.stack(hs, axis=1), caches


def lstm_backward(dh, cache):
    """dh: (N, T, H). Returns dx: (N, T, D), dh0: (N, H), dWx: (D, 4H), dWh: (H, 4H), db: (4H,)."""
    caches = cache
    T = dh.shape[1]
    dxs = [None] * T
    dWx, dWh, db = 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    dprev_c = np.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        dxs[t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t] + dprev_h, dprev_c, caches[t]
        )
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db
