"""Written answers (course_utils/grading/written.py): questions marked in solutions/, a prompt in
the hand-out, every answer collected into one review file per question, the instructor's points
and comments merged into the totals, grades.csv, grades.json and the feedback; pending answers
say so."""
from __future__ import annotations

import csv
import io
import json

import grading_corpus as corpus
import nbformat
import pytest
from conftest import NOTEBOOKS, SOLUTIONS
from test_grading import LIMITS, SEED, course_00_02, needs_course

from course_utils.grading import Options, grade
from course_utils.grading import written as w
from course_utils.release import ANSWER_PROMPT, student_version

QUESTION = ("<!-- QUESTION 0.3: why_subtract_max (2 points) -->\n"
            "### Question 0.3 (2 points, written)\n\nWhy does a stable softmax subtract the largest score?")
MODEL = "<!-- ANSWER 0.3: why_subtract_max -->\nexp of a large score overflows to inf; the shift changes nothing."


def cells(*sources, kind="markdown"):
    return [{"cell_type": kind, "metadata": {}, "source": s} for s in sources]


# --- markers, release and answers ------------------------------------------------------------------


def test_questions_are_read_from_their_markers():
    found = w.answer_cells(cells("# title", QUESTION, MODEL, "## Summary"), "00_welcome")
    (index, q), = found.items()
    assert index == 2 and (q.number, q.name, q.points) == ("0.3", "why_subtract_max", 2)
    assert q.text.startswith("### Question 0.3") and q.model_answer.startswith("exp of a large score")


@pytest.mark.parametrize("broken", [
    [QUESTION, "no answer cell here"],
    [QUESTION, MODEL.replace("why_subtract_max", "other")],
    [MODEL],
])
def test_a_malformed_question_is_refused(broken):
    with pytest.raises(w.QuestionError):
        w.answer_cells(cells(*broken), "00_welcome")


def test_release_replaces_the_model_answer_by_a_prompt():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(QUESTION), nbformat.v4.new_markdown_cell(MODEL)])
    out = student_version(nb, "00_x.ipynb")
    assert out.cells[1].source == QUESTION
    assert out.cells[2].source == f"<!-- ANSWER 0.3: why_subtract_max -->\n\n{ANSWER_PROMPT}"
    q = w.answer_cells(nb.cells, "00_x")[1]
    assert w.answer_in([dict(c) for c in out.cells], q) == ("", [])  # the prompt is no answer


def test_answers_are_found_even_when_the_marker_line_was_deleted():
    q = w.answer_cells(cells(QUESTION, MODEL), "00")[1]
    assert w.answer_in(cells(QUESTION, "<!-- ANSWER 0.3: why_subtract_max -->\nIt overflows."), q)[0] == "It overflows."
    text, notes = w.answer_in(cells(QUESTION, "It overflows, I think."), q)
    assert text == "It overflows, I think." and "was deleted" in notes[0]
    assert w.answer_in(cells("# nothing"), q) == (None, [])


@pytest.mark.parametrize("text, points", [("", None), ("pending", None), ("1.5", 1.5), ("1,5", 1.5), ("2", 2),
                                          ("0", 0), (" 0.25 ", 0.25)])
def test_points_as_instructors_type_them(text, points):
    assert w.parse_points(text, 2) == (None if points is None else pytest.approx(points))


@pytest.mark.parametrize("text", ["3", "-1", "abc", "0.125"])
def test_points_that_cannot_be_right_are_refused(text):
    with pytest.raises(ValueError):
        w.parse_points(text, 2)


def test_anonymous_ids_are_stable_and_keyed():
    assert w.anonymous_id("abc", "ada") == w.anonymous_id("abc", "ada") != w.anonymous_id("abd", "ada")
    assert "ada" not in w.anonymous_id("abc", "ada")


# --- a class with a written question -------------------------------------------------------------------


