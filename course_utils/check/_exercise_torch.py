"""PyTorch exercises: the learner's function or module runs through a convention of
``_calls`` (in the grader, in the child process); the expected outputs come from running
the reference through the very same convention, here in the trusted process.

All checks run in float64, so that a correct module matches the reference to ~1e-12 and
the tolerance (1e-7, relative) separates right from wrong by orders of magnitude.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._calls import run_plan
from ._core import Case, Mistake
from ._exercise import Exercise


class TorchExercise(Exercise):
    """``make_cases(rng) -> [Case]`` where each case's ``options["plan"]`` holds the convention's
    parameters except the plain inputs, which are ``case.args``."""

    def __init__(self, name: str, convention: str, reference: Callable | str, make_cases: Callable,
                 outputs: Sequence[str], mistakes: Sequence[Mistake] = (), hints: dict | None = None):
        self.name, self.convention, self._reference = name, convention, reference
        self.funcs = (name,)
        self.make_cases = make_cases
        self.outputs = tuple(outputs)
        self.mistakes = list(mistakes)
        self.hints = hints or {}

    @property
    def reference(self):
        if isinstance(self._reference, str):  # imported lazily: torch loads only when needed
            from course_utils import reference

            return getattr(reference, self._reference)
        return self._reference

    def cases(self, rng: np.random.Generator) -> list[Case]:
        return self.make_cases(rng)

    def plan(self, case: Case) -> tuple[str, dict]:
        params = dict(case.options["plan"])
        if self.convention == "torch_load":  # the layer runs on x and h0; the rest are the weights to load
            params.update(x=case.args["x"], h0=case.args["h0"],
                          weights={k: v for k, v in case.args.items() if k not in ("x", "h0")})
        else:
            params["args"] = case.args
        return self.convention, params

    def expected(self, case: Case) -> dict:
        outputs, _ = run_plan((self.reference,), *self.plan(case))
        return outputs
