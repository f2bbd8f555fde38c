"""Checks of notebook 09: scaling with training statistics only, windowing a series, and an
LSTM forecaster as an nn.Module.

``standardize`` and ``make_windows`` are NumPy functions; their references live with the
PyTorch part (``course_utils.lessons.nb09_time_series_forecasting.reference``) and are looked up only when a check
runs, so that importing the checks never imports torch.
"""
from __future__ import annotations

import numpy as np

from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise import FunctionExercise
from course_utils.checking.exercise_torch import TorchExercise, wrong_module
from course_utils.lessons.nb01_rnn_forward.checks import weights


def _reference(name):
    def call(*args):
        from course_utils import reference

        return getattr(reference, name)(*args)
    call.__name__ = name
    return call


class _ListedCases(FunctionExercise):
    """A function exercise whose cases are listed by ``make_cases(rng)`` (not the N/T/D/H grid)."""

    def __init__(self, name, returns, make_cases, **kwargs):
        super().__init__(name, returns, _reference(name), build=None, dims=(), **kwargs)
        self.make_cases = make_cases

    def cases(self, rng):
        return self.make_cases(rng)


def _seed(rng, fixed):
    return fixed if fixed is not None else int(rng.integers(0, 2**31))


# --- 9.1: standardize with the training split's statistics -------------------------------------


def _standardize_cases(rng):
    cases = []
    for label, (T1, T2, T3, D), dtype, seed in [
            ("fixed splits", (8, 3, 4, 2), np.float64, 0),
            ("random splits with D=1", (10, 4, 5, 1), np.float64, None),
            ("random splits, D=3", (int(rng.integers(5, 12)), int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3),
             np.float64, None),
            ("float32 splits", (9, 3, 3, 2), np.float32, None)]:
        g = np.random.default_rng(_seed(rng, seed))
        scale = np.array([1.0, 50.0, 0.2])[:D]  # features of very different sizes
        level = np.array([3.0, -100.0, 0.5])[:D]
        drift = np.linspace(0, 1.5, T1 + T2 + T3)[:, None]  # the later splits sit higher, as prices do
        series = level + scale * (g.standard_normal((T1 + T2 + T3, D)) + drift)
        splits = np.split(series.astype(dtype), [T1, T1 + T2])
        cases.append(Case(f"{label}, train {T1}, val {T2}, test {T3} steps, D={D}",
                          {"train": splits[0], "val": splits[1], "test": splits[2]}))
    return cases


def _scaled(mean_std):
    """The outputs of standardize when the statistics come from ``mean_std(train, val, test)``."""
    def outputs(case):
        train, val, test = case.args["train"], case.args["val"], case.args["test"]
        mean, std = mean_std(train, val, test)
        return {"train_scaled": (train - mean) / std, "val_scaled": (val - mean) / std,
                "test_scaled": (test - mean) / std, "mean": mean, "std": std}
    return outputs


def _own_statistics(case):
    out = {}
    for name in ("train", "val", "test"):
        a = case.args[name]
        out[name + "_scaled"] = (a - a.mean(axis=0)) / a.std(axis=0)
    train = case.args["train"]
    return {**out, "mean": train.mean(axis=0), "std": train.std(axis=0)}


def _min_max(case):
    train = case.args["train"]
    lo, hi = train.min(axis=0), train.max(axis=0)
    return {k + "_scaled": (case.args[k] - lo) / (hi - lo) for k in ("train", "val", "test")}


def _not_centred(case):
    std = case.args["train"].std(axis=0)
    return {k + "_scaled": case.args[k] / std for k in ("train", "val", "test")}


def _wrong_standardize_on_all_data(train, val, test):  # statistics of all three splits: the future leaks in
    everything = np.concatenate([train, val, test])
    mean, std = everything.mean(axis=0), everything.std(axis=0)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std


def _wrong_standardize_each_split(train, val, test):  # each split scaled with its own statistics
    out = [(a - a.mean(axis=0)) / a.std(axis=0) for a in (train, val, test)]
    return (*out, train.mean(axis=0), train.std(axis=0))


def _wrong_standardize_ddof1(train, val, test):  # the sample standard deviation
    mean, std = train.mean(axis=0), train.std(axis=0, ddof=1)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std


