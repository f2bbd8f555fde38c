"""The one proof harness of every check, NumPy and PyTorch, forward and backward.

A check that cannot fail is a defect, and so is one whose verdict depends on a random draw.
Each notebook's test file (tests/lessons/test_nbNN_*.py) proves its checks with it:

    proofs = Proofs("nb05_lstm_numpy")
    proofs.correct("lstm_step_forward", lstm_step_forward_written_differently)
    proofs.correct("lstm_step_backward", lstm_step_forward, lstm_step_backward_written_differently)
    proofs.wrong("lstm_forward", lstm_forward_in_place, message="changed its input")  # not a catalogue mistake
    globals().update(proofs.tests())

and the harness proves, for every exercise the lesson defines (``course_utils/lessons/<lesson>/
checks.py``; nothing else to list):

- the reference passes, in about a second at most;
- every correct solution registered here passes, under several seeds;
- every mistake of the exercise's catalogue is rejected with its own hint: a mistake given as a
  wrong implementation is run through the check; one given as a model of its outputs is judged
  on the check's cases under several seeds (the catalogue is written once, in checks.py);
- every other wrong solution registered here is rejected with the message given, and its hint is
  not a catalogue hint (a catalogued mistake belongs in the catalogue, not here);
- a stub is "not attempted yet", and the public check prints that in one line and raises
  NotAttemptedYet; the public check prints one "✓" line when right, and raises CheckFailed
  with a hint when wrong; a wrong call is an error that shows the usage;
- for NumPy function exercises: a crash is reported as wrong and names the exception.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pytest

from course_utils import check
from course_utils import reference as ref
from course_utils.check import EXERCISES, LESSON_OF
from course_utils.checking.core import TOLERANCE, as_array, matches, quiet_numpy
from course_utils.checking.exercise_torch import TorchExercise

SEEDS = (1, 2, 3)  # a correct solution must pass under each of these
WRONG_SEED = 0  # wrong solutions are judged on fixed draws, so a failure is reproducible


def run(exercise: str, *funcs: Callable, seed: int = WRONG_SEED):
    """The check's verdict on ``funcs``, on the inputs drawn from ``seed`` (no printing)."""
    return EXERCISES[exercise].run(*funcs, rng=np.random.default_rng(seed))


def reference_funcs(exercise: str) -> tuple:
    """The reference's functions, as a check of ``exercise`` takes them."""
    return tuple(getattr(ref, f) for f in EXERCISES[exercise].funcs)


def function_stub(name: str) -> Callable:
    """A function exercise as handed out: it only raises NotImplementedError."""
    def stub(*args, **kwargs):
        raise NotImplementedError(f"Exercise: {name}")
    stub.__name__ = name
    return stub


def module_stub(name: str) -> type:
    """A module exercise as handed out: its forward only raises NotImplementedError."""
    from torch import nn

    def __init__(self, *args, **kwargs):
        nn.Module.__init__(self)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Exercise: {name}")

    return type(name, (nn.Module,), {"__init__": __init__, "forward": forward})


def default_stub(name: str) -> Callable:
    return module_stub(name) if name[:1].isupper() else function_stub(name)


def crashes_with_shape_error(*args, **kwargs):
    return np.ones((2, 3)) @ np.ones((4, 5))


def modelled_outputs(ex, mistake, case):
    """What a learner making this mistake returns, as the check sees it: the mistake's outputs,
    and the reference's for any output the mistake does not model. None where the mistake cannot
    run on this case (swapped weights that do not multiply, for example)."""
    try:
        with quiet_numpy():
            outputs = {**ex.expected(case), **ex.mistake_outputs(mistake, case)}
    except (ValueError, IndexError, TypeError, RuntimeError):
        return None
    return {name: as_array(np.array(value), name) for name, value in outputs.items()}


def prove_model(ex, k: int) -> None:
    """Catalogue entry ``k`` of ``ex``, as a model of outputs: on every seed some case tells it
    apart from the reference, and the check names it (or an earlier entry with the very same
    outputs does, or the check's own words on a nan, which no model can match)."""
    mistake = ex.mistakes[k]
    for seed in SEEDS:
        for case in ex.cases(np.random.default_rng(seed)):
            outputs = modelled_outputs(ex, mistake, case)
            verdict = None if outputs is None else ex.judge(case, outputs)
            if verdict is not None:
                break
        else:
            pytest.fail(f"seed {seed}: no case of check.{ex.name} tells this mistake apart: {mistake.hint}")
        assert verdict.status == "wrong"
        if verdict.hint == mistake.hint:
            continue
        finite = all(np.all(np.isfinite(v)) for v in outputs.values() if v.dtype.kind == "f")
        tol = max(TOLERANCE[case.dtype], 1e-6)  # as the check's own matching
        same_as_earlier = [earlier.hint for earlier in ex.mistakes[:k]
                           if (other := modelled_outputs(ex, earlier, case)) is not None
                           and matches(outputs, other, tol)]
        assert verdict.hint in same_as_earlier or (not finite and verdict.hint), (
            f"seed {seed}, {case.label}: the hint should be {mistake.hint!r}, but it is {verdict.hint!r}")


