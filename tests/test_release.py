"""The release tool: student notebooks are generated from solutions, and --check catches drift."""
import hashlib
import shutil
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT, SOLUTIONS
from course_utils.release import ReleaseError, release, render, stub_source, student_version

SOLVED = '''# EXERCISE 1.1: rnn_step_forward (2 points)
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """Docstring stays."""
    ### BEGIN SOLUTION
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    ### END SOLUTION
    return next_h, None'''


def test_solution_region_becomes_a_stub_at_its_indentation():
    out = stub_source(SOLVED)
    assert '    raise NotImplementedError("Exercise 1.1: rnn_step_forward")' in out
    assert "    # YOUR CODE HERE" in out
    assert "np.tanh" not in out and "BEGIN SOLUTION" not in out
    assert '"""Docstring stays."""' in out and out.rstrip().endswith("return next_h, None")


def test_nbval_markers_are_dropped_from_student_code():
    assert stub_source("# NBVAL_CHECK_OUTPUT\ncheck.sigmoid(sigmoid)") == "check.sigmoid(sigmoid)"


@pytest.mark.parametrize("bad", [
    "### BEGIN SOLUTION\nx = 1",
    "x = 1\n### END SOLUTION",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
])
def test_unbalanced_markers_are_refused(bad):
    with pytest.raises(ReleaseError):
        stub_source(bad)


def test_duplicated_exercise_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOLVED), nbformat.v4.new_code_cell(SOLVED)])
    with pytest.raises(ReleaseError, match="twice"):
        student_version(nb, "01_x.ipynb")


def test_student_version_has_banner_and_no_outputs():
    cell = nbformat.v4.new_code_cell(SOLVED, execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="hi")])
    cell.metadata = {"tags": ["keep"], "execution": {"iopub.status.busy": "2026-01-01"}}
    out = student_version(nbformat.v4.new_notebook(cells=[cell]), "01_x.ipynb")
    assert "YOUR CODE HERE" in out.cells[0].source and "Generated" not in out.cells[0].source
    assert "do not edit" in out.metadata["course"]["generated"] and "solutions/01_x.ipynb" in out.metadata["course"]["generated"]
    code = out.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata == {"tags": ["keep"]}


def test_check_detects_stale_missing_and_orphan_notebooks(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "solutions")
    assert release(tmp_path) and release(tmp_path, check=True) == []
    first = sorted((tmp_path / "notebooks").glob("*.ipynb"))[0]
    first.write_text(first.read_text() + " ")
    (tmp_path / "notebooks" / "99_orphan.ipynb").write_text("{}")
    problems = release(tmp_path, check=True)
    assert any("out of date" in p for p in problems) and any("99_orphan" in p for p in problems)
    release(tmp_path)
    assert release(tmp_path, check=True) == []


def test_release_never_modifies_solutions(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "solutions")
    digest = lambda: {p.name: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
                      for p in (tmp_path / "solutions").glob("*.ipynb")}
    before = digest()
    release(tmp_path)
    assert digest() == before


def test_notebooks_folder_is_up_to_date():
    """The committed notebooks/ is exactly what `release` makes from solutions/."""
    result = subprocess.run([sys.executable, "-m", "course_utils", "release", "--check"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_written_answer_becomes_a_prompt_and_its_question_stays():
    from course_utils.release import ANSWER_PROMPT

    question = "<!-- QUESTION 1.4: why (2 points) -->\n### Question 1.4 (written, 2 points)\n\nWhy?"
    answer = "<!-- ANSWER 1.4: why -->\nBecause the model answer says so."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(question), nbformat.v4.new_markdown_cell(answer)])
    out = student_version(nb, "01_x.ipynb")
    assert out.cells[1].source == question
    assert out.cells[2].source == "<!-- ANSWER 1.4: why -->\n\n" + ANSWER_PROMPT
    assert "model answer" not in render(out)
