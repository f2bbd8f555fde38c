"""Notebook 02: gradient checking, and the backward passes of the vanilla RNN and the temporal affine layer.

Shapes: N batch, T time steps, D input size, H hidden size, M output size. Every function keeps
the dtype of its inputs and never modifies them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Centred-difference gradient of sum(f(x) * dout) with respect to x.

    f: function of one array, returning an array shaped like dout.
    x: any shape, float64 for accurate results. Left as it was found.
    Returns an array shaped like x:  (L(x + h e_i) - L(x - h e_i)) / 2h for every entry i.
    """
    x = x.copy()  # perturb a private copy: the caller's x is never touched
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


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


def temporal_affine_backward(dout, cache):
    """dout: (N, T, M). Returns dx: (N, T, H), dW: (H, M), db: (M,)."""
    x, W = cache
    H, M = W.shape
    dx = dout @ W.T
    dW = x.reshape(-1, H).T @ dout.reshape(-1, M)
    db = dout.sum(axis=(0, 1))
    return dx, dW, db


