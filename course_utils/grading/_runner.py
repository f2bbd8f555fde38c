"""The grader's child process: runs one learner's exercise inside a sandbox.

    python -I -S runner.pyc JOBDIR

This file, compiled, is copied into ``JOBDIR/in/`` next to ``conventions.pyc`` and ``job.json`` and runs from
there, on an explicit ``sys.path`` that holds the standard library and the site-packages
with NumPy, never the course repository. It imports the standard library, NumPy and
``checking/conventions.py`` only, never ``course_utils``, so that the reference implementations are
neither in memory nor, with Landlock, readable on disk.

Two processes, so that a trusted one always outlives the learner's code:

* the *outer* process enters new user, network, mount and PID namespaces where the kernel
  allows it, forks the inner one, enforces the wall-clock limit (killing the inner process
  kills its whole PID namespace) and writes ``out/outer.json`` with how the inner one ended;
* the *inner* process (PID 1 of the new namespace) loads NumPy and the inputs, sets the
  resource limits, locks itself down (Landlock, no capabilities, no new processes, no
  network), and only then runs the learner's cells and functions. It writes
  ``out/result.json`` and ``out/result.npz`` through files it opened before the lockdown.

Nothing in here decides a grade: the parent reads the results as plain JSON and arrays and
judges them itself. Every protection that engages is reported, so that the parent can
record it and refuse to grade when a protection it asked for is missing.
"""
from __future__ import annotations

import ast
import builtins
import ctypes
import io
import json
import os
import select
import signal
import stat
import struct
import sys
import time
import traceback
import zipfile

SETUP_FAILED = 70  # inner exit code when the sandbox could not be set up
SANDBOX_REFUSED = 71  # inner exit code when a required protection did not engage

# --- Linux interfaces through ctypes --------------------------------------------------------

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
CLONE_THREAD = 0x10000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_CAPBSET_DROP = 1, 38, 22, 24
SECCOMP_MODE_FILTER = 2
SYS_LANDLOCK = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
# Landlock access rights, by the ABI version that introduced them.
FS_RIGHTS = [(1, (1 << 13) - 1), (2, 1 << 13), (3, 1 << 14), (5, 1 << 15)]
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR, FS_TRUNCATE = 1, 2, 4, 8, 1 << 14
NET_RIGHTS = 3  # bind and connect TCP (ABI 4)
SCOPES = 3  # abstract unix sockets and signals (ABI 6)

_libc = None