def course_with_question(tmp_path):
    """Notebooks 00-02 with a written question added to 00, and its hand-out."""
    solutions = course_00_02(tmp_path)
    nb = nbformat.read(solutions / "00_welcome.ipynb", as_version=4)
    summary = next(i for i, c in enumerate(nb.cells) if "## Summary" in c.source)
    nb.cells[summary:summary] = [nbformat.v4.new_markdown_cell(QUESTION), nbformat.v4.new_markdown_cell(MODEL)]
    nbformat.write(nb, solutions / "00_welcome.ipynb")
    return solutions, json.loads(nbformat.writes(student_version(nb, "00_welcome.ipynb")))


def answered(hand_out: dict, text: str | None, keep_marker: bool = True) -> dict:
    nb = corpus.solved(hand_out, corpus.load(SOLUTIONS / "00_welcome.ipynb"))
    for cell in nb["cells"]:
        if corpus.source(cell).startswith("<!-- ANSWER") and text is not None:
            corpus.set_source(cell, ("<!-- ANSWER 0.3: why_subtract_max -->\n" if keep_marker else "") + text)
    return nb


def read_review(out):
    text = (out / "written" / "why_subtract_max.csv").read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def write_review(out, rows):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    (out / "written" / "why_subtract_max.csv").write_text(buf.getvalue(), encoding="utf-8-sig")


