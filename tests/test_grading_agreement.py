"""A grade agrees with the self-check: notebooks written in every legitimate style get, from the
grader, exactly the verdicts their own check cells print after Restart & Run All.

Each style is notebook 00 (or 01) as a learner might really write it: helper cells, aliases,
lambdas, constants computed with NumPy, imports in other cells or inside functions, the marker's
text in a string, a comment or a markdown cell, slow statements at the top level, an exercise
that calls an earlier one, and two that are wrong in a helper. The notebooks are run with
nbclient as "Restart & Run All" would, the verdict lines of their check cells are read, and the
whole set is graded once.
"""
from __future__ import annotations

import copy
import json
import re
import sys
import warnings

import grading_corpus as corpus
import nbformat
import pytest
from conftest import NOTEBOOKS, SOLUTIONS

from course_utils.grading import Limits, Options, grade
from course_utils.notebooks import execute

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux's")

MiB = 1 << 20
SIGMOID = "# EXERCISE 0.1: sigmoid (1 point)\ndef sigmoid(x):\n"
SOFTMAX = "# EXERCISE 0.2: softmax (1 point)\ndef softmax(scores):\n"


def code(text: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": text}


def markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def with_cells(nb: dict, name: str, exercise: str | None = None, before: list | None = None,
               after: list | None = None) -> dict:
    """Notebook ``nb`` with exercise ``name``'s cell replaced by ``exercise`` (when given), and
    cells inserted just before and just after it."""
    nb = copy.deepcopy(nb)
    i = next(i for i, c in enumerate(nb["cells"]) if corpus.exercise_of(c) == name)
    if exercise is not None:
        corpus.set_source(nb["cells"][i], exercise)
    nb["cells"][i + 1:i + 1] = after or []
    nb["cells"][i:i] = before or []
    return nb


def styles() -> dict[str, tuple[str, dict]]:
    """Student -> (notebook name, notebook)."""
    student00, solution00 = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    solved = corpus.solved(student00, solution00)
    student01, solution01 = corpus.load(NOTEBOOKS / "01_rnn_forward.ipynb"), corpus.load(SOLUTIONS / "01_rnn_forward.ipynb")
    nb = {
        "helper_constant": with_cells(solved, "sigmoid", SIGMOID + "    return ONE / (ONE + np.exp(-x))\n",
                                      before=[code("ONE = int('1')  # computed, not a literal")]),
        "alias": with_cells(solved, "softmax", SOFTMAX + "    e = exp(scores - scores.max(-1, keepdims=True))\n"
                                                         "    return e / e.sum(-1, keepdims=True)\n",
                            before=[code("exp = np.exp")]),
        "lambda_helper": with_cells(solved, "sigmoid", SIGMOID + "    e = stable_exp(x)\n"
                                                                 "    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))\n",
                                    before=[code("stable_exp = lambda z: np.exp(-np.abs(z))")]),
        "numpy_constant": with_cells(solved, "sigmoid", SIGMOID + "    z = np.clip(x, -LIMIT, LIMIT)\n"
                                                                  "    return 1 / (1 + np.exp(-z))\n",
                                     before=[code("LIMIT = np.float32(np.log(np.finfo(np.float32).max)) - 1")]),
        "import_in_another_cell": with_cells(solved, "sigmoid", SIGMOID + "    return expit(x)\n",
                                             after=[code("def expit(x):\n    e = E(-np.abs(x))\n"
                                                         "    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))\n"),
                                                    code("from numpy import exp as E")]),
        "import_inside_function": with_cells(solved, "softmax", SOFTMAX + "    import numpy\n"
                                                                          "    e = numpy.exp(scores - scores.max(-1, keepdims=True))\n"
                                                                          "    return e / e.sum(-1, keepdims=True)\n"),
        "marker_mentioned": with_cells(solved, "softmax", before=[
            markdown("My notes on `# EXERCISE 0.2: softmax (1 point)` below."),
            code('NOTE = """\n# EXERCISE 0.2: softmax (1 point)\n"""\n# copied from above: # EXERCISE 0.1: sigmoid (1 point)\n'
                 "print(NOTE)")]),
        "slow_top_level": with_cells(solved, "softmax", before=[code("import time\ntime.sleep(1.5)\nWAITED = True")]),
        "wrong_helper": with_cells(solved, "sigmoid", SIGMOID + "    return HALF + 0 * x\n",
                                   before=[code("HALF = np.float64(0.5)")]),
        "helper_crashes": with_cells(solved, "softmax", SOFTMAX + "    return normalise(np.exp(scores))\n",
                                     before=[code("def normalise(e):\n    return e / e.sum(axis=2, keepdims=True)\n")]),
    }
    out = {name: ("00_welcome", notebook) for name, notebook in nb.items()}
    out["calls_earlier_exercises"] = ("01_rnn_forward", corpus.solved(student01, solution01))
    return out


VERDICT = re.compile(r"^([✓✗○]) (\w+):", re.MULTILINE)
STATUS = {"✓": "passed", "○": "not attempted"}


def self_checks(nb: dict, tmp_path) -> dict[str, str]:
    """Exercise -> "passed", "not attempted" or "failed", as the check cells said after Run All."""
    ran = execute(nbformat.reads(json.dumps(nb), as_version=4), cwd=tmp_path, timeout=120, allow_errors=True)
    said = {}
    for cell in ran.cells:
        if cell.cell_type == "code" and "check." in cell.source and "check.demo" not in cell.source:
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            for mark, name in VERDICT.findall(text):
                said[name] = STATUS.get(mark, "failed")
    return said


@pytest.fixture(scope="module")
def agreement(tmp_path_factory):
    root = tmp_path_factory.mktemp("agreement")
    subs, solutions = root / "subs", root / "solutions"
    expected = {}
    for student, (notebook, nb) in styles().items():
        corpus.write(nb, subs / student / f"{notebook}.ipynb")
        expected[student] = self_checks(nb, root)
    for notebook in ("00_welcome", "01_rnn_forward"):
        (solutions / f"{notebook}.ipynb").parent.mkdir(exist_ok=True)
        (solutions / f"{notebook}.ipynb").write_bytes((SOLUTIONS / f"{notebook}.ipynb").read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = grade(subs, root / "out", Options(solutions=solutions, seed="agreement", jobs=2, progress=False,
                                                   limits=Limits(wall=20, cpu=20, memory=1024 * MiB)))
    graded = {s["student"]: s for s in results["students"]}
    return expected, graded


@pytest.mark.parametrize("student", sorted(styles()))
def test_the_grade_says_what_the_self_check_said(agreement, student):
    expected, graded = agreement
    said = expected[student]
    got = {e["exercise"]: e for e in graded[student]["exercises"] if e["status"] != "not submitted"}
    assert said and set(said) == set(got), (said, sorted(got))
    for name, verdict in said.items():
        status = got[name]["status"]
        assert (status if status in ("passed", "not attempted") else "failed") == verdict, (name, got[name])


def test_the_styles_include_wrong_work(agreement):
    """The corpus is not all passes: a wrong helper and a crashing helper fail in both."""
    expected, _ = agreement
    assert expected["wrong_helper"]["sigmoid"] == "failed"
    assert expected["helper_crashes"]["softmax"] == "failed"
    assert all(v == "passed" for k, said in expected.items() if k not in ("wrong_helper", "helper_crashes")
               for v in said.values())


def test_a_skipped_slow_statement_is_noted_only_where_it_matters(agreement):
    _, graded = agreement
    e = next(e for e in graded["slow_top_level"]["exercises"] if e["exercise"] == "softmax")
    assert e["status"] == "passed" and e["notes"] == []