def libc():
    """The C library, loaded once, with ``syscall`` returning a long."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _write_proc(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Protections:
    """What engaged and what did not, in words, for the parent to record and check."""

    def __init__(self):
        self.on: dict[str, str] = {}
        self.off: dict[str, str] = {}

    def set(self, name: str, detail) -> None:
        """Record that protection ``name`` engaged, with a detail in words."""
        self.on[name] = str(detail)
        self.off.pop(name, None)

    def fail(self, name: str, reason) -> None:
        """Record that protection ``name`` did not engage, and why."""
        self.off[name] = str(reason)
        self.on.pop(name, None)

    def as_dict(self) -> dict:
        """The protections as plain data: {"on": {name: detail}, "off": {name: reason}}."""
        return {"on": dict(self.on), "off": dict(self.off)}


def enter_namespaces(report: Protections) -> str:
    """New user, network, mount and PID namespaces, as far as the kernel allows.

    Returns the namespaces entered ("user net mount pid", ...; "" for none). With a PID
    namespace the next child is its PID 1. Inside the user namespace our own user id is
    mapped to itself, so files keep their owners.
    """
    if not sys.platform.startswith("linux"):
        report.fail("namespaces", "not available on " + sys.platform)
        return ""
    uid, gid = os.geteuid(), os.getegid()
    for flags, names in [(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, "user net mount pid"),
                         (CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, "net mount pid"),
                         (CLONE_NEWUSER | CLONE_NEWNET, "user net")]:
        if libc().unshare(flags) == 0:
            break
    else:
        report.fail("namespaces", "unshare: " + os.strerror(ctypes.get_errno()))
        return ""
    if flags & CLONE_NEWUSER:
        try:
            _write_proc("/proc/self/setgroups", "deny")
            _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
            _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as e:
            report.fail("uid_map", e)
    report.set("namespaces", names)
    return names


def _machine() -> str:
    return os.uname().machine


def _landlock_syscalls():
    return SYS_LANDLOCK.get(_machine())


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers; 0 where it has none or the machine is unknown."""
    calls = _landlock_syscalls()
    if calls is None:
        return 0
    abi = libc().syscall(calls[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(abi), 0)


def landlock(read_only: list[str], read_write: list[str], files_rw: list[str]) -> int:
    """Restrict this process and its threads: read the given trees, write only the given ones,
    no TCP, no signals or abstract sockets outside. Returns the ABI version in force."""
    abi = landlock_abi()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    create, add_rule, restrict = _landlock_syscalls()
    fs = 0
    for version, rights in FS_RIGHTS:
        if abi >= version:
            fs |= rights
    net = NET_RIGHTS if abi >= 4 else 0
    scoped = SCOPES if abi >= 6 else 0
    attr = struct.pack("QQQ", fs, net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    buf = ctypes.create_string_buffer(attr[:size], size)
    ruleset = _check(libc().syscall(create, buf, ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock ruleset")
    try:
        ro = FS_READ_FILE | FS_READ_DIR
        rw = fs & ~FS_EXECUTE
        file_rw = FS_READ_FILE | FS_WRITE_FILE | (FS_TRUNCATE if abi >= 3 else 0)
        for paths, dir_rights, file_rights in [(read_only, ro, FS_READ_FILE), (read_write, rw, file_rw),
                                               (files_rw, file_rw, file_rw)]:
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    rights = dir_rights if stat.S_ISDIR(os.fstat(fd).st_mode) else file_rights
                    rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
                    _check(libc().syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(1), rule,
                                          ctypes.c_uint32(0)), f"landlock rule {path}")
                finally:
                    os.close(fd)
        _check(libc().syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)), "landlock restrict")
    finally:
        os.close(ruleset)
    return abi


def drop_capabilities() -> None:
    """No capabilities left, not even in our own user namespace, and none regained by exec."""
    for cap in range(64):
        if libc().prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: past the last
            break
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)  # effective, permitted, inheritable: all zero, twice (64 capability bits)
    _check(libc().syscall(126 if _machine() == "x86_64" else 91, header, data), "capset")


SECCOMP_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Denied: [fork, vfork,] execve, execveat, unshare, setns; socket, socketpair (no socket of any
# family: a Unix socket file such as docker.sock or the D-Bus bus would reach the host, and neither
# Landlock below ABI 6 nor a network namespace stops that); memfd_create (memory outside the
# address-space limit); io_uring_setup/enter/register (system calls this filter would not see);
# ptrace, process_vm_readv/writev; bpf, userfaultfd, perf_event_open.
SECCOMP_NRS = {"x86_64": {"clone": 56, "clone3": 435,
                          "deny": [57, 58, 59, 322, 272, 308, 41, 53, 319, 425, 426, 427, 101, 310, 311, 321, 323,
                                   298]},
               "aarch64": {"clone": 220, "clone3": 435,
                           "deny": [221, 281, 97, 268, 198, 199, 279, 425, 426, 427, 117, 270, 271, 280, 282, 241]}}


def seccomp_no_new_processes() -> None:
    """A seccomp filter: threads may be created, processes may not (no fork, no exec), and
    no new namespaces. clone3 answers ENOSYS so that libc falls back to clone."""
    machine = _machine()
    if machine not in SECCOMP_ARCH:
        raise OSError(f"no seccomp filter for {machine}")
    nrs = SECCOMP_NRS[machine]
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, KILL = 0x7FFF0000, 0x80000000
    EPERM, ENOSYS = 0x00050000 | 1, 0x00050000 | 38
    prog = []  # (code, jt, jf, k); jumps are relative

    def ins(code, k, jt=0, jf=0):
        prog.append((code, jt, jf, k))

    ins(LD, 4)                                   # arch
    ins(JEQ, SECCOMP_ARCH[machine], 1, 0)
    ins(RET, KILL)
    ins(LD, 0)                                   # syscall number
    if machine == "x86_64":
        ins(JGE, 0x40000000, 0, 1)               # the x32 ABI
        ins(RET, EPERM)
    for nr in nrs["deny"]:
        ins(JEQ, nr, 0, 1)
        ins(RET, EPERM)
    ins(JEQ, nrs["clone3"], 0, 1)
    ins(RET, ENOSYS)
    ins(JEQ, nrs["clone"], 1, 0)
    ins(RET, ALLOW)
    ins(LD, 16)                                  # clone flags (low 32 bits)
    ins(JSET, CLONE_THREAD, 0, 1)
    ins(RET, ALLOW)
    ins(RET, EPERM)
    raw = b"".join(struct.pack("HBBI", *p) for p in prog)
    filt = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HxxxxxxQ", len(prog), ctypes.addressof(filt))
    _check(libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0), "seccomp")


