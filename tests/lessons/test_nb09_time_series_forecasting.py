"""Proofs of notebook 09's checks (standardize, make_windows, LSTMForecaster), what is special to
them (messages a learner can read, a module with other names, checks that never import torch), and
the grading of the notebook in the instructor's grader.

The catalogued mistakes are proven from course_utils/lessons/nb09_time_series_forecasting/checks.py;
here are correct code written differently and the wrong code that no catalogue entry names.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

from conftest import NOTEBOOKS, SOLUTIONS
from course_utils import reference as ref
from course_utils.check import EXERCISES
from proofs import Proofs, default_stub, run

# --- learners' code, right and wrong: standardize ---------------------------------------------------------


def standardize_by_hand(train, val, test):
    T = len(train)
    mean = train.sum(axis=0) / T
    std = np.sqrt(((train - mean) ** 2).sum(axis=0) / T)
    scale = lambda a: (a - mean) / std  # noqa: E731 (a learner's shortcut)
    return scale(train), scale(val), scale(test), mean, std



def standardize_keepdims(train, val, test):
    mean, std = train.mean(axis=0, keepdims=True), train.std(axis=0, keepdims=True)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std


def standardize_in_place(train, val, test):
    mean, std = train.mean(axis=0), train.std(axis=0)
    for a in (train, val, test):
        a -= mean
        a /= std
    return train, val, test, mean, std


# --- make_windows ------------------------------------------------------------------------------


def make_windows_preallocated(series, window, horizon):
    T, D = series.shape
    N = T - window - horizon + 1
    X = np.empty((N, window, D), dtype=series.dtype)
    y = np.empty((N, horizon, D), dtype=series.dtype)
    for n in range(N):
        X[n] = series[n:n + window]
        y[n] = series[n + window:n + window + horizon]
    return X, y


def make_windows_strided(series, window, horizon):
    views = np.lib.stride_tricks.sliding_window_view(series, window + horizon, axis=0)  # (N, D, W + K)
    views = np.moveaxis(views, -1, 1)
    return views[:, :window].copy(), views[:, window:].copy()



def make_windows_ignoring_horizon(series, window, horizon):
    N = len(series) - window  # windows near the end have fewer than `horizon` targets: np.stack fails
    X = np.stack([series[n:n + window] for n in range(N)])
    y = np.stack([series[n + window:n + window + horizon] for n in range(N)])
    return X, y


def make_windows_squeezed(series, window, horizon):
    X, y = make_windows_preallocated(series, window, horizon)
    return X[..., 0], y[..., 0]


# --- LSTMForecaster ------------------------------------------------------------------------------


class Skeleton(nn.Module):
    """The notebook's skeleton: fixed submodule names; forward is the learner's."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, input_size)


class ForecasterFromFinalState(Skeleton):
    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.head(h_n[-1]) + x[:, -1, :]


class ForecasterWithNarrow(Skeleton):
    def forward(self, x):
        out, _ = self.lstm(x)
        last = out.narrow(1, x.shape[1] - 1, 1).squeeze(1)
        return torch.add(x.select(1, -1), self.head(last))



class ForecasterAllSteps(Skeleton):
    def forward(self, x):
        h, _ = self.lstm(x)
        return x + self.head(h)


class ForecasterThroughNumpy(Skeleton):
    def forward(self, x):
        h, _ = self.lstm(x)
        change = torch.from_numpy(self.head(h[:, -1]).detach().numpy())
        return x[:, -1] + change


class ForecasterRenamed(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, input_size)

    def forward(self, x):
        h, _ = self.rnn(x)
        return x[:, -1] + self.fc(h[:, -1])


class ForecasterNotBatchFirst(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)  # reads (W, N, D): the batch axis is taken for time
        self.head = nn.Linear(hidden_size, input_size)

    def forward(self, x):
        h, _ = self.lstm(x)
        return x[:, -1] + self.head(h[:, -1])


class ForecasterStub(Skeleton):
    def forward(self, x):
        raise NotImplementedError("Exercise 9.3: LSTMForecaster")


