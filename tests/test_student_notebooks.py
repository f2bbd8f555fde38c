"""Every student notebook runs: each check reports "not attempted yet" in one line and stops
"Run All" there (NotAttemptedYet, shown as one line), and nothing else fails.

Student notebooks raise NotImplementedError in every exercise, so cells that use an
exercise fail too. Those failures are expected; any other error is a defect of the
notebook. A NameError is accepted only for a name that a cell which failed earlier would
have defined (a plot of the hidden states that a stub never computed, say).
"""
import ast
import re

import nbformat
import pytest

from conftest import NOTEBOOKS, ROOT
from course_utils.notebooks import execute

CHECK_CALL = re.compile(r"^check\.(?!demo\b)\w+\(", re.MULTILINE)  # demo() shows a verdict on purpose
NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def assigned_names(source: str) -> set[str]:
    """Names a cell would define: assignments, for-loop targets, functions, imports."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream") + "".join(
        str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs if "data" in o)


def errors_of(cell):
    return [o for o in cell.outputs if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=[p.stem for p in NOTEBOOK_PATHS])
def test_student_notebook_reports_not_attempted(path):
    nb = execute(nbformat.read(path, as_version=4), cwd=path.parent, timeout=120, allow_errors=True)
    failed_names: set[str] = set()
    checks = 0
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        where = f"{path.name}, code cell {i}:\n{cell.source[:200]}"
        errors = errors_of(cell)
        if CHECK_CALL.search(cell.source):
            checks += 1
            # Run All stops here: one line of verdict, then NotAttemptedYet shown in one line
            assert [e.ename for e in errors] == ["NotAttemptedYet"], f"check cell errors {errors} in {where}"
            assert len(errors[0].traceback) == 1, f"more than one line of error in {where}"
            assert "not attempted yet" in text_of(cell), f"no 'not attempted yet' in {where}"
            continue
        for err in errors:
            if err.ename == "NotImplementedError":
                failed_names |= assigned_names(cell.source)
                continue
            missing = re.match(r"name '(\w+)' is not defined", err.evalue)
            assert err.ename == "NameError" and missing and missing[1] in failed_names, (
                f"unexpected {err.ename}: {err.evalue} in {where}")
            failed_names |= assigned_names(cell.source)
    assert checks > 0, f"{path.name} has no check cells"


def test_every_solution_has_a_student_notebook():
    solutions = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    assert solutions, "no solution notebooks"
    assert solutions == [p.name for p in NOTEBOOK_PATHS]