# --- the learner's output --------------------------------------------------------------------


class OutputLimitExceeded(BaseException):
    """The learner's code printed more than the output limit."""


class Sink(io.TextIOBase):
    """Stands in for sys.stdout and sys.stderr: counts what is printed, keeps none of it."""

    def __init__(self, limit: int):
        self.limit, self.written, self.exceeded = limit, 0, False

    def writable(self) -> bool:
        """Always writable: printing is counted, not refused, up to the limit."""
        return True

    def write(self, s) -> int:
        """Count ``s``; raise OutputLimitExceeded once more than the limit has been printed."""
        n = len(s) if isinstance(s, str) else 0
        self.written += n
        if self.written > self.limit:
            self.exceeded = True
            raise OutputLimitExceeded(f"printed more than {self.limit} characters")
        return n

    def flush(self) -> None:
        """Nothing to flush: nothing is kept."""
        pass


# --- the learner's notebook ----------------------------------------------------------------

SKIPPED_MODULES = ("course_utils", "IPython", "matplotlib")


def strip_magics(source: str) -> str:
    """Blank out IPython-only lines (%magic, !shell), keeping line numbers."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


def kept(node: ast.stmt) -> bool:
    """Whether a top-level statement runs in grading: every statement, as "Restart & Run All"
    would run it, except imports of course_utils (the checks and their data), IPython and
    matplotlib. Check calls, plots and training then fail at once for want of those names, or
    stop at the statement budget; either way they are skipped, and grading goes on."""
    if isinstance(node, ast.Import):
        return not any(a.name.split(".")[0] in SKIPPED_MODULES for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] not in SKIPPED_MODULES
    return True


DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class StatementBudget(BaseException):
    """A top-level statement ran past its time budget (a training loop, say): it is skipped."""


def assigned_names(node: ast.stmt) -> list[str]:
    """The names a top-level statement would define, for the note when it was skipped."""
    names = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
            names.append(sub.id)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is node:
            names.append(sub.name)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in sub.names]
    return names[:20]


def describe_error(e: BaseException, calls=None) -> dict:
    """An exception as plain data for the parent: its type, message, the learner's line (when
    ``calls`` can find it), and whether it was a MemoryError or the output limit."""
    try:
        message = str(e)[:1000]
    except BaseException:  # noqa: BLE001 (a learner's exception whose __str__ fails)
        message = "(the message cannot be shown)"
    where = ""
    if calls is not None and hasattr(calls, "learner_line"):
        try:
            where = calls.learner_line(e)[:300]
        except BaseException:  # noqa: BLE001, S110 (no line to show, then)
            pass
    return {"type": type(e).__name__[:100], "message": message, "where": where,
            "memory": isinstance(e, MemoryError), "output_limit": isinstance(e, OutputLimitExceeded)}


def loaded_names(node: ast.AST) -> set[str]:
    """The names a statement reads; for a function, less its own arguments and local variables."""
    loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        args = node.args
        local = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        globals_ = {name for n in ast.walk(node) if isinstance(n, (ast.Global, ast.Nonlocal)) for name in n.names}
        loads -= local - globals_
    return loads


def needed_statements(trees: list[ast.Module], funcs: list[str]) -> set[int]:
    """The top-level statements that can matter to the exercise: imports and definitions, and the
    statements that assign a name that the functions and classes use (a helper constant, an alias,
    a lambda), or that such a statement uses in turn. Plots, checks, prints and experiments at
    the top level assign nothing the exercise reads, and are not run at all."""
    statements = [node for tree in trees for node in tree.body if kept(node)]
    needed = set(funcs)
    for node in statements:
        if isinstance(node, DEFINITIONS):
            needed |= loaded_names(node)
    chosen = {id(node) for node in statements if isinstance(node, DEFINITIONS)}
    changed = True
    while changed:
        changed = False
        for node in statements:
            if id(node) not in chosen and set(assigned_names(node)) & needed:
                chosen.add(id(node))
                needed |= loaded_names(node)
                changed = True
    return chosen


def parse_cells(cells: list[dict]) -> tuple[dict, list]:
    """Each cell parsed on its own: ({cell number: its syntax error}, [(cell, filename, tree)]).
    The sources go into ``linecache`` so that tracebacks can show the learner's lines."""
    import linecache

    syntax, parsed = {}, []
    for cell in cells:
        name = cell.get("filename") or f"<cell {cell['cell']}>"
        source = strip_magics(cell["source"])
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        try:
            parsed.append((cell, name, ast.parse(source, filename=name)))
        except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
            syntax[str(cell["cell"])] = {"type": type(e).__name__, "message": getattr(e, "msg", str(e)),
                                         "line": getattr(e, "lineno", None)}
    return syntax, parsed


