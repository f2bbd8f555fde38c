"""Where a learner stands: ``python -m course_utils progress [NOTEBOOKS...]``.

For each notebook (default: ``notebooks/*.ipynb``) it prints which exercises pass their
self-check, which are wrong (with the first line of the check's hint) and which are not attempted
yet. The notebook's own code runs in a child process per notebook, never in this one; like the
grader (``grading/_runner.py``), the child runs only the statements an exercise needs (imports,
definitions and the assignments they use), so the notebooks' training cells and plots do not run.
Each exercise then gets its self-check, ``Exercise.run``, on the inputs of the grader's public
default seed: no secret is involved, and the verdict is the one the check cell prints.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .release import ROOT

TIME_LIMIT = 60.0  # seconds per exercise, torch's import included; a self-check takes well under one


# --- the child: one notebook's exercises, its code run here, verdicts out as JSON lines ------------


def check_exercise(job: dict, name: str) -> dict:
    """Define what exercise ``name`` needs from the notebook's cells in a fresh namespace, and self-check it."""
    from .check import EXERCISES
    from .grading import DEFAULT_SEED
    from .grading._runner import define
    from .grading.grader import exercise_rng, needed_given, skipped_notes
    from .grading.submissions import Cell

    ex = EXERCISES[name]
    given = needed_given(job["given"], ex.funcs, [Cell(c["cell"], c["source"]) for c in job["cells"]])
    cells = ([{"cell": 0, "source": "\n\n".join(given.values())}] if given else []) + job["cells"]
    namespace: dict = {"__name__": "__main__"}
    syntax, errors = define(cells, namespace, funcs=list(ex.funcs))
    missing = [f for f in ex.funcs if not callable(namespace.get(f))]
    if missing:
        bad = [f"{e['type']} in cell {c}, line {e['line']}: {e['message']}" for c, e in syntax.items()
               if c in job["cells_of"].get(missing[0], [])]
        if bad:
            return {"exercise": name, "status": "crashed", "what": bad[0], "hint": ""}
        notes = [n for f in missing for n in skipped_notes(errors, f)]
        what = f"no function `{missing[0]}` is defined" + (f" ({notes[0]})" if notes else "")
        return {"exercise": name, "status": "missing", "what": what, "hint": ""}
    verdict = ex.run(*(namespace[f] for f in ex.funcs), rng=exercise_rng(DEFAULT_SEED, name))
    raised = [line.strip()[len("error: "):] for line in verdict.lines if line.strip().startswith("error: ")]
    return {"exercise": name, "status": verdict.status, "what": verdict.lines[0] if verdict.lines else "",
            "raised": raised[0] if raised else "", "hint": verdict.hint, "mistake": verdict.mistake}


def child_main() -> int:
    """Read a job (JSON) on stdin; write one JSON line per exercise to the original stdout. What the
    learner's code prints goes nowhere: the parent reads only these lines."""
    job = json.loads(sys.stdin.read())
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (for the life of the child)
    warnings.simplefilter("ignore")
    from . import check  # noqa: F401 (imported before the clock of the first exercise starts)
    from .grading import _runner, grader  # noqa: F401

    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for name in job["exercises"]:
        try:
            line = check_exercise(job, name)
        except BaseException as e:  # noqa: BLE001 (the learner's code may raise anything, even SystemExit)
            line = {"exercise": name, "status": "crashed", "what": f"{type(e).__name__}: {e}"[:300], "hint": ""}
        out.write(json.dumps(line) + "\n")
        out.flush()
    return 0


# --- the parent: find the exercises, run the children, print the table ------------------------------


def notebook_job(path: Path, course) -> tuple[dict | None, str]:
    """The child's job for one notebook (its code cells, its exercises and given functions), or why not."""
    from .grading.submissions import Submission, definitions_of, identify, markers_in, read_submission

    sub = Submission("", path, path.name, path.stem if path.stem in course.notebooks else None)
    read_submission(sub)
    identify(sub, course)
    if sub.problem:
        return None, sub.problem
    nb = course.notebooks[sub.notebook]
    marked = markers_in(sub.cells)
    cells_of = {ex.name: marked.get(ex.name, []) + definitions_of(sub.cells, ex.name) for ex in nb.exercises}
    return {"notebook": nb.name, "exercises": [ex.name for ex in nb.exercises],
            "numbers": {ex.name: ex.number for ex in nb.exercises}, "given": nb.given,
            "cells": [{"cell": c.number, "source": c.source} for c in sub.cells],
            "cells_of": {k: [str(n) for n in v] for k, v in cells_of.items()}}, ""


