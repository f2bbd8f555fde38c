"""Running learner code in a child process, from the grader's (trusted) side.

The child is ``_runner.py`` (see its docstring for what happens inside). This side prepares a
private job directory, starts the child with a scrubbed environment in a new session, kills
its whole process group if it overstays, and reads back what it wrote as untrusted bytes:
JSON of bounded size, and ``.npz`` archives whose members must be uncompressed plain numeric
``.npy`` arrays of sane size. Nothing from the child is unpickled or executed.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import json
import marshal
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONVENTIONS = HERE.parent / "checking" / "conventions.py"
RUNNER = HERE / "_runner.py"
MiB = 1 << 20
MAX_RESULT_ARRAYS = 4096  # far more than any exercise returns (cases x outputs)


@dataclass
class Limits:
    """Per exercise (one child process) limits."""

    wall: float = 10.0  # seconds of wall-clock time
    cpu: int = 10  # seconds of CPU time
    memory: int = 1024 * MiB  # address space, NumPy's ~100 MiB included
    output: int = 1 * MiB  # characters printed by the learner's code
    file_size: int = 16 * MiB  # largest file the child may write
    disk: int = 64 * MiB  # size of its working directory (a tmpfs, where possible)
    open_files: int = 64
    pids: int = 301  # processes and threads (the smallest pid_max Linux accepts)
    result: int = 64 * MiB  # largest result archive the parent reads

    def as_job(self) -> dict:
        """The limits the child enforces itself, for job.json (``result`` is the parent's)."""
        return {"wall": self.wall, "cpu": self.cpu, "memory": self.memory, "output": self.output,
                "file_size": self.file_size, "disk": self.disk, "open_files": self.open_files, "pids": self.pids}


@dataclass
class ChildResult:
    """What came back from one child; ``problem`` says why it is unusable, if it is."""

    outer: dict | None = None
    result: dict | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    problem: str = ""
    killed_by_parent: bool = False
    log: str = ""  # the child's own error output before the learner's code ran (for instructors)


class Malformed(Exception):
    """The child wrote something that is not a valid result."""


# --- what the child may see --------------------------------------------------------------------


def python_paths(preload: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """The child's sys.path (standard library and the site-packages that hold NumPy and the
    preloaded modules, never the repository) and the trees it may read."""
    bases = tuple(os.path.join(b, "") for b in {sys.base_prefix, sys.base_exec_prefix})
    path = [p for p in sys.path if p and os.path.abspath(p).startswith(bases)
            and not any(part in p for part in ("site-packages", "dist-packages"))]
    for module in ("numpy",) + tuple(preload):
        spec = find_spec(module)
        if spec and spec.origin:
            path.append(str(Path(spec.origin).resolve().parent.parent))
    path = list(dict.fromkeys(p for p in path if os.path.isdir(p) or p.endswith(".zip")))
    readable = [sys.base_prefix, sys.prefix, *path, "/usr/lib", "/lib", "/lib64", "/usr/lib64",
                "/etc/ld.so.cache", "/dev/urandom", "/proc/self"]
    return path, list(dict.fromkeys(readable))


def child_env(work: str) -> dict[str, str]:
    """A scrubbed environment: no PYTHON* variables, nothing of the instructor's."""
    return {"PATH": "/usr/bin:/bin", "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# --- encoding plans: plain data only -------------------------------------------------------------


def encode(value, arrays: dict[str, np.ndarray]):
    """Plain data as JSON, with arrays set aside (``{"$array": key}``) for an .npz file."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf" or value.dtype.hasobject:
            raise TypeError(f"cannot send an array of dtype {value.dtype} to the child")
        key = f"a{len(arrays)}"
        arrays[key] = np.array(value, order="C", copy=True)  # 0-d stays 0-d
        return {"$array": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only dicts with string keys can be sent to the child")
        return {"$dict": [[k, encode(v, arrays)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a plan parameter of type {type(value).__name__} cannot be sent to the child")


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as an uncompressed .npz, without pickle."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for key, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            z.writestr(key + ".npy", buf.getvalue())


# --- reading what the child wrote, as untrusted bytes ---------------------------------------------


def read_capped(path: Path, cap: int) -> bytes | None:
    """A regular file's bytes (None if absent); Malformed if it is not a plain file or too big.
    Symbolic links are not followed and FIFOs are not waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise Malformed(f"{path.name} cannot be opened ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Malformed(f"{path.name} is not a regular file")
        if st.st_size > cap:
            raise Malformed(f"{path.name} is larger than {cap} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise Malformed(f"{path.name} is larger than {cap} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_json(data: bytes) -> dict:
    """A JSON object from untrusted bytes; Malformed when it is not one."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # bad UTF-8, bad JSON, an integer of 5,000 digits
        raise Malformed(f"not valid JSON ({type(e).__name__})") from None
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    return value


def load_npz(data: bytes, max_bytes: int) -> dict[str, np.ndarray]:
    """Arrays from an .npz archive, refusing anything but stored, plain numeric .npy members."""
    arrays: dict[str, np.ndarray] = {}
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - (1 << 16) - 22))
    if eocd < 0 or len(data) < eocd + 22:
        raise Malformed("not an .npz archive (no end of central directory)")
    entries = int.from_bytes(data[eocd + 10:eocd + 12], "little")
    if entries > MAX_RESULT_ARRAYS:  # counted before zipfile parses a directory of any length
        raise Malformed(f"the result archive has more than {MAX_RESULT_ARRAYS} arrays")
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise Malformed(f"not an .npz archive ({type(e).__name__})") from None
    total = 0
    with z:
        members = z.infolist()
        if len(members) > MAX_RESULT_ARRAYS:
            raise Malformed(f"the result archive has more than {MAX_RESULT_ARRAYS} arrays")
        if len({m.filename for m in members}) != len(members):
            raise Malformed("the result archive names an array twice")
        for info in members:
            name = info.filename
            if not name.endswith(".npy") or "/" in name or info.compress_type != zipfile.ZIP_STORED:
                raise Malformed(f"unexpected member {name!r} in the result archive")
            if info.file_size > max_bytes or total + info.file_size > max_bytes:
                raise Malformed("the result arrays are too large")
            total += info.file_size
            try:
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise Malformed(f"unsupported .npy version {version}")
                    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
                        raise Malformed(f"`{name[:-4]}` has dtype {dtype}, not a plain numeric one")
                    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                        raise Malformed(f"`{name[:-4]}` is shorter than its header says")
                with z.open(info) as f:
                    a = np.lib.format.read_array(f, allow_pickle=False)
            except Malformed:
                raise
            except Exception as e:  # noqa: BLE001 (anything numpy or zipfile rejects)
                raise Malformed(f"`{name[:-4]}` cannot be read ({type(e).__name__})") from None
            if type(a) is not np.ndarray or a.dtype.kind not in "biuf":
                raise Malformed(f"`{name[:-4]}` is not a plain numeric array")
            arrays[name[:-4]] = np.array(a, dtype=a.dtype.newbyteorder("="), copy=True, order="C")
    return arrays


# --- running one child -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def bytecode(path: Path) -> bytes:
    """``path`` compiled once, as a .pyc the child runs or imports without compiling it again
    (about 20 ms of CPU saved in every child). Same interpreter, so the same magic number."""
    source = path.read_bytes()
    code = compile(source, path.name, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + (0).to_bytes(4, "little") \
        + (len(source) & 0xFFFFFFFF).to_bytes(4, "little")
    return header + marshal.dumps(code)


def run_child(job: dict, arrays: dict[str, np.ndarray], limits: Limits, tmp_root: str | None = None) -> ChildResult:
    """Run one job (an exercise on a learner's cells) in a fresh child and collect its results."""
    jobdir = Path(tempfile.mkdtemp(prefix="grade-", dir=tmp_root))
    out = ChildResult()
    try:
        for sub in ("in", "out", "work"):
            (jobdir / sub).mkdir(mode=0o700)
        (jobdir / "in" / "runner.pyc").write_bytes(bytecode(RUNNER))
        (jobdir / "in" / "conventions.pyc").write_bytes(bytecode(CONVENTIONS))
        (jobdir / "in" / "job.json").write_text(json.dumps({**job, "limits": limits.as_job()}), encoding="utf-8")
        if arrays:
            save_npz(jobdir / "in" / "arrays.npz", arrays)
        with open(jobdir / "out" / "log.txt", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(jobdir / "in" / "runner.pyc"), str(jobdir)],
                cwd=jobdir / "work", env=child_env(str(jobdir / "work")), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
            try:
                proc.wait(timeout=limits.wall + 20)
            except subprocess.TimeoutExpired:
                out.killed_by_parent = True
            finally:
                try:  # the whole session: the child and anything it left behind
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()
        collect(jobdir / "out", limits, out)
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)
    return out


def collect(outdir: Path, limits: Limits, out: ChildResult) -> None:
    """Read what a child left in ``outdir`` (its log, outer.json, result.json and result.npz) into
    ``out``, with size caps; ``out.problem`` says why when it is malformed."""
    try:
        log = read_capped(outdir / "log.txt", MiB)
        out.log = (log or b"")[-4000:].decode("utf-8", "replace")
    except Malformed:
        pass
    try:
        raw = read_capped(outdir / "outer.json", 1 << 16)
        out.outer = load_json(raw) if raw is not None else None
        raw = read_capped(outdir / "result.json", 4 * MiB)
        out.result = load_json(raw) if raw else None
        if out.result is not None and out.result.get("cases") is not None:
            raw = read_capped(outdir / "result.npz", limits.result)
            out.arrays = load_npz(raw, limits.result) if raw else {}
    except Malformed as e:
        out.problem = f"the grading process got a malformed result: {e}"


def probe(limits: Limits, probe_paths: list[str], preload: tuple[str, ...] = (), skip: tuple[str, ...] = (),
          tmp_root: str | None = None) -> ChildResult:
    """Start a child that runs no learner code and reports its protections and what it could do."""
    path, readable = python_paths(preload)
    job = {"skip": list(skip), "sys_path": path, "readable": readable, "require": [], "probe": True, "probe_paths": probe_paths,
           "grader_pid": os.getpid(),
           "exercise": "", "funcs": [], "cells": [], "cases": [], "preload": list(preload)}
    return run_child(job, {}, limits, tmp_root)
