"""Every solution notebook follows the course's conventions (COURSE_SPEC.md, STYLE.md)."""
import re

import nbformat
import pytest

from conftest import SOLUTIONS
from course_utils import check
from course_utils.release import find_exercises

PATHS = sorted(SOLUTIONS.glob("*.ipynb"))
IDS = [p.stem for p in PATHS]


def load(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_name_title_goal_prerequisites_summary(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)
    nb = load(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith(f"# {path.name[:2]} ·")
    assert "**Goal:**" in first.source and "**Prerequisites:**" in first.source
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Summary" in markdown and "Further exercises" in markdown


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_every_exercise_has_a_heading_a_check_and_a_solution(path):
    cells = load(path).cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        for ex in find_exercises(cell.source):
            assert ex.number.startswith(str(int(path.name[:2]))), f"{ex.name}: numbered {ex.number}"
            assert "### BEGIN SOLUTION" in cell.source, f"{ex.name} has no solution region"
            heading = f"### Exercise {ex.number}: `{ex.name}`"
            assert any(heading in c.source for c in cells[:i] if c.cell_type == "markdown"), (
                f"no markdown heading {heading!r} before {ex.name}")
            if ex.name in check.EXERCISES:
                uses = [c.source for c in cells[i + 1:] if c.cell_type == "code" and f"check.{ex.name}(" in c.source]
                assert uses, f"{ex.name} is never checked"


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_check_cells_compare_their_output_under_nbval(path):
    for cell in load(path).cells:
        if cell.cell_type == "code" and re.search(r"^check\.(?!demo\b)\w+\(", cell.source, re.MULTILINE):
            assert "# NBVAL_CHECK_OUTPUT" in cell.source, cell.source
            assert "✓" in "".join(o.get("text", "") for o in cell.outputs), (
                f"the saved output of {cell.source!r} is not a pass: re-run `make solutions`")


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_solutions_are_saved_executed_without_errors(path):
    code = [c for c in load(path).cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code if c.source.strip()), "run `make solutions` to save outputs"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]


def test_spec_exercises_all_have_checks():
    numpy_part = ["sigmoid", "softmax", "rnn_step_forward", "rnn_forward", "temporal_affine_forward",
                  "numerical_gradient", "rnn_step_backward", "rnn_backward", "temporal_affine_backward",
                  "clip_grad_norm", "embedding_forward", "embedding_backward", "temporal_softmax_loss",
                  "sample_with_temperature", "lstm_step_forward", "lstm_step_backward", "lstm_forward",
                  "lstm_backward", "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"]
    assert set(numpy_part) <= set(check.EXERCISES)
    for name in numpy_part:
        assert callable(getattr(check, name))


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_every_exercise_has_progressive_hints_between_the_exercise_and_its_check(path):
    """Hints are folded (<details>), at least two, numbered from 1, in a markdown cell after the
    exercise's code cell and before its check cell: the learner chooses to open them."""
    cells = load(path).cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        for ex in find_exercises(cell.source):
            after = []
            for later in cells[i + 1:]:
                if later.cell_type == "code" and f"check.{ex.name}(" in later.source:
                    break
                if later.cell_type == "code" and find_exercises(later.source):
                    break
                after.append(later)
            hints = "\n".join(c.source for c in after if c.cell_type == "markdown")
            numbers = [int(n) for n in re.findall(r"<summary>\s*(?:<b>)?\s*Hint (\d+)", hints)]
            assert len(numbers) >= 2 and numbers == list(range(1, len(numbers) + 1)), (
                f"{ex.name}: expected hints 'Hint 1', 'Hint 2', ... in <details> after the exercise cell")
            assert hints.count("<details") == hints.count("</details>") >= len(numbers), ex.name
