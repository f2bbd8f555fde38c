"""Properties every registered check must have, whatever its notebook.

- Each known mistake in its catalogue is told apart from the reference on the check's own
  cases, whatever the random draw, and gets its own hint. (An earlier entry with the very
  same outputs may answer for it, and so may the check's words on a nan, since a catalogue
  entry cannot match nan.)
- Its plans (how the learner's code is to be called) are plain data that the grader can
  send to its child process.

The per-exercise proofs (correct code written differently passes, realistic mistakes are
rejected with the right hint) are in tests/test_checks*.py, one file per part of the course.
"""
import numpy as np
import pytest

from course_utils.check import EXERCISES
from course_utils.checking.core import TOLERANCE, as_array, matches, quiet_numpy

SEEDS = (1, 2, 3)


def mistake_outputs(ex, mistake, case):
    """What a learner making this mistake returns, as the check sees it: the mistake's outputs,
    and the reference's for any output the mistake does not model. None where the mistake
    cannot run on this case (swapped weights that do not multiply, for example)."""
    try:
        with quiet_numpy():
            outputs = {**ex.expected(case), **mistake.outputs(case)}
    except (ValueError, IndexError, TypeError, RuntimeError):
        return None
    return {name: as_array(np.array(value), name) for name, value in outputs.items()}


CATALOGUE = [pytest.param(name, k, id=f"{name}-{k}")
             for name, ex in EXERCISES.items() for k in range(len(ex.mistakes))]


@pytest.mark.parametrize("exercise, k", CATALOGUE)
def test_every_catalogued_mistake_is_caught_and_named(exercise, k):
    ex = EXERCISES[exercise]
    mistake = ex.mistakes[k]
    for seed in SEEDS:
        for case in ex.cases(np.random.default_rng(seed)):
            outputs = mistake_outputs(ex, mistake, case)
            verdict = None if outputs is None else ex.judge(case, outputs)
            if verdict is not None:
                break
        else:
            pytest.fail(f"seed {seed}: no case of check.{exercise} tells this mistake apart: {mistake.hint}")
        assert verdict.status == "wrong"
        if verdict.hint == mistake.hint:
            continue
        finite = all(np.all(np.isfinite(v)) for v in outputs.values() if v.dtype.kind == "f")
        tol = max(TOLERANCE[case.dtype], 1e-6)  # as the check's own matching
        same_as_earlier = [earlier.hint for earlier in ex.mistakes[:k]
                           if (other := mistake_outputs(ex, earlier, case)) is not None
                           and matches(outputs, other, tol)]
        assert verdict.hint in same_as_earlier or (not finite and verdict.hint), (
            f"seed {seed}, {case.label}: the hint should be {mistake.hint!r}, but it is {verdict.hint!r}")


@pytest.mark.parametrize("exercise", sorted(EXERCISES))
def test_plans_are_plain_data_for_the_graders_child(exercise):
    sandbox = pytest.importorskip("course_utils.grading.sandbox")
    ex = EXERCISES[exercise]
    for case in ex.cases(np.random.default_rng(0)):
        convention, params = ex.plan(case)
        sandbox.encode(params, {})  # raises TypeError on anything but plain data
