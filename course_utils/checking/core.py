"""The machinery every check shares: cases, calling the learner's code, verdicts.

A check is split in two so that the instructor's grader can reuse it safely:

* ``Exercise.call(funcs, case)`` runs the learner's functions on one case and returns
  plain arrays (``{name: ndarray}``). In a self-check it runs here; in the grader it runs
  in a locked-down child process.
* ``Exercise.judge(case, outputs)`` compares those arrays with the reference and the
  catalogue of known mistakes and returns a ``Verdict``. It never runs learner code.
"""
from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .conventions import (  # noqa: F401  (re-exported)
    NotAttempted, ReturnError, as_array, call_safely, copy_args, modified_inputs, quiet_numpy, unpack,
)

PASS, FAIL, TODO = "✓", "✗", "○"

# Errors are measured relative to the size of the expected values:
#     error = max |actual - expected| / max(1, max |expected|)
# Correct float64 code differs from the reference by ~1e-15; float32 code by ~1e-7.
TOLERANCE = {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 1e-4}


class CheckFailed(AssertionError):
    """Raised by a check whose exercise is wrong, after the explanation was printed.

    IPython shows ``_render_traceback_()`` instead of a traceback, so the learner reads the
    verdict and one line under it; pytest and nbval still see an ``AssertionError``."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


@dataclass
class Case:
    """One set of inputs. ``args`` are the forward function's arguments, in order."""

    label: str
    args: dict[str, Any]
    douts: dict[str, np.ndarray] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first floating-point argument (float64 when there is none)."""
        for v in self.args.values():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                return v.dtype
        return np.dtype(np.float64)


@dataclass
class Mistake:
    """A known mistake, written once: what to tell the learner, and either a wrong implementation
    (``implementation``: the learner's function or module with this mistake in it) or a model of
    what the mistake makes the outputs look like (``outputs(case) -> {output name: value}``), or
    both. The check matches a wrong answer against it; tests/proofs.py proves, from this same
    entry, that the check rejects the mistake with this hint.

    An implementation stands in for the exercise's own function (the last of ``Exercise.funcs``;
    any earlier ones, such as the forward function of a backward exercise, are the reference's).
    Where both are given, the model matches and the implementation proves that the model is right.
    """

    hint: str
    outputs: Callable[[Case], dict[str, Any]] | None = None
    implementation: Callable | None = None

    def __post_init__(self) -> None:
        if self.outputs is None and self.implementation is None:
            raise TypeError(f"Mistake({self.hint[:40]!r}...) needs an implementation or a model of its outputs")


def attach_implementations(mistakes: list[Mistake], implementations: dict[str, Callable]) -> list[Mistake]:
    """The catalogue ``mistakes``, each entry whose hint contains a key of ``implementations`` given
    that wrong implementation: ``{"g uses tanh": _wrong_sigmoid_g, ...}``. For catalogues built
    elsewhere (the sequence versions of the step mistakes, from ``checking.variants``); the proofs
    then run each implementation through the check, which also proves the entry's model right.
    A key must name exactly one entry."""
    joined = list(mistakes)
    for key, implementation in implementations.items():
        found = [k for k, m in enumerate(joined) if key in m.hint]
        if len(found) != 1:
            raise ValueError(f"{key!r} is in the hints of {len(found)} catalogue entries; it should name one")
        joined[found[0]] = dataclasses.replace(joined[found[0]], implementation=implementation)
    return joined


@dataclass
class Verdict:
    """The outcome of a check. Truthy when the exercise passed."""

    exercise: str
    status: str  # "passed", "not attempted", "wrong", "error"
    lines: list[str]
    hint: str = ""
    output: str = ""  # the output name that was wrong, if any
    mistake: str = ""  # the hint of the catalogue Mistake that explained the output, if one did

    def __bool__(self) -> bool:
        return self.status == "passed"

    @property
    def message(self) -> str:
        """The verdict's lines as one text, as the self-check prints it."""
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        return f"<{self.exercise}: {self.status}>"

    def _ipython_display_(self) -> None:
        """A check cell shows the printed verdict line only, not this object as well."""


def describe(case: Case) -> str:
    """The case as the verdict names it: its label, with the dtype when its inputs are floats."""
    floats = any(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in case.args.values())
    return f"{case.label} ({case.dtype.name})" if floats or type(case).dtype is not Case.dtype else case.label


def relative_error(actual: np.ndarray, expected: np.ndarray) -> tuple[float, tuple]:
    """The largest difference, relative to the size of the values, and where it is."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.abs(actual - expected)
    if diff.size == 0:
        return 0.0, ()
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    scale = max(1.0, float(np.max(np.abs(expected))))
    return float(diff[where]) / scale, tuple(int(i) for i in where)


def fmt_shape(shape) -> str:
    """A shape as Python writes a tuple: ``(3,)``, ``(2, 4)``."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_index(name: str, where: tuple) -> str:
    """``name[i, j]``, or just ``name`` for a scalar."""
    return f"{name}[{', '.join(map(str, where))}]" if where else name


def matches(outputs: dict, candidate: dict, tol: float) -> bool:
    """Whether every output the learner returned equals the candidate's within tol."""
    try:
        for name, value in candidate.items():
            if name not in outputs:
                continue
            a = outputs[name]
            v = np.asarray(value)
            if a.shape != v.shape or not np.all(np.isfinite(v)) or not np.all(np.isfinite(a)):
                return False
            if relative_error(a, v)[0] > tol:
                return False
        return True
    except Exception:  # a mistake model that cannot run on this case does not match
        return False


class NotAttemptedYet(CheckFailed):
    """Raised by a check whose exercise is still a stub, after its one line: "Run All" stops at
    the first exercise left to do (instead of failing further down, in the cells that use it),
    and a test cell built on the check fails. Jupyter shows one line for it, like CheckFailed."""


def report(verdict: Verdict, quiet: bool = False) -> Verdict:
    """Print a verdict; raise CheckFailed if the exercise is wrong, NotAttemptedYet if it is a stub."""
    __tracebackhide__ = True
    if not quiet:
        print(verdict.message)
    if verdict.status in ("wrong", "error"):
        stop(f"{verdict.exercise} is not right yet: see the explanation above.")
    if verdict.status == "not attempted":
        raise NotAttemptedYet(f"Run All stops here: write {verdict.exercise} above, then run this cell again.")
    return verdict


def stop(message: str) -> None:
    """Raise CheckFailed with ``message``, from a frame that shows only this line."""
    # Jupyter always shows the frame that raises, so this one line is what a learner sees of it.
    raise CheckFailed(message)  # the check failed: read the explanation printed above


def finite_or_explain(name: str, a: np.ndarray) -> str | None:
    """A reason when ``a`` holds nan or inf ("`h` contains nan values"), else None."""
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = "nan" if np.isnan(a).any() else "inf"
        return f"`{name}` contains {bad} values"
    return None


def isclose_scalar(a: float, b: float, tol: float) -> bool:
    """Whether ``a`` is finite and within ``tol`` of ``b``, relative to max(1, |b|)."""
    return math.isfinite(a) and abs(a - b) / max(1.0, abs(b)) <= tol
