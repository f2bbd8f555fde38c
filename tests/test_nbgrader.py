"""The course on nbgrader: the export to an nbgrader source assignment, the grader reading nbgrader's
collected layout, and the round trip on a tiny class, where nbgrader's autograde and the course's
grader must give the same points, exercise by exercise.

The round trip (notebook 01, three students: the solution, the blank hand-out, one realistic
mistake) runs nbgrader's generate_assignment and autograde through its Python API in a temporary
course directory, with this Python's kernel.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import sys
import time
import warnings
from pathlib import Path

import grading_corpus as corpus
import nbformat
import pytest
from conftest import NOTEBOOKS, SOLUTIONS
from test_grading import LIMITS, LINUX, SEED, course_00_02

from course_utils import check
from course_utils.__main__ import main
from course_utils.check import EXERCISES
from course_utils.grading import Options, grade
from course_utils.grading.submissions import assign, discover, identify, load_course, read_submission
from course_utils.nbgrader_export import CONFIG, ExportError, export_nbgrader
from course_utils.release import find_exercises

NB = "01_rnn_forward"
TIMESTAMP = "2025-01-15 10:30:00.000000 UTC"  # as nbgrader's submit writes it
HAVE_01 = (SOLUTIONS / f"{NB}.ipynb").exists() and (NOTEBOOKS / f"{NB}.ipynb").exists()
needs_01 = pytest.mark.skipif(not HAVE_01, reason="notebook 01 is not written yet")


def nbgrader_cells(nb) -> dict[str, dict]:
    """grade_id -> the nbgrader metadata and source of each nbgrader cell."""
    return {c.metadata["nbgrader"]["grade_id"]: {**c.metadata["nbgrader"], "source": c.source,
                                                 "cell_type": c.cell_type}
            for c in nb.cells if "nbgrader" in c.metadata}


# --- the export --------------------------------------------------------------------------------------


@needs_01
def test_export_makes_answer_cells_and_locked_test_cells_worth_the_exercises_points(tmp_path):
    assert main(["export-nbgrader", str(tmp_path), "--notebooks", "01"]) == 0
    nb = nbformat.read(tmp_path / "source" / NB / f"{NB}.ipynb", as_version=4)
    cells = nbgrader_cells(nb)
    solution = nbformat.read(SOLUTIONS / f"{NB}.ipynb", as_version=4)
    exercises = [m for c in solution.cells if c.cell_type == "code" for m in find_exercises(c.source)]
    assert exercises
    for ex in exercises:
        answer, test = cells[ex.name], cells[f"test_{ex.name}"]
        assert (answer["solution"], answer["grade"], answer["locked"]) == (True, False, False)
        assert "### BEGIN SOLUTION" in answer["source"] and f"EXERCISE {ex.number}: {ex.name}" in answer["source"]
        assert (test["solution"], test["grade"], test["locked"], test["points"]) == (False, True, True, ex.points)
        assert test["source"] == f"check.{ex.name}({ex.name})"  # the course's check cell, nbval's marker dropped
    others = [c for gid, c in cells.items() if not c["grade"] and not c["solution"]]
    assert others and all(c["locked"] for c in others)
    assert len(cells) == len(nb.cells) and all(c.get("outputs", []) == [] for c in nb.cells)
    assert {c["schema_version"] for c in cells.values()} == {3}


@needs_01
def test_export_of_several_notebooks_as_one_assignment_with_config_and_readme(tmp_path):
    plan = export_nbgrader(tmp_path, ["00", "01"], assignment="week1")
    assert plan == {"week1": ["00_welcome", NB]}
    assert sorted(p.name for p in (tmp_path / "source" / "week1").iterdir()) == ["00_welcome.ipynb", f"{NB}.ipynb"]
    config = {}
    exec(compile((tmp_path / "nbgrader_config.py").read_text(), "nbgrader_config.py", "exec"),
         {"get_config": lambda: _Config(config)})
    assert config["CourseDirectory.course_id"] and config["Execute.timeout"] >= 30
    readme = (tmp_path / "README.md").read_text()
    for command in ("nbgrader generate_assignment week1", "nbgrader collect week1", "nbgrader autograde week1",
                    "python -m course_utils grade submitted/"):
        assert command in readme
    with pytest.raises(ExportError, match="no notebook '99'"):
        export_nbgrader(tmp_path, ["99"])
    assert main(["export-nbgrader", str(tmp_path / "other"), "--assignment", "week 1"]) == 2  # not an nbgrader id
    assert not (tmp_path / "other").exists()
    assert CONFIG == (tmp_path / "nbgrader_config.py").read_text()


def test_every_course_notebook_exports_with_a_test_cell_per_exercise(tmp_path):
    """Valid for nbgrader (its own validator, where it is installed), a test cell per exercise."""
    try:
        from nbgrader.nbgraderformat import MetadataValidator
    except ImportError:
        MetadataValidator = None
    plan = export_nbgrader(tmp_path)
    assert sorted(plan) == sorted(p.stem for p in SOLUTIONS.glob("*.ipynb"))
    for name in plan:
        solution = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
        points = {m.name: m.points for c in solution.cells if c.cell_type == "code" for m in find_exercises(c.source)}
        nb = nbformat.read(tmp_path / "source" / name / f"{name}.ipynb", as_version=4)
        cells = nbgrader_cells(nb)
        tests = {gid.removeprefix("test_"): c["points"] for gid, c in cells.items()
                 if c["grade"] and gid.startswith("test_")}
        assert tests == points, name  # written answers are the manually graded cells beside them
        if MetadataValidator is not None:
            MetadataValidator().validate_nb(nb)


class _Config:
    """Records ``c.Section.option = value`` lines of a config file, as nbgrader's loader would read them."""

    def __init__(self, into: dict, prefix: str = ""):
        object.__setattr__(self, "_into", into)
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name):
        return _Config(self._into, f"{self._prefix}{name}.")

    def __setattr__(self, name, value):
        self._into[f"{self._prefix}{name}"] = value


