"""Grade a class: every submitted notebook, every exercise, each in its own sandboxed child.

The trusted side (this process) draws the hidden inputs from the secret seed, sends them to
the child as plain data, reads back plain arrays, and judges them with the same exercise
definitions as the learners' self-checks (``course_utils.check.EXERCISES``). One child per
student and exercise, so that a crash, a hang or a memory bomb costs only that exercise.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import re
import signal
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..release import ROOT
from . import sandbox
from .sandbox import ChildResult, Limits
from .submissions import (
    Course,
    CourseError,
    CourseExercise,
    Submission,
    assign,
    definitions_of,
    discover,
    file_sha256,
    identify,
    load_course,
    markers_in,
    names_used_in_definitions,
    read_submission,
    suspicious_code,
)

SCHEMA = "course_utils.grading/1"
DEFAULT_SEED = "course_utils: the default grading seed, known to anyone with the course code"
SEED_ENV = "COURSE_GRADING_SEED"
# The protections a child must show before it runs learner code, when the probe found them.
REQUIRED = ("namespaces", "landlock", "seccomp", "no_new_privs", "capabilities", "RLIMIT_AS", "RLIMIT_CPU",
            "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE", "pid_max", "tmpfs")
# Numbers in text from the child: decimals, and integers of two digits or more (token ids,
# lengths); the shapes of the checks' small inputs keep their single digits.
FLOAT_RE = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+|\d{2,}")


# Without these, student code could reach the network, other processes or the files of the
# machine: grading refuses unless told otherwise (Options.allow_weak_sandbox).
ESSENTIAL = ("namespaces", "landlock", "seccomp", "no_new_privs", "RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE")
HOW_TO = {
    "namespaces": ("unprivileged user namespaces are off. Debian: `sudo sysctl -w kernel.unprivileged_userns_clone=1`; "
                   "Ubuntu 23.10 and later (AppArmor): `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, "
                   "or an AppArmor profile that allows `userns` for this Python; or run the grader as root in a "
                   "container or virtual machine of its own"),
    "landlock": ("Landlock needs Linux 5.13 or later with Landlock among the security modules "
                 "(`cat /sys/kernel/security/lsm` lists `landlock`; else add `lsm=...,landlock` to the kernel command line)"),
    "seccomp": "seccomp filters need Linux with CONFIG_SECCOMP_FILTER (every mainstream distribution has it)",
}


def refusal(problems: list[str], missing: list[str]) -> str:
    """The GradingError text that refuses to grade: the problems, how to get each missing protection,
    and how to grade with less."""
    lines = ["refusing to grade: the sandbox that runs student code lacks protections it needs:"]
    lines += [f"  - {p}" for p in problems]
    for name in missing:
        if name in HOW_TO:
            lines.append(f"  how to get {name}: {HOW_TO[name]}.")
    lines.append("  To grade with less (for a trial, or code you trust), pass --allow-weak-sandbox; "
                 "grades.json then records what was missing. docs/grading.md says what each protection is for.")
    return "\n".join(lines)


class GradingError(Exception):
    """Grading cannot start (no course, no working sandbox, an output folder in the way)."""


@dataclass
class Options:
    """The options of one grading run (``python -m course_utils grade`` sets them from its arguments)."""

    solutions: Path = ROOT / "solutions"
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    limits: Limits = field(default_factory=Limits)
    seed: str | None = None  # None: $COURSE_GRADING_SEED, else the (public) default, with a warning
    progress: bool = True
    tmp_root: str | None = None  # where the children's job folders go (default: the system's)
    notebooks: tuple[str, ...] = ()  # the notebooks of this assignment ("01" or "01_rnn_forward"); () all
    skip_protections: tuple[str, ...] = ()  # for tests only: "namespaces", "landlock", "seccomp", ...
    allow_weak_sandbox: bool = False  # grade even without the protections in ESSENTIAL (recorded)
    notebook_time: float | None = None  # seconds for all exercises of one student's notebook together
    scheduler: str | None = None  # grade on a Dask cluster: "tcp://host:8786", "tls://...", "local:N" (distributed.py)
    late: object = None  # deadlines.Deadlines: due dates and late penalties; None: no deadline
    written: Path | None = None  # where the instructor's marks of written answers are (default: OUT/written)
    anonymise: bool = False  # written answers' review files name students by an anonymous id


@dataclass
class Grade:
    """One exercise of one student."""

    notebook: str
    number: str
    exercise: str
    possible: int
    points: int = 0
    status: str = "missing"  # passed, wrong, not attempted, timeout, out of memory, output limit,
    #                          crashed, missing, duplicated, not submitted, unreadable, error
    reason: str = ""
    details: list[str] = field(default_factory=list)
    hint: str = ""
    mistake: str = ""  # the hint of the catalogue Mistake that explained the output, if one did
    notes: list[str] = field(default_factory=list)
    log: str = ""  # the sandbox's own errors, for the instructor ("error" only); not in feedback


def exercise_rng(seed: str, name: str) -> np.random.Generator:
    """The generator of one exercise's hidden inputs: the same for every student."""
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def redact(text: str) -> str:
    """Mask decimal numbers in text that came from the learner's code (exception messages), so
    that feedback cannot carry the hidden inputs' values; and keep it on one line."""
    return " ".join(FLOAT_RE.sub("…", text).split())