def run_child(job: dict, cwd: Path, time_limit: float) -> dict[str, dict]:
    """Run a notebook's exercises in child processes, each exercise given ``time_limit`` seconds: one
    that runs past it is a timeout, and a fresh child goes on with the exercises after it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MPLBACKEND": "Agg", "COURSE_PROGRESS": "text"}
    results: dict[str, dict] = {}
    todo = list(job["exercises"])
    while todo:
        proc = subprocess.Popen([sys.executable, "-c", "from course_utils.learner_progress import child_main; "
                                 "raise SystemExit(child_main())"], cwd=cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        proc.stdin.write(json.dumps({**job, "exercises": todo}).encode())
        proc.stdin.close()
        for line in read_lines(proc, time_limit):
            result = json.loads(line)
            if "ready" in result:
                continue
            results[result["exercise"]] = result
            todo.remove(result["exercise"])
        hung = proc.poll() is None
        if hung:
            proc.kill()
        proc.wait()
        proc.stdout.close()
        if todo:  # the first exercise left hung, or ended the process (os._exit, a crash)
            how = (f"more than {time_limit:g} s: an endless loop?" if hung else
                   f"the process ended while checking it (exit code {proc.returncode})")
            name = todo.pop(0)
            results[name] = {"exercise": name, "status": "timeout" if hung else "crashed", "what": how, "hint": ""}
    return results


def read_lines(proc: subprocess.Popen, time_limit: float, start_up: float = 120.0):
    """The child's lines as they come; stops when the child ends, or when a line takes longer than
    ``time_limit`` (the first, which says the child has imported the course, ``start_up``)."""
    buffer, deadline, fd = b"", time.monotonic() + start_up, proc.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            deadline = time.monotonic() + time_limit
            yield line


def first_line(text: str, width: int = 300) -> str:
    """The first line of ``text``, cut at ``width`` characters (a hint's first line is whole)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def describe(result: dict) -> str:
    """One exercise's state in words: passed, not attempted, or what is wrong and the hint's first line."""
    from .checking.core import FAIL, PASS, TODO

    status = result["status"]
    if status == "passed":
        return f"{PASS} passed"
    if status == "not attempted":
        return f"{TODO} not attempted"
    if result.get("raised"):
        return f"{FAIL} raised " + first_line(result["raised"], 160)
    what = result["what"].split(": ", 1)[-1].rstrip(".") if status == "wrong" else result["what"]
    return f"{FAIL} {status}: " + first_line(result["hint"] or what)


def table(title: str, job: dict, results: dict[str, dict]) -> list[str]:
    """A notebook's lines: its title and how many exercises pass, then one line per exercise."""
    width = max(len(f"{job['numbers'][n]} {n}") for n in job["exercises"])
    passed = sum(results[n]["status"] == "passed" for n in job["exercises"])
    lines = [f"{title}: {passed} of {len(job['exercises'])} exercises pass"]
    for name in job["exercises"]:
        lines.append(f"  {job['numbers'][name] + ' ' + name:<{width}}  {describe(results[name])}")
    return lines


def progress(paths: list[Path], time_limit: float = TIME_LIMIT, jobs_at_once: int = 1,
             solutions: Path = ROOT / "solutions") -> int:
    """Print each notebook's table; 0 if every exercise passes, 1 if some do not, 2 if a notebook cannot be read."""
    from .check import EXERCISES
    from .grading.submissions import CourseError, load_course

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            course = load_course(solutions, EXERCISES)
    except (CourseError, OSError, ValueError) as e:
        print(f"progress needs the course's solutions/ folder, which defines its exercises: {e}", file=sys.stderr)
        return 2
    jobs = [(path, *notebook_job(path, course)) for path in paths]
    with ThreadPoolExecutor(max_workers=max(1, jobs_at_once)) as pool:  # printed in order, as each is done
        futures = [pool.submit(run_child, job, path.resolve().parent, time_limit) if job else None
                   for path, job, _ in jobs]
        status = 0
        for (path, job, problem), future in zip(jobs, futures):
            if job is None:
                print(f"{path}: {problem}\n", flush=True)
                status = 2
                continue
            results = future.result()
            print("\n".join(table(str(path), job, results)) + "\n", flush=True)
            if status == 0 and any(r["status"] != "passed" for r in results.values()):
                status = 1
    return status


def progress_command(args: argparse.Namespace) -> int:
    """``python -m course_utils progress``: the notebooks given, else every ``notebooks/*.ipynb``."""
    paths = list(args.paths) or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        print("no notebooks found: pass their paths", file=sys.stderr)
        return 2
    return progress(paths, time_limit=args.time_limit, jobs_at_once=args.jobs)
