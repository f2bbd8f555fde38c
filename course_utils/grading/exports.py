"""Grades as CSV files that Canvas and Moodle import: ``python -m course_utils export-grades``.

Both are written from grades.json, the `results` dict the grader wrote, never from a new run:
export again (another roster, another LMS) without grading again. One column holds the
assignment's points: each student's ``total`` (so that whatever grades.json counts in the total
is what the LMS gets) out of the course's ``possible``.

A *roster* maps the student ids of the submissions (the folder or file names the grader saw) to
the LMS's own: a CSV file with a header and one row per student, in any column order:

| column | meaning | used by |
|---|---|---|
| ``student`` (required) | the id in the submissions (``ada`` for ``submissions/ada/``) | both |
| ``name`` | the name the LMS shows ("Lovelace, Ada") | Canvas's ``Student`` |
| ``canvas_id`` (or ``id``) | Canvas's user id | Canvas's ``ID`` |
| ``sis_user_id``, ``sis_login_id``, ``section`` | as in Canvas's gradebook export | Canvas |
| ``email``, ``idnumber``, ``username`` | the Moodle user field to match on | Moodle |

Headers are matched without case, spaces or hyphens ("SIS User ID" is ``sis_user_id``).
Students graded but not on the roster cannot be written (the LMS would not know them): they are
listed and the command exits with status 1, never dropped silently. Students on the roster with
no grades get an empty cell (the LMS keeps what it had), or 0 with ``--missing-as-zero``.

Canvas (Grades, Import): the columns ``Student, ID, SIS User ID, SIS Login ID, Section`` and one
per assignment, headed ``Name (ID)`` as in Canvas's own export (a name without an id makes Canvas
create a new assignment), then a ``Points Possible`` row. Moodle (Grades, Import, CSV file): an
identifier column and a grade column; at the import, map "Email address" to ``useremail`` (or
"ID number" to ``useridnumber``, "Username" to ``username``) and the grade column to a grade item.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .report import csv_cell, fmt_points, plain

CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_IDS = ("canvas_id", "sis_user_id", "sis_login_id")  # Canvas matches a row on one of these
MOODLE_IDENTIFIERS = {"email": "Email address", "idnumber": "ID number", "username": "Username"}
ROSTER_ALIASES = {"id": "canvas_id", "canvas_user_id": "canvas_id", "email_address": "email", "e_mail": "email",
                  "id_number": "idnumber", "user_name": "username"}
SCHEMA_PREFIX = "course_utils.grading/"


class ExportError(Exception):
    """The grades or the roster cannot be read, or an option does not fit them."""


@dataclass
class Export:
    """A CSV file for an LMS, and who could not be put in it (or had no grade to put)."""

    text: str
    written: list[str] = field(default_factory=list)  # submission ids, in the file's order
    not_on_roster: list[str] = field(default_factory=list)  # graded, no roster row: not in the file
    no_identifier: list[str] = field(default_factory=list)  # roster row without the id the LMS matches on
    not_graded: list[str] = field(default_factory=list)  # on the roster, not in grades.json

    @property
    def complete(self) -> bool:
        """Every graded student is in the file."""
        return not (self.not_on_roster or self.no_identifier)


def _key(header: str) -> str:
    key = re.sub(r"[\s\-]+", "_", header.strip().lower())
    return ROSTER_ALIASES.get(key, key)


def read_roster(path: Path) -> dict[str, dict[str, str]]:
    """The roster's rows by submission id, in the file's order; every value a stripped string."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not a header
    except (OSError, UnicodeDecodeError) as e:
        raise ExportError(f"the roster {path} cannot be read: {e}") from None
    reader = csv.reader(io.StringIO(text))
    header = [_key(h) for h in next(reader, [])]
    if "student" not in header:
        raise ExportError(f"the roster {path} has no `student` column (the id in the submissions); "
                          f"its columns: {', '.join(header) or 'none'}")
    roster: dict[str, dict[str, str]] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        entry = {k: v.strip() for k, v in zip(header, row) if k}
        student = entry.get("student", "")
        if not student:
            raise ExportError(f"the roster {path}, line {number}: no student id")
        if student in roster:
            raise ExportError(f"the roster {path}, line {number}: student {student!r} is listed twice")
        roster[student] = entry
    return roster


def load_results(path: Path) -> dict:
    """grades.json, given itself or the folder that holds it."""
    path = Path(path)
    if path.is_dir():
        path = path / "grades.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ExportError(f"{path} cannot be read as the grader's grades.json: {e}") from None
    if not str(results.get("schema", "")).startswith(SCHEMA_PREFIX):
        raise ExportError(f"{path} is not a grades.json written by `python -m course_utils grade`")
    return results


def default_assignment(results: dict) -> str:
    """The column's name when none is given: the notebooks graded ("notebooks 01, 02")."""
    numbers = [nb["name"].split("_", 1)[0] for nb in results["course"]["notebooks"]]
    return f"notebook{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"


def _match(results: dict, roster: dict[str, dict[str, str]]) -> tuple[dict[str, dict], list[str]]:
    """Roster id -> that student's results; and the graded students no roster row names. A roster
    id that differs only in case matches when it is the only one that does."""
    folded: dict[str, list[str]] = {}
    for rid in roster:
        folded.setdefault(rid.casefold(), []).append(rid)
    matched = {s["student"]: s for s in results["students"] if s["student"] in roster}
    unmatched = []
    for s in results["students"]:
        if s["student"] in roster:
            continue
        candidates = folded.get(s["student"].casefold(), [])
        if len(candidates) == 1 and candidates[0] not in matched:
            matched[candidates[0]] = s
        else:
            unmatched.append(s["student"])
    return matched, unmatched


