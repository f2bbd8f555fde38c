"""The generic proofs of a set of checks, shared by the test files of the PyTorch notebooks.

A test file registers, for its exercises, correct solutions written differently from the
reference and realistic mistakes with the hint each must get, then adds the generic tests:

    proofs = Proofs(["Encoder", "Decoder"], min_correct=2)
    correct, wrong, run = proofs.correct, proofs.wrong, proofs.run
    correct("Encoder", EncoderWithMasking)
    wrong("Encoder", EncoderWithoutPacking, "the GRU read the padding too")
    ...
    globals().update(proofs.tests(stub=lambda exercise: STUBS[exercise]))

The generic tests prove, for every exercise: it is registered and has at least `min_correct`
correct solutions and two mistakes; the reference passes within about a second; every correct
solution passes under several seeds; every mistake is rejected with its hint; a stub is "not
attempted yet" (and the public check prints that without raising); the public check prints one
"✓" line when right and raises CheckFailed with a hint when wrong.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pytest

from course_utils import check
from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.checking.exercise_torch import TorchExercise

SEEDS = (1, 2, 3)  # a correct solution must pass under each of these
WRONG_SEED = 0  # wrong solutions are judged on fixed draws, so a failure is reproducible


class Proofs:
    def __init__(self, names: list[str], min_correct: int = 1):
        self.names, self.min_correct = list(names), min_correct
        self.CORRECT: list = []  # pytest.param(exercise, func)
        self.WRONG: list = []  # pytest.param(exercise, func, hint, message, output)

    def correct(self, exercise: str, func) -> None:
        self.CORRECT.append(pytest.param(exercise, func, id=f"{exercise}-{func.__name__}"))

    def wrong(self, exercise: str, func, hint: str, message: str = "", output: str | None = None) -> None:
        self.WRONG.append(pytest.param(exercise, func, hint, message, output, id=f"{exercise}-{func.__name__}"))

    @staticmethod
    def run(exercise: str, func, seed: int = WRONG_SEED):
        return EXERCISES[exercise].run(func, rng=np.random.default_rng(seed))

    def tests(self, stub: Callable[[str], Callable]) -> dict[str, Callable]:
        """The generic tests, to put into the test module's globals (call it after registering)."""
        names, CORRECT, WRONG, run = self.names, self.CORRECT, self.WRONG, self.run
        min_correct = self.min_correct

        def test_every_exercise_is_registered_and_tested():
            assert set(names) <= set(EXERCISES)
            for name in names:
                assert isinstance(EXERCISES[name], TorchExercise)
                assert callable(getattr(check, name))
                assert sum(p.values[0] == name for p in CORRECT) >= min_correct, name
                assert sum(p.values[0] == name for p in WRONG) >= 2, name

        @pytest.mark.parametrize("exercise", names)
        def test_reference_passes_within_about_a_second(exercise):
            getattr(ref, exercise)  # torch imported, outside the timing
            EXERCISES[exercise].run(getattr(ref, exercise))  # the first call pays for PyTorch's own warm-up
            start = time.perf_counter()
            verdict = EXERCISES[exercise].run(getattr(ref, exercise))
            elapsed = time.perf_counter() - start
            assert verdict.status == "passed", verdict.message
            assert elapsed < 1.5, f"check.{exercise} took {elapsed:.2f} s"

        @pytest.mark.parametrize("seed", SEEDS)
        @pytest.mark.parametrize("exercise, func", CORRECT)
        def test_correct_solution_passes(exercise, func, seed):
            verdict = run(exercise, func, seed=seed)
            assert verdict.status == "passed", verdict.message

        @pytest.mark.parametrize("exercise, func, hint, message, output", WRONG)
        def test_mistake_is_rejected_with_the_right_hint(exercise, func, hint, message, output):
            verdict = run(exercise, func)
            assert verdict.status == "wrong", verdict.message
            assert hint in verdict.hint, verdict.message
            assert message in verdict.message, verdict.message
            if output is not None:
                assert verdict.output == output, verdict.message

        @pytest.mark.parametrize("exercise", names)
        def test_stub_is_not_attempted(exercise, capsys):
            verdict = run(exercise, stub(exercise))
            assert verdict.status == "not attempted" and not verdict, verdict.message
            with pytest.raises(check.NotAttemptedYet):  # the public check prints one line, and Run All stops
                getattr(check, exercise)(stub(exercise))
            assert capsys.readouterr().out.count("\n") == 1

        @pytest.mark.parametrize("exercise", names)
        def test_public_check_prints_one_line_when_right_and_raises_when_wrong(exercise, capsys):
            assert getattr(check, exercise)(getattr(ref, exercise))
            out = capsys.readouterr().out
            assert out.startswith("✓") and out.count("\n") == 1, out
            first_wrong = next(p.values[1] for p in WRONG if p.values[0] == exercise)
            with pytest.raises(check.CheckFailed):
                getattr(check, exercise)(first_wrong)
            out = capsys.readouterr().out
            assert out.startswith("✗") and "hint:" in out, out

        return {f.__name__: f for f in (
            test_every_exercise_is_registered_and_tested, test_reference_passes_within_about_a_second,
            test_correct_solution_passes, test_mistake_is_rejected_with_the_right_hint,
            test_stub_is_not_attempted, test_public_check_prints_one_line_when_right_and_raises_when_wrong)}
