"""What the grader writes: grades.csv, grades.json, feedback/<student>.md, histogram.png (and class_report.py's).

Nothing here depends on the time or the machine's speed, so grading the same submissions
with the same seed twice writes the same bytes (the PNG aside, which only draws the totals).
Feedback shows case labels ("random inputs with N=1") but never input values.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path


def safe_name(student: str, taken: set[str]) -> str:
    """A file name for a student's feedback: letters, digits, ``.``, ``_`` and ``-`` only.

    A name that had to be changed gets a short hash of the original (``bob?`` becomes
    ``bob-1f3a9c0e``), so it can never be the file of another student called ``bob`` or ``bob_2``;
    names are compared without case, as on macOS and Windows."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._-")[:80] or "student"
    if base != student or base.lower() in {"con", "prn", "aux", "nul"}:
        base = f"{base}-{hashlib.sha256(student.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    name, i = base, 2
    while name.lower() in taken:
        name, i = f"{base}-{i}", i + 1
    taken.add(name.lower())
    return name


ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?")
CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def plain(text) -> str:
    """Text that came from a student (a name, an exception message), safe to put in a report:
    no terminal escapes, no control or bidi characters, one line."""
    text = ANSI_RE.sub("", str(text))
    text = CONTROL_RE.sub(" ", text.replace("\r", " ").replace("\n", " ").replace("\t", " "))
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def md(text, name: bool = False) -> str:
    """Text for Markdown that may hold a student's words (an exception message): plain, with HTML,
    links and images shown as text; a student's name (``name=True``) has all its markup escaped."""
    text = plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]#|!])" if name else r"([\[\]!])", r"\\\1", text)


