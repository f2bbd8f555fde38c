"""What the class got wrong: per exercise, how many students passed and how many made each known mistake.

The grader already knows, for every wrong answer, whether a mistake of the check's catalogue
explains it (``Grade.mistake``, the hint the student was shown). Counted over the class, that
tells the instructor what to teach again: "27 of 40 students: your output matches the LSTM
with the blocks in the order i, f, o, g". Everything here is computed from the ``results``
dict that ``grades.json`` holds, and written as ``class_report.md``, ``class_report.png``
and ``results["class_report"]``; like the rest of the report, nothing depends on the clock.
"""
from __future__ import annotations

import string
import textwrap
from pathlib import Path


# How each status of a grade is counted. "mistake" (a wrong answer a catalogue mistake explains)
# and "wrong" (one that none explains) are both status "wrong".
CATEGORY = {
    "passed": "passed",
    "wrong": "wrong",
    "crashed": "crashed", "timeout": "crashed", "out of memory": "crashed", "output limit": "crashed",
    "not attempted": "not attempted", "missing": "not attempted", "not submitted": "not attempted",
    "duplicated": "not attempted", "unreadable": "not attempted",
    "error": "error",
}  # any other status (one added later) is counted as "other"
LABELS = {
    "passed": "passed",
    "mistake": "a known mistake (lettered, see below)",
    "wrong": "wrong, no known mistake explains it",
    "crashed": "crashed or timed out",
    "not attempted": "not attempted or not handed in",
    "error": "not graded: the grader failed (regrade)",
    "other": "another outcome (see grades.json)",
}
COLORS = {"passed": "#4daf4a", "wrong": "#d7301f", "crashed": "#7b3294", "not attempted": "#d9d9d9",
          "error": "#404040", "other": "#8c8c8c"}
OUTCOMES = ("wrong", "crashed", "not attempted", "error", "other")  # after passed and the mistakes
MISTAKE_COLORS = ("#fdae61", "#fee08b", "#f46d43", "#fdd49e")  # alternate, so neighbours differ


def exercise_counts(exercise: dict, grades: list[dict]) -> dict:
    """The counts of one exercise over the class; ``grades`` holds each student's grade of it."""
    counts = {"passed": 0, **{key: 0 for key in OUTCOMES}}
    mistakes: dict[str, int] = {}
    for g in grades:
        category = CATEGORY.get(g["status"], "other")
        if category == "wrong" and g.get("mistake"):
            mistakes[g["mistake"]] = mistakes.get(g["mistake"], 0) + 1
        else:
            counts[category] += 1
    ranked = sorted(mistakes.items(), key=lambda item: (-item[1], item[0]))
    diagnosed = sum(mistakes.values())
    return {"notebook": exercise["notebook"], "number": exercise["number"], "exercise": exercise["name"],
            "students": len(grades), **counts,
            "mistakes": [{"hint": hint, "students": n} for hint, n in ranked],
            "diagnosed": diagnosed, "failed": diagnosed + counts["wrong"] + counts["crashed"]}


def class_report(results: dict) -> dict:
    """Per exercise of the course, how many of the class passed, made each known mistake, were wrong
    otherwise, crashed or timed out, or did not attempt it; the exercises most students got wrong
    (tried and failed) first, then in course order."""
    students = results["students"]
    exercises = [{**e, "notebook": nb["name"]} for nb in results["course"]["notebooks"] for e in nb["exercises"]]
    grades: dict[str, list[dict]] = {ex["name"]: [] for ex in exercises}
    for s in students:
        for g in s["exercises"]:
            grades.setdefault(g["exercise"], []).append(g)
    rows = [(order, exercise_counts(ex, grades[ex["name"]])) for order, ex in enumerate(exercises)]
    rows.sort(key=lambda row: (-row[1]["failed"], row[0]))
    return {"students": len(students), "exercises": [row for _, row in rows]}


