"""The learner writes the answers: no exercise's code, and no gradient formula of a backward
exercise, can be read in a student notebook outside a collapsed hint.

What a learner sees without opening anything is the student notebook's text less every
``<details>...</details>`` block: the markdown cells and the code cells (whose solution regions
the release tool has already replaced by stubs). Two rules are checked against it:

- **Code.** Every statement of every solution region (``### BEGIN SOLUTION`` ... ``### END
  SOLUTION`` in ``solutions/``), and the right-hand side of every assignment in it, compared
  without whitespace, comments or backticks, must not stand in the visible text. Statements too
  short or too generic to give anything away (``for t in range(T):``) are left out by length.
- **Gradient formulas.** In a notebook with backward exercises, no visible equation may give
  one of those exercises' gradients (``dx = ...``, ``dW_x = ...``,
  ``\\frac{\\partial L}{\\partial W_x} = ...``). Notebook 02 teaches the method on a function of its
  own, whose gradients have other names.
"""
from __future__ import annotations

import ast
import re

import nbformat
import pytest

from conftest import NOTEBOOKS, SOLUTIONS
from course_utils.check import EXERCISES
from course_utils.checking.exercise import BackwardExercise
from course_utils.release import BEGIN_RE, END_RE, find_exercises

PATHS = sorted(SOLUTIONS.glob("*.ipynb"))
IDS = [p.stem for p in PATHS]
MIN_CHARS = 14  # a statement shorter than this, without spaces, gives nothing away
DETAILS_RE = re.compile(r"<details\b.*?</details>", re.DOTALL | re.IGNORECASE)


def squeeze(text: str) -> str:
    """Text without whitespace, backticks or LaTeX spacing, for comparing code with prose."""
    text = text.replace("`", "").replace("\\,", "").replace("\\;", "")
    return re.sub(r"\s+", "", text)


def solution_lines(source: str) -> list[str]:
    """The lines inside the solution regions of one cell's source, comments removed."""
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN_RE.match(line):
            inside = True
        elif END_RE.match(line):
            inside = False
        elif inside:
            code = line.split("  #")[0].split("# ")[0] if not line.strip().startswith("#") else ""
            if code.strip():
                lines.append(code.strip())
    return lines


def fragments(line: str) -> list[str]:
    """What of one solution statement must not be visible: the statement, and the value it assigns."""
    try:
        node = ast.parse(line + (" pass" if line.endswith(":") else "")).body[0]
    except (SyntaxError, IndexError):
        node = None
    if generic(node):
        return []
    found = [line]
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None \
            and not plain_call(node.value):
        found.append(ast.unparse(node.value))
        found.append(line.split("=", 1)[1] if "=" in line else "")
    elif isinstance(node, ast.Return) and node.value is not None:
        found.append(ast.unparse(node.value))
    return [f for f in (squeeze(f) for f in found) if len(f) >= MIN_CHARS]


def plain_call(value) -> bool:
    """`f(a, b, c)`: a call of a function on plain names reads like the function's own `def` line and
    gives nothing away by itself (the statement around it is still compared)."""
    return isinstance(value, ast.Call) and not value.keywords and all(isinstance(a, ast.Name) for a in value.args)


def generic(node) -> bool:
    """A statement that gives nothing away: a loop over a range, sizes read from a shape,
    returning the names the docstring promises."""
    if isinstance(node, ast.For):
        return "range(" in ast.unparse(node.iter)
    if isinstance(node, ast.Assign):
        return ".shape" in ast.unparse(node.value) and len(ast.unparse(node.value)) < 20
    if isinstance(node, ast.Return):
        value = node.value
        items = value.elts if isinstance(value, ast.Tuple) else [value]
        return all(isinstance(v, ast.Name) for v in items)
    return False


def visible_text(nb) -> str:
    """Everything a learner reads without opening a hint."""
    parts = []
    for cell in nb.cells:
        text = cell.source
        if cell.cell_type == "markdown":
            text = DETAILS_RE.sub(" ", text)
        parts.append(text)
    return "\n".join(parts)


