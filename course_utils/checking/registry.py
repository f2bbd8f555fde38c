"""Every exercise of the course, found where it is defined.

An exercise is registered by defining it at module level in its notebook's ``checks.py``,
under its own name (``rnn_forward = FunctionExercise("rnn_forward", ...)``); there is no other
list. Notebooks come in the course's order (``nb00_...`` to ``nb14_...``), exercises in the order
of definition.
"""
from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from .exercise import Exercise

LESSONS_PACKAGE = "course_utils.lessons"


class RegistryError(Exception):
    """An exercise is defined under another name, or twice."""


def lesson_names() -> list[str]:
    """The lesson packages, one per notebook, in the course's order: ["nb00_welcome", ...]."""
    package = importlib.import_module(LESSONS_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg and m.name.startswith("nb"))


def notebook_of(lesson: str) -> str:
    """The notebook a lesson belongs to: "nb05_lstm_numpy" -> "05_lstm_numpy"."""
    return lesson[2:]


def checks_module(lesson: str) -> ModuleType | None:
    """The lesson's ``checks`` module, or None for a lesson without exercises."""
    try:
        return importlib.import_module(f"{LESSONS_PACKAGE}.{lesson}.checks")
    except ModuleNotFoundError as e:
        if e.name == f"{LESSONS_PACKAGE}.{lesson}.checks":
            return None
        raise


def exercises_of(module: ModuleType) -> list[Exercise]:
    """The exercises a checks module defines: its module-level Exercise objects, each bound to its
    own name (an exercise imported from another lesson is reached as ``nb01.rnn_forward`` and is
    not one of this module's)."""
    found = []
    for var, value in vars(module).items():
        if isinstance(value, Exercise):
            if var != value.name:
                raise RegistryError(f"{module.__name__}: the exercise {value.name!r} is bound to the name {var!r}; "
                                    f"define it as `{value.name} = ...` so that check.{value.name} finds it")
            found.append(value)
    return found


def load() -> tuple[dict[str, Exercise], dict[str, str]]:
    """(exercise name -> Exercise, exercise name -> lesson), over every lesson."""
    exercises: dict[str, Exercise] = {}
    lesson_of: dict[str, str] = {}
    for lesson in lesson_names():
        module = checks_module(lesson)
        for ex in exercises_of(module) if module else ():
            if ex.name in exercises:
                raise RegistryError(f"exercise {ex.name!r} is defined twice: in {lesson_of[ex.name]} and in {lesson}")
            exercises[ex.name], lesson_of[ex.name] = ex, lesson
    return exercises, lesson_of
