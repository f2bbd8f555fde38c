"""Proofs of notebook 03's checks: "gradient_norm_by_lag" (new) and "clip_grad_norm" (PyTorch's
formula accepted). Each check passes the reference and differently written correct code on
many seeds, rejects realistic mistakes with the hint of their real cause, and gives the same
verdict, word for word, whatever the fresh random draw.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.checking.conventions import run_plan

SEEDS = range(12)


def run(exercise, fn, seed=0):
    return EXERCISES[exercise].run(fn, rng=np.random.default_rng(seed))


# --- gradient_norm_by_lag: learners' versions ---------------------------------------------


def by_lag_indices(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    N, T, D = x.shape
    caches, h = [None] * T, h0
    for t in range(T):
        h, caches[t] = rnn_step_forward(x[:, t], h, Wx, Wh, b)
    norms = np.zeros(T + 1)
    dh = dh_last
    norms[0] = np.mean(np.sqrt(np.sum(dh ** 2, axis=1)))
    for k in range(1, T + 1):
        dh = rnn_step_backward(dh, caches[T - k])[1]
        norms[k] = np.mean(np.sqrt(np.sum(dh ** 2, axis=1)))
    return norms


def by_lag_list_of_floats(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    caches, h = [], h0
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        caches.append(cache)
    grads = [dh_last]
    while caches:
        grads.append(rnn_step_backward(grads[-1], caches.pop())[1])
    return [float(np.mean([np.linalg.norm(row) for row in g])) for g in grads]


def by_lag_forward_order(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    caches, h = [], h0
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        caches.append(cache)
    dh, norms = dh_last, [np.linalg.norm(dh_last, axis=1).mean()]
    for cache in caches:  # mistake: from the first step to the last
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(np.linalg.norm(dh, axis=1).mean())
    return np.array(norms)


def _caches(x, h0, Wx, Wh, b, step):
    caches, h = [], h0
    for t in range(x.shape[1]):
        h, cache = step(x[:, t], h, Wx, Wh, b)
        caches.append(cache)
    return caches


def by_lag_not_carried(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    norms = [np.linalg.norm(dh_last, axis=1).mean()]
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        _, dprev_h, _, _, _ = rnn_step_backward(dh_last, cache)  # mistake: always dh_last
        norms.append(np.linalg.norm(dprev_h, axis=1).mean())
    return np.array(norms)


def by_lag_norm_of_dx(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    dh, norms = dh_last, [np.linalg.norm(dh_last, axis=1).mean()]
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        dx, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(np.linalg.norm(dx, axis=1).mean())  # mistake: the input's gradient
    return np.array(norms)


def by_lag_one_norm_for_the_batch(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    dh, norms = dh_last, [np.linalg.norm(dh_last)]
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(np.linalg.norm(dh))  # mistake: the norm of all N x H numbers
    return np.array(norms)


def by_lag_without_lag_zero(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    dh, norms = dh_last, []
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(np.linalg.norm(dh, axis=1).mean())
    return np.array(norms)


def by_lag_without_h0(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    dh, norms = dh_last, []
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        norms.append(np.linalg.norm(dh, axis=1).mean())  # mistake: recorded before the step
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
    return np.array(norms)


def by_lag_in_time_order(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    return ref.gradient_norm_by_lag(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward)[::-1]


def by_lag_stub(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):
    raise NotImplementedError("Exercise 3.1: gradient_norm_by_lag")


CORRECT_BY_LAG = [ref.gradient_norm_by_lag, by_lag_indices, by_lag_list_of_floats]
WRONG_BY_LAG = [
    (by_lag_forward_order, "from the first to the last"),
    (by_lag_not_carried, "every step starts again from dh_last"),
    (by_lag_norm_of_dx, "those of dx"),
    (by_lag_one_norm_for_the_batch, "one norm of the whole (N, H) array"),
    (by_lag_without_lag_zero, "your norms start at lag 1"),
    (by_lag_without_h0, "your norms stop at lag T - 1"),
    (by_lag_in_time_order, "in the opposite order"),
]


@pytest.mark.parametrize("fn", CORRECT_BY_LAG, ids=lambda f: f.__name__)
def test_gradient_norm_by_lag_passes_correct_measurements(fn):
    for seed in SEEDS:
        verdict = run("gradient_norm_by_lag", fn, seed)
        assert verdict, verdict.message


@pytest.mark.parametrize("fn, hint", WRONG_BY_LAG, ids=[f.__name__ for f, _ in WRONG_BY_LAG])
def test_gradient_norm_by_lag_names_the_real_cause_on_every_draw(fn, hint):
    messages = {run("gradient_norm_by_lag", fn, seed).message for seed in SEEDS}
    assert len(messages) == 1, messages  # the fixed case decides: the same words on every draw
    verdict = run("gradient_norm_by_lag", fn)
    assert verdict.status == "wrong" and hint in verdict.hint, verdict.message


def test_gradient_norm_by_lag_stub_is_not_attempted():
    verdict = run("gradient_norm_by_lag", by_lag_stub)
    assert verdict.status == "not attempted", verdict.message


def test_every_catalogued_by_lag_mistake_is_caught_by_its_own_hint():
    ex = EXERCISES["gradient_norm_by_lag"]
    case = ex.cases(np.random.default_rng(0))[0]
    for mistake in ex.mistakes:
        outputs = {k: np.asarray(v) for k, v in mistake.outputs(case).items()}
        verdict = ex.judge(case, outputs)
        assert verdict is not None and verdict.hint == mistake.hint, mistake.hint


def test_gradient_norm_by_lag_is_given_the_course_step_functions_in_the_grader():
    """The grader's child runs the plan with _calls' own step functions: the same numbers as the
    reference step functions, so a learner is judged on the measurement, not on notebook 02."""
    ex = EXERCISES["gradient_norm_by_lag"]
    for case in ex.cases(np.random.default_rng(3)):
        outputs, modified = run_plan([ref.gradient_norm_by_lag], *ex.plan(case))
        expected = ref.gradient_norm_by_lag(*case.args.values(), ref.rnn_step_forward, ref.rnn_step_backward)
        np.testing.assert_allclose(outputs["norms"], expected, rtol=1e-12)
        assert modified == []


def test_gradient_norm_by_lag_reference_follows_rnn_backward():
    """norms[T] is the norm of rnn_backward's dh0 when only h_T gets a gradient."""
    rng = np.random.default_rng(0)
    N, T, D, H = 4, 9, 3, 5
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)) / np.sqrt(H), rng.standard_normal(H)
    u = rng.standard_normal((N, H))
    norms = ref.gradient_norm_by_lag(x, h0, Wx, Wh, b, u, ref.rnn_step_forward, ref.rnn_step_backward)
    h, cache = ref.rnn_forward(x, h0, Wx, Wh, b)
    dh = np.zeros_like(h)
    dh[:, -1] = u
    dh0 = ref.rnn_backward(dh, cache)[1]
    assert norms.shape == (T + 1,)
    assert norms[0] == pytest.approx(np.linalg.norm(u, axis=1).mean())
    assert norms[T] == pytest.approx(np.linalg.norm(dh0, axis=1).mean(), rel=1e-12)


