"""The course as the instructor's solutions define it, and the submissions as students hand them in.

The grading process only reads submitted notebooks as JSON and scans their cells with
regular expressions; it never parses or runs their Python (the child process does that).

Three layouts of the SUBMISSIONS folder are understood, and may be mixed:

    SUBMISSIONS/<student>/<notebook>.ipynb                 one folder per student
    SUBMISSIONS/<student>__<notebook>.ipynb                one file per student and notebook
    SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb    nbgrader's submitted/ (or autograded/) folder,
                                                           with its timestamp.txt beside the notebook

In the second layout the file name is split at the last ``__`` that is followed by two
digits, so ``ada__lovelace__01_rnn_forward.ipynb`` is student ``ada__lovelace``. A file whose
name is not a course notebook's (``Copy of 01_rnn_forward.ipynb``, ``ada.ipynb``) is matched
to the course notebook whose exercise markers it contains. An nbgrader course directory (its
``nbgrader_config.py`` or ``gradebook.db`` beside ``submitted/``) is read from its ``submitted/``.
"""
from __future__ import annotations

import ast
import dis
import functools
import hashlib
import inspect
import json
import re
import textwrap
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..release import EXERCISE_RE, find_exercises

MAX_NOTEBOOK_BYTES = 50 << 20
FILE_RE = re.compile(r"^(?P<student>.+)__(?P<notebook>\d\d_[A-Za-z0-9_]+)\.ipynb$")
IGNORED_DIRS = {"__MACOSX", ".ipynb_checkpoints"}
NBGRADER_TIMESTAMP = "timestamp.txt"  # written by nbgrader submit/collect beside the notebooks it collects
NBGRADER_COURSE_FILES = ("nbgrader_config.py", "gradebook.db")


class CourseError(Exception):
    """The instructor's solutions/ folder cannot define a course to grade."""


# --- the course, from the instructor's solutions ---------------------------------------------


@dataclass(frozen=True)
class CourseExercise:
    """One graded exercise of the course: its notebook, number ("4.2"), function name and points."""

    notebook: str
    number: str
    name: str
    points: int


@dataclass
class CourseNotebook:
    """A solution notebook's exercises, and the reference functions it imports for the learner."""

    name: str
    exercises: list[CourseExercise]
    given: dict[str, str] = field(default_factory=dict)  # name -> source of a reference function it imports
    given_problems: list[str] = field(default_factory=list)


@dataclass
class Course:
    """The notebooks being graded, in course order, and the exercises without a registered check (graded nowhere)."""

    notebooks: dict[str, CourseNotebook]
    ungradable: list[CourseExercise]

    def select(self, wanted) -> Course:
        """The notebooks named, by name or number ("01", "01_rnn_forward"), in course order."""
        chosen = {}
        for w in wanted:
            match = [n for n in self.notebooks if n == w or n.split("_", 1)[0] == w]
            if not match:
                raise CourseError(f"no notebook {w!r} in the course: {', '.join(self.notebooks)}")
            chosen.update({n: self.notebooks[n] for n in match})
        return Course({n: nb for n, nb in self.notebooks.items() if n in chosen},
                      [e for e in self.ungradable if e.notebook in chosen])

    @property
    def exercises(self) -> list[CourseExercise]:
        """Every exercise, in course order."""
        return [ex for nb in self.notebooks.values() for ex in nb.exercises]

    @property
    def possible(self) -> int:
        """The total points of the course."""
        return sum(ex.points for ex in self.exercises)


def load_course(solutions: Path, registry: dict) -> Course:
    """Notebooks, exercises and points from the instructor's ``solutions/*.ipynb``.

    Exercises without a registered check are listed as ungradable (and counted nowhere).
    The functions a notebook imports from ``course_utils.reference`` (for example the forward
    passes that notebook 02's backward exercises build on) are "given": the child gets their
    source, never that of an exercise of the same notebook.
    """
    paths = sorted(Path(solutions).glob("*.ipynb"))
    if not paths:
        raise CourseError(f"no solution notebooks in {solutions}")
    notebooks, ungradable, seen = {}, [], {}
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        exercises, imported = [], []
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            source = cell_source(cell)
            for marker in find_exercises(source):
                ex = CourseExercise(path.stem, marker.number, marker.name, marker.points)
                if marker.name in seen:
                    raise CourseError(f"exercise {marker.name} is in {seen[marker.name]} and in {path.name}")
                seen[marker.name] = path.name
                (exercises if marker.name in registry else ungradable).append(ex)
            imported += reference_imports(source)
        notebook = CourseNotebook(path.stem, exercises)
        own = {ex.name for ex in exercises}
        for alias, name in imported:
            try:
                notebook.given[alias] = given_source(alias, name, own)
            except ValueError as e:
                notebook.given_problems.append(str(e))
        notebooks[path.stem] = notebook
    for ex in ungradable:
        warnings.warn(f"{ex.notebook}: exercise {ex.name} has no registered check and is not graded", stacklevel=2)
    return Course(notebooks, ungradable)


