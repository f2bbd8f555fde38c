"""A Gradescope autograder that runs the course's own grader: ``python -m course_utils gradescope-bundle``.

The bundle (a zip, uploaded as the assignment's autograder) holds, at its root:

- ``setup.sh``: run once by Gradescope when it builds the image; installs Python and the packages
  in ``course/requirements.txt`` into ``/autograder/venv`` (from ``wheels/`` alone when the bundle
  has one), and the course from ``course/``, the bundled source;
- ``run_autograder``: run per submission; runs this module, which copies the student's
  ``/autograder/submission/**/*.ipynb`` into a one-student submissions folder, grades it with
  ``python -m course_utils grade`` (the same sandboxed grader, same limits) and writes
  ``/autograder/results/results.json``: one test per exercise with its points and feedback;
- ``config.json``: the notebooks of the assignment, the limits, the tests' visibility, and
  whether to grade without the full sandbox (``allow_weak_sandbox``);
- ``seed.txt``: the secret seed of the hidden inputs, passed to the grader as ``--seed-file``
  (never on a command line); absent when the bundle was built without one;
- ``course/``: ``course_utils/``, ``solutions/`` and ``requirements.txt`` (what grading needs).

``AUTOGRADER_ROOT`` (default ``/autograder``) and ``AUTOGRADER_PYTHON`` (default the venv made by
setup.sh) let run_autograder run elsewhere, as the tests do. See docs/grading.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from ..release import ROOT
from . import deadlines, written
from .html_feedback import exercise_parts
from .report import fmt_points, plain

CONFIG, SEED_FILE = "config.json", "seed.txt"
STUDENT = "student"  # the one student of a Gradescope run
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
# Distributions of requirements.txt that grading imports; torch and sacrebleu only for PyTorch notebooks.
GRADING_PACKAGES = {"numpy", "matplotlib", "tqdm", "threadpoolctl", "nbformat"}
TORCH_PACKAGES = {"torch", "sacrebleu"}
SKIPPED_PARTS = {"__MACOSX", ".ipynb_checkpoints", "__pycache__"}

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu 22.04 or later).
# It installs the packages of course/requirements.txt into $ROOT/venv and the course from course/,
# the source bundled here (nothing of the course is downloaded). Offline: if the bundle has a
# wheels/ folder (gradescope-bundle --wheels DIR), pip installs from it alone (--no-index).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SRC="$ROOT/source"
if ! python3 -c "import ensurepip" 2>/dev/null && command -v apt-get >/dev/null; then
    apt-get install -y --no-install-recommends python3 python3-venv
fi
python3 -m venv "$ROOT/venv"
PIP=("$ROOT/venv/bin/python" -m pip install --disable-pip-version-check)
if [ -d "$SRC/wheels" ]; then
    PIP+=(--no-index --find-links "$SRC/wheels")
fi
"${PIP[@]}" -r "$SRC/course/requirements.txt"
# The course itself: a path entry in the venv (no build step, no download). The sandboxed children
# start Python with -S, so they never see it.
SITE=$("$ROOT/venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
echo "$SRC/course" > "$SITE/course_utils.pth"
"$ROOT/venv/bin/python" -c "import course_utils.grading; print('course_utils installed')"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission, in a fresh container. It grades the notebooks in
# $ROOT/submission with the course's sandboxed grader (python -m course_utils grade) and writes
# $ROOT/results/results.json. AUTOGRADER_ROOT and AUTOGRADER_PYTHON let it run elsewhere (tests).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PY="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
cd "$ROOT/source/course"
exec "$PY" -m course_utils.grading.gradescope "$ROOT"
"""


class BundleError(Exception):
    """The bundle cannot be built (unknown notebook, no requirements.txt, no wheels)."""


# --- building the bundle, on the instructor's machine ---------------------------------------------


