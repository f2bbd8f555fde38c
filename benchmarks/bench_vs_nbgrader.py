"""The course's grader and nbgrader, side by side on the same class: wall time and points.

    .venv/bin/python benchmarks/bench_vs_nbgrader.py                   # 40 students, one run each
    .venv/bin/python benchmarks/bench_vs_nbgrader.py --students 10 --runs 2 --figure build/vs.png

The class is the benchmark class of ``bench_grading.py`` (``make_class``, drawn from ``--seed``:
students who solve everything, hand in the hand-outs, solve a few exercises, or make one catalogue
mistake per notebook; notebooks 01 and 02). Notebooks 01 and 02 are exported as one nbgrader
source assignment (``export_nbgrader``), nbgrader's ``generate_assignment`` releases it, and each
student's exercise cells are copied into nbgrader's released notebooks, laid out as nbgrader's
``collect`` lays them out (``submitted/<student>/<assignment>/<notebook>.ipynb`` and
``timestamp.txt``). Then both tools grade that one ``submitted/`` folder:

- nbgrader: ``autograde`` of every student (its Python API, as ``nbgrader autograde ASSIGNMENT``:
  one kernel per notebook, one notebook after the other), the points read from its gradebook;
- the course: ``course_utils.grading.grade`` with ``--jobs`` parallel jobs, each exercise in its
  sandbox (the full sandbox; ``--allow-weak-sandbox`` where this machine lacks a protection).

With ``--runs 2`` or more, the order alternates (nbgrader first on even runs); each nbgrader run
grades a fresh copy of the course directory. Prints the load average before and after, a table
(wall and CPU time, seconds per student, total points, (student, exercise) pairs that agree and
disagree, each disagreement with both verdicts), and draws ``--figure`` (wall time; the class's
points per exercise by each tool). The course grader's ``class_report.png`` of the last run is
copied to ``--class-report``; ``--keep DIR`` keeps the work folder (autograded notebooks, gradebook).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import grading_corpus as corpus
from bench_grading import NOTEBOOKS, diagnosed, make_class

from course_utils.grading import Options, grade
from course_utils.nbgrader_export import export_nbgrader

ASSIGNMENT = "rnn_week1"  # notebooks 01 and 02 as one nbgrader assignment
TIMESTAMP = "2025-01-15 10:30:00.000000 UTC"  # as nbgrader's submit writes it
TOOLS = ("course grader", "nbgrader")


def clock() -> tuple[float, float]:
    """Wall-clock and CPU seconds so far, this process's and its finished children's."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def since(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU) seconds since ``start`` (a ``clock()``)."""
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def load_average() -> str:
    """``uptime``'s line (the load average of this shared machine), or os.getloadavg() without it."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def nbgrader_api(course: Path):
    """nbgrader's Python API on the exported course directory, with its exported nbgrader_config.py."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    return NbGraderAPI(config=config)


def release(course: Path) -> float:
    """Export notebooks 01 and 02 as one nbgrader source assignment and run generate_assignment.
    Returns its wall seconds."""
    export_nbgrader(course, [n.split("_", 1)[0] for n in NOTEBOOKS], assignment=ASSIGNMENT)
    start = time.perf_counter()
    generated = nbgrader_api(course).generate_assignment(ASSIGNMENT)
    if not generated["success"]:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{generated['log']}")
    return time.perf_counter() - start


def hand_in(course: Path, students: int, seed: int) -> dict:
    """The benchmark class (make_class) in nbgrader's collected layout: each student's exercise cells
    copied into nbgrader's released notebooks. Returns make_class's manifest."""
    drawn = course.parent / "class"
    manifest = make_class(drawn, students, seed)
    released = {n: corpus.load(course / "release" / ASSIGNMENT / f"{n}.ipynb") for n in NOTEBOOKS}
    for student in manifest:
        folder = course / "submitted" / student / ASSIGNMENT
        for n in NOTEBOOKS:
            corpus.write(corpus.solved(released[n], corpus.load(drawn / student / f"{n}.ipynb")), folder / f"{n}.ipynb")
        (folder / "timestamp.txt").write_text(TIMESTAMP)
    return manifest


