"""The course as an nbgrader *source* assignment, for a course that releases and collects on JupyterHub.

    python -m course_utils export-nbgrader OUT [--notebooks 01 02] [--assignment NAME]

writes ``OUT/source/<assignment>/<notebook>.ipynb`` from ``solutions/`` (by default one assignment
per course notebook, named like it; with ``--assignment`` every notebook chosen in one assignment),
plus ``OUT/nbgrader_config.py`` and ``OUT/README.md``. Each cell becomes an nbgrader cell:

    =================================  ==============================================================
    course cell                        nbgrader cell (metadata ``nbgrader``, schema 3)
    =================================  ==============================================================
    exercise (``# EXERCISE 1.1: ...``)  autograded answer: solution, not graded, grade_id the exercise;
                                       nbgrader stubs its ``### BEGIN/END SOLUTION`` region as release does
    check cell under the exercise      locked test cell worth the exercise's points: the check raises
                                       on a wrong answer (CheckFailed) and on a stub (NotAttemptedYet)
    written answer (hook below)        manually graded answer: solution and graded, with its points
    anything else                      locked read-only: autograde restores it as the instructor wrote it
    =================================  ==============================================================

The exercise cells keep their markers, so nbgrader's ``submitted/`` folder grades with
``python -m course_utils grade`` as well (see docs/grading.md, "With nbgrader and JupyterHub").
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .release import NBVAL_RE, ROOT, ExerciseMarker, banner, find_exercises, nbformat

SCHEMA_VERSION = 3
COURSE_ID = "rnn-course"
CHECK_CALL = r"\bcheck\.{name}\("


class ExportError(Exception):
    """A solution notebook cannot be written as an nbgrader assignment."""


@dataclass(frozen=True)
class WrittenAnswer:
    """A written-answer cell: its question's name and points (see ``written_answers``)."""

    name: str
    points: int


def nbgrader_metadata(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
                      points: int | None = None) -> dict:
    """The ``metadata.nbgrader`` of one cell, in nbgrader's schema 3."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution}
    if grade:
        meta["points"] = points
    return meta


def check_cells(cells: list, where: str) -> dict[int, ExerciseMarker]:
    """Cell index -> exercise, for the code cell under each exercise that calls its check."""
    found: dict[int, ExerciseMarker] = {}
    for i, cell in enumerate(cells):
        markers = find_exercises(cell.source) if cell.cell_type == "code" else []
        for marker in markers:
            below = next((j for j in range(i + 1, len(cells)) if cells[j].cell_type == "code"
                          and (find_exercises(cells[j].source)
                               or re.search(CHECK_CALL.format(name=marker.name), cells[j].source))), None)
            if below is None or find_exercises(cells[below].source):
                raise ExportError(f"{where}: exercise {marker.name} has no check cell "
                                  f"(`check.{marker.name}(...)`) under it")
            found[below] = marker
    return found


def written_answers(cells: list) -> dict[int, WrittenAnswer]:
    """Cell index -> written answer, for each answer cell of a written question.

    HOOK for the written answers (docs/grading.md): a markdown cell whose first line is
    ``<!-- QUESTION <nb>.<k>: <name> (<P> points) -->`` and, right after it, the answer cell,
    whose first line is ``<!-- ANSWER <nb>.<k>: <name> -->``. Return those answer cells here and
    ``source_notebook`` makes each a manually graded answer (``manual_answer_cell``).
    """
    from .grading.written import QuestionError, answer_cells

    try:
        return {i: WrittenAnswer(q.name, q.points) for i, q in answer_cells(cells).items()}
    except QuestionError as e:
        raise ExportError(str(e)) from None


def manual_answer_cell(cell, answer: WrittenAnswer):
    """A manually graded nbgrader answer cell worth the question's points.

    The model answer is wrapped in solution markers, so that nbgrader's hand-out keeps the
    ``<!-- ANSWER ... -->`` line and replaces only the answer by its text stub."""
    first, _, rest = cell.source.partition("\n")
    cell.source = f"{first}\n### BEGIN SOLUTION\n{rest.strip()}\n### END SOLUTION"
    cell.metadata["nbgrader"] = nbgrader_metadata(f"answer_{answer.name}", solution=True, grade=True,
                                                  points=answer.points)
    return cell


def clean_copy(cell):
    """A cell without outputs, execution counts, attachments, metadata or nbval's markers (as ``release``
    hands it out), for nbgrader's metadata."""
    new = nbformat.from_dict({k: v for k, v in cell.items() if k not in ("outputs", "execution_count",
                                                                         "attachments", "metadata")})
    new["metadata"] = {}
    if cell.cell_type == "code":
        new["outputs"], new["execution_count"] = [], None
        new["source"] = "\n".join(ln for ln in cell.source.split("\n") if not NBVAL_RE.match(ln))
    return new