@needs_01
def test_a_check_used_as_a_test_cell_raises_on_a_blank_answer():
    """nbgrader gives a test cell its points unless it raises: "not attempted" must raise."""
    def rnn_step_forward(x, prev_h, Wx, Wh, b):
        raise NotImplementedError()  # nbgrader's stub

    with pytest.raises(check.NotAttemptedYet) as raised:
        check.rnn_step_forward(rnn_step_forward)
    assert isinstance(raised.value, check.CheckFailed) and isinstance(raised.value, AssertionError)


# --- nbgrader's layout, read by the course's grader (no nbgrader needed) ------------------------------


def write_notebook(path: Path, source: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source.read_bytes())


@needs_01
def test_discovery_reads_nbgrader_layout_mixed_with_the_course_layouts(tmp_path):
    subs = tmp_path / "submitted"
    nbgrader = {"ada/01_rnn_forward/01_rnn_forward.ipynb": SOLUTIONS / f"{NB}.ipynb",  # one assignment per notebook
                "dan/week1/00_welcome.ipynb": SOLUTIONS / "00_welcome.ipynb",  # two notebooks in one
                "dan/week1/01_rnn_forward.ipynb": NOTEBOOKS / f"{NB}.ipynb"}
    for rel, source in nbgrader.items():
        write_notebook(subs / rel, source)
        (subs / rel).with_name("timestamp.txt").write_text(TIMESTAMP)
    write_notebook(subs / "bob" / f"{NB}.ipynb", SOLUTIONS / f"{NB}.ipynb")  # one folder per student
    write_notebook(subs / f"cy__{NB}.ipynb", SOLUTIONS / f"{NB}.ipynb")  # one file per student and notebook
    write_notebook(subs / "ada/01_rnn_forward/.ipynb_checkpoints/01_rnn_forward-checkpoint.ipynb",
                   SOLUTIONS / f"{NB}.ipynb")
    (subs / "ada/01_rnn_forward/notes.txt").write_text("not a notebook")
    (subs / "eve").mkdir()
    (subs / "eve/timestamp.txt").write_text(TIMESTAMP)  # a timestamp with no notebook is not nbgrader's

    course = load_course(SOLUTIONS, EXERCISES).select(["00", "01"])
    found, ignored = discover(subs, course)
    seen = {(s.student, s.relpath): (s.named, s.assignment, s.path, s.problem) for s in found}
    assert seen == {
        ("ada", f"ada/{NB}/{NB}.ipynb"): (NB, NB, subs / f"ada/{NB}/{NB}.ipynb", ""),
        ("dan", "dan/week1/00_welcome.ipynb"): ("00_welcome", "week1", subs / "dan/week1/00_welcome.ipynb", ""),
        ("dan", f"dan/week1/{NB}.ipynb"): (NB, "week1", subs / f"dan/week1/{NB}.ipynb", ""),
        ("bob", f"bob/{NB}.ipynb"): (NB, "", subs / f"bob/{NB}.ipynb", ""),
        ("cy", f"cy__{NB}.ipynb"): (NB, "", subs / f"cy__{NB}.ipynb", ""),
        ("eve", "eve"): (None, "", subs / "eve", "the folder holds no notebook (.ipynb)"),
    }
    assert sorted(ignored) == [f"ada/{NB}/notes.txt", "eve/timestamp.txt"]  # nbgrader's timestamps are not
    for sub in found:  # the deadlines find nbgrader's submission time beside the notebook
        assert (sub.path.with_name("timestamp.txt").exists()) == bool(sub.assignment)
        if not sub.problem:
            read_submission(sub)
        identify(sub, course)
    assign(found, course)
    graded = sorted((s.student, s.notebook) for s in found if s.notebook and not s.ignored and not s.problem)
    assert graded == [("ada", NB), ("bob", NB), ("cy", NB), ("dan", "00_welcome"), ("dan", NB)]


