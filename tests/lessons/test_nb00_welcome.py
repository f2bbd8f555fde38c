"""Proofs of notebook 00's checks (sigmoid, softmax), and their verdicts on the stable traps.

The catalogued mistakes are proven from course_utils/lessons/nb00_welcome/checks.py; here are
correct code written differently and the wrong code that no catalogue entry names.

- The literal sigmoid 1 / (1 + np.exp(-x)) is right in value (exp overflows to inf, NumPy warns,
  and 1 / inf is 0): the check accepts it, as notebook 00 says; the form exp(x) / (1 + exp(x))
  gives nan and is rejected.
- The verdicts of sigmoid and softmax, right or wrong, do not depend on the random draw.
"""
from __future__ import annotations

import numpy as np
import pytest

from course_utils import reference as ref
from course_utils.check import EXERCISES
from proofs import Proofs, run

proofs = Proofs("nb00_welcome")

IN_PLACE_HINT = "work on new arrays"
DTYPE_HINT = "keep the dtype of the inputs"
CRASH_HINT = "check the shapes of the arrays in the line that failed"  # and the message names the error
MANY_SEEDS = range(12)

# --- sigmoid ---------------------------------------------------------------------------


def sigmoid_via_tanh(x):
    # sigmoid(x) = (1 + tanh(x / 2)) / 2, and tanh never overflows.
    return 0.5 * (1 + np.tanh(x / 2))


def sigmoid_masked(x):
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def sigmoid_literal(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_exp_over_one_plus_exp(x):
    e = np.exp(x)  # inf for large x, and inf / inf is nan
    return e / (1 + e)


def sigmoid_float64(x):
    return 1 / (1 + np.exp(-x.astype(np.float64)))


def sigmoid_float64_buffer(x):
    out = np.zeros(x.shape)
    out[...] = 1 / (1 + np.exp(-x))
    return out


def sigmoid_negates_x_in_place(x):
    x *= -1
    return 1 / (1 + np.exp(x))


proofs.correct("sigmoid", sigmoid_via_tanh)
proofs.correct("sigmoid", sigmoid_masked)
proofs.wrong("sigmoid", sigmoid_exp_over_one_plus_exp, message="contains nan",
             hint="exp of a large number overflows to inf, and inf / inf is nan. Write the sigmoid so that "
                  "np.exp only ever sees numbers <= 0")
proofs.wrong("sigmoid", sigmoid_float64, hint=DTYPE_HINT, message="float64")
proofs.wrong("sigmoid", sigmoid_negates_x_in_place, hint=IN_PLACE_HINT, message="changed its input `x`")

# --- softmax ---------------------------------------------------------------------------


def softmax_log_sum_exp(scores):
    m = scores.max(axis=-1, keepdims=True)
    log_z = m + np.log(np.exp(scores - m).sum(axis=-1, keepdims=True))
    return np.exp(scores - log_z)


def softmax_row_by_row(scores):
    rows = scores.reshape(-1, scores.shape[-1])
    out = np.empty_like(rows)
    for k, row in enumerate(rows):
        e = np.exp(row - row.max())
        out[k] = e / e.sum()
    return out.reshape(scores.shape)


def softmax_without_shift(scores):
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_one_global_max(scores):
    e = np.exp(scores - scores.max())
    return e / e.sum(axis=-1, keepdims=True)


def softmax_shifts_scores_in_place(scores):
    scores -= scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_max_without_keepdims(scores):
    e = np.exp(scores - scores.max(axis=-1))  # (N, V) - (N,): a broadcasting error
    return e / e.sum(axis=-1)


def softmax_max_without_keepdims_but_keepdims_in_sum(scores):
    e = np.exp(scores - scores.max(axis=-1))  # broadcasts only when the sizes happen to agree
    return e / e.sum(axis=-1, keepdims=True)


def softmax_over_axis_1(scores):
    e = np.exp(scores - scores.max(axis=1, keepdims=True))  # right for (N, V), not for (V,) or (N, T, V)
    return e / e.sum(axis=1, keepdims=True)


proofs.correct("softmax", softmax_log_sum_exp)
proofs.correct("softmax", softmax_row_by_row)
proofs.wrong("softmax", softmax_without_shift, hint="subtract each row's own maximum", message="nan")
proofs.wrong("softmax", softmax_one_global_max, hint="one maximum for the whole array",
             message="`probs` contains nan")
proofs.wrong("softmax", softmax_shifts_scores_in_place, hint=IN_PLACE_HINT, message="changed its input `scores`")
proofs.wrong("softmax", softmax_max_without_keepdims, hint=CRASH_HINT,
             message="ValueError: operands could not be broadcast")

globals().update(proofs.tests())


# --- the stable traps ----------------------------------------------------------------------


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


def _catalogued(exercise, hint_start):
    """The wrong implementation of the catalogue entry whose hint starts so."""
    return next(m.implementation for m in EXERCISES[exercise].mistakes if m.hint.startswith(hint_start))


def softmax_over_axis_0(scores):
    return _catalogued("softmax", "your probabilities sum to 1 down each column")(scores)


STABLE = [("sigmoid", sigmoid_literal), ("sigmoid", sigmoid_exp_over_one_plus_exp),
          ("sigmoid", sigmoid_float64_buffer), ("softmax", softmax_without_shift),
          ("softmax", softmax_one_global_max), ("softmax", softmax_over_axis_0),
          ("softmax", softmax_over_axis_1), ("softmax", softmax_max_without_keepdims_but_keepdims_in_sum)]


@pytest.mark.parametrize("exercise, func", STABLE, ids=[f.__name__ for _, f in STABLE])
def test_the_verdict_does_not_depend_on_the_random_draw(exercise, func):
    verdicts = [run(exercise, func, seed=seed) for seed in MANY_SEEDS]
    first = verdicts[0]
    for v in verdicts[1:]:
        assert (v.status, v.output, v.hint, v.lines[:2]) == (first.status, first.output, first.hint, first.lines[:2])