# --- plans: the hidden inputs of every exercise, encoded once ----------------------------------


@dataclass
class Plan:
    """One exercise's hidden cases, drawn once per run: the cases, the job's JSON-ready plans, their
    arrays, and the modules the child loads first."""

    exercise: object  # course_utils.check's Exercise
    cases: list
    job_cases: list  # [{"convention", "params"}], JSON-ready
    arrays: dict[str, np.ndarray]
    preload: tuple[str, ...]


def make_plan(ex, seed: str) -> Plan:
    """The plan of exercise ``ex`` under ``seed``: its cases, each plan encoded for the child."""
    cases = ex.all_cases(exercise_rng(seed, ex.name))
    arrays: dict[str, np.ndarray] = {}
    job_cases, preload = [], ()
    for case in cases:
        convention, params = ex.plan_of(case)
        job_cases.append({"convention": convention, "params": sandbox.encode(params, arrays)})
        if convention.startswith("torch"):
            preload = ("torch",)
    return Plan(ex, cases, job_cases, arrays, preload)


# --- judging one child's results -----------------------------------------------------------------


def from_verdict(grade: Grade, verdict) -> Grade:
    """``grade`` with the status, reason, details, hint and mistake of a check's Verdict."""
    grade.status = verdict.status
    first = verdict.lines[0] if verdict.lines else verdict.status
    first = re.sub(rf"^\W*\s*{re.escape(verdict.exercise)}:\s*", "", first).rstrip(".")
    grade.reason = f"{verdict.status}: {first}"
    grade.details = list(verdict.lines)
    grade.hint = verdict.hint
    grade.mistake = verdict.mistake
    return grade