# --- clip_grad_norm: PyTorch's formula ------------------------------------------------------


def clip_like_pytorch(grads, max_norm):
    # torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1.
    total_norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    clip_coef = min(max_norm / (total_norm + 1e-6), 1.0)
    return {k: g * g.dtype.type(clip_coef) for k, g in grads.items()}, total_norm


def clip_with_torch(grads, max_norm):
    import torch

    params = []
    for g in grads.values():
        p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64 if g.dtype == np.float64 else torch.float32))
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    total = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return {k: p.grad.numpy() for k, p in zip(grads, params)}, total


def clip_each_array(grads, max_norm):
    clipped = {k: g * min(1.0, max_norm / np.linalg.norm(g)) for k, g in grads.items()}
    return clipped, float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))


@pytest.mark.parametrize("fn", [clip_like_pytorch, clip_with_torch], ids=lambda f: f.__name__)
def test_clip_grad_norm_accepts_pytorchs_formula_on_every_draw(fn):
    for seed in range(30):
        verdict = run("clip_grad_norm", fn, seed)
        assert verdict, verdict.message


def test_the_widened_tolerance_is_the_bound_of_pytorchs_epsilon():
    """Without the widened tolerance, PyTorch's formula fails on the (1, 1) case by 1.7e-7; the
    widening (1e-6 / total_norm) is the bound of that epsilon's effect, and stays below 2e-6."""
    ex = EXERCISES["clip_grad_norm"]
    for case in ex.cases(np.random.default_rng(0)):
        if case.dtype != np.float64:
            continue  # float32 rounding (tolerance 1e-4) dwarfs the epsilon there
        outputs = {k: np.asarray(v) for k, v in ex.expected(case).items()}
        mine, total = clip_like_pytorch(case.args["grads"], case.args["max_norm"])
        for k, v in mine.items():
            name = f"clipped['{k}']"
            err = np.abs(v - outputs[name]).max() / max(1.0, np.abs(outputs[name]).max())
            assert err <= ex.tolerance(case, name) - 1e-7 + 1e-15  # the epsilon's bound covers it
            assert ex.tolerance(case, name) < 1e-7 + 2e-6


def test_clip_grad_norm_verdicts_do_not_depend_on_the_draw():
    for fn in (clip_each_array,):
        messages = {run("clip_grad_norm", fn, seed).message for seed in range(20)}
        assert len(messages) == 1, messages
