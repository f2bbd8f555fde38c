"""What every check says when it cannot name a known mistake: where the error is, and, after a
crash, what that kind of exception usually means. Shared machinery, so tested once here."""
import numpy as np

from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.checking.exercise import CRASH_HINTS, DTYPE_HINT, SHAPE_HINT


def run(name, *funcs):
    return EXERCISES[name].run(*funcs, rng=np.random.default_rng(0))


def test_a_name_error_names_the_missing_name_not_the_shapes():
    def rnn_forward(x, h0, Wx, Wh, b):
        return ref.rnn_forward(x, h_zero, Wx, Wh, b)  # noqa: F821  (the learner's typo)

    verdict = run("rnn_forward", rnn_forward)
    assert verdict.status == "wrong" and "`h_zero` is not defined" in verdict.hint, verdict.message
    assert "shape" not in verdict.hint and "NameError" in verdict.message


def test_a_type_error_is_about_arguments_and_types():
    def rnn_forward(x, h0, Wx, Wh, b):
        return ref.rnn_forward(x, h0, Wx, Wh)

    verdict = run("rnn_forward", rnn_forward)
    assert verdict.hint == CRASH_HINTS["TypeError"], verdict.message


def test_a_shape_error_gets_the_shape_hint():
    def rnn_forward(x, h0, Wx, Wh, b):
        return ref.rnn_forward(x, h0, Wx.T, Wh, b)

    verdict = run("rnn_forward", rnn_forward)
    assert verdict.hint == EXERCISES["rnn_forward"].hints.get("crash", SHAPE_HINT), verdict.message


def test_np_zeros_default_is_named_by_the_dtype_hint():
    def rnn_forward(x, h0, Wx, Wh, b):
        N, T, _ = x.shape
        h, prev = np.zeros((N, T, h0.shape[1])), h0
        for t in range(T):
            prev = np.tanh(x[:, t] @ Wx + prev @ Wh + b)
            h[:, t] = prev
        return h, None

    verdict = run("rnn_forward", rnn_forward)
    assert verdict.hint == DTYPE_HINT and "np.zeros(shape)" in verdict.hint, verdict.message


def test_an_unexplained_error_says_at_which_time_steps_and_which_outputs():
    """A sequence output wrong at one step only is located; the other outputs are sorted into right
    and wrong, without guessing a cause."""
    def rnn_forward(x, h0, Wx, Wh, b):
        h, cache = ref.rnn_forward(x, h0, Wx, Wh, b)
        h = h.copy()
        h[:, -1] *= 1.5 if x.shape[1] > 1 else 1.0
        return h, cache

    verdict = run("rnn_forward", rnn_forward)
    T = 4  # the fixed case
    assert f"where: h is wrong at t = {T - 1} only, right at t = 0..{T - 2}" in verdict.message, verdict.message

    def rnn_step_backward(dnext_h, cache):
        dx, dprev_h, dWx, dWh, db = ref.rnn_step_backward(dnext_h, cache)
        return dx, dprev_h, dWx, 2 * dWh, db

    verdict = run("rnn_step_backward", ref.rnn_step_forward, rnn_step_backward)
    assert verdict.output == "dWh", verdict.message
    assert "others: `dx`, `dprev_h`, `dWx`, `db` right" in verdict.message, verdict.message


def test_a_failing_check_shows_one_line_in_jupyter_not_a_traceback():
    """IPython renders `_render_traceback_()` in place of the traceback: one line under the verdict."""
    from course_utils.check import CheckFailed

    err = CheckFailed("rnn_forward is not right yet: see the explanation above.")
    lines = err._render_traceback_()
    assert len(lines) == 1 and "rnn_forward is not right yet" in lines[0]
    assert isinstance(err, AssertionError)
