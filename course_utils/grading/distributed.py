"""Grading past one machine: ``grade --scheduler ADDRESS`` hands each student's notebook to a
worker of a Dask cluster (``dask.distributed``), which grades it exactly as a local run does.

The grading machine (the client) reads the course from ``solutions/``, reads and identifies the
submissions, and sends one task per student and notebook. A worker builds a ``Grader`` from
plain data (the course definition, the options that act on a child, the seed), checks once that
its own course code is the client's (``fingerprint``) and probes its own sandbox, refusing as a
local run refuses; then it grades every exercise of the notebook in sandboxed children
(``Grader.grade_notebook``, the same ``prepare`` and ``run`` as a local run) and returns the
grades. The client merges them by (student, exercise), so grades.json, grades.csv and the
feedback are the bytes a local run writes; which worker graded what, and each worker's
sandbox, go to ``workers.json``.

Only strings cross between client and workers: JSON made by the grader's own code on either
side (``json.dumps`` of str, int, float, list and dict). Nothing a student's code made is ever
pickled or unpickled: on the worker it stays in the child, whose output is read as untrusted
bytes there (sandbox.py). The secret seed and the students' code do travel to the workers:
use TLS (``tls://``) or a private network (docs/grading.md, "Grading past one machine").
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import threading
from pathlib import Path

from ..release import ROOT
from .grader import Grade, Grader, GradingError, Options
from .sandbox import Limits
from .submissions import Cell, Course, CourseExercise, CourseNotebook, Submission

PACKAGE = Path(__file__).resolve().parent.parent  # course_utils/, the code every worker must share
LOCAL_RE = re.compile(r"^local:(\d+)$")
# The options that act on a child; the others (jobs, progress, notebooks...) are the client's.
CHILD_OPTIONS = ("limits", "skip_protections", "allow_weak_sandbox", "notebook_time", "tmp_root", "solutions")
CONNECT_TIMEOUT = 30  # seconds to reach the scheduler, and to wait for a first worker
SETUP_TIMEOUT = 300  # seconds for every worker to check its course, draw the hidden inputs and probe
WORKERS_FILE = "workers.json"


# --- what must be the same on every machine -------------------------------------------------------


def fingerprint() -> dict[str, str]:
    """What decides a grade besides the course definition and the seed: the course package's files
    (its checks and hidden inputs, the sandbox, the judges) and the versions of Python, NumPy and
    PyTorch. A worker whose fingerprint is not the client's refuses to grade."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    versions = {}
    for name in ("numpy", "torch"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"course_utils": digest.hexdigest(), "python": "%d.%d" % sys.version_info[:2], **versions}