def prove_implementation(ex, k: int) -> None:
    """Catalogue entry ``k`` of ``ex``, as a wrong implementation: the check rejects it, on the
    fixed draw and on every seed, with this entry's hint (or an earlier entry's, when that entry
    explains the very same outputs)."""
    mistake = ex.mistakes[k]
    for seed in (WRONG_SEED, *SEEDS):
        verdict = run(ex.name, *ex.with_reference(mistake.implementation), seed=seed)
        assert verdict.status == "wrong", f"seed {seed}: check.{ex.name} passed the mistake {mistake.hint!r}"
        earlier = [m.hint for m in ex.mistakes[:k]]
        assert verdict.hint == mistake.hint or verdict.hint in earlier, (
            f"seed {seed}: the hint should be {mistake.hint!r}\n{verdict.message}")


class Proofs:
    """The proofs of one lesson's checks (see the module's docstring)."""

    def __init__(self, lesson: str, min_correct: int = 1, stub: Callable[[str], Callable] = default_stub):
        self.lesson, self.min_correct, self.stub = lesson, min_correct, stub
        self.names = [name for name, where in LESSON_OF.items() if where == lesson]
        self.CORRECT: list = []  # pytest.param(exercise, funcs)
        self.WRONG: list = []  # pytest.param(exercise, funcs, hint, message, output)

    def correct(self, exercise: str, *funcs: Callable) -> None:
        """A correct solution written differently from the reference: the check must pass it.
        ``funcs`` as the check takes them (a backward exercise: forward, then backward)."""
        assert exercise in self.names, f"{exercise} is not an exercise of {self.lesson}"
        self.CORRECT.append(pytest.param(exercise, funcs, id=f"{exercise}-{funcs[-1].__name__}"))

    def wrong(self, exercise: str, *funcs: Callable, message: str, hint: str = "", output: str | None = None) -> None:
        """A wrong solution that is not a catalogue mistake (the check's own words on a crash, a
        dtype, an input changed in place, a missing output...): the check must call it wrong, with
        ``message`` in its text, ``hint`` in its hint and, when given, blame ``output``."""
        assert exercise in self.names, f"{exercise} is not an exercise of {self.lesson}"
        self.WRONG.append(pytest.param(exercise, funcs, hint, message, output, id=f"{exercise}-{funcs[-1].__name__}"))

    def catalogue(self) -> list:
        return [pytest.param(name, k, id=f"{name}-{k}") for name in self.names
                for k in range(len(EXERCISES[name].mistakes))]

    def tests(self) -> dict[str, Callable]:
        """The proofs, as test functions to put into the test module's globals."""
        tests = [self._test_every_exercise_is_proven(), *self._tests_of_right_answers(),
                 *self._tests_of_wrong_answers(), *self._tests_of_stubs_and_calls()]
        return {f.__name__: f for f in tests}

    def _test_every_exercise_is_proven(self):
        names, CORRECT, min_correct, lesson = self.names, self.CORRECT, self.min_correct, self.lesson

        def test_every_exercise_is_proven():
            assert names, f"{lesson} defines no exercise"
            for name in names:
                assert sum(p.values[0] == name for p in CORRECT) >= min_correct, (
                    f"{name}: register a correct solution written differently from the reference")
                assert len(EXERCISES[name].mistakes) >= 2, f"{name}: its catalogue needs two mistakes or more"
        return test_every_exercise_is_proven

    def _tests_of_right_answers(self):
        names, CORRECT = self.names, self.CORRECT

        @pytest.mark.parametrize("exercise", names)
        def test_reference_passes_within_about_a_second(exercise):
            EXERCISES[exercise].run(*reference_funcs(exercise))  # the first call pays for imports and warm-up
            start = time.process_time()  # CPU time: a busy machine must not fail this test
            verdict = EXERCISES[exercise].run(*reference_funcs(exercise))
            elapsed = time.process_time() - start
            assert verdict.status == "passed", verdict.message
            assert elapsed < 1.5, f"check.{exercise} took {elapsed:.2f} s of CPU time"

        @pytest.mark.parametrize("seed", SEEDS)
        @pytest.mark.parametrize("exercise, funcs", CORRECT)
        def test_correct_solution_passes(exercise, funcs, seed):
            verdict = run(exercise, *funcs, seed=seed)
            assert verdict.status == "passed", verdict.message

        @pytest.mark.parametrize("exercise", names)
        def test_public_check_prints_one_line_when_right(exercise, capsys):
            assert getattr(check, exercise)(*reference_funcs(exercise))
            out = capsys.readouterr().out
            assert out.startswith("✓") and out.count("\n") == 1, out

        return test_reference_passes_within_about_a_second, test_correct_solution_passes, \
            test_public_check_prints_one_line_when_right

    def _tests_of_wrong_answers(self):
        names, WRONG = self.names, self.WRONG

        @pytest.mark.parametrize("exercise, k", self.catalogue())
        def test_catalogued_mistake_is_rejected_with_its_hint(exercise, k):
            ex = EXERCISES[exercise]
            if ex.mistakes[k].outputs is not None:
                prove_model(ex, k)
            if ex.mistakes[k].implementation is not None:
                prove_implementation(ex, k)

        @pytest.mark.parametrize("exercise, funcs, hint, message, output", WRONG)
        def test_other_wrong_solution_is_rejected(exercise, funcs, hint, message, output):
            verdict = run(exercise, *funcs)
            assert verdict.status == "wrong", verdict.message
            assert hint in verdict.hint and message in verdict.message, verdict.message
            if output is not None:
                assert verdict.output == output, verdict.message
            catalogued = {m.hint for m in EXERCISES[exercise].mistakes}
            assert verdict.hint not in catalogued, (
                "this is a catalogue mistake: give its wrong implementation in the catalogue "
                "(Mistake(..., implementation=...)) instead of here")

        @pytest.mark.parametrize("exercise", names)
        def test_public_check_raises_with_a_hint_when_wrong(exercise, capsys):
            ex = EXERCISES[exercise]
            wrong = [m.implementation for m in ex.mistakes if m.implementation is not None]
            funcs = ex.with_reference(wrong[0]) if wrong else next(
                (p.values[1] for p in WRONG if p.values[0] == exercise), None)
            if funcs is None:
                pytest.skip("no wrong implementation to call the public check with")
            with pytest.raises(check.CheckFailed):
                getattr(check, exercise)(*funcs)
            out = capsys.readouterr().out
            assert out.startswith("✗") and "hint:" in out, out

        return test_catalogued_mistake_is_rejected_with_its_hint, test_other_wrong_solution_is_rejected, \
            test_public_check_raises_with_a_hint_when_wrong

    def _tests_of_stubs_and_calls(self):
        names, stub = self.names, self.stub

        @pytest.mark.parametrize("exercise", names)
        def test_stub_is_not_attempted_and_stops_run_all(exercise, capsys):
            ex = EXERCISES[exercise]
            verdict = run(exercise, *[stub(f) for f in ex.funcs])
            assert verdict.status == "not attempted" and not verdict, verdict.message
            assert "not attempted yet" in verdict.message
            if len(ex.funcs) > 1:  # the forward done, the backward still a stub
                assert run(exercise, *ex.with_reference(stub(exercise))).status == "not attempted"
            with pytest.raises(check.NotAttemptedYet) as raised:
                getattr(check, exercise)(*[stub(f) for f in ex.funcs])
            assert capsys.readouterr().out.count("\n") == 1
            assert isinstance(raised.value, AssertionError) and len(raised.value._render_traceback_()) == 1

        @pytest.mark.parametrize("exercise", names)
        def test_a_wrong_call_is_an_error_that_shows_the_usage(exercise):
            ex = EXERCISES[exercise]
            usage = f"check.{exercise}({', '.join(ex.funcs)})"
            # [1:]: a backward check called with the backward function alone, without the forward
            for funcs in [(), ("not a function",) * len(ex.funcs), reference_funcs(exercise) * 2,
                          reference_funcs(exercise)[1:]]:
                verdict = ex.run(*funcs)
                assert verdict.status == "error" and usage in verdict.message, (funcs, verdict.message)

        numpy_functions = [n for n in names if not isinstance(EXERCISES[n], TorchExercise)]

        @pytest.mark.parametrize("exercise", numpy_functions)
        def test_a_crash_is_reported_as_wrong_and_named(exercise):
            verdict = run(exercise, *EXERCISES[exercise].with_reference(crashes_with_shape_error))
            assert verdict.status == "wrong" and "your code raised an error" in verdict.message, verdict.message
            assert "ValueError" in verdict.message, verdict.message

        return test_stub_is_not_attempted_and_stops_run_all, test_a_wrong_call_is_an_error_that_shows_the_usage, \
            test_a_crash_is_reported_as_wrong_and_named
