"""Checks of notebook 00: sigmoid and softmax."""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise import FunctionExercise

# --- sigmoid -------------------------------------------------------------------------


def _sigmoid_build(rng, N, D):
    return {"x": rng.standard_normal((N, D)) * 3}


def _sigmoid_extremes(rng):
    # The literal 1 / (1 + np.exp(-x)) passes these: exp(1000) is inf (NumPy warns), and
    # 1 / inf is 0, the right value. The form exp(x) / (1 + exp(x)) gives inf / inf = nan.
    x = np.array([[-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]])
    return [Case("very large and very small x, 3-D", {"x": np.stack([x, -x])}),
            Case("very large and very small x (float32)", {"x": x.astype(np.float32)})]


def _mistake_sigmoid(f):
    return lambda case: {"out": f(case.args["x"])}


def _wrong_sigmoid_of_minus_x(x):  # the sign of the exponent flipped
    return 1 / (1 + np.exp(x))


sigmoid = FunctionExercise(
    "sigmoid", ("out",), ref.sigmoid, _sigmoid_build, ("N", "D"),
    mistakes=[
        Mistake("that is sigmoid(-x): the formula is 1 / (1 + exp(-x)).",
                _mistake_sigmoid(lambda x: 1 / (1 + np.exp(x))), _wrong_sigmoid_of_minus_x),
        Mistake("that is tanh(x), not the sigmoid 1 / (1 + exp(-x)).", _mistake_sigmoid(np.tanh)),
    ],
    hints={
        "out": "sigmoid(x) = 1 / (1 + exp(-x)), elementwise.",
        "out.finite": "exp of a large number overflows to inf, and inf / inf is nan. Write the "
                      "sigmoid so that np.exp only ever sees numbers <= 0 (hints 1 and 2 under "
                      "the exercise).",
    },
    extra_cases=_sigmoid_extremes,
)

# --- softmax -------------------------------------------------------------------------


def _softmax_build(rng, N, V):
    return {"scores": rng.standard_normal((N, V)) * 2}


def _softmax_more(rng):
    big = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -998.0]])
    return [
        Case("scores of shape (N, T, V) = (2, 3, 4)", {"scores": rng.standard_normal((2, 3, 4))}),
        Case("one row of scores, shape (V,) = (5,)", {"scores": rng.standard_normal(5)}),
        Case("very large scores: [[1000, 1001, 999], [-1000, -1001, -998]]", {"scores": big}),
    ]


def _m_softmax(f):
    return lambda case: {"probs": f(case.args["scores"])}


def _wrong_softmax_over_axis_0(scores):  # normalised down the columns instead of along each row
    e = np.exp(scores - scores.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


softmax = FunctionExercise(
    "softmax", ("probs",), ref.softmax, _softmax_build, ("N", "V"),
    mistakes=[
        Mistake("your probabilities sum to 1 down each column (axis 0): normalise over the last "
                "axis, with axis=-1 and keepdims=True.",
                _m_softmax(lambda s: np.exp(s - s.max(axis=0, keepdims=True))
                           / np.exp(s - s.max(axis=0, keepdims=True)).sum(axis=0, keepdims=True)),
                _wrong_softmax_over_axis_0),
        Mistake("your probabilities sum to 1 over the whole array: normalise each row separately, "
                "over the last axis (axis=-1, keepdims=True).",
                _m_softmax(lambda s: np.exp(s - s.max()) / np.exp(s - s.max()).sum())),
        Mistake("that is exp(scores) without dividing by the sum over the last axis.",
                _m_softmax(lambda s: np.exp(s))),
    ],
    hints={
        "probs": "softmax(s)_k = exp(s_k) / sum_j exp(s_j), over the last axis (axis=-1).",
        "probs.finite": "subtract each row's own maximum before np.exp "
                        "(scores.max(axis=-1, keepdims=True)): exp(1000) overflows to inf, and "
                        "one maximum for the whole array makes far-below rows 0 / 0.",
    },
    extra_cases=_softmax_more,
)
