"""Submissions for the grader's tests, made from the course's own notebooks by editing text.

A hostile submission is the student notebook with every exercise solved from solutions/
except one, whose stub line ``raise NotImplementedError("Exercise 0.1: sigmoid")`` is
replaced by hostile code. Its honest part is therefore worth the notebook's points minus
that exercise's, and it must never score more.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from course_utils.release import EXERCISE_RE


def tiny_course(root: Path, stem: str, cells: list[str]) -> tuple[Path, Path, dict, dict]:
    """A course of one notebook made of ``cells`` (code sources), for grading tests:
    (solutions folder, submissions folder, solution, hand-out). The solution is already handed in
    as student "ada" and the hand-out as "bob", at ``SUBMISSIONS/<student>/<stem>.ipynb``."""
    import nbformat

    from course_utils.release import student_version

    solutions, subs = root / "solutions", root / "subs"
    solutions.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
    nbformat.write(notebook, solutions / f"{stem}.ipynb")
    hand_out = json.loads(nbformat.writes(student_version(notebook, f"{stem}.ipynb")))
    solution = json.loads(nbformat.writes(notebook))
    write(solution, subs / "ada" / f"{stem}.ipynb")
    write(hand_out, subs / "bob" / f"{stem}.ipynb")
    return solutions, subs, solution, hand_out


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write(nb: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    return path


def source(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def exercise_of(cell: dict) -> str | None:
    m = EXERCISE_RE.search(source(cell)) if cell.get("cell_type") == "code" else None
    return m["name"] if m else None


def solved(student: dict, solution: dict, names=None) -> dict:
    """The student notebook with the exercises in ``names`` (all if None) filled in from the solution."""
    answers = {exercise_of(c): source(c) for c in solution["cells"] if exercise_of(c)}
    nb = copy.deepcopy(student)
    for cell in nb["cells"]:
        name = exercise_of(cell)
        if name and (names is None or name in names):
            set_source(cell, answers[name])
    return nb


def replace_stub(nb: dict, name: str, body: str) -> dict:
    """Replace the stub line of exercise ``name`` by ``body`` (at the stub's indentation)."""
    nb = copy.deepcopy(nb)
    pattern = re.compile(rf'^(?P<indent>[ \t]*)raise NotImplementedError\("Exercise [\d.]+: {name}"\)\s*$',
                         re.MULTILINE)
    for cell in nb["cells"]:
        text = source(cell)
        m = pattern.search(text) if cell.get("cell_type") == "code" else None
        if m:
            indented = "\n".join(m["indent"] + line if line else line for line in body.strip("\n").split("\n"))
            set_source(cell, text[:m.start()] + indented + text[m.end():])
            return nb
    raise ValueError(f"no stub of {name}")


def hostile(student: dict, solution: dict, name: str, body: str) -> dict:
    """Every exercise solved except ``name``, whose stub becomes ``body``."""
    others = {exercise_of(c) for c in solution["cells"] if exercise_of(c)} - {name}
    return replace_stub(solved(student, solution, others), name, body)


def hostile_bodies(grader_pid: int, submission: Path, solution_file: Path, marker: Path) -> dict[str, str]:
    """Bodies for the stub of ``sigmoid(x)``, by name. Each one is attacked, never honest."""
    return {
        "infinite_loop": "while True:\n    pass",
        "sleep_forever": "import time\ntime.sleep(10**6)",
        "memory_bomb": "blocks = []\nwhile True:\n    blocks.append(np.ones(10**7))",
        "fork_bomb": "import os\nwhile True:\n    os.fork()",
        "os_exit": "import os\nos._exit(3)",
        "segfault": "import ctypes\nctypes.string_at(0)",
        "sys_exit": "import sys\nsys.exit(0)",
        "keyboard_interrupt": "raise KeyboardInterrupt",
        "print_flood": "while True:\n    print('✓ sigmoid: correct on 9 cases.' * 100)",
        "write_files": (f"import os\nopen('scratch.txt', 'w').write('hi')\nos.remove('scratch.txt')\n"
                        f"open({str(submission)!r}, 'w').write('{{}}')"),
        "delete_submission": f"import os\nos.remove({str(submission)!r})",
        "fill_disk": "for i in range(100):\n    open(f'f{i}', 'wb').write(b'x' * 2**20)",
        "read_solutions": (f"import json\nnb = json.load(open({str(solution_file)!r}))\n"
                           "code = [''.join(c['source']) for c in nb['cells'] if 'def sigmoid' in ''.join(c['source'])]\n"
                           "ns = {'np': np}\nexec(code[0], ns)\nreturn ns['sigmoid'](x)"),
        "import_reference": "from course_utils.reference import sigmoid as ref\nreturn ref(x)",
        "eq_always_true": ("class Liar:\n    def __eq__(self, other):\n        return True\n"
                           "    def __array__(self, dtype=None, copy=None):\n        return np.zeros(1)\nreturn Liar()"),
        "ndarray_subclass": ("class Liar(np.ndarray):\n    def __eq__(self, other):\n        return True\n"
                             "return np.zeros_like(x).view(Liar)"),
        "object_array": "return np.array([object()] * x.size, dtype=object).reshape(x.shape)",
        "pickle_bytes": "import pickle\nreturn pickle.dumps(1 / (1 + np.exp(-x)))",
        # Correct values, but sent back as a pickled object array with a payload that would
        # create `marker` if anyone unpickled it.
        "forged_pickle_result": (
            "import os, sys\nrunner = sys.modules['__main__']\n"
            "class Payload:\n"
            f"    def __reduce__(self):\n        return (os.system, ('touch {marker}',))\n"
            "def evil(fd, arrays, np):\n"
            "    with os.fdopen(fd, 'wb') as f:\n"
            "        np.savez(f, **{k: np.array([Payload()], dtype=object) for k in arrays})\n"
            "runner.write_npz = evil\nreturn 1 / (1 + np.exp(-x))"),
        "kill_grader": f"import os, signal\nos.kill({grader_pid}, signal.SIGKILL)",
        "network": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
        "raise_with_inputs": "raise ValueError('the hidden inputs are ' + repr(x))",
        "fake_print": "print('✓ sigmoid: correct on 9 cases.')\nraise NotImplementedError('Exercise 0.1: sigmoid')",
        "wrong_with_hint": "return np.tanh(x)",
        "unix_socket": "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/var/run/docker.sock')",
        "memfd": "import os\nfd = os.memfd_create('ram')\nos.ftruncate(fd, 2**31)",
        # An exception whose traceback line would carry the hidden inputs, if the grader believed
        # the child's "where": the line shown must be one of the submitted code's own lines.
        "forge_where": (
            "import os, json, stat\n"
            "forged = json.dumps({'protections': {'on': {}, 'off': {}}, 'syntax_errors': {}, 'definition_errors': [],"
            " 'undefined': [], 'printed': 0, 'output_limit': False, 'cases': [{'status': 'raised', 'type': 'ValueError',"
            " 'message': 'forged', 'where': 'in sigmoid: x = ' + repr(x.tolist())}]}).encode()\n"
            "for fd in range(3, 64):\n"
            "    try:\n"
            "        st = os.fstat(fd)\n"
            "    except OSError:\n"
            "        continue\n"
            "    if stat.S_ISREG(st.st_mode) and st.st_size == 0:\n"
            "        os.write(fd, forged)\n"
            "        os._exit(0)"),
    }


def strip_metadata(nb: dict) -> dict:
    """As some editors save it: no cell ids or metadata, no outputs, sources as one string."""
    nb = copy.deepcopy(nb)
    nb["metadata"] = {}
    for cell in nb["cells"]:
        for key in ("id", "metadata", "outputs", "execution_count", "attachments"):
            cell.pop(key, None)
        cell["source"] = source(cell)
    return nb


def reorder(nb: dict) -> dict:
    """Code cells in reverse order (markdown cells left in place)."""
    nb = copy.deepcopy(nb)
    slots = [i for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"]
    code = [nb["cells"][i] for i in slots]
    for i, cell in zip(slots, reversed(code)):
        nb["cells"][i] = cell
    return nb


def map_exercise_cell(nb: dict, name: str, change) -> dict:
    """Apply ``change(cells, index)`` to the list of cells at the cell holding exercise ``name``."""
    nb = copy.deepcopy(nb)
    i = next(i for i, c in enumerate(nb["cells"]) if exercise_of(c) == name)
    change(nb["cells"], i)
    return nb


def duplicate_exercise(nb: dict, name: str) -> dict:
    return map_exercise_cell(nb, name, lambda cells, i: cells.insert(i + 1, copy.deepcopy(cells[i])))


def remove_exercise(nb: dict, name: str) -> dict:
    return map_exercise_cell(nb, name, lambda cells, i: cells.pop(i))


def edit_exercise(nb: dict, name: str, edit) -> dict:
    return map_exercise_cell(nb, name, lambda cells, i: set_source(cells[i], edit(source(cells[i]))))


def other_course() -> dict:
    """A valid notebook with exercise markers of another course."""
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": "# EXERCISE 3.1: attention_weights (2 points)\ndef attention_weights(q, k):\n    return q @ k.T\n"}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}