def signal_name(number: int) -> str:
    """A signal's name ("SIGKILL"), or "signal N" for a number Python does not know."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def judge(grade: Grade, plan: Plan, child: ChildResult, limits: Limits, cells_of: dict[str, list[int]],
          given: frozenset = frozenset(), lines: frozenset | None = None) -> Grade:
    """Turn what one child reported into a grade; anything malformed is a crash, never a pass."""
    outer, result = child.outer, child.result
    if child.killed_by_parent or (outer or {}).get("wall_timeout"):
        grade.status, grade.reason = "timeout", (
            f"timeout: stopped after {limits.wall:.3g} s (wall clock): an endless loop, or waiting forever?")
        return grade
    if outer is None or not isinstance(outer, dict):
        grade.status, grade.reason, grade.log = "error", "error: the sandbox gave no report", child.log
        return grade
    code = outer.get("exit_code")
    if not outer.get("learner_started"):
        refused = (result or {}).get("refused") if isinstance(result, dict) else None
        grade.status = "error"
        grade.reason = f"error: {refused or f'the sandbox failed before running any code (exit code {code})'}"
        grade.log = child.log
        return grade
    if child.problem:
        grade.status, grade.reason = "crashed", f"crashed: {child.problem}"
        return grade
    if result is None:
        if isinstance(code, int) and code < 0:
            sig = -code
            seconds = outer.get("seconds", 0)
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and isinstance(seconds, (int, float))
                                         and seconds >= limits.cpu):
                grade.status, grade.reason = "timeout", f"timeout: more than {limits.cpu} s of CPU time"
            elif sig == signal.SIGSEGV:
                grade.status, grade.reason = "crashed", (
                    "crashed: segmentation fault (SIGSEGV), for example in C code called through ctypes")
            elif sig == getattr(signal, "SIGXFSZ", -1):
                grade.status, grade.reason = "crashed", (
                    f"crashed: wrote a file larger than {limits.file_size >> 20} MiB (SIGXFSZ)")
            else:
                grade.status, grade.reason = "crashed", f"crashed: the process was killed by {signal_name(sig)}"
        else:
            grade.status, grade.reason = "crashed", (
                f"crashed: the process exited with code {code} before returning (os._exit?)")
        return grade
    try:
        return judge_result(grade, plan, child, limits, cells_of, given, lines)
    except (sandbox.Malformed, KeyError, TypeError, AttributeError, ValueError, IndexError) as e:
        # Everything judge_result reads came from the child: a result it cannot read is the
        # child's doing (a forged or truncated report), never the grader's failure.
        what = redact(str(e))[:200] if isinstance(e, sandbox.Malformed) else f"{type(e).__name__} while reading it"
        grade.status, grade.reason = "crashed", f"crashed: the grading process got a malformed result: {what}"
        grade.details, grade.hint, grade.mistake, grade.points = [], "", "", 0
        return grade


def needed_given(given: dict[str, str], funcs, cells) -> dict[str, str]:
    """The reference functions a notebook imports that this exercise can need: those it calls
    the learner's code with, those the learner's functions and classes use, and what those use
    in turn. A child never holds the others (notebook 06's child has no `lstm_backward`)."""
    import ast

    wanted = (set(funcs) | names_used_in_definitions(cells)) & set(given)
    todo = list(wanted)
    while todo:
        try:
            tree = ast.parse(given[todo.pop()])
        except SyntaxError:
            continue
        for name in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} & set(given) - wanted:
            wanted.add(name)
            todo.append(name)
    return {name: src for name, src in given.items() if name in wanted}


def verified_line(where: str, lines: frozenset | None) -> str:
    """The child's "in f: <line>", kept only when <line> is really a line of the code it was given:
    the child could write anything there (the hidden inputs, say)."""
    func, _, line = where.partition(": ")
    if lines is None or not line.strip() or line.strip() not in lines or not func.startswith("in "):
        return ""
    return f"in {redact(func[3:])[:60]}: {line.strip()}"


def skipped_notes(errors: list, name: str) -> list[str]:
    """Notes for the statements that would have defined ``name`` but were skipped in grading."""
    notes = []
    for err in errors:
        if isinstance(err, dict) and isinstance(err.get("names"), list) and name in err["names"]:
            why = ("it ran longer than the time a statement may take in grading (training or a long "
                   "loop belongs in a function)" if err.get("type") == "budget"
                   else f"it raised {redact(str(err.get('type')))[:50]}")
            notes.append(f"cell {int(err.get('cell', 0))}, line {int(err.get('line', 0))} would define `{name}`, "
                         f"but it was skipped in grading: {why}")
    return notes[:3]


def _expect(value, kind, what):
    if not isinstance(value, kind):
        raise sandbox.Malformed(f"{what} is not a {getattr(kind, '__name__', kind)}")
    return value


def judge_result(grade: Grade, plan: Plan, child: ChildResult, limits: Limits,
                 cells_of: dict[str, list[int]], given: frozenset = frozenset(),
                 lines: frozenset | None = None) -> Grade:
    """The grade of one exercise from what its child sent back: the learner's functions must be
    defined, then every case is judged with the exercise's own verdicts, as a self-check would."""
    result = child.result
    if result.get("output_limit"):
        grade.status, grade.reason = "output limit", (
            f"output limit: the code printed more than {limits.output:,} characters")
        return grade
    errors = _expect(result.get("definition_errors", []), list, "definition_errors")
    if judge_definitions(grade, plan, result, errors, cells_of):
        return grade
    entries = _expect(result.get("cases"), list, "cases")
    for i, case in enumerate(plan.cases):
        if i >= len(entries):
            raise sandbox.Malformed("results stop before the last case")
        if judge_case(grade, plan, copy.deepcopy(case), _expect(entries[i], dict, "a case result"), child.arrays,
                      limits, errors, given, lines):
            return grade
    grade.status, grade.points = "passed", grade.possible
    grade.reason = f"passed: correct on {plan.exercise.counted(plan.cases)} cases"
    grade.details = []
    return grade


