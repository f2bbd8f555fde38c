"""Make the student notebooks in ``notebooks/`` from the solutions in ``solutions/``.

``solutions/`` is the single source of truth. An exercise is marked in the cell source,
so that it survives JupyterLab, VS Code and Colab, which may drop cell metadata:

    # EXERCISE 1.1: rnn_step_forward (2 points)
    def rnn_step_forward(x, prev_h, Wx, Wh, b):
        \"\"\"...docstring the learner keeps...\"\"\"
        ### BEGIN SOLUTION
        next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
        cache = (x, prev_h, Wx, Wh, next_h)
        ### END SOLUTION
        return next_h, cache

In the student version each ``BEGIN SOLUTION ... END SOLUTION`` region becomes

        # YOUR CODE HERE
        raise NotImplementedError("Exercise 1.1: rnn_step_forward")

at the marker's indentation. Outputs and execution counts are cleared, lines holding
nbval markers (``# NBVAL_CHECK_OUTPUT``) are dropped, a banner cell tells the learner where to
write and how to check, and the metadata (``course.generated``) tells authors the file is generated.
A written question is a markdown cell whose first line is ``<!-- QUESTION 5.9: name (2 points) -->``
followed by its answer cell, whose first line is ``<!-- ANSWER 5.9: name -->``: in the student
version the model answer under that line becomes ``ANSWER_PROMPT`` (see grading/written.py).
``release --check`` regenerates in memory and fails if ``notebooks/`` differs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path



class _Nbformat:
    """nbformat, imported on first use: the grader imports this module for its exercise markers,
    and importing nbformat (through jsonschema) costs seconds of CPU."""

    def __getattr__(self, name):
        import nbformat

        return getattr(nbformat, name)


nbformat = _Nbformat()

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_RE = re.compile(r"^#\s*EXERCISE\s+(?P<number>\d+\.\d+)\s*:\s*(?P<name>\w+)\s*\((?P<points>\d+)\s*points?\)",
                         re.MULTILINE | re.IGNORECASE)
BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\s*$")
END_RE = re.compile(r"^[ \t]*### END SOLUTION\s*$")
NBVAL_RE = re.compile(r"^\s*# NBVAL_\w+\s*$")
# Written questions: matched against the first line of a markdown cell.
QUESTION_RE = re.compile(r"^<!--\s*QUESTION\s+(?P<number>\d+\.\d+)\s*:\s*(?P<name>\w+)\s*"
                         r"\((?P<points>\d+)\s*points?\)\s*-->\s*$", re.IGNORECASE)
ANSWER_RE = re.compile(r"^<!--\s*ANSWER\s+(?P<number>\d+\.\d+)\s*:\s*(?P<name>\w+)\s*-->\s*$", re.IGNORECASE)
ANSWER_PROMPT = ("*Your answer: double-click this cell and replace this line with a few sentences of your own. "
                 "Keep the first line (hidden when the cell is shown): it marks your answer for grading.*")
BANNER_ID = "generated-banner"
KEEP_CELL_METADATA = ("tags",)


class ReleaseError(Exception):
    """A solution notebook is malformed (unbalanced markers, a duplicated exercise, ...)."""


@dataclass(frozen=True)
class ExerciseMarker:
    """One exercise header comment: its number ("4.2"), the function's name and its points."""

    number: str
    name: str
    points: int


def find_exercises(source: str) -> list[ExerciseMarker]:
    """The exercise header comments in one cell's source."""
    return [ExerciseMarker(m["number"], m["name"], int(m["points"])) for m in EXERCISE_RE.finditer(source)]


