"""Activations, gradient checking and gradient clipping.

Every function keeps the dtype of its inputs and never modifies them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid 1 / (1 + exp(-x)), elementwise, without overflow.

    x: any shape. Returns an array of the same shape and dtype.
    """
    # exp of a non-positive number never overflows; both branches equal sigmoid(x).
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for large scores.

    scores: (..., V). Returns probabilities of the same shape and dtype; each row sums to 1.
    """
    # Subtracting each row's maximum changes nothing mathematically and keeps exp <= 1.
    shifted = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


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


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> tuple[dict, float]:
    """Scale all gradients together so that their global L2 norm is at most max_norm.

    grads: name -> array. Returns (clipped, total_norm): new arrays under the same names,
    and the global norm sqrt(sum of every squared entry) before clipping, as a float.
    """
    total_norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads.values())))
    scale = max_norm / total_norm if total_norm > max_norm else 1.0
    clipped = {name: g * g.dtype.type(scale) for name, g in grads.items()}
    return clipped, total_norm