def reference_imports(source: str) -> list[tuple[str, str]]:
    """(bound name, reference name) for every ``from course_utils.reference import ...``
    in a cell of the instructor's own notebook."""
    try:
        tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.split("\n")))
    except SyntaxError:
        return []
    return [(a.asname or a.name, a.name) for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "course_utils.reference"
            for a in node.names]


def given_source(alias: str, name: str, forbidden: set[str]) -> str:
    """Python source that defines ``alias`` as the reference function ``name``, with the
    reference functions it calls; refused if any of them is one of ``forbidden``."""
    from .. import reference

    fn = getattr(reference, name, None)
    if not inspect.isfunction(fn):
        raise ValueError(f"course_utils.reference.{name} is not a plain function; it cannot be given")
    parts: list[str] = []
    done: set[str] = set()

    def visit(binding: str, func) -> None:
        if binding in done:
            return
        done.add(binding)
        if func.__name__ in forbidden or binding in forbidden:
            raise ValueError(f"the reference {name} uses {func.__name__}, an exercise of the same notebook")
        module_globals = func.__globals__
        for dep in sorted(_code_names(func.__code__)):
            obj = module_globals.get(dep)
            if inspect.isfunction(obj) and obj.__module__.endswith(".reference") and obj.__module__.startswith("course_utils."):
                visit(dep, obj)
            elif isinstance(obj, types.ModuleType) and dep not in ("np", "math"):
                raise ValueError(f"the reference {name} uses the module {dep}; it cannot be given")
        src = textwrap.dedent(inspect.getsource(func))
        if binding != func.__name__:
            src += f"\n{binding} = {func.__name__}\n"
        parts.append(src)

    visit(alias, fn)
    return "import math\nimport numpy as np\n\n" + "\n\n".join(parts)


def _code_names(code) -> set[str]:
    """The global names a function's code (and the code nested in it) loads."""
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


# --- submitted notebooks ---------------------------------------------------------------------


@dataclass
class Cell:
    """One code cell of a submission."""

    number: int  # 1-based position among all cells, as a learner would count them
    source: str


@dataclass
class Submission:
    """One submitted notebook file: whose it is, its cells, and how it is graded (or why not)."""

    student: str
    path: Path
    relpath: str
    named: str | None  # the course notebook its file name names, if any
    sha256: str = ""
    cells: list[Cell] = field(default_factory=list)
    problem: str = ""  # why it cannot be graded at all
    notebook: str | None = None  # the course notebook it is graded as
    notes: list[str] = field(default_factory=list)
    ignored: str = ""  # why it is not graded, though nothing is wrong with it
    assignment: str = ""  # nbgrader's layout: the assignment folder between student and notebook


def cell_source(cell: dict) -> str:
    """A cell's source as one string ("" when it is not text)."""
    source = cell.get("source", cell.get("input", ""))  # "input": nbformat 3
    if isinstance(source, list):
        return "".join(s for s in source if isinstance(s, str))
    return source if isinstance(source, str) else ""