def grading_requirements(requirements: Path, torch: bool) -> str:
    """The lines of the course's requirements.txt that grading needs, pins kept."""
    try:
        lines = requirements.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise BundleError(f"cannot read {requirements}: {e.strerror}") from None
    wanted = GRADING_PACKAGES | (TORCH_PACKAGES if torch else set())
    kept = [ln.strip() for ln in lines
            if (m := re.match(r"\s*([A-Za-z0-9_.\-]+)", ln)) and not ln.lstrip().startswith(("#", "-"))
            and m.group(1).lower().replace("_", "-") in wanted]
    return "# What grading needs, from the course's requirements.txt (made by gradescope-bundle).\n" + \
        "\n".join(kept) + "\n"


def assignment_config(solutions: Path, notebooks, settings: dict) -> tuple[dict, bool]:
    """config.json's contents, with the notebooks' full names; and whether any needs torch."""
    from ..check import EXERCISES
    from .grader import DEFAULT_SEED, make_plan
    from .submissions import CourseError, load_course

    try:
        course = load_course(solutions, EXERCISES)
        chosen = course.select(notebooks) if notebooks else course
    except (CourseError, OSError, ValueError) as e:
        raise BundleError(f"the course cannot be read from {solutions}: {e}") from None
    torch = any("torch" in make_plan(EXERCISES[e.name], DEFAULT_SEED).preload for e in chosen.exercises)
    visibility = settings.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise BundleError(f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
    config = {"notebooks": list(chosen.notebooks), "possible": chosen.possible,
              "time_limit": float(settings.get("time_limit", 10.0)), "memory": int(settings.get("memory", 1024)),
              "visibility": visibility, "allow_weak_sandbox": bool(settings.get("allow_weak_sandbox", False))}
    return config, torch


def _tree(folder: Path, prefix: str, pattern: str = "*") -> dict[str, tuple[bytes, int]]:
    files = {}
    for path in sorted(folder.rglob(pattern)):
        rel = path.relative_to(folder)
        if path.is_file() and not path.is_symlink() and not path.suffix == ".pyc" \
                and not any(p in SKIPPED_PARTS or p.startswith(".") for p in rel.parts):
            files[f"{prefix}/{rel.as_posix()}"] = (path.read_bytes(), 0o644)
    return files


def bundle_files(solutions: Path, notebooks, seed: str | None, settings: dict,
                 wheels: Path | None = None) -> dict[str, tuple[bytes, int]]:
    """Every file of the bundle: its path in the zip -> (bytes, permissions)."""
    config, torch = assignment_config(solutions, notebooks, settings)
    files = {"setup.sh": (SETUP_SH.encode(), 0o755), "run_autograder": (RUN_AUTOGRADER.encode(), 0o755),
             CONFIG: ((json.dumps(config, indent=1) + "\n").encode(), 0o644),
             "course/requirements.txt": (grading_requirements(ROOT / "requirements.txt", torch).encode(), 0o644)}
    if seed:
        files[SEED_FILE] = ((seed + "\n").encode(), 0o600)
    files.update(_tree(Path(__file__).resolve().parent.parent, "course/course_utils"))
    files.update(_tree(Path(solutions), "course/solutions", "*.ipynb"))
    if wheels is not None:
        found = _tree(Path(wheels), "wheels", "*.whl")
        if not found:
            raise BundleError(f"no .whl files in {wheels} (make them with `pip download -r requirements.txt -d DIR`)")
        files.update(found)
    return files


def write_zip(path: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """The bundle with fixed dates and order, so that the same course gives the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            data, mode = files[name]
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``python -m course_utils gradescope-bundle``."""
    p.add_argument("out", type=Path, help="the zip to write (upload it as the assignment's autograder)")
    p.add_argument("--notebooks", nargs="+", default=(), metavar="NN",
                   help="the notebooks of this assignment, by number or name (default: every notebook)")
    p.add_argument("--solutions", type=Path, default=ROOT / "solutions", help="the instructor's solution notebooks")
    p.add_argument("--seed-file", type=Path, default=None, metavar="PATH",
                   help="the secret seed, copied into the bundle as seed.txt (default: $COURSE_GRADING_SEED)")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS", help="per exercise (default: 10)")
    p.add_argument("--memory", type=int, default=1024, metavar="MIB", help="per exercise (default: 1024)")
    p.add_argument("--visibility", choices=VISIBILITIES, default="visible",
                   help="when students see each exercise's result on Gradescope (default: visible)")
    p.add_argument("--allow-weak-sandbox", action="store_true",
                   help="grade even where Gradescope's container lacks the sandbox's namespaces, Landlock or "
                        "seccomp (see docs/grading.md for what that exposes)")
    p.add_argument("--wheels", type=Path, default=None, metavar="DIR",
                   help="bundle these .whl files; setup.sh then installs offline from them")


def bundle_command(args: argparse.Namespace) -> int:
    """Run ``gradescope-bundle``: 0 when written, 2 when not."""
    from .grader import SEED_ENV

    try:
        seed = args.seed_file.read_text(encoding="utf-8").strip() if args.seed_file else os.environ.get(SEED_ENV)
        settings = {"time_limit": args.time_limit, "memory": args.memory, "visibility": args.visibility,
                    "allow_weak_sandbox": args.allow_weak_sandbox}
        files = bundle_files(args.solutions, args.notebooks, seed, settings, args.wheels)
        write_zip(args.out, files)
    except (BundleError, OSError) as e:
        print(f"gradescope-bundle failed: {e}", file=sys.stderr)
        return 2
    if not seed:
        print(f"WARNING: no secret seed (--seed-file or ${SEED_ENV}): the bundle grades on the public default "
              "inputs. Fine for a trial, not for real grades.", file=sys.stderr)
    config = json.loads(files[CONFIG][0])
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): notebooks {', '.join(config['notebooks'])}, "
          f"{config['possible']} points, {'a secret seed' if seed else 'no seed'}"
          f"{', weak sandbox allowed' if config['allow_weak_sandbox'] else ''}")
    return 0


