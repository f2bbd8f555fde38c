"""Self-checks for every exercise: ``check.<exercise>(your_function)``.

    from course_utils import check
    check.rnn_step_forward(rnn_step_forward)
    check.rnn_step_backward(rnn_step_forward, rnn_step_backward)   # forward, then backward

A check tries fixed and fresh random inputs of several shapes (N = 1, T = 1, H = 1 and
float32 among them), compares your outputs with ``course_utils.reference``, and prints one
line. When something is wrong it says which output, on which inputs, by how much, and, when
a known mistake explains your output, what that mistake is; then it raises
``CheckFailed`` (an ``AssertionError``) so that "Run All" stops there. An exercise that
still raises ``NotImplementedError`` is reported as "not attempted yet" and raises
``NotAttemptedYet`` (a ``CheckFailed``).

``check.rnn_forward`` is the exercise itself, defined with its notebook in
``course_utils/lessons/nb01_rnn_forward/checks.py``. ``EXERCISES`` maps each exercise name to
it; the instructor's grader uses the same definitions, so a check and a grade never disagree.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from course_utils.checking.core import CheckFailed, NotAttemptedYet, Verdict
from course_utils.checking.exercise import Exercise
from course_utils.checking.registry import load

EXERCISES: dict[str, Exercise]
LESSON_OF: dict[str, str]  # exercise name -> its lesson ("nb01_rnn_forward")
EXERCISES, LESSON_OF = load()
globals().update(EXERCISES)


def demo(name: str, *funcs: Callable) -> Verdict:
    """Run the check of exercise ``name`` and print its verdict, without raising.

    For showing what a check says about a wrong function, e.g. in notebook 00.
    """
    verdict = EXERCISES[name].run(*funcs)
    print(verdict.message)
    return verdict


__all__ = ["CheckFailed", "EXERCISES", "LESSON_OF", "NotAttemptedYet", "Verdict", "demo", *EXERCISES]

if TYPE_CHECKING:  # for editors only: go-to-definition on check.<exercise> lands on its definition
    from course_utils.lessons.nb00_welcome.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb01_rnn_forward.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb02_bptt.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb03_vanishing_exploding.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb04_char_rnn_numpy.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb05_lstm_numpy.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb06_gru_numpy.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb07_numpy_to_pytorch.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb08_sentiment_classification.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb09_time_series_forecasting.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb10_seq2seq.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb11_attention.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb12_speech_ctc.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb13_image_captioning.checks import *  # noqa: F401,F403
    from course_utils.lessons.nb14_session_recommendation.checks import *  # noqa: F401,F403
