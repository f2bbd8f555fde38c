"""Grading a class: ``python -m course_utils grade SUBMISSIONS --out DIR``.

Each exercise of each submitted notebook runs in a fresh, locked-down child process on
hidden inputs; the grading process judges the plain arrays it gets back with the same
exercise definitions as the self-checks. See docs/grading.md for the workflow, the layouts
of SUBMISSIONS and the security model.
"""
from .grader import DEFAULT_SEED, SEED_ENV, Grade, Grader, GradingError, Options, grade
from .sandbox import Limits

__all__ = ["DEFAULT_SEED", "SEED_ENV", "Grade", "Grader", "GradingError", "Limits", "Options", "grade"]
