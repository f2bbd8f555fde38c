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

import importlib
import pkgutil
from typing import Callable

from ._core import CheckFailed, NotAttemptedYet, Verdict
from ._exercise import Exercise

# Every module ``ex_*.py`` of this package lists its exercises in a module-level ``EXERCISES``;
# they are collected here, so adding an exercise is a change to its own module only.
# Modules are read in this order (the course's order); any other ``ex_*`` module follows.
_ORDER = ["ex_basics", "ex_rnn", "ex_lm", "ex_optim", "ex_lstm", "ex_gru", "ex_torch07", "ex_torch08",
          "ex_forecast", "ex_torch10", "ex_torch11"]
_FOUND = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("ex_"))
_MODULES = [m for m in _ORDER if m in _FOUND] + [m for m in _FOUND if m not in _ORDER]

EXERCISES: dict[str, Exercise] = {}
for _module in _MODULES:
    for _ex in importlib.import_module(f".{_module}", __name__).EXERCISES:
        assert _ex.name not in EXERCISES, f"exercise {_ex.name} is registered twice"
        EXERCISES[_ex.name] = _ex


def _make_check(ex: Exercise) -> Callable[..., Verdict]:
    def check(*funcs: Callable) -> Verdict:
        __tracebackhide__ = True
        return ex.check(*funcs)

    args = ", ".join(ex.funcs)
    check.__name__ = check.__qualname__ = ex.name
    check.__doc__ = (
        f"Check your `{ex.name}`: call as check.{ex.name}({args}).\n\n"
        "Prints one line when it is right and returns a truthy Verdict; otherwise prints what is\n"
        "wrong, with a hint, and raises CheckFailed (an AssertionError); an exercise not written yet\n"
        "prints one line and raises NotAttemptedYet (a CheckFailed), so that Run All stops there."
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

__all__ = ["CheckFailed", "EXERCISES", "NotAttemptedYet", "Verdict", "demo", *EXERCISES]