def run_nbgrader(course: Path) -> tuple[tuple[float, float], dict]:
    """nbgrader's autograde of every student in ``course``; ((wall, CPU) seconds, points) where points
    is {(student, exercise): (score, max_score)} from its gradebook."""
    from nbgrader.api import Gradebook

    start = clock()
    graded = nbgrader_api(course).autograde(ASSIGNMENT, "*")  # every student, as `nbgrader autograde`
    seconds = since(start)
    if not graded["success"]:
        raise RuntimeError(f"nbgrader autograde failed:\n{graded['log']}")
    complaints = [line for line in graded["log"].splitlines() if line.startswith(("[WARNING]", "[ERROR]"))]
    if complaints:
        print(f"nbgrader's log: {len(complaints)} warnings and errors:\n  " + "\n  ".join(complaints[:20]))
    points = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in sorted(p.name for p in (course / "submitted").iterdir()):
            for n in NOTEBOOKS:
                for g in gb.find_submission_notebook(n, ASSIGNMENT, student).grades:
                    points[(student, g.name.removeprefix("test_"))] = (g.score, g.max_score)
    return seconds, points


def run_course(submitted: Path, out: Path, args) -> tuple[tuple[float, float], dict, dict]:
    """The course's grader on nbgrader's submitted/ folder; ((wall, CPU) seconds, points, results)
    where points is {(student, exercise): (points, possible, status, mistake hint)}."""
    solutions = out.parent / "solutions"
    if not solutions.exists():
        solutions.mkdir()
        for n in NOTEBOOKS:
            shutil.copyfile(ROOT / "solutions" / f"{n}.ipynb", solutions / f"{n}.ipynb")
    options = Options(solutions=solutions, jobs=args.jobs, seed="benchmark", progress=False,
                      notebooks=tuple(n.split("_", 1)[0] for n in NOTEBOOKS),
                      allow_weak_sandbox=args.allow_weak_sandbox)
    start = clock()
    results = grade(submitted, out, options)
    seconds = since(start)
    points = {(s["student"], e["exercise"]): (e["points"], e["possible"], e["status"], e["mistake"])
              for s in results["students"] for e in s["exercises"]}
    return seconds, points, results


def run_both(tmp: Path, fresh: Path, args) -> dict:
    """``args.runs`` runs of each tool, alternating which goes first; the wall and CPU seconds of each
    run, the last run's points of each, and the course grader's last results and output folder."""
    runs: dict = {tool: [] for tool in TOOLS}
    last: dict = {}
    for run in range(args.runs):
        order = TOOLS if run % 2 == 0 else TOOLS[::-1]
        for tool in order:
            if tool == "nbgrader":
                course = tmp / f"nbgrader{run}"
                shutil.copytree(fresh, course)
                seconds, last["nbgrader"] = run_nbgrader(course)
            else:
                last["out"] = tmp / f"grades{run}"
                seconds, last["course grader"], last["results"] = run_course(fresh / "submitted", last["out"], args)
            runs[tool].append(seconds)
            print(f"run {run + 1}, {tool}: {seconds[0]:.1f} s wall, {seconds[1]:.1f} s CPU "
                  f"({load_average()})", flush=True)
    return {"runs": runs, **last}


def compare(course: dict, nbgrader: dict) -> tuple[list, list]:
    """(agreeing, disagreeing) (student, exercise) pairs; a disagreement also when one tool lacks the pair."""
    agree, disagree = [], []
    for pair in sorted(set(course) | set(nbgrader)):
        mine, theirs = course.get(pair), nbgrader.get(pair)
        same = mine is not None and theirs is not None and (mine[0], mine[1]) == (theirs[0], theirs[1])
        (agree if same else disagree).append((pair, mine, theirs))
    return agree, disagree


def table(found: dict, students: int, jobs: int) -> list[str]:
    """The printed comparison: time, points, agreement, and every disagreement with both verdicts."""
    agree, disagree = compare(found["course grader"], found["nbgrader"])
    possible = sum(p[1] for p in found["course grader"].values())
    wall = {tool: statistics.median(w for w, _ in found["runs"][tool]) for tool in TOOLS}
    cpu = {tool: statistics.median(c for _, c in found["runs"][tool]) for tool in TOOLS}
    total = {tool: sum(p[0] for p in found[tool].values()) for tool in TOOLS}
    rows = [f"{'':34s}{'course grader':>16s}{'nbgrader':>16s}",
            f"{'wall time, median of runs (s)':34s}{wall['course grader']:16.1f}{wall['nbgrader']:16.1f}",
            f"{'CPU time, children included (s)':34s}{cpu['course grader']:16.1f}{cpu['nbgrader']:16.1f}",
            f"{'wall seconds per student':34s}{wall['course grader'] / students:16.2f}"
            f"{wall['nbgrader'] / students:16.2f}",
            f"{'parallel jobs':34s}{jobs:16d}{1:16d}",
            f"{'total points of the class':34s}{total['course grader']:16g}{total['nbgrader']:16g}",
            f"course grader {wall['nbgrader'] / wall['course grader']:.1f} times faster (wall), out of {possible} "
            f"points possible; (student, exercise) pairs: {len(agree)} agree, {len(disagree)} disagree"]
    for (student, exercise), mine, theirs in disagree:
        verdict = f"{mine[0]}/{mine[1]} ({mine[2]})" if mine else "not graded"
        other = f"{theirs[0]:g}/{theirs[1]:g}" if theirs else "not graded"
        rows.append(f"  DISAGREE {student} {exercise}: course grader {verdict}, nbgrader {other}")
    return rows


