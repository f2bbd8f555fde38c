"""Proofs for the checks of notebooks 00-02 added with the hints (issue 8).

- The literal sigmoid 1 / (1 + np.exp(-x)) is right in value (exp overflows to inf, NumPy warns,
  and 1 / inf is 0): the check accepts it, as notebook 00 says; the form exp(x) / (1 + exp(x))
  gives nan and is rejected.
- The verdicts of sigmoid and softmax, right or wrong, do not depend on the random draw.
- Two BPTT loop mistakes, a loop that stops before step 0 and a step that reads the cache of the
  step before, are recognised and named; gradients that no catalogued mistake explains get a
  fallback hint that says where to look, without a formula.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.lessons.nb02_bptt.checks import SEQ_GRAD_HINTS, STEP_GRAD_HINTS

MANY_SEEDS = range(12)


def run(exercise, *funcs, seed=0):
    return EXERCISES[exercise].run(*funcs, rng=np.random.default_rng(seed))


# --- sigmoid and softmax ------------------------------------------------------------------


def sigmoid_literal(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_exp_over_one_plus_exp(x):
    return np.exp(x) / (1 + np.exp(x))


def sigmoid_float64_buffer(x):
    out = np.zeros(x.shape)
    out[...] = 1 / (1 + np.exp(-x))
    return out


def softmax_without_shift(scores):
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_one_global_max(scores):
    e = np.exp(scores - scores.max())
    return e / e.sum(axis=-1, keepdims=True)


def softmax_over_axis_0(scores):
    e = np.exp(scores - scores.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softmax_over_axis_1(scores):
    e = np.exp(scores - scores.max(axis=1, keepdims=True))  # right for (N, V), not for (V,) or (N, T, V)
    return e / e.sum(axis=1, keepdims=True)


def softmax_max_without_keepdims(scores):
    e = np.exp(scores - scores.max(axis=-1))  # broadcasts only when the sizes happen to agree
    return e / e.sum(axis=-1, keepdims=True)


def test_the_literal_sigmoid_is_right_in_value_and_passes_as_notebook_00_says():
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0])
    with np.errstate(over="ignore"):
        assert np.allclose(sigmoid_literal(x), ref.sigmoid(x), rtol=1e-12, atol=0)
        x32 = x.astype(np.float32)
        assert sigmoid_literal(x32).dtype == np.float32
        assert np.allclose(sigmoid_literal(x32), ref.sigmoid(x32), rtol=1e-6, atol=1e-30)  # float32: exp(100) is inf, so 0 where 3.7e-44
    with pytest.warns(RuntimeWarning, match="overflow"):
        sigmoid_literal(x)
    for seed in MANY_SEEDS:
        assert run("sigmoid", sigmoid_literal, seed=seed), seed


def test_exp_over_one_plus_exp_gives_nan_and_is_told_why():
    verdict = run("sigmoid", sigmoid_exp_over_one_plus_exp)
    assert not verdict and "contains nan" in verdict.message
    assert "np.exp only ever sees numbers <= 0" in verdict.hint


STABLE = [("sigmoid", sigmoid_literal), ("sigmoid", sigmoid_exp_over_one_plus_exp),
          ("sigmoid", sigmoid_float64_buffer), ("softmax", softmax_without_shift),
          ("softmax", softmax_one_global_max), ("softmax", softmax_over_axis_0),
          ("softmax", softmax_over_axis_1), ("softmax", softmax_max_without_keepdims)]


@pytest.mark.parametrize("exercise, func", STABLE, ids=[f.__name__ for _, f in STABLE])
def test_the_verdict_does_not_depend_on_the_random_draw(exercise, func):
    verdicts = [run(exercise, func, seed=seed) for seed in MANY_SEEDS]
    first = verdicts[0]
    for v in verdicts[1:]:
        assert (v.status, v.output, v.hint, v.lines[:2]) == (first.status, first.output, first.hint, first.lines[:2])


# --- rnn_backward: mistakes in the loop -----------------------------------------------------


def _loop(dh, cache, steps, cache_of=lambda t: t):
    N, T, _ = dh.shape
    Wx, Wh = cache[0][2], cache[0][3]
    dx = np.zeros((N, T, Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0], dtype=dh.dtype)
    dprev_h = np.zeros((N, Wh.shape[0]), dtype=dh.dtype)
    for t in steps:
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[cache_of(t)])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


def rnn_backward_stops_before_step_0(dh, cache):
    return _loop(dh, cache, range(dh.shape[1] - 1, 0, -1))


def rnn_backward_stops_before_step_0_dh0_from_cache(dh, cache):
    # the same mistake, dh0 computed differently: the hint must not depend on it
    dx, dprev_h, dWx, dWh, db = _loop(dh, cache, range(dh.shape[1] - 1, 0, -1))
    return dx, np.zeros_like(dprev_h), dWx, dWh, db


def rnn_backward_reads_the_cache_of_the_step_before(dh, cache):
    return _loop(dh, cache, range(dh.shape[1] - 1, -1, -1), cache_of=lambda t: t - 1)


def rnn_backward_reads_cache_t_minus_1_as_a_list(dh, cache):
    dxs, dWx, dWh, db = [None] * dh.shape[1], 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[t - 1])
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


@pytest.mark.parametrize("func, hint", [
    (rnn_backward_stops_before_step_0, "step 0 is never visited"),
    (rnn_backward_stops_before_step_0_dh0_from_cache, "step 0 is never visited"),
    (rnn_backward_reads_the_cache_of_the_step_before, "reads cache[t - 1]"),
    (rnn_backward_reads_cache_t_minus_1_as_a_list, "reads cache[t - 1]"),
])
def test_a_loop_mistake_is_named(func, hint):
    for seed in (0, 1, 2):
        verdict = run("rnn_backward", ref.rnn_forward, func, seed=seed)
        assert verdict.status == "wrong" and verdict.output == "dx", verdict.message
        assert hint in verdict.hint, verdict.message


FORMULA = re.compile(r"@|\.T\b|\.sum\(|\*\*|np\.")


@pytest.mark.parametrize("func, output", [
    (rnn_backward_dx_off_by_a_bit_at_step_1, "dx"), (rnn_backward_dWh_off, "dWh")])
def test_an_unexplained_rnn_backward_gradient_gets_a_pointer_not_a_formula(func, output):
    verdict = run("rnn_backward", ref.rnn_forward, func)
    assert verdict.status == "wrong" and verdict.output == output
    assert verdict.hint == SEQ_GRAD_HINTS[output]
    assert verdict.hint.startswith("no common mistake explains") and "cache[t]" in verdict.hint


def rnn_step_backward_dx_scaled(dnext_h, cache):
    dx, dprev_h, dWx, dWh, db = ref.rnn_step_backward(dnext_h, cache)
    return 1.5 * dx, dprev_h, dWx, dWh, db


def test_an_unexplained_rnn_step_backward_gradient_gets_a_pointer_not_a_formula():
    verdict = run("rnn_step_backward", ref.rnn_step_forward, rnn_step_backward_dx_scaled)
    assert verdict.status == "wrong" and verdict.output == "dx"
    assert verdict.hint == STEP_GRAD_HINTS["dx"]


@pytest.mark.parametrize("name", ["rnn_step_forward", "rnn_forward", "temporal_affine_forward",
                                  "rnn_step_backward", "rnn_backward", "temporal_affine_backward"])
def test_fallback_hints_give_no_code(name):
    for key, hint in EXERCISES[name].hints.items():
        if key.endswith(".shape"):
            continue
        assert not FORMULA.search(hint), (name, key, hint)


def rnn_backward_stops_before_step_0_into_a_list(dh, cache):
    T = dh.shape[1]
    dxs, dWx, dWh, db = [None] * T, 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in range(T - 1, 0, -1):
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db  # dxs[0] is still None: np.stack raises


def test_a_loop_that_skips_step_0_and_crashes_in_np_stack_is_pointed_at_the_loop():
    verdict = run("rnn_backward", ref.rnn_forward, rnn_backward_stops_before_step_0_into_a_list)
    assert verdict.status == "wrong" and "raised an error" in verdict.message
    assert "down to t = 0 included" in verdict.hint
