"""Command line: ``python -m course_utils <command>``; ``python -m course_utils --help`` lists the commands:
release, execute, grade, export-nbgrader, export-grades, gradescope-bundle, progress, doctor."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; its exit status."""
    args = build_parser().parse_args(argv)
    return args.run(args)


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand, each with its options and the function that runs it (``args.run``)."""
    from . import nbgrader_export
    from .grading import exports, gradescope  # their options are defined beside their code

    parser = argparse.ArgumentParser(prog="python -m course_utils", allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    p.add_argument("--check", action="store_true", help="only report; exit 1 if notebooks/ is out of date")
    p.set_defaults(run=release_command)

    p = sub.add_parser("execute", help="run solution notebooks top to bottom and save their outputs")
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every solutions/*.ipynb)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    p.set_defaults(run=execute_command)

    p = sub.add_parser("grade", help="grade a folder of submitted notebooks (see docs/grading.md)",
                       allow_abbrev=False)  # `--seed` must not pass for `--seed-file`
    add_grade_arguments(p)
    p.set_defaults(run=grade_command)

    p = sub.add_parser("export-nbgrader", help="write the course as an nbgrader source assignment")
    nbgrader_export.add_arguments(p)
    p.set_defaults(run=nbgrader_export.export_command)

    p = sub.add_parser("export-grades", help="write grades.json as a CSV file that Canvas or Moodle imports")
    exports.add_arguments(p)
    p.set_defaults(run=exports.export_command)

    p = sub.add_parser("gradescope-bundle", help="write a Gradescope autograder (zip) that runs this grader",
                       allow_abbrev=False)  # `--seed` must not pass for `--seed-file`
    gradescope.add_arguments(p)
    p.set_defaults(run=gradescope.bundle_command)

    p = sub.add_parser("progress", help="which exercises of your notebooks pass, are wrong or not attempted yet")
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every notebooks/*.ipynb)")
    p.add_argument("--time-limit", type=float, default=60.0, metavar="SECONDS", help="per exercise (default: 60)")
    p.add_argument("--jobs", "-j", type=int, default=2, help="notebooks checked at once (default: 2)")
    p.set_defaults(run=progress_command)

    p = sub.add_parser("doctor", help="for authors: what is missing (checks, references, proofs, markers, hand-outs)")
    p.set_defaults(run=doctor_command)
    return parser


def release_command(args: argparse.Namespace) -> int:
    """``release [--check]``: regenerate notebooks/, or only say whether it is up to date."""
    from .release import ReleaseError, release

    try:
        problems = release(check=args.check)
    except ReleaseError as e:
        print(f"release failed: {e}", file=sys.stderr)
        return 2
    if not args.check:
        print("\n".join(problems) if problems else "notebooks/ was already up to date")
        return 0
    for line in problems:
        print(line)
    if problems:
        print("run `python -m course_utils release` to regenerate notebooks/")
        return 1
    print("notebooks/ is up to date")
    return 0


def execute_command(args: argparse.Namespace) -> int:
    """``execute [NOTEBOOKS]``: run solution notebooks and save their outputs."""
    from .notebooks import execute_in_place

    return execute_in_place(args.paths, timeout=args.timeout)


def progress_command(args: argparse.Namespace) -> int:
    """``progress [NOTEBOOKS]``: the learner's self-checks, notebook by notebook."""
    from .learner_progress import progress_command as run

    return run(args)


def doctor_command(args: argparse.Namespace) -> int:
    """``doctor``: what an author still has to do (docs/authoring.md)."""
    from .authoring import doctor_command as run

    return run()