def csv_cell(value) -> str:
    """A CSV cell that a spreadsheet shows as text: a leading =, +, -, @ (or tab, carriage
    return) would make Excel, LibreOffice or Google Sheets evaluate it as a formula."""
    text = plain(value) if not isinstance(value, (int, float)) else fmt_points(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def fmt_points(x) -> str:
    """Points as the reports write them: 3, 2.5."""
    return f"{x:g}"


def csv_text(results: dict) -> str:
    """grades.csv: one row per student, the points of every exercise and written question, the total,
    the possible points, the problems and the late penalties."""
    from . import deadlines, written  # they import this module: not at the top

    exercises = [e["name"] for nb in results["course"]["notebooks"] for e in nb["exercises"]]
    questions, late = written.csv_header(results), deadlines.csv_header(results)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", *exercises, *questions, "total", "possible", "problems", *late])
    for s in results["students"]:
        points = {e["exercise"]: e["points"] for e in s["exercises"]}
        errors = [f"{e['exercise']}: {e['reason']}" for e in s["exercises"] if e["status"] == "error"]
        w.writerow([csv_cell(s["student"]), *(fmt_points(points[name]) for name in exercises),
                    *map(csv_cell, written.csv_cells(s, questions)),
                    fmt_points(s["total"]), fmt_points(s["possible"]), csv_cell("; ".join(s["problems"] + errors)),
                    *map(csv_cell, deadlines.csv_cells(s, late))])
    return buf.getvalue()


MARK = {"passed": "✓", "not attempted": "○"}


def feedback(student: dict, results: dict) -> str:
    """One student's feedback in Markdown: points, the reason in words, and the check's hint."""
    from . import deadlines, written  # they import this module: not at the top

    lines = [f"# Feedback for {md(student['student'], name=True)}", "",
             f"**Total: {fmt_points(student['total'])} / {fmt_points(student['possible'])} points**", ""]
    lines += [f"{md(n)}\n" for n in written.total_notes(student) + deadlines.total_notes(student)]
    if student["problems"]:
        lines += ["Files that could not be graded:", ""]
        lines += [f"- {md(p)}" for p in student["problems"]] + [""]
    if student["notes"]:
        lines += [f"- {md(n)}" for n in student["notes"]] + [""]
    lines += [("Every exercise was run on hidden inputs of the same kinds as the self-check's, in a "
               "fresh process of its own; points are all or nothing per exercise."), ""]
    by_notebook: dict[str, list[dict]] = {}
    for e in student["exercises"]:
        by_notebook.setdefault(e["notebook"], []).append(e)
    for nb in results["course"]["notebooks"]:
        mine = by_notebook.get(nb["name"], [])
        if not mine:
            continue
        written_got, written_possible = written.points_of(student, nb["name"])  # marked answers, all answers
        got = deadlines.number(sum(e["points"] for e in mine) + written_got)
        possible = sum(e["possible"] for e in mine) + written_possible
        lines += [f"## {nb['name']}: {fmt_points(got)} / {fmt_points(possible)}", ""]
        if all(e["status"] == "not submitted" for e in mine):
            lines += [f"Not graded: no readable {nb['name']}.ipynb was handed in.", ""]
            continue
        lines += [f"{md(line)}\n" for line in deadlines.feedback_lines(student, nb["name"])]
        for e in mine:
            mark = MARK.get(e["status"], "✗")
            lines.append(f"- {mark} **{e['number']} {e['exercise']}**: {fmt_points(e['points'])} / "
                         f"{fmt_points(e['possible'])}. {md(_sentence(e['reason']))}")
            for note in e["notes"]:
                lines.append(f"  - note: {md(note)}")
            shown = [plain(ln).strip().replace("`" * 3, "` ` `") for ln in e["details"][1:]]
            shown = [ln for ln in shown if ln and not ln.startswith("hint:")]
            if shown and e["status"] != "passed":
                lines += ["", "  ```text", *[f"  {ln}" for ln in shown], "  ```", ""]
            if e["hint"] and e["status"] != "passed":
                lines.append(f"  - hint: {e['hint']}")  # the check's own words
        for label, text, below in written.feedback_items(student, nb["name"]):
            lines += [f"- ✎ **{md(label)}** {md(text)}", *[f"  - {md(line)}" for line in below]]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _sentence(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        return ""
    reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith((".", "?", "!")) else reason + "."


def histogram(results: dict, path: Path) -> None:
    """Draw the histogram of the students' totals into the PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    totals = [s["total"] for s in results["students"]]
    possible = results["course"]["possible"]
    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.add_subplot()
    bins = [x - 0.5 for x in range(int(possible) + 2)]
    ax.hist(totals, bins=bins, color="tab:blue", edgecolor="white")
    ax.set(title=f"Total points of {len(totals)} students (out of {fmt_points(possible)})",
           xlabel="total points", ylabel="number of students", xlim=(-0.5, possible + 0.5))
    ax.yaxis.get_major_locator().set_params(integer=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})


def write_all(results: dict, out: Path) -> dict[str, Path]:
    """Write grades.csv, grades.json, histogram.png, review.md, the class report and feedback/ (Markdown
    and HTML per student) into ``out``; returns their paths by kind."""
    out = Path(out)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "grades.csv", "json": out / "grades.json", "histogram": out / "histogram.png"}
    paths["csv"].write_text(csv_text(results), encoding="utf-8")
    review = ["# Code to review", "",
              "Code that reaches into the grading machinery (module lists, frames, garbage collector, ctypes, "
              "the grader's own names, sockets, signals). Nothing here changed a grade: values are judged in "
              "the grading process. It is listed for a person to read.", ""]
    for s in results["students"]:
        if s.get("review"):
            review += [f"## {md(s['student'], name=True)}", ""] + [f"- {md(hit)}" for hit in s["review"]] + [""]
    paths["review"] = out / "review.md"
    paths["review"].write_text("\n".join(review).rstrip() + "\n", encoding="utf-8")
    taken: set[str] = set()
    for s in results["students"]:
        name = safe_name(s["student"], taken)
        s["feedback"] = f"feedback/{name}.md"
        (out / s["feedback"]).write_text(feedback(s, results), encoding="utf-8")
        from .html_feedback import feedback_html  # imports this module: not at the top

        (out / "feedback" / f"{name}.html").write_text(feedback_html(s, results), encoding="utf-8")
    from .class_report import write_class_report

    paths.update(write_class_report(results, out))  # also results["class_report"], for grades.json
    paths["json"].write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    histogram(results, paths["histogram"])
    return paths