def figure(found: dict, students: int, jobs: int, path: Path) -> None:
    """Left: wall time of each tool (bars labelled with seconds); right: the class's points per exercise
    by each tool, side by side, with the points possible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"course grader": "tab:blue", "nbgrader": "tab:orange"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1, 2.3]})
    wall = [statistics.median(w for w, _ in found["runs"][tool]) for tool in TOOLS]
    bars = left.bar([f"course grader\n({jobs} jobs)", "nbgrader\n(autograde)"], wall,
                    color=[colours[t] for t in TOOLS], width=0.6)
    left.bar_label(bars, labels=[f"{w:.1f} s\n({w / students:.2f} s/student)" for w in wall], padding=3)
    left.set_ylim(0, max(wall) * 1.25)
    left.set_ylabel("wall time (s)")
    left.set_title(f"Grading {students} students, notebooks 01-02")
    exercises = list(dict.fromkeys(e for _, e in found["course grader"]))
    possible = {e: sum(p[1] for (_, ex), p in found["course grader"].items() if ex == e) for e in exercises}
    x = range(len(exercises))
    for k, tool in enumerate(TOOLS):
        got = [sum(p[0] for (_, ex), p in found[tool].items() if ex == e) for e in exercises]
        placed = right.bar([i + (k - 0.5) * 0.38 for i in x], got, width=0.38, color=colours[tool], label=tool)
        right.bar_label(placed, fontsize=8, padding=2)
    right.scatter(list(x), [possible[e] for e in exercises], marker="_", s=700, color="black", zorder=3,
                  label="points possible")
    agree, disagree = compare(found["course grader"], found["nbgrader"])
    number = {e["exercise"]: e["number"] for s in found["results"]["students"] for e in s["exercises"]}
    right.set_xticks(list(x), [f"{number[e]} {e}" for e in exercises], rotation=25, ha="right")
    right.set_ylabel(f"points of the class ({students} students)")
    right.set_ylim(0, max(possible.values()) * 1.3)
    right.set_title(f"Points per exercise: {len(agree)} of {len(agree) + len(disagree)} "
                    f"(student, exercise) pairs agree")
    right.legend(loc="upper center", fontsize=9, ncol=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="draws the class (groups, mistakes)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each tool, alternating which goes first")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="the course grader's parallel jobs")
    parser.add_argument("--allow-weak-sandbox", action="store_true",
                        help="let the course grader grade where this machine lacks a sandbox protection")
    parser.add_argument("--figure", type=Path, default=ROOT / "build" / "bench_vs_nbgrader.png")
    parser.add_argument("--class-report", type=Path, default=ROOT / "build" / "bench_class_report.png",
                        help="where to copy the course grader's class_report.png")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep the work folder in DIR: the class, nbgrader's course (autograded notebooks, "
                             "gradebook.db) and the course grader's grades")
    args = parser.parse_args()
    print(f"before: {load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's, from nbgrader's gradebook; the default seed's
        tmp = Path(tmp)
        # nbgrader creates its gradebook by running `alembic` from PATH, as in an activated environment
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        generate = release(tmp / "course")
        manifest = hand_in(tmp / "course", args.students, args.seed)
        print(f"nbgrader generate_assignment: {generate:.1f} s (once, not counted below); "
              f"{args.students} students x {len(NOTEBOOKS)} notebooks handed in", flush=True)
        found = run_both(tmp, tmp / "course", args)
        args.class_report.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found["out"] / "class_report.png", args.class_report)
        if args.keep is not None:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
    print(f"after: {load_average()}\n")
    print("\n".join(table(found, args.students, args.jobs)))
    made, seen = diagnosed(manifest, found["results"])
    box = found["results"].get("sandbox", {})
    print(f"catalogue mistakes made: {made}, diagnosed by the course grader: {seen}; sandbox protections: "
          f"{', '.join(box.get('protections', [])) or '?'}; "
          f"unavailable: {', '.join(box.get('unavailable', [])) or 'none'}")
    figure(found, args.students, args.jobs, args.figure)
    print(f"figure: {args.figure}\nclass report: {args.class_report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
