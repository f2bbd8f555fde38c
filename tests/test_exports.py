"""Grades in the formats instructors upload: Canvas's and Moodle's CSV imports, and feedback as a
self-contained HTML page per student, all written from the grader's own grades.json.

A small class is graded once (notebook 00; about 5 s): the exports and the pages are checked on
what the grader really wrote, and the escaping on a student whose name, exception message and
notes are HTML.
"""
from __future__ import annotations

import csv
import html
import io
import re
from html.parser import HTMLParser

import grading_corpus as corpus
import pytest
from conftest import NOTEBOOKS, SOLUTIONS
from test_grading import HAVE_COURSE, LIMITS, LINUX, SEED, course_00_02

from course_utils.__main__ import main
from course_utils.grading import Options, grade
from course_utils.grading.exports import ExportError, canvas_csv, moodle_csv, read_roster
from course_utils.grading.html_feedback import feedback_html

INJECTION = "<script>alert(1)</script>"
NAUGHTY = "eve<img src=x onerror=alert(1)>"  # a student id (a file name) that is HTML

ROSTER = """student,name,canvas_id,sis_user_id,sis_login_id,section,email,idnumber
cy,"Cy, Bo",303,S3,cy@u,B,cy@uni.edu,1003
ada,"Lovelace, Ada",101,S1,ada@u,A,ada@uni.edu,1001
nobody,"Never, Handed In",404,S4,nobody@u,A,nobody@uni.edu,1004
bob,"=HYPERLINK(""http://x"")",202,,,A,,1002
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not (HAVE_COURSE and LINUX):
        pytest.skip("needs notebooks 00-02 and Linux")
    root = tmp_path_factory.mktemp("class")
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    subs = root / "subs"
    corpus.write(corpus.solved(student00, solution00), subs / "ada" / "00_welcome.ipynb")
    corpus.write(corpus.solved(student00, solution00, {"softmax"}), subs / "bob" / "00_welcome.ipynb")
    tanh = corpus.hostile(student00, solution00, "sigmoid", "return np.tanh(x)")
    corpus.write(tanh, subs / "cy" / "00_welcome.ipynb")
    raising = f"raise ValueError({INJECTION!r})"
    corpus.write(corpus.hostile(student00, solution00, "sigmoid", raising), subs / f"{NAUGHTY}__00_welcome.ipynb")
    out = root / "grades"
    results = grade(subs, out, Options(solutions=course_00_02(root), seed=SEED, jobs=2, limits=LIMITS,
                                       progress=False, notebooks=("00",)))
    (root / "roster.csv").write_text(ROSTER, encoding="utf-8")
    return {"results": results, "out": out, "root": root, "roster": root / "roster.csv"}


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- Canvas and Moodle ------------------------------------------------------------------------------


def test_canvas_csv_has_canvas_columns_a_points_possible_row_and_the_rosters_students(graded):
    export = canvas_csv(graded["results"], read_roster(graded["roster"]), "RNN basics (12345)")
    table = rows(export.text)
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "RNN basics (12345)"]
    assert table[1] == ["    Points Possible", "", "", "", "", "2"]
    assert table[2:] == [["Cy, Bo", "303", "S3", "cy@u", "B", "1"],
                         ["Lovelace, Ada", "101", "S1", "ada@u", "A", "2"],
                         ["Never, Handed In", "404", "S4", "nobody@u", "A", ""],  # no grade: Canvas keeps its own
                         ["'=HYPERLINK(\"http://x\")", "202", "", "", "A", "1"]]  # a name is never a formula
    assert export.not_on_roster == [NAUGHTY] and export.not_graded == ["nobody"] and not export.complete


def test_the_points_exported_are_the_totals_in_grades_json(graded):
    export = canvas_csv(graded["results"], read_roster(graded["roster"]), "a")
    by_id = {row[1]: row[-1] for row in rows(export.text)[2:]}
    totals = {s["student"]: s["total"] for s in graded["results"]["students"]}
    assert by_id == {"303": str(totals["cy"]), "101": str(totals["ada"]), "404": "", "202": str(totals["bob"])}
    assert totals == {"ada": 2, "bob": 1, "cy": 1, NAUGHTY: 1}


def test_moodle_csv_by_email_or_idnumber(graded):
    roster = read_roster(graded["roster"])
    by_email = moodle_csv(graded["results"], roster, "Week 1", "email", missing_as_zero=True)
    assert rows(by_email.text) == [["Email address", "Week 1"], ["cy@uni.edu", "1"], ["ada@uni.edu", "2"],
                                   ["nobody@uni.edu", "0"]]
    assert by_email.no_identifier == ["bob"]  # no email in the roster: listed, never dropped silently
    by_number = moodle_csv(graded["results"], roster, "Week 1", "idnumber")
    assert rows(by_number.text)[1:] == [["1003", "1"], ["1001", "2"], ["1004", ""], ["1002", "1"]]
    assert by_number.no_identifier == [] and by_number.not_on_roster == [NAUGHTY]


def test_the_command_reports_students_missing_from_the_roster(graded, capsys):
    out = graded["root"] / "moodle.csv"
    code = main(["export-grades", str(graded["out"]), "--lms", "moodle", "--roster", str(graded["roster"]),
                 "--moodle-id", "idnumber", "--assignment", "Week 1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1  # written, but not complete
    assert "NOT IN THE FILE, not on the roster (1)" in captured.err and "eve" in captured.err
    assert "on the roster without grades (empty cell): nobody" in captured.out
    assert rows(out.read_text())[0] == ["ID number", "Week 1"]


def test_the_command_writes_canvas_csv_beside_grades_json_and_exits_0_when_all_are_matched(graded, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER + f'"{NAUGHTY}",Eve,505,S5,eve@u,A,eve@uni.edu,1005\n', encoding="utf-8")
    code = main(["export-grades", str(graded["out"] / "grades.json"), "--lms", "canvas", "--roster", str(roster)])
    assert code == 0, capsys.readouterr().err
    table = rows((graded["out"] / "canvas.csv").read_text())
    assert table[0][-1] == "notebook 00"  # no id: Canvas makes it a new assignment
    assert table[-1] == ["Eve", "505", "S5", "eve@u", "A", "1"]


def test_a_roster_exported_from_canvas_is_read_with_its_own_headers(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("\ufeffstudent,Name,ID,SIS User ID,SIS Login ID,Email Address,ID Number\n"
                     "ada ,Ada,101,S1,ada@u,ada@uni.edu,7\n\n".encode())  # a BOM, as Excel writes
    assert read_roster(path) == {"ada": {"student": "ada", "name": "Ada", "canvas_id": "101", "sis_user_id": "S1",
                                         "sis_login_id": "ada@u", "email": "ada@uni.edu", "idnumber": "7"}}


@pytest.mark.parametrize("text, words", [
    ("name,email\nAda,ada@u\n", "no `student` column"),
    ("student,email\nada,a@u\nada,b@u\n", "listed twice"),
    ("student,email\n,a@u\n", "no student id"),
])
def test_a_roster_that_cannot_be_used_is_refused(tmp_path, text, words):
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(ExportError, match=words):
        read_roster(path)


def test_a_student_id_differing_only_in_case_matches_its_roster_row():
    results = {"course": {"possible": 2, "notebooks": []},
               "students": [{"student": "Ada", "total": 2}, {"student": "bob", "total": 1}]}
    export = moodle_csv(results, {"ada": {"student": "ada", "email": "a@u"}, "bob": {"student": "bob", "email": "b@u"}},
                        "w")
    assert rows(export.text)[1:] == [["a@u", "2"], ["b@u", "1"]] and export.complete


# --- feedback as HTML -------------------------------------------------------------------------------


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "ul", "li", "section", "span",
                "strong", "pre", "code"}
ALLOWED_ATTRIBUTES = {"lang", "charset", "http-equiv", "content", "name", "class"}


class Markup(HTMLParser):
    """The tags and attributes of a page, as a browser's parser sees them."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.attributes = set(), set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def test_every_student_gets_a_self_contained_html_page_beside_the_markdown(graded):
    feedback = graded["out"] / "feedback"
    md, pages = sorted(p.stem for p in feedback.glob("*.md")), sorted(p.stem for p in feedback.glob("*.html"))
    assert md == pages and len(pages) == len(graded["results"]["students"])
    for page in feedback.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>") and "<style>" in text
        assert "default-src 'none'" in text  # the browser loads nothing from anywhere
        markup = Markup(text)  # nothing that loads or runs anything: no script, img, link, src, href
        assert markup.tags <= ALLOWED_TAGS and markup.attributes <= ALLOWED_ATTRIBUTES, (page.name, markup.tags)
        assert "url(" not in text and "@import" not in text


