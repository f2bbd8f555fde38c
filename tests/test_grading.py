"""The instructor's grader: a corpus of honest, hostile and broken submissions, each with the
verdict it must get, graded once in a sandbox with small limits; plus the pieces that read
untrusted bytes, tested on their own.

The corpus is made from the course's own notebooks (see grading_corpus.py). A hostile
submission solves every exercise of notebook 00 but sigmoid, which attacks the grader; it
must score exactly its honest part (softmax's point), and nothing it does may change a
submitted file, leave a process behind, or run anything in the grading process.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import grading_corpus as corpus
import numpy as np
import pytest
from conftest import NOTEBOOKS, ROOT, SOLUTIONS

from course_utils.grading import Limits, Options, grade, sandbox
from course_utils.grading.grader import Grade, judge, make_plan, redact
from course_utils.grading.sandbox import ChildResult, Malformed
from course_utils.grading.submissions import Submission, read_submission

LINUX = sys.platform.startswith("linux")
MiB = 1 << 20
LIMITS = Limits(wall=8, cpu=3, memory=512 * MiB, output=100_000, file_size=8 * MiB, disk=32 * MiB)
SEED = "test-seed"
COURSE_NOTEBOOKS = ["00_welcome", "01_rnn_forward", "02_bptt"]
HAVE_COURSE = all((SOLUTIONS / f"{n}.ipynb").exists() and (NOTEBOOKS / f"{n}.ipynb").exists()
                  for n in COURSE_NOTEBOOKS)

# sigmoid attacked in each of these ways: (status, words in the reason)
HOSTILE = {
    "infinite_loop": ("timeout", "timeout"),
    "sleep_forever": ("timeout", "wall clock"),
    "memory_bomb": ("out of memory", "512 MiB"),
    "fork_bomb": ("crashed", "PermissionError"),
    "os_exit": ("crashed", "exited with code 3"),
    "segfault": ("crashed", "SIGSEGV"),
    "sys_exit": ("crashed", "SystemExit"),
    "keyboard_interrupt": ("crashed", "KeyboardInterrupt"),
    "print_flood": ("output limit", "printed more than"),
    "write_files": ("crashed", "PermissionError"),
    "delete_submission": ("crashed", "PermissionError"),
    "fill_disk": ("crashed", "No space left on device"),
    "read_solutions": ("crashed", "PermissionError"),
    "import_reference": ("crashed", "ModuleNotFoundError"),
    "eq_always_true": ("wrong", "does not have the expected form"),
    "ndarray_subclass": ("wrong", "does not have the expected form"),
    "object_array": ("wrong", "does not have the expected form"),
    "pickle_bytes": ("wrong", "does not have the expected form"),
    "forged_pickle_result": ("crashed", "malformed result"),
    "kill_grader": ("crashed", "Error: [Errno"),  # ProcessLookupError in a PID namespace, else PermissionError
    "network": ("crashed", "Error"),
    "raise_with_inputs": ("crashed", "ValueError"),
    "fake_print": ("not attempted", "sigmoid still raises NotImplementedError"),
    "wrong_with_hint": ("wrong", "`out` is wrong"),
    "monkeypatch": ("wrong", "`out` is wrong"),
    "unix_socket": ("crashed", "PermissionError"),  # docker.sock, D-Bus, ssh-agent: no socket at all
    "memfd": ("crashed", "PermissionError"),  # memory outside the address-space limit
    "forge_where": ("crashed", "ValueError"),
}

needs_course = pytest.mark.skipif(not HAVE_COURSE, reason="notebooks 00-02 are not written yet")
needs_linux = pytest.mark.skipif(not LINUX, reason="the sandbox's protections are Linux's")


def sha256_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def course_00_02(root: Path) -> Path:
    """The course as far as these tests go: notebooks 00-02, whatever else solutions/ holds."""
    solutions = root / "solutions"
    solutions.mkdir(exist_ok=True)
    for n in COURSE_NOTEBOOKS:
        (solutions / f"{n}.ipynb").write_bytes((SOLUTIONS / f"{n}.ipynb").read_bytes())
    return solutions


def build_class(subs: Path, marker: Path) -> None:
    """The corpus: one student (folder or file) per kind of submission."""
    nb = {n: (corpus.load(NOTEBOOKS / f"{n}.ipynb"), corpus.load(SOLUTIONS / f"{n}.ipynb")) for n in COURSE_NOTEBOOKS}
    student00, solution00 = nb["00_welcome"]
    solved00 = corpus.solved(student00, solution00)

    for n in COURSE_NOTEBOOKS:  # the instructor's solution, the untouched hand-out, a partial one
        corpus.write(corpus.load(SOLUTIONS / f"{n}.ipynb"), subs / "solution" / f"{n}.ipynb")
        corpus.write(nb[n][0], subs / "untouched" / f"{n}.ipynb")
    corpus.write(solved00, subs / "partly" / "00_welcome.ipynb")
    corpus.write(corpus.solved(*nb["01_rnn_forward"], {"rnn_step_forward"}), subs / "partly" / "01_rnn_forward.ipynb")
    corpus.write(corpus.solved(*nb["02_bptt"], {"rnn_step_backward"}), subs / "partly" / "02_bptt.ipynb")

    for name in HOSTILE:
        path = subs / f"hostile_{name}" / "00_welcome.ipynb"
        if name == "monkeypatch":
            body = ("import numpy.testing\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
                    "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                    "return np.zeros_like(x)")
            attacked = corpus.hostile(student00, solution00, "sigmoid", body)
            attacked["cells"].insert(1, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                                         "source": "from course_utils import check\ncheck.sigmoid = lambda f: True\n"
                                                   "check.EXERCISES.clear()\nprint('✓ sigmoid: correct')\n"})
        else:
            bodies = corpus.hostile_bodies(os.getpid(), path, SOLUTIONS / "00_welcome.ipynb", marker)
            attacked = corpus.hostile(student00, solution00, "sigmoid", bodies[name])
        corpus.write(attacked, path)

    variants = {
        "metadata_stripped": corpus.strip_metadata(solved00),
        "cells_reordered": corpus.reorder(solved00),
        "duplicated": corpus.duplicate_exercise(solved00, "softmax"),
        "missing": corpus.remove_exercise(solved00, "softmax"),
        "marker_removed": corpus.edit_exercise(solved00, "sigmoid", lambda s: s.split("\n", 1)[1]),
        "syntax_error": corpus.edit_exercise(solved00, "softmax",
                                             lambda s: s.replace("def softmax(scores):", "def softmax(scores)")),
        "points_edited": corpus.edit_exercise(solved00, "sigmoid", lambda s: s.replace("(1 point)", "(100 points)")),
    }
    for name, variant in variants.items():
        corpus.write(variant, subs / name / "00_welcome.ipynb")
    corpus.write(solved00, subs / "flat__00_welcome.ipynb")  # the one-file-per-notebook layout
    corpus.write(solved00, subs / "renamed" / "Copy of 00_welcome.ipynb")  # matched by its markers
    corpus.write(solved00, subs / "two_copies" / "00_welcome.ipynb")
    corpus.write(student00, subs / "two_copies" / "00_welcome (1).ipynb")
    corpus.write(corpus.other_course(), subs / "other_course" / "homework.ipynb")
    text = json.dumps(solved00)
    for name, data in {"invalid_json": b'{"cells": [}', "truncated": text[: len(text) // 2].encode(),
                       "empty": b"", "not_a_notebook": b"[1, 2, 3]", "no_cells": b'{"cells": [], "nbformat": 4}',
                       "binary": bytes(range(256)) * 4}.items():
        (subs / f"{name}__00_welcome.ipynb").write_bytes(data)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not (HAVE_COURSE and LINUX):
        pytest.skip("needs notebooks 00-02 and Linux")
    root = tmp_path_factory.mktemp("class")
    subs, out, jobs, marker = root / "submissions", root / "grades", root / "jobs", root / "UNPICKLED"
    jobs.mkdir()
    build_class(subs, marker)
    before = sha256_tree(subs)
    results = grade(subs, out, Options(solutions=course_00_02(root), seed=SEED, jobs=2, limits=LIMITS,
                                       progress=False, tmp_root=str(jobs)))
    by_student = {s["student"]: s for s in results["students"]}
    return {"results": results, "students": by_student, "subs": subs, "out": out, "jobs": jobs,
            "marker": marker, "before": before}


def ex(graded, student, name):
    return next(e for e in graded["students"][student]["exercises"] if e["exercise"] == name)


# --- honest submissions ---------------------------------------------------------------------------


def test_the_solution_gets_full_marks(graded):
    s = graded["students"]["solution"]
    assert s["total"] == s["possible"] == graded["results"]["course"]["possible"] > 0
    assert {e["status"] for e in s["exercises"]} == {"passed"}


def test_the_untouched_hand_out_gets_zero_and_every_exercise_is_not_attempted(graded):
    s = graded["students"]["untouched"]
    assert s["total"] == 0 and s["problems"] == []
    assert {e["status"] for e in s["exercises"]} == {"not attempted"}
    # notebook 02's forward passes are given (imported from the reference): only the backward is the stub
    assert ex(graded, "untouched", "rnn_step_backward")["reason"] == \
        "not attempted: rnn_step_backward still raises NotImplementedError"


def test_a_partly_solved_class_gets_the_points_of_what_it_solved(graded):
    solved = {"sigmoid", "softmax", "rnn_step_forward", "rnn_step_backward"}
    s = graded["students"]["partly"]
    for e in s["exercises"]:
        assert (e["status"] == "passed") == (e["exercise"] in solved), e
    assert s["total"] == sum(e["possible"] for e in s["exercises"] if e["exercise"] in solved)


# --- hostile submissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_submission_gets_its_verdict_and_no_more_than_its_honest_part(graded, name):
    status, words = HOSTILE[name]
    active = graded["results"]["sandbox"]["protections"]
    if name == "fill_disk" and "tmpfs" not in active:
        pytest.skip("no tmpfs working directory here: only the per-file size limit applies")
    if name == "network" and "namespaces" not in active:
        pytest.skip("no network namespace here: Landlock stops TCP, not UDP")
    e = ex(graded, f"hostile_{name}", "sigmoid")
    assert e["status"] == status, e
    assert words in e["reason"] + " ".join(e["details"]), e
    assert e["points"] == 0
    s = graded["students"][f"hostile_{name}"]
    assert ex(graded, f"hostile_{name}", "softmax")["status"] == "passed"  # one failure costs one exercise
    assert s["total"] == ex(graded, f"hostile_{name}", "softmax")["possible"]


def test_a_known_mistake_gets_the_self_checks_hint(graded):
    assert "tanh" in ex(graded, "hostile_wrong_with_hint", "sigmoid")["hint"]


def test_submitted_files_are_never_modified(graded):
    assert sha256_tree(graded["subs"]) == graded["before"]


def test_nothing_from_the_child_is_unpickled(graded):
    assert not graded["marker"].exists()


def leftover_processes(jobs: Path) -> list[str]:
    """Processes whose command line names a job folder under ``jobs``."""
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(jobs).encode() in (proc / "cmdline").read_bytes():
                left.append(proc.name)
        except OSError:
            pass
    return left


def test_no_process_or_job_folder_is_left_behind(graded):
    assert leftover_processes(graded["jobs"]) == []
    assert list(graded["jobs"].iterdir()) == []


def test_feedback_never_shows_hidden_input_values(graded):
    text = (graded["out"] / "feedback" / "hostile_raise_with_inputs.md").read_text()
    sigmoid = text[text.index("0.1 sigmoid") + len("0.1 sigmoid"):text.index("0.2 softmax")]
    assert "ValueError: the hidden inputs are array([[ …, …," in sigmoid
    assert "fixed inputs, N=3, D=5" in sigmoid  # the case's label is shown, its values are not
    assert not re.search(r"\d\.\d", sigmoid)


def test_a_forged_report_cannot_put_the_hidden_inputs_into_feedback(graded):
    """The child wrote its own result file, with the hidden inputs in the "where" line: the grader
    shows a "where" only when it is a line of the submitted code."""
    e = ex(graded, "hostile_forge_where", "sigmoid")
    assert "forged" in e["reason"] and not any("in sigmoid: x =" in line for line in e["details"]), e
    text = (graded["out"] / "feedback" / "hostile_forge_where.md").read_text()
    assert "x = [" not in text


def test_code_that_reaches_into_the_grader_is_listed_for_review(graded):
    results = graded["results"]
    assert "hostile_forged_pickle_result" in results["review"] and "solution" not in results["review"]
    assert any("`modules`" in hit for hit in graded["students"]["hostile_forged_pickle_result"]["review"])
    assert "hostile_forged_pickle_result" in (graded["out"] / "review.md").read_text()


def test_the_sandbox_reports_its_protections(graded):
    box = graded["results"]["sandbox"]
    for name in ("landlock", "seccomp", "RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE"):
        assert name in box["protections"], box
    denied = ("read", "fork", "network (tcp)", "signal") + (("network",) if "namespaces" in box["protections"] else ())
    assert [k for k, v in box["probe"].items() if k.startswith(denied) and v == "allowed"] == []
    assert box["probe"]["write in the working directory"] == "allowed"


# --- notebooks saved by other editors, and broken ones ----------------------------------------------


@pytest.mark.parametrize("student", ["metadata_stripped", "cells_reordered", "flat", "renamed", "points_edited",
                                     "marker_removed"])
def test_edited_but_honest_notebooks_get_full_marks(graded, student):
    s = graded["students"][student]
    assert [e["status"] for e in s["exercises"] if e["notebook"] == "00_welcome"] == ["passed", "passed"]
    assert s["total"] == 2  # points come from solutions/, not from the student's "(100 points)"


def test_a_missing_marker_is_accepted_with_a_note(graded):
    assert "marker line" in ex(graded, "marker_removed", "sigmoid")["notes"][0]
    assert "graded as 00_welcome" in graded["students"]["renamed"]["notes"][0]


def test_of_two_copies_the_exactly_named_one_is_graded(graded):
    s = graded["students"]["two_copies"]
    assert s["total"] == 2 and s["problems"] == []
    assert s["notes"] == [("two_copies/00_welcome (1).ipynb is not graded: it is another copy of 00_welcome, "
                           "and two_copies/00_welcome.ipynb is graded instead")]


def test_a_duplicated_exercise_is_graded_as_run_all_leaves_it_with_a_note(graded):
    e = ex(graded, "duplicated", "softmax")
    assert e["status"] == "passed" and "appears 2 times" in e["notes"][0], e


@pytest.mark.parametrize("student, status, words", [
    ("missing", "missing", "no cell is marked"),
    ("syntax_error", "crashed", "SyntaxError"),
])
def test_broken_exercises_get_a_reason(graded, student, status, words):
    e = ex(graded, student, "softmax")
    assert e["status"] == status and words in e["reason"], e
    assert ex(graded, student, "sigmoid")["status"] == "passed"


@pytest.mark.parametrize("student, words", [
    ("invalid_json", "not valid JSON"), ("truncated", "truncated"), ("empty", "empty"),
    ("not_a_notebook", "not a Jupyter notebook"), ("no_cells", "no cells"), ("binary", "not text"),
    ("other_course", "not a notebook of this course"),
])
def test_unreadable_or_foreign_notebooks_get_a_clear_row(graded, student, words):
    s = graded["students"][student]
    assert s["total"] == 0 and len(s["problems"]) == 1 and words in s["problems"][0], s["problems"]
    assert {e["status"] for e in s["exercises"]} == {"not submitted"}


def test_reports_are_written(graded):
    out = graded["out"]
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,sigmoid,softmax,rnn_step_forward")
    assert len(rows) == 1 + len(graded["students"])
    saved = json.loads((out / "grades.json").read_text())
    assert saved["schema"] == "course_utils.grading/1" and saved["settings"]["default_seed"] is False
    assert (out / "histogram.png").read_bytes().startswith(b"\x89PNG")
    assert len(list((out / "feedback").glob("*.md"))) == len(graded["students"])


# --- determinism, the command line, another course ---------------------------------------------------


def small_class(subs: Path) -> None:
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    corpus.write(corpus.solved(student00, solution00), subs / "ada" / "00_welcome.ipynb")
    corpus.write(corpus.load(NOTEBOOKS / "01_rnn_forward.ipynb"), subs / "ada" / "01_rnn_forward.ipynb")
    corpus.write(corpus.solved(student00, solution00, {"softmax"}), subs / "bob" / "00_welcome.ipynb")
    corpus.write(corpus.hostile(student00, solution00, "sigmoid", "return np.tanh(x)"), subs / "cy__00_welcome.ipynb")
    corpus.write(corpus.duplicate_exercise(corpus.solved(student00, solution00), "sigmoid"), subs / "di" / "00_welcome.ipynb")
    (subs / "eve__00_welcome.ipynb").write_text("{not json")


@needs_course
def test_grading_twice_gives_identical_results(tmp_path):
    subs = tmp_path / "subs"
    small_class(subs)
    options = Options(notebooks=("00",), seed=SEED, jobs=2, limits=LIMITS, progress=False)  # an assignment
    one = grade(subs, tmp_path / "one", options)
    grade(subs, tmp_path / "two", options)
    assert [s["total"] for s in one["students"]] == [2, 1, 1, 2, 0] and one["course"]["possible"] == 2  # di: duplicated, as Run All
    assert "not part of this assignment" in one["students"][0]["notes"][0]
    for name in ["grades.csv", "grades.json", *[f"feedback/{p.name}" for p in (tmp_path / "one" / "feedback").iterdir()]]:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


@needs_course
def test_the_command_line_warns_about_the_default_seed(tmp_path):
    subs = tmp_path / "subs"
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    corpus.write(corpus.solved(student00, solution00), subs / "ada" / "00_welcome.ipynb")
    corpus.write(corpus.solved(student00, solution00, {"softmax"}), subs / "bob__00_welcome.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "COURSE_GRADING_SEED"}
    proc = subprocess.run([sys.executable, "-m", "course_utils", "grade", str(subs), "--out", str(tmp_path / "out"),
                           "--jobs", "2", "--time-limit", "6", "--memory", "512", "--no-progress",
                           "--solutions", str(course_00_02(tmp_path))],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "no secret seed" in proc.stderr
    assert "graded 2 students" in proc.stdout
    rows = (tmp_path / "out" / "grades.csv").read_text().splitlines()
    assert rows[1].startswith("ada,1,1,") and rows[2].startswith("bob,0,1,")


def test_the_seed_comes_from_a_file_or_the_environment_never_the_command_line(tmp_path):
    """`ps` shows every user a command line: the seed is read from a file (or $COURSE_GRADING_SEED)."""
    subs = tmp_path / "subs"
    corpus.write(corpus.load(SOLUTIONS / "00_welcome.ipynb"), subs / "ada" / "00_welcome.ipynb")
    (tmp_path / "seed.txt").write_text("s3cret\n")
    env = {k: v for k, v in os.environ.items() if k != "COURSE_GRADING_SEED"}
    base = [sys.executable, "-m", "course_utils", "grade", str(subs), "--jobs", "1", "--no-progress",
            "--solutions", str(course_00_02(tmp_path)), "--notebooks", "00"]
    by_file = subprocess.run(base + ["--out", str(tmp_path / "a"), "--seed-file", str(tmp_path / "seed.txt")],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    by_env = subprocess.run(base + ["--out", str(tmp_path / "b")], capture_output=True, text=True,
                            env={**env, "COURSE_GRADING_SEED": "s3cret"}, cwd=ROOT, timeout=300)
    assert by_file.returncode == by_env.returncode == 0, by_file.stderr + by_env.stderr
    assert "no secret seed" not in by_file.stderr + by_env.stderr
    a, b = (json.loads((tmp_path / d / "grades.json").read_text())["settings"]["seed_sha256"] for d in "ab")
    assert a == b
    refused = subprocess.run(base + ["--out", str(tmp_path / "c"), "--seed", "s3cret"], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=300)
    assert refused.returncode == 2 and "--seed" in refused.stderr


def uses_torch(notebook: Path) -> bool:
    from course_utils.check import EXERCISES
    from course_utils.checking.exercise_torch import TorchExercise
    names = [corpus.exercise_of(cell) for cell in corpus.load(notebook)["cells"]]
    return any(isinstance(EXERCISES.get(n), TorchExercise) for n in names)


def whole_course(tmp_path: Path, torch: bool, hand_outs: bool) -> dict:
    """Grade every notebook of the course (those with a hand-out), PyTorch ones or the others:
    the instructor's solution as student "instructor", the hand-out as student "hand_out"."""
    subs, solutions = tmp_path / "subs", tmp_path / "solutions"
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        if (NOTEBOOKS / path.name).exists() and uses_torch(path) == torch:
            corpus.write(corpus.load(path), solutions / path.name)
            corpus.write(corpus.load(path), subs / "instructor" / path.name)
            if hand_outs:
                corpus.write(corpus.load(NOTEBOOKS / path.name), subs / "hand_out" / path.name)
    if not solutions.exists():
        pytest.skip("no such notebooks yet")
    return grade(subs, tmp_path / "out", Options(solutions=solutions, seed=SEED, jobs=2, progress=False,
                                                 limits=Limits(wall=60, cpu=60)))


