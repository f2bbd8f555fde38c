"""What the class got wrong: the class report counts each diagnosed mistake exactly, and the
benchmark's class holds the mistakes its docstring says it does."""
from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import grading_corpus as corpus
import numpy as np
import pytest
from conftest import NOTEBOOKS, ROOT, SOLUTIONS
from test_grading import LIMITS, LINUX, SEED

from course_utils import reference
from course_utils.check import EXERCISES
from course_utils.grading import Options, grade
from course_utils.grading.class_report import class_report, letters, markdown, write_class_report

LSTM_ORDER = ("lstm_step_forward", "your output matches the LSTM with the blocks in the order i, f, o, g")
NO_BIAS = ("rnn_step_forward", "the bias b is missing")
# lstm_step_forward with the blocks of a read in the order i, f, o, g (the catalogue's first order)
IFOG = """H = prev_h.shape[1]
a = x @ Wx + prev_h @ Wh + b
i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
o, g = sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
next_c = f * prev_c + i * g
next_h = o * np.tanh(next_c)
cache = None"""


def hint(exercise: str, words: str) -> str:
    [found] = [m.hint for m in EXERCISES[exercise].mistakes if m.hint.startswith(words)]
    return found


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_grading", ROOT / "benchmarks" / "bench_grading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the report, from a results dict -------------------------------------------------------------


def results_of(statuses: dict[str, list[tuple[str, str]]]) -> dict:
    """A minimal grades.json: {exercise: [(status, mistake) per student]}, all in notebook "01_x"."""
    names = list(statuses)
    n = len(next(iter(statuses.values())))
    return {"course": {"notebooks": [{"name": "01_x", "exercises": [
                {"number": f"1.{k + 1}", "name": name, "points": 1} for k, name in enumerate(names)]}]},
            "students": [{"student": f"s{i}", "exercises": [
                {"notebook": "01_x", "exercise": name, "status": statuses[name][i][0],
                 "mistake": statuses[name][i][1]} for name in names]} for i in range(n)]}


