"""Reference pieces of notebook 09: forecasting a time series.

Shapes: T time steps of a series, D values per step, N windows, W steps per window, K steps
forecast, H hidden size. ``standardize``, ``make_windows`` and ``direction_accuracy`` are NumPy; ``LSTMForecaster`` is
a PyTorch module. All three are exported lazily by ``course_utils.reference`` (torch loads
on first use), like the rest of the PyTorch part.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def standardize(train: np.ndarray, val: np.ndarray, test: np.ndarray):
    """Scale three splits of a series with the mean and standard deviation of the training split.

    train: (T1, D), val: (T2, D), test: (T3, D). Returns train_s, val_s, test_s (same shapes and
    dtype), each (x - mean) / std, and mean, std: (D,), per feature over the training steps
    (np.std's default: divide by T1).
    """
    mean = train.mean(axis=0)  # statistics of the past only: the model may not peek at val or test
    std = train.std(axis=0)
    return (train - mean) / std, (val - mean) / std, (test - mean) / std, mean, std


def make_windows(series: np.ndarray, window: int, horizon: int):
    """Cut a series into overlapping input windows and the values that follow each one.

    series: (T, D). Returns X: (N, window, D) and y: (N, horizon, D), N = T - window - horizon + 1,
    with X[n] = series[n : n + window] and y[n] = series[n + window : n + window + horizon].
    """
    N = len(series) - window - horizon + 1
    X = np.stack([series[n:n + window] for n in range(N)])  # the past: steps n .. n+window-1
    y = np.stack([series[n + window:n + window + horizon] for n in range(N)])  # the future, after it
    return X, y


def direction_accuracy(last_seen: np.ndarray, forecast: np.ndarray, truth: np.ndarray) -> float:
    """How often a forecast gets the direction of the next move right: up, or not up.

    last_seen, forecast, truth: arrays of one shape, e.g. (N,) or (N, D): the last value each
    forecast saw, the forecast, and what happened. Returns the fraction of entries where the
    forecast rises above the last value seen exactly when the truth does (a coin scores about 0.5).
    """
    predicted_up = forecast > last_seen  # the direction is that of the change, not of the value
    went_up = truth > last_seen
    return float(np.mean(predicted_up == went_up))


class LSTMForecaster(nn.Module):
    """Forecast the next value of a series from a window of past values.

    An ``nn.LSTM`` reads the window; a linear ``head`` maps its last hidden state to the change
    from the window's last value. forward(x (N, W, D)) -> (N, D).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, W, D) -> the next value (N, D): the window's last value plus the predicted change."""
        h, _ = self.lstm(x)  # (N, W, H): the hidden state after every step
        return x[:, -1] + self.head(h[:, -1])  # last value + predicted change