def _points(student: dict | None, missing_as_zero: bool) -> str:
    if student is None:
        return "0" if missing_as_zero else ""
    return fmt_points(student["total"])


def canvas_csv(results: dict, roster: dict[str, dict[str, str]], assignment: str,
               missing_as_zero: bool = False) -> Export:
    """The gradebook CSV that Canvas imports: one row per roster student, in roster order, then
    the ``Points Possible`` row Canvas's own export has under the header."""
    matched, unmatched = _match(results, roster)
    export = Export("", not_on_roster=unmatched)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*CANVAS_IDENTITY, plain(assignment)])
    w.writerow(["    Points Possible", "", "", "", "", fmt_points(results["course"]["possible"])])
    for rid, entry in roster.items():
        if not any(entry.get(k) for k in CANVAS_IDS):
            export.no_identifier.append(rid)
            continue
        student = matched.get(rid)
        if student is None:
            export.not_graded.append(rid)
        # Ids go as they are (Canvas matches on them); the name and section are only shown.
        w.writerow([csv_cell(entry.get("name", "")), *(plain(entry.get(k, "")) for k in CANVAS_IDS),
                    csv_cell(entry.get("section", "")), _points(student, missing_as_zero)])
        export.written.append(rid)
    export.text = buf.getvalue()
    return export


def moodle_csv(results: dict, roster: dict[str, dict[str, str]], assignment: str, identifier: str = "email",
               missing_as_zero: bool = False) -> Export:
    """The CSV that Moodle's "Import grades from CSV" reads: the identifier column (email address,
    ID number or username, mapped at the import) and the grade column."""
    if identifier not in MOODLE_IDENTIFIERS:
        raise ExportError(f"unknown Moodle identifier {identifier!r}: one of {', '.join(MOODLE_IDENTIFIERS)}")
    matched, unmatched = _match(results, roster)
    export = Export("", not_on_roster=unmatched)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([MOODLE_IDENTIFIERS[identifier], plain(assignment)])
    for rid, entry in roster.items():
        if not entry.get(identifier):
            export.no_identifier.append(rid)
            continue
        student = matched.get(rid)
        if student is None:
            export.not_graded.append(rid)
        w.writerow([plain(entry[identifier]), _points(student, missing_as_zero)])
        export.written.append(rid)
    export.text = buf.getvalue()
    return export


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m course_utils export-grades``."""
    p.add_argument("grades", type=Path, help="the grader's output folder (or its grades.json)")
    p.add_argument("--lms", choices=("canvas", "moodle"), required=True, help="the format to write")
    p.add_argument("--roster", type=Path, required=True,
                   help="CSV: a `student` column (the submissions' ids) and the LMS's ids "
                        "(canvas_id, sis_user_id, sis_login_id, section, name; or email, idnumber, username)")
    p.add_argument("--assignment", default=None, metavar="NAME",
                   help="the grade column's header; for Canvas copy it from its export, e.g. 'RNN 1 (12345)' "
                        "(default: the notebooks graded, which Canvas makes a new assignment)")
    p.add_argument("--moodle-id", choices=sorted(MOODLE_IDENTIFIERS), default="email",
                   help="the roster column Moodle matches users on (default: %(default)s)")
    p.add_argument("--missing-as-zero", action="store_true",
                   help="0 for roster students with no grades (default: an empty cell, which changes nothing)")
    p.add_argument("--out", type=Path, default=None,
                   help="the CSV file to write (default: canvas.csv or moodle.csv beside grades.json)")


def export_command(args: argparse.Namespace) -> int:
    """Run ``export-grades``: 0 when every graded student is in the file, 1 when some could not be
    (they are listed), 2 when nothing was written."""
    try:
        results = load_results(args.grades)
        roster = read_roster(args.roster)
        assignment = args.assignment or default_assignment(results)
        if args.lms == "canvas":
            export = canvas_csv(results, roster, assignment, args.missing_as_zero)
        else:
            export = moodle_csv(results, roster, assignment, args.moodle_id, args.missing_as_zero)
    except ExportError as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 2
    folder = args.grades if args.grades.is_dir() else args.grades.parent
    out = args.out or folder / f"{args.lms}.csv"
    out.write_text(export.text, encoding="utf-8")
    graded = len(export.written) - len(export.not_graded)
    print(f"wrote {out}: {graded} graded students, column {plain(assignment)!r} out of "
          f"{fmt_points(results['course']['possible'])} points")
    if export.not_graded:
        print(f"on the roster without grades ({'0' if args.missing_as_zero else 'empty cell'}): "
              f"{', '.join(map(plain, export.not_graded))}")
    if export.not_on_roster:
        print(f"NOT IN THE FILE, not on the roster ({len(export.not_on_roster)}): "
              f"{', '.join(map(plain, export.not_on_roster))}", file=sys.stderr)
    if export.no_identifier:
        what = "canvas_id, sis_user_id or sis_login_id" if args.lms == "canvas" else args.moodle_id
        print(f"NOT IN THE FILE, no {what} in the roster ({len(export.no_identifier)}): "
              f"{', '.join(map(plain, export.no_identifier))}", file=sys.stderr)
    return 0 if export.complete else 1
