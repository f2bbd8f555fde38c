"""Correct implementations of every exercise of the course, under the exercises' names.

Checks and the grader compare learners' code against these. They are written to be read:
one equation per line, the same names as in the notebooks. Each lives with its notebook, in
``course_utils/lessons/nbNN_*/reference.py``; this package finds a name there on first use,
so that the NumPy notebooks never wait for PyTorch:

    >>> from course_utils.reference import lstm_forward
    >>> lstm_forward.__module__
    'course_utils.lessons.nb05_lstm_numpy.reference'
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

_LESSONS = Path(__file__).resolve().parent.parent / "lessons"


def _public_names(path: Path) -> list[str]:
    """The public functions and classes a reference module defines, read from its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")]


def _where() -> dict[str, str]:
    """Public name -> the reference module that defines it, over every lesson (none imported)."""
    where: dict[str, str] = {}
    for path in sorted(_LESSONS.glob("nb*/reference.py")):
        module = f"course_utils.lessons.{path.parent.name}.reference"
        for name in _public_names(path):
            if name in where:
                raise ImportError(f"course_utils.reference.{name} is defined twice: in {where[name]} and {module}")
            where[name] = module
    return where


_WHERE = _where()
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # found once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:  # for editors only: go-to-definition on reference.<name> lands on its definition
    from course_utils.lessons.nb00_welcome.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb01_rnn_forward.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb02_bptt.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb03_vanishing_exploding.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb04_char_rnn_numpy.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb05_lstm_numpy.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb06_gru_numpy.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb07_numpy_to_pytorch.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb08_sentiment_classification.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb09_time_series_forecasting.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb10_seq2seq.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb11_attention.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb12_speech_ctc.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb13_image_captioning.reference import *  # noqa: F401,F403
    from course_utils.lessons.nb14_session_recommendation.reference import *  # noqa: F401,F403
