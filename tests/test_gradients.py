"""course_utils.lessons.nb03_vanishing_exploding.gradients (notebook 03) computes what its docstrings say."""
import warnings

import matplotlib.pyplot as plt  # conftest.py selects the Agg backend: no windows
import numpy as np
import pytest

from course_utils import reference as ref
from course_utils.data import sine_waves
from course_utils.lessons.nb03_vanishing_exploding.gradients import (
    factor_per_step,
    global_norm,
    linear_rnn_step_backward,
    linear_rnn_step_forward,
    one_unit_loss,
    train_one_unit,
    identity_init,
    init_rnn_regressor,
    orthogonal_init,
    plot_training_run,
    rnn_regression_loss,
    scale_to_spectral_radius,
    spectral_radius,
    train_rnn_regressor,
)


def small_rnn(seed=0, N=3, T=6, D=2, H=4, rho=0.9):
    rng = np.random.default_rng(seed)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H)) * 0.5
    Wx, b = rng.standard_normal((D, H)), rng.standard_normal(H) * 0.1
    Wh = scale_to_spectral_radius(rng.standard_normal((H, H)), rho)
    return x, h0, Wx, Wh, b


# --- recurrent matrices ------------------------------------------------------------------


def test_spectral_radius_is_the_largest_absolute_eigenvalue():
    assert spectral_radius(np.diag([0.5, -2.0, 1.0])) == pytest.approx(2.0)
    rotation = np.array([[0.0, -3.0], [3.0, 0.0]])  # eigenvalues +-3i
    assert spectral_radius(rotation) == pytest.approx(3.0)


@pytest.mark.parametrize("rho", [0.5, 1.0, 2.5])
def test_scale_to_spectral_radius_rescales_a_copy(rho):
    W = np.random.default_rng(0).standard_normal((8, 8))
    before = W.copy()
    scaled = scale_to_spectral_radius(W, rho)
    assert spectral_radius(scaled) == pytest.approx(rho)
    np.testing.assert_array_equal(W, before)
    factor = scaled / W
    np.testing.assert_allclose(factor, factor[0, 0])  # one number times W


def test_orthogonal_init_is_orthogonal_seeded_and_scaled_by_gain():
    Q = orthogonal_init(16, np.random.default_rng(0))
    np.testing.assert_allclose(Q.T @ Q, np.eye(16), atol=1e-12)
    np.testing.assert_allclose(np.linalg.svd(Q, compute_uv=False), 1.0)
    np.testing.assert_array_equal(Q, orthogonal_init(16, np.random.default_rng(0)))
    assert not np.allclose(Q, orthogonal_init(16, np.random.default_rng(1)))
    np.testing.assert_allclose(orthogonal_init(16, np.random.default_rng(0), gain=0.5), 0.5 * Q)


def test_orthogonal_init_is_not_biased_towards_the_identity():
    # Without the sign fix, QR's Q has a biased diagonal; uniformly random Q average to 0.
    mean_trace = np.mean([np.trace(orthogonal_init(4, np.random.default_rng(s))) for s in range(400)])
    assert abs(mean_trace) < 0.25


def test_identity_init():
    np.testing.assert_array_equal(identity_init(3), np.eye(3))
    np.testing.assert_array_equal(identity_init(2, gain=0.9), 0.9 * np.eye(2))


# --- gradients through time --------------------------------------------------------------


def test_linear_steps_send_the_gradient_back_through_wh_alone():
    H, T = 5, 7
    Wh = np.random.default_rng(0).standard_normal((H, H))
    u = np.random.default_rng(1).standard_normal((2, H))
    x, h0, Wx, b = np.ones((2, T, 1)), np.zeros((2, H)), np.ones((1, H)), np.zeros(H)
    norms = ref.gradient_norm_by_lag(x, h0, Wx, Wh, b, u, linear_rnn_step_forward, linear_rnn_step_backward)
    for k in range(T + 1):
        expected = np.linalg.norm(u @ np.linalg.matrix_power(Wh.T, k), axis=1).mean()
        assert norms[k] == pytest.approx(expected, rel=1e-10)
    numerical = ref.numerical_gradient(lambda v: linear_rnn_step_forward(v, h0, Wx, Wh, b)[0], x[:, 0], u)
    np.testing.assert_allclose(linear_rnn_step_backward(u, (x[:, 0], h0, Wx, Wh))[0], numerical, rtol=1e-6)


