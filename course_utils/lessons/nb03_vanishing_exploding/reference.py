"""Notebook 03: measuring how far back a gradient reaches in a vanilla RNN, and clipping gradients.

Shapes: N batch, T time steps, D input size, H hidden size.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def gradient_norm_by_lag(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray,
                         dh_last: np.ndarray, rnn_step_forward: Callable,
                         rnn_step_backward: Callable) -> np.ndarray:
    """The norm of the gradient with respect to every earlier hidden state, by time lag.

    x: (N, T, D), h0: (N, H), Wx: (D, H), Wh: (H, H), b: (H,); dh_last: (N, H), the gradient
    of a loss with respect to the last hidden state h_T (and to nothing else).
    rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache) and
    rnn_step_backward(dnext_h, cache) -> (dx, dprev_h, dWx, dWh, db) are one RNN step.
    Returns norms: (T + 1,), norms[k] the L2 norm over the H units of dL/dh_{T-k}, averaged over
    the N sequences: norms[0] is that of dh_last, norms[T] that of dL/dh_0.
    """
    caches = []
    h = h0
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        caches.append(cache)
    dh = dh_last
    norms = [np.linalg.norm(dh, axis=1).mean()]  # lag 0
    for cache in reversed(caches):  # from the last step back to the first
        _, dh, _, _, _ = rnn_step_backward(dh, cache)  # dL/dh_{t-1} from dL/dh_t
        norms.append(np.linalg.norm(dh, axis=1).mean())
    return np.array(norms, dtype=dh_last.dtype)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> tuple[dict, float]:
    """Scale all gradients together so that their global L2 norm is at most max_norm.

    grads: name -> array. Returns (clipped, total_norm): new arrays under the same names,
    and the global norm sqrt(sum of every squared entry) before clipping, as a float.
    """
    total_norm = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads.values())))
    scale = max_norm / total_norm if total_norm > max_norm else 1.0
    clipped = {name: g * g.dtype.type(scale) for name, g in grads.items()}
    return clipped, total_norm
