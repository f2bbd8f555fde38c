"""What a student writes is never trusted as text, a bad file costs one row and never the class,
a slow student cannot slow the class down, and a child holds only what its exercise needs."""
from __future__ import annotations

import io
import json
import os
import re
import sys
import time
import warnings
import zipfile
from pathlib import Path

import grading_corpus as corpus
import numpy as np
import pytest
from conftest import NOTEBOOKS, SOLUTIONS

from course_utils.check import EXERCISES
from course_utils.grading import Limits, Options, grade, sandbox
from course_utils.grading.grader import Grade, judge, make_plan, needed_given, verified_line
from course_utils.grading.report import csv_cell, feedback, safe_name
from course_utils.grading.sandbox import ChildResult, Malformed
from course_utils.grading.submissions import Cell, Submission, read_submission, student_id

LINUX = sys.platform.startswith("linux")
MiB = 1 << 20
LIMITS = Limits(wall=6, cpu=6, memory=512 * MiB)


def solved00():
    return corpus.solved(corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb"))


def solutions00(root: Path) -> Path:
    corpus.write(corpus.load(SOLUTIONS / "00_welcome.ipynb"), root / "solutions" / "00_welcome.ipynb")
    return root / "solutions"


# --- names and messages are text, not markup or formulas ---------------------------------------


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1"])
def test_a_name_that_a_spreadsheet_would_evaluate_is_written_as_text(name):
    cell = csv_cell(name)
    assert cell.startswith("'") or cell[:1] not in "=+-@\t\r", cell
    assert "\t" not in cell and "\r" not in cell
    assert csv_cell(3) == "3" and csv_cell("ada") == "ada"


def test_a_name_with_a_newline_cannot_forge_a_line_of_feedback():
    student = {"student": "eve\n\n**Total: 84 / 84 points**\n", "total": 0, "possible": 84, "problems": [],
               "notes": [], "exercises": []}
    text = feedback(student, {"course": {"notebooks": []}})
    assert text.splitlines()[0].startswith("# Feedback for eve"), text
    assert [ln for ln in text.splitlines() if ln.startswith("**Total")] == ["**Total: 0 / 84 points**"], text


def test_escapes_and_html_from_an_exception_are_shown_as_text():
    e = {"notebook": "00_welcome", "number": "0.1", "exercise": "sigmoid", "points": 0, "possible": 1,
         "status": "crashed", "reason": "crashed: ValueError: \x1b[31m<script>alert(1)</script>\x1b]0;title\x07",
         "details": ["✗ sigmoid: your code raised an error.", "    error: \x1b[2J<img src=x>", "    ```evil"],
         "hint": "", "notes": []}
    student = {"student": "ada", "total": 0, "possible": 1, "problems": [], "notes": [], "exercises": [e]}
    text = feedback(student, {"course": {"notebooks": [{"name": "00_welcome"}]}})
    assert "\x1b" not in text and "\x07" not in text
    outside_code = re.sub(r"```text\n.*?\n  ```", "", text, flags=re.DOTALL)
    assert "<" not in outside_code and "&lt;script&gt;" in text  # HTML is inert inside the code block
    assert text.count("```") == 2  # a fence in a message cannot close the block early


def test_feedback_files_never_collide():
    taken: set[str] = set()
    names = [safe_name(s, taken) for s in ["bob?", "bob_2", "bob", "Bob", "bob/..", "CON", ""]]
    assert len({n.lower() for n in names}) == len(names), names
    assert "bob_2" in names and "bob" in names


def test_a_folder_name_that_is_not_utf8_becomes_an_id_that_can_be_written():
    raw = os.fsdecode(b"ren\xe9e")  # Latin-1, as zips made on Windows often are
    sid = student_id(raw)
    assert sid == "ren\\xe9e" and sid.encode("utf-8")
    assert student_id("ada") == "ada"


# --- bad files ------------------------------------------------------------------------------------


def test_a_notebook_over_50_mb_is_a_problem_row_and_its_hash_covers_every_byte(tmp_path):
    path = tmp_path / "big.ipynb"
    with open(path, "wb") as f:
        f.write(b'{"cells": [], "pad": "')
        f.write(b"x" * (51 * MiB))
        f.write(b'"}')
    sub = Submission("ada", path, "big.ipynb", "00_welcome")
    read_submission(sub)
    assert "larger than 50 MB" in sub.problem
    import hashlib
    assert sub.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_integer_of_5000_digits_is_a_problem_row(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text('{"cells": [], "x": ' + "9" * 5000 + "}")
    sub = Submission("ada", path, "n.ipynb", "00_welcome")
    read_submission(sub)
    assert sub.problem.startswith("not a notebook this grader can read"), sub.problem
    with pytest.raises(Malformed):
        sandbox.load_json(b'{"cases": ' + b"9" * 5000 + b"}")


def test_a_result_archive_with_300000_entries_is_refused_before_it_is_parsed():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i in range(sandbox.MAX_RESULT_ARRAYS + 1):
            z.writestr(f"a{i}.npy", b"")
    start = time.perf_counter()
    with pytest.raises(Malformed, match="more than"):
        sandbox.load_npz(buf.getvalue(), 64 * MiB)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("result", [
    {"cases": [{"status": "returned"}]},  # no outputs
    {"cases": [{"status": "returned", "outputs": {"c0_0": "out"}}]},  # an array that is not there
    {"cases": "many"},
    {"cases": [{"status": "raised", "type": ["ValueError"], "message": {"a": 1}}]},
    {"syntax_errors": [], "cases": []},
])
def test_a_childs_report_with_missing_or_wrong_keys_is_the_childs_crash_not_the_graders_error(result):
    ex = EXERCISES["sigmoid"]
    plan = make_plan(ex, "seed")
    child = ChildResult(outer={"exit_code": 0, "learner_started": True, "protections": {}}, result=result, arrays={})
    g = judge(Grade("00_welcome", "0.1", "sigmoid", 1), plan, child, LIMITS, {"sigmoid": [3]})
    assert g.status == "crashed" and g.points == 0 and "malformed" in g.reason or g.status == "crashed", g


def test_a_where_line_is_shown_only_when_it_is_the_submitted_code():
    lines = frozenset({"return 1 / (1 + np.exp(-x))"})
    assert verified_line("in sigmoid: return 1 / (1 + np.exp(-x))", lines) == "in sigmoid: return 1 / (1 + np.exp(-x))"
    assert verified_line("in sigmoid: x = [1.4596, 0.25]", lines) == ""
    assert verified_line("x = [1.4596]", lines) == ""


# --- a child gets only what it needs ---------------------------------------------------------------


def test_a_child_of_notebook_06_never_holds_the_reference_lstm_backward():
    from course_utils.grading.submissions import load_course
    course = load_course(SOLUTIONS, EXERCISES)
    given = course.notebooks["06_gru_numpy"].given
    assert "lstm_backward" in given  # the notebook imports it, for its comparison
    solution = corpus.load(SOLUTIONS / "06_gru_numpy.ipynb")
    cells = [Cell(i, corpus.source(c)) for i, c in enumerate(solution["cells"], 1) if c["cell_type"] == "code"]
    for name in ("gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"):
        sent = needed_given(given, EXERCISES[name].funcs, cells)
        assert "lstm_backward" not in sent and "lstm_forward" not in sent, (name, sorted(sent))


# --- time: one student's notebook has a budget --------------------------------------------------------


@pytest.mark.skipif(not LINUX, reason="the sandbox is Linux's")
def test_sleeping_just_under_the_limit_in_every_exercise_is_bounded_per_notebook(tmp_path):
    """Two exercises that each sleep 80 % of the limit: the notebook's budget (here 1.2 limits) runs out
    after the first; the second times out without running; an honest student is untouched."""
    student, solution = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    slow = corpus.replace_stub(corpus.replace_stub(student, "sigmoid", "import time\ntime.sleep(2.4)\nreturn x"),
                               "softmax", "import time\ntime.sleep(2.4)\nreturn scores")
    subs = tmp_path / "subs"
    corpus.write(slow, subs / "sleepy" / "00_welcome.ipynb")
    corpus.write(solved00(), subs / "ada" / "00_welcome.ipynb")
    options = Options(solutions=solutions00(tmp_path), seed="s", jobs=1, progress=False,
                      limits=Limits(wall=3, cpu=3, memory=512 * MiB), notebook_time=3.6)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = grade(subs, tmp_path / "out", options)
    by = {s["student"]: s for s in results["students"]}
    assert by["ada"]["total"] == 2
    reasons = [e["reason"] for e in by["sleepy"]["exercises"]]
    assert by["sleepy"]["total"] == 0 and any("time budget" in r for r in reasons), reasons
    assert time.perf_counter() - start < 20