def mismatch(mine: dict, theirs: dict) -> str:
    """Why a worker's fingerprint (``mine``) is not the client's, or ""."""
    differ = [f"{k} {mine.get(k, '?')[:16]} here, {theirs.get(k, '?')[:16]} on the grading machine"
              for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
    if not differ:
        return ""
    return ("this worker's course is not the grading machine's (" + "; ".join(differ) + "): install the "
            "same version of the course (and of Python, NumPy, PyTorch) on every worker")


# --- plain data for the workers -------------------------------------------------------------------


def course_to_plain(course: Course) -> dict:
    """The notebooks, exercises, points and given functions of the course being graded."""
    return {"notebooks": [{"name": nb.name, "exercises": [dataclasses.asdict(e) for e in nb.exercises],
                           "given": dict(nb.given)} for nb in course.notebooks.values()]}


def course_from_plain(plain: dict) -> Course:
    """The course again, on a worker, from ``course_to_plain``'s plain data."""
    notebooks = {nb["name"]: CourseNotebook(nb["name"], [CourseExercise(**e) for e in nb["exercises"]],
                                            dict(nb["given"])) for nb in plain["notebooks"]}
    return Course(notebooks, [])


def run_payload(grader: Grader) -> str:
    """Everything a worker needs besides the submissions, as one JSON text (it holds the seed)."""
    options = {name: getattr(grader.options, name) for name in CHILD_OPTIONS}
    options["limits"] = dataclasses.asdict(options["limits"])
    options["solutions"] = str(Path(options["solutions"]).resolve())
    return json.dumps({"fingerprint": fingerprint(), "seed": grader.seed, "options": options,
                       "course": course_to_plain(grader.course)}, sort_keys=True)


def worker_options(plain: dict, seed: str) -> Options:
    """The client's options, on a worker: the solutions are only probed (the child must not read
    them), at the client's path if this machine has it, else at the course's own."""
    solutions = Path(plain["solutions"])
    return Options(solutions=solutions if solutions.is_dir() else ROOT / "solutions", jobs=1,
                   limits=Limits(**plain["limits"]), seed=seed, progress=False, tmp_root=plain["tmp_root"],
                   skip_protections=tuple(plain["skip_protections"]),
                   allow_weak_sandbox=bool(plain["allow_weak_sandbox"]), notebook_time=plain["notebook_time"])


def task_text(sub: Submission) -> str:
    """One task: a student's notebook, as the cells the client read from it."""
    return json.dumps({"student": sub.student, "notebook": sub.notebook, "relpath": sub.relpath,
                       "cells": [[c.number, c.source] for c in sub.cells]})


# --- on a worker ----------------------------------------------------------------------------------


@dataclasses.dataclass
class WorkerState:
    """A worker's setup for one run: its grader, or None where it refused, and its record."""

    grader: Grader | None  # None: this worker refused (record["refused"] says why)
    record: dict  # the worker, its fingerprint, its sandbox: what workers.json holds


_STATES: dict[str, WorkerState] = {}
_STATES_LOCK = threading.Lock()


def run_key(run: str) -> str:
    """The key of a run's state on a worker: the SHA-256 of its payload, which holds the seed."""
    return hashlib.sha256(run.encode()).hexdigest()


def worker_address() -> str:
    """This Dask worker's address, or host:pid outside a worker."""
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # not in a worker (a test calling the task function directly)
        return f"{socket.gethostname()}:{os.getpid()}"


def set_up(run: str) -> WorkerState:
    """This worker's grader for a run, made once per worker process: the course checked against
    the client's, the hidden inputs drawn, the sandbox probed and accepted (or refused)."""
    key = run_key(run)
    with _STATES_LOCK:
        if key not in _STATES:
            _STATES[key] = _set_up(json.loads(run))
        return _STATES[key]


def _set_up(run: dict) -> WorkerState:
    record = {"worker": worker_address(), "host": socket.gethostname(), "fingerprint": fingerprint(),
              "sandbox": None, "refused": ""}
    record["refused"] = mismatch(record["fingerprint"], run["fingerprint"])
    if record["refused"]:
        return WorkerState(None, record)
    try:
        grader = Grader(worker_options(run["options"], run["seed"]), course_from_plain(run["course"]))
        for cex in grader.course.exercises:
            grader.plan_for(cex.name)
        on, off, probe = grader.probe_sandbox()
        record["sandbox"] = {"platform": sys.platform, "on": on, "off": off, "probe": probe}
        grader.accept_sandbox(on, off, probe)
    except GradingError as e:
        record["refused"] = str(e)
        return WorkerState(None, record)
    except Exception as e:  # noqa: BLE001 (a worker that cannot grade says why, as plain text)
        record["refused"] = f"the worker cannot grade: {type(e).__name__}: {e}"
        return WorkerState(None, record)
    return WorkerState(grader, record)


def worker_setup(run: str) -> str:
    """Task: set this worker up for a run; its record as JSON."""
    return json.dumps(set_up(run).record)


def grade_task(run: str, task: str) -> str:
    """Task: grade one student's notebook (``task_text``) on this worker; JSON of the record of the
    worker and the notebook's grades in the course's order, or of the error that stopped it."""
    try:
        state = set_up(run)
        if state.grader is None:
            return json.dumps({"record": state.record})
        t = json.loads(task)
        sub = Submission(t["student"], Path(t["relpath"]), t["relpath"], t["notebook"], notebook=t["notebook"],
                         cells=[Cell(int(n), str(source)) for n, source in t["cells"]])
        grades = state.grader.grade_notebook(sub)
        return json.dumps({"record": state.record, "grades": [dataclasses.asdict(g) for g in grades]})
    except Exception as e:  # noqa: BLE001 (a failure of the grader: an error grade, never the student's)
        return json.dumps({"error": f"{type(e).__name__}: {e}", "worker": worker_address()})


def forget(key: str) -> None:
    """Drop a finished run's grader (and its seed) from this worker."""
    with _STATES_LOCK:
        _STATES.pop(key, None)


# --- on the grading machine -----------------------------------------------------------------------


@contextlib.contextmanager
def connect(scheduler: str):
    """A Dask client: of the scheduler at ``scheduler``, or of a cluster of N local worker
    processes (one thread each) for ``local:N``, closed afterwards."""
    from distributed import Client, LocalCluster

    local = LOCAL_RE.match(scheduler)
    with contextlib.ExitStack() as stack:
        if local:
            if int(local[1]) < 1:
                raise GradingError("--scheduler local:N needs N >= 1 worker processes")
            try:
                cluster = stack.enter_context(LocalCluster(n_workers=int(local[1]), threads_per_worker=1,
                                                           processes=True, dashboard_address=None,
                                                           silence_logs=logging.ERROR))
            except RuntimeError as e:  # e.g. a script that starts grading without `if __name__ == "__main__":`
                raise GradingError(f"a local Dask cluster did not start: {e}") from None
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s"))
            except (OSError, TimeoutError, ValueError, TypeError) as e:
                tls = (" (tls:// needs this machine's certificate: $DASK_DISTRIBUTED__COMM__TLS__CA_FILE, "
                       "__CLIENT__CERT and __CLIENT__KEY, docs/grading.md)" if scheduler.startswith("tls://") else "")
                raise GradingError(f"the Dask scheduler at {scheduler} cannot be reached{tls}: {e}") from None
        yield client


def unencrypted(scheduler: str) -> bool:
    """True for a plain-TCP scheduler on another machine: the seed would cross the network in clear."""
    if LOCAL_RE.match(scheduler) or scheduler.startswith(("tls://", "inproc://", "ucx://")):
        return False
    host = scheduler.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


def wait_for_a_worker(client) -> None:
    """Wait until the cluster has a worker; a GradingError after ``CONNECT_TIMEOUT`` seconds."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise GradingError(f"the Dask cluster has no worker (waited {CONNECT_TIMEOUT} s)") from None


def set_up_workers(client, shared) -> dict[str, dict]:
    """Every worker's record, once each has checked its course and probed its sandbox; refuse to
    grade if any worker refused. A worker lost meanwhile is left out (if it comes back, it sets
    itself up before its first notebook)."""
    from distributed import wait

    futures = [client.submit(worker_setup, shared, workers=[address], allow_other_workers=False, pure=False)
               for address in sorted(client.nthreads())]
    with contextlib.suppress(TimeoutError):
        wait(futures, timeout=SETUP_TIMEOUT)
    records = []
    for future in futures:
        if future.status == "finished":
            records.append(json.loads(future.result()))
        else:
            future.cancel()
    if not records:
        raise GradingError(f"no worker of the Dask cluster could be set up in {SETUP_TIMEOUT} s")
    refused = [f"worker {r['worker']} ({r['host']}) refused: {r['refused']}" for r in records if r["refused"]]
    if refused:
        raise GradingError("\n".join(refused))
    return {r["worker"]: r for r in records}


def run_tasks(client, shared, graded_subs: dict, progress: bool, records: dict) -> dict[tuple, dict]:
    """Every notebook's result from the workers, a bounded number in flight at a time (a MOOC's
    tens of thousands of notebooks never sit in the scheduler's memory at once)."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    pending = iter(sorted(graded_subs.items()))
    window, keys, results = as_completed(), {}, {}

    def submit_next() -> None:
        item = next(pending, None)
        if item is not None:
            future = client.submit(grade_task, shared, task_text(item[1]), pure=False)
            keys[future] = item[0]
            window.add(future)

    for _ in range(max(64, 4 * sum(client.nthreads().values()))):
        submit_next()
    with tqdm(total=len(graded_subs), unit="notebook", desc="grading", disable=not progress,
              file=sys.stderr) as bar:
        for future in window:
            try:
                result = json.loads(future.result())
            except Exception as e:  # noqa: BLE001 (a worker lost, KilledWorker: an error grade)
                result = {"error": f"{type(e).__name__}: {e}", "worker": "?"}
            record = result.get("record")
            if record and record["refused"]:
                for f in keys:
                    f.cancel()
                raise GradingError(f"worker {record['worker']} ({record['host']}) refused: {record['refused']}")
            if record:
                records.setdefault(record["worker"], record)
                record = records[record["worker"]]
                record["notebooks"] = record.get("notebooks", 0) + 1
            results[keys.pop(future)] = result
            bar.update(1)
            submit_next()
    return results


def grades_of(result: dict, student: str, exercises: list[CourseExercise]) -> dict[tuple[str, str], Grade]:
    """The grades of one notebook from a worker's result, checked to be the exercises asked for;
    anything else is an error grade for every exercise of the notebook (regrade those)."""
    problem = result.get("error", "")
    if "grades" in result:
        try:
            grades = [Grade(**g) for g in result["grades"]]
            if [g.exercise for g in grades] == [e.name for e in exercises]:
                return {(student, g.exercise): g for g in grades}
            problem = "it returned the grades of other exercises"
        except TypeError as e:
            problem = f"its grades cannot be read ({e})"
    worker = result.get("worker") or (result.get("record") or {}).get("worker", "?")
    return {(student, e.name): Grade(e.notebook, e.number, e.name, e.points,
                                     status="error", reason=f"error: the grader failed on worker {worker}: {problem}")
            for e in exercises}


def merged_sandbox(records: dict[str, dict]) -> tuple[dict, dict, dict, str]:
    """One sandbox for grades.json from the workers' probes: exactly theirs when they agree; else
    only the protections every worker has, and any probe attempt allowed anywhere as allowed."""
    boxes = [records[w]["sandbox"] for w in sorted(records)]

    def agree(values: list[str]) -> str:
        distinct = list(dict.fromkeys(values))
        return distinct[0] if len(distinct) == 1 else " | ".join(distinct)

    on = {k: agree([b["on"][k] for b in boxes]) for k in boxes[0]["on"] if all(k in b["on"] for b in boxes)}
    off_keys = dict.fromkeys(k for b in boxes for k in b["off"])
    off_keys.update(dict.fromkeys(k for b in boxes for k in b["on"] if k not in on))
    off = {k: agree([b["off"].get(k, "in force on some workers only") for b in boxes]) for k in off_keys}
    probe_keys = dict.fromkeys(k for b in boxes for k in b["probe"])
    probe = {k: "allowed" if any(b["probe"].get(k) == "allowed" for b in boxes)
             else agree([b["probe"].get(k, "not tried") for b in boxes]) for k in probe_keys}
    return on, off, probe, agree([b["platform"] for b in boxes])


def grade_on_cluster(grader: Grader, graded_subs: dict[tuple[str, str], Submission]) -> dict[tuple[str, str], Grade]:
    """Grade these notebooks on the Dask cluster of ``grader.options.scheduler``: the grades, and
    the workers' sandboxes recorded in ``grader.sandbox`` (merged) and ``grader.workers``."""
    scheduler = grader.options.scheduler
    if unencrypted(scheduler):
        print(f"WARNING: {scheduler} is plain TCP: the secret seed and the students' code cross the network "
              "unencrypted. Use tls:// or a private network (docs/grading.md).", file=sys.stderr)
    with connect(scheduler) as client:
        wait_for_a_worker(client)
        run = run_payload(grader)  # the fingerprint taken as late as can be: the workers' is taken now
        shared = client.scatter(run, broadcast=True)
        try:
            records = set_up_workers(client, shared)
            results = run_tasks(client, shared, graded_subs, grader.options.progress, records)
        finally:
            with contextlib.suppress(Exception):
                client.run(forget, run_key(run))
    grades: dict[tuple[str, str], Grade] = {}
    for (student, notebook), result in sorted(results.items()):
        grades.update(grades_of(result, student, grader.course.notebooks[notebook].exercises))
    used = {w: r for w, r in records.items() if r.get("sandbox")}
    grader.accept_sandbox(*merged_sandbox(used))
    grader.workers = [{"notebooks": 0, **records[w]} for w in sorted(records)]
    return grades


def write_workers(workers: list[dict], out: Path) -> Path:
    """``workers.json``: each worker of a distributed run, its course fingerprint, its sandbox's
    protections and probe, and how many notebooks it graded (never the seed)."""
    path = Path(out) / WORKERS_FILE
    path.write_text(json.dumps({"workers": workers}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