def test_the_html_page_says_what_the_markdown_says(graded):
    cy = (graded["out"] / "feedback" / "cy.html").read_text()
    assert "Total: 1 / 2 points" in cy and "00_welcome: 1 / 2" in cy
    assert "tanh(x), not the sigmoid" in cy  # the check's hint
    assert "fixed inputs, N=3, D=5" in cy  # the case that failed, never its values
    assert not re.search(r"\d\.\d{3}", cy.split("</style>")[1].replace("1e-07", ""))


def test_student_text_and_hints_in_html_are_escaped(graded):
    name = next(s["feedback"] for s in graded["results"]["students"] if s["student"] == NAUGHTY)
    text = (graded["out"] / name).with_suffix(".html").read_text()
    assert "alert" in text and "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "eve&lt;img src=x onerror=alert(1)&gt;" in text


def test_every_field_of_the_page_is_escaped():
    bad = INJECTION + "`code`"
    student = {"student": bad, "total": 0, "possible": 1, "problems": [bad], "notes": [bad], "exercises": [
        {"notebook": "00_welcome", "number": "0.1", "exercise": "sigmoid", "points": 0, "possible": 1,
         "status": "wrong", "reason": "wrong: " + bad, "details": ["first", bad, "x\n" + bad], "hint": bad,
         "notes": [bad]}]}
    results = {"course": {"notebooks": [{"name": "00_welcome", "exercises": []}]}}
    text = feedback_html(student, results)
    assert "<script" not in text and text.count("&lt;script&gt;") == 9
    assert "<code>code</code>" in text  # code spans of reasons and hints, added after escaping