@needs_course
def test_answers_are_collected_marked_and_merged(tmp_path):
    solutions, hand_out = course_with_question(tmp_path)
    subs, out = tmp_path / "subs", tmp_path / "out"
    corpus.write(answered(hand_out, "exp(1000) is inf, and inf/inf is nan."), subs / "ada" / "00_welcome.ipynb")
    corpus.write(answered(hand_out, None), subs / "bob" / "00_welcome.ipynb")  # the prompt left as it was
    corpus.write(answered(hand_out, "=HYPERLINK(\"x\") <b>overflow</b>", keep_marker=False),
                 subs / "cy__00_welcome.ipynb")
    corpus.write(corpus.load(NOTEBOOKS / "01_rnn_forward.ipynb"), subs / "dee" / "01_rnn_forward.ipynb")
    options = Options(solutions=solutions, notebooks=("00",), seed=SEED, jobs=2, limits=LIMITS, progress=False)

    first = grade(subs, out, options)
    by = {s["student"]: s for s in first["students"]}
    assert first["course"]["possible"] == 4 and first["course"]["notebooks"][0]["written"][0]["points"] == 2
    assert {n: (s["total"], s["possible"], s["written"][0]["status"]) for n, s in by.items()} == {
        "ada": (2, 4, "pending"), "bob": (2, 4, "not attempted"), "cy": (2, 4, "pending"),
        "dee": (0, 4, "not submitted")}
    assert by["ada"]["pending"] == ["why_subtract_max"] and "was deleted" in by["cy"]["written"][0]["notes"][0]
    assert (out / "grades.csv").read_text().splitlines()[1] == "ada,1,1,pending,2,4,"
    assert "pending / 2" in (out / "feedback" / "ada.md").read_text()
    assert "still to be marked: 1" in (out / "feedback" / "ada.md").read_text()
    rows = read_review(out)
    assert [(r["student"], r["possible"], r["points"]) for r in rows] == [("ada", "2", ""), ("cy", "2", "")]
    assert rows[1]["answer"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never evaluates it
    view = (out / "written" / "why_subtract_max.md").read_text()
    assert "Why does a stable softmax" in view and "&lt;b&gt;overflow" in view and "2 answers, 0 marked" in view

    rows[0].update(points="1.5", comment="Right about inf; say why the shift changes nothing.")
    rows[1].update(points="7", comment="too many points: left pending")
    write_review(out, rows)
    second = grade(subs, out, options)  # the filled file is where the last run wrote it
    by = {s["student"]: s for s in second["students"]}
    assert (by["ada"]["total"], by["ada"]["written"][0]["status"], by["cy"]["written"][0]["status"]) == (
        3.5, "marked", "pending")
    assert any("not between 0 and 2" in m for m in second["warnings"])
    assert (out / "grades.csv").read_text().splitlines()[1] == "ada,1,1,1.5,3.5,4,"
    feedback = (out / "feedback" / "ada.md").read_text()
    assert "**Total: 3.5 / 4 points**" in feedback and "comment: Right about inf" in feedback
    assert "## 00_welcome: 3.5 / 4" in feedback
    kept = read_review(out)  # rewritten, with the instructor's marks and comments kept
    assert (kept[0]["points"], kept[0]["comment"]) == ("1.5", "Right about inf; say why the shift changes nothing.")
    assert kept[1]["comment"] == "too many points: left pending"

    # ada changes her answer: the old mark no longer counts, and is kept in the comment
    corpus.write(answered(hand_out, "Because of overflow."), subs / "ada" / "00_welcome.ipynb")
    third = grade(subs, out, options)
    ada = third["students"][0]
    assert (ada["total"], ada["written"][0]["status"]) == (2, "pending")
    assert ada["written"][0]["earlier_mark"]["points"] == 1.5
    assert read_review(out)[0]["comment"].startswith("[1.5 points for an earlier answer]")


@needs_course
def test_anonymised_review_files_and_marks_read_from_elsewhere(tmp_path):
    solutions, hand_out = course_with_question(tmp_path)
    subs = tmp_path / "subs"
    for name, text in (("ada", "It overflows."), ("bob", "Numerical stability.")):
        corpus.write(answered(hand_out, text), subs / name / "00_welcome.ipynb")
    options = Options(solutions=solutions, notebooks=("00",), seed=SEED, jobs=2, limits=LIMITS, progress=False,
                      anonymise=True)
    first = grade(subs, tmp_path / "one", options)
    text = (tmp_path / "one" / "written" / "why_subtract_max.csv").read_text(encoding="utf-8-sig")
    assert text.startswith("anonymous_id,answer,possible,points,comment") and "ada" not in text and "bob" not in text
    assert "ada" not in (tmp_path / "one" / "written" / "why_subtract_max.md").read_text()
    ids = {s["student"]: s["anonymous_id"] for s in first["students"]}
    rows = read_review(tmp_path / "one")
    for row in rows:
        row["points"] = "2" if row["anonymous_id"] == ids["bob"] else "0"
    write_review(tmp_path / "one", rows)
    options.written = tmp_path / "one" / "written"  # e.g. the files a teaching assistant sent back
    second = grade(subs, tmp_path / "two", options)
    assert [(s["student"], s["total"]) for s in second["students"]] == [("ada", 2), ("bob", 4)]
    assert [s["anonymous_id"] for s in second["students"]] == [ids["ada"], ids["bob"]]  # stable


# --- the course's own questions -----------------------------------------------------------------------


def test_the_courses_questions_are_well_formed_and_not_answered_in_the_hand_outs():
    paths = sorted(SOLUTIONS.glob("*.ipynb"))
    questions = w.load_questions(SOLUTIONS, [p.stem for p in paths])
    for q in questions:
        assert q.number.split(".")[0] == str(int(q.notebook[:2])) and q.model_answer and q.text
        student = corpus.load(NOTEBOOKS / f"{q.notebook}.ipynb")
        assert w.answer_in(student["cells"], q) == ("", []), q.name
        visible = "\n".join(corpus.source(c) for c in student["cells"])
        assert q.model_answer not in visible
        exercises = {corpus.exercise_of(c) for c in corpus.load(SOLUTIONS / f"{q.notebook}.ipynb")["cells"]}
        assert q.name not in exercises


def test_the_nbgrader_export_makes_answer_cells_manually_graded():
    from course_utils.nbgrader_export import source_notebook

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(QUESTION), nbformat.v4.new_markdown_cell(MODEL)])
    question, answer = source_notebook(nb, "00_x").cells[1:]
    assert question.metadata["nbgrader"]["locked"] is True
    meta = answer.metadata["nbgrader"]
    assert (meta["solution"], meta["grade"], meta["points"], meta["locked"]) == (True, True, 2, False)
    assert answer.source.startswith("<!-- ANSWER 0.3: why_subtract_max -->\n### BEGIN SOLUTION")
    # what a student hands back through nbgrader: its stub is no answer
    q = w.answer_cells(nb.cells, "00_x")[1]
    assert w.answer_in(cells(QUESTION, "<!-- ANSWER 0.3: why_subtract_max -->\nYOUR ANSWER HERE"), q)[0] == ""
