"""Proofs of notebook 01's checks (rnn_step_forward, rnn_forward, temporal_affine_forward).

The catalogued mistakes are proven from course_utils/lessons/nb01_rnn_forward/checks.py; here are
correct code written differently and the wrong code that no catalogue entry names. The correct
forward passes are also the forward halves of notebook 02's proofs (tests/lessons/test_nb02_bptt.py).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from course_utils.check import EXERCISES
from proofs import Proofs

proofs = Proofs("nb01_rnn_forward")

IN_PLACE_HINT = "work on new arrays"
DTYPE_HINT = "keep the dtype of the inputs"
CRASH_HINT = "check the shapes of the arrays in the line that failed"  # and the message names the error

# --- rnn_step_forward ------------------------------------------------------------------


def rnn_step_forward_stacked(x, prev_h, Wx, Wh, b):
    # One product with stacked weights: [x, prev_h] @ [[Wx], [Wh]].
    xh = np.concatenate([x, prev_h], axis=1)
    W = np.concatenate([Wx, Wh], axis=0)
    next_h = np.tanh(xh @ W + b)
    return next_h, {"xh": xh, "W": W, "next_h": next_h, "D": x.shape[1]}


def rnn_step_forward_einsum(x, prev_h, Wx, Wh, b):
    a = np.einsum("nd,dh->nh", x, Wx) + np.einsum("nk,kh->nh", prev_h, Wh) + b
    next_h = np.tanh(a)
    return next_h, {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "a": a, "next_h": next_h}


def rnn_step_forward_weights_swapped(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wh + prev_h @ Wx + b)  # (N, D) @ (H, H): fails unless D == H
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_forward_float64_buffer(x, prev_h, Wx, Wh, b):
    a = np.zeros((x.shape[0], Wh.shape[1]))  # float64, whatever the inputs
    a += x @ Wx + prev_h @ Wh + b
    next_h = np.tanh(a)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_forward_updates_prev_h(x, prev_h, Wx, Wh, b):
    prev_h[:] = np.tanh(x @ Wx + prev_h @ Wh + b)  # "update the state": overwrites the caller's array
    return prev_h, (x, prev_h, Wx, Wh, prev_h)


proofs.correct("rnn_step_forward", rnn_step_forward_stacked)
proofs.correct("rnn_step_forward", rnn_step_forward_einsum)
proofs.wrong("rnn_step_forward", rnn_step_forward_weights_swapped, hint=CRASH_HINT, message="ValueError: matmul")
proofs.wrong("rnn_step_forward", rnn_step_forward_float64_buffer, hint=DTYPE_HINT, message="float64",
             output="next_h")
proofs.wrong("rnn_step_forward", rnn_step_forward_updates_prev_h, hint=IN_PLACE_HINT,
             message="changed its input `prev_h`")

# --- rnn_forward -----------------------------------------------------------------------


def rnn_forward_preallocated(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=x.dtype)
    prev_h = h0
    for t in range(T):
        prev_h = np.tanh(x[:, t] @ Wx + prev_h @ Wh + b)
        h[:, t] = prev_h
    return h, {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "h": h}


def rnn_forward_with_step(x, h0, Wx, Wh, b):
    hs, caches = [], []
    h = h0
    for x_t in np.moveaxis(x, 1, 0):
        h, step_cache = rnn_step_forward_einsum(x_t, h, Wx, Wh, b)
        hs.append(h)
        caches.append(step_cache)
    return np.stack(hs, axis=1), caches


def rnn_forward_returns_last_state(x, h0, Wx, Wh, b):
    h = h0
    for t in range(x.shape[1]):
        h, _ = rnn_step_forward_einsum(x[:, t], h, Wx, Wh, b)
    return h, None


def rnn_forward_float64_buffer(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]))  # float64, whatever the inputs
    prev_h = h0
    for t in range(T):
        prev_h = np.tanh(x[:, t] @ Wx + prev_h @ Wh + b)
        h[:, t] = prev_h
    return h, None


proofs.correct("rnn_forward", rnn_forward_preallocated)
proofs.correct("rnn_forward", rnn_forward_with_step)
proofs.wrong("rnn_forward", rnn_forward_returns_last_state, hint="return every hidden state", message="wrong shape")
proofs.wrong("rnn_forward", rnn_forward_float64_buffer, hint=DTYPE_HINT, message="float64", output="h")

# --- temporal_affine_forward -----------------------------------------------------------


def temporal_affine_forward_reshaped(x, W, b):
    N, T, H = x.shape
    out = (x.reshape(N * T, H) @ W + b).reshape(N, T, W.shape[1])
    return out, {"x": x, "W": W}


def temporal_affine_forward_loop(x, W, b):
    out = np.stack([x[:, t] @ W + b for t in range(x.shape[1])], axis=1)
    return out, (x, W, b)


def temporal_affine_forward_W_transposed(x, W, b):
    return x @ W.T + b, (x, W, b)  # fails unless M == H


proofs.correct("temporal_affine_forward", temporal_affine_forward_reshaped)
proofs.correct("temporal_affine_forward", temporal_affine_forward_loop)
proofs.wrong("temporal_affine_forward", temporal_affine_forward_W_transposed, hint=CRASH_HINT,
             message="ValueError: matmul")

globals().update(proofs.tests())


# --- the fallback hints ----------------------------------------------------------------------

FORMULA = re.compile(r"@|\.T\b|\.sum\(|\*\*|np\.")


@pytest.mark.parametrize("name", ["rnn_step_forward", "rnn_forward", "temporal_affine_forward"])
def test_fallback_hints_give_no_code(name):
    for key, hint in EXERCISES[name].hints.items():
        if key.endswith(".shape"):
            continue
        assert not FORMULA.search(hint), (name, key, hint)