# --- running it, in Gradescope's container ----------------------------------------------------------


def collect_submission(submission: Path, dest: Path) -> list[str]:
    """Copy every notebook the student uploaded (in subfolders too) into one student's folder of the
    grader's layout; two files of one name keep both (the grader grades the exact name and notes the
    other). Hidden files, links, checkpoints and ``__MACOSX`` are skipped."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(submission.rglob("*.ipynb"), key=lambda p: (len(p.parts), str(p))):
        rel = path.relative_to(submission)
        if path.is_symlink() or not path.is_file() or any(p in SKIPPED_PARTS or p.startswith(".") for p in rel.parts):
            continue
        name, n = path.name, 2
        while (dest / name).exists():
            name, n = f"{path.stem} ({n}){path.suffix}", n + 1
        shutil.copyfile(path, dest / name)
        copied.append(rel.as_posix())
    return copied


def grade_args(source: Path, submissions: Path, out: Path, config: dict) -> list[str]:
    """The grader's command line: the seed goes as a file, never as an argument (``ps`` shows those)."""
    cmd = [sys.executable, "-m", "course_utils", "grade", str(submissions), "--out", str(out), "--no-progress",
           "--time-limit", repr(float(config["time_limit"])), "--memory", str(int(config["memory"])),
           "--solutions", str(source / "course" / "solutions")]
    if config.get("notebooks"):
        cmd += ["--notebooks", *config["notebooks"]]
    if (source / SEED_FILE).is_file():
        cmd += ["--seed-file", str(source / SEED_FILE)]
    if config.get("allow_weak_sandbox"):
        cmd.append("--allow-weak-sandbox")
    return cmd


