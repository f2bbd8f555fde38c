"""course_utils.lessons.nb09_time_series_forecasting.forecasting (notebook 09): the series, splits, baselines, recursive forecasts,
error tables, the training loop and the figures do what their docstrings say."""
import matplotlib.pyplot as plt  # conftest.py selects the Agg backend: no windows
import numpy as np
import pytest
import torch

from course_utils.lessons.nb09_time_series_forecasting.forecasting import (
    LinearAR, error_table, forecast_errors, load_goog, load_membrane, persistence_forecast,
    plot_error_by_step, plot_forecasts, plot_multistep, plot_splits, recursive_forecast, time_split,
    torch_predictor, train_forecaster,
)
from course_utils.reference import LSTMForecaster, make_windows, standardize

# --- the series ----------------------------------------------------------------------------------


def test_goog_is_1047_trading_days_of_closing_prices_in_order():
    dates, close = load_goog()
    assert dates.shape == (1047,) and close.shape == (1047, 1) and close.dtype == np.float64
    assert str(dates[0]) == "2004-08-19" and str(dates[-1]) == "2008-10-14"
    assert np.all(np.diff(dates).astype(int) > 0)  # strictly increasing: trading days, oldest first
    assert close[0, 0] == pytest.approx(100.34) and close[-1, 0] == pytest.approx(362.71)


def test_membrane_is_the_firing_part_in_millivolts_averaged_in_bins():
    t, v = load_membrane()
    assert t.shape == (2480,) and v.shape == (2480, 1)
    np.testing.assert_allclose(np.diff(t), 0.002)  # 4 samples of 0.5 ms
    assert 0.5 < t[0] < 0.51 and 5.45 < t[-1] < 5.47
    assert -70 < v.min() < -60 and -5 < v.max() < 5  # resting near -67 mV, spikes up to about 0 mV
    t1, v1 = load_membrane(bin_size=1)
    assert len(v1) == 9920
    np.testing.assert_allclose(v[:3, 0], v1[:12, 0].reshape(3, 4).mean(axis=1))
    np.testing.assert_allclose(t[:3], t1[:12].reshape(3, 4).mean(axis=1))  # a bin's time is its centre


# --- splits --------------------------------------------------------------------------------------


def test_time_split_keeps_time_order_and_sizes():
    series = np.arange(100.0)[:, None]
    train, val, test = time_split(series, fractions=(0.6, 0.25))
    assert (len(train), len(val), len(test)) == (60, 25, 15)
    np.testing.assert_array_equal(np.concatenate([train, val, test]), series)
    assert train.max() < val.min() and val.max() < test.min()  # nothing shuffled
    train[0] = -1  # copies: the series is untouched
    assert series[0, 0] == 0


def test_time_split_refuses_an_empty_split():
    with pytest.raises(ValueError, match="empty split"):
        time_split(np.zeros((10, 1)), fractions=(0.9, 0.1))


# --- baselines and recursive forecasts ---------------------------------------------------------------


def test_persistence_repeats_the_last_value_of_each_window():
    X = np.random.default_rng(0).standard_normal((4, 5, 2))
    f = persistence_forecast(X, 3)
    assert f.shape == (4, 3, 2)
    for k in range(3):
        np.testing.assert_array_equal(f[:, k], X[:, -1])


def test_linear_ar_recovers_the_coefficients_of_an_ar2_process():
    rng = np.random.default_rng(0)
    x = np.zeros(5000)
    for t in range(2, len(x)):  # x_t = 0.3 + 0.6 x_{t-1} - 0.2 x_{t-2} + noise
        x[t] = 0.3 + 0.6 * x[t - 1] - 0.2 * x[t - 2] + 0.1 * rng.standard_normal()
    X, y = make_windows(x[:, None], 3, 1)
    ar = LinearAR().fit(X, y[:, 0])
    np.testing.assert_allclose(ar.lag_weights(), [0.6, -0.2, 0.0], atol=0.03)
    assert ar.bias[0] == pytest.approx(0.3, abs=0.03)
    assert ar.predict(X).shape == (len(X), 1)
    with pytest.raises(ValueError, match="windows of 3 steps"):
        ar.predict(X[:, 1:])