def run_statement(node: ast.stmt, filename: str, namespace: dict, seconds: float) -> None:
    """Execute one top-level statement, stopped with StatementBudget after ``seconds`` (0: never)."""
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), namespace)  # noqa: S102
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def define(cells: list[dict], namespace: dict, budget: dict | None = None,
           funcs: list[str] | None = None) -> tuple[dict, list]:
    """Run the kept statements of every cell, in order; one failure stops only itself.

    With ``funcs`` (the names the exercise calls), only the statements that can matter to them
    run (``needed_statements``). Each statement may run ``budget["statement"]`` seconds, and all
    of them together ``budget["total"]``; past that a statement is stopped and skipped (imports
    and definitions are never interrupted: interrupting an import halfway, and torch takes
    seconds on a busy machine, would leave a broken module behind)."""
    budget = budget or {"statement": 1.0, "total": 3.0}
    spent, errors = 0.0, []

    def out_of_time(signum, frame):
        raise StatementBudget()

    signal.signal(signal.SIGALRM, out_of_time)
    syntax, parsed = parse_cells(cells)
    chosen = needed_statements([tree for _, _, tree in parsed], funcs) if funcs is not None else None
    for cell, name, tree in parsed:
        for node in tree.body:
            if not kept(node) or (chosen is not None and id(node) not in chosen):
                continue
            definition = isinstance(node, DEFINITIONS)
            left = min(float(budget["statement"]), float(budget["total"]) - spent)
            where = {"cell": cell["cell"], "line": node.lineno}
            if left <= 0.001 and not definition:
                errors.append({**where, "type": "budget", "message": "", "names": assigned_names(node)})
                continue
            start = time.monotonic()
            try:
                run_statement(node, name, namespace, 0 if definition else left)
            except StatementBudget:
                errors.append({**where, "type": "budget", "message": "", "names": assigned_names(node)})
            except BaseException as e:  # noqa: BLE001 (the learner's code may raise anything)
                errors.append({**where, **describe_error(e), "names": assigned_names(node)})
                if isinstance(e, OutputLimitExceeded):
                    return syntax, errors
            finally:
                if not definition:
                    spent += time.monotonic() - start
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    return syntax, errors


# --- plans: plain data in, plain arrays out ------------------------------------------------


def decode(value, arrays):
    """Undo the parent's encoding: {"$array": key}, {"$tuple": [...]}, {"$dict": [[k, v], ...]}."""
    if isinstance(value, dict):
        if "$array" in value:
            return arrays[value["$array"]]
        if "$tuple" in value:
            return tuple(decode(v, arrays) for v in value["$tuple"])
        if "$dict" in value:
            return {k: decode(v, arrays) for k, v in value["$dict"]}
        raise ValueError(f"unknown encoding {sorted(value)}")
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    return value


