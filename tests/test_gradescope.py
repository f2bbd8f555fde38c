"""The Gradescope autograder: a bundle that Gradescope builds with setup.sh and runs per submission
with run_autograder, which grades with the course's own sandboxed grader and writes results.json.

The main test builds a bundle, lays out a directory as Gradescope lays out /autograder (source/
holding the unzipped bundle, submission/, results/), runs run_autograder there (AUTOGRADER_ROOT,
and the test's Python for the venv setup.sh would make), and checks that results.json follows
Gradescope's specification and gives exactly the points the course's grader gives.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import grading_corpus as corpus
import pytest
from conftest import NOTEBOOKS, SOLUTIONS
from test_grading import HAVE_COURSE, LINUX, course_00_02

from course_utils.__main__ import main
from course_utils.grading import Options, grade
from course_utils.grading.gradescope import (
    RUN_AUTOGRADER,
    VISIBILITIES,
    collect_submission,
    grade_args,
    results_json,
    run,
)

SECRET = "gradescope-test-seed"
ASSIGNMENT = ("00",)  # notebook 01 is handed in too, and is not part of it


def bundle(tmp_path: Path, *extra: str, name: str = "autograder.zip") -> Path:
    seed = tmp_path / "seed.txt"
    seed.write_text(SECRET + "\n")
    out = tmp_path / name
    code = main(["gradescope-bundle", str(out), "--notebooks", *ASSIGNMENT, "--seed-file", str(seed),
                 "--solutions", str(course_00_02(tmp_path)), *extra])
    assert code == 0
    return out


def check_results_json(data: dict) -> None:
    """results.json as Gradescope's autograder specification describes it."""
    assert isinstance(data["score"], (int, float)) and isinstance(data["execution_time"], int)
    assert data["visibility"] in VISIBILITIES and data["stdout_visibility"] in VISIBILITIES
    assert isinstance(data["output"], str) and data["tests"]
    for test in data["tests"]:
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed") and test["visibility"] in VISIBILITIES
        assert test["output_format"] == "text"  # shown as text: a student's message cannot become HTML
    json.dumps(data, allow_nan=False)


