"""The grader as an instructor runs it: an ordinary user, not root; with unprivileged user
namespaces, and without them (as on Ubuntu 24.04, whose AppArmor denies them by default).

The test creates a system user, gives it a view of this Python (the interpreter may live under
/root, which other users cannot enter: a private mount namespace binds it elsewhere), and runs
``python -m course_utils grade`` as that user with ``setpriv``. "Without user namespaces" is made
with a seccomp filter, installed before the grader starts and inherited by everything it runs,
that makes every attempt to create a namespace fail as a denying kernel would (EPERM).

Without namespaces the grader must refuse, say what is missing and how to get it; with
``--allow-weak-sandbox`` it grades, records the weakness in grades.json, and a child's
``kill(-1, SIGKILL)`` or an attempt to reach the network still costs only that exercise.
"""
from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import grading_corpus as corpus
import pytest
from conftest import NOTEBOOKS, ROOT, SOLUTIONS

USER = "course-grader-test"
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or not shutil.which("setpriv")
    or not shutil.which("unshare") or not shutil.which("useradd"),
    reason="needs Linux, root (to create the user), setpriv, unshare and useradd")

# Installed by the unprivileged launcher before it execs the grader: unshare(2) and clone(2) with
# CLONE_NEWUSER/NEWNS/NEWPID/NEWNET fail with EPERM; clone3 says ENOSYS so that libc falls back to clone.
NO_NAMESPACES = textwrap.dedent("""
    import ctypes, os, struct, sys
    libc = ctypes.CDLL(None, use_errno=True)
    NS = 0x10000000 | 0x20000 | 0x20000000 | 0x40000000
    UNSHARE, CLONE, CLONE3 = {"x86_64": (272, 56, 435), "aarch64": (97, 220, 435)}[os.uname().machine]
    ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}[os.uname().machine]
    ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050001, 0x00050026
    prog = [(0x20, 0, 0, 4), (0x15, 1, 0, ARCH), (0x06, 0, 0, ALLOW), (0x20, 0, 0, 0),
            (0x15, 0, 1, UNSHARE), (0x06, 0, 0, EPERM), (0x15, 0, 1, CLONE3), (0x06, 0, 0, ENOSYS),
            (0x15, 1, 0, CLONE), (0x06, 0, 0, ALLOW), (0x20, 0, 0, 16), (0x45, 0, 1, NS),
            (0x06, 0, 0, EPERM), (0x06, 0, 0, ALLOW)]
    raw = b"".join(struct.pack("HBBI", *p) for p in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HxxxxxxQ", len(prog), ctypes.addressof(buf))
    assert libc.prctl(38, 1, 0, 0, 0) == 0  # no_new_privs
    assert libc.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0) == 0, ctypes.get_errno()
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
""")


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def run_as_user(tmp_path: Path, args: list[str], namespaces: bool) -> subprocess.CompletedProcess:
    """``python -m course_utils grade ARGS`` as the test user, in a mount namespace where this
    Python is bound to a folder that user can enter."""
    user = ensure_user()
    view = tmp_path / "python"
    view.mkdir(mode=0o755, exist_ok=True)
    python = view / Path(os.path.realpath(sys.executable)).relative_to(sys.base_prefix)
    site = next(p for p in sys.path if p.endswith("site-packages") and str(ROOT) in p)
    launcher = tmp_path / "no_namespaces.py"
    launcher.write_text(NO_NAMESPACES)
    launcher.chmod(0o644)
    command = [str(python), "-I"] + ([] if namespaces else [str(launcher), "-I"]) + [
        "-c", f"import sys; sys.path[:0] = [{str(ROOT)!r}, {site!r}]; from course_utils.__main__ import main; "
              "sys.exit(main())", "grade", *args]
    script = (f"mount --bind {sys.base_prefix} {view} && exec setpriv --reuid={user.pw_uid} "
              f"--regid={user.pw_gid} --clear-groups --inh-caps=-all --bounding-set=-all -- "
              + " ".join(shlex.quote(c) for c in command))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COURSE_GRADING_SEED": "unprivileged", "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def small_class(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Notebook 00: the solution, and three attacks on sigmoid (softmax solved: 1 honest point)."""
    user = ensure_user()
    subs, out, solutions = tmp_path / "subs", tmp_path / "out", tmp_path / "solutions"
    student, solution = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    corpus.write(solution, solutions / "00_welcome.ipynb")
    corpus.write(solution, subs / "ada" / "00_welcome.ipynb")
    attacks = {"kill_all": "import os, signal\nos.kill(-1, signal.SIGKILL)",
               "network": "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)",
               "unix_socket": "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/run/dbus/system_bus_socket')"}
    for name, body in attacks.items():
        corpus.write(corpus.hostile(student, solution, "sigmoid", body), subs / name / "00_welcome.ipynb")
    for path in [tmp_path, *tmp_path.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)
    tmp_path.chmod(0o755)
    return subs, out, solutions


@pytest.fixture
def home():
    """A folder the test user can reach (pytest's own temporary folders are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="grader-user-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def grade_args(subs, out, solutions, *extra):
    return [str(subs), "--out", str(out), "--solutions", str(solutions), "--jobs", "2", "--time-limit", "20",
            "--no-progress", *extra]


def test_as_an_ordinary_user_with_namespaces_the_class_is_graded_in_the_full_sandbox(home):
    subs, out, solutions = small_class(home)
    done = run_as_user(home, grade_args(subs, out, solutions), namespaces=True)
    if done.returncode == 2 and "namespaces is not in force" in done.stderr:
        pytest.skip("this kernel denies unprivileged user namespaces: " + done.stderr[-300:])
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "grades.json").read_text())
    assert results["sandbox"]["weak"] is False and results["sandbox"]["missing"] == []
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 2, "kill_all": 1, "network": 1, "unix_socket": 1}, totals