def load_arrays(path: str, np) -> dict:
    """The arrays of the .npz at ``path``, by name, read without pickle ({} when there is no file)."""
    if not os.path.exists(path):
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_npz(fd: int, arrays: dict, np) -> None:
    """An uncompressed .npz of plain numeric arrays, written to an already open file."""
    with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        for key, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
            z.writestr(key + ".npy", buf.getvalue())


def run_cases(job, calls, namespace, np, cases) -> tuple[list, dict]:
    """The same case loop as a self-check (``conventions.run_cases``), its outcomes written as plain data."""
    funcs = [namespace.get(name) for name in job["funcs"]]
    results, arrays = [], {}
    for i, (status, *what) in enumerate(calls.run_cases(funcs, cases, interruptible=False)):
        if status == "raised":
            results.append({"status": "raised", **describe_error(what[0], calls)})
        elif status != "returned":
            results.append({"status": status, "message": str(what[0])[:1000]})
        else:
            outputs, modified = what
            keys = {}
            for j, (name, value) in enumerate(outputs.items()):
                key = f"c{i}_{j}"
                arrays[key] = value
                keys[key] = str(name)
            results.append({"status": "returned", "outputs": keys, "modified": [str(m) for m in modified]})
    return results, arrays


# --- the inner process -----------------------------------------------------------------------