LEAK = ("the mean and standard deviation come from all the data, validation and test included: that "
        "leaks the future into training. Compute them on `train` only: train.mean(axis=0), train.std(axis=0).")

standardize = _ListedCases(
    "standardize", ("train_scaled", "val_scaled", "test_scaled", "mean", "std"), _standardize_cases,
    mistakes=[
        Mistake(LEAK, _scaled(lambda tr, va, te: (np.concatenate([tr, va, te]).mean(axis=0),
                                                  np.concatenate([tr, va, te]).std(axis=0))),
                _wrong_standardize_on_all_data),
        Mistake("each split is scaled with its own mean and standard deviation: val and test must use the "
                "training statistics, or they are measured in different units (and the test split's own "
                "mean is the future).", _own_statistics, _wrong_standardize_each_split),
        Mistake("the statistics include the validation split: only `train` may be used.",
                _scaled(lambda tr, va, te: (np.concatenate([tr, va]).mean(axis=0),
                                            np.concatenate([tr, va]).std(axis=0)))),
        Mistake("that is the sample standard deviation (ddof=1); use np.std's default, which divides by "
                "the number of steps: train.std(axis=0).",
                _scaled(lambda tr, va, te: (tr.mean(axis=0), tr.std(axis=0, ddof=1))), _wrong_standardize_ddof1),
        Mistake("one mean and one standard deviation for all features together: compute them per feature, "
                "over the time axis, with axis=0 (shape (D,)).",
                _scaled(lambda tr, va, te: (tr.mean(), tr.std()))),
        Mistake("that is min-max scaling to [0, 1]; standardize instead: (x - mean) / std.", _min_max),
        Mistake("the mean is not subtracted: x_scaled = (x - mean) / std.", _not_centred),
    ],
    hints={
        "train_scaled": "train_scaled = (train - mean) / std, with mean = train.mean(axis=0) and "
                        "std = train.std(axis=0).",
        "val_scaled": "val is scaled with the *training* mean and std: (val - mean) / std.",
        "test_scaled": "test is scaled with the *training* mean and std: (test - mean) / std.",
        "mean": "mean = train.mean(axis=0): one value per feature, shape (D,).",
        "std": "std = train.std(axis=0): one value per feature, shape (D,).",
        "mean.shape": "mean should have shape (D,), one value per feature: train.mean(axis=0) "
                      "(without keepdims).",
        "std.shape": "std should have shape (D,), one value per feature: train.std(axis=0).",
        "crash": "train, val and test are (T1, D), (T2, D), (T3, D); return five values: "
                 "train_scaled, val_scaled, test_scaled, mean, std.",
    },
)

# --- 9.2: windows of the past and the values that follow them -----------------------------------


def _windows_cases(rng):
    cases = []
    for label, (T, D, window, horizon), dtype, seed in [
            ("fixed series, values 0, 1, 2, ... (each value is its time step)", (12, 1, 4, 2), np.float64, 0),
            ("random series, horizon 1", (10, 2, 3, 1), np.float64, None),
            ("random series, window 1", (7, 1, 1, 3), np.float64, None),
            ("random series, just one window (T = window + horizon)", (9, 2, 5, 4), np.float64, None),
            ("random series, D=3", (int(rng.integers(12, 20)), 3, int(rng.integers(2, 6)), int(rng.integers(2, 5))),
             np.float64, None),
            ("float32 series", (11, 2, 4, 3), np.float32, None)]:
        g = np.random.default_rng(_seed(rng, seed))
        series = (np.arange(T, dtype=np.float64)[:, None] if seed == 0 else g.standard_normal((T, D))).astype(dtype)
        cases.append(Case(f"{label}, T={T}, D={D}, window={window}, horizon={horizon}",
                          {"series": series, "window": window, "horizon": horizon}))
    return cases