def judge_definitions(grade: Grade, plan: Plan, result: dict, errors: list, cells_of: dict[str, list[int]]) -> bool:
    """Whether a function the exercise needs is undefined (a syntax error, a crash while defining
    it, or simply missing); if so, ``grade`` says which and why."""
    ex = plan.exercise
    syntax = _expect(result.get("syntax_errors", {}), dict, "syntax_errors")
    undefined = _expect(result.get("undefined", []), list, "undefined")
    for name in undefined:
        if name not in ex.funcs:
            raise sandbox.Malformed("unknown function in `undefined`")
        cells = cells_of.get(name, [])
        for number in cells:
            err = syntax.get(str(number))
            if isinstance(err, dict):
                grade.status = "crashed"
                grade.reason = (f"crashed: {str(err.get('type'))[:50]}: {redact(str(err.get('message')))[:200]} "
                                f"(cell {number}, line {err.get('line')})")
                return True
        for err in errors:
            if isinstance(err, dict) and err.get("cell") in cells:
                grade.status = "crashed"
                grade.reason = (f"crashed: defining {name} raised {str(err.get('type'))[:50]}: "
                                f"{redact(str(err.get('message')))[:200]} (cell {err.get('cell')}, line {err.get('line')})")
                return True
        grade.status = "missing"
        grade.notes += skipped_notes(errors, name)
        if name == ex.name:
            where = f" (its marker is in cell {cells[0]})" if cells else ""
            grade.reason = f"missing: the notebook defines no function `{name}`{where}"
        else:
            grade.reason = f"missing: `{name}`, which {ex.name} needs, is not defined in the notebook"
        return True
    return False


def judge_case(grade: Grade, plan: Plan, case, entry: dict, arrays: dict, limits: Limits, errors: list,
               given: frozenset, lines: frozenset | None) -> bool:
    """Judge one case's outcome; True when it decides the grade (a wrong answer, a stub, a crash)."""
    ex, status = plan.exercise, entry.get("status")
    if status == "returned":
        keys = _expect(entry.get("outputs"), dict, "outputs")
        modified = [str(m) for m in _expect(entry.get("modified", []), list, "modified")]
        outputs = {}
        for key, name in keys.items():
            if key not in arrays or not isinstance(name, str):
                raise sandbox.Malformed(f"output {key!r} is missing from the archive")
            outputs[name] = arrays[key]
        verdict = ex.verdict_of(case, outputs, modified)
        if verdict is not None:
            from_verdict(grade, verdict)
        return verdict is not None
    if status == "not attempted":
        from_verdict(grade, ex.not_attempted(str(entry.get("message", ""))[:300]))
        stubs = [n for n in ex.funcs if n not in given] or [ex.name]
        grade.reason = f"not attempted: {' or '.join(stubs)} still raises NotImplementedError"
    elif status == "return error":
        from_verdict(grade, ex.wrong_form(case, redact(str(entry.get("message", "")))[:300]))
    elif status == "raised":
        judge_raised(grade, ex, case, entry, limits, errors, lines)
    else:
        raise sandbox.Malformed(f"unknown case status {status!r}")
    return True


def judge_raised(grade: Grade, ex, case, entry: dict, limits: Limits, errors: list, lines: frozenset | None) -> None:
    """The learner's code raised on a case: an output flood, a memory error, or a crash with its hint."""
    kind = str(entry.get("type", "Exception"))[:100]
    if entry.get("output_limit"):
        grade.status, grade.reason = "output limit", (
            f"output limit: the code printed more than {limits.output:,} characters")
        return
    if entry.get("memory"):
        grade.status = "out of memory"
        grade.reason = f"out of memory: more than {limits.memory >> 20} MiB ({kind}), on {case.label}"
        return
    message = redact(f"{kind}: {entry.get('message', '')}".strip())
    from_verdict(grade, ex.raised(case, message, verified_line(str(entry.get("where", ""))[:300], lines)))
    missing = re.search(r"name '(\w+)' is not defined", message) if kind == "NameError" else None
    if missing:
        grade.notes += skipped_notes(errors, missing[1])
    grade.status = "crashed"
    grade.reason = f"crashed: {message[:200]}"


