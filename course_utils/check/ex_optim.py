"""Check of notebook 04's optimiser step, adam_step."""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from ._core import Case, Mistake
from ._exercise import FunctionExercise


def _build(rng, N, D, t=1):
    m = rng.standard_normal((N, D)) * 0.1 if t > 1 else np.zeros((N, D))
    v = rng.random((N, D)) * 0.01 if t > 1 else np.zeros((N, D))
    return {"param": rng.standard_normal((N, D)), "grad": rng.standard_normal((N, D)), "m": m, "v": v,
            "t": t, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def _later_steps(rng):
    g = np.random.default_rng(int(rng.integers(0, 2**31)))
    return [Case("step t=10, with running averages, N=3, D=5", _build(g, 3, 5, t=10)),
            Case("step t=1000, lr=0.1, beta1=0.5, one parameter of shape (1, 1)",
                 {**_build(g, 1, 1, t=1000), "lr": 0.1, "beta1": 0.5}),
            Case("step t=3 of a 1-D parameter (a bias) of shape (7,)",
                 {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in _build(g, 1, 7, t=3).items()}),
            Case("step t=1 with tiny gradients (about 1e-6), N=3, D=5", _tiny_gradients(g))]


def _tiny_gradients(rng):
    # Only where sqrt(v_hat) is not much larger than eps does the place of eps show.
    args = _build(rng, 3, 5)
    args["grad"] = args["grad"] * 1e-6
    return args


def _variant(param, grad, m, v, t, lr, beta1, beta2, eps, correct=True, eps_inside=False, square=True,
             use_m=True, t0=False):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * (grad**2 if square else grad)
    tt = t - 1 if t0 else t
    with np.errstate(all="ignore"):
        m_hat = m / (1 - beta1**tt) if correct else m
        v_hat = v / (1 - beta2**tt) if correct else v
        step = (m_hat if use_m else grad) / (np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps)
    return {"new_param": param - lr * step, "new_m": m, "new_v": v}


def _m(**kw):
    return lambda case: _variant(*case.args.values(), **kw)


class AdamStepExercise(FunctionExercise):
    def output_names(self, case):
        # The moments first, as in the update itself: v = ... + (1 - beta2) * grad (the square
        # forgotten) makes new_param nan through np.sqrt, and judging new_param first would
        # blame t instead of v.
        return ("new_m", "new_v", "new_param")


ADAM_STEP = AdamStepExercise(
    "adam_step", ("new_param", "new_m", "new_v"), ref.adam_step, _build, ("N", "D"),
    mistakes=[
        Mistake("the bias correction is missing: divide m by (1 - beta1**t) and v by (1 - beta2**t); "
                "without it the first steps are far too small.", _m(correct=False)),
        Mistake("the bias correction uses t - 1: t counts steps from 1, so the first step divides "
                "by 1 - beta1.", _m(t0=True)),
        Mistake("eps goes outside the square root: param - lr * m_hat / (np.sqrt(v_hat) + eps).",
                _m(eps_inside=True)),
        Mistake("v averages the squared gradient: v = beta2 * v + (1 - beta2) * grad**2.", _m(square=False)),
        Mistake("the update uses the raw gradient; it uses the averaged one, m_hat.", _m(use_m=False)),
    ],
    hints={"new_m": "new_m = beta1 * m + (1 - beta1) * grad.",
           "new_v": "new_v = beta2 * v + (1 - beta2) * grad**2.",
           "new_param": "new_param = param - lr * m_hat / (np.sqrt(v_hat) + eps), with "
                        "m_hat = new_m / (1 - beta1**t) and v_hat = new_v / (1 - beta2**t).",
           "new_param.finite": "t starts at 1: with t = 0 the bias correction divides by zero."},
    extra_cases=_later_steps,
)

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [ADAM_STEP]