def _windowed(first_target=lambda n, window, horizon: n + window,
              count=lambda T, window, horizon: T - window - horizon + 1, start=lambda n, window: n, targets=None):
    """The windows a variant of the indexing makes: X[n] = series[start(n) : start(n) + window],
    y[n] = series[first_target(n) : first_target(n) + horizon] (or ``targets`` of them)."""
    def outputs(case):
        s, window, horizon = case.args["series"], case.args["window"], case.args["horizon"]
        N = count(len(s), window, horizon)
        k = horizon if targets is None else targets
        X = np.stack([s[start(n, window):start(n, window) + window] for n in range(N)])
        y = np.stack([s[first_target(n, window, horizon):first_target(n, window, horizon) + k] for n in range(N)])
        return {"X": X, "y": y}
    return outputs


def _wrong_windows_overlapping_target(series, window, horizon):  # y[n] starts at the window's last step
    N = len(series) - window - horizon + 1
    X = np.stack([series[n:n + window] for n in range(N)])
    y = np.stack([series[n + window - 1:n + window - 1 + horizon] for n in range(N)])
    return X, y


def _wrong_windows_one_short(series, window, horizon):  # N one too small: the last window is missing
    N = len(series) - window - horizon
    X = np.stack([series[n:n + window] for n in range(N)])
    y = np.stack([series[n + window:n + window + horizon] for n in range(N)])
    return X, y


def _wrong_windows_last_target_only(series, window, horizon):  # y[n] is the last of the horizon's values only
    N = len(series) - window - horizon + 1
    X = np.stack([series[n:n + window] for n in range(N)])
    y = np.stack([series[n + window + horizon - 1:n + window + horizon] for n in range(N)])
    return X, y