def letters(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the label of the i-th mistake in the figure and the Markdown."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = string.ascii_uppercase[r] + out
    return out


def lettered(report: dict) -> list[tuple[str, dict, dict]]:
    """(letter, exercise row, mistake) for every mistake made, in the report's order."""
    found = [(row, m) for row in report["exercises"] for m in row["mistakes"]]
    return [(letters(i), row, m) for i, (row, m) in enumerate(found)]


def of(n: int, total: int) -> str:
    """"n of total", as the report counts students."""
    return f"{n} of {total}"


def markdown(report: dict) -> str:
    """class_report.md: a table of every exercise, then what each exercise's wrong answers were."""
    total = report["students"]
    lines = ["# What the class got wrong", "",
             f"{total} students. Exercises with the most wrong answers (wrong or crashed) first. A known "
             "mistake is the self-check's diagnosis of a wrong answer, in the words each student's feedback "
             "gave them; the letters are those of `class_report.png`.", "",
             "| exercise | passed | known mistakes | wrong, no diagnosis | crashed or timed out | not attempted |",
             "|---|---|---|---|---|---|"]
    for row in report["exercises"]:
        lines.append(f"| {row['number']} `{row['exercise']}` | {row['passed']} | {row['diagnosed']} | {row['wrong']} "
                     f"| {row['crashed']} | {row['not attempted']} |")
    letter_of = {(row["exercise"], m["hint"]): letter for letter, row, m in lettered(report)}
    for row in report["exercises"]:
        lines += ["", f"## {row['number']} `{row['exercise']}` ({row['notebook']}): "
                      f"{of(row['failed'], total)} wrong, {of(row['passed'], total)} passed", ""]
        for m in row["mistakes"]:
            letter = letter_of[(row["exercise"], m["hint"])]
            lines.append(f"- **{of(m['students'], total)}** ({letter}): {m['hint']}")
        for key in OUTCOMES:
            if row[key]:
                lines.append(f"- {of(row[key], total)}: {LABELS[key]}")
        if row["passed"] == total:
            lines.append("- everyone passed")
    return "\n".join(lines) + "\n"


def segments(row: dict, letter_of: dict) -> list[tuple[str, int, str, str]]:
    """(category, count, colour, text on the bar) for one exercise's bar, left to right."""
    out = [("passed", row["passed"], COLORS["passed"], str(row["passed"]))]
    for j, m in enumerate(row["mistakes"]):
        letter = letter_of[(row["exercise"], m["hint"])]
        out.append(("mistake", m["students"], MISTAKE_COLORS[j % len(MISTAKE_COLORS)], letter))
    out += [(key, row[key], COLORS[key], str(row[key])) for key in OUTCOMES]
    return [s for s in out if s[1]]


def key_lines(report: dict, width: int) -> list[str]:
    """The figure's key: each lettered mistake with its count and the hint, wrapped to ``width``."""
    lines, found = [], lettered(report)
    pad = max((len(letter) for letter, _, _ in found), default=1) + 2
    for letter, row, m in found:
        head = f"{letter:<{pad}}{m['students']} × {row['number']} {row['exercise']}: "
        lines += textwrap.wrap(m["hint"], width=width, initial_indent=head, subsequent_indent=" " * pad)
    return lines


def figure(report: dict, path: Path) -> None:
    """class_report.png: one horizontal bar per exercise, stacked by outcome, the most wrong at the top."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows, total = report["exercises"], max(1, report["students"])
    letter_of = {(row["exercise"], m["hint"]): letter for letter, row, m in lettered(report)}
    key = key_lines(report, width=135) or ["no wrong answer that a known mistake explains"]
    bars_h, key_h = 0.42 * len(rows) + 1.8, 0.16 * len(key) + 0.3
    fig = Figure(figsize=(11, bars_h + key_h), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[bars_h, key_h])
    ax = top.subplots()
    for y, row in enumerate(rows):
        left = 0
        for category, n, color, text in segments(row, letter_of):
            ax.barh(y, n, left=left, color=color, edgecolor="white", linewidth=1.2, height=0.75)
            if n / total >= 0.025:
                ax.text(left + n / 2, y, text, ha="center", va="center", fontsize=9,
                        fontweight="bold" if category == "mistake" else "normal",
                        color="white" if category in ("passed", "wrong", "crashed", "error", "other") else "black")
            left += n
    ax.set_yticks(range(len(rows)), [f"{row['number']} {row['exercise']}" for row in rows])
    ax.set(xlim=(0, total), ylim=(len(rows) - 0.5, -0.5), xlabel=f"students (of {report['students']})",
           title=f"What the class got wrong: {report['students']} students, the exercises most got wrong at the top")
    ax.xaxis.get_major_locator().set_params(integer=True)
    shown = [k for k in LABELS if (any(r["mistakes"] for r in rows) if k == "mistake" else any(r[k] for r in rows))]
    handles = [Patch(facecolor=MISTAKE_COLORS[0] if k == "mistake" else COLORS[k], label=LABELS[k]) for k in shown]
    top.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), frameon=False, fontsize=9)
    bottom.text(0.01, 0.98, "\n".join(key), va="top", ha="left", family="monospace", fontsize=8.5)
    fig.savefig(path, dpi=100, metadata={"Software": None})


def write_class_report(results: dict, out: Path) -> dict[str, Path]:
    """Add ``class_report`` to ``results`` and write ``class_report.md`` and ``class_report.png`` in ``out``."""
    out = Path(out)
    results["class_report"] = class_report(results)
    paths = {"class_report": out / "class_report.md", "class_report_figure": out / "class_report.png"}
    paths["class_report"].write_text(markdown(results["class_report"]), encoding="utf-8")
    figure(results["class_report"], paths["class_report_figure"])
    return paths
