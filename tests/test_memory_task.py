"""course_utils.lessons.nb05_lstm_numpy.memory_task: the first-symbol task, the training loop and the plots do what they say."""
import matplotlib.pyplot as plt  # conftest.py selects the Agg backend: no windows
import numpy as np
import pytest

from course_utils import reference as ref
from course_utils.lessons.nb05_lstm_numpy.memory_task import (
    BLOCKS, WEIGHT_NAMES, Cell, accuracy, accuracy_vs_length, count_params, first_symbol_task,
    format_table, held_out_set, init_params, loss_and_grads, one_of_each_symbol,
    plot_accuracy_vs_length, plot_unit_heatmaps, train,
)

CELLS = {"rnn": Cell("rnn", ref.rnn_forward, ref.rnn_backward),
         "lstm": Cell("lstm", ref.lstm_forward, ref.lstm_backward),
         "gru": Cell("gru", ref.gru_forward, ref.gru_backward)}


def test_first_symbol_task_is_one_hot_with_the_label_first_and_noise_after():
    x, y = first_symbol_task(N=50, T=7, K=3, rng=np.random.default_rng(0))
    assert x.shape == (50, 7, 6) and x.dtype == np.float32 and y.shape == (50,)
    np.testing.assert_array_equal(x.sum(axis=-1), 1)  # one hot channel per step
    channels = x.argmax(axis=-1)
    np.testing.assert_array_equal(channels[:, 0], y)
    assert set(np.unique(y)) == {0, 1, 2}
    assert channels[:, 1:].min() >= 3 and channels[:, 1:].max() <= 5  # noise channels only
    x2, _ = first_symbol_task(N=50, T=7, K=3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(x, x2)  # seeded: the same data again
    assert first_symbol_task(2, 3, 2, np.random.default_rng(0), dtype=np.float64)[0].dtype == np.float64


def test_first_symbol_task_refuses_impossible_sizes():
    with pytest.raises(ValueError):
        first_symbol_task(N=2, T=0, K=3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError):
        first_symbol_task(N=2, T=5, K=1, rng=np.random.default_rng(0))


def test_one_of_each_symbol_shares_the_noise_and_differs_in_the_first_symbol():
    x = one_of_each_symbol(T=6, K=4, rng=np.random.default_rng(1))
    assert x.shape == (4, 6, 8)
    np.testing.assert_array_equal(x[:, 0].argmax(axis=-1), np.arange(4))
    assert (x[:, 1:] == x[:1, 1:]).all()


def test_held_out_set_is_fixed_and_not_a_training_batch():
    x, _ = held_out_set(T=5, K=4, N=30)
    x2, _ = held_out_set(T=5, K=4, N=30)
    np.testing.assert_array_equal(x, x2)
    x_train, _ = first_symbol_task(30, 5, 4, np.random.default_rng(0))
    assert not np.array_equal(x, x_train)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_init_params_shapes_dtype_and_range(kind):
    D, H, K, B = 8, 5, 4, BLOCKS[kind]
    params = init_params(kind, D, H, K, np.random.default_rng(0))
    assert set(params) == set(WEIGHT_NAMES[kind]) | {"W_out", "b_out"}
    assert params["Wx"].shape == (D, B * H) and params["Wh"].shape == (H, B * H)
    assert params["W_out"].shape == (H, K) and params["b_out"].shape == (K,)
    assert all(p.dtype == np.float32 for p in params.values())
    assert all(np.abs(p).max() <= 1 / np.sqrt(H) for p in params.values())  # PyTorch's uniform range


def test_forget_bias_goes_to_the_lstm_forget_block_and_the_gru_update_block():
    H = 3
    lstm = init_params("lstm", 4, H, 2, np.random.default_rng(0), forget_bias=4.0)
    np.testing.assert_array_equal(lstm["b"][H:2 * H], 4.0)  # blocks i, f, g, o
    assert np.abs(np.delete(lstm["b"], np.s_[H:2 * H])).max() <= 1 / np.sqrt(H)
    gru = init_params("gru", 4, H, 2, np.random.default_rng(0), forget_bias=4.0)
    np.testing.assert_array_equal(gru["bx"][H:2 * H] + gru["bh"][H:2 * H], 4.0)  # blocks r, z, n
    rnn = init_params("rnn", 4, H, 2, np.random.default_rng(0), forget_bias=4.0)
    assert np.abs(rnn["b"]).max() <= 1 / np.sqrt(H)  # no gate: unchanged


def test_count_params_matches_the_formulas():
    D, H = 10, 20
    assert count_params("rnn", D, H) == H * (D + H + 1)
    assert count_params("lstm", D, H) == 4 * H * (D + H + 1)
    assert count_params("gru", D, H) == 3 * H * (D + H + 2)


def test_cell_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        Cell("transformer", ref.rnn_forward, ref.rnn_backward)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_loss_and_grads_match_centred_differences(kind):
    rng = np.random.default_rng(0)
    K, T = 3, 4
    cell = CELLS[kind]
    params = init_params(kind, 2 * K, 4, K, rng, forget_bias=1.0, dtype=np.float64)
    x, y = first_symbol_task(5, T, K, rng, dtype=np.float64)
    loss, grads = loss_and_grads(cell, params, x, y)
    assert abs(loss - np.log(K)) < 0.5  # small weights: close to a uniform guess
    assert set(grads) == set(params)
    for name, p in params.items():
        def f(value, name=name):
            return np.array(loss_and_grads(cell, {**params, name: value}, x, y)[0])
        num = ref.numerical_gradient(f, p, np.array(1.0))
        np.testing.assert_allclose(grads[name], num, rtol=1e-5, atol=1e-8, err_msg=name)


def test_accuracy_is_the_fraction_of_argmax_hits():
    cell = CELLS["rnn"]
    params = init_params("rnn", 4, 3, 2, np.random.default_rng(0))
    x, y = first_symbol_task(40, 3, 2, np.random.default_rng(1))
    h, _ = ref.rnn_forward(x, np.zeros((40, 3), np.float32), params["Wx"], params["Wh"], params["b"])
    predicted = (h[:, -1] @ params["W_out"] + params["b_out"]).argmax(axis=-1)
    assert accuracy(cell, params, x, y) == pytest.approx(np.mean(predicted == y))


def test_train_uses_the_given_functions_is_deterministic_and_learns_a_short_task():
    calls = {"forward": 0, "backward": 0}

    def forward(*args):
        calls["forward"] += 1
        return ref.lstm_forward(*args)

    def backward(*args):
        calls["backward"] += 1
        return ref.lstm_backward(*args)

    cell = Cell("lstm", forward, backward)
    params, losses = train(cell, T=3, K=2, H=8, steps=60, batch=32, lr=1e-2, forget_bias=1.0)
    assert calls == {"forward": 60, "backward": 60} and len(losses) == 60
    assert losses[-1] < 0.1 < losses[0]
    assert accuracy(cell, params, *held_out_set(T=3, K=2, N=200)) > 0.95
    _, again = train(CELLS["lstm"], T=3, K=2, H=8, steps=60, batch=32, lr=1e-2, forget_bias=1.0)
    assert again == losses


def test_accuracy_vs_length_returns_one_accuracy_per_length_and_prints_a_table(capsys):
    results = accuracy_vs_length({"RNN": CELLS["rnn"], "GRU": CELLS["gru"]}, [2, 4], K=2, H=4, steps=3)
    assert list(results) == ["RNN", "GRU"]
    assert all(len(acc) == 2 and all(0 <= a <= 1 for a in acc) for acc in results.values())
    out = capsys.readouterr().out
    assert "length T" in out and "RNN" in out and "GRU" in out and "chance: 50.0%" in out


def test_format_table_gives_percentages_per_length():
    table = format_table([5, 40], {"vanilla RNN": [1.0, 0.25], "LSTM": [1.0, 0.999]}, chance=0.25)
    lines = table.splitlines()
    assert "vanilla RNN" in lines[0] and "LSTM" in lines[0]
    assert lines[1].split() == ["5", "100.0%", "100.0%"]
    assert lines[2].split() == ["40", "25.0%", "99.9%"]
    assert lines[-1] == "(chance: 25.0%)"


def test_plot_accuracy_vs_length_draws_one_line_per_model_and_chance():
    ax = plot_accuracy_vs_length([5, 10, 20], {"A": [1, 0.5, 0.25], "B": [1, 1, 1]}, chance=0.25)
    lines = ax.get_lines()
    assert len(lines) == 3  # two models and the chance line
    np.testing.assert_allclose(lines[0].get_ydata(), [100, 50, 25])
    assert ax.get_xscale() == "log" and "length" in ax.get_xlabel() and "%" in ax.get_ylabel()
    assert ax.get_title() and [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["A", "B"]
    plt.close(ax.figure)


def test_plot_unit_heatmaps_draws_each_panel_as_units_by_time():
    T, H = 6, 3
    panels = {"f": np.full((T, H), 0.9), "c": np.arange(T * H).reshape(T, H) - 5.0}
    fig = plot_unit_heatmaps(panels, vmin=[0, -10], vmax=[1, 10], ncols=3, cmap=["viridis", "RdBu_r"],
                             title="gates")
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_images()]
    assert [ax.get_title() for ax in visible] == ["f", "c"]
    image = visible[1].get_images()[0]
    assert image.get_array().shape == (H, T) and image.get_clim() == (-10, 10)
    assert "time" in visible[0].get_xlabel() and "unit" in visible[0].get_ylabel()
    assert fig._suptitle.get_text() == "gates"
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(T, H\)"):
        plot_unit_heatmaps({"batch": np.zeros((2, 3, 4))})
