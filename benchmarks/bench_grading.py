"""How fast the grader grades a class: a synthetic class of students x notebooks 01-02.

    .venv/bin/python benchmarks/bench_grading.py                  # 40 students, 3 runs
    .venv/bin/python benchmarks/bench_grading.py --students 10 --runs 1 --jobs 2

Each student hands in notebooks 01 and 02 (seven exercises, so seven sandboxed child
processes per student). The class is drawn from ``--seed``: a quarter of the students (rounded)
solve everything, a quarter hand in the untouched hand-outs, a quarter solve the first few
exercises of each notebook (at least one, never all) and leave the rest as stubs, and a quarter
make one mistake of the checks' catalogue in each notebook (one of MISTAKES, drawn per student
and notebook) and solve every other exercise. No submission hangs, so the figure is the
grader's own throughput; every hanging exercise adds up to the time limit (10 s by default) on
one of the parallel jobs. Prints submissions (one notebook of one student) per minute and
seconds per submission, the median over the runs, then the class report: how many of the
mistakes made were diagnosed, and what the class got wrong (``--keep DIR`` keeps the last
run's grades, class_report.png among them).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import grading_corpus as corpus

from course_utils.grading import Options, grade
from course_utils.grading.class_report import markdown

NOTEBOOKS = ["01_rnn_forward", "02_bptt"]
GROUPS = ("solved", "hand-out", "partial", "mistake")  # a quarter of the class each
# The mistakes of the "mistake" group, per notebook: (exercise, the words its catalogue hint starts
# with, a body for its stub that makes that mistake). make_class checks each against the catalogue.
MISTAKES = {
    "01_rnn_forward": [
        ("rnn_step_forward", "the bias b is missing",
         "next_h = np.tanh(x @ Wx + prev_h @ Wh)\ncache = (x, prev_h, Wx, Wh, next_h)"),
        ("rnn_forward", "h[:, t] is computed from h0 at every step",
         "states, cache = [], []\nfor t in range(x.shape[1]):\n"
         "    next_h, step_cache = rnn_step_forward(x[:, t], h0, Wx, Wh, b)\n"
         "    states.append(next_h)\n    cache.append(step_cache)\nh = np.stack(states, axis=1)"),
        ("temporal_affine_forward", "the bias b is missing", "out = x @ W\ncache = (x, W)"),
    ],
    "02_bptt": [
        ("numerical_gradient", "that is the forward difference",
         "x = x.copy()\ngrad = np.zeros_like(x)\nL = np.sum(f(x) * dout)\nfor i in np.ndindex(x.shape):\n"
         "    old = x[i]\n    x[i] = old + h\n    grad[i] = (np.sum(f(x) * dout) - L) / h\n    x[i] = old"),
        ("rnn_step_backward", "the tanh derivative is missing",
         "da = dnext_h\ndx, dprev_h = da @ Wx.T, da @ Wh.T\ndWx, dWh, db = x.T @ da, prev_h.T @ da, da.sum(axis=0)"),
        ("rnn_backward", "each step only gets dh[:, t]",
         "T = dh.shape[1]\ndxs = [None] * T\ndWx, dWh, db = 0, 0, 0\nfor t in reversed(range(T)):\n"
         "    dxs[t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t], cache[t])\n"
         "    dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t\ndx, dh0 = np.stack(dxs, axis=1), dprev_h"),
        ("temporal_affine_backward", "db is summed over the batch only",
         "H, M = W.shape\ndx = dout @ W.T\ndW = x.reshape(-1, H).T @ dout.reshape(-1, M)\ndb = dout.sum(axis=0)"),
    ],
}


def catalogue_hint(exercise: str, words: str) -> str:
    """The hint of the one catalogue Mistake of ``exercise`` that starts with ``words``."""
    from course_utils.check import EXERCISES

    hints = [m.hint for m in EXERCISES[exercise].mistakes if m.hint.startswith(words)]
    if len(hints) != 1:
        raise ValueError(f"{exercise} has {len(hints)} catalogue mistakes starting with {words!r}, not one")
    return hints[0]


def make_class(subs: Path, students: int, seed: int = 0) -> dict[str, dict[str, dict]]:
    """Write the class under ``subs`` (``subs/<student>/<notebook>.ipynb``) and return what each student
    handed in: ``{student: {notebook: {"group", "solved": [exercises], "mistake": {"exercise", "hint"} or
    None}}}``. The groups are a quarter of the class each (rounded), assigned by a permutation drawn from
    ``seed``, as are the partial students' numbers of exercises and the mistakes made."""
    import numpy as np

    rng = np.random.default_rng(seed)
    pairs = {n: (corpus.load(ROOT / "notebooks" / f"{n}.ipynb"), corpus.load(ROOT / "solutions" / f"{n}.ipynb"))
             for n in NOTEBOOKS}
    group_of = {int(i): GROUPS[rank * len(GROUPS) // students] for rank, i in enumerate(rng.permutation(students))}
    manifest: dict[str, dict[str, dict]] = {}
    for i in range(students):
        student, group = f"student{i:03d}", group_of[i]
        for n, (hand_out, solution) in pairs.items():
            names = [corpus.exercise_of(c) for c in solution["cells"] if corpus.exercise_of(c)]
            solved, mistake = [], None
            if group == "solved":
                solved = names
            elif group == "partial":
                solved = names[: int(rng.integers(1, len(names)))]
            elif group == "mistake":
                exercise, words, body = MISTAKES[n][int(rng.integers(len(MISTAKES[n])))]
                solved = [name for name in names if name != exercise]
                mistake = {"exercise": exercise, "hint": catalogue_hint(exercise, words)}
            nb = corpus.solved(hand_out, solution, set(solved))
            if mistake:
                nb = corpus.replace_stub(nb, mistake["exercise"], body)
            corpus.write(nb, subs / student / f"{n}.ipynb")
            manifest.setdefault(student, {})[n] = {"group": group, "solved": solved, "mistake": mistake}
    return manifest


def diagnosed(manifest: dict, results: dict) -> tuple[int, int]:
    """(mistakes made, of which the grader diagnosed as made): the grade's ``mistake`` is the catalogue hint."""
    grades = {(s["student"], e["exercise"]): e for s in results["students"] for e in s["exercises"]}
    made = [(student, nb["mistake"]) for student, nbs in manifest.items() for nb in nbs.values() if nb["mistake"]]
    found = sum(grades[(student, m["exercise"])]["mistake"] == m["hint"] for student, m in made)
    return len(made), found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0, help="draws the class (groups, mistakes)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="copy the last run's grades (grades.json, class_report.md and .png, ...) to DIR")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        solutions = tmp / "solutions"
        solutions.mkdir()
        for n in NOTEBOOKS:
            (solutions / f"{n}.ipynb").write_bytes((ROOT / "solutions" / f"{n}.ipynb").read_bytes())
        manifest = make_class(tmp / "subs", args.students, args.seed)
        submissions = args.students * len(NOTEBOOKS)
        times, cpu = [], []
        for run in range(args.runs):
            start = time.perf_counter()
            before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                results = grade(tmp / "subs", tmp / f"out{run}",
                                Options(solutions=solutions, jobs=args.jobs, seed="benchmark", progress=False))
            times.append(time.perf_counter() - start)
            after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
            cpu.append(sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before)))
            totals = [s["total"] for s in results["students"]]
            print(f"run {run + 1}: {times[-1]:.1f} s, mean total {statistics.mean(totals):.1f} / "
                  f"{results['course']['possible']}", flush=True)
        if args.keep is not None:
            shutil.copytree(tmp / f"out{args.runs - 1}", args.keep, dirs_exist_ok=True)
    exercises = sum(len(nb["exercises"]) for nb in results["course"]["notebooks"])
    median = statistics.median(times)
    print(f"{args.students} students x {len(NOTEBOOKS)} notebooks = {submissions} submissions, "
          f"{args.students * exercises} sandboxed exercises, {args.jobs} jobs on {os.cpu_count()} CPUs")
    print(f"median of {len(times)} runs: {median:.1f} s = {submissions / median * 60:.0f} submissions per minute, "
          f"{median / submissions:.2f} s per submission ({median / args.students:.2f} s per student)")
    cpu_each = statistics.median(cpu) / submissions
    cores = os.cpu_count() or 1
    print(f"CPU time (grader and children): {cpu_each:.2f} s per submission; on {cores} otherwise idle "
          f"cores that is about {60 * cores / cpu_each:.0f} submissions per minute")
    try:
        load = os.getloadavg()
        print(f"load average before the last run ended: {load[0]:.1f} (other work on the machine slows this down)")
    except OSError:
        pass
    made, found = diagnosed(manifest, results)
    print(f"mistakes of the catalogue made: {made}; diagnosed by the grader as that mistake: {found}\n")
    print(markdown(results["class_report"]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