def test_one_unit_loss_gradients_match_numerical_gradients():
    for Wh, b in [(1.2, -0.06), (0.9, 0.3)]:
        loss, grads = one_unit_loss(Wh, b, T=20)
        eps = 1e-6
        dWh = (one_unit_loss(Wh + eps, b, T=20)[0] - one_unit_loss(Wh - eps, b, T=20)[0]) / (2 * eps)
        db = (one_unit_loss(Wh, b + eps, T=20)[0] - one_unit_loss(Wh, b - eps, T=20)[0]) / (2 * eps)
        assert grads["Wh"] == pytest.approx(dWh, rel=1e-5) and grads["b"] == pytest.approx(db, rel=1e-5)


@pytest.mark.parametrize("Wh", [1.1, 1.2, 1.3, 1.4])
def test_on_the_cliff_plain_descent_gets_stuck_and_clipped_descent_converges(Wh):
    bs = np.linspace(-0.6, 0.2, 161)
    b0 = bs[np.argmax([abs(one_unit_loss(Wh, b)[1]["b"]) for b in bs])]
    plain = train_one_unit(Wh, b0, 0.3, 100)
    clipped = train_one_unit(Wh, b0, 0.3, 100, clip=ref.clip_grad_norm, max_norm=1.0)
    assert plain["loss"][-1] == pytest.approx(0.09, abs=1e-3) and plain["|db|"][-1] < 1e-4  # saturated: stuck
    assert clipped["loss"][-1] < 1e-3
    step = np.hypot(np.diff(clipped["Wh"]), np.diff(clipped["b"]))
    assert step.max() <= 0.3 * 1.0 + 1e-12  # lr * max_norm


def test_factor_per_step_of_a_geometric_sequence():
    norms = 3.0 * 0.8 ** np.arange(21)
    assert factor_per_step(norms) == pytest.approx(0.8)
    assert factor_per_step(norms, first_lag=0) == pytest.approx(0.8)
    norms[:5] = 1.0  # a transient at small lags does not matter from half-way on
    assert factor_per_step(norms) == pytest.approx(0.8)


def test_global_norm_is_the_norm_of_all_entries_together():
    grads = {"a": np.array([[3.0]]), "b": np.array([0.0, 4.0], dtype=np.float32)}
    assert global_norm(grads) == pytest.approx(5.0)
    assert isinstance(global_norm(grads), float)


# --- the RNN regressor -------------------------------------------------------------------


def test_init_rnn_regressor_shapes_and_copy():
    Wh = np.eye(4)
    params = init_rnn_regressor(D=2, H=4, M=3, Wh=Wh, rng=np.random.default_rng(0))
    shapes = {k: v.shape for k, v in params.items()}
    assert shapes == {"Wx": (2, 4), "Wh": (4, 4), "b": (4,), "Wy": (4, 3), "by": (3,)}
    params["Wh"][0, 0] = 5.0
    assert Wh[0, 0] == 1.0


def test_rnn_regression_loss_gradients_match_numerical_gradients():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 1))
    params = init_rnn_regressor(D=2, H=3, M=1, Wh=orthogonal_init(3, rng), rng=rng)
    params["b"], params["by"] = rng.standard_normal(3), rng.standard_normal(1)
    loss, grads = rnn_regression_loss(params, x, y)
    assert set(grads) == set(params)
    assert loss == pytest.approx(np.mean((ref.rnn_forward(x, np.zeros((2, 3)), params["Wx"], params["Wh"],
                                                          params["b"])[0] @ params["Wy"] + params["by"] - y) ** 2))
    for name in params:
        def loss_of(value, name=name):
            return np.array(rnn_regression_loss({**params, name: value}, x, y)[0])
        numerical = ref.numerical_gradient(loss_of, params[name], np.array(1.0))
        np.testing.assert_allclose(grads[name], numerical, rtol=1e-6, atol=1e-9, err_msg=name)


def sine_task(seed=0):
    waves = sine_waves(N=8, T=21, rng=np.random.default_rng(seed))
    return waves[:, :-1], waves[:, 1:]


