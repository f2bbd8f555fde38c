"""Feedback as a self-contained HTML page per student: ``DIR/feedback/<student>.html``.

The page says what ``feedback/<student>.md`` says (the late-penalty and written-answer lines
come from ``deadlines`` and ``written``, as there), from the same entry of the `results` dict
that grades.json holds. It needs nothing outside itself (inline CSS; a Content-Security-Policy
that forbids loading anything at all), so it can be mailed or uploaded to an LMS as it is.
Every piece of text, including the names and hints the course wrote, goes through
`html.escape`: a student's name or exception message is shown as text and never becomes markup.
"""
from __future__ import annotations

import html
import re

from . import deadlines, written
from .report import MARK, _sentence, fmt_points, plain

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 52em;
       margin: 2em auto; padding: 0 1em; color: #1f2328; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.6em; }
.total { font-size: 1.15em; font-weight: 600; }
ul.exercises { list-style: none; padding-left: 0; }
ul.exercises > li { margin: .6em 0; padding: .4em .7em; border-left: 4px solid #d0d7de; }
li.passed { border-color: #1a7f37 !important; }
li.failed { border-color: #cf222e !important; }
li.not-attempted { border-color: #9a6700 !important; }
li.written { border-color: #8250df !important; }
.mark { display: inline-block; width: 1.3em; font-weight: 700; }
.passed .mark { color: #1a7f37; } .failed .mark { color: #cf222e; } .not-attempted .mark { color: #9a6700; }
pre { background: #f6f8fa; padding: .5em .7em; overflow-x: auto; white-space: pre-wrap; font-size: .9em; }
.hint { background: #fff8c5; padding: .3em .6em; }
.note { color: #59636e; }
code { background: #f6f8fa; padding: 0 .2em; font-size: .95em; }
"""
# Nothing may be loaded from anywhere: no scripts, images, fonts or style sheets, only the CSS above.
CSP = "default-src 'none'; style-src 'unsafe-inline'"


def esc(text) -> str:
    """Text from anywhere (a student's name, an exception message, a hint), as HTML text: plain
    (one line, no control characters), then escaped, quotes included."""
    return html.escape(plain(text), quote=True)


def esc_code(text) -> str:
    """`esc`, with the Markdown code spans of the reasons and hints (`` `out` ``) shown as code:
    the markup is added after escaping, around text that is already escaped."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", esc(text))


def exercise_parts(e: dict) -> dict:
    """What the feedback says about one exercise, as plain one-line texts not yet escaped for any
    format: the reason as a sentence, the notes, the self-check's lines and its hint (the last two
    only when the exercise did not pass), chosen as the Markdown feedback chooses them."""
    failed = e["status"] != "passed"
    details = [plain(line).strip() for line in e["details"][1:]] if failed else []
    return {"reason": _sentence(plain(e["reason"])), "notes": [plain(n) for n in e["notes"]],
            "details": [line for line in details if line and not line.startswith("hint:")],
            "hint": plain(e["hint"]) if failed and e["hint"] else ""}


def _status_class(status: str) -> str:
    return {"passed": "passed", "not attempted": "not-attempted"}.get(status, "failed")


def _exercise_item(e: dict) -> list[str]:
    parts = exercise_parts(e)
    mark = MARK.get(e["status"], "✗")
    lines = [f'<li class="{_status_class(e["status"])}"><span class="mark">{mark}</span>'
             f'<strong>{esc(e["number"])} {esc(e["exercise"])}</strong>: '
             f'{fmt_points(e["points"])} / {fmt_points(e["possible"])}. {esc_code(parts["reason"])}']
    if parts["notes"]:
        lines += ["<ul>", *[f'<li class="note">note: {esc_code(n)}</li>' for n in parts["notes"]], "</ul>"]
    if parts["details"]:
        lines.append("<pre>" + "\n".join(esc(line) for line in parts["details"]) + "</pre>")
    if parts["hint"]:
        lines.append(f'<p class="hint">hint: {esc_code(parts["hint"])}</p>')
    return lines + ["</li>"]


def _written_item(label: str, text: str, below: list[str]) -> list[str]:
    lines = [f'<li class="written"><span class="mark">✎</span><strong>{esc(label)}</strong> {esc_code(text)}']
    if below:
        lines += ["<ul>", *[f'<li class="note">{esc_code(line)}</li>' for line in below], "</ul>"]
    return lines + ["</li>"]


def _notebook_section(student: dict, name: str, mine: list[dict]) -> list[str]:
    written_got, written_possible = written.points_of(student, name)  # marked answers, all answers
    got = deadlines.number(sum(e["points"] for e in mine) + written_got)
    possible = sum(e["possible"] for e in mine) + written_possible
    lines = ["<section>", f"<h2>{esc(name)}: {fmt_points(got)} / {fmt_points(possible)}</h2>"]
    if all(e["status"] == "not submitted" for e in mine):
        return lines + [f"<p>Not graded: no readable {esc(name)}.ipynb was handed in.</p>", "</section>"]
    lines += [f"<p>{esc(line)}</p>" for line in deadlines.feedback_lines(student, name)]
    lines.append('<ul class="exercises">')
    for e in mine:
        lines += _exercise_item(e)
    for label, text, below in written.feedback_items(student, name):
        lines += _written_item(label, text, below)
    return lines + ["</ul>", "</section>"]


def feedback_html(student: dict, results: dict) -> str:
    """One student's feedback as a complete HTML page: points, reasons in words and the checks'
    hints, per notebook and exercise, with nothing loaded from outside the page."""
    title = esc(f"Feedback for {student['student']}")
    body = [f"<h1>{title}</h1>",
            f'<p class="total">Total: {fmt_points(student["total"])} / {fmt_points(student["possible"])} points</p>']
    body += [f"<p>{esc(n)}</p>" for n in written.total_notes(student) + deadlines.total_notes(student)]
    if student["problems"]:
        body += ["<p>Files that could not be graded:</p>", "<ul>",
                 *[f"<li>{esc(p)}</li>" for p in student["problems"]], "</ul>"]
    if student["notes"]:
        body += ["<ul>", *[f'<li class="note">{esc(n)}</li>' for n in student["notes"]], "</ul>"]
    body.append("<p>Every exercise was run on hidden inputs of the same kinds as the self-check's, in a "
                "fresh process of its own; points are all or nothing per exercise.</p>")
    by_notebook: dict[str, list[dict]] = {}
    for e in student["exercises"]:
        by_notebook.setdefault(e["notebook"], []).append(e)
    for nb in results["course"]["notebooks"]:
        if by_notebook.get(nb["name"]):
            body += _notebook_section(student, nb["name"], by_notebook[nb["name"]])
    head = ['<!DOCTYPE html>', '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]
    return "\n".join(head + body + ["</body>", "</html>"]) + "\n"
