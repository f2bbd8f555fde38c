"""Notebook 00: the activations sigmoid and softmax.

Every function keeps the dtype of its inputs and never modifies them.
"""
from __future__ import annotations

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