def test_late_penalties_and_written_answers_appear_in_the_page_as_in_the_markdown():
    """The page takes these lines from `deadlines` and `written`, as feedback/<student>.md does."""
    from course_utils.grading import deadlines, written
    from course_utils.grading.gradescope import results_json
    from course_utils.grading.report import feedback

    exercise = {"notebook": "00_welcome", "number": "0.1", "exercise": "sigmoid", "points": 1, "possible": 1,
                "status": "passed", "reason": "passed: correct", "details": [], "hint": "", "notes": []}
    student = {"student": "ada", "total": 0.9, "possible": 3, "problems": [], "notes": [], "exercises": [exercise],
               "late": {"penalty": 0.1, "notebooks": [
                   {"notebook": "00_welcome", "submitted": "2025-01-02 10:00", "source": "timestamp.txt",
                    "due": "2025-01-01 23:59", "status": "late", "late_by": "10 hours", "units": 1, "unit": "day",
                    "fraction": "10%", "points": 1, "penalty": 0.1}]},
               "written": [{"notebook": "00_welcome", "number": "0.3", "question": "why <b>", "status": "marked",
                            "points": 0, "possible": 2, "reason": "marked: by the instructor", "notes": [],
                            "comment": "see <i>lecture</i> 2"}]}
    results = {"course": {"notebooks": [{"name": "00_welcome", "exercises": []}], "possible": 3},
               "settings": {}, "students": [student]}
    expected = deadlines.feedback_lines(student, "00_welcome") + deadlines.total_notes(student)
    items = written.feedback_items(student, "00_welcome")
    expected += [line for label, text, below in items for line in [label, text, *below]]
    assert len(expected) == 5  # the late line, the total's note, the written answer's label, text and comment
    page, md = feedback_html(student, results), feedback(student, results)
    summary = results_json(results, 1.0)["output"]
    for line in expected:
        assert html.escape(line) in page.replace("<code>", "`").replace("</code>", "`"), line
        assert line in summary, line
    assert "see <i>" not in page and "00_welcome: 1 / 3" in page and "00_welcome: 1 / 3" in md