def add_grade_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m course_utils grade`` to the parser ``p``."""
    import os

    from .release import ROOT

    p.add_argument("submissions", type=Path,
                   help="folder of submissions: SUBMISSIONS/<student>/<NN_name>.ipynb or "
                        "SUBMISSIONS/<student>__<NN_name>.ipynb")
    p.add_argument("--out", type=Path, required=True, help="folder for grades.csv, grades.json, feedback/")
    p.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1,
                   help="exercises graded in parallel (default: the number of CPUs, %(default)s)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS",
                   help="wall-clock and CPU time per exercise (default: %(default)s)")
    p.add_argument("--memory", type=int, default=1024, metavar="MIB",
                   help="address space per exercise, NumPy's ~100 MiB included (default: %(default)s)")
    p.add_argument("--seed-file", type=Path, default=None, metavar="PATH",
                   help="a file holding the secret seed of the hidden inputs (default: $COURSE_GRADING_SEED). "
                        "Never on the command line, where every user of the machine can read it with ps")
    p.add_argument("--notebook-time", type=float, default=None, metavar="SECONDS",
                   help="time budget of one student's notebook, all its exercises together; past it the "
                        "remaining exercises time out (default: three times the time limit per exercise, 2 minimum)")
    p.add_argument("--allow-weak-sandbox", action="store_true",
                   help="grade even where the sandbox lacks protections it needs (namespaces, Landlock, "
                        "seccomp); recorded in grades.json. Without it, grade refuses and says what is missing")
    p.add_argument("--solutions", type=Path, default=ROOT / "solutions",
                   help="the instructor's solution notebooks, which define exercises and points")
    p.add_argument("--notebooks", nargs="+", default=(), metavar="NN",
                   help="grade only these notebooks, by number or name (default: every notebook in solutions/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on a Dask cluster: tls://host:8786 (or tcp:// on a private network), or local:N "
                        "for N local worker processes (docs/grading.md, \"Grading past one machine\")")
    from .grading import deadlines, written  # their options are defined beside their code

    deadlines.add_arguments(p)
    written.add_arguments(p)


def grade_command(args: argparse.Namespace) -> int:
    """``python -m course_utils grade``: read the seed, grade the submissions, write the reports.
    Returns the exit status: 0, 1 when an exercise could not be graded (regrade it), 2 when grading failed."""
    import math
    import os
    import time
    import warnings

    from .grading import SEED_ENV, GradingError, Limits, Options, deadlines, grade

    seed = None
    if args.seed_file is not None:
        try:
            seed = args.seed_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            print(f"grading failed: the seed file cannot be read ({e.strerror})", file=sys.stderr)
            return 2
        if not seed:
            print(f"grading failed: the seed file {args.seed_file} is empty", file=sys.stderr)
            return 2
    if not (seed or os.environ.get(SEED_ENV)):
        print(f"WARNING: no secret seed (--seed-file or ${SEED_ENV}): the hidden inputs are the public default "
              "ones. Fine for a trial run, not for real grades.", file=sys.stderr)
    limits = Limits(wall=args.time_limit, cpu=max(1, math.ceil(args.time_limit)), memory=args.memory << 20)
    options = Options(solutions=args.solutions, jobs=args.jobs, limits=limits, seed=seed,
                      notebooks=tuple(args.notebooks), progress=not args.no_progress,
                      allow_weak_sandbox=args.allow_weak_sandbox, notebook_time=args.notebook_time,
                      scheduler=args.scheduler, late=deadlines.from_arguments(args), written=args.written,
                      anonymise=args.anonymise)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = grade(args.submissions, args.out, options)
    except GradingError as e:
        print(f"grading failed: {e}", file=sys.stderr)
        return 2
    for message in results["warnings"]:
        print(f"WARNING: {message}", file=sys.stderr)
    students = results["students"]
    totals = [s["total"] for s in students]
    errors = [(s["student"], e["exercise"], e["reason"]) for s in students for e in s["exercises"]
              if e["status"] == "error"]
    mean = sum(totals) / len(totals) if totals else 0
    print(f"graded {len(students)} students in {time.perf_counter() - start:.0f} s: mean total {mean:.1f} / "
          f"{results['course']['possible']}")
    print(f"wrote {args.out / 'grades.csv'}, grades.json, histogram.png, class_report.md and .png, "
          "feedback/ (one file per student)")
    for student, exercise, reason in errors:
        print(f"ERROR (not the student's fault, regrade): {student} {exercise}: {reason}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