@needs_linux
def test_every_numpy_notebook_grades_its_own_solution_full_and_its_hand_out_zero(tmp_path):
    """Every exercise with a check is gradable: solutions/ as it is gets full marks, notebooks/ zero."""
    results = whole_course(tmp_path, torch=False, hand_outs=True)
    hand_out, instructor = results["students"]
    assert [e["exercise"] for e in instructor["exercises"] if e["status"] != "passed"] == []
    # every exercise's points; the written answers (tests/test_written.py) wait for a person: pending
    assert instructor["total"] == sum(e["possible"] for e in instructor["exercises"]) > 0
    assert {w["status"] for w in instructor.get("written", [])} <= {"pending"}
    assert {e["status"] for e in hand_out["exercises"]} == {"not attempted"}


@needs_linux
def test_every_pytorch_notebook_grades_its_own_solution_full(tmp_path):
    """The PyTorch exercises too (their children import torch: about 2 s of CPU each)."""
    results = whole_course(tmp_path, torch=True, hand_outs=False)
    (instructor,) = results["students"]
    assert [e["exercise"] for e in instructor["exercises"] if e["status"] != "passed"] == []
    assert instructor["total"] == sum(e["possible"] for e in instructor["exercises"]) > 0  # written: pending


@needs_course
def test_without_namespaces_landlock_and_seccomp_grading_works_only_when_told_and_says_so(tmp_path):
    """What an instructor gets on a system without these (macOS, an old kernel): the same verdicts
    for honest code and for timeouts, and warnings in grades.json. (No fork bomb here: without
    these protections, only the process limit of a non-root user would stop it.)"""
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    subs = tmp_path / "subs"
    corpus.write(corpus.solved(student00, solution00), subs / "ada" / "00_welcome.ipynb")
    corpus.write(corpus.hostile(student00, solution00, "sigmoid", "while True:\n    pass"), subs / "bob" / "00_welcome.ipynb")
    options = Options(solutions=course_00_02(tmp_path), seed=SEED, jobs=2, progress=False,
                      limits=Limits(wall=3, cpu=3, memory=512 * MiB), allow_weak_sandbox=True,
                      skip_protections=("namespaces", "landlock", "seccomp"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = grade(subs, tmp_path / "out", options)
    assert any("landlock is not in force" in str(w.message) for w in caught)
    assert [s["total"] for s in results["students"]] == [2, 1]
    assert results["students"][1]["exercises"][0]["status"] == "timeout"
    assert {"namespaces", "landlock", "seccomp"} <= set(results["sandbox"]["unavailable"])
    assert any("landlock" in w for w in results["warnings"])


@needs_course
def test_without_seccomp_a_fork_bomb_is_held_by_the_process_limit_of_its_pid_namespace(tmp_path):
    """Defence in depth: with fork allowed, pid_max of the child's PID namespace stops the bomb at
    300 processes (about 0.4 GB for a moment), and killing the namespace's first process ends them all."""
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    subs, jobs = tmp_path / "subs", tmp_path / "jobs"
    jobs.mkdir()
    corpus.write(corpus.hostile(student00, solution00, "sigmoid", "import os\nwhile True:\n    os.fork()"),
                 subs / "bomber" / "00_welcome.ipynb")
    options = Options(solutions=course_00_02(tmp_path), seed=SEED, jobs=1, progress=False, tmp_root=str(jobs),
                      limits=Limits(wall=4, cpu=3, memory=512 * MiB), skip_protections=("seccomp",),
                      allow_weak_sandbox=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = grade(subs, tmp_path / "out", options)
    if "pid_max" not in results["sandbox"]["protections"]:
        pytest.skip("no per-namespace pid_max here (Linux < 6.14 or no PID namespace)")
    bomber = results["students"][0]
    # crashed once pid_max is reached (the forks share the result file); on a busy machine, a timeout first
    assert bomber["exercises"][0]["status"] in ("crashed", "timeout") and bomber["total"] == 1
    assert leftover_processes(jobs) == [] and list(jobs.iterdir()) == []


TINY = [
    "import numpy as np\nimport matplotlib.pyplot as plt\nfrom course_utils import check",
    ("# EXERCISE 1.1: rnn_step_forward (2 points)\ndef rnn_step_forward(x, prev_h, Wx, Wh, b):\n"
     "    ### BEGIN SOLUTION\n    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)\n"
     "    cache = (x, prev_h, Wx, Wh, next_h)\n    ### END SOLUTION\n    return next_h, cache"),
    "check.rnn_step_forward(rnn_step_forward)",
    ("# EXERCISE 1.2: rnn_step_backward (3 points)\ndef rnn_step_backward(dnext_h, cache):\n"
     "    x, prev_h, Wx, Wh, next_h = cache\n    ### BEGIN SOLUTION\n    da = dnext_h * (1 - next_h**2)\n"
     "    ### END SOLUTION\n    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)"),
    "while True:  # a training loop: never run by the grader\n    pass",
    "plt.plot(np.arange(3))\nplt.show()",
]


@needs_linux
def test_the_course_comes_from_the_solutions_folder_given(tmp_path):
    """A course of one synthetic notebook, where the backward exercise uses the learner's own forward."""
    solutions, subs, sol, student = corpus.tiny_course(tmp_path, "01_tiny", TINY)
    corpus.write(corpus.hostile(student, sol, "rnn_step_backward", "da = dnext_h"), subs / "cy" / "01_tiny.ipynb")
    results = grade(subs, tmp_path / "out", Options(solutions=solutions, seed=SEED, jobs=2, limits=LIMITS,
                                                    progress=False))
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 5, "bob": 0, "cy": 2}
    cy = {e["exercise"]: e for e in results["students"][2]["exercises"]}
    assert cy["rnn_step_backward"]["status"] == "wrong" and "tanh derivative" in cy["rnn_step_backward"]["hint"]


# --- the trusted side, on its own: untrusted bytes in, never a pass out -----------------------------


def npz_bytes(save, **arrays) -> bytes:
    import io
    buf = io.BytesIO()
    save(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("data", [
    npz_bytes(np.savez, a=np.array([object()], dtype=object)),  # a pickle inside
    npz_bytes(np.savez_compressed, a=np.zeros(3)),  # a zip bomb would be compressed
    npz_bytes(np.savez, a=np.array(["text"])),
    npz_bytes(np.savez, a=np.zeros(2, dtype=[("x", float)])),
    b"PK\x03\x04 not really a zip",
    b"\x80\x04pickle",
])
def test_results_that_are_not_plain_numeric_arrays_are_refused(data):
    with pytest.raises(Malformed):
        sandbox.load_npz(data, 1 << 20)


def test_plain_results_load():
    arrays = sandbox.load_npz(npz_bytes(np.savez, a=np.arange(3.0), b=np.array(True)), 1 << 20)
    assert arrays["a"].tolist() == [0.0, 1.0, 2.0] and type(arrays["b"]) is np.ndarray


def test_result_files_that_are_links_or_pipes_are_refused(tmp_path):
    (tmp_path / "secret").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "secret")
    os.mkfifo(tmp_path / "fifo")
    for name in ("link", "fifo"):
        with pytest.raises(Malformed):
            sandbox.read_capped(tmp_path / name, 100)
    assert sandbox.read_capped(tmp_path / "absent", 100) is None


def test_plans_refuse_anything_but_plain_data():
    with pytest.raises(TypeError):
        sandbox.encode({"f": lambda x: x}, {})
    with pytest.raises(TypeError):
        sandbox.encode(np.array([object()]), {})
    arrays = {}
    assert sandbox.encode({"a": (np.zeros(2), 1.5, "s")}, arrays) == \
        {"$dict": [["a", {"$tuple": [{"$array": "a0"}, 1.5, "s"]}]]}


@pytest.fixture(scope="module")
def sigmoid_plan():
    from course_utils.check import EXERCISES
    return make_plan(EXERCISES["sigmoid"], SEED)


def child(cases, arrays=None, **outer):
    return ChildResult(outer={"learner_started": True, "exit_code": 0, **outer},
                       result={"cases": cases, "syntax_errors": {}, "definition_errors": [], "undefined": []},
                       arrays=arrays or {})


@pytest.mark.parametrize("make", [
    lambda p: child([]),  # fewer results than cases
    lambda p: child([{"status": "returned", "outputs": {"c0_0": "out"}, "modified": []}]),  # array missing
    lambda p: child([{"status": "passed"}] * len(p.cases)),  # a status the child cannot give
    lambda p: child("all passed"),
    lambda p: ChildResult(outer={"learner_started": True, "exit_code": 0}, result=None),
    lambda p: ChildResult(outer={"learner_started": True, "exit_code": -11}, result=None),
    lambda p: ChildResult(outer={"learner_started": False, "exit_code": 0}, result=None),
    lambda p: ChildResult(outer=None, result=None),
])
def test_anything_malformed_from_the_child_is_never_a_pass(sigmoid_plan, make):
    g = judge(Grade("00_welcome", "0.1", "sigmoid", 1), sigmoid_plan, make(sigmoid_plan), LIMITS, {"sigmoid": [1]})
    assert g.status != "passed" and g.points == 0, g


def test_correct_arrays_from_the_child_pass(sigmoid_plan):
    from course_utils.reference import sigmoid
    cases = [{"status": "returned", "outputs": {f"c{i}": "out"}, "modified": []} for i in range(len(sigmoid_plan.cases))]
    arrays = {f"c{i}": sigmoid(c.args["x"]) for i, c in enumerate(sigmoid_plan.cases)}
    g = judge(Grade("00_welcome", "0.1", "sigmoid", 1), sigmoid_plan, child(cases, arrays), LIMITS, {})
    assert g.status == "passed" and g.points == 1


@pytest.mark.parametrize("data, words", [
    (b"", "empty"), (b"{", "truncated"), (b'{"cells": [1,, 2]}', "not valid JSON"), (b"[]", "not a Jupyter"),
    (b'{"cells": []}', "no cells"), (b"\xff\xfe\x00", "not text"),
])
def test_unreadable_notebooks_are_named(tmp_path, data, words):
    path = tmp_path / "x.ipynb"
    path.write_bytes(data)
    sub = Submission("s", path, "x.ipynb", None)
    read_submission(sub)
    assert words in sub.problem


def test_redact_masks_decimal_numbers_only():
    assert redact("array([0.25, -1.5e-3]) of shape (3, 4)") == "array([…, …]) of shape (3, 4)"
    assert redact("array([[1.5],\n       [2.5]])") == "array([[…], […]])"
