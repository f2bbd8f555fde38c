"""Grading past one machine: a class graded on a Dask cluster of two local worker processes gives
the very bytes of a local run (grades.json, grades.csv, every feedback file), each worker
having checked its course against the client's and probed its own sandbox (workers.json).

The class is small (notebooks 01 and 02): a solution, wrong answers, an ``os._exit``, a blank
hand-out and an empty file. The pieces that need no cluster (the fingerprint check, a worker
refusing a weak sandbox, the merge of the workers' sandboxes, a malformed result) are tested
on their own, in this process.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from pathlib import Path

import grading_corpus as corpus
import pytest
from conftest import NOTEBOOKS, SOLUTIONS
from test_grading import LIMITS, course_00_02, sha256_tree

from course_utils.__main__ import main
from course_utils.grading import Options, grade
from course_utils.grading import distributed as dist
from course_utils.grading.grader import Grader
from course_utils.grading.submissions import CourseExercise, Submission

pytest.importorskip("distributed")
SEED = "test-seed: distributed"
NB = ("01_rnn_forward", "02_bptt")
HAVE_COURSE = all((SOLUTIONS / f"{n}.ipynb").exists() and (NOTEBOOKS / f"{n}.ipynb").exists() for n in NB)
pytestmark = pytest.mark.skipif(not (HAVE_COURSE and sys.platform.startswith("linux")),
                                reason="needs notebooks 01-02 and Linux")


def small_class(subs: Path) -> None:
    nb = {n: (corpus.load(NOTEBOOKS / f"{n}.ipynb"), corpus.load(SOLUTIONS / f"{n}.ipynb")) for n in NB}
    for n in NB:
        corpus.write(corpus.solved(*nb[n]), subs / "ada" / f"{n}.ipynb")
    no_tanh = "next_h = x @ Wx + prev_h @ Wh + b\ncache = (x, prev_h, Wx, Wh, next_h)"
    corpus.write(corpus.replace_stub(corpus.solved(*nb[NB[0]], {"rnn_forward", "temporal_affine_forward"}),
                                     "rnn_step_forward", no_tanh), subs / "bob" / f"{NB[0]}.ipynb")
    corpus.write(corpus.hostile(*nb[NB[0]], "rnn_forward", "import os\nos._exit(3)"), subs / "cy" / f"{NB[0]}.ipynb")
    corpus.write(nb[NB[0]][0], subs / "dee" / f"{NB[0]}.ipynb")  # the blank hand-out
    (subs / "dee" / f"{NB[1]}.ipynb").write_bytes(b"")
    db_per_step = "dx = dout @ W.T\ndW = np.einsum('nth,ntm->hm', x, dout)\ndb = dout.sum(axis=0)"
    corpus.write(corpus.hostile(*nb[NB[1]], "temporal_affine_backward", db_per_step), subs / "eve__02_bptt.ipynb")


def options(root: Path, **kw) -> Options:
    return Options(solutions=course_00_02(root), seed=SEED, jobs=2, limits=LIMITS, progress=False,
                   notebooks=("01", "02"), **kw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    small_class(root / "subs")
    before = sha256_tree(root / "subs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = grade(root / "subs", root / "local", options(root))
        cluster = grade(root / "subs", root / "cluster", options(root, scheduler="local:2"))
    return {"root": root, "local": local, "cluster": cluster, "before": before}


def test_a_cluster_writes_the_bytes_of_a_local_run(runs):
    local, cluster = sha256_tree(runs["root"] / "local"), sha256_tree(runs["root"] / "cluster")
    assert cluster.pop("workers.json")
    assert {"grades.json", "grades.csv", "feedback/ada.md", "feedback/cy.md", "feedback/dee.md"} <= set(local)
    assert cluster == local
    assert sha256_tree(runs["root"] / "subs") == runs["before"]


def test_the_class_gets_its_verdicts_on_the_cluster(runs):
    got = {(s["student"], e["exercise"]): e for s in runs["cluster"]["students"] for e in s["exercises"]}
    totals = {s["student"]: s["total"] for s in runs["cluster"]["students"]}
    assert totals["ada"] == runs["cluster"]["course"]["possible"]
    assert got[("bob", "rnn_step_forward")]["status"] == "wrong" and "tanh" in got[("bob", "rnn_step_forward")]["hint"]
    assert got[("bob", "temporal_affine_forward")]["status"] == "passed"
    assert got[("cy", "rnn_forward")]["status"] == "crashed" and "os._exit" in got[("cy", "rnn_forward")]["reason"]
    assert {got[("dee", e)]["status"] for e in ("rnn_step_forward", "rnn_forward")} == {"not attempted"}
    assert got[("dee", "rnn_backward")]["status"] == "not submitted"
    assert got[("eve", "temporal_affine_backward")]["status"] == "wrong"
    assert totals["eve"] == 8 and totals["cy"] == totals["dee"] == 0


def test_each_worker_checked_its_course_and_probed_its_sandbox(runs):
    text = (runs["root"] / "cluster" / "workers.json").read_text()
    workers = json.loads(text)["workers"]
    assert len(workers) == 2 and len({w["worker"] for w in workers}) == 2
    assert sum(w["notebooks"] for w in workers) == 6  # ada 2, bob, cy, dee, eve: the empty file is not sent
    assert workers[0]["fingerprint"] == workers[1]["fingerprint"]
    for w in workers:
        assert w["refused"] == "" and set(w["fingerprint"]) == {"course_utils", "python", "numpy", "torch"}
        assert w["sandbox"]["probe"] and set(w["sandbox"]["on"]) == set(runs["local"]["sandbox"]["protections"])
    assert SEED not in text and "bob" not in text  # neither the seed nor what the students handed in


def run_text(root: Path, **kw) -> str:
    grader = Grader(options(root, **kw))
    return dist.run_payload(grader)


def test_a_worker_with_another_version_of_the_course_refuses(tmp_path):
    run = json.loads(run_text(tmp_path))
    run["fingerprint"]["course_utils"] = "0" * 64
    state = dist._set_up(run)
    assert state.grader is None and "not the grading machine's" in state.record["refused"]
    assert "course_utils" in state.record["refused"] and state.record["sandbox"] is None


def test_a_worker_without_its_sandbox_refuses_and_records_its_probe(tmp_path):
    state = dist._set_up(json.loads(run_text(tmp_path, skip_protections=("landlock",))))
    assert state.grader is None and "refusing to grade" in state.record["refused"]
    assert "landlock" not in state.record["sandbox"]["on"]


def test_what_crosses_to_a_worker_is_json_and_a_task_returns_json(tmp_path):
    run = run_text(tmp_path)
    assert json.loads(run)["seed"] == SEED  # the seed travels to the workers (docs: use TLS)
    empty = Submission("ada", Path("ada.ipynb"), "ada.ipynb", NB[0], notebook=NB[0])  # no cells at all
    try:
        answer = json.loads(dist.grade_task(run, dist.task_text(empty)))
        names = ["rnn_step_forward", "rnn_forward", "temporal_affine_forward"]
        assert [g["exercise"] for g in answer["grades"]] == names
        assert {g["status"] for g in answer["grades"]} == {"missing"} and answer["record"]["refused"] == ""
        answer = json.loads(dist.grade_task(run, "not json"))
        assert set(answer) == {"error", "worker"} and "JSONDecodeError" in answer["error"]
    finally:
        dist.forget(dist.run_key(run))
    assert dist.run_key(run) not in dist._STATES


def test_the_workers_sandboxes_are_merged_to_what_every_one_of_them_has():
    box = {"platform": "linux", "on": {"seccomp": "on", "landlock": "ABI 7"}, "off": {},
           "probe": {"fork": "denied (PermissionError)", "network (tcp)": "denied (PermissionError)"}}
    same = {"a": {"sandbox": box}, "b": {"sandbox": json.loads(json.dumps(box))}}
    assert dist.merged_sandbox(same) == (box["on"], {}, box["probe"], "linux")
    weaker = json.loads(json.dumps(box))
    del weaker["on"]["landlock"]
    weaker["probe"]["network (tcp)"] = "allowed"
    on, off, probe, _ = dist.merged_sandbox({"a": {"sandbox": box}, "b": {"sandbox": weaker}})
    assert on == {"seccomp": "on"} and "landlock" in off and probe["network (tcp)"] == "allowed"


def test_a_result_that_is_not_the_notebooks_grades_is_an_error_for_each_exercise():
    exercises = [CourseExercise("01_rnn_forward", "1.1", "rnn_step_forward", 2)]
    for result in ({"grades": [{"bogus": 1}]}, {"grades": []}, {"error": "KilledWorker", "worker": "w"}):
        grades = dist.grades_of(result, "ada", exercises)
        g = grades[("ada", "rnn_step_forward")]
        assert g.status == "error" and g.points == 0 and "failed on worker" in g.reason
    good = dataclasses.asdict(dataclasses.replace(g, status="passed", points=2, reason="passed"))
    assert dist.grades_of({"grades": [good]}, "ada", exercises)[("ada", "rnn_step_forward")].points == 2


def test_plain_tcp_to_another_machine_is_unencrypted():
    assert dist.unencrypted("tcp://10.0.0.5:8786") and dist.unencrypted("grader.example.org:8786")
    assert not any(map(dist.unencrypted, ["tls://10.0.0.5:8786", "tcp://127.0.0.1:8786", "local:4",
                                          "tcp://localhost:8786", "tcp://[::1]:8786"]))


def test_the_command_line_takes_a_scheduler(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_GRADING_SEED", SEED)
    small_class(tmp_path / "subs")
    code = main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--solutions",
                 str(course_00_02(tmp_path)), "--notebooks", "01", "--scheduler", "local:0", "--no-progress"])
    assert code == 2 and "local:N needs N >= 1" in capsys.readouterr().err
