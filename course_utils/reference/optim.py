"""Optimisers. Pure functions: they return new arrays and never modify their inputs."""
from __future__ import annotations

import numpy as np


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