def discover(root: Path, course: Course) -> tuple[list[Submission], list[str]]:
    """Every submitted notebook under root, with its student; plus what was ignored."""
    root = nbgrader_submitted(Path(root))
    found, ignored = [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name in IGNORED_DIRS:
            continue
        if entry.is_dir() and not entry.is_symlink():
            subs, skipped = discover_student_folder(root, entry, course)
            found += subs
            ignored += skipped
        elif entry.is_file() and not entry.is_symlink() and entry.suffix == ".ipynb":
            m = FILE_RE.match(entry.name)
            if m:
                named = m["notebook"] if m["notebook"] in course.notebooks else None
                found.append(Submission(student_id(m["student"]), entry, student_id(entry.name), named))
            else:
                found.append(Submission(student_id(entry.stem), entry, student_id(entry.name), None))
        else:
            ignored.append(student_id(entry.name))
    return found, ignored


def nbgrader_submitted(root: Path) -> Path:
    """The folder that holds the students: root, or the ``submitted/`` folder of an nbgrader course
    directory (whose ``source/`` would otherwise be graded as a student)."""
    submitted = root / "submitted"
    if submitted.is_dir() and not submitted.is_symlink() and any((root / f).is_file() for f in NBGRADER_COURSE_FILES):
        return submitted
    return root


def discover_student_folder(root: Path, folder: Path, course: Course) -> tuple[list[Submission], list[str]]:
    """The notebooks in one student's folder, at any depth: ``<student>/<notebook>.ipynb``, or
    nbgrader's ``<student>/<assignment>/<notebook>.ipynb``; plus the files ignored. nbgrader's
    ``timestamp.txt`` beside a notebook is not ignored: the deadlines read it (``Submission.path``)."""
    student = student_id(folder.name)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
                   and not any(part.startswith(".") or part in IGNORED_DIRS for part in p.relative_to(folder).parts))
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    beside = {p.parent for p in notebooks}
    ignored = [student_id(str(p.relative_to(root))) for p in files
               if p.suffix != ".ipynb" and not (p.name == NBGRADER_TIMESTAMP and p.parent in beside)]
    if not notebooks:
        return [Submission(student, folder, student, None, problem="the folder holds no notebook (.ipynb)")], ignored
    subs = []
    for p in notebooks:
        inside = p.relative_to(folder).parts
        subs.append(Submission(student, p, student_id(str(p.relative_to(root))),
                               p.stem if p.stem in course.notebooks else None,
                               assignment=student_id(inside[0]) if len(inside) > 1 else ""))
    return subs, ignored


def file_sha256(path: Path, keep: int = 0) -> tuple[str, bytes | None]:
    """The SHA-256 of a whole file, read in chunks; and its bytes when it has at most ``keep``."""
    digest, kept, size = hashlib.sha256(), [], 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
            if size <= keep:
                kept.append(chunk)
    return digest.hexdigest(), (b"".join(kept) if size <= keep else None)


def student_id(name: str) -> str:
    """A student id from a file or folder name as the file system gave it: names that are not
    UTF-8 (zips made on Windows) keep their undecodable bytes as ``\\xNN`` escapes, so that the id
    can be written anywhere and two different names never become one."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_submission(sub: Submission) -> None:
    """Read and hash a submitted file (never written), and find its code cells, or say why not."""
    try:
        sub.sha256, data = file_sha256(sub.path, keep=MAX_NOTEBOOK_BYTES)
    except OSError as e:
        sub.problem = f"the file cannot be read ({e.strerror})"
        return
    if data is None:
        sub.problem = f"the file is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
        return
    if not data.strip():
        sub.problem = "the file is empty"
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        sub.problem = "not a notebook: the file is not text (UTF-8)"
        return
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        unterminated = e.msg.startswith("Unterminated string") and '"' not in text[e.pos + 1:]
        if e.pos >= len(text.rstrip()) - 1 or unterminated:
            sub.problem = "truncated: the notebook file ends in the middle (not valid JSON)"
        else:
            sub.problem = f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); was it edited by hand?"
        return
    except RecursionError:
        sub.problem = "not valid JSON (nested too deeply)"
        return
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        sub.problem = f"not a notebook this grader can read ({str(e)[:80]})"
        return
    if not isinstance(nb, dict):
        sub.problem = "not a Jupyter notebook (no cells in the file)"
        return
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list) and nb["worksheets"]:
        cells = nb["worksheets"][0].get("cells") if isinstance(nb["worksheets"][0], dict) else None
    if not isinstance(cells, list):
        sub.problem = "not a Jupyter notebook (no cells in the file)"
        return
    if not cells:
        sub.problem = "the notebook is empty (it has no cells)"
        return
    sub.cells = [Cell(i, cell_source(c)) for i, c in enumerate(cells, 1)
                 if isinstance(c, dict) and c.get("cell_type") == "code"]


@functools.lru_cache(maxsize=4096)
def comments(source: str) -> str:
    """The comments of a cell's code, one per line: a marker mentioned in a string, in a
    docstring or in a markdown cell is not a marker. Code that does not tokenize (a syntax
    error) falls back to the lines that start with ``#``."""
    import io
    import tokenize

    lines = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                lines.append(tok.string)
    except (tokenize.TokenError, SyntaxError, ValueError):
        lines = [ln.strip() for ln in source.splitlines() if ln.lstrip().startswith("#")]
    return "\n".join(lines)


