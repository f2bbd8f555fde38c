"""Gated recurrent unit with PyTorch's equations, forward and backward.

Shapes: N batch, T time steps, D input size, H hidden size.
    ax = x @ Wx + bx,  ah = prev_h @ Wh + bh,  Wx: (D, 3H), Wh: (H, 3H), bx, bh: (3H,)
    blocks r, z, n:   r = sigmoid(ax_r + ah_r),  z = sigmoid(ax_z + ah_z)
                      n = tanh(ax_n + r * ah_n),  next_h = (1 - z) * n + z * prev_h
"""
from __future__ import annotations

import numpy as np

from course_utils.lessons.nb00_welcome.reference import sigmoid


def gru_step_forward(x, prev_h, Wx, Wh, bx, bh):
    """x: (N, D), prev_h: (N, H). Returns next_h: (N, H), cache."""
    H = prev_h.shape[1]
    ax = x @ Wx + bx
    ah = prev_h @ Wh + bh
    r = sigmoid(ax[:, :H] + ah[:, :H])  # reset gate
    z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])  # update gate
    ah_n = ah[:, 2 * H:]
    n = np.tanh(ax[:, 2 * H:] + r * ah_n)  # candidate state
    next_h = (1 - z) * n + z * prev_h
    cache = (x, prev_h, Wx, Wh, r, z, n, ah_n)
    return next_h, cache


def gru_step_backward(dnext_h, cache):
    """dnext_h: (N, H).

    Returns dx: (N, D), dprev_h: (N, H), dWx: (D, 3H), dWh: (H, 3H), dbx: (3H,), dbh: (3H,).
    """
    x, prev_h, Wx, Wh, r, z, n, ah_n = cache
    dn = dnext_h * (1 - z)
    dz = dnext_h * (prev_h - n)
    dan = dn * (1 - n**2)  # gradient of the pre-activation of n
    dr = dan * ah_n
    dar = dr * r * (1 - r)
    daz = dz * z * (1 - z)
    dax = np.concatenate([dar, daz, dan], axis=1)  # gradient of ax
    dah = np.concatenate([dar, daz, dan * r], axis=1)  # gradient of ah: r scales ah_n
    dx = dax @ Wx.T
    dprev_h = dnext_h * z + dah @ Wh.T
    dWx = x.T @ dax
    dWh = prev_h.T @ dah
    return dx, dprev_h, dWx, dWh, dax.sum(axis=0), dah.sum(axis=0)


def gru_forward(x, h0, Wx, Wh, bx, bh):
    """x: (N, T, D), h0: (N, H). Returns h: (N, T, H), cache."""
    prev_h = h0
    hs, caches = [], []
    for t in range(x.shape[1]):
        prev_h, step_cache = gru_step_forward(x[:, t], prev_h, Wx, Wh, bx, bh)
        hs.append(prev_h)
        caches.append(step_cache)
    return np.stack(hs, axis=1), caches


def gru_backward(dh, cache):
    """dh: (N, T, H).

    Returns dx: (N, T, D), dh0: (N, H), dWx: (D, 3H), dWh: (H, 3H), dbx: (3H,), dbh: (3H,).
    """
    caches = cache
    T = dh.shape[1]
    dxs = [None] * T
    dWx, dWh, dbx, dbh = 0, 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        dxs[t], dprev_h, dWx_t, dWh_t, dbx_t, dbh_t = gru_step_backward(dh[:, t] + dprev_h, caches[t])
        dWx, dWh, dbx, dbh = dWx + dWx_t, dWh + dWh_t, dbx + dbx_t, dbh + dbh_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, dbx, dbh