@pytest.mark.skipif(not (HAVE_COURSE and LINUX), reason="needs notebooks 00-02 and Linux")
def test_run_autograder_in_gradescopes_layout_gives_the_course_graders_points(tmp_path):
    zipped = bundle(tmp_path)
    autograder = tmp_path / "autograder"
    for folder in ("source", "submission", "results"):
        (autograder / folder).mkdir(parents=True)
    with zipfile.ZipFile(zipped) as zf:
        zf.extractall(autograder / "source")
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    student01, solution01 = (corpus.load(NOTEBOOKS / "01_rnn_forward.ipynb"),
                             corpus.load(SOLUTIONS / "01_rnn_forward.ipynb"))
    mine = tmp_path / "mine" / "student"  # what the student uploads, graded directly for comparison
    corpus.write(corpus.hostile(student00, solution00, "sigmoid", "return np.tanh(x)"), mine / "00_welcome.ipynb")
    corpus.write(corpus.solved(student01, solution01, {"rnn_step_forward"}), mine / "01_rnn_forward.ipynb")
    (autograder / "submission" / "hw").mkdir()
    for path in mine.iterdir():
        (autograder / "submission" / "hw" / path.name).write_bytes(path.read_bytes())
    (autograder / "submission" / "notes.txt").write_text("not a notebook")

    env = {**os.environ, "AUTOGRADER_ROOT": str(autograder), "AUTOGRADER_PYTHON": sys.executable}
    env.pop("COURSE_GRADING_SEED", None)
    proc = subprocess.run(["bash", str(autograder / "source" / "run_autograder")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no secret seed" not in proc.stderr  # the seed came from the bundle's seed.txt
    data = json.loads((autograder / "results" / "results.json").read_text())
    check_results_json(data)

    direct = grade(mine.parent, tmp_path / "direct", Options(solutions=course_00_02(tmp_path), seed=SECRET,
                                                             notebooks=ASSIGNMENT, progress=False, jobs=2))
    (student,) = direct["students"]
    assert data["score"] == student["total"] == 1  # sigmoid wrong, softmax right
    assert [(t["name"], t["score"], t["max_score"]) for t in data["tests"]] == \
        [(f"{e['number']} {e['exercise']}", e["points"], e["possible"]) for e in student["exercises"]]
    assert data["extra_data"] == {"default_seed": False, "weak_sandbox": False}
    sigmoid = data["tests"][0]
    assert sigmoid["status"] == "failed" and "hint: that is tanh(x)" in sigmoid["output"]
    assert "fixed inputs, N=3, D=5" in sigmoid["output"]
    assert "01_rnn_forward" in data["output"]  # handed in, not part of the assignment: said so


def test_the_bundle_holds_what_gradescope_needs(tmp_path):
    with zipfile.ZipFile(bundle(tmp_path)) as zf:
        names = set(zf.namelist())
        mode = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in zf.infolist()}
        config = json.loads(zf.read("config.json"))
        requirements = zf.read("course/requirements.txt").decode()
        assert zf.read("seed.txt").decode().strip() == SECRET
    assert mode["setup.sh"] == mode["run_autograder"] == 0o755 and mode["seed.txt"] == 0o600
    assert {"course/course_utils/grading/grader.py", "course/course_utils/reference/__init__.py",
            "course/solutions/00_welcome.ipynb", "course/solutions/02_bptt.ipynb"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert config == {"notebooks": ["00_welcome"], "possible": 2,
                      "time_limit": 10.0, "memory": 1024, "visibility": "visible", "allow_weak_sandbox": False}
    assert "numpy" in requirements and "nbformat" in requirements
    for unneeded in ("torch", "jupyterlab", "pytest", "-e"):  # NumPy notebooks: no torch to install
        assert unneeded not in requirements


def test_building_twice_gives_the_same_bytes(tmp_path):
    assert bundle(tmp_path, name="a.zip").read_bytes() == bundle(tmp_path, name="b.zip").read_bytes()


def test_the_seed_goes_to_the_grader_as_a_file_and_the_weak_sandbox_only_when_the_bundle_says_so(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "seed.txt").write_text(SECRET)
    config = {"notebooks": ["00_welcome"], "time_limit": 10.0, "memory": 1024, "allow_weak_sandbox": False}
    cmd = grade_args(source, tmp_path / "subs", tmp_path / "out", config)
    assert cmd[cmd.index("--seed-file") + 1] == str(source / "seed.txt") and SECRET not in " ".join(cmd)
    assert "--allow-weak-sandbox" not in cmd
    assert "--allow-weak-sandbox" in grade_args(source, tmp_path / "subs", tmp_path / "out",
                                                {**config, "allow_weak_sandbox": True})
    with zipfile.ZipFile(bundle(tmp_path, "--allow-weak-sandbox", "--visibility", "after_published")) as zf:
        config = json.loads(zf.read("config.json"))
    assert config["allow_weak_sandbox"] is True and config["visibility"] == "after_published"


def test_the_students_notebooks_are_collected_from_anywhere_in_the_submission(tmp_path):
    sub = tmp_path / "submission"
    for rel in ("00_welcome.ipynb", "hw/01_rnn_forward.ipynb", "hw/00_welcome.ipynb", ".hidden.ipynb",
                "hw/.ipynb_checkpoints/01_rnn_forward-checkpoint.ipynb", "__MACOSX/00_welcome.ipynb", "readme.md"):
        (sub / rel).parent.mkdir(parents=True, exist_ok=True)
        (sub / rel).write_text(rel)
    copied = collect_submission(sub, tmp_path / "subs" / "student")
    assert copied == ["00_welcome.ipynb", "hw/00_welcome.ipynb", "hw/01_rnn_forward.ipynb"]
    dest = tmp_path / "subs" / "student"
    assert sorted(p.name for p in dest.iterdir()) == \
        ["00_welcome (2).ipynb", "00_welcome.ipynb", "01_rnn_forward.ipynb"]
    assert (dest / "00_welcome.ipynb").read_text() == "00_welcome.ipynb"  # the top-level copy keeps the exact name


def test_a_submission_without_a_student_still_gets_every_test_at_zero():
    results = {"settings": {"default_seed": False}, "sandbox": {"weak": False},
               "course": {"possible": 3, "notebooks": [{"name": "00_welcome", "exercises": [
                   {"number": "0.1", "name": "sigmoid", "points": 1},
                   {"number": "0.2", "name": "softmax", "points": 2}]}]},
               "students": []}
    data = results_json(results, 1.4, "hidden")
    check_results_json(data)
    assert data["score"] == 0 and [t["max_score"] for t in data["tests"]] == [1, 2]
    assert {t["visibility"] for t in data["tests"]} == {"hidden"} and data["execution_time"] == 1


@pytest.mark.parametrize("args, words", [
    (["--notebooks", "99"], "no notebook '99'"),
    (["--wheels", "EMPTY"], "no .whl files"),
])
def test_a_bundle_that_cannot_work_is_not_written(tmp_path, capsys, args, words):
    (tmp_path / "EMPTY").mkdir()
    args = [str(tmp_path / a) if a == "EMPTY" else a for a in args]
    out = tmp_path / "x.zip"
    assert main(["gradescope-bundle", str(out), "--solutions", str(course_00_02(tmp_path)), *args]) == 2
    assert words in capsys.readouterr().err and not out.exists()


def test_bundled_wheels_make_setup_install_offline(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "numpy-2.0-cp310-cp310-manylinux_x86_64.whl").write_bytes(b"wheel")
    with zipfile.ZipFile(bundle(tmp_path, "--wheels", str(wheels))) as zf:
        assert zf.read("wheels/numpy-2.0-cp310-cp310-manylinux_x86_64.whl") == b"wheel"
        setup = zf.read("setup.sh").decode()
    assert '--no-index --find-links "$SRC/wheels"' in setup
    for script in (setup, RUN_AUTOGRADER):
        assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0  # valid bash


def test_when_the_grader_cannot_grade_no_results_json_is_written(tmp_path, capfd):
    """A refusal (here: a notebook the course lacks) must reach Gradescope as a failed autograder,
    never as a score of zero."""
    autograder = tmp_path / "autograder"
    with zipfile.ZipFile(bundle(tmp_path)) as zf:
        zf.extractall(autograder / "source")
    config = autograder / "source" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "notebooks": ["99"]}))
    (autograder / "submission").mkdir()
    assert run(autograder) == 2
    assert not (autograder / "results" / "results.json").exists()
    assert "no notebook '99'" in capfd.readouterr().err
