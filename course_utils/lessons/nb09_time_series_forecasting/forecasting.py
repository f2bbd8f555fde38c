"""Forecasting plumbing of notebook 09: two real series that ship with matplotlib, time-ordered
splits, the persistence and linear autoregressive baselines, recursive multi-step forecasts,
error tables, a training loop for a one-step PyTorch forecaster, and figures.

Shapes: T time steps of a series, D values per step, N windows, W steps per input window,
K steps forecast (the horizon). A series is ``(T, D)``, input windows ``X`` are ``(N, W, D)``,
forecasts and their targets are ``(N, K, D)``; a one-step predictor maps ``(N, W, D)`` to
``(N, D)``. The windows themselves are made by the learner's ``make_windows`` (exercise 9.2).
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_utils.progress import tqdm  # a widget in Jupyter, text in terminals and in saved notebooks

Predictor = Callable[[np.ndarray], np.ndarray]  # windows (N, W, D) -> next values (N, D)

# membrane.dat: one float32 sample every 0.5 ms; x 100 gives millivolts (as matplotlib's logo
# script converts it). The cell rests near -67 mV until sample 1000 and after sample ~10,925;
# in between it is depolarised and fires.
MEMBRANE_DT = 0.0005
MEMBRANE_FIRING = slice(1000, 10920)


# --- the series -------------------------------------------------------------------------------


def load_goog() -> tuple[np.ndarray, np.ndarray]:
    """Daily closing prices of Google's stock (GOOG), 19 August 2004 to 14 October 2008.

    From matplotlib's sample data (``goog.npz``), so nothing is downloaded: 1047 trading days.
    Returns dates: datetime64[D] (T,) and close: float64 (T, 1), in US dollars.
    """
    from matplotlib import cbook

    prices = cbook.get_sample_data("goog.npz")["price_data"]
    return prices["date"].astype("datetime64[D]"), prices["close"].astype(np.float64)[:, None]


def load_membrane(bin_size: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The membrane potential of a neuron while it fires, from matplotlib's ``membrane.dat``.

    The recording holds 12,000 samples, one every 0.5 ms (6 s). We keep the ~5 s between
    0.5 s and 5.46 s during which the cell is depolarised and fires (before and after it
    rests near -67 mV), and average each run of ``bin_size`` samples (4: one value every 2 ms).
    Returns t: seconds since the start of the recording (T,) and v: float64 (T, 1), in mV.
    """
    from matplotlib import cbook

    with cbook.get_sample_data("membrane.dat") as f:
        raw = np.fromfile(f, dtype=np.float32).astype(np.float64)
    x = raw[MEMBRANE_FIRING] * 100.0  # millivolts
    T = len(x) // bin_size
    v = x[:T * bin_size].reshape(T, bin_size).mean(axis=1)
    t = (MEMBRANE_FIRING.start + bin_size * np.arange(T) + (bin_size - 1) / 2) * MEMBRANE_DT
    return t, v[:, None]