class ForecasterCrashes(Skeleton):
    def forward(self, x):
        h, _ = self.lstm(x)
        return x[:, -1] + self.head(h)[:, -1, :, 0]


def stub(name):
    """As handed out: the forecaster has its layers (the check loads their weights), its forward raises."""
    return ForecasterStub if name == "LSTMForecaster" else default_stub(name)


proofs = Proofs("nb09_time_series_forecasting", min_correct=2, stub=stub)
proofs.correct("standardize", standardize_by_hand)
proofs.correct("standardize", ref.standardize)
proofs.correct("make_windows", make_windows_preallocated)
proofs.correct("make_windows", make_windows_strided)
proofs.correct("make_windows", ref.make_windows)
proofs.correct("LSTMForecaster", ForecasterFromFinalState)
proofs.correct("LSTMForecaster", ForecasterWithNarrow)
proofs.correct("LSTMForecaster", ref.LSTMForecaster)


def direction_accuracy_with_signs(last_seen, forecast, truth):
    """The directions as signs of the changes (no change counts as its own direction)."""
    return float(np.mean(np.sign(forecast - last_seen) == np.sign(truth - last_seen)))


def direction_accuracy_counted(last_seen, forecast, truth):
    """Up and up, or down and down, counted in a loop over the flattened entries."""
    pairs = list(zip(np.ravel(last_seen), np.ravel(forecast), np.ravel(truth)))
    return sum((f > x) == (t > x) for x, f, t in pairs) / len(pairs)


proofs.correct("direction_accuracy", direction_accuracy_with_signs)
proofs.correct("direction_accuracy", direction_accuracy_counted)
proofs.wrong("standardize", standardize_keepdims, hint="shape (D,)", message="`mean` has the wrong shape")
proofs.wrong("standardize", standardize_in_place, hint="work on new arrays", message="changed its inputs")
proofs.wrong("make_windows", make_windows_ignoring_horizon, hint="range(len(series) - window - horizon + 1)",
             message="ValueError")
proofs.wrong("make_windows", make_windows_squeezed, hint="keep the feature axis", message="`X` has the wrong shape")
# (N, W, D) times the upstream gradient (N, D) fails in the check's backward pass, before the shape is judged
proofs.wrong("LSTMForecaster", ForecasterAllSteps, hint="Take the last hidden state h[:, -1]",
             message="`forecast` has the wrong shape")
proofs.wrong("LSTMForecaster", ForecasterThroughNumpy, hint="no .detach(), .numpy()",
             message="`dlstm.weight_ih_l0` is wrong")
proofs.wrong("LSTMForecaster", ForecasterRenamed, hint="missing head.bias, head.weight",
             message="does not have the expected form")
proofs.wrong("LSTMForecaster", ForecasterNotBatchFirst, hint="self.head(h[:, -1])", message="`forecast` is wrong",
             output="forecast")
proofs.wrong("LSTMForecaster", ForecasterCrashes, hint="self.lstm(x) returns a pair", message="IndexError")


# --- what is special to these checks ----------------------------------------------------------------


def catalogued(exercise, words):
    """The catalogue's wrong implementation of the mistake whose hint has ``words``, as the check takes it."""
    ex = EXERCISES[exercise]
    (mistake,) = [m for m in ex.mistakes if words in m.hint and m.implementation is not None]
    return ex.with_reference(mistake.implementation)


@pytest.mark.parametrize("exercise, words, message", [
    ("standardize", "leaks the future", "`train_scaled` is wrong"),
    ("standardize", "its own mean", "`val_scaled` is wrong"),
    ("standardize", "ddof=1", "`train_scaled` is wrong"),
    ("make_windows", "the last step of the window", "first difference at y[0, 0, 0]: 3.0, expected 4.0"),
    ("make_windows", "the last window is missing", "`X` has the wrong shape"),
    ("make_windows", "only the last of the `horizon` values", "`y` has the wrong shape"),
    ("LSTMForecaster", "add it to x[:, -1]", "`forecast` is wrong"),
    ("LSTMForecaster", "after the *first* step", "`forecast` is wrong"),
    ("LSTMForecaster", "h_n has shape (1, N, H)", "`forecast` has the wrong shape"),
    ("LSTMForecaster", "cell state", "`forecast` is wrong")])