def leaks(solution_path) -> list[str]:
    solution = nbformat.read(solution_path, as_version=4)
    student = nbformat.read(NOTEBOOKS / solution_path.name, as_version=4)
    seen = squeeze(visible_text(student))
    found = []
    for cell in solution.cells:
        if cell.cell_type != "code" or "### BEGIN SOLUTION" not in cell.source:
            continue
        names = ", ".join(m.name for m in find_exercises(cell.source)) or "a solution region"
        for line in solution_lines(cell.source):
            for fragment in fragments(line):
                if fragment in seen:
                    found.append(f"{names}: `{line}` can be read in the student notebook")
                    break
    return found


# --- gradient formulas -------------------------------------------------------------------------

MATH_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|`([^`]+)`", re.DOTALL)


def gradient_key(lhs: str) -> str:
    """A gradient's name, the same for `dWx`, `dW_x`, `\\frac{\\partial L}{\\partial W_x}`, `∂L/∂W_x`."""
    s = lhs.replace("\\mathcal{L}", "L").replace("\\ell", "L").replace("∂", "\\partial ")
    s = re.sub(r"\\(mathrm|mathbf|boldsymbol|text|operatorname)\b", "", s)
    m = re.fullmatch(r"\s*\\frac\s*\{\s*\\partial\s*L\s*\}\s*\{\s*\\partial\s*(.+?)\}\s*", s) or re.fullmatch(
        r"\s*\\partial\s*L\s*/\s*\\partial\s*(.+?)\s*", s)
    name = "d" + m[1] if m else s
    return re.sub(r"[\s{}_\\^()]", "", name).lower()


def gradient_names(solution_path) -> set[str]:
    names = set()
    nb = nbformat.read(solution_path, as_version=4)
    for cell in nb.cells:
        for marker in find_exercises(cell.source) if cell.cell_type == "code" else ():
            ex = EXERCISES.get(marker.name)
            if isinstance(ex, BackwardExercise):
                names |= {gradient_key(g) for g in ex.returns}
    return names


def formula_leaks(solution_path) -> list[str]:
    names = gradient_names(solution_path)
    if not names:
        return []
    student = nbformat.read(NOTEBOOKS / solution_path.name, as_version=4)
    found = []
    for cell in student.cells:
        if cell.cell_type != "markdown":
            continue
        for m in MATH_RE.finditer(DETAILS_RE.sub(" ", cell.source)):
            span = next(g for g in m.groups() if g is not None)
            for statement in re.split(r"\\\\|;|,\s|\n|&", span):
                if "=" not in statement:
                    continue
                lhs = statement.split("=")[0]
                if gradient_key(lhs) in names:
                    found.append(f"a gradient formula can be read outside a hint: {span.strip()[:120]!r}")
    return found


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_no_solution_code_is_visible_in_the_student_notebook(path):
    found = leaks(path)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_no_gradient_formula_of_a_backward_exercise_is_visible(path):
    found = formula_leaks(path)
    assert not found, "\n".join(found)


def test_the_rules_catch_what_they_are_for():
    """The detectors find a statement, an assigned value, and gradient formulas in their usual forms."""
    assert fragments("next_h = np.tanh(x @ Wx + prev_h @ Wh + b)")[1] in squeeze(
        "compute `h = np.tanh(x @ Wx + prev_h @ Wh + b)`")
    assert "cache=(x,prev_h,Wx,Wh,next_h)" in fragments("cache = (x, prev_h, Wx, Wh, next_h)")
    assert not fragments("for t in range(T):") and not fragments("for t in reversed(range(x.shape[1])):")
    assert not fragments("return clipped, total_norm") and not fragments("N, T, D = x.shape")
    assert fragments("scores, cache = lm_forward(params, x, h0)") == ["scores,cache=lm_forward(params,x,h0)"]
    for lhs in ("dWx", "dW_x", "dW_{x}", "\\frac{\\partial L}{\\partial W_x}", "\\partial L / \\partial W_x",
                "\\frac{\\partial \\mathcal{L}}{\\partial W_{x}}"):
        assert gradient_key(lhs) == gradient_key("dWx"), lhs
    assert gradient_key("\\frac{\\partial c_t}{\\partial c_{t-1}}") != gradient_key("dprev_c")
    shown = "<details><summary>Hint 3</summary>\n\n`dx = da @ Wx.T`\n</details>"
    assert "da@Wx.T" not in squeeze(DETAILS_RE.sub(" ", shown))