def source_notebook(nb, name: str):
    """The nbgrader source version of one solution notebook (a new object; nb is not changed)."""
    checks = check_cells(nb.cells, name)
    written = written_answers(nb.cells)
    first = banner(name)
    first.metadata["nbgrader"] = nbgrader_metadata("readonly-banner", locked=True)
    cells = [first]
    for i, cell in enumerate(nb.cells):
        new = clean_copy(cell)
        markers = find_exercises(cell.source) if cell.cell_type == "code" else []
        if markers:
            new.metadata["nbgrader"] = nbgrader_metadata(markers[0].name, solution=True)
        elif i in checks:
            ex = checks[i]
            new.metadata["nbgrader"] = nbgrader_metadata(f"test_{ex.name}", grade=True, locked=True,
                                                         points=ex.points)
        elif i in written:
            new = manual_answer_cell(new, written[i])
        else:
            new.metadata["nbgrader"] = nbgrader_metadata(f"readonly-{i:03d}", locked=True)
        cells.append(new)
    metadata = {k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")}
    out = nbformat.v4.new_notebook(cells=cells, metadata=metadata)
    out.nbformat, out.nbformat_minor = nb.nbformat, max(nb.nbformat_minor, 5)
    return out


def choose(solutions: Path, wanted) -> list[Path]:
    """The solution notebooks named, by number or name ("01", "01_rnn_forward"), in course order."""
    paths = sorted(Path(solutions).glob("*.ipynb"))
    if not paths:
        raise ExportError(f"no solution notebooks in {solutions}")
    if not wanted:
        return paths
    chosen = []
    for w in wanted:
        match = [p for p in paths if p.stem == w or p.stem.split("_", 1)[0] == w]
        if not match:
            raise ExportError(f"no notebook {w!r} in {solutions}: {', '.join(p.stem for p in paths)}")
        chosen += [p for p in match if p not in chosen]
    return sorted(chosen)


def export_nbgrader(out: Path, notebooks=(), assignment: str | None = None,
                    solutions: Path = ROOT / "solutions") -> dict[str, list[str]]:
    """Write OUT/source/<assignment>/<notebook>.ipynb, OUT/nbgrader_config.py and OUT/README.md.

    Returns assignment -> its notebooks. Every notebook is converted before anything is written."""
    if assignment is not None and not re.fullmatch(r"[A-Za-z0-9_\-]+", assignment):
        raise ExportError(f"assignment {assignment!r}: use letters, digits, '_' and '-'")
    paths = choose(solutions, notebooks)
    converted = {p.stem: source_notebook(nbformat.read(p, as_version=4), p.name) for p in paths}
    plan = {assignment: list(converted)} if assignment else {name: [name] for name in converted}
    out = Path(out)
    for name, members in plan.items():
        folder = out / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        for member in members:
            (folder / f"{member}.ipynb").write_text(nbformat.writes(converted[member]) + "\n", encoding="utf-8")
    (out / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    (out / "README.md").write_text(readme(plan), encoding="utf-8")
    return plan


CONFIG = f'''"""nbgrader's settings for this course (written by `python -m course_utils export-nbgrader`).
Run nbgrader in this folder; on JupyterHub, copy these lines into the graders' nbgrader_config.py."""
c = get_config()  # noqa: F821 (nbgrader defines get_config)

c.CourseDirectory.course_id = "{COURSE_ID}"  # the course's name on the hub's exchange
# The hand-out of an exercise: its solution region becomes these lines (the course's own release says
# which exercise in the error; the course's checks report either as "not attempted yet").
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# autograde runs whole notebooks, training cells included: allow them more than nbgrader's 30 s per cell.
c.Execute.timeout = 600
'''


def readme(plan: dict[str, list[str]]) -> str:
    """OUT/README.md: the nbgrader commands, and how the course's grader grades the same folder."""
    first = next(iter(plan))
    listing = "\n".join(f"- `{a}`: {', '.join(f'`{n}.ipynb`' for n in nbs)}" for a, nbs in plan.items())
    only = " ".join(sorted({n.split("_", 1)[0] for nbs in plan.values() for n in nbs}))
    return f"""# The course as an nbgrader course

Written by `python -m course_utils export-nbgrader` from the course's `solutions/`; regenerate it
rather than editing it. Assignments in `source/`:

{listing}

Exercise cells are autograded answer cells (nbgrader stubs their `### BEGIN SOLUTION` regions); the
check cell under each exercise is a locked test cell worth the exercise's points, which fails on a
wrong answer and on one not attempted; every other cell is locked read-only. The graders' Python
(the kernel nbgrader runs) needs the course installed: `pip install -r requirements.txt` in the
course's repository.

## With nbgrader (run in this folder)

```bash
nbgrader generate_assignment {first}    # source/ -> release/, solutions stubbed
nbgrader release_assignment {first}     # to the students, through the hub's exchange
nbgrader collect {first}                # -> submitted/<student>/{first}/<notebook>.ipynb, timestamp.txt
nbgrader autograde {first}              # runs each notebook top to bottom; points into gradebook.db
nbgrader generate_feedback {first} && nbgrader release_feedback {first}
```

## With the course's grader, on the same collected folder

```bash
export COURSE_GRADING_SEED="something only you know"
python -m course_utils grade submitted/ --out grades/ --notebooks {only}
```

It reads nbgrader's layout (`submitted/<student>/<assignment>/<notebook>.ipynb`), runs only the
exercises, each in a sandbox on hidden inputs, and gives the same points as the test cells for honest
work. nbgrader runs every student's whole notebook in one kernel, where a student's code can change
the checks; the course's grader never runs student code in its own process. See docs/grading.md.
"""


def add_arguments(p) -> None:
    """The options of ``python -m course_utils export-nbgrader``."""
    p.add_argument("out", type=Path, help="folder for source/<assignment>/, nbgrader_config.py and README.md")
    p.add_argument("--notebooks", nargs="+", default=(), metavar="NN",
                   help="only these notebooks, by number or name (default: every notebook in solutions/)")
    p.add_argument("--assignment", default=None, metavar="NAME",
                   help="all the notebooks in one assignment NAME (default: one per notebook, named like it)")
    p.add_argument("--solutions", type=Path, default=ROOT / "solutions", help="the instructor's solution notebooks")


def export_command(args) -> int:
    """``python -m course_utils export-nbgrader``: write the assignment, or say why not (exit 2)."""
    try:
        plan = export_nbgrader(args.out, args.notebooks, args.assignment, args.solutions)
    except (ExportError, OSError) as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 2
    for name, members in plan.items():
        print(f"{args.out / 'source' / name}: {', '.join(f'{m}.ipynb' for m in members)}")
    print(f"wrote {args.out / 'nbgrader_config.py'} and {args.out / 'README.md'}")
    return 0