def test_linear_ar_fits_several_features_and_is_exact_on_noise_free_data():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4 * 2, 2)) * 0.2
    X = rng.standard_normal((50, 4, 2))
    y = X.reshape(50, 8) @ A + np.array([1.0, -2.0])
    ar = LinearAR().fit(X, y)
    np.testing.assert_allclose(ar.coef, A, atol=1e-10)
    np.testing.assert_allclose(ar.predict(X), y, atol=1e-10)
    with pytest.raises(ValueError, match="D = 1"):
        ar.lag_weights()


def test_recursive_forecast_feeds_forecasts_back_in():
    # A predictor that returns the sum of the last two values: the forecasts follow Fibonacci.
    X = np.array([[[0.0], [1.0], [1.0]]])
    f = recursive_forecast(lambda w: w[:, -1] + w[:, -2], X, 5)
    np.testing.assert_array_equal(f[0, :, 0], [2, 3, 5, 8, 13])
    assert X[0, -1, 0] == 1.0  # the input windows are untouched


def test_recursive_forecast_of_linear_ar_matches_the_closed_form():
    # x_{t+1} = 0.5 x_t  ->  k steps ahead: 0.5**k x_t
    X = np.random.default_rng(2).standard_normal((6, 4, 1))
    f = recursive_forecast(lambda w: 0.5 * w[:, -1], X, 4)
    np.testing.assert_allclose(f[:, :, 0], X[:, -1, 0][:, None] * 0.5 ** np.arange(1, 5))


# --- errors ----------------------------------------------------------------------------------


def test_forecast_errors_and_the_table(capsys):
    truth = np.zeros((2, 3, 1))
    forecast = np.array([[1.0, 0, 0], [-3.0, 4.0, 0]])[:, :, None]
    e = forecast_errors(truth, forecast)
    assert e["MAE 1"] == 2.0 and e["RMSE 1"] == pytest.approx(np.sqrt(5))
    assert e["MAE K"] == pytest.approx(8 / 6) and e["RMSE K"] == pytest.approx(np.sqrt(26 / 6))
    errors = error_table(truth, {"good": truth + 0.1, "bad": forecast}, unit="mV", title="Test")
    out = capsys.readouterr().out
    assert "Test (mV), 2 forecasts" in out and "steps 1-3 together" in out
    assert errors["bad"] == e
    good_row = next(line for line in out.splitlines() if line.startswith("good"))
    assert good_row.count("*") == 4 and "0.10*" in good_row
    with pytest.raises(ValueError, match=r"\(N, K, D\)"):
        forecast_errors(np.zeros((2, 3)), np.zeros((2, 3)))


# --- training --------------------------------------------------------------------------------


def _sine_windows(seed=0):
    t = np.arange(400)
    series = np.sin(2 * np.pi * t / 25)[:, None] + 0.05 * np.random.default_rng(seed).standard_normal((400, 1))
    X, y = make_windows(series, 12, 1)
    return X[:300], y[:300, 0], X[300:], y[300:, 0]


def _trained(epochs=8):
    X, y, Xv, yv = _sine_windows()
    torch.manual_seed(0)
    model = LSTMForecaster(1, 8)
    history = train_forecaster(model, X, y, Xv, yv, epochs=epochs, batch_size=32, lr=1e-2, progress=False)
    return model, history, (X, y, Xv, yv)


