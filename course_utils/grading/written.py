"""Written answers: questions a person marks, collected side by side, merged into the grades.

In ``solutions/`` a written question is two markdown cells (release.py's ``QUESTION_RE``,
``ANSWER_RE``)::

    <!-- QUESTION 5.9: why_lstm_remembers (2 points) -->
    ### Question 5.9 (2 points): ...the question, in the notebook's words...

    <!-- ANSWER 5.9: why_lstm_remembers -->
    ...the model answer, which release replaces by a prompt in notebooks/...

``grade`` reads every student's answer (the answer cell; if its marker line was deleted, the
markdown cell under the question) and writes, per question, ``DIR/written/<name>.csv``, one
row per answer with the columns ``student`` (``anonymous_id`` with ``--anonymise``),
``answer``, ``possible``, ``points`` and ``comment``, and ``DIR/written/<name>.md``, the same
answers to read with the question and the model answer. The instructor writes points and a
comment in the CSV; the next ``grade`` (or ``grade --written FOLDER`` for files kept elsewhere)
merges them into the totals, grades.csv, grades.json and the feedback. An answer without points
is **pending**: it counts nothing yet, and every report says so. An empty answer (the prompt
left as it was) is "not attempted" and needs no marking.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ..release import ANSWER_PROMPT, ANSWER_RE, QUESTION_RE
from .deadlines import exact, number, recount
from .submissions import MAX_NOTEBOOK_BYTES, cell_source

MAX_ANSWER = 20_000  # characters of one answer kept; a longer one is cut, with a note
COLUMNS = ("answer", "possible", "points", "comment")
ID_COLUMNS = ("student", "anonymous_id")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NBGRADER_STUB = "YOUR ANSWER HERE"  # what nbgrader's hand-out puts in a manually graded answer cell


class QuestionError(ValueError):
    """A solution notebook's written question is malformed (no answer cell under it, ...)."""


@dataclass(frozen=True)
class Question:
    """One written question of the course, as ``solutions/`` states it."""

    notebook: str
    number: str
    name: str
    points: int
    text: str  # the question cell, without its marker line
    model_answer: str  # the answer cell of the solution, without its marker line


def _first_line(source: str) -> str:
    return source.split("\n", 1)[0].strip()


def _rest(source: str) -> str:
    return source.split("\n", 1)[1].strip() if "\n" in source else ""


def answer_cells(cells: list, notebook: str = "") -> dict[int, Question]:
    """Answer cell index -> its question, for the written questions of one notebook's cells
    (dicts or nbformat nodes). QuestionError if a question has no answer cell right under it,
    with the same number and name, or an answer cell has no question."""
    sources = [(c.get("cell_type"), cell_source(c)) for c in cells]
    found: dict[int, Question] = {}
    for i, (kind, source) in enumerate(sources):
        asked = QUESTION_RE.match(_first_line(source)) if kind == "markdown" else None
        if asked is None:
            if kind == "markdown" and ANSWER_RE.match(_first_line(source)) and i not in found:
                raise QuestionError(f"{notebook}: cell {i + 1} is an answer cell without a question cell above it")
            continue
        nxt = sources[i + 1] if i + 1 < len(sources) else (None, "")
        answer = ANSWER_RE.match(_first_line(nxt[1])) if nxt[0] == "markdown" else None
        if answer is None or (answer["number"], answer["name"]) != (asked["number"], asked["name"]):
            raise QuestionError(f"{notebook}: question {asked['number']} {asked['name']} needs, right under it, a "
                                f"markdown cell whose first line is <!-- ANSWER {asked['number']}: {asked['name']} -->")
        found[i + 1] = Question(notebook, asked["number"], asked["name"], int(asked["points"]), _rest(source),
                                _rest(nxt[1]))
    return found


def load_questions(solutions: Path, notebooks) -> list[Question]:
    """The written questions of these notebooks (names), in course order; QuestionError if one is
    malformed or two share a name."""
    questions: list[Question] = []
    for name in notebooks:
        path = Path(solutions) / f"{name}.ipynb"
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", []) if path.exists() else []
        questions += answer_cells(cells, name).values()
    names = [q.name for q in questions]
    if len(set(names)) != len(names):
        raise QuestionError(f"two written questions share a name: {sorted(n for n in names if names.count(n) > 1)}")
    return questions