def test_a_catalogued_mistake_is_told_on_the_output_it_changes(exercise, words, message):
    verdict = run(exercise, *catalogued(exercise, words))
    assert verdict.status == "wrong" and message in verdict.message, verdict.message


def test_the_leak_message_shows_time_steps_a_learner_can_read():
    # The fixed case's series holds its own time steps, so the message says which step was taken.
    message = run("make_windows", *catalogued("make_windows", "(leakage)")).message
    assert "values 0, 1, 2, ..." in message and "3.0, expected 4.0" in message


def test_a_module_with_other_names_gets_a_clear_message():
    message = run("LSTMForecaster", ForecasterRenamed).message
    assert "the parameters of LSTMForecaster are not the expected ones" in message
    assert "missing head.bias, head.weight, lstm.bias_hh_l0" in message
    assert "unexpected fc.bias" in message


def test_importing_the_checks_does_not_import_the_references():
    import subprocess

    code = ("import sys; from course_utils import check; "
            "print('course_utils.lessons.nb09_time_series_forecasting.reference' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- the grader ----------------------------------------------------------------------------------


NOTEBOOK = "09_time_series_forecasting"
HAVE_NOTEBOOK = (SOLUTIONS / f"{NOTEBOOK}.ipynb").exists() and (NOTEBOOKS / f"{NOTEBOOK}.ipynb").exists()


@pytest.mark.skipif(not (HAVE_NOTEBOOK and sys.platform.startswith("linux")),
                    reason="needs notebook 09 and Linux's sandbox")
def test_the_grader_gives_the_self_checks_verdicts(tmp_path):
    import grading_corpus as corpus

    from course_utils.grading import Options, grade

    solution = corpus.load(SOLUTIONS / f"{NOTEBOOK}.ipynb")
    hand_out = corpus.load(NOTEBOOKS / f"{NOTEBOOK}.ipynb")
    subs = tmp_path / "subs"
    corpus.write(solution, tmp_path / "solutions" / f"{NOTEBOOK}.ipynb")
    corpus.write(solution, subs / "ada" / f"{NOTEBOOK}.ipynb")
    corpus.write(hand_out, subs / "bob" / f"{NOTEBOOK}.ipynb")
    leaky = corpus.solved(hand_out, solution, {"LSTMForecaster"})
    leaky = corpus.replace_stub(leaky, "standardize", (
        "everything = np.concatenate([train, val, test])\n"
        "mean, std = everything.mean(axis=0), everything.std(axis=0)\n"
        "return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std"))
    leaky = corpus.replace_stub(leaky, "make_windows", (
        "N = len(series) - window - horizon + 1\n"
        "X = np.stack([series[n:n + window] for n in range(N)])\n"
        "y = np.stack([series[n + window - 1:n + window - 1 + horizon] for n in range(N)])"))
    corpus.write(leaky, subs / "cy" / f"{NOTEBOOK}.ipynb")
    results = grade(subs, tmp_path / "out", Options(solutions=tmp_path / "solutions", seed="test-seed", jobs=2,
                                                    progress=False))
    students = {s["student"]: {e["exercise"]: e for e in s["exercises"]} for s in results["students"]}
    assert {e["status"] for e in students["ada"].values()} == {"passed"}
    assert {e["status"] for e in students["bob"].values()} == {"not attempted"}
    cy = students["cy"]
    assert cy["LSTMForecaster"]["status"] == "passed"
    assert cy["standardize"]["status"] == "wrong" and "leaks the future" in cy["standardize"]["hint"]
    assert cy["make_windows"]["status"] == "wrong" and "(leakage)" in cy["make_windows"]["hint"]
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 6, "bob": 0, "cy": 2}



globals().update(proofs.tests())  # the proofs of every exercise: tests/proofs.py