def test_the_report_counts_each_outcome_and_puts_what_most_got_wrong_first(tmp_path):
    results = results_of({
        "easy": [("passed", "")] * 3 + [("not attempted", ""), ("not submitted", "")],
        "hard": [("wrong", "M1"), ("wrong", "M1"), ("wrong", "M2"), ("wrong", ""), ("timeout", "")],
        "mid": [("passed", ""), ("crashed", ""), ("wrong", ""), ("missing", ""), ("out of memory", "")],
    })
    report = class_report(results)
    assert [row["exercise"] for row in report["exercises"]] == ["hard", "mid", "easy"]
    hard, mid, easy = report["exercises"]
    assert hard["mistakes"] == [{"hint": "M1", "students": 2}, {"hint": "M2", "students": 1}]
    assert (hard["passed"], hard["diagnosed"], hard["wrong"], hard["crashed"], hard["failed"]) == (0, 3, 1, 1, 5)
    assert (mid["passed"], mid["wrong"], mid["crashed"], mid["not attempted"]) == (1, 1, 2, 1)
    assert (easy["passed"], easy["not attempted"], easy["failed"]) == (3, 2, 0)
    text = markdown(report)
    assert "- **2 of 5** (A): M1" in text and "- **1 of 5** (B): M2" in text
    paths = write_class_report(results, tmp_path)
    assert results["class_report"] == report
    assert paths["class_report_figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [letters(i) for i in (0, 25, 26, 27)] == ["A", "Z", "AA", "AB"]


# --- the report of a graded class -----------------------------------------------------------------


def small_class(subs: Path) -> None:
    """Five students: the LSTM's blocks read i, f, o, g (ada, bob), the RNN step without its bias
    (ada, cy), a wrong LSTM step no mistake explains (eve), an RNN step that raises (eve)."""
    lstm = corpus.load(NOTEBOOKS / "05_lstm_numpy.ipynb"), corpus.load(SOLUTIONS / "05_lstm_numpy.ipynb")
    rnn = corpus.load(NOTEBOOKS / "01_rnn_forward.ipynb"), corpus.load(SOLUTIONS / "01_rnn_forward.ipynb")
    no_bias = "next_h = np.tanh(x @ Wx + prev_h @ Wh)\ncache = None"
    notebooks = {
        "ada": [corpus.replace_stub(lstm[0], "lstm_step_forward", IFOG),
                corpus.replace_stub(rnn[0], "rnn_step_forward", no_bias)],
        "bob": [corpus.replace_stub(lstm[0], "lstm_step_forward", IFOG), corpus.solved(*rnn)],
        "cy": [corpus.solved(*lstm), corpus.replace_stub(rnn[0], "rnn_step_forward", no_bias)],
        "di": [lstm[0]],
        "eve": [corpus.replace_stub(lstm[0], "lstm_step_forward", "next_h, next_c, cache = prev_h / 2, prev_c, None"),
                corpus.replace_stub(rnn[0], "rnn_step_forward", "raise ValueError('not yet')")],
    }
    for student, nbs in notebooks.items():
        for nb, name in zip(nbs, ["05_lstm_numpy", "01_rnn_forward"]):
            corpus.write(nb, subs / student / f"{name}.ipynb")


@pytest.mark.skipif(not LINUX, reason="the sandbox's protections are Linux's")
def test_a_graded_class_report_counts_each_known_mistake_exactly(tmp_path):
    solutions = tmp_path / "solutions"  # a course of these two exercises only: fewer children to run
    for name, keep in [("01_rnn_forward", "rnn_step_forward"), ("05_lstm_numpy", "lstm_step_forward")]:
        nb = corpus.load(SOLUTIONS / f"{name}.ipynb")
        nb["cells"] = [c for c in nb["cells"] if corpus.exercise_of(c) in (None, keep)]
        corpus.write(nb, solutions / f"{name}.ipynb")
    small_class(tmp_path / "subs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = grade(tmp_path / "subs", tmp_path / "out",
                        Options(solutions=solutions, seed=SEED, jobs=2, limits=LIMITS, progress=False))
    grades = {(s["student"], e["exercise"]): e for s in results["students"] for e in s["exercises"]}
    assert grades[("ada", "lstm_step_forward")]["mistake"] == hint(*LSTM_ORDER)
    assert grades[("eve", "lstm_step_forward")]["status"] == "wrong"
    assert grades[("eve", "lstm_step_forward")]["mistake"] == grades[("bob", "rnn_step_forward")]["mistake"] == ""
    report = json.loads((tmp_path / "out" / "grades.json").read_text())["class_report"]
    rows = {row["exercise"]: row for row in report["exercises"]}
    assert [row["exercise"] for row in report["exercises"]] == ["rnn_step_forward", "lstm_step_forward"]
    step = rows["lstm_step_forward"]
    assert step["mistakes"] == [{"hint": hint(*LSTM_ORDER), "students": 2}]
    assert (step["passed"], step["wrong"], step["crashed"], step["not attempted"]) == (1, 1, 0, 1)
    rnn = rows["rnn_step_forward"]
    assert rnn["mistakes"] == [{"hint": hint(*NO_BIAS), "students": 2}]
    assert (rnn["passed"], rnn["wrong"], rnn["crashed"], rnn["not attempted"]) == (1, 0, 1, 1)
    text = (tmp_path / "out" / "class_report.md").read_text()
    assert f"- **2 of 5** (B): {hint(*LSTM_ORDER)}" in text
    assert f"- **2 of 5** (A): {hint(*NO_BIAS)}" in text
    assert (tmp_path / "out" / "class_report.png").stat().st_size > 10_000


# --- the benchmark's class --------------------------------------------------------------------------


def test_the_benchmark_class_has_the_groups_and_mistakes_it_says(tmp_path):
    bench = load_bench()
    manifest = bench.make_class(tmp_path, 40, seed=3)
    assert manifest == bench.make_class(tmp_path / "again", 40, seed=3)  # drawn from the seed
    groups = [nbs["01_rnn_forward"]["group"] for nbs in manifest.values()]
    assert {g: groups.count(g) for g in bench.GROUPS} == {g: 10 for g in bench.GROUPS}
    bodies = {(n, ex): body for n, entries in bench.MISTAKES.items() for ex, _, body in entries}
    for student, nbs in manifest.items():
        for notebook, sub in nbs.items():
            nb = corpus.load(tmp_path / student / f"{notebook}.ipynb")
            cells = {corpus.exercise_of(c): corpus.source(c) for c in nb["cells"] if corpus.exercise_of(c)}
            stubs = {name for name, text in cells.items() if "raise NotImplementedError" in text}
            made = sub["mistake"]
            assert (made is not None) == (sub["group"] == "mistake")
            if made:
                assert made["hint"] in {m.hint for m in EXERCISES[made["exercise"]].mistakes}
                assert bodies[(notebook, made["exercise"])].split("\n")[0] in cells[made["exercise"]]
                assert stubs == set() and set(sub["solved"]) == set(cells) - {made["exercise"]}
            else:
                assert stubs == set(cells) - set(sub["solved"])
                assert 0 < len(sub["solved"]) < len(cells) if sub["group"] == "partial" else True


@pytest.mark.parametrize("notebook", ["01_rnn_forward", "02_bptt"])
def test_every_mistake_of_the_benchmark_is_diagnosed_as_the_one_it_names(notebook):
    """Each body in MISTAKES, in a notebook solved otherwise, gets the self-check's diagnosis
    (``Verdict.mistake``) that MISTAKES names: the same judge the grader uses."""
    bench = load_bench()
    hand_out, solution = corpus.load(NOTEBOOKS / f"{notebook}.ipynb"), corpus.load(SOLUTIONS / f"{notebook}.ipynb")
    for exercise, words, body in bench.MISTAKES[notebook]:
        others = {corpus.exercise_of(c) for c in solution["cells"] if corpus.exercise_of(c)} - {exercise}
        nb = corpus.replace_stub(corpus.solved(hand_out, solution, others), exercise, body)
        namespace = {"np": np, **{name: getattr(reference, name) for name in reference.__all__}}
        for cell in nb["cells"]:
            if corpus.exercise_of(cell):
                exec(corpus.source(cell), namespace)  # noqa: S102 (the course's own code and the bench's bodies)
        ex = EXERCISES[exercise]
        verdict = ex.run(*(namespace[f] for f in ex.funcs), rng=np.random.default_rng(0))
        assert verdict.status == "wrong" and verdict.mistake == bench.catalogue_hint(exercise, words), exercise