def answer_in(cells: list, question: Question) -> tuple[str | None, list[str]]:
    """A student's answer to one question (None: no answer cell at all) and notes on where it was
    found. The prompt that release put there is not part of the answer."""
    sources = [(c.get("cell_type"), cell_source(c)) for c in cells if isinstance(c, dict)]
    notes: list[str] = []

    def marked(regex, i):
        m = regex.match(_first_line(sources[i][1]))
        return m is not None and m["name"].lower() == question.name.lower()

    found = [i for i in range(len(sources)) if marked(ANSWER_RE, i)]
    if len(found) > 1:
        notes.append(f"the answer cell of {question.name} appears {len(found)} times; the last one was read")
    if found:
        text = _rest(sources[found[-1]][1])
    else:
        asked = [i for i in range(len(sources)) if marked(QUESTION_RE, i)]
        under = asked[-1] + 1 if asked else len(sources)
        if under >= len(sources) or sources[under][0] != "markdown" or sources[under][1].lstrip().startswith("<!--"):
            return None, notes
        text = sources[under][1].strip()
        notes.append(f"the first line of the answer cell of {question.name} was deleted; the cell under the "
                     "question was read as the answer")
    text = text.replace(ANSWER_PROMPT, "").replace(NBGRADER_STUB, "").strip()
    if len(text) > MAX_ANSWER:
        text = text[:MAX_ANSWER]
        notes.append(f"the answer is longer than {MAX_ANSWER:,} characters; only its beginning was kept")
    return text, notes


def anonymous_id(seed_fingerprint: str, student: str) -> str:
    """A student's id in anonymised review files: the same for every question and every run with
    the same grading seed, and not computable from the name without the seed's fingerprint."""
    key = seed_fingerprint.encode()
    return "anon-" + hmac.new(key, student.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:12]


# --- the instructor's marks -----------------------------------------------------------------------


@dataclass
class Mark:
    """One row of a filled review file."""

    points: Fraction | None
    comment: str
    answer: str
    line: int


