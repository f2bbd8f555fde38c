"""How fast the grader grades a class: a synthetic class of students x notebooks 01-02.

    .venv/bin/python benchmarks/bench_grading.py                  # 40 students, 3 runs
    .venv/bin/python benchmarks/bench_grading.py --students 10 --runs 1 --jobs 2

Each student hands in notebooks 01 and 02 (seven exercises, so seven sandboxed child
processes per student): a quarter solve everything, a quarter nothing, the rest some
exercises, a few with a known mistake. No submission hangs, so the figure is the grader's
own throughput; every hanging exercise adds up to the time limit (10 s by default) on
one of the parallel jobs. Prints submissions (one notebook of one student) per minute
and seconds per submission, the median over the runs.
"""
from __future__ import annotations

import argparse
import os
import resource
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

NOTEBOOKS = ["01_rnn_forward", "02_bptt"]
MISTAKES = {  # exercise -> a wrong body for its stub
    "rnn_step_forward": "next_h = np.tanh(x @ Wx + prev_h @ Wh)\ncache = None\nreturn next_h, cache",
    "temporal_affine_backward": "return dout @ W, x.reshape(-1, W.shape[0]).T @ dout.reshape(-1, W.shape[1]), dout.sum(axis=0)",
}


def make_class(subs: Path, students: int) -> None:
    pairs = {n: (corpus.load(ROOT / "notebooks" / f"{n}.ipynb"), corpus.load(ROOT / "solutions" / f"{n}.ipynb"))
             for n in NOTEBOOKS}
    for i in range(students):
        for n, (student, solution) in pairs.items():
            names = [corpus.exercise_of(c) for c in solution["cells"] if corpus.exercise_of(c)]
            kind = i % 4
            if kind == 0:
                nb = corpus.solved(student, solution)
            elif kind == 1:
                nb = student
            else:
                nb = corpus.solved(student, solution, set(names[: 1 + i % len(names)]))
                for name, body in MISTAKES.items():
                    if kind == 3 and name in names and name not in names[: 1 + i % len(names)]:
                        nb = corpus.replace_stub(nb, name, body)
            corpus.write(nb, subs / f"student{i:03d}" / f"{n}.ipynb")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        solutions = tmp / "solutions"
        solutions.mkdir()
        for n in NOTEBOOKS:
            (solutions / f"{n}.ipynb").write_bytes((ROOT / "solutions" / f"{n}.ipynb").read_bytes())
        make_class(tmp / "subs", args.students)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