def _test(e: dict, visibility: str) -> dict:
    parts = exercise_parts(e)
    lines = [parts["reason"], *(f"note: {n}" for n in parts["notes"]), *parts["details"]]
    if parts["hint"]:
        lines.append(f"hint: {parts['hint']}")
    return {"name": f"{e['number']} {e['exercise']}", "number": e["number"], "score": e["points"],
            "max_score": e["possible"], "status": "passed" if e["status"] == "passed" else "failed",
            "output": "\n".join(line for line in lines if line), "output_format": "text", "name_format": "text",
            "tags": [e["notebook"]], "visibility": visibility}


def results_json(results: dict, seconds: float, visibility: str = "visible") -> dict:
    """Gradescope's results.json for the one student of ``results`` (grades.json's dict): a test per
    exercise with its points and feedback, and the total as the score."""
    students = results["students"]
    if not students:  # no notebook at all in the submission
        exercises = [{"notebook": nb["name"], "number": ex["number"], "exercise": ex["name"], "points": 0,
                      "possible": ex["points"], "status": "not submitted", "details": [], "hint": "", "notes": [],
                      "reason": f"not submitted: no notebook {nb['name']}.ipynb was found in the submission"}
                     for nb in results["course"]["notebooks"] for ex in nb["exercises"]]
        student = {"total": 0, "possible": results["course"]["possible"], "problems": [], "notes": [],
                   "exercises": exercises}
    else:
        student = students[0]
    summary = [f"Total: {fmt_points(student['total'])} / {fmt_points(student['possible'])} points."]
    summary += written.total_notes(student) + deadlines.total_notes(student)
    summary += [f"Not graded: {plain(p)}" for p in student["problems"]] + [plain(n) for n in student["notes"]]
    for nb in results["course"]["notebooks"]:  # when it was handed in; written answers (not tests: marked by hand)
        said = deadlines.feedback_lines(student, nb["name"])
        said += [line for label, text, below in written.feedback_items(student, nb["name"])
                 for line in [f"{label} {text}", *below]]
        summary += [f"{nb['name']}:", *(f"  {plain(line)}" for line in said)] if said else []
    summary.append("Every exercise was run on hidden inputs of the same kinds as the self-check's, in a fresh "
                   "process of its own; points are all or nothing per exercise.")
    return {"score": student["total"], "execution_time": max(0, round(seconds)), "output": "\n".join(summary),
            "output_format": "text", "test_output_format": "text", "test_name_format": "text",
            "visibility": visibility, "stdout_visibility": "hidden",
            "extra_data": {"default_seed": bool(results["settings"].get("default_seed")),
                           "weak_sandbox": bool(results.get("sandbox", {}).get("weak"))},
            "tests": [_test(e, visibility) for e in student["exercises"]]}


def run(root: Path) -> int:
    """What run_autograder does: grade the submission in ``root``, write ``root/results/results.json``.
    0 when written; 1 when the grader failed on some exercise (not the student's fault: nothing is
    written, so that Gradescope reports a failure to regrade rather than a score); 2 when it could not
    grade at all (the refusal is in the output, which the instructor sees)."""
    started = time.monotonic()
    source = root / "source"
    config = json.loads((source / CONFIG).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="autograder-") as tmp:
        subs, out = Path(tmp) / "submissions", Path(tmp) / "grades"
        copied = collect_submission(root / "submission", subs / STUDENT)
        print(f"notebooks in the submission: {', '.join(copied) or 'none'}", flush=True)
        code = subprocess.run(grade_args(source, subs, out, config), cwd=source / "course", check=False).returncode
        if code not in (0, 1) or not (out / "grades.json").is_file():
            print(f"the grader could not grade this submission (exit status {code}): see its message above")
            return 2
        results = json.loads((out / "grades.json").read_text(encoding="utf-8"))
    if code == 1:
        print("ERROR: the grader failed on some exercise (status `error`, not the student's fault): regrade")
        return 1
    report = results_json(results, time.monotonic() - started, config.get("visibility", "visible"))
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                                    encoding="utf-8")
    print(f"score: {fmt_points(report['score'])} / {fmt_points(results['course']['possible'])}")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))))
