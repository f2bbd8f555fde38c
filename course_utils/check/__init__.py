"""Self-checks for every exercise: ``check.<exercise>(your_function)``.

    from course_utils import check
    check.rnn_step_forward(rnn_step_forward)
    check.rnn_step_backward(rnn_step_forward, rnn_step_backward)   # forward, then backward

A check tries fixed and fresh random inputs of several shapes (N = 1, T = 1, H = 1 and
float32 among them), compares your outputs with ``course_utils.reference``, and prints one
line. When something is wrong it says which output, on which inputs, by how much, and, when
a known mistake explains your output, what that mistake is; then it raises
``CheckFailed`` (an ``AssertionError``) so that "Run All" stops there. An exercise that
still raises ``NotImplementedError`` is reported as "not attempted yet".

``EXERCISES`` maps each exercise name to its definition; the instructor's grader uses the
same definitions, so a check and a grade never disagree.
"""
from __future__ import annotations

from typing import Callable

from ._core import CheckFailed, Verdict
from ._exercise import Exercise
from .ex_basics import CLIP_GRAD_NORM, NUMERICAL_GRADIENT, SIGMOID, SOFTMAX
from .ex_gru import GRU_BACKWARD, GRU_FORWARD, GRU_STEP_BACKWARD, GRU_STEP_FORWARD
from .ex_lm import EMBEDDING_BACKWARD, EMBEDDING_FORWARD, SAMPLE_WITH_TEMPERATURE, TEMPORAL_SOFTMAX_LOSS
from .ex_optim import ADAM_STEP
from .ex_torch07 import (
    FINAL_STATES_PACKED, LAST_HIDDEN_STATE, LOAD_GRU_WEIGHTS, LOAD_LSTM_WEIGHTS, LOAD_RNN_WEIGHTS, LSTM_CELL,
)
from .ex_forecast import LSTM_FORECASTER, MAKE_WINDOWS, STANDARDIZE
from .ex_torch08 import MASKED_MEAN, PADDING_MASK, SENTIMENT_LSTM
from .ex_torch10 import BEAM_SEARCH, DECODER, ENCODER
from .ex_torch11 import ADDITIVE_ATTENTION, ATTENTION_DECODER
from .ex_lstm import LSTM_BACKWARD, LSTM_FORWARD, LSTM_STEP_BACKWARD, LSTM_STEP_FORWARD
from .ex_rnn import (
    RNN_BACKWARD, RNN_FORWARD, RNN_STEP_BACKWARD, RNN_STEP_FORWARD, TEMPORAL_AFFINE_BACKWARD,
    TEMPORAL_AFFINE_FORWARD,
)

EXERCISES: dict[str, Exercise] = {ex.name: ex for ex in [
    SIGMOID, SOFTMAX,
    RNN_STEP_FORWARD, RNN_FORWARD, TEMPORAL_AFFINE_FORWARD,
    NUMERICAL_GRADIENT, RNN_STEP_BACKWARD, RNN_BACKWARD, TEMPORAL_AFFINE_BACKWARD,
    CLIP_GRAD_NORM,
    EMBEDDING_FORWARD, EMBEDDING_BACKWARD, TEMPORAL_SOFTMAX_LOSS, SAMPLE_WITH_TEMPERATURE, ADAM_STEP,
    LSTM_STEP_FORWARD, LSTM_STEP_BACKWARD, LSTM_FORWARD, LSTM_BACKWARD,
    GRU_STEP_FORWARD, GRU_STEP_BACKWARD, GRU_FORWARD, GRU_BACKWARD,
    LOAD_RNN_WEIGHTS, LOAD_LSTM_WEIGHTS, LOAD_GRU_WEIGHTS, LSTM_CELL, LAST_HIDDEN_STATE, FINAL_STATES_PACKED,
    STANDARDIZE, MAKE_WINDOWS, LSTM_FORECASTER,
    PADDING_MASK, MASKED_MEAN, SENTIMENT_LSTM,
    ENCODER, DECODER, BEAM_SEARCH,
    ADDITIVE_ATTENTION, ATTENTION_DECODER,
]}


def _make_check(ex: Exercise) -> Callable[..., Verdict]:
    def check(*funcs: Callable) -> Verdict:
        __tracebackhide__ = True
        return ex.check(*funcs)

    args = ", ".join(ex.funcs)
    check.__name__ = check.__qualname__ = ex.name
    check.__doc__ = (
        f"Check your `{ex.name}`: call as check.{ex.name}({args}).\n\n"
        "Prints one line when it is right and returns a truthy Verdict; otherwise prints what is\n"
        "wrong, with a hint, and raises CheckFailed (an AssertionError)."
    )
    return check


def demo(name: str, *funcs: Callable) -> Verdict:
    """Run the check of exercise ``name`` and print its verdict, without raising.

    For showing what a check says about a wrong function, e.g. in notebook 00.
    """
    verdict = EXERCISES[name].run(*funcs)
    print(verdict.message)
    return verdict


for _name, _ex in EXERCISES.items():
    globals()[_name] = _make_check(_ex)

__all__ = ["CheckFailed", "EXERCISES", "Verdict", "demo", *EXERCISES]