def inner(jobdir: str, job: dict, report: Protections, namespaces: str, started: int) -> None:
    """The child, inside its namespaces: lock itself down, then define the learner's code and run
    the exercise's cases, writing ``out/result.json`` and ``out/result.npz``."""
    limits, work = job["limits"], os.path.join(jobdir, "work")
    if sys.platform.startswith("linux"):
        libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    limit_pids_and_disk(limits, work, namespaces, report)
    import numpy as np

    conventions = load_conventions(jobdir)
    for module in job.get("preload", []):
        __import__(module)
    arrays = load_arrays(os.path.join(jobdir, "in", "arrays.npz"), np)
    cases = [(c["convention"], decode(c["params"], arrays)) for c in job["cases"]]
    del arrays
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out_json = os.open(os.path.join(jobdir, "out", "result.json"), flags, 0o600)
    out_npz = os.open(os.path.join(jobdir, "out", "result.npz"), flags, 0o600)
    os.chdir(work)
    os.environ.clear()
    os.environ.update({"HOME": work, "TMPDIR": work, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    set_resource_limits(limits, namespaces, report)
    if sys.platform.startswith("linux"):
        lock_down(job, work, report)
    missing = [p for p in job.get("require", []) if p not in report.on]
    result = {"protections": report.as_dict()}
    if missing:
        result["refused"] = "sandbox protections did not engage: " + ", ".join(missing)
        os.write(out_json, json.dumps(result).encode())
        os._exit(SANDBOX_REFUSED)
    if job.get("probe"):
        result["probe"] = probe(job.get("probe_paths", []), job.get("grader_pid", 0))
        os.write(out_json, json.dumps(result).encode())
        return
    outputs = run_learner_code(jobdir, job, conventions, np, cases, result, started)
    try:
        write_npz(out_npz, outputs, np)
    except BaseException as e:  # noqa: BLE001
        result["write_error"] = describe_error(e)
    os.write(out_json, json.dumps(result, allow_nan=True).encode())


def limit_pids_and_disk(limits: dict, work: str, namespaces: str, report: Protections) -> None:
    """In a PID namespace, cap the number of processes; in a mount namespace, make the working
    directory a small tmpfs of its own."""
    if "pid" in namespaces:
        try:  # per PID namespace since Linux 6.14; 301 is the smallest value allowed
            _write_proc("/proc/sys/kernel/pid_max", str(limits["pids"]))
            report.set("pid_max", f"at most {limits['pids'] - 1} processes and threads")
        except OSError as e:
            report.fail("pid_max", e.strerror)
    if "mount" in namespaces:
        try:
            _check(libc().mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount private")
            opts = f"size={limits['disk']},mode=0700".encode()
            _check(libc().mount(b"tmpfs", work.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts),
                   "mount tmpfs")
            report.set("tmpfs", f"working directory limited to {limits['disk'] >> 20} MiB")
        except OSError as e:
            report.fail("tmpfs", e)


def load_conventions(jobdir: str):
    """The calling conventions (``course_utils/checking/conventions.py``, compiled), as a module."""
    import importlib.machinery
    import importlib.util

    path = os.path.join(jobdir, "in", "conventions.pyc")
    spec = importlib.util.spec_from_loader("conventions", importlib.machinery.SourcelessFileLoader("conventions", path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def set_resource_limits(limits: dict, namespaces: str, report: Protections) -> None:
    """CPU time, address space, file size, open files and (in a user namespace) processes."""
    import resource

    if hasattr(signal, "SIGXFSZ"):  # a write past the file size limit fails with an error instead
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cpu = int(limits["cpu"])
    for name, soft, hard in [("RLIMIT_CORE", 0, 0), ("RLIMIT_CPU", cpu, cpu + 1),
                             ("RLIMIT_AS", limits["memory"], limits["memory"]),
                             ("RLIMIT_FSIZE", limits["file_size"], limits["file_size"]),
                             ("RLIMIT_NOFILE", limits["open_files"], limits["open_files"]),
                             ("RLIMIT_NPROC", limits["pids"], limits["pids"])]:
        if name == "RLIMIT_NPROC" and "user" not in namespaces:
            continue  # outside a user namespace it would count every process of this user
        try:
            resource.setrlimit(getattr(resource, name), (soft, hard))
            note = " (does not bind user id 0)" if name == "RLIMIT_NPROC" and os.geteuid() == 0 else ""
            report.set(name, f"{soft}{note}")
        except (ValueError, OSError, AttributeError) as e:
            report.fail(name, e)


def lock_down(job: dict, work: str, report: Protections) -> None:
    """No new privileges, Landlock, no capabilities, seccomp: each step recorded, or why it failed."""
    def no_new_privs():
        _check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
        return "set: nothing gains privileges by exec"

    def landlocked():
        abi = landlock(job["readable"], [work], ["/dev/null"])
        return (f"ABI {abi}: reads only the Python installation, writes only its working directory"
                + (", no TCP" if abi >= 4 else "") + (", no signals or abstract sockets outside" if abi >= 6 else ""))

    def no_capabilities():
        drop_capabilities()
        return "all dropped"

    def no_processes():
        seccomp_no_new_processes()
        return "no fork, no exec, no new namespaces, no sockets of any family, no memfd, no io_uring, no ptrace"

    for name, step in [("no_new_privs", no_new_privs), ("landlock", landlocked),
                       ("capabilities", no_capabilities), ("seccomp", no_processes)]:
        if name in job.get("skip", []):
            report.fail(name, "skipped")
            continue
        try:
            report.set(name, step())
        except OSError as e:
            report.fail(name, e)


def run_learner_code(jobdir: str, job: dict, conventions, np, cases: list, result: dict, started: int) -> dict:
    """With output captured and file descriptors 0-2 on /dev/null: define the learner's code, run
    the cases, and fill ``result``; returns the output arrays."""
    limits = job["limits"]
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # what the learner's code writes at the C level goes nowhere
        os.dup2(devnull, fd)
    os.close(devnull)
    os.write(started, b"1")
    os.close(started)
    sink = Sink(limits["output"])
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = sink
    sys.stdin = sys.__stdin__ = io.StringIO()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    for cell in job["cells"]:  # given code is not the learner's: tracebacks skip it
        if cell.get("given"):
            cell["filename"] = os.path.join(jobdir, "in", "given.py")
    syntax, errors = define(job["cells"], namespace, job.get("budget"), list(job["funcs"]))
    result.update(syntax_errors=syntax, definition_errors=errors)
    result["undefined"] = [n for n in job["funcs"] if not callable(namespace.get(n))]
    outputs = {}
    if not result["undefined"] and not sink.exceeded:
        result["cases"], outputs = run_cases(job, conventions, namespace, np, cases)
    result["printed"] = sink.written
    result["output_limit"] = sink.exceeded
    return outputs


def probe(paths: list[str], grader: int) -> dict:
    """What learner code could do in here: each attempt should fail."""
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as f:
                f.read(1)
            out[f"read {path}"] = "allowed"
        except OSError as e:
            out[f"read {path}"] = f"denied ({type(e).__name__})"
    try:
        with open(os.path.join(os.environ.get("HOME", "."), "probe.txt"), "w") as f:
            f.write("ok")
        out["write in the working directory"] = "allowed"
    except OSError as e:
        out["write in the working directory"] = f"denied ({type(e).__name__})"
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        out["fork"] = "allowed"
    except OSError as e:
        out["fork"] = f"denied ({type(e).__name__})"
    import socket
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.close()
        out["create a Unix socket (to reach docker.sock, D-Bus, ssh-agent)"] = "allowed"
    except OSError as e:
        out["create a Unix socket (to reach docker.sock, D-Bus, ssh-agent)"] = f"denied ({type(e).__name__})"
    try:
        fd = os.memfd_create("probe")
        os.close(fd)
        out["memfd_create (memory outside the limit)"] = "allowed"
    except (OSError, AttributeError) as e:
        out["memfd_create (memory outside the limit)"] = f"denied ({type(e).__name__})"
    for family, kind, addr, what in [(socket.AF_INET, socket.SOCK_STREAM, ("1.1.1.1", 53), "tcp"),
                                     (socket.AF_INET, socket.SOCK_DGRAM, ("1.1.1.1", 53), "udp")]:
        try:
            s = socket.socket(family, kind)
            s.settimeout(1)
            s.connect(addr)
            if kind == socket.SOCK_DGRAM:
                s.send(b"x")
            s.close()
            out[f"network ({what})"] = "allowed"
        except OSError as e:
            out[f"network ({what})"] = f"denied ({type(e).__name__})"
    if grader:
        try:
            os.kill(grader, 0)
            out["signal the grading process"] = "allowed"
        except OSError as e:
            out["signal the grading process"] = f"denied ({type(e).__name__})"
    return out


# --- the outer process -------------------------------------------------------------------------


def watch(pid: int, wall: float) -> tuple[int, bool]:
    """Wait for the inner process, at most ``wall`` seconds; then kill it and all it started."""
    deadline = time.monotonic() + wall
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            for kill in (os.kill, os.killpg):  # PID 1 of a namespace takes everything with it
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            return os.waitpid(pid, 0)[1], True
        if pidfd is not None:
            select.select([pidfd], [], [], remaining)
        else:
            time.sleep(min(0.02, remaining))


def main() -> int:
    """The outer process: enter the namespaces, fork the inner one, watch the wall-clock limit and
    write ``out/outer.json`` with how it ended. Returns 0."""
    jobdir = os.path.abspath(sys.argv[1])
    with open(os.path.join(jobdir, "in", "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    sys.path[:] = job["sys_path"]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    outer_fd = os.open(os.path.join(jobdir, "out", "outer.json"), flags, 0o600)
    report = Protections()
    skip = set(job.get("skip", []))  # for tests of what happens where the kernel offers less
    if "namespaces" in skip:
        report.fail("namespaces", "skipped")
        namespaces = ""
    else:
        namespaces = enter_namespaces(report)
    started_r, started_w = os.pipe()  # the inner process says when the learner's code starts
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(outer_fd)
        os.close(started_r)
        try:
            os.setpgid(0, 0)
            inner(jobdir, job, report, namespaces, started_w)
            code = 0
        except BaseException:  # noqa: BLE001 (a failure of the sandbox itself, not of learner code)
            try:
                traceback.print_exc(file=sys.__stderr__)
            finally:
                code = SETUP_FAILED
        os._exit(code)
    os.close(started_w)
    status, timed_out = watch(pid, float(job["limits"]["wall"]))
    os.set_blocking(started_r, False)
    try:
        learner_started = os.read(started_r, 1) == b"1"
    except OSError:
        learner_started = False
    try:
        os.killpg(pid, signal.SIGKILL)  # leftovers, when there is no PID namespace
    except OSError:
        pass
    outcome = {"protections": report.as_dict(), "wall_timeout": timed_out, "learner_started": learner_started, "seconds": round(time.monotonic() - start, 3),
               "exit_code": os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status}
    os.ftruncate(outer_fd, 0)  # whatever else may have been written there goes
    os.pwrite(outer_fd, json.dumps(outcome).encode(), 0)
    os.close(outer_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
