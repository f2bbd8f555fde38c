"""`python -m course_utils doctor`: it finds nothing missing in the course, and finds each kind of gap."""
from __future__ import annotations

import json
from pathlib import Path

from course_utils import authoring
from course_utils.check import EXERCISES, LESSON_OF
from course_utils.checking.core import Mistake
from course_utils.checking.exercise import FunctionExercise
from course_utils.checking.registry import RegistryError, exercises_of, lesson_names
from course_utils.release import ROOT


def test_nothing_is_missing_in_the_course():
    assert authoring.doctor() == []


def test_every_notebook_has_its_lesson_and_the_lessons_come_in_course_order():
    lessons = lesson_names()
    assert [lesson[2:] for lesson in lessons] == sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
    assert list(dict.fromkeys(LESSON_OF.values())) == sorted(set(LESSON_OF.values()))


def _solution(tmp_path: Path, stem: str, cells: list[str]) -> None:
    (tmp_path / "solutions").mkdir(exist_ok=True)
    nb = {"cells": [{"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": None}
                    for s in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "solutions" / f"{stem}.ipynb").write_text(json.dumps(nb))


def test_a_marker_without_a_check_and_a_check_without_a_marker_are_reported(tmp_path):
    _solution(tmp_path, "01_rnn_forward", [
        "# EXERCISE 1.1: rnn_step_forward (2 points)\ndef rnn_step_forward(): ...", "check.rnn_step_forward(rnn_step_forward)",
        "# EXERCISE 1.9: rnn_new_thing (1 point)\ndef rnn_new_thing(): ...", "print('no check here')"])
    markers = authoring.solution_markers(tmp_path)
    problems = "\n".join(authoring.exercise_problems(markers, EXERCISES, {"rnn_step_forward": "nb01_rnn_forward",
                                                                        "rnn_forward": "nb01_rnn_forward"}))
    assert "marks exercise rnn_new_thing, which has no check" in problems
    assert "exercise rnn_forward (course_utils/lessons/nb01_rnn_forward/checks.py) is marked in no solution" in problems
    assert "rnn_step_forward" not in problems


def test_an_exercise_without_its_check_cell_is_reported(tmp_path):
    _solution(tmp_path, "01_rnn_forward", ["# EXERCISE 1.1: rnn_step_forward (2 points)\ndef rnn_step_forward(): ...",
                                           "x = 1"])
    problems = authoring.exercise_problems(authoring.solution_markers(tmp_path), EXERCISES,
                                           {"rnn_step_forward": "nb01_rnn_forward"})
    assert problems == ["solutions/01_rnn_forward.ipynb: exercise rnn_step_forward has no "
                        "`check.rnn_step_forward(...)` cell after its hints"]


def test_a_lesson_without_proofs_or_an_exercise_without_a_correct_solution_is_reported(tmp_path):
    (tmp_path / "tests" / "lessons").mkdir(parents=True)
    lesson_of = {"rnn_step_forward": "nb01_rnn_forward", "rnn_forward": "nb01_rnn_forward",
                 "lstm_forward": "nb05_lstm_numpy"}
    (tmp_path / "tests" / "lessons" / "test_nb01_rnn_forward.py").write_text(
        'proofs = Proofs("nb01_rnn_forward")\nproofs.correct("rnn_step_forward", f)\n')
    problems = "\n".join(authoring.proof_problems(tmp_path, EXERCISES, lesson_of))
    assert "nb05_lstm_numpy: no proofs" in problems
    assert "rnn_forward: no correct solution written differently" in problems
    assert "rnn_step_forward:" not in problems


def test_a_catalogue_of_fewer_than_two_mistakes_is_reported(tmp_path):
    (tmp_path / "tests" / "lessons").mkdir(parents=True)
    (tmp_path / "tests" / "lessons" / "test_nb00_welcome.py").write_text(
        'proofs = Proofs("nb00_welcome")\nproofs.correct("lonely", f)\n')
    lonely = FunctionExercise("lonely", ("y",), abs, lambda rng, N: {"x": rng.standard_normal(N)}, ("N",),
                              mistakes=[Mistake("one", implementation=abs)])
    problems = authoring.proof_problems(tmp_path, {"lonely": lonely}, {"lonely": "nb00_welcome"})
    assert len(problems) == 1 and "its catalogue has 1 mistake(s)" in problems[0]


def test_a_lesson_and_a_notebook_that_do_not_pair_are_reported(tmp_path):
    _solution(tmp_path, "15_new_notebook", [])
    _solution(tmp_path, "00_welcome", [])
    problems = authoring.notebook_problems(tmp_path, ["nb00_welcome", "nb16_orphan"])
    assert problems[0].startswith("solutions/15_new_notebook.ipynb has no lesson package")
    assert problems[1] == "course_utils/lessons/nb16_orphan/ has no notebook solutions/16_orphan.ipynb"


def test_an_exercise_bound_to_another_name_is_refused():
    import types

    module = types.ModuleType("course_utils.lessons.nb99_test.checks")
    module.SOMETHING = FunctionExercise("something", ("y",), abs, lambda rng, N: {}, ("N",))
    try:
        exercises_of(module)
    except RegistryError as e:
        assert "define it as `something = ...`" in str(e)
    else:
        raise AssertionError("an exercise under another name was registered")


def test_check_of_an_exercise_is_the_exercise_defined_with_its_notebook():
    from course_utils import check
    from course_utils.lessons.nb01_rnn_forward import checks

    assert check.rnn_forward is checks.rnn_forward is EXERCISES["rnn_forward"]
    assert LESSON_OF["rnn_forward"] == "nb01_rnn_forward"