def test_an_nbgrader_course_directory_is_read_from_its_submitted_folder(tmp_path):
    course = load_course(SOLUTIONS, EXERCISES)
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\n")
    write_notebook(tmp_path / "source" / "00_welcome" / "00_welcome.ipynb", SOLUTIONS / "00_welcome.ipynb")
    write_notebook(tmp_path / "submitted" / "ada" / "00_welcome" / "00_welcome.ipynb", NOTEBOOKS / "00_welcome.ipynb")
    found, ignored = discover(tmp_path, course)
    assert [(s.student, s.relpath, s.assignment) for s in found] == [("ada", "ada/00_welcome/00_welcome.ipynb",
                                                                     "00_welcome")]
    assert ignored == []


# --- the round trip: nbgrader's autograde and the course's grader on one class ------------------------


def realistic_mistake(source: str) -> str:
    """rnn_forward that never carries the state: every step starts again from h0."""
    edited = re.sub(r"^[ \t]*prev_h = next_h\b.*\n", "", source, flags=re.MULTILINE)
    assert edited != source, "notebook 01's rnn_forward no longer carries its state in `prev_h = next_h`"
    return edited


def nbgrader_api(course: Path):
    """nbgrader's Python API on the exported course directory, with its exported nbgrader_config.py."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    return NbGraderAPI(config=config)


def hand_in(course: Path, assignment: str) -> dict[str, str]:
    """Three students fill in nbgrader's hand-out, as nbgrader's collect lays them out. Returns the
    exercise each got wrong ("" for none, "*" for all)."""
    released = corpus.load(course / "release" / assignment / f"{NB}.ipynb")
    solution, blank = corpus.load(SOLUTIONS / f"{NB}.ipynb"), corpus.load(NOTEBOOKS / f"{NB}.ipynb")
    solved = corpus.solved(released, solution)
    class_ = {"solution": solved, "blank": corpus.solved(released, blank),
              "mistake": corpus.edit_exercise(solved, "rnn_forward", realistic_mistake)}
    for student, nb in class_.items():
        folder = course / "submitted" / student / assignment
        corpus.write(nb, folder / f"{NB}.ipynb")
        (folder / "timestamp.txt").write_text(TIMESTAMP)
    return {"solution": "", "blank": "*", "mistake": "rnn_forward"}


def clock() -> tuple[float, float]:
    """Wall-clock and CPU seconds so far, this process's and its finished children's."""
    import resource  # Unix's, as the round trip is

    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def elapsed(start: tuple[float, float]) -> tuple[float, float]:
    return tuple(now - then for now, then in zip(clock(), start))


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    pytest.importorskip("nbgrader.apps", reason="nbgrader is not installed")
    if not (HAVE_01 and LINUX):
        pytest.skip("needs notebook 01 and Linux (the grader's sandbox)")
    root = tmp_path_factory.mktemp("nbgrader")
    course, assignment, seconds = root / "course", NB, {}
    export_nbgrader(course, ["01"])
    start = clock()
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("ignore")  # SQLAlchemy's warnings from nbgrader's gradebook
        # nbgrader creates its gradebook by running `alembic` from PATH, as in an activated environment
        patch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        api = nbgrader_api(course)
        generated = api.generate_assignment(assignment)
        assert generated["success"], generated["log"]
        wrong = hand_in(course, assignment)
        for student in wrong:
            graded = api.autograde(assignment, student)
            assert graded["success"], graded["log"]
        seconds["nbgrader"] = elapsed(start)
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            nbgrader_points = {s: {g.name.removeprefix("test_"): (g.score, g.auto_score, g.max_score)
                                   for g in gb.find_submission_notebook(NB, assignment, s).grades}
                               for s in wrong}
            timestamps = {s: gb.find_submission(assignment, s).timestamp for s in wrong}
    start = clock()
    jobs = root / "jobs"
    jobs.mkdir()
    results = grade(course / "submitted", root / "grades",
                    Options(solutions=course_00_02(root), notebooks=("01",), seed=SEED, jobs=2, limits=LIMITS,
                            progress=False, tmp_root=str(jobs)))
    seconds["course"] = elapsed(start)
    print("\nround trip, wall and CPU seconds (children included): nbgrader generate_assignment and autograde "
          "{:.1f} / {:.1f}, course grader {:.1f} / {:.1f}".format(*seconds["nbgrader"], *seconds["course"]))
    return {"nbgrader": nbgrader_points, "course": {s["student"]: s for s in results["students"]},
            "results": results, "wrong": wrong, "timestamps": timestamps}


def test_nbgrader_and_the_course_grader_agree_exercise_by_exercise(round_trip):
    course = round_trip["course"]
    assert sorted(course) == sorted(round_trip["wrong"])
    for student, wrong in round_trip["wrong"].items():
        mine = {e["exercise"]: e for e in course[student]["exercises"]}
        theirs = round_trip["nbgrader"][student]
        assert sorted(theirs) == sorted(mine)
        for name, e in mine.items():
            score, auto_score, max_score = theirs[name]
            assert (score, auto_score, max_score) == (e["points"], e["points"], e["possible"]), (student, name, e)
            assert (e["status"] == "passed") == (wrong not in ("*", name)), (student, e)
    assert {e["status"] for e in course["blank"]["exercises"]} == {"not attempted"}
    assert course["blank"]["total"] == 0 == sum(p[0] for p in round_trip["nbgrader"]["blank"].values())
    assert {e["exercise"]: e["status"] for e in course["mistake"]["exercises"]}["rnn_forward"] == "wrong"


def test_the_course_grader_reads_nbgraders_collected_folder_as_nbgrader_does(round_trip):
    results = round_trip["results"]
    assert results["ignored_files"] == []  # timestamp.txt is nbgrader's, not a stray file
    for student, s in round_trip["course"].items():
        assert s["problems"] == [] and s["notes"] == []
        assert [f["path"] for f in s["files"]] == [f"{student}/{NB}/{NB}.ipynb"]
    expected = datetime.datetime(2025, 1, 15, 10, 30)
    assert set(round_trip["timestamps"].values()) == {expected}  # nbgrader read the timestamps we wrote
    assert json.dumps(results)  # the same plain results dict as grades.json