@dataclass
class MarkSheet:
    """A question's review file as the instructor left it: which id column, the rows, problems."""

    id_column: str = "student"
    rows: dict[str, Mark] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_points(text: str, possible: int) -> Fraction | None:
    """Points as the instructor wrote them: ``1.5``, ``1,5``, ``2``; blank or ``pending`` is None.
    ValueError for anything else, for a negative number, more than ``possible`` or finer than 0.01."""
    text = text.strip().lstrip("'")
    if text.lower() in ("", "pending", "-"):
        return None
    try:
        points = Fraction(text.replace(",", ".") if "." not in text else text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a number of points") from None
    if not 0 <= points <= possible:
        raise ValueError(f"{text} is not between 0 and {possible}")
    if (points * 100).denominator != 1:
        raise ValueError(f"{text} is finer than a hundredth of a point")
    return points


def read_marks(path: Path, question: Question) -> MarkSheet:
    """The instructor's review file of one question (comma, semicolon or tab separated, as a
    spreadsheet saves it); an absent file is an empty sheet. Rows that cannot be read are problems,
    and their answers stay pending."""
    sheet = MarkSheet()
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return sheet
    except (OSError, UnicodeDecodeError) as e:
        sheet.problems.append(f"{Path(path).name} cannot be read ({e}): its marks were not used")
        return sheet
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    reader.fieldnames = header
    sheet.id_column = next((c for c in ID_COLUMNS if c in header), "")
    if not sheet.id_column or "points" not in header:
        sheet.problems.append(f"{Path(path).name} has no student (or anonymous_id) and points columns: not used")
        return sheet
    for row in reader:
        who = _unquote(row.get(sheet.id_column) or "").strip()
        if not who:
            continue
        try:
            points = parse_points(row.get("points") or "", question.points)
        except ValueError as e:
            sheet.problems.append(f"{Path(path).name}, line {reader.line_num}, {who}: {e}; left pending")
            points = None
        sheet.rows[who] = Mark(points, (row.get("comment") or "").strip(), _unquote(row.get("answer") or ""),
                               reader.line_num)
    return sheet


def _unquote(text: str) -> str:
    """A cell as written, without the ``'`` that keeps a spreadsheet from evaluating it."""
    return text[1:] if text.startswith("'") and text[1:2] in FORMULA_START else text


def _same_answer(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


# --- merging into the results ---------------------------------------------------------------------


@dataclass
class WrittenAnswers:
    """The written questions of the notebooks graded, where the instructor's marks are read from,
    and whether review files name the students (see `prepare`)."""

    questions: list[Question]
    marks: Path
    anonymise: bool = False
    source: str = "written"  # where the marks came from, as grades.json says it: OUT's own folder, or --written's

    def apply(self, results: dict, submissions: Path) -> None:
        """Every student's answers and marks, into ``results`` (``written`` per student and per
        notebook of the course); totals and possible points recounted."""
        if not self.questions:
            return
        course = results["course"]
        for nb in course["notebooks"]:
            nb["written"] = [{"number": q.number, "name": q.name, "points": q.points}
                             for q in self.questions if q.notebook == nb["name"]]
        course["possible"] += sum(q.points for q in self.questions)
        sheets = {q.name: read_marks(self.marks / f"{q.name}.csv", q) for q in self.questions}
        used: dict[str, set[str]] = {q.name: set() for q in self.questions}
        fingerprint = results["settings"]["seed_sha256"]
        for s in results["students"]:
            cells = notebook_cells(s, submissions)
            anon = anonymous_id(fingerprint, s["student"])
            if self.anonymise:
                s["anonymous_id"] = anon
            s["written"] = []
            for q in self.questions:
                sheet = sheets[q.name]
                who = anon if sheet.id_column == "anonymous_id" else s["student"]
                s["written"].append(entry(q, cells.get(q.notebook), sheet.rows.get(who)))
                if s["written"][-1]["status"] in ("pending", "marked"):
                    used[q.name].add(who)
            s["possible"] += sum(q.points for q in self.questions)
            s["pending"] = [w["question"] for w in s["written"] if w["status"] == "pending"]
            recount(s)
        unmatched = [{"question": name, "id": who, "points": number(m.points) if m.points is not None else None,
                      "comment": m.comment, "answer": m.answer}
                     for name, sheet in sheets.items() for who, m in sheet.rows.items()
                     if who not in used[name] and (m.points is not None or m.comment)]
        results["written"] = {"folder": "written", "marks_read_from": self.source, "anonymised": self.anonymise,
                              "pending": sum(len(s["pending"]) for s in results["students"]), "unmatched": unmatched}
        for sheet in sheets.values():
            results["warnings"] += [f"written answers: {p}" for p in sheet.problems]
        if unmatched:
            results["warnings"].append(f"written answers: {len(unmatched)} marked row(s) name no student with an "
                                       "answer now; kept at the end of their review files (written.unmatched)")
        if self.anonymise and results["settings"].get("default_seed"):
            results["warnings"].append("written answers: anonymised with the public default seed, so anyone with "
                                       "the course code and the class list can tell who is who; use a secret seed")

    def write_reviews(self, results: dict, out: Path) -> list[Path]:
        """``out/written/<question>.csv`` and ``.md`` from ``results`` (see the module's docstring)."""
        if not self.questions:
            return []
        folder = Path(out) / "written"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for q in self.questions:
            rows = review_rows(results, q, self.anonymise)
            paths.append(folder / f"{q.name}.csv")
            paths[-1].write_text(review_csv(rows, results, q, self.anonymise), encoding="utf-8-sig")
            paths.append(folder / f"{q.name}.md")
            paths[-1].write_text(review_markdown(rows, q, self.anonymise), encoding="utf-8")
        return paths


def prepare(options, notebooks, out: Path) -> WrittenAnswers:
    """The written questions of these notebooks, read before grading starts (GradingError if one
    is malformed); marks are read from ``options.written``, else from ``out/written``."""
    from .grader import GradingError

    try:
        questions = load_questions(options.solutions, notebooks)
    except (QuestionError, OSError, ValueError) as e:
        raise GradingError(f"the written questions cannot be read: {e}") from None
    given = getattr(options, "written", None)
    marks = Path(given) if given else Path(out) / "written"
    return WrittenAnswers(questions, marks, bool(getattr(options, "anonymise", False)), str(given or "written"))


def notebook_cells(student: dict, submissions: Path) -> dict[str, list]:
    """Notebook -> the cells of the student's graded copy (read again: the grader keeps only code)."""
    cells = {}
    for f in student["files"]:
        if not f.get("graded"):
            continue
        path = Path(submissions) / f["path"]
        try:
            if path.stat().st_size <= MAX_NOTEBOOK_BYTES:
                nb = json.loads(path.read_bytes().decode("utf-8-sig"))
                cells[f["notebook"]] = [c for c in nb.get("cells", []) if isinstance(c, dict)]
        except (OSError, ValueError, AttributeError, RecursionError):
            cells[f["notebook"]] = []
    return cells


def entry(q: Question, cells: list | None, mark: Mark | None) -> dict:
    """One student's written answer, as grades.json keeps it."""
    e = {"notebook": q.notebook, "number": q.number, "question": q.name, "possible": q.points, "points": 0,
         "status": "not submitted", "reason": f"not submitted: no notebook {q.notebook}.ipynb was graded",
         "comment": "", "answer": "", "notes": []}
    if cells is None:
        return e
    answer, e["notes"] = answer_in(cells, q)
    e["answer"] = answer or ""
    if mark is not None and mark.points is not None and not _same_answer(mark.answer, e["answer"]):
        e["earlier_mark"] = {"points": number(mark.points), "comment": mark.comment}
        mark = None
    if mark is not None and mark.points is not None:
        e.update(status="marked", points=number(mark.points), comment=mark.comment,
                 reason="marked by the instructor")
    elif not answer:
        e.update(status="not attempted", reason="not attempted: no answer was written"
                 if answer is not None else "not attempted: the notebook has no answer cell for this question")
    else:
        e.update(status="pending", reason="pending: your answer has not been marked yet",
                 comment=mark.comment if mark else "")  # a draft comment: kept in the review file, not shown
        if "earlier_mark" in e:
            e["reason"] = "pending: your answer changed after it was marked, and will be marked again"
    return e


# --- the review files -----------------------------------------------------------------------------


def review_rows(results: dict, q: Question, anonymise: bool) -> list[dict]:
    """The answers to one question to mark (none for students who did not answer), by id."""
    rows = []
    for s in results["students"]:
        e = next(w for w in s.get("written", []) if w["question"] == q.name)
        if e["status"] in ("pending", "marked"):
            rows.append({"id": s["anonymous_id"] if anonymise else s["student"], **e})
    return sorted(rows, key=lambda r: r["id"])


def csv_text_cell(text: str) -> str:
    """Text for a review file's cell: lines kept, control characters removed, and a ``'`` before a
    first character that would make a spreadsheet evaluate the cell."""
    from .report import plain

    text = "\n".join(plain(line) for line in str(text).splitlines())
    return "'" + text if text[:1] in FORMULA_START else text


def review_csv(rows: list[dict], results: dict, q: Question, anonymise: bool) -> str:
    """A question's review file: one row per answer, then rows kept from the instructor's file
    that name no current answer (nothing the instructor typed is lost)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([ID_COLUMNS[anonymise], *COLUMNS])
    for r in rows:
        comment = r["comment"]
        if r.get("earlier_mark"):
            earlier = r["earlier_mark"]
            comment = f"[{earlier['points']:g} points for an earlier answer] {earlier['comment']}".strip()
        points = f"{r['points']:g}" if r["status"] == "marked" else ""
        w.writerow([csv_text_cell(r["id"]), csv_text_cell(r["answer"]), q.points, points, csv_text_cell(comment)])
    for u in results.get("written", {}).get("unmatched", []):
        if u["question"] == q.name:
            points = "" if u["points"] is None else f"{u['points']:g}"
            w.writerow([csv_text_cell(u["id"]), csv_text_cell(u["answer"]), q.points, points,
                        csv_text_cell(u["comment"])])
    return buf.getvalue()


def review_markdown(rows: list[dict], q: Question, anonymise: bool) -> str:
    """The same answers to read: the question, the model answer, then each answer with its marks."""
    from .report import md

    def quote(text: str) -> list[str]:
        return [f"> {md(line)}" if line.strip() else ">" for line in text.splitlines()] or ["> (empty)"]

    marked = sum(r["status"] == "marked" for r in rows)
    lines = [f"# Question {q.number}: {q.name} ({q.points} points)", "",
             f"Generated by `python -m course_utils grade`: write points and comments in `{q.name}.csv` "
             "(columns `points` and `comment`), then run `grade` again. This file is rewritten each time.", "",
             f"{len(rows)} answer{'' if len(rows) == 1 else 's'}, {marked} marked, {len(rows) - marked} pending"
             f"{', anonymised' if anonymise else ''}.", "", "## The question", "", q.text, "",
             "## Model answer (from solutions/)", "", *quote(q.model_answer), ""]
    for r in rows:
        got = f"{r['points']:g} / {q.points}" if r["status"] == "marked" else "pending"
        lines += [f"## {md(r['id'], name=True)}: {got}", "", *quote(r["answer"]), ""]
        if r["comment"]:
            lines += [f"Comment: {md(r['comment'])}", ""]
    return "\n".join(lines).rstrip() + "\n"


# --- what grades.csv and the feedback show --------------------------------------------------------


def csv_header(results: dict) -> list[str]:
    """grades.csv's written-answer columns, one per question, after the exercises."""
    return [w["name"] for nb in results["course"]["notebooks"] for w in nb.get("written", [])]


def csv_cells(student: dict, header: list[str]) -> list:
    """Points, or ``pending``, per question."""
    by_name = {w["question"]: w for w in student.get("written", [])}
    return ["pending" if by_name[name]["status"] == "pending" else by_name[name]["points"] for name in header]


def points_of(student: dict, notebook: str) -> tuple[Fraction, int]:
    """The points and possible points of one notebook's written answers."""
    mine = [w for w in student.get("written", []) if w["notebook"] == notebook]
    return sum((exact(w["points"]) for w in mine), Fraction(0)), sum(w["possible"] for w in mine)


def feedback_items(student: dict, notebook: str) -> list[tuple[str, str, list[str]]]:
    """Plain texts for one notebook's written answers in the feedback: (label, sentence, lines
    under it), e.g. ("5.9 why_lstm_remembers", "(written answer): 1.5 / 2. Marked by the
    instructor.", ["comment: ..."]). A comment shows once the answer is marked."""
    items = []
    for w in student.get("written", []):
        if w["notebook"] != notebook or w["status"] == "not submitted":
            continue
        got = "pending" if w["status"] == "pending" else f"{w['points']:g}"
        sentence = w["reason"].split(": ", 1)[-1]
        shown = w["comment"] if w["status"] == "marked" else ""
        below = [f"note: {n}" for n in w["notes"]] + ([f"comment: {shown}"] if shown else [])
        items.append((f"{w['number']} {w['question']}", f"(written answer): {got} / {w['possible']}. "
                      f"{sentence[0].upper() + sentence[1:]}.", below))
    return items


def total_notes(student: dict) -> list[str]:
    """A sentence under the feedback's total when written answers are still to be marked."""
    pending = student.get("pending", [])
    if not pending:
        return []
    return [f"Written answers still to be marked: {len(pending)} ({', '.join(pending)}); they count nothing "
            "yet, and your total will change when they are marked."]


def add_arguments(p) -> None:
    """The written-answer options of ``grade``."""
    g = p.add_argument_group("written answers (docs/grading.md)")
    g.add_argument("--written", type=Path, default=None, metavar="FOLDER",
                   help="the review files with your points and comments (default: OUT/written, as the last "
                        "run wrote them); the merged files are written to OUT/written")
    g.add_argument("--anonymise", "--anonymize", dest="anonymise", action="store_true",
                   help="name students in the review files by an anonymous id, the same in every file and run")
