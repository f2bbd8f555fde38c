"""Due dates and late penalties (course_utils/grading/deadlines.py): the options as an instructor
types them, the exact arithmetic, where a submission time comes from, and a class graded with
a deadline (grades.csv, grades.json and the feedback)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import grading_corpus as corpus
import pytest
from conftest import NOTEBOOKS, ROOT, SOLUTIONS
from test_grading import SEED, course_00_02, needs_course

from course_utils.grading import deadlines as d

CET = timezone(timedelta(hours=1))
DUE = "2026-12-01T23:59+01:00"


def policy(**kw) -> d.LatePolicy:
    values = {"due": d.parse_due(DUE), "rate": Fraction(1, 10), "unit": "day"} | kw
    return d.LatePolicy(**values)


def late(pol: d.LatePolicy, when: str, points=7) -> dict:
    return d.assess(pol, d.Stamp(d.parse_time(when), "timestamp"), Fraction(points))


# --- what the instructor types ---------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("10%/day", (Fraction(1, 10), "day")), ("2%/hour", (Fraction(1, 50), "hour")), ("0.25/d", (Fraction(1, 4), "day")),
    ("12.5% per day", (Fraction(1, 8), "day")), ("100%/h", (Fraction(1), "hour"))])
def test_penalties_are_read_exactly(text, expected):
    assert d.parse_rate(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("15min", timedelta(minutes=15)), ("7d", timedelta(days=7)), ("1d12h", timedelta(hours=36)),
    ("90s", timedelta(seconds=90)), ("1w", timedelta(days=7)), ("0", timedelta(0)), ("1.5h", timedelta(minutes=90))])
def test_durations(text, expected):
    assert d.parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["10%", "10%/week", "150%/day", "ten/day"])
def test_a_penalty_that_is_not_understood_is_refused(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        d.parse_rate(bad)


@pytest.mark.parametrize("bad", ["2026-12-01T23:59", "01/12/2026 23:59", "2026-12-01 23:59 CET", "tomorrow-ish"])
def test_a_due_date_needs_its_time_zone_and_no_ambiguity(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        d.parse_due(bad)


def test_times_in_the_formats_that_come_from_nbgrader_and_lms_exports():
    utc = datetime(2026, 12, 1, 22, 12, 9, 123456, tzinfo=timezone.utc)
    assert d.parse_time("2026-12-01 22:12:09.123456 UTC") == utc  # nbgrader's timestamp.txt
    assert d.parse_time("2026-12-01T23:12:09.123456+01:00") == utc
    assert d.parse_time("2026-12-01 22:12:09.123456", naive=timezone.utc) == utc  # nbgrader without zone: UTC
    assert d.read_time("Tuesday, 1 December 2026, 11:12 PM") == datetime(2026, 12, 1, 23, 12)  # Moodle: naive
    assert d.read_time("13/12/2026 10:00") == datetime(2026, 12, 13, 10, 0)  # unambiguous day first


# --- the arithmetic --------------------------------------------------------------------------------


def test_on_time_within_grace_late_and_after_the_cutoff():
    pol = policy(grace=timedelta(minutes=15), cutoff=timedelta(days=7))  # due 22:59 UTC
    assert late(pol, "2026-12-01 22:59:00 UTC")["status"] == "on time"
    within = late(pol, "2026-12-01 23:14:00 UTC")  # exactly at the end of the grace period
    assert within["status"] == "within the grace period" and within["penalty"] == 0 and within["late_by"] == "15min"
    just = late(pol, "2026-12-01 23:14:00.000001 UTC")  # a microsecond past it: one started day
    assert (just["status"], just["units"], just["fraction"], just["penalty"]) == ("late", 1, "10%", 0.7)
    two = late(pol, "2026-12-02 22:59:00.5 UTC")  # counted from the due date: a day and half a second
    assert (two["units"], two["penalty"], two["late_by"]) == (2, 1.4, "1d 1s")
    assert late(pol, "2026-12-08 22:59:00 UTC")["penalty"] == 4.9  # 7 days: 70 %, not yet past the cutoff
    cut = late(pol, "2026-12-08 22:59:01 UTC")
    assert (cut["status"], cut["fraction"], cut["penalty"]) == ("after the cutoff", "100%", 7)


def test_the_fraction_stops_at_all_the_points():
    assert late(policy(rate=Fraction(3, 10)), "2026-12-06 00:00:00 UTC")["penalty"] == 7  # 5 days at 30 %


def test_per_hour_and_the_rounding_rule_down_to_a_hundredth_in_the_students_favour():
    pol = policy(rate=Fraction(1, 8), unit="hour")  # 12.5 % per started hour
    row = late(pol, "2026-12-01 23:00:00 UTC")  # one minute late: one started hour
    assert row["units"] == 1 and row["fraction"] == "12.5%"
    assert row["penalty"] == 0.87  # 7 * 0.125 = 0.875, rounded down
    assert late(pol, "2026-12-01 23:00:00 UTC", points=1)["penalty"] == 0.12  # 0.125 -> 0.12
    assert late(policy(rate=Fraction(1, 3)), "2026-12-02 00:00:00 UTC", points=1)["penalty"] == 0.33


def test_the_total_is_exact():
    student = {"exercises": [{"notebook": "a", "points": 1}, {"notebook": "a", "points": 2}],
               "written": [{"notebook": "a", "points": 0.1}, {"notebook": "a", "points": 0.2}],
               "late": {"notebooks": [{"penalty": 0.3}]}}
    d.recount(student)
    assert student["total"] == 3 and isinstance(student["total"], int)  # not 3.0000000000000004


# --- where the submission time comes from -------------------------------------------------------------


def test_the_submission_time_comes_from_timestamp_txt_then_the_lms_then_the_file(tmp_path):
    nb = tmp_path / "submitted" / "ada" / "week2" / "01_rnn_forward.ipynb"
    nb.parent.mkdir(parents=True)
    nb.write_text("{}")
    os.utime(nb, ns=(0, 1_780_000_000_123_456_789))
    lms = d.LmsTimes("lms.csv", {("ada", ""): datetime(2026, 12, 1, 23, 30)})
    by_file = d.submitted_at(nb)
    assert by_file.source == "file" and by_file.time == datetime(2026, 5, 28, 20, 26, 40, 123456, tzinfo=timezone.utc)
    by_lms = d.submitted_at(nb, lms, "ada", "01_rnn_forward", zone=CET)
    assert by_lms.source == "lms" and by_lms.time == datetime(2026, 12, 1, 23, 30, tzinfo=CET)
    (nb.parent / "timestamp.txt").write_text("2026-12-01 22:12:09.123456 UTC\n")
    by_stamp = d.submitted_at(nb, lms, "ada", "01_rnn_forward")
    assert by_stamp.source == "timestamp" and by_stamp.time == datetime(2026, 12, 1, 22, 12, 9, 123456, timezone.utc)
    assert d.submission_time(nb) == by_stamp.time
    (nb.parent / "timestamp.txt").write_text("last Tuesday")
    broken = d.submitted_at(nb, lms, "ada", "01_rnn_forward")
    assert broken.source == "lms" and "timestamp.txt could not be read" in broken.notes[0]


def test_a_timestamp_in_the_submissions_folder_itself_is_no_ones(tmp_path):
    nb = tmp_path / "ada__01_rnn_forward.ipynb"
    nb.write_text("{}")
    (tmp_path / "timestamp.txt").write_text("2026-12-01 22:12:09 UTC")
    assert d.submitted_at(nb, root=tmp_path).source == "file"


def test_lms_exports_canvas_and_moodle_columns(tmp_path):
    canvas = tmp_path / "canvas.csv"
    canvas.write_text("Student,ID,SIS Login ID,Submitted At\nAda L,1,ada,2026-12-01T22:12:09Z\n"
                      "Bob,2,bob,\nCy,3,Cy,2026-12-02 10:00\n")
    times = d.read_lms_times(str(canvas))  # "Student" comes first: the names
    assert times.lookup("Ada L", "01_rnn_forward") == datetime(2026, 12, 1, 22, 12, 9, tzinfo=timezone.utc)
    moodle = tmp_path / "moodle.csv"
    moodle.write_text("Username;Last modified (submission)\nada;Tuesday, 1 December 2026, 11:12 PM\n",
                      encoding="utf-8-sig")
    assert d.read_lms_times(str(moodle)).lookup("ADA", "05") == datetime(2026, 12, 1, 23, 12)  # naive: due's zone
    (tmp_path / "bad.csv").write_text("name,grade\nada,3\n")
    with pytest.raises(argparse.ArgumentTypeError, match="student column"):
        d.read_lms_times(str(tmp_path / "bad.csv"))


def test_options_per_notebook_and_refusals():
    args = argparse.Namespace(late_due=[("", d.parse_due(DUE)), ("02", d.parse_due("2026-12-08T23:59+01:00"))],
                              late_penalty=[("", d.parse_rate("10%/day"))], late_grace=None,
                              late_cutoff=[("02", timedelta(days=2))], submission_times=None)
    schedule = d.prepare(d.from_arguments(args), ["01_rnn_forward", "02_bptt"])
    one, two = schedule.policies["01_rnn_forward"], schedule.policies["02_bptt"]
    assert one.cutoff is None and two.cutoff == timedelta(days=2) and two.rate == one.rate == Fraction(1, 10)
    assert two.due == datetime(2026, 12, 8, 23, 59, tzinfo=CET)
    from course_utils.grading import GradingError
    with pytest.raises(GradingError, match="not graded"):
        d.prepare(d.from_arguments(args), ["01_rnn_forward"])
    with pytest.raises(GradingError, match="without a due date"):
        d.prepare(d.Deadlines({"": {"penalty": d.parse_rate("10%/day")}}), ["01_rnn_forward"])
    assert d.from_arguments(argparse.Namespace(late_due=None, late_penalty=None, late_grace=None, late_cutoff=None,
                                               submission_times=None)) is None


# --- a class graded with a deadline ------------------------------------------------------------------


def deadline_class(subs):
    """ada on time (timestamp.txt), bob a day and an hour late (timestamp.txt), cy late by the LMS,
    dee by the file's time, eve (one file per notebook) late by the file's time."""
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    solved = corpus.solved(student00, solution00)
    for name in ("ada", "bob", "cy", "dee"):
        corpus.write(solved, subs / name / "00_welcome.ipynb")
    corpus.write(corpus.solved(student00, solution00, {"softmax"}), subs / "eve__00_welcome.ipynb")
    (subs / "ada" / "timestamp.txt").write_text("2026-12-01 22:58:00.000000 UTC")
    (subs / "bob" / "timestamp.txt").write_text("2026-12-03 00:00:00.000000 UTC")
    (subs / "timestamp.txt").write_text("2026-11-01 00:00:00 UTC")  # in no student's folder: never used
    late_ns = int(datetime(2026, 12, 5, 12, tzinfo=timezone.utc).timestamp()) * 10**9
    for path in (subs / "dee" / "00_welcome.ipynb", subs / "eve__00_welcome.ipynb"):
        os.utime(path, ns=(late_ns, late_ns))
    lms = subs.parent / "lms.csv"
    lms.write_text("login_id,submitted_at\ncy,2026-12-02 00:30\n")  # naive: in the due date's zone
    return lms


@needs_course
def test_a_class_graded_with_a_due_date_and_a_late_penalty_from_the_command_line(tmp_path, capsys):
    from course_utils.__main__ import main

    subs, out = tmp_path / "subs", tmp_path / "out"
    lms = deadline_class(subs)
    base = ["grade", str(subs), "--out", str(out), "--jobs", "2", "--no-progress", "--time-limit", "8",
            "--memory", "512", "--solutions", str(course_00_02(tmp_path)), "--notebooks", "00"]
    proc = subprocess.run([sys.executable, "-m", "course_utils", *base, "--due", "00=" + DUE, "--late-penalty",
                           "10%/day", "--grace", "15min", "--cutoff", "3d", "--submission-times", str(lms)],
                          capture_output=True, text=True, env={**os.environ, "COURSE_GRADING_SEED": SEED}, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "grades.json").read_text())
    by = {s["student"]: s for s in results["students"]}
    assert {n: (s["total"], s["late"]["penalty"], s["late"]["source"]) for n, s in by.items()} == {
        "ada": (2, 0, "nbgrader's timestamp.txt"),
        "bob": (1.6, 0.4, "nbgrader's timestamp.txt"),  # 25 h 1 min late: 2 started days, 20 % of 2 points
        "cy": (1.8, 0.2, "the LMS export"),  # 00:30 CET is 31 min late
        "dee": (0, 2, "the file's modification time"),  # 3 d 13 h late: past the 3 d cutoff
        "eve": (0, 1, "the file's modification time"),
    }
    assert by["bob"]["late"]["late_by"] == "1d 1h 1min"
    assert by["ada"]["late"]["submitted"] == "2026-12-01T23:58:00+01:00"
    assert by["bob"]["late"]["notebooks"][0]["units"] == 2
    assert "due 2026-12-01T23:59:00+01:00" in results["settings"]["deadlines"]["00_welcome"]
    assert any("modification time" in w for w in results["warnings"])
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0] == "student,sigmoid,softmax,total,possible,problems,submitted,late_by,penalty,time_source"
    assert rows[2] == "bob,1,1,1.6,2,,2026-12-03T01:00:00+01:00,1d 1h 1min,0.4,nbgrader's timestamp.txt"
    feedback = (out / "feedback" / "bob.md").read_text()
    assert "**Total: 1.6 / 2 points**" in feedback and "late penalties of 0.4 points" in feedback
    assert "1d 1h 1min late, 2 started days: -20% of its 2 points, -0.4 points" in feedback
    assert "past the cutoff" in (out / "feedback" / "dee.md").read_text()
    # refused before any student code runs (so in this process)
    assert main(base + ["--late-penalty", "10%/day"]) == 2
    assert "without a due date" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(base + ["--due", "2026-12-01 23:59"])
    assert refused.value.code == 2 and "time zone" in capsys.readouterr().err


def test_one_policy_for_every_notebook_from_strings():
    schedule = d.prepare(d.Deadlines.uniform(DUE, penalty="5%/hour", grace="10min", cutoff="2d"), ["01_x", "02_y"])
    assert set(schedule.policies) == {"01_x", "02_y"}
    assert schedule.policies["02_y"] == d.LatePolicy(datetime(2026, 12, 1, 23, 59, tzinfo=CET), Fraction(1, 20), "hour",
                                                     timedelta(minutes=10), timedelta(days=2))
    assert d.prepare(None, ["01_x"]).policies == {}