def test_training_lowers_the_loss_and_leaves_params_alone():
    x, y = sine_task()
    params = init_rnn_regressor(D=1, H=8, M=1, Wh=orthogonal_init(8, np.random.default_rng(0)),
                                rng=np.random.default_rng(1))
    before = {k: v.copy() for k, v in params.items()}
    history = train_rnn_regressor(params, x, y, lr=0.05, num_steps=40)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    assert history["loss"].shape == history["grad_norm"].shape == (40,)
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["grad_norm"][0] == pytest.approx(global_norm(rnn_regression_loss(params, x, y)[1]))
    assert not np.array_equal(history["params"]["Wh"], params["Wh"])


def test_training_calls_the_clip_function_and_bounds_every_step():
    x, y = sine_task()
    params = init_rnn_regressor(D=1, H=8, M=1, Wh=identity_init(8, gain=2.0), rng=np.random.default_rng(1))
    calls = []

    def clip(grads, max_norm):
        calls.append(max_norm)
        return ref.clip_grad_norm(grads, max_norm)

    history = train_rnn_regressor(params, x, y, lr=0.3, num_steps=1, clip=clip, max_norm=0.01)
    assert calls == [0.01]
    step = {k: history["params"][k] - params[k] for k in params}
    assert global_norm(step) == pytest.approx(0.3 * 0.01)  # lr * max_norm: the gradient was clipped
    assert history["grad_norm"][0] > 0.01  # the norm before clipping is what is recorded


def test_large_spectral_radius_and_learning_rate_diverge_without_clipping_only():
    x, y = sine_task()
    A = np.random.default_rng(0).standard_normal((16, 16))
    params = init_rnn_regressor(D=1, H=16, M=1, Wh=scale_to_spectral_radius(A, 3.0), rng=np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow must not leak RuntimeWarnings into the notebook
        plain = train_rnn_regressor(params, x, y, lr=0.5, num_steps=300)
        clipped = train_rnn_regressor(params, x, y, lr=0.5, num_steps=300, clip=ref.clip_grad_norm, max_norm=1.0)
    first_bad = int(np.argmin(np.isfinite(plain["loss"])))
    assert 0 < first_bad < 300 and np.isnan(plain["loss"][first_bad + 1:]).all()
    assert np.isfinite(clipped["loss"]).all() and clipped["loss"][-1] < 0.1 * clipped["loss"][0]


def test_progress_bar_can_be_shown(capsys):
    x, y = sine_task()
    params = init_rnn_regressor(D=1, H=4, M=1, Wh=identity_init(4), rng=np.random.default_rng(0))
    train_rnn_regressor(params, x, y, lr=0.01, num_steps=3, progress=True, desc="demo run")
    captured = capsys.readouterr()
    assert "demo run" in captured.out + captured.err  # a widget in Jupyter; text on stdout in tests


# --- figures -----------------------------------------------------------------------------


def test_plot_training_run_labels_the_divergence_and_the_threshold():
    history = {"loss": np.array([1.0, 1e10, 1e304, np.inf, np.nan]),
               "grad_norm": np.array([5.0, 1e6, 1e150, np.nan, np.nan])}
    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # huge values must not overflow matplotlib's log axis
        plot_training_run(history, ax, "diverging", max_norm=1.0)
        fig.canvas.draw()
    assert ax.get_yscale() == "log" and ax.get_title() == "diverging"
    assert "step" in ax.get_xlabel() and ax.get_ylabel()
    labels = ax.get_legend_handles_labels()[1]
    assert "max_norm = 1.0" in labels and "loss is inf from step 3" in labels
    assert ax.get_ylim()[0] <= 1.0 and ax.get_ylim()[1] >= 1e150
    plt.close(fig)


def test_plot_training_run_without_divergence_has_no_red_line():
    history = {"loss": np.linspace(1.0, 0.1, 10), "grad_norm": np.linspace(3.0, 0.5, 10)}
    fig, ax = plt.subplots()
    plot_training_run(history, ax, "fine")
    assert ax.get_legend_handles_labels()[1] == ["loss (mean squared error)", "global gradient norm before clipping"]
    low, high = ax.get_ylim()
    assert low <= 0.1 and high >= 3.0
    plt.close(fig)
