"""Due dates and late penalties: when each notebook was handed in, how late, and what it costs.

    python -m course_utils grade SUBMISSIONS --out DIR --due 2026-12-01T23:59+01:00 \\
        --late-penalty 10%/day --grace 15min --cutoff 7d [--submission-times lms.csv]

A policy (`LatePolicy`) is a due date with its time zone, a penalty per started day or hour as
a fraction of the notebook's points, a grace period and a cutoff. Every option may be given
once for the whole assignment and again for one notebook (``--due 05=2026-12-08T23:59+01:00``);
a notebook's own values win over the assignment's.

**When a notebook was handed in**, the first of these that exists (the source is recorded):

1. nbgrader's ``timestamp.txt`` in the notebook's folder
   (``submitted/<student>/<assignment>/timestamp.txt``, e.g. ``2026-12-01 23:12:09.123456 UTC``;
   a time without a zone is UTC, as nbgrader writes it);
2. the LMS export given with ``--submission-times`` (`read_lms_times` lists the columns it reads);
3. the notebook file's modification time.

**The arithmetic**, exact (integer microseconds and fractions, no floating point):

- ``late_by = submitted - due``; the notebook is on time if ``late_by <= grace``;
- otherwise it is late by ``units = ceil(late_by / unit)`` days or hours, counted from the due
  date (not from the end of the grace period): a started day counts as a whole day;
- ``fraction = min(1, units * rate)``, and 1 (the notebook gets 0) if ``late_by > cutoff``;
- ``penalty = floor(100 * points * fraction) / 100``: the notebook's points (its exercises and
  its marked written answers) times the fraction, rounded **down** to a hundredth of a point,
  so that a student never loses more than the policy says.

The student's ``total`` is then their points less their penalties (`recount`), an exact
multiple of 1/100.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

UNITS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
UNIT_WORDS = {"d": "day", "day": "day", "days": "day", "h": "hour", "hr": "hour", "hrs": "hour",
              "hour": "hour", "hours": "hour"}
DURATION_WORDS = {"w": 7 * 86400, "week": 7 * 86400, "weeks": 7 * 86400, "d": 86400, "day": 86400,
                  "days": 86400, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600, "m": 60, "min": 60,
                  "mins": 60, "minute": 60, "minutes": 60, "s": 1, "sec": 1, "secs": 1, "second": 1,
                  "seconds": 1}
RATE_RE = re.compile(r"^(?P<value>\d+(?:\.\d+)?)\s*(?P<percent>%?)\s*(?:/|\bper\b)\s*(?P<unit>[a-z]+)$", re.I)
DURATION_RE = re.compile(r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+)", re.I)
KEY_RE = re.compile(r"^(?P<key>\d\d(?:_[A-Za-z0-9_]+)?)=(?P<value>.*)$")
UTC_RE = re.compile(r"\s*(?:\bUTC|\bGMT|(?<=\d)Z)$", re.I)
NUMERIC_DATE_RE = re.compile(r"^(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.]\d{2,4}\b")
# LMS exports: the column names read, compared without case, spaces or punctuation
# ("Last modified (submission)" is "lastmodifiedsubmission"), the first one present winning.
STUDENT_COLUMNS = ("student", "studentid", "username", "userid", "login", "loginid", "sisloginid",
                   "sisuserid", "user", "id", "email", "emailaddress")
TIME_COLUMNS = ("submitted", "submittedat", "submissiontime", "submissiondate", "datesubmitted",
                "lastmodifiedsubmission", "submissiontimestamp", "timestamp", "time")
NOTEBOOK_COLUMNS = ("notebook", "assignment")
SOURCES = {"timestamp": "nbgrader's timestamp.txt", "lms": "the LMS export", "file": "the file's modification time"}


# --- parsing what the instructor types ----------------------------------------------------------


def parse_time(text: str, naive: timezone | None = None) -> datetime:
    """A point in time: ISO 8601 (``2026-12-01T23:59+01:00``, ``...Z``), nbgrader's
    ``2026-12-01 23:12:09.123456 UTC``, or an LMS's words (``Tuesday, 1 December 2026, 11:12 PM``).
    A time without a zone gets ``naive``'s, or is refused when ``naive`` is None. Numeric dates
    that could be read day-first or month-first (``01/12/2026``) are refused, and so are zone
    names other than UTC and GMT (``CET`` is ambiguous): give an offset."""
    when = read_time(text)
    if when.tzinfo is None:
        if naive is None:
            raise ValueError(f"{text.strip()!r} has no time zone: write it as 2026-12-01T23:59+01:00 (or Z for UTC)")
        when = when.replace(tzinfo=naive)
    return when


def read_time(text: str) -> datetime:
    """`parse_time`'s reading, which leaves a time without zone naive."""
    import warnings

    from dateutil import parser as dateparser

    text = " ".join(str(text).split())
    if not text:
        raise ValueError("no time given")
    clean = UTC_RE.sub("", text) + ("+00:00" if UTC_RE.search(text) else "")
    try:
        return datetime.fromisoformat(clean)
    except ValueError:
        pass
    numeric = NUMERIC_DATE_RE.match(clean)
    if numeric and numeric["a"] != numeric["b"] and max(int(numeric["a"]), int(numeric["b"])) <= 12:
        raise ValueError(f"{text!r} could be read day-first or month-first: use ISO 8601 (2026-12-01 23:12)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # dateutil's UnknownTimezoneWarning: a zone name it would drop
            when = dateparser.parse(clean)
    except (ValueError, OverflowError, Warning):
        raise ValueError(f"{text!r} is not a time this grader can read: use ISO 8601 with an offset, e.g. "
                         "2026-12-01T23:59+01:00") from None
    if when.tzinfo is not None and (when.utcoffset() is None or type(when.tzinfo).__name__ == "tzlocal"):
        raise ValueError(f"{text!r} names a time zone: give it as an offset (+01:00) instead")
    return when


def parse_due(text: str) -> datetime:
    """``--due``: an ISO 8601 time with its zone (``2026-12-01T23:59+01:00``, ``2026-12-01T22:59Z``)."""
    try:
        return parse_time(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_rate(text: str) -> tuple[Fraction, str]:
    """``--late-penalty``: ``10%/day``, ``2%/hour``, ``0.1/day``, ``5% per day``: (fraction, unit)."""
    m = RATE_RE.match(text.strip())
    unit = UNIT_WORDS.get((m["unit"] if m else "").lower())
    if not m or unit is None:
        raise argparse.ArgumentTypeError(f"{text!r}: write the penalty as 10%/day or 2%/hour")
    rate = Fraction(m["value"]) / (100 if m["percent"] else 1)
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the penalty must be between 0% and 100% per {unit}")
    return rate, unit


def parse_duration(text: str) -> timedelta:
    """``--grace``/``--cutoff``: ``15min``, ``2h``, ``7d``, ``1d12h``, ``90s``, ``1w``, ``0``."""
    squeezed = text.strip().replace(" ", "")
    if squeezed == "0":
        return timedelta(0)
    parts = list(DURATION_RE.finditer(squeezed))
    if not parts or "".join(p[0] for p in parts) != squeezed or any(
            p["unit"].lower() not in DURATION_WORDS for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: write a duration as 15min, 2h, 7d or 1d12h")
    seconds = sum(Fraction(p["value"]) * DURATION_WORDS[p["unit"].lower()] for p in parts)
    return timedelta(microseconds=int(seconds * 1_000_000))


def keyed(parse):
    """An argparse type for ``[NN=]VALUE``: the value for one notebook ("05", "05_lstm_numpy"), or,
    without a key, for the whole assignment. Returns (key or "", parsed value)."""
    def parse_keyed(text: str):
        m = KEY_RE.match(text)
        return (m["key"], parse(m["value"])) if m else ("", parse(text))
    parse_keyed.__name__ = parse.__name__
    return parse_keyed


# --- the policies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatePolicy:
    """One notebook's deadline: due (aware), ``rate`` of its points per started ``unit`` late,
    ``grace`` during which late is on time, ``cutoff`` after the due date past which it gets 0."""

    due: datetime
    rate: Fraction = Fraction(0)
    unit: str = "day"
    grace: timedelta = timedelta(0)
    cutoff: timedelta | None = None

    def describe(self) -> str:
        """The policy in words, as grades.json and the feedback show it."""
        words = [f"due {self.due.isoformat()}"]
        if self.rate:
            words.append(f"{percent(self.rate)} of the points per started {self.unit} late")
        if self.grace:
            words.append(f"grace {duration(self.grace)}")
        if self.cutoff is not None:
            words.append(f"0 points when more than {duration(self.cutoff)} late")
        return ", ".join(words)


@dataclass
class LmsTimes:
    """Submission times from an LMS export: (student, notebook or "") -> time (naive times are in
    the due date's zone)."""

    path: str
    times: dict[tuple[str, str], datetime] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lookup(self, student: str, notebook: str) -> datetime | None:
        """The time of this student (exact id, else without case) for this notebook, else for all."""
        for who in (student, student.casefold()):
            for nb in (notebook, notebook[:2], ""):
                if (who, nb) in self.times:
                    return self.times[(who, nb)]
        return None


@dataclass
class Deadlines:
    """What the instructor asked for: per key ("" the assignment, "05" or "05_lstm_numpy" one
    notebook) the options given ("due", "penalty", "grace", "cutoff"); and the LMS times."""

    settings: dict[str, dict] = field(default_factory=dict)
    times: LmsTimes | None = None

    @classmethod
    def uniform(cls, due: str, penalty: str = "0%/day", grace: str = "0", cutoff: str | None = None,
                times: LmsTimes | None = None) -> Deadlines:
        """One policy for every notebook, from the strings the command line takes."""
        values = {"due": parse_due(due), "penalty": parse_rate(penalty), "grace": parse_duration(grace)}
        if cutoff is not None:
            values["cutoff"] = parse_duration(cutoff)
        return cls({"": values}, times)


def from_arguments(args: argparse.Namespace) -> Deadlines | None:
    """The Deadlines of ``grade``'s options, or None when none was given (checked by `prepare`)."""
    settings: dict[str, dict] = {}
    for option in ("due", "penalty", "grace", "cutoff"):
        for key, value in getattr(args, f"late_{option}") or []:
            settings.setdefault(key, {})[option] = value
    if not settings and args.submission_times is None:
        return None
    return Deadlines(settings, args.submission_times)


@dataclass
class Schedule:
    """The policies of the notebooks graded, checked before grading starts (`prepare`)."""

    policies: dict[str, LatePolicy] = field(default_factory=dict)
    times: LmsTimes | None = None

    def apply(self, results: dict, submissions: Path) -> None:
        """Late penalties on ``results`` (see `apply`)."""
        apply(results, self.policies, submissions, self.times)


def prepare(deadlines: Deadlines | None, notebooks) -> Schedule:
    """The policy of each notebook graded (by name); GradingError if the options make no sense
    (a penalty without a due date, a key that names no graded notebook)."""
    from .grader import GradingError

    if deadlines is None:
        return Schedule()
    names = list(notebooks)
    for key in deadlines.settings:
        if key and not any(n == key or n[:2] == key for n in names):
            raise GradingError(f"a deadline option names notebook {key!r}, which is not graded: {', '.join(names)}")
    policies = {}
    for name in names:
        values = dict(deadlines.settings.get("", {}))
        for key in sorted(k for k in deadlines.settings if k and (k == name or k == name[:2])):
            values.update(deadlines.settings[key])
        if "due" not in values:
            if values or deadlines.times is not None:
                raise GradingError(f"late options without a due date for {name}: give --due "
                                   "(for example --due 2026-12-01T23:59+01:00)")
            continue
        rate, unit = values.get("penalty", (Fraction(0), "day"))
        policies[name] = LatePolicy(values["due"], rate, unit, values.get("grace", timedelta(0)), values.get("cutoff"))
    return Schedule(policies, deadlines.times)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The deadline options of ``grade``."""
    g = p.add_argument_group("due dates and late penalties (docs/grading.md)",
                             "each option may be repeated as NN=VALUE for one notebook (05=...)")
    g.add_argument("--due", dest="late_due", action="append", type=keyed(parse_due), metavar="[NN=]WHEN",
                   help="the due date, with its time zone: 2026-12-01T23:59+01:00")
    g.add_argument("--late-penalty", dest="late_penalty", action="append", type=keyed(parse_rate),
                   metavar="[NN=]RATE", help="per started day or hour late, of the notebook's points: 10%%/day, "
                                             "2%%/hour (default: none)")
    g.add_argument("--grace", dest="late_grace", action="append", type=keyed(parse_duration),
                   metavar="[NN=]DURATION", help="late by at most this is on time: 15min, 1h (default: 0)")
    g.add_argument("--cutoff", dest="late_cutoff", action="append", type=keyed(parse_duration),
                   metavar="[NN=]DURATION", help="later than this after the due date gets 0 points: 7d")
    g.add_argument("--submission-times", type=read_lms_times, default=None, metavar="CSV",
                   help="an LMS export with a student and a submission-time column (used where "
                        "nbgrader's timestamp.txt is absent)")


def read_lms_times(path: str) -> LmsTimes:
    """An LMS export (CSV, comma, semicolon or tab separated, UTF-8) with a student column (the
    first of student, student id, username, user id, login, login id, SIS login id, SIS user id,
    user, id, email, email address) and a time column (the first of submitted, submitted at,
    submission time, submission date, date submitted, last modified (submission), submission
    timestamp, timestamp, time); optionally a notebook or assignment column. Names are compared
    without case, spaces or punctuation. Rows without a time (not submitted) are skipped; of two
    rows for one student and notebook, the later time counts."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise argparse.ArgumentTypeError(f"{path}: cannot be read ({e})") from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    if not rows:
        raise argparse.ArgumentTypeError(f"{path}: the file is empty")
    header = [re.sub(r"[^a-z0-9]", "", h.casefold()) for h in rows[0]]
    column = {kind: next((header.index(c) for c in names if c in header), None)
              for kind, names in (("student", STUDENT_COLUMNS), ("time", TIME_COLUMNS), ("notebook", NOTEBOOK_COLUMNS))}
    if column["student"] is None or column["time"] is None:
        raise argparse.ArgumentTypeError(
            f"{path}: needs a student column ({', '.join(STUDENT_COLUMNS)}) and a time column "
            f"({', '.join(TIME_COLUMNS)}); it has {', '.join(rows[0])}")
    lms = LmsTimes(str(path))
    for number, row in enumerate(rows[1:], 2):
        cells = [c.strip() for c in row] + [""] * len(header)
        student, when = cells[column["student"]], cells[column["time"]]
        notebook = cells[column["notebook"]] if column["notebook"] is not None else ""
        notebook = notebook if re.fullmatch(r"\d\d(?:_\w+)?", notebook) else ""  # an LMS's assignment title: all
        if not student or not when:
            continue
        try:
            parsed = read_time(when)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{path}, line {number}: {e}") from None
        for key in {(student, notebook), (student.casefold(), notebook)}:
            if key in lms.times and _later(lms.times[key], parsed):
                continue
            lms.times[key] = parsed
    return lms


def _later(a: datetime, b: datetime) -> bool:
    """Whether a is later than b (naive and aware compared as if naive were UTC: only for choosing
    between two rows of one student)."""
    return a.replace(tzinfo=a.tzinfo or timezone.utc) > b.replace(tzinfo=b.tzinfo or timezone.utc)


# --- when a notebook was handed in ----------------------------------------------------------------


@dataclass(frozen=True)
class Stamp:
    """When a notebook was handed in, where that came from (a key of SOURCES), and notes."""

    time: datetime | None
    source: str
    notes: tuple[str, ...] = ()


def submitted_at(notebook_path: Path, lms_times: LmsTimes | None = None, student: str = "",
                 notebook: str = "", root: Path | None = None, zone=timezone.utc) -> Stamp:
    """The submission time of one notebook: nbgrader's timestamp.txt in its folder (not in the
    submissions folder itself, where it would be no one's), else the LMS export's time of this
    student (and notebook, if the export names them; a time without zone is in ``zone``), else
    the file's modification time."""
    notebook_path = Path(notebook_path)
    notes = []
    stamp_file = notebook_path.parent / "timestamp.txt"
    if (root is None or notebook_path.parent.resolve() != Path(root).resolve()) and stamp_file.is_file() \
            and not stamp_file.is_symlink():
        try:
            with open(stamp_file, encoding="utf-8") as f:
                return Stamp(parse_time(f.read(200), naive=timezone.utc), "timestamp")
        except (OSError, UnicodeDecodeError, ValueError) as e:
            notes.append(f"timestamp.txt could not be read ({e}); it was not used")
    when = lms_times.lookup(student, notebook) if lms_times is not None else None
    if when is not None:
        return Stamp(when if when.tzinfo else when.replace(tzinfo=zone), "lms", tuple(notes))
    try:
        ns = os.stat(notebook_path).st_mtime_ns
    except OSError as e:
        return Stamp(None, "", (*notes, f"no submission time: the file cannot be read ({e.strerror})"))
    when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=ns // 1000)
    return Stamp(when, "file", tuple(notes))


def submission_time(notebook_path: Path, lms_times: LmsTimes | None = None, student: str = "") -> datetime | None:
    """When a notebook was handed in (see `submitted_at`, which also says where that came from)."""
    return submitted_at(notebook_path, lms_times, student, Path(notebook_path).stem).time


# --- the penalty ----------------------------------------------------------------------------------


def exact(points) -> Fraction:
    """Points as an exact fraction (floats in grades.json are hundredths written in decimal)."""
    return Fraction(points) if isinstance(points, int) else Fraction(str(points))


def number(value: Fraction) -> int | float:
    """A multiple of 1/100 as grades.json writes it: an int when whole, else the float whose
    shortest decimal is the value (0.7, 12.35)."""
    return value.numerator if value.denominator == 1 else float(value)


def percent(fraction: Fraction) -> str:
    """A fraction as an exact percentage: ``Fraction(1, 8)`` is ``12.5%``."""
    value = Decimal(fraction.numerator * 100) / Decimal(fraction.denominator)
    return f"{value.normalize():f}%"


def points_text(points) -> str:
    """``1 point``, ``0.4 points``."""
    return f"{points:g} point{'' if points == 1 else 's'}"


def duration(delta: timedelta) -> str:
    """``1d 2h 3min 4s``: whole seconds, rounded up (late by 0.2 s reads ``1s``, not ``0``)."""
    seconds = -(-delta // timedelta(seconds=1))
    if seconds <= 0:
        return "0"
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "min"),
             (seconds % 60, "s")]
    return " ".join(f"{value}{unit}" for value, unit in parts if value)


def assess(policy: LatePolicy, stamp: Stamp, points: Fraction) -> dict:
    """One notebook's lateness and penalty, as grades.json keeps it (``late.notebooks``)."""
    row = {"due": policy.due.isoformat(), "policy": policy.describe(), "unit": policy.unit,
           "source": SOURCES.get(stamp.source, "none"),
           "submitted": "", "late_by": "0", "late_seconds": 0, "status": "on time", "units": 0,
           "fraction": "0%", "points": number(points), "penalty": 0, "notes": list(stamp.notes)}
    if stamp.time is None:
        row["status"] = "unknown"
        return row
    row["submitted"] = stamp.time.astimezone(policy.due.tzinfo).isoformat()
    late = stamp.time - policy.due
    if late <= timedelta(0):
        return row
    row["late_by"], row["late_seconds"] = duration(late), late / timedelta(microseconds=1) / 1_000_000
    if late <= policy.grace:
        row["status"] = "within the grace period"
        return row
    units = -(-late // UNITS[policy.unit])
    fraction = min(Fraction(1), units * policy.rate)
    row["status"], row["units"] = "late", units
    if policy.cutoff is not None and late > policy.cutoff:
        fraction, row["status"] = Fraction(1), "after the cutoff"
    row["fraction"] = percent(fraction)
    row["penalty"] = number(Fraction(math.floor(points * fraction * 100), 100))
    return row


def notebook_points(student: dict, notebook: str) -> Fraction:
    """The points one notebook earned: its exercises and its marked written answers."""
    return (sum((exact(e["points"]) for e in student["exercises"] if e["notebook"] == notebook), Fraction(0))
            + sum((exact(w["points"]) for w in student.get("written", []) if w["notebook"] == notebook), Fraction(0)))


def recount(student: dict) -> None:
    """A student's ``total``: the points of the exercises and of the marked written answers, less
    the late penalties; exact."""
    total = sum((exact(e["points"]) for e in student["exercises"]), Fraction(0))
    total += sum((exact(w["points"]) for w in student.get("written", [])), Fraction(0))
    total -= sum((exact(n["penalty"]) for n in student.get("late", {}).get("notebooks", [])), Fraction(0))
    student["total"] = number(total)


def apply(results: dict, policies: dict[str, LatePolicy], submissions: Path,
          times: LmsTimes | None = None) -> None:
    """Add each student's ``late`` (per notebook: submitted, source, late_by, penalty; and over the
    assignment: the last submission, the largest lateness, the sum of penalties) and recount the
    totals. Nothing happens without a policy."""
    if not policies:
        return
    by_source: dict[str, int] = {}
    for s in results["students"]:
        rows = []
        for f in s["files"]:
            policy = policies.get(f["notebook"]) if f.get("graded") else None
            if policy is None:
                continue
            stamp = submitted_at(Path(submissions) / f["path"], times, s["student"], f["notebook"],
                                 submissions, policy.due.tzinfo)
            rows.append({"notebook": f["notebook"], **assess(policy, stamp, notebook_points(s, f["notebook"]))})
            by_source[rows[-1]["source"]] = by_source.get(rows[-1]["source"], 0) + 1
        s["late"] = summarise(rows)
        recount(s)
    results["settings"]["deadlines"] = {name: p.describe() for name, p in policies.items()}
    if by_source.get(SOURCES["file"]):
        results["warnings"].append(
            f"deadlines: the submission time of {by_source[SOURCES['file']]} notebook(s) is the file's modification "
            "time (no timestamp.txt, no --submission-times row): copying or unzipping files can change it")


def summarise(rows: list[dict]) -> dict:
    """A student's lateness over the notebooks of the assignment (grades.csv's columns)."""
    most_late = max(rows, key=lambda r: r["late_seconds"], default=None)
    return {"submitted": max((r["submitted"] for r in rows), default="", key=lambda t: _instant(t)),
            "late_by": most_late["late_by"] if most_late else "",
            "penalty": number(sum((exact(r["penalty"]) for r in rows), Fraction(0))),
            "source": "; ".join(sorted({r["source"] for r in rows})),
            "notebooks": rows}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text) if text else datetime.min.replace(tzinfo=timezone.utc)


# --- what the reports show ------------------------------------------------------------------------

CSV_COLUMNS = ("submitted", "late_by", "penalty", "time_source")


def csv_header(results: dict) -> list[str]:
    """grades.csv's late columns: present only when a due date was given."""
    return list(CSV_COLUMNS) if "deadlines" in results["settings"] else []


def csv_cells(student: dict, header: list[str]) -> list:
    """A student's values of grades.csv's late columns (blank when nothing was graded)."""
    late = student.get("late", {})
    values = {"submitted": late.get("submitted", ""), "late_by": late.get("late_by", ""),
              "penalty": late.get("penalty", ""), "time_source": late.get("source", "")}
    return [values[name] for name in header]


def feedback_lines(student: dict, notebook: str) -> list[str]:
    """Plain sentences for one notebook's feedback: when it was handed in, and what that cost."""
    row = next((r for r in student.get("late", {}).get("notebooks", []) if r["notebook"] == notebook), None)
    if row is None:
        return []
    if not row["submitted"]:
        return [f"Due {row['due']}; the time it was handed in is unknown, so no late penalty was applied."]
    said = f"Handed in {row['submitted']} (from {row['source']}), due {row['due']}"
    if row["status"] == "on time":
        return [f"{said}: on time."]
    if row["status"] == "within the grace period":
        return [f"{said}: {row['late_by']} late, within the grace period: no penalty."]
    if row["status"] == "after the cutoff":
        return [f"{said}: {row['late_by']} late, past the cutoff: the notebook gets 0 points "
                f"(-{points_text(row['penalty'])})."]
    unit = row["unit"] + ("s" if row["units"] != 1 else "")
    return [f"{said}: {row['late_by']} late, {row['units']} started {unit}: "
            f"-{row['fraction']} of its {points_text(row['points'])}, -{points_text(row['penalty'])}."]


def total_notes(student: dict) -> list[str]:
    """A sentence under the feedback's total when late penalties were taken from it."""
    penalty = student.get("late", {}).get("penalty", 0)
    if not penalty:
        return []
    return [f"The total is after late penalties of {points_text(penalty)} in all (see each notebook)."]
