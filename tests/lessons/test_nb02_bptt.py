"""Proofs of notebook 02's checks (numerical_gradient, rnn_step_backward, rnn_backward,
temporal_affine_backward), and of their words where no catalogued mistake applies.

The catalogued mistakes are proven from course_utils/lessons/nb02_bptt/checks.py; here are correct
code written differently (each backward with its own forward, from notebook 01's proofs) and the
wrong code that no catalogue entry names. Besides:

- the two BPTT loop mistakes, a loop that stops before step 0 and a step that reads the cache of
  the step before, are named whatever the learner does about dh0 and however dx is assembled;
- gradients that no catalogued mistake explains get a fallback hint that says where to look,
  without a formula.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from course_utils import check
from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.lessons.nb02_bptt.checks import SEQ_GRAD_HINTS, STEP_GRAD_HINTS
from proofs import Proofs, run
from test_nb01_rnn_forward import (
    rnn_forward_preallocated, rnn_forward_with_step, rnn_step_forward_einsum, rnn_step_forward_stacked,
    temporal_affine_forward_loop, temporal_affine_forward_reshaped,
)

proofs = Proofs("nb02_bptt")

IN_PLACE_HINT = "work on new arrays"
CRASH_HINT = "check the shapes of the arrays in the line that failed"  # and the message names the error

# --- numerical_gradient ----------------------------------------------------------------


def numerical_gradient_in_place(f, x, dout, h=1e-5):
    # Perturbs the caller's x in place, and puts every entry back exactly.
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
        it.iternext()
    return grad


def numerical_gradient_flat_steps(f, x, dout, h=1e-5):
    grad = np.empty(x.size, dtype=x.dtype)
    for k in range(x.size):
        step = np.zeros(x.size, dtype=x.dtype)
        step[k] = h
        step = step.reshape(x.shape)
        grad[k] = (np.vdot(f(x + step), dout) - np.vdot(f(x - step), dout)) / (2 * h)
    return grad.reshape(x.shape)


def numerical_gradient_restores_by_arithmetic(f, x, dout, h=1e-5):
    # x[i] + h - 2h + h is not always x[i] in floating point: x comes back changed.
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x[i] += h
        plus = np.sum(f(x) * dout)
        x[i] -= 2 * h
        minus = np.sum(f(x) * dout)
        x[i] += h
        grad[i] = (plus - minus) / (2 * h)
    return grad


proofs.correct("numerical_gradient", numerical_gradient_in_place)
proofs.correct("numerical_gradient", numerical_gradient_flat_steps)
proofs.wrong("numerical_gradient", numerical_gradient_restores_by_arithmetic, hint=IN_PLACE_HINT,
             message="changed its input `x`")

# --- rnn_step_backward -----------------------------------------------------------------


def rnn_step_forward_einsum_without_bias(x, prev_h, Wx, Wh, b):
    return rnn_step_forward_einsum(x, prev_h, Wx, Wh, np.zeros_like(b))


def rnn_step_backward_stacked(dnext_h, cache):
    da = dnext_h * (1 - cache["next_h"] ** 2)
    dxh = da @ cache["W"].T
    dW = cache["xh"].T @ da
    D = cache["D"]
    return dxh[:, :D], dxh[:, D:], dW[:D], dW[D:], da.sum(axis=0)


def rnn_step_backward_einsum(dnext_h, cache):
    da = dnext_h * (1 - cache["next_h"] ** 2)
    return (np.einsum("nh,dh->nd", da, cache["Wx"]), np.einsum("nh,kh->nk", da, cache["Wh"]),
            np.einsum("nd,nh->dh", cache["x"], da), np.einsum("nk,nh->kh", cache["prev_h"], da),
            np.einsum("nh->h", da))


def rnn_step_backward_scales_dnext_h_in_place(dnext_h, cache):
    dnext_h *= 1 - cache["next_h"] ** 2
    da = dnext_h
    return da @ cache["Wx"].T, da @ cache["Wh"].T, cache["x"].T @ da, cache["prev_h"].T @ da, da.sum(axis=0)


def rnn_step_backward_dx_scaled(dnext_h, cache):
    dx, dprev_h, dWx, dWh, db = ref.rnn_step_backward(dnext_h, cache)
    return 1.5 * dx, dprev_h, dWx, dWh, db  # no known mistake makes this


proofs.correct("rnn_step_backward", rnn_step_forward_stacked, rnn_step_backward_stacked)
proofs.correct("rnn_step_backward", rnn_step_forward_einsum, rnn_step_backward_einsum)
proofs.wrong("rnn_step_backward", rnn_step_forward_einsum, rnn_step_backward_scales_dnext_h_in_place,
             hint=IN_PLACE_HINT, message="changed its input `dnext_h`")
proofs.wrong("rnn_step_backward", rnn_step_forward_einsum_without_bias, rnn_step_backward_einsum,
             hint="the bias b is missing", message="your rnn_step_forward is not right yet")
proofs.wrong("rnn_step_backward", ref.rnn_step_forward, rnn_step_backward_dx_scaled,
             hint=STEP_GRAD_HINTS["dx"], message="`dx` is wrong", output="dx")

# --- rnn_backward ----------------------------------------------------------------------


def rnn_backward_preallocated(dh, cache):
    x, h0, Wx, Wh, h = (cache[k] for k in ("x", "h0", "Wx", "Wh", "h"))
    dx, dWx, dWh = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh)
    db = np.zeros(Wh.shape[0], dtype=dh.dtype)
    dnext_h = np.zeros_like(h0)
    for t in range(x.shape[1] - 1, -1, -1):
        prev_h = h[:, t - 1] if t > 0 else h0
        da = (dh[:, t] + dnext_h) * (1 - h[:, t] ** 2)
        dx[:, t] = da @ Wx.T
        dWx += x[:, t].T @ da
        dWh += prev_h.T @ da
        db += da.sum(axis=0)
        dnext_h = da @ Wh.T
    return dx, dnext_h, dWx, dWh, db


def rnn_backward_with_step(dh, cache):
    dxs, dWx, dWh, db = [], 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward_einsum(dh[:, t] + dprev_h, cache[t])
        dxs.insert(0, dx_t)
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


def rnn_backward_adds_into_dh(dh, cache):
    dxs, dWx, dWh, db = [None] * dh.shape[1], 0, 0, 0
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward_einsum(dh[:, t], cache[t])
        if t > 0:
            dh[:, t - 1] += dprev_h  # right values, but the caller's dh is changed
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


def rnn_backward_dx_off_by_a_bit_at_step_1(dh, cache):
    dx, dh0, dWx, dWh, db = ref.rnn_backward(dh, cache)
    dx = dx.copy()
    dx[:, min(1, dx.shape[1] - 1)] *= 1.5  # no known mistake makes this
    return dx, dh0, dWx, dWh, db


def rnn_backward_dWh_off(dh, cache):
    dx, dh0, dWx, dWh, db = ref.rnn_backward(dh, cache)
    return dx, dh0, dWx, dWh + 0.1, db


def rnn_backward_stops_before_step_0_into_a_list(dh, cache):
    T = dh.shape[1]
    dxs, dWx, dWh, db = [None] * T, 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in range(T - 1, 0, -1):
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db  # dxs[0] is still None: np.stack raises


proofs.correct("rnn_backward", rnn_forward_preallocated, rnn_backward_preallocated)
proofs.correct("rnn_backward", rnn_forward_with_step, rnn_backward_with_step)
proofs.wrong("rnn_backward", rnn_forward_with_step, rnn_backward_adds_into_dh, hint=IN_PLACE_HINT,
             message="changed its input `dh`")
proofs.wrong("rnn_backward", ref.rnn_forward, rnn_backward_dx_off_by_a_bit_at_step_1,
             hint=SEQ_GRAD_HINTS["dx"], message="`dx` is wrong", output="dx")
proofs.wrong("rnn_backward", ref.rnn_forward, rnn_backward_dWh_off,
             hint=SEQ_GRAD_HINTS["dWh"], message="`dWh` is wrong", output="dWh")
proofs.wrong("rnn_backward", ref.rnn_forward, rnn_backward_stops_before_step_0_into_a_list,
             hint="down to t = 0 included", message="raised an error")

# --- temporal_affine_backward ----------------------------------------------------------


def temporal_affine_backward_reshaped(dout, cache):
    x, W = cache["x"], cache["W"]
    N, T, H = x.shape
    d2 = dout.reshape(N * T, -1)
    return (d2 @ W.T).reshape(N, T, H), x.reshape(N * T, H).T @ d2, d2.sum(axis=0)


def temporal_affine_backward_einsum(dout, cache):
    x, W, _ = cache
    return np.einsum("ntm,hm->nth", dout, W), np.einsum("nth,ntm->hm", x, dout), np.einsum("ntm->m", dout)


def temporal_affine_backward_dx_without_transpose(dout, cache):
    x, W, _ = cache
    return dout @ W, np.einsum("nth,ntm->hm", x, dout), dout.sum(axis=(0, 1))  # fails unless M == H


proofs.correct("temporal_affine_backward", temporal_affine_forward_reshaped, temporal_affine_backward_reshaped)
proofs.correct("temporal_affine_backward", temporal_affine_forward_loop, temporal_affine_backward_einsum)
proofs.wrong("temporal_affine_backward", temporal_affine_forward_loop, temporal_affine_backward_dx_without_transpose,
             hint=CRASH_HINT, message="ValueError: matmul")

globals().update(proofs.tests())


# --- what the generic proofs do not cover ------------------------------------------------------------


def _catalogued(exercise, hint_start):
    """The wrong implementation of the catalogue entry whose hint starts so."""
    return next(m.implementation for m in EXERCISES[exercise].mistakes if m.hint.startswith(hint_start))


def rnn_backward_stops_before_step_0_dh0_zero(dh, cache):
    # the catalogued mistake, dh0 computed differently: the hint must not depend on it
    dx, _, dWx, dWh, db = _catalogued("rnn_backward", "step 0 is never visited")(dh, cache)
    return dx, np.zeros_like(dh[:, 0]), dWx, dWh, db


def rnn_backward_reads_cache_t_minus_1_as_a_list(dh, cache):
    dxs, dWx, dWh, db = [None] * dh.shape[1], 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[t - 1])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


LOOP_MISTAKES = [("step 0 is never visited", rnn_backward_stops_before_step_0_dh0_zero),
                 ("step t reads cache[t - 1]", rnn_backward_reads_cache_t_minus_1_as_a_list)]


@pytest.mark.parametrize("hint, func", LOOP_MISTAKES, ids=[f.__name__ for _, f in LOOP_MISTAKES])
def test_a_loop_mistake_is_named_however_dh0_and_dx_are_written(hint, func):
    for seed in (0, 1, 2):
        verdict = run("rnn_backward", ref.rnn_forward, func, seed=seed)
        assert verdict.status == "wrong" and verdict.output == "dx", verdict.message
        assert verdict.hint.startswith(hint), verdict.message


@pytest.mark.parametrize("exercise, hint, output", [
    ("rnn_step_backward", "db should be summed over the batch", "db"),
    ("rnn_backward", "step 0 is never visited", "dx"),
    ("rnn_backward", "step t reads cache[t - 1]", "dx"),
    ("temporal_affine_backward", "db is summed over the batch only", "db"),
])
def test_a_catalogued_mistake_blames_the_output_it_spoils(exercise, hint, output):
    for seed in (0, 1, 2):
        verdict = run(exercise, *EXERCISES[exercise].with_reference(_catalogued(exercise, hint)), seed=seed)
        assert verdict.status == "wrong" and verdict.output == output, verdict.message
        assert verdict.hint.startswith(hint), verdict.message


FORMULA = re.compile(r"@|\.T\b|\.sum\(|\*\*|np\.")


def test_an_unexplained_rnn_backward_gradient_gets_a_pointer_to_the_loop():
    for output in ("dx", "dWh"):
        assert SEQ_GRAD_HINTS[output].startswith("no common mistake explains") and "cache[t]" in SEQ_GRAD_HINTS[output]


@pytest.mark.parametrize("name", ["rnn_step_backward", "rnn_backward", "temporal_affine_backward"])
def test_fallback_hints_give_no_code(name):
    for key, hint in EXERCISES[name].hints.items():
        if key.endswith(".shape"):
            continue
        assert not FORMULA.search(hint), (name, key, hint)


def test_public_check_without_the_forward_function_raises_with_usage(capsys):
    with pytest.raises(check.CheckFailed):
        check.rnn_step_backward(ref.rnn_step_backward)
    assert "check.rnn_step_backward(rnn_step_forward, rnn_step_backward)" in capsys.readouterr().out