# --- the class ---------------------------------------------------------------------------------------


@dataclass
class Work:
    """One (submission, exercise) pair to grade in a child."""

    sub: Submission
    grade: Grade
    job: dict
    plan: Plan
    cells_of: dict[str, list[int]]
    given: frozenset
    lines: frozenset = frozenset()  # every stripped line of the code the child was given


class Grader:
    """Grades submissions: draws the hidden inputs, checks the sandbox, runs each exercise in a child
    process and judges what it returns with the checks' own methods."""

    def __init__(self, options: Options, course: Course | None = None):
        """The course is read from ``options.solutions``, unless given (a worker of a distributed
        run gets it from the grading machine as plain data)."""
        from ..check import EXERCISES

        self.options = options
        self.registry = EXERCISES
        try:
            self.full_course: Course = course or load_course(options.solutions, EXERCISES)
            self.course = self.full_course.select(options.notebooks) if options.notebooks else self.full_course
        except (CourseError, OSError, ValueError) as e:
            raise GradingError(f"the course cannot be read from {options.solutions}: {e}") from None
        self.warnings: list[str] = []
        seed = options.seed if options.seed is not None else os.environ.get(SEED_ENV)
        if not seed:
            seed = DEFAULT_SEED
            self.warn(f"no secret seed given (--seed-file or ${SEED_ENV}): the hidden inputs are the default "
                      "ones, which anyone with the course code can compute. Use a secret seed for real grades.")
        self.seed = seed
        self.plans: dict[str, Plan] = {}
        self.judging = threading.Lock()
        self.time_used: dict[tuple[str, str], float] = {}  # (student, notebook) -> seconds of children
        self.sandbox: dict = {}
        self.require: list[str] = []
        self.workers: list[dict] = []  # a distributed run: each worker's course and sandbox (workers.json)
        for nb in self.course.notebooks.values():
            for problem in nb.given_problems:
                self.warn(f"{nb.name}: {problem}")

    def warn(self, message: str) -> None:
        """Record a warning for grades.json and show it as a Python warning."""
        self.warnings.append(message)
        warnings.warn(message, stacklevel=3)

    # --- the sandbox, checked once before any learner code runs --------------------------
    def check_sandbox(self) -> dict:
        """Probe the sandbox of this machine, and accept it or refuse to grade (GradingError)."""
        return self.accept_sandbox(*self.probe_sandbox())

    def probe_sandbox(self) -> tuple[dict, dict, dict]:
        """The protections a child of this machine has (on, off) and what its probe could do."""
        from course_utils import reference

        secrets = [str(Path(reference.__file__).resolve())]
        secrets += [str(p.resolve()) for p in sorted(Path(self.options.solutions).glob("*.ipynb"))[:1]]
        preload = tuple(sorted({m for p in self.plans.values() for m in p.preload}))
        child = sandbox.probe(self.options.limits, secrets, preload, self.options.skip_protections,
                              self.options.tmp_root)
        result = child.result or {}
        if not child.outer or "probe" not in result:
            raise GradingError("the grading sandbox does not start on this machine:\n" + child.log)
        on = {**(child.outer.get("protections", {}).get("on", {})), **result["protections"]["on"]}
        off = {**(child.outer.get("protections", {}).get("off", {})), **result["protections"]["off"]}
        return on, off, result["probe"]

    def accept_sandbox(self, on: dict, off: dict, probe: dict, platform: str = sys.platform) -> dict:
        """Record a probe's findings (``sandbox`` in grades.json); refuse if protections are missing."""
        self.require = [p for p in REQUIRED if p in on]
        missing = [name for name in ESSENTIAL if name not in on]
        breaches = [f"student code could {what}" for what, outcome in probe.items()
                    if outcome == "allowed" and what != "write in the working directory"]
        self.sandbox = {"platform": platform, "protections": on, "unavailable": off, "probe": probe,
                        "missing": missing, "breaches": breaches, "weak": bool(missing or breaches)}
        if missing or breaches:
            problems = [f"{name} is not in force ({off.get(name, 'not supported here')})" for name in missing]
            problems += breaches
            if not self.options.allow_weak_sandbox:
                raise GradingError(refusal(problems, missing))
            for problem in problems:
                self.warn(f"sandbox (graded anyway, --allow-weak-sandbox): {problem}")
        return self.sandbox

    def plan_for(self, name: str) -> Plan:
        """The plan of exercise ``name``, made on first use."""
        if name not in self.plans:
            self.plans[name] = make_plan(self.registry[name], self.seed)
        return self.plans[name]

    # --- one exercise of one submission ----------------------------------------------------
    def prepare(self, sub: Submission, cex: CourseExercise) -> Work | Grade:
        """The child's job for one exercise of a submission, or its Grade straight away when the
        exercise is missing from the notebook."""
        grade = Grade(cex.notebook, cex.number, cex.name, cex.points)
        ex = self.registry[cex.name]
        marked = markers_in(sub.cells)
        where = marked.get(cex.name, [])
        if len(where) > 1:  # as after "Restart & Run All", the last definition is the one that counts
            cells = ", ".join(str(n) for n in where)
            grade.notes.append(f"the marker of {cex.name} appears {len(where)} times (cells {cells}); graded the "
                               "definition that Run All leaves in place, the last one")
            where = where[-1:]
        if not where:
            defs = definitions_of(sub.cells, cex.name)
            if not defs:
                grade.status = "missing"
                grade.reason = (f"missing from the notebook: no cell is marked `# EXERCISE {cex.number}: "
                                f"{cex.name}` and no function `{cex.name}` is defined")
                return grade
            where = defs[-1:]
            grade.notes.append(f"the marker line `# EXERCISE {cex.number}: {cex.name} ...` is missing; "
                               f"graded the function `{cex.name}` defined in cell {defs[-1]}")
        cells_of = {cex.name: where}
        for name in ex.funcs:
            if name != cex.name:
                cells_of[name] = marked.get(name, []) + definitions_of(sub.cells, name)
        plan = self.plan_for(cex.name)
        given = needed_given(self.course.notebooks[cex.notebook].given, ex.funcs, sub.cells)
        cells = [{"cell": 0, "given": True, "source": "\n\n".join(given.values())}] if given else []
        cells += [{"cell": c.number, "source": c.source} for c in sub.cells]
        path, readable = sandbox.python_paths(plan.preload)
        job = {"sys_path": path, "readable": readable, "require": self.require,
               "skip": list(self.options.skip_protections), "exercise": cex.name,
               "funcs": list(ex.funcs), "cells": cells, "cases": plan.job_cases, "preload": list(plan.preload)}
        lines = frozenset(ln.strip() for c in cells for ln in c["source"].splitlines() if ln.strip())
        return Work(sub, grade, job, plan, cells_of, frozenset(given), lines)

    def notebook_budget(self) -> float:
        """Seconds of wall clock for all exercises of one student's notebook together: a student
        who sleeps just under the limit in every exercise cannot slow the class down N times."""
        if self.options.notebook_time is not None:
            return float(self.options.notebook_time)
        return max(3 * float(self.options.limits.wall), 2.0)

    def run(self, work: Work) -> Grade:
        """Run one prepared exercise in the sandbox and judge it, within the notebook's time budget;
        a sandbox error gets a second try, and a failure of the grader itself is an "error" grade."""
        key = (work.sub.student, work.grade.notebook)
        with self.judging:
            left = self.notebook_budget() - self.time_used.get(key, 0.0)
        if left < 0.5:
            grade = copy.deepcopy(work.grade)
            grade.status, grade.reason = "timeout", (
                f"timeout: not run, the notebook's time budget ({self.notebook_budget():g} s for all its exercises "
                "together) was used up by its other exercises")
            return grade
        limits = self.options.limits
        if left < limits.wall:
            limits = dataclasses.replace(limits, wall=left)
        try:
            for attempt in range(2):  # a sandbox that failed before any learner code ran gets a second try
                grade = copy.deepcopy(work.grade)
                started = time.monotonic()
                child = sandbox.run_child(work.job, work.plan.arrays, limits, self.options.tmp_root)
                with self.judging:
                    self.time_used[key] = self.time_used.get(key, 0.0) + time.monotonic() - started
                with self.judging:  # the checks' warning filters are process-wide
                    grade = judge(grade, work.plan, child, limits, work.cells_of, work.given, work.lines)
                if grade.status == "timeout" and limits.wall < self.options.limits.wall:
                    grade.reason = (f"timeout: stopped after {limits.wall:.2g} s, when the notebook's time budget "
                                    f"({self.notebook_budget():g} s for all its exercises together) ran out")
                if grade.status != "error":
                    break
            return grade
        except Exception as e:  # noqa: BLE001 (a failure of the grader itself: never counted against a student)
            work.grade.status, work.grade.reason = "error", f"error: the grader failed: {type(e).__name__}: {e}"
            return work.grade

    # --- the whole class ---------------------------------------------------------------
    def grade(self, submissions: Path) -> dict:
        """Grade every submission in the folder ``submissions``; returns the results (see ``summary``)."""
        submissions = Path(submissions)
        if not submissions.is_dir():
            raise GradingError(f"{submissions} is not a folder")
        for cex in self.course.exercises:
            self.plan_for(cex.name)
        if not self.options.scheduler:  # a distributed run probes the sandbox of every worker instead
            self.check_sandbox()
        subs, ignored = discover(submissions, self.full_course)
        for sub in subs:
            if not sub.problem:
                read_submission(sub)
            identify(sub, self.full_course)
        assign(subs, self.course)

        students = sorted({s.student for s in subs})
        graded_subs = {(s.student, s.notebook): s for s in subs if not s.problem and not s.ignored and s.notebook}
        grades: dict[tuple[str, str], Grade] = {
            (student, cex.name): Grade(cex.notebook, cex.number, cex.name, cex.points, status="not submitted",
                                       reason=f"not submitted: no notebook {cex.notebook}.ipynb was graded")
            for student in students for cex in self.course.exercises if (student, cex.notebook) not in graded_subs}
        if self.options.scheduler:
            from .distributed import grade_on_cluster

            grades.update(grade_on_cluster(self, graded_subs))
        else:
            grades.update(self.grade_here(graded_subs))
        self.check_unchanged(subs)
        return self.summary(students, subs, grades, ignored, graded_subs)

    def grade_notebook(self, sub: Submission) -> list[Grade]:
        """Every exercise of one student's notebook, in the course's order, one child after another:
        what a worker of a distributed run does with one task (distributed.py)."""
        work = [self.prepare(sub, cex) for cex in self.course.notebooks[sub.notebook].exercises]
        return [w if isinstance(w, Grade) else self.run(w) for w in work]

    def grade_here(self, graded_subs: dict[tuple[str, str], Submission]) -> dict[tuple[str, str], Grade]:
        """Grade every exercise of these notebooks on this machine, ``options.jobs`` children at a time."""
        from tqdm.auto import tqdm

        grades: dict[tuple[str, str], Grade] = {}
        todo: list[Work] = []
        for (student, notebook), sub in sorted(graded_subs.items()):
            for cex in self.course.notebooks[notebook].exercises:
                prepared = self.prepare(sub, cex)
                if isinstance(prepared, Grade):
                    grades[(student, cex.name)] = prepared
                else:
                    todo.append(prepared)
        remaining: dict[int, int] = {}
        for w in todo:
            remaining[id(w.sub)] = remaining.get(id(w.sub), 0) + 1
        lock = threading.Lock()
        bar = tqdm(total=len(graded_subs), unit="notebook", desc="grading", disable=not self.options.progress,
                   file=sys.stderr)
        bar.update(len(graded_subs) - len(remaining))

        def task(w: Work) -> Grade:
            g = self.run(w)
            with lock:
                grades[(w.sub.student, w.grade.exercise)] = g
                remaining[id(w.sub)] -= 1
                if remaining[id(w.sub)] == 0:
                    bar.update(1)
            return g

        with ThreadPoolExecutor(max_workers=max(1, int(self.options.jobs))) as pool:
            list(pool.map(task, todo))
        bar.close()
        return grades

    @staticmethod
    def check_unchanged(subs: list[Submission]) -> None:
        """Hash every submitted file again: one that changed during grading stops everything."""
        changed = []
        for sub in subs:
            if sub.sha256:
                try:
                    read_back = file_sha256(sub.path)[0]
                except OSError:
                    read_back = ""
                if read_back != sub.sha256:
                    changed.append(sub.relpath)
        if changed:  # cannot happen by construction; if it ever does, nobody should trust these grades
            raise GradingError("submitted files changed during grading: " + ", ".join(changed))

    def summary(self, students, subs, grades, ignored, graded_subs) -> dict:
        """The results as grades.json holds them: the course, the settings, the sandbox, the warnings
        and, per student, the total, the files and every exercise's grade."""
        limits = self.options.limits
        out_students = []
        for student in students:
            mine = [s for s in subs if s.student == student]
            problems = [f"{s.relpath}: {s.problem}" for s in mine if s.problem]
            notes = [n for s in mine if not s.ignored for n in s.notes] + [s.ignored for s in mine if s.ignored]
            exercises = [asdict(grades[(student, cex.name)]) for cex in self.course.exercises]
            total = sum(e["points"] for e in exercises)
            review = [f"{s.relpath}: {hit}" for s in mine if not s.problem and not s.ignored
                      for hit in suspicious_code(s.cells)]
            out_students.append({
                "student": student, "total": total, "possible": self.course.possible,
                "problems": problems, "notes": notes, "review": review,
                "files": [{"path": s.relpath, "sha256": s.sha256, "notebook": s.notebook,
                           "graded": graded_subs.get((s.student, s.notebook)) is s} for s in mine],
                "exercises": exercises,
            })
        return {
            "schema": SCHEMA,
            "course": {
                "solutions": [nb for nb in self.full_course.notebooks],
                "notebooks": [{"name": nb.name, "given": sorted(nb.given),
                               "exercises": [{"number": e.number, "name": e.name, "points": e.points}
                                             for e in nb.exercises]}
                              for nb in self.course.notebooks.values()],
                "possible": self.course.possible,
                "ungradable": [asdict(e) for e in self.course.ungradable],
            },
            "settings": {
                "seed_sha256": hashlib.sha256(self.seed.encode()).hexdigest()[:16],
                "default_seed": self.seed == DEFAULT_SEED,
                "limits": {"wall_seconds": limits.wall, "cpu_seconds": limits.cpu,
                           "memory_mib": limits.memory >> 20, "output_characters": limits.output,
                           "file_size_mib": limits.file_size >> 20, "disk_mib": limits.disk >> 20,
                           "open_files": limits.open_files, "processes": limits.pids - 1},
                "cases": {name: len(p.cases) for name, p in sorted(self.plans.items())},
            },
            "sandbox": self.sandbox,
            "warnings": list(self.warnings),
            "review": [s["student"] for s in out_students if s["review"]],
            "ignored_files": ignored,
            "students": out_students,
        }


def grade(submissions: Path, out: Path, options: Options | None = None) -> dict:
    """Grade a folder of submissions and write grades.csv, grades.json, feedback/ and a histogram."""
    from . import deadlines, report, written

    options = options or Options()
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if out == submissions or submissions in out.parents:
        raise GradingError("the output folder must not be inside the submissions folder")
    if out in submissions.parents:
        raise GradingError("the submissions folder must not be inside the output folder")
    grader = Grader(options)
    late = deadlines.prepare(options.late, grader.course.notebooks)  # both refuse bad options before grading
    answers = written.prepare(options, grader.course.notebooks, out)
    results = grader.grade(submissions)
    answers.apply(results, submissions)  # written answers collected, the instructor's marks merged
    late.apply(results, submissions)  # then the late penalties, on the notebooks' points
    report.write_all(results, out)
    answers.write_reviews(results, out)
    if grader.workers:  # a distributed run: which workers graded, with their course and sandbox
        from .distributed import write_workers

        write_workers(grader.workers, out)
    return results