def test_train_forecaster_learns_a_sine_beats_persistence_and_keeps_the_best_epoch():
    model, history, (X, y, Xv, yv) = _trained()
    assert history["train"].shape == history["val"].shape == (8,)
    assert history["val"][-1] < history["val"][0]
    assert history["best_epoch"] == int(np.argmin(history["val"])) + 1
    assert history["seconds"] > 0 and not model.training
    predict = torch_predictor(model)
    val_mse = np.mean((predict(Xv) - yv) ** 2)
    assert val_mse == pytest.approx(history["val"].min(), rel=1e-4)  # the best epoch's weights are back
    assert val_mse < np.mean((Xv[:, -1] - yv) ** 2) / 2  # far better than persistence on a sine


def test_training_is_deterministic():
    a, history_a, _ = _trained(epochs=2)
    b, history_b, _ = _trained(epochs=2)
    np.testing.assert_array_equal(history_a["val"], history_b["val"])
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_torch_predictor_batches_and_keeps_the_dtype():
    torch.manual_seed(0)
    model = LSTMForecaster(2, 3)
    X = np.random.default_rng(3).standard_normal((10, 4, 2))
    out = torch_predictor(model, batch_size=3)(X)
    assert out.shape == (10, 2) and out.dtype == np.float64
    with torch.no_grad():
        expected = model(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_standardize_and_windows_compose_as_in_the_notebook():
    series = np.arange(40.0)[:, None]
    train, val, test = time_split(series)
    train_s, val_s, test_s, mean, std = standardize(train, val, test)
    X, y = make_windows(test_s, 3, 2)
    np.testing.assert_allclose(X * std + mean, make_windows(test, 3, 2)[0])
    assert (y * std + mean)[0, 0, 0] == test[3, 0]


# --- figures -----------------------------------------------------------------------------------


def _labelled(ax, title):
    assert ax.get_title() == title and ax.get_xlabel() and ax.get_ylabel()
    assert ax.get_legend() is not None


def test_plot_splits_draws_one_line_per_split():
    t = np.arange(20)
    ax = plot_splits(t, np.arange(20.0)[:, None], 12, 4, title="splits", xlabel="day", ylabel="US$")
    _labelled(ax, "splits")
    lines = ax.get_lines()
    assert [len(line.get_xdata()) for line in lines] == [12, 4, 4]
    assert "train (12 steps)" in [text.get_text() for text in ax.get_legend().get_texts()]
    plt.close(ax.figure)


def test_plot_forecasts_draws_truth_then_each_forecast():
    t = np.arange(5)
    fig, ax = plt.subplots()
    out = plot_forecasts(t, np.zeros(5), {"LSTM": np.ones((5, 1)), "yesterday": np.ones(5) * 2}, ax=ax,
                         title="f", xlabel="day", ylabel="US$", dashed=["yesterday"])
    assert out is ax
    _labelled(ax, "f")
    truth, lstm, yesterday = ax.get_lines()
    np.testing.assert_array_equal(lstm.get_ydata(), np.ones(5))
    assert yesterday.get_linestyle() == "--" and lstm.get_linestyle() == "-"
    plt.close(fig)


def test_plot_multistep_starts_each_forecast_at_the_last_value_seen():
    series = np.arange(30.0)[:, None]
    X, y = make_windows(series, 5, 3)
    forecasts = {"persistence": persistence_forecast(X, 3)}
    ax = plot_multistep(np.arange(30), series, 5, [0, 10], forecasts, title="m", xlabel="t", ylabel="v")
    _labelled(ax, "m")
    segments = [line for line in ax.get_lines() if line.get_color() == "tab:gray"]
    assert len(segments) == 2
    np.testing.assert_array_equal(segments[1].get_xdata(), [14, 15, 16, 17])
    np.testing.assert_array_equal(segments[1].get_ydata(), [14, 14, 14, 14])
    plt.close(ax.figure)


def test_plot_error_by_step_draws_the_mae_of_each_step():
    truth = np.zeros((2, 4, 1))
    ax = plot_error_by_step(truth, {"LSTM": truth + np.arange(1, 5)[None, :, None]}, title="e")
    _labelled(ax, "e")
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1, 2, 3, 4])
    plt.close(ax.figure)
