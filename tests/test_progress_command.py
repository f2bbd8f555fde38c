"""`python -m course_utils progress`: a learner's standing, notebook by notebook, from the self-checks."""
from __future__ import annotations

import os
import subprocess
import sys

import grading_corpus as corpus
from conftest import NOTEBOOKS, ROOT, SOLUTIONS

from course_utils.learner_progress import progress

EXERCISES_01 = ["1.1 rnn_step_forward", "1.2 rnn_forward", "1.3 temporal_affine_forward"]


def run_progress(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course_utils", "progress", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def tables(stdout: str) -> dict[str, dict[str, str]]:
    """{notebook file name: {"1.1 rnn_step_forward": "✓ passed", ...}} from the printed tables."""
    out: dict[str, dict[str, str]] = {}
    for line in stdout.splitlines():
        if line.startswith("  "):
            number, name, state = line.split(maxsplit=2)
            out[title][f"{number} {name}"] = state
        elif line.strip():
            title = line.split(": ")[0].rsplit("/", 1)[-1]
            out[title] = {}
    return out


def test_the_hand_out_is_not_attempted_and_the_solution_passes():
    result = run_progress(str(NOTEBOOKS / "01_rnn_forward.ipynb"))
    assert result.returncode == 1, result.stderr  # some exercise does not pass
    assert "notebooks/01_rnn_forward.ipynb: 0 of 3 exercises pass" in result.stdout
    assert tables(result.stdout) == {"01_rnn_forward.ipynb": {name: "○ not attempted" for name in EXERCISES_01}}
    result = run_progress(str(SOLUTIONS / "01_rnn_forward.ipynb"))
    assert result.returncode == 0, result.stderr
    assert "solutions/01_rnn_forward.ipynb: 3 of 3 exercises pass" in result.stdout
    assert tables(result.stdout) == {"01_rnn_forward.ipynb": {name: "✓ passed" for name in EXERCISES_01}}


def test_wrong_and_hanging_exercises_are_named_with_the_hint_and_the_rest_still_checked(tmp_path):
    hand_out = corpus.load(NOTEBOOKS / "01_rnn_forward.ipynb")
    solution = corpus.load(SOLUTIONS / "01_rnn_forward.ipynb")
    nb = corpus.solved(hand_out, solution, {"temporal_affine_forward"})
    nb = corpus.replace_stub(nb, "rnn_step_forward", "next_h = np.tanh(x @ Wx + prev_h @ Wh)\ncache = None")
    nb = corpus.replace_stub(nb, "rnn_forward", "while True:\n    pass")
    # only the exercises: the notebook's own calls of rnn_forward would each hang for the statement budget
    nb["cells"] = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                   "source": "import numpy as np\n"}] + [c for c in nb["cells"] if corpus.exercise_of(c)]
    path = corpus.write(nb, tmp_path / "mine.ipynb")  # any name: the notebook is known by its exercises
    result = run_progress("--time-limit", "3", str(path))
    assert result.returncode == 1
    assert tables(result.stdout)["mine.ipynb"] == {
        "1.1 rnn_step_forward": "✗ wrong: the bias b is missing: next_h = tanh(x @ Wx + prev_h @ Wh + b).",
        "1.2 rnn_forward": "✗ timeout: more than 3 s: an endless loop?",
        "1.3 temporal_affine_forward": "✓ passed",
    }


def test_the_learners_code_runs_in_a_child_process_not_in_this_one(tmp_path, capsys):
    hand_out, solution = corpus.load(NOTEBOOKS / "00_welcome.ipynb"), corpus.load(SOLUTIONS / "00_welcome.ipynb")
    marker = tmp_path / "pid"
    nb = corpus.hostile(hand_out, solution, "sigmoid",
                        f"import os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\nreturn 1 / (1 + np.exp(-x))")
    path = corpus.write(nb, tmp_path / "00_welcome.ipynb")
    assert progress([path]) == 0
    assert "00_welcome.ipynb: 2 of 2 exercises pass" in capsys.readouterr().out
    assert int(marker.read_text()) != os.getpid()


def test_an_unreadable_notebook_is_named_and_the_others_still_checked(tmp_path, capsys):
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert progress([tmp_path / "broken.ipynb", SOLUTIONS / "00_welcome.ipynb"]) == 2
    out = capsys.readouterr().out
    assert "broken.ipynb: not valid JSON" in out and "00_welcome.ipynb: 2 of 2 exercises pass" in out