def time_split(series: np.ndarray, fractions: tuple[float, float] = (0.7, 0.15)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a series in time order: the first ``fractions[0]`` for training, the next
    ``fractions[1]`` for validation, the rest for testing. Nothing is shuffled.

    series: (T, ...). Returns train, val, test (copies), which concatenate back to ``series``.
    """
    T = len(series)
    n_train = int(round(T * fractions[0]))
    n_val = int(round(T * fractions[1]))
    if not (0 < n_train and 0 < n_val and n_train + n_val < T):
        raise ValueError(f"fractions {fractions} leave an empty split of a series of {T} steps")
    return (series[:n_train].copy(), series[n_train:n_train + n_val].copy(), series[n_train + n_val:].copy())


# --- baselines and forecasts --------------------------------------------------------------------


def persistence_forecast(X: np.ndarray, steps: int) -> np.ndarray:
    """The persistence ("naive") forecast: every future value equals the last one seen.

    X: (N, W, D) input windows. Returns (N, steps, D), each row repeating X[:, -1].
    """
    return np.repeat(X[:, -1:], steps, axis=1)


class LinearAR:
    """A linear autoregressive model of order W, fitted by least squares:

        x_{t+1} = b + sum_{j=1..W} x_{t+1-j} A_j

    where ``A_j`` is (D, D): one linear map of the whole window (N, W*D) -> (N, D).

    >>> ar = LinearAR().fit(X_train, y_train[:, 0])      # X (N, W, D), y (N, D)
    >>> next_values = ar.predict(X_test)                 # (N, D)
    """

    coef: np.ndarray  # (W * D, D): row j * D + d weighs feature d of window step j (0 = oldest)
    bias: np.ndarray  # (D,)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LinearAR":
        """Least squares on windows X (N, W, D) and the values that follow them, y (N, D)."""
        N, W, D = X.shape
        A = np.concatenate([X.reshape(N, W * D), np.ones((N, 1))], axis=1)  # a column of ones for b
        solution, *_ = np.linalg.lstsq(A, y.reshape(N, D), rcond=None)  # minimises ||A w - y||^2
        self.coef, self.bias, self.window = solution[:-1], solution[-1], W
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The next value after each window: (N, W, D) -> (N, D)."""
        N, W, D = X.shape
        if W != self.window:
            raise ValueError(f"this model was fitted on windows of {self.window} steps, got {W}")
        return X.reshape(N, W * D) @ self.coef + self.bias

    def lag_weights(self) -> np.ndarray:
        """The weights by lag for D = 1: (W,), entry j multiplies x_{t-j}, so [0] is the last value seen."""
        if self.coef.shape[1] != 1:
            raise ValueError("lag_weights is for series with one value per step (D = 1)")
        return self.coef[::-1, 0]


def recursive_forecast(predict: Predictor, X: np.ndarray, steps: int) -> np.ndarray:
    """Forecast ``steps`` values ahead with a one-step predictor, feeding each forecast back in.

    predict: (N, W, D) -> (N, D). X: (N, W, D) windows. Step k predicts from the window's last
    W - k true values followed by the k values forecast so far. Returns (N, steps, D).
    """
    window = np.array(X, copy=True)
    forecasts = []
    for _ in range(steps):
        next_value = np.asarray(predict(window), dtype=window.dtype).reshape(window.shape[0], window.shape[2])
        forecasts.append(next_value)
        window = np.concatenate([window[:, 1:], next_value[:, None]], axis=1)  # slide: drop oldest, add forecast
    return np.stack(forecasts, axis=1)


# --- errors ------------------------------------------------------------------------------------


def forecast_errors(truth: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """MAE and RMSE of a forecast, for the next step and over all K steps.

    truth, forecast: (N, K, D) in the same units. Returns {"MAE 1": ..., "RMSE 1": ...,
    "MAE K": ..., "RMSE K": ...}: mean absolute and root mean squared errors of step 1 only,
    and of steps 1 to K together.
    """
    err = np.asarray(forecast, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    if err.ndim != 3:
        raise ValueError(f"truth and forecast should be (N, K, D), got {np.shape(truth)}")
    return {"MAE 1": float(np.mean(np.abs(err[:, 0]))), "RMSE 1": float(np.sqrt(np.mean(err[:, 0] ** 2))),
            "MAE K": float(np.mean(np.abs(err))), "RMSE K": float(np.sqrt(np.mean(err ** 2)))}


def error_table(truth: np.ndarray, forecasts: dict[str, np.ndarray], unit: str = "",
                title: str = "Test errors") -> dict[str, dict[str, float]]:
    """Print the errors of several forecasts as a table, with the best of each column marked *.

    truth: (N, K, D); forecasts: name -> (N, K, D), in the original units (``unit``).
    Returns name -> the dict of ``forecast_errors``.
    """
    K = truth.shape[1]
    errors = {name: forecast_errors(truth, f) for name, f in forecasts.items()}
    columns = ["MAE 1", "RMSE 1", "MAE K", "RMSE K"]
    best = {c: min(errors, key=lambda name: errors[name][c]) for c in columns}
    width = max(len("method"), *map(len, errors))
    print(f"{title}" + (f" ({unit})" if unit else "") + f", {truth.shape[0]} forecasts")
    print(f"{'':{width}}  {'next step':^18}  {f'steps 1-{K} together':^18}")
    print(f"{'method':{width}}  {'MAE':>8} {'RMSE':>8}   {'MAE':>8} {'RMSE':>8}")
    for name, e in errors.items():
        cells = [f"{e[c]:8.2f}" + ("*" if best[c] == name else " ") for c in columns]
        print(f"{name:{width}}  {cells[0]}{cells[1]}  {cells[2]}{cells[3]}")
    print("* the lowest error in its column")
    return errors


# --- training a PyTorch forecaster --------------------------------------------------------------


def train_forecaster(model, X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
                     epochs: int, batch_size: int = 128, lr: float = 3e-3, seed: int = 0, device: str = "cpu",
                     progress: bool = True, desc: str = "training") -> dict:
    """Train a one-step forecaster with Adam on the mean squared error, for a fixed number of epochs.

    model: an ``nn.Module`` on ``device``, mapping (N, W, D) to (N, D). X_*: (N, W, D) windows,
    y_*: (N, D) the value that follows each window (NumPy, scaled). Each epoch visits the
    training windows once, in an order drawn from ``seed``, then measures the validation loss;
    at the end the weights of the epoch with the lowest validation loss are put back.
    Returns {"train": (epochs,) mean training loss per epoch, "val": (epochs,) validation
    loss, "best_epoch": int (1-based), "seconds": wall-clock time}. The model is left in eval mode.
    """
    import torch

    def tensor(a):
        return torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)

    Xt, yt, Xv, yv = tensor(X_train), tensor(y_train), tensor(X_val), tensor(y_val)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"train": np.empty(epochs), "val": np.empty(epochs)}
    best_loss, best_state = np.inf, None
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, mininterval=0.5)
    for epoch in bar:
        model.train()
        total = 0.0
        for idx in np.array_split(rng.permutation(len(Xt)), max(1, -(-len(Xt) // batch_size))):
            idx = torch.as_tensor(idx, device=device)
            loss = torch.mean((model(Xt[idx]) - yt[idx]) ** 2)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            val_loss = torch.mean((model(Xv) - yv) ** 2).item()
        history["train"][epoch], history["val"][epoch] = total / len(Xt), val_loss
        if val_loss < best_loss:
            best_loss, history["best_epoch"] = val_loss, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(train=f"{history['train'][epoch]:.4f}", val=f"{val_loss:.4f}")
    bar.close()
    model.load_state_dict(best_state)
    model.eval()
    history["seconds"] = time.perf_counter() - start
    return history


def torch_predictor(model, device: str = "cpu", batch_size: int = 4096) -> Predictor:
    """A NumPy one-step predictor (N, W, D) -> (N, D) that runs ``model`` in eval mode, without gradients."""
    import torch

    def predict(X: np.ndarray) -> np.ndarray:
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(X), batch_size):
                chunk = torch.as_tensor(np.asarray(X[i:i + batch_size], dtype=np.float32), device=device)
                out.append(model(chunk).cpu().numpy())
        return np.concatenate(out).astype(np.asarray(X).dtype)
    return predict


# --- figures ------------------------------------------------------------------------------------

SPLIT_COLOURS = {"train": "tab:blue", "validation": "tab:orange", "test": "tab:green"}
METHOD_COLOURS = {"persistence": "tab:gray", "linear AR": "tab:purple", "LSTM": "tab:red"}


def _colour(name: str, k: int) -> str:
    for key, colour in METHOD_COLOURS.items():
        if name.startswith(key):
            return colour
    return f"C{k}"


def plot_splits(t: np.ndarray, series: np.ndarray, n_train: int, n_val: int, ax: plt.Axes | None = None,
                title: str = "Time-ordered splits", xlabel: str = "time", ylabel: str = "value") -> plt.Axes:
    """The series (T,) or (T, 1) against t (T,), coloured by split: the first n_train steps
    for training, the next n_val for validation, the rest for testing."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    y = np.asarray(series).reshape(len(t), -1)[:, 0]
    bounds = [0, n_train, n_train + n_val, len(t)]
    for (name, colour), a, b in zip(SPLIT_COLOURS.items(), bounds[:-1], bounds[1:]):
        ax.plot(t[a:b], y[a:b], color=colour, lw=1, label=f"{name} ({b - a} steps)")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_forecasts(t: np.ndarray, truth: np.ndarray, forecasts: dict[str, np.ndarray], ax: plt.Axes | None = None,
                   title: str = "Forecasts", xlabel: str = "time", ylabel: str = "value",
                   truth_label: str = "truth", marker: str = "", dashed: Sequence[str] = ()) -> plt.Axes:
    """Forecasts against the truth over time: truth (T,) or (T, 1) in black, each forecast
    (T,) or (T, 1) in its colour, dashed if its name is in ``dashed`` (so that a line drawn
    over another stays visible). All share the time axis t (T,)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(t, np.asarray(truth).reshape(len(t), -1)[:, 0], color="black", lw=1.5, marker=marker,
            markersize=3, label=truth_label)
    for k, (name, f) in enumerate(forecasts.items()):
        ax.plot(t, np.asarray(f).reshape(len(t), -1)[:, 0], color=_colour(name, k), lw=1.2, marker=marker,
                markersize=3, label=name, ls="--" if name in dashed else "-")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_multistep(t: np.ndarray, series: np.ndarray, window: int, starts: Sequence[int],
                   forecasts: dict[str, np.ndarray], ax: plt.Axes | None = None, title: str = "Multi-step forecasts",
                   xlabel: str = "time", ylabel: str = "value") -> plt.Axes:
    """Multi-step forecasts made from a few windows of one split, drawn over that split.

    t: (T,) and series: (T, 1), the split (in original units) whose windows were forecast;
    window: W; starts: indices n of the windows whose forecasts to draw; forecasts: name ->
    (N, K, 1), where row n forecasts series[n + W : n + W + K] from series[n : n + W].
    A dot marks the last value each forecast starts from.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    y = np.asarray(series).reshape(len(t), -1)[:, 0]
    K = next(iter(forecasts.values())).shape[1]
    lo, hi = max(0, min(starts)), min(len(t), max(starts) + window + K)
    ax.plot(t[lo:hi], y[lo:hi], color="black", lw=1.2, label="truth")
    for k, (name, f) in enumerate(forecasts.items()):
        for j, n in enumerate(starts):
            end = n + window - 1  # the last value seen
            ts = t[end:end + K + 1]
            ys = np.concatenate([[y[end]], f[n, :len(ts) - 1, 0]])
            ax.plot(ts, ys, color=_colour(name, k), lw=1.6, label=name if j == 0 else None)
    for n in starts:
        ax.plot(t[n + window - 1], y[n + window - 1], "o", color="black", markersize=4)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_error_by_step(truth: np.ndarray, forecasts: dict[str, np.ndarray], ax: plt.Axes | None = None,
                       title: str = "Error against steps ahead", xlabel: str = "steps ahead",
                       ylabel: str = "mean absolute error") -> plt.Axes:
    """Mean absolute error at each step ahead k = 1..K. truth and forecasts: (N, K, D)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    K = truth.shape[1]
    for k, (name, f) in enumerate(forecasts.items()):
        mae = np.mean(np.abs(np.asarray(f) - truth), axis=(0, 2))
        ax.plot(np.arange(1, K + 1), mae, marker="o", markersize=3, color=_colour(name, k), label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.set_xticks(np.arange(1, K + 1, max(1, K // 10)))
    ax.legend(loc="best", fontsize=8)
    return ax