def test_as_an_ordinary_user_without_namespaces_grading_refuses_and_says_how_to_fix_it(home):
    subs, out, solutions = small_class(home)
    done = run_as_user(home, grade_args(subs, out, solutions), namespaces=False)
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "refusing to grade" in done.stderr and "namespaces is not in force" in done.stderr, done.stderr
    assert "apparmor_restrict_unprivileged_userns" in done.stderr and "--allow-weak-sandbox" in done.stderr
    assert not (out / "grades.csv").exists()


def test_as_an_ordinary_user_without_namespaces_when_told_the_grades_record_it_and_attacks_cost_one_exercise(home):
    subs, out, solutions = small_class(home)
    done = run_as_user(home, grade_args(subs, out, solutions, "--allow-weak-sandbox"), namespaces=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "grades.json").read_text())
    assert results["sandbox"]["weak"] is True and "namespaces" in results["sandbox"]["missing"]
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 2, "kill_all": 1, "network": 1, "unix_socket": 1}, totals  # the grader survived kill(-1)
    assert any("namespaces" in w for w in results["warnings"])


@pytest.fixture(scope="module")
def corpus_as_user():
    """The whole hostile corpus of tests/test_grading.py, graded by the unprivileged user."""
    import test_grading as tg

    if not tg.HAVE_COURSE:
        pytest.skip("notebooks 00-02 are not written yet")
    home = Path(tempfile.mkdtemp(prefix="grader-user-"))
    home.chmod(0o755)
    try:
        subs, out, marker = home / "subs", home / "out", home / "UNPICKLED"
        tg.build_class(subs, marker)
        solutions = tg.course_00_02(home)
        user = ensure_user()
        for path in [home, *home.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        before = tg.sha256_tree(subs)
        done = run_as_user(home, [str(subs), "--out", str(out), "--solutions", str(solutions), "--jobs", "2",
                                  "--time-limit", "8", "--memory", "512", "--no-progress"], namespaces=True)
        if done.returncode == 2 and "namespaces is not in force" in done.stderr:
            pytest.skip("this kernel denies unprivileged user namespaces")
        assert done.returncode == 0, done.stderr[-3000:]
        results = json.loads((out / "grades.json").read_text())
        yield {s["student"]: s for s in results["students"]}, results, tg.sha256_tree(subs) == before, marker.exists()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_as_an_ordinary_user_every_attack_of_the_corpus_gets_its_verdict_and_only_its_honest_part(corpus_as_user):
    import test_grading as tg

    students, results, unchanged, unpickled = corpus_as_user
    assert unchanged and not unpickled
    assert students["solution"]["total"] == students["solution"]["possible"] > 0
    active = results["sandbox"]["protections"]
    for name, (status, words) in tg.HOSTILE.items():
        if name == "fill_disk" and "tmpfs" not in active:
            continue
        s = students[f"hostile_{name}"]
        sigmoid, softmax = (next(e for e in s["exercises"] if e["exercise"] == n) for n in ("sigmoid", "softmax"))
        assert sigmoid["status"] == status and words in sigmoid["reason"] + " ".join(sigmoid["details"]), (name, sigmoid)
        assert softmax["status"] == "passed" and s["total"] == softmax["possible"], (name, s["total"])
