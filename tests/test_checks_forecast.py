"""The checks of notebook 09 (standardize, make_windows, LSTMForecaster): each passes correct code
written differently from the reference, rejects realistic mistakes with the hint that names
them, reports a stub as "not attempted yet", and grades the same way in the instructor's grader.

(tests/test_checks.py also runs its generic tests on the two NumPy checks.)
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from conftest import NOTEBOOKS, SOLUTIONS
from course_utils import check
from course_utils import reference as ref
from course_utils.check import EXERCISES

SEEDS = (1, 2, 3)
NAMES = ("standardize", "make_windows", "LSTMForecaster")


def run(name, func, seed=0):
    return EXERCISES[name].run(func, rng=np.random.default_rng(seed))


# --- learners' code, right and wrong: standardize ----------------------------------------------------


def standardize_by_hand(train, val, test):
    T = len(train)
    mean = train.sum(axis=0) / T
    std = np.sqrt(((train - mean) ** 2).sum(axis=0) / T)
    scale = lambda a: (a - mean) / std  # noqa: E731 (a learner's shortcut)
    return scale(train), scale(val), scale(test), mean, std


def standardize_on_all_data(train, val, test):
    everything = np.concatenate([train, val, test])
    mean, std = everything.mean(axis=0), everything.std(axis=0)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std


def standardize_each_split(train, val, test):
    out = [(a - a.mean(axis=0)) / a.std(axis=0) for a in (train, val, test)]
    return (*out, train.mean(axis=0), train.std(axis=0))


def standardize_ddof1(train, val, test):
    mean, std = train.mean(axis=0), train.std(axis=0, ddof=1)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std


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


def make_windows_overlapping_target(series, window, horizon):
    N = len(series) - window - horizon + 1
    X = np.stack([series[n:n + window] for n in range(N)])
    y = np.stack([series[n + window - 1:n + window - 1 + horizon] for n in range(N)])
    return X, y


def make_windows_one_short(series, window, horizon):
    N = len(series) - window - horizon
    X = np.stack([series[n:n + window] for n in range(N)])
    y = np.stack([series[n + window:n + window + horizon] for n in range(N)])
    return X, y


def make_windows_last_target_only(series, window, horizon):
    N = len(series) - window - horizon + 1
    X = np.stack([series[n:n + window] for n in range(N)])
    y = np.stack([series[n + window + horizon - 1:n + window + horizon] for n in range(N)])
    return X, y


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


class ForecasterWithoutResidual(Skeleton):
    def forward(self, x):
        h, _ = self.lstm(x)
        return self.head(h[:, -1])


class ForecasterFirstStep(Skeleton):
    def forward(self, x):
        h, _ = self.lstm(x)
        return x[:, -1] + self.head(h[:, 0])


class ForecasterHn(Skeleton):
    def forward(self, x):
        h, (h_n, c_n) = self.lstm(x)
        return x[:, -1] + self.head(h_n)


class ForecasterCellState(Skeleton):
    def forward(self, x):
        h, (h_n, c_n) = self.lstm(x)
        return x[:, -1] + self.head(c_n[-1])


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


CORRECT = [
    ("standardize", standardize_by_hand), ("standardize", ref.standardize),
    ("make_windows", make_windows_preallocated), ("make_windows", make_windows_strided),
    ("make_windows", ref.make_windows),
    ("LSTMForecaster", ForecasterFromFinalState), ("LSTMForecaster", ForecasterWithNarrow),
    ("LSTMForecaster", ref.LSTMForecaster),
]

# (exercise, code, words of the hint, words of the whole message)
WRONG = [
    ("standardize", standardize_on_all_data, "leaks the future", "`train_scaled` is wrong"),
    ("standardize", standardize_each_split, "its own mean", "`val_scaled` is wrong"),
    ("standardize", standardize_ddof1, "ddof=1", "`train_scaled` is wrong"),
    ("standardize", standardize_keepdims, "shape (D,)", "`mean` has the wrong shape"),
    ("standardize", standardize_in_place, "work on new arrays", "changed its inputs"),
    ("make_windows", make_windows_overlapping_target, "(leakage)", "first difference at y[0, 0, 0]: 3.0, expected 4.0"),
    ("make_windows", make_windows_one_short, "the last window is missing", "`X` has the wrong shape"),
    ("make_windows", make_windows_last_target_only, "only the last of the `horizon` values", "`y` has the wrong shape"),
    ("make_windows", make_windows_ignoring_horizon, "range(len(series) - window - horizon + 1)", "ValueError"),
    ("make_windows", make_windows_squeezed, "keep the feature axis", "`X` has the wrong shape"),
    ("LSTMForecaster", ForecasterWithoutResidual, "add it to x[:, -1]", "`forecast` is wrong"),
    ("LSTMForecaster", ForecasterFirstStep, "after the *first* step", "`forecast` is wrong"),
    ("LSTMForecaster", ForecasterHn, "h_n has shape (1, N, H)", "`forecast` has the wrong shape"),
    ("LSTMForecaster", ForecasterCellState, "cell state", "`forecast` is wrong"),
    # (N, W, D) times the upstream gradient (N, D) fails in the check's backward pass, before the shape is judged
    ("LSTMForecaster", ForecasterAllSteps, "Take the last hidden state h[:, -1]", "`forecast` has the wrong shape"),
    ("LSTMForecaster", ForecasterThroughNumpy, "no .detach(), .numpy()", "`dlstm.weight_ih_l0` is wrong"),
    ("LSTMForecaster", ForecasterRenamed, "missing head.bias, head.weight", "does not have the expected form"),
    ("LSTMForecaster", ForecasterNotBatchFirst, "", "`forecast`"),
    ("LSTMForecaster", ForecasterCrashes, "self.lstm(x) returns a pair", "IndexError"),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name, func", CORRECT, ids=[f"{n}-{f.__name__}" for n, f in CORRECT])
def test_correct_code_passes(name, func, seed):
    verdict = run(name, func, seed)
    assert verdict.status == "passed", verdict.message


@pytest.mark.parametrize("name, func, hint, message", WRONG, ids=[f"{n}-{f.__name__}" for n, f, *_ in WRONG])
def test_mistake_is_rejected_in_plain_words(name, func, hint, message):
    verdict = run(name, func)
    assert verdict.status == "wrong", verdict.message
    assert hint in verdict.message, verdict.message
    assert message in verdict.message, verdict.message


@pytest.mark.parametrize("name", NAMES)
def test_every_check_is_tested_with_two_realistic_mistakes(name):
    assert sum(n == name for n, *_ in WRONG) >= 2 and sum(n == name for n, _ in CORRECT) >= 2


def _stub(name):
    if name == "LSTMForecaster":
        return ForecasterStub

    def stub(*args):
        raise NotImplementedError(f"Exercise 9: {name}")
    return stub


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_is_not_attempted_and_the_public_check_stops_run_all(name, capsys):
    with pytest.raises(check.NotAttemptedYet):
        getattr(check, name)(_stub(name))
    out = capsys.readouterr().out
    assert out.startswith("○") and f"{name}: not attempted yet" in out


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes_in_one_line_well_under_a_second(name, capsys):
    getattr(ref, name)  # the first use imports torch: not the check's time
    start = time.perf_counter()
    result = getattr(check, name)(getattr(ref, name))
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    assert result and out.startswith("✓") and out.count("\n") == 1, out
    assert elapsed < 1.0, f"check.{name} took {elapsed:.2f} s"


@pytest.mark.parametrize("name, func", [("make_windows", make_windows_overlapping_target),
                                        ("LSTMForecaster", ForecasterWithoutResidual)])
def test_the_public_check_raises_when_wrong(name, func, capsys):
    with pytest.raises(check.CheckFailed):
        getattr(check, name)(func)
    out = capsys.readouterr().out
    assert out.startswith("✗") and "hint:" in out


def test_the_leak_message_shows_time_steps_a_learner_can_read():
    # The fixed case's series holds its own time steps, so the message says which step was taken.
    message = run("make_windows", make_windows_overlapping_target).message
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


# --- every catalogued mistake is caught, with its own hint -----------------------------------------------


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
    assert totals == {"ada": 5, "bob": 0, "cy": 2}


@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_call_is_an_error_with_the_usage(name):
    for funcs in [(), ("not a function",), (getattr(ref, name), getattr(ref, name))]:
        verdict = EXERCISES[name].run(*funcs)
        assert verdict.status == "error" and f"check.{name}({name})" in verdict.message, verdict.message
