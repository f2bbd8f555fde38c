"""What the grader writes: grades.csv, grades.json, feedback/<student>.md, histogram.png.

Nothing here depends on the time or the machine's speed, so grading the same submissions
with the same seed twice writes the same bytes (the PNG aside, which only draws the totals).
Feedback shows case labels ("random inputs with N=1") but never input values.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path


def safe_name(student: str, taken: set[str]) -> str:
    """A file name for a student's feedback: letters, digits, ``.``, ``_`` and ``-`` only."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"
    name, i = base, 2
    while name.lower() in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name.lower())
    return name


def fmt_points(x) -> str:
    return f"{x:g}"


def csv_text(results: dict) -> str:
    exercises = [e["name"] for nb in results["course"]["notebooks"] for e in nb["exercises"]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", *exercises, "total", "possible", "problems"])
    for s in results["students"]:
        points = {e["exercise"]: e["points"] for e in s["exercises"]}
        errors = [f"{e['exercise']}: {e['reason']}" for e in s["exercises"] if e["status"] == "error"]
        w.writerow([s["student"], *(fmt_points(points[name]) for name in exercises), fmt_points(s["total"]),
                    fmt_points(s["possible"]), "; ".join(s["problems"] + errors)])
    return buf.getvalue()


MARK = {"passed": "✓", "not attempted": "○"}


def feedback(student: dict, results: dict) -> str:
    """One student's feedback in Markdown: points, the reason in words, and the check's hint."""
    lines = [f"# Feedback for {student['student']}", "",
             f"**Total: {fmt_points(student['total'])} / {fmt_points(student['possible'])} points**", ""]
    if student["problems"]:
        lines += ["Files that could not be graded:", ""]
        lines += [f"- {p}" for p in student["problems"]] + [""]
    if student["notes"]:
        lines += [f"- {n}" for n in student["notes"]] + [""]
    lines += [("Every exercise was run on hidden inputs of the same kinds as the self-check's, in a "
               "fresh process of its own; points are all or nothing per exercise."), ""]
    by_notebook: dict[str, list[dict]] = {}
    for e in student["exercises"]:
        by_notebook.setdefault(e["notebook"], []).append(e)
    for nb in results["course"]["notebooks"]:
        mine = by_notebook.get(nb["name"], [])
        if not mine:
            continue
        got = sum(e["points"] for e in mine)
        possible = sum(e["possible"] for e in mine)
        lines += [f"## {nb['name']}: {fmt_points(got)} / {fmt_points(possible)}", ""]
        if all(e["status"] == "not submitted" for e in mine):
            lines += [f"Not graded: no readable {nb['name']}.ipynb was handed in.", ""]
            continue
        for e in mine:
            mark = MARK.get(e["status"], "✗")
            lines.append(f"- {mark} **{e['number']} {e['exercise']}**: {fmt_points(e['points'])} / "
                         f"{fmt_points(e['possible'])}. {_sentence(e['reason'])}")
            for note in e["notes"]:
                lines.append(f"  - note: {note}")
            shown = [ln.strip() for ln in e["details"][1:] if ln.strip() and not ln.strip().startswith("hint:")]
            if shown and e["status"] != "passed":
                lines += ["", "  ```text", *[f"  {ln}" for ln in shown], "  ```", ""]
            if e["hint"] and e["status"] != "passed":
                lines.append(f"  - hint: {e['hint']}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _sentence(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        return ""
    reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith((".", "?", "!")) else reason + "."


def histogram(results: dict, path: Path) -> None:
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
    out = Path(out)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "grades.csv", "json": out / "grades.json", "histogram": out / "histogram.png"}
    paths["csv"].write_text(csv_text(results), encoding="utf-8")
    taken: set[str] = set()
    for s in results["students"]:
        name = safe_name(s["student"], taken)
        s["feedback"] = f"feedback/{name}.md"
        (out / s["feedback"]).write_text(feedback(s, results), encoding="utf-8")
    paths["json"].write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    histogram(results, paths["histogram"])
    return paths