make_windows = _ListedCases(
    "make_windows", ("X", "y"), _windows_cases,
    mistakes=[
        Mistake("y[n] starts at the last step of the window X[n]: the target overlaps the input, so a model "
                "could 'forecast' it by copying a value it already saw (leakage). The future starts right "
                "after the window: y[n] = series[n + window : n + window + horizon].",
                _windowed(first_target=lambda n, w, h: n + w - 1), _wrong_windows_overlapping_target),
        Mistake("y[n] starts at series[n + 1], inside the window X[n]: the targets overlap the inputs "
                "(leakage). The future starts right after the window, at series[n + window].",
                _windowed(first_target=lambda n, w, h: n + 1)),
        Mistake("there is a gap of one step between the window and its target: y[n] should start right "
                "after the window, at series[n + window], not series[n + window + 1].",
                _windowed(first_target=lambda n, w, h: n + w + 1, count=lambda T, w, h: T - w - h)),
        Mistake("the last window is missing: N = T - window - horizon + 1, so that the last target ends "
                "at the last value of the series, series[T - 1].",
                _windowed(count=lambda T, w, h: T - w - h), _wrong_windows_one_short),
        Mistake("y[n] holds only the last of the `horizon` values; it should hold all of them, "
                "series[n + window : n + window + horizon], shape (N, horizon, D).",
                _windowed(first_target=lambda n, w, h: n + w + h - 1, targets=1), _wrong_windows_last_target_only),
        Mistake("the windows do not overlap: start one at every step n = 0, 1, 2, ..., not every `window` steps.",
                _windowed(start=lambda n, w: n * w, first_target=lambda n, w, h: n * w + w,
                          count=lambda T, w, h: (T - h) // w)),
    ],
    hints={
        "X": "X[n] = series[n : n + window], for n = 0, 1, ..., N - 1.",
        "y": "y[n] = series[n + window : n + window + horizon]: the values right after X[n].",
        "X.shape": "X should be (N, window, D) with N = T - window - horizon + 1; keep the feature axis D "
                   "even when D = 1.",
        "y.shape": "y should be (N, horizon, D): all `horizon` values after each window, with the feature axis.",
        "crash": "the last window starts at n = T - window - horizon, so that its targets end at series[T - 1]: "
                 "loop over range(len(series) - window - horizon + 1).",
    },
)
make_windows.exact = True  # windows are copies of the series: compare them value for value

# --- 9.3: the LSTM forecaster as an nn.Module ---------------------------------------------------


def _forecaster_cases(rng):
    cases = []
    for label, (N, W, D, H), seed in [("fixed weights", (3, 5, 1, 4), 0),
                                      ("random weights with N=1", (1, 6, 1, 3), None),
                                      ("random weights with W=1", (4, 1, 1, 3), None),
                                      ("random weights, D=2", (3, 4, 2, 5), None),
                                      ("random weights with H=1", (2, 3, 1, 1), None)]:
        g = np.random.default_rng(_seed(rng, seed))
        Wx, Wh, b = weights(g, D, H, k=4)
        state = {"lstm.weight_ih_l0": Wx.T.copy(), "lstm.weight_hh_l0": Wh.T.copy(), "lstm.bias_ih_l0": b,
                 "lstm.bias_hh_l0": g.standard_normal(4 * H) * 0.5,
                 "head.weight": g.standard_normal((D, H)) / np.sqrt(H), "head.bias": g.standard_normal(D) * 0.5}
        x = g.standard_normal((N, W, D))
        cases.append(Case(f"{label}, N={N}, W={W}, D={D}, H={H}", {"x": x}, options={"plan": {
            "init": {"input_size": D, "hidden_size": H}, "state": state, "returns": ("forecast",),
            "name": "LSTMForecaster", "douts": {"forecast": g.standard_normal((N, D))}, "grad_wrt": ("x",)}}))
    return cases


def _forecaster_mistake(variant):
    """What a forward written as ``variant(x, h, h_n, c_n, head)`` outputs, with the case's weights."""
    def outputs(case):
        import torch

        plan = case.options["plan"]
        D, H = plan["init"]["input_size"], plan["init"]["hidden_size"]
        lstm = torch.nn.LSTM(D, H, batch_first=True).to(torch.float64)
        head = torch.nn.Linear(H, D).to(torch.float64)
        state = {k: torch.from_numpy(v) for k, v in plan["state"].items()}
        with torch.no_grad():
            lstm.load_state_dict({k[len("lstm."):]: v for k, v in state.items() if k.startswith("lstm.")})
            head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
            x = torch.from_numpy(case.args["x"])
            h, (h_n, c_n) = lstm(x)
            return {"forecast": variant(x, h, h_n, c_n, head).numpy()}
    return outputs


def _wrong_forecast_without_residual(self, x):  # the head's change, not added to the last value
    h, _ = self.lstm(x)
    return self.head(h[:, -1])


def _wrong_forecast_first_step(self, x):  # the hidden state after the first step
    h, _ = self.lstm(x)
    return x[:, -1] + self.head(h[:, 0])


def _wrong_forecast_cell_state(self, x):  # the cell state c_n instead of the hidden state
    _, (h_n, c_n) = self.lstm(x)
    return x[:, -1] + self.head(c_n[-1])


def _wrong_forecast_h_n(self, x):  # h_n (1, N, H), with its layer axis
    _, (h_n, c_n) = self.lstm(x)
    return x[:, -1] + self.head(h_n)


LSTMForecaster = TorchExercise(
    "LSTMForecaster", "torch_module", "LSTMForecaster", _forecaster_cases,
    ("forecast", "dlstm.weight_ih_l0", "dlstm.weight_hh_l0", "dlstm.bias_ih_l0", "dlstm.bias_hh_l0",
     "dhead.weight", "dhead.bias", "dx"),
    mistakes=[
        Mistake("the head's output is the *change* from the last value: add it to x[:, -1], "
                "forecast = x[:, -1] + self.head(h[:, -1]).",
                _forecaster_mistake(lambda x, h, h_n, c_n, head: head(h[:, -1])),
                wrong_module("LSTMForecaster", _wrong_forecast_without_residual)),
        Mistake("h[:, 0] is the hidden state after the *first* step of the window; the one that has read the "
                "whole window is the last, h[:, -1].",
                _forecaster_mistake(lambda x, h, h_n, c_n, head: x[:, -1] + head(h[:, 0])),
                wrong_module("LSTMForecaster", _wrong_forecast_first_step)),
        Mistake("x[:, 0] is the oldest value of the window; the change is added to the last one seen, x[:, -1].",
                _forecaster_mistake(lambda x, h, h_n, c_n, head: x[:, 0] + head(h[:, -1]))),
        Mistake("that is the cell state c; the head reads the hidden state h (the first output of self.lstm).",
                _forecaster_mistake(lambda x, h, h_n, c_n, head: x[:, -1] + head(c_n[-1])),
                wrong_module("LSTMForecaster", _wrong_forecast_cell_state)),
        Mistake("the hidden states are averaged over time; the head reads the last one only, h[:, -1].",
                _forecaster_mistake(lambda x, h, h_n, c_n, head: x[:, -1] + head(h.mean(dim=1)))),
        Mistake("the head is applied at every step, (N, W, D): forecast from the last step only, "
                "x[:, -1] + self.head(h[:, -1]), shape (N, D).",
                _forecaster_mistake(lambda x, h, h_n, c_n, head: x[:, -1:] + head(h))),
        Mistake("h_n has shape (1, N, H), one row per layer, so the forecast came out (1, N, D): use h[:, -1] "
                "(or h_n[-1]).",
                _forecaster_mistake(lambda x, h, h_n, c_n, head: x[:, -1] + head(h_n)),
                wrong_module("LSTMForecaster", _wrong_forecast_h_n)),
    ],
    hints={
        "forecast": "h, _ = self.lstm(x) gives h (N, W, H); forecast = x[:, -1] + self.head(h[:, -1]).",
        "forecast.shape": "the forecast is (N, D): one next value per window. Take the last hidden state "
                          "h[:, -1] (N, H) before the head.",
        "crash": "the forecast must have shape (N, D), one value per window: the head reads the last hidden "
                 "state h[:, -1] (N, H), not every step of h (N, W, H). Keep the skeleton's __init__ (self.lstm, "
                 "batch-first, and self.head); self.lstm(x) returns a pair, (h, (h_n, c_n)).",
    },
)
# In forward an IndexError is almost always an index into the LSTM's (N, W, H) output or its pair.
LSTMForecaster.hints["crash.types"] = {"IndexError": LSTMForecaster.hints["crash"]}
LSTMForecaster.hints.update({k: "the forecast is right, so autograd's gradients follow: keep every operation a "
                                 "torch operation on x and the parameters (no .detach(), .numpy() or in-place "
                                 "changes of x)." for k in LSTMForecaster.outputs[1:]})


# --- 9.4: how often the direction of the next move is right --------------------------------------


def _direction_cases(rng):
    cases = []
    for label, shape, level, seed in [("fixed prices, N=8", (8,), 100.0, 0), ("N=1", (1,), 0.0, None),
                                      ("random prices, N=40", (40,), 50.0, None),
                                      ("random values around 0, (N, D) = (12, 3)", (12, 3), 0.0, None)]:
        g = np.random.default_rng(_seed(rng, seed))
        last_seen = level + g.standard_normal(shape)
        cases.append(Case(label, {"last_seen": last_seen, "forecast": last_seen + 0.1 * g.standard_normal(shape),
                                  "truth": last_seen + g.standard_normal(shape)}))
    return cases


def _wrong_signs_of_values(last_seen, forecast, truth):
    return float(np.mean((forecast > 0) == (truth > 0)))  # the values' signs, not the moves'


def _wrong_count(last_seen, forecast, truth):
    return int(np.sum((forecast > last_seen) == (truth > last_seen)))  # a count, not a fraction


def _wrong_only_rises(last_seen, forecast, truth):
    return float(np.mean((forecast > last_seen) & (truth > last_seen)))  # a fall forecast right counts too


direction_accuracy = _ListedCases(
    "direction_accuracy", ("accuracy",), _direction_cases,
    mistakes=[
        Mistake("you compare the signs of the values themselves (a price is always positive); the direction "
                "is that of the move from the last value seen: forecast > last_seen against truth > last_seen.",
                implementation=_wrong_signs_of_values),
        Mistake("that is the number of days with the direction right; return the fraction, a mean between "
                "0 and 1.", implementation=_wrong_count),
        Mistake("you count only the rises forecast right; a fall forecast as a fall is right too: compare the "
                "two directions with ==, then take the mean.", implementation=_wrong_only_rises),
    ],
    hints={"accuracy": "the forecast's direction is forecast > last_seen, the truth's is truth > last_seen; "
                       "the accuracy is the mean of their agreement (hints 1 and 2 under the exercise).",
           "crash": "last_seen, forecast and truth have one shape; compare them entry by entry and return one float."},
)