def stub_source(source: str, where: str = "") -> str:
    """Replace every solution region of one cell's source by a NotImplementedError stub."""
    markers = find_exercises(source)
    label = f"Exercise {markers[0].number}: {markers[0].name}" if markers else "this exercise"
    out, inside = [], False
    for lineno, line in enumerate(source.splitlines(), 1):
        begin = BEGIN_RE.match(line)
        if begin:
            if inside:
                raise ReleaseError(f"{where} line {lineno}: BEGIN SOLUTION inside another solution region")
            inside = True
            indent = begin["indent"]
            out += [f"{indent}# YOUR CODE HERE", f'{indent}raise NotImplementedError("{label}")']
        elif END_RE.match(line):
            if not inside:
                raise ReleaseError(f"{where} line {lineno}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not inside and not NBVAL_RE.match(line):
            out.append(line)
    if inside:
        raise ReleaseError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


BANNER = (
    "> **Your notebook.** Write your code where it says `# YOUR CODE HERE`, replacing the "
    "`raise NotImplementedError(...)` line, then run the check cell under the exercise: it says "
    "whether your code is right and, if not, where to look. Stuck? Open the hints under the "
    "exercise. Your work is saved in this file.")
AUTHORS_NOTE = ("Generated file: do not edit. It is made from solutions/{source} by "
                "`python -m course_utils release`; edit the solution and release again.")


def banner(source_name: str) -> nbformat.NotebookNode:
    """The first cell of a student notebook: what the learner needs, in their words.

    The authors' notice ("generated, do not edit") is in the notebook's metadata
    (``metadata.course.generated``), where authors look, not in the learner's way.
    """
    cell = nbformat.v4.new_markdown_cell(BANNER)
    cell["id"] = BANNER_ID
    return cell


def student_version(nb: nbformat.NotebookNode, source_name: str) -> nbformat.NotebookNode:
    """The student notebook for one solution notebook (a new object; nb is not changed)."""
    seen: dict[str, str] = {}
    cells = [banner(source_name)]
    for i, cell in enumerate(nb.cells):
        if cell.get("id") == BANNER_ID:
            continue
        new = nbformat.from_dict({k: v for k, v in cell.items() if k not in ("outputs", "execution_count")})
        new["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in KEEP_CELL_METADATA}
        if cell.cell_type == "code":
            for marker in find_exercises(cell.source):
                if marker.name in seen:
                    raise ReleaseError(f"{source_name}: exercise {marker.name} appears twice")
                seen[marker.name] = marker.number
            new["source"] = stub_source(cell.source, f"{source_name} cell {i}")
            new["outputs"] = []
            new["execution_count"] = None
        elif ANSWER_RE.match(cell.source.split("\n", 1)[0].strip()):  # a written answer: the model answer goes
            new["source"] = cell.source.split("\n", 1)[0].strip() + "\n\n" + ANSWER_PROMPT
            new.pop("attachments", None)
        new.pop("attachments", None) if cell.cell_type == "code" else None
        cells.append(new)
    metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    metadata["course"] = {"generated": AUTHORS_NOTE.format(source=source_name)}
    out = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    out.nbformat, out.nbformat_minor = nb.nbformat, max(nb.nbformat_minor, 5)
    return out


def render(nb: nbformat.NotebookNode) -> str:
    """A notebook as the text written to disk (nbformat's JSON and a final newline)."""
    return nbformat.writes(nb) + "\n"


def release(root: Path = ROOT, check: bool = False) -> list[str]:
    """Regenerate notebooks/ (or, with check, list what is out of date). Returns the problems."""
    sol_dir, nb_dir = root / "solutions", root / "notebooks"
    problems = []
    wanted = {}
    for path in sorted(sol_dir.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        wanted[path.name] = render(student_version(nb, path.name))
    if not check:
        nb_dir.mkdir(exist_ok=True)
    for name, text in wanted.items():
        target = nb_dir / name
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            problems.append(f"notebooks/{name} is {'missing' if current is None else 'out of date'}")
            if not check:
                target.write_text(text, encoding="utf-8")
    for extra in sorted(set(p.name for p in nb_dir.glob("*.ipynb")) - set(wanted)):
        problems.append(f"notebooks/{extra} has no solutions/{extra}")
        if not check:
            (nb_dir / extra).unlink()
    return problems