def markers_in(cells: list[Cell]) -> dict[str, list[int]]:
    """Exercise name -> the cells with its marker in a comment (once per occurrence)."""
    where: dict[str, list[int]] = {}
    for cell in cells:
        for m in EXERCISE_RE.finditer(comments(cell.source)):
            where.setdefault(m["name"], []).append(cell.number)
    return where


def names_used_in_definitions(cells: list[Cell]) -> set[str]:
    """Every name that the functions and classes of these cells read: what they can need."""
    names: set[str] = set()
    for cell in cells:
        try:
            tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln
                                       for ln in cell.source.split("\n")))
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    return names


def definitions_of(cells: list[Cell], name: str) -> list[int]:
    """The cells with a top-level ``def name(`` or ``class name``."""
    pattern = re.compile(rf"^(?:async\s+)?(?:def|class)\s+{re.escape(name)}\b", re.MULTILINE)
    return [c.number for c in cells if pattern.search(c.source)]


def identify(sub: Submission, course: Course) -> None:
    """Which course notebook a readable submission is: by its file name, else by its markers."""
    if sub.problem:
        return
    found = markers_in(sub.cells)
    if sub.named:
        own = {ex.name for ex in course.notebooks[sub.named].exercises}
        defined = any(definitions_of(sub.cells, n) for n in own)
        if own and not (own & set(found)) and not defined:
            sub.problem = (f"not a notebook of this course: it is named {sub.named}.ipynb, but none of "
                           "its exercises is in it")
            return
        sub.notebook = sub.named
        return
    best, score = None, 0
    for name, nb in course.notebooks.items():
        common = len({ex.name for ex in nb.exercises} & set(found))
        if common > score:
            best, score = name, common
    if best is None:
        sub.problem = "not a notebook of this course: none of the course's exercise markers is in it"
        return
    sub.notebook = best
    sub.notes.append(f"{sub.relpath} is graded as {best}.ipynb, by the exercises it contains")


def assign(subs: list[Submission], course: Course) -> None:
    """One submission per student and notebook: an exactly named file wins over a copy."""
    chosen: dict[tuple[str, str], Submission] = {}
    for sub in sorted(subs, key=lambda s: (s.student, s.named is None, s.relpath)):
        if sub.problem or sub.notebook is None:
            continue
        if sub.notebook not in course.notebooks:
            sub.ignored = f"{sub.relpath} is not graded: {sub.notebook} is not part of this assignment"
            continue
        key = (sub.student, sub.notebook)
        if key in chosen:
            sub.ignored = f"{sub.relpath} is not graded: it is another copy of {sub.notebook}, and " \
                          f"{chosen[key].relpath} is graded instead"
            continue
        chosen[key] = sub


# --- code that reaches into the grading machinery, for the instructor to review -------------------

# Names and attributes through which code in the child could find and patch the grader's own
# code (its conventions, its result files), or read what it should not. None is needed by an
# exercise of this course; a hit is not proof of cheating, so it is listed for a person to read.
SUSPICIOUS_NAMES = {"gc", "ctypes", "inspect", "importlib", "builtins", "__builtins__", "__import__", "__main__",
                    "_calls", "conventions", "runner", "eval", "exec", "compile", "globals", "setattr", "delattr", "signal",
                    "sys", "_getframe", "__code__", "__globals__", "__closure__", "__subclasses__", "__dict__",
                    "f_back", "f_globals", "f_locals", "tb_frame", "modules", "run_cases", "run_plan",
                    "CONVENTIONS", "write_npz", "describe_error", "dup2", "memfd_create", "socket", "fork"}


def suspicious_code(cells: list[Cell]) -> list[str]:
    """Lines of a submission that use SUSPICIOUS_NAMES: "cell 4, line 2: `sys.modules`"."""
    found = []
    for cell in cells:
        try:
            tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln
                                       for ln in cell.source.split("\n")))
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Attribute):
                name = node.attr
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                name = next((a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in SUSPICIOUS_NAMES),
                            (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else "")
            else:
                continue
            if name in SUSPICIOUS_NAMES:
                found.append(f"cell {cell.number}, line {node.lineno}: `{name}`")
    return sorted(set(found), key=lambda s: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", s)])[:50]
