"""course_utils.lessons.nb07_numpy_to_pytorch.speed: the fast NumPy LSTM and the PyTorch LSTMs compute notebook 05's LSTM and its
gradients; the timer and the table do what they say. Correctness only: no timing is asserted."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from conftest import ROOT
from course_utils import reference as ref
from course_utils.lessons.nb07_numpy_to_pytorch import speed

GRADS = ("dx", "dh0", "dWx", "dWh", "db")


def lstm_inputs(N, T, D, H, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    arrays = (rng.standard_normal((N, T, D)), rng.standard_normal((N, H)), rng.standard_normal((D, 4 * H)) / 2,
              rng.standard_normal((H, 4 * H)) / 2, rng.standard_normal(4 * H), rng.standard_normal((N, T, H)))
    return tuple(a.astype(dtype) for a in arrays)


SIZES = [(3, 5, 4, 6), (1, 4, 3, 2), (2, 1, 3, 4), (2, 3, 1, 1), (4, 6, 5, 5)]


@pytest.mark.parametrize("N, T, D, H", SIZES)
def test_fast_lstm_matches_notebook_05s_forward_and_backward(N, T, D, H):
    x, h0, Wx, Wh, b, dh = lstm_inputs(N, T, D, H)
    originals = [a.copy() for a in (x, h0, Wx, Wh, b, dh)]
    h, cache = speed.lstm_forward_fast(x, h0, Wx, Wh, b)
    h_ref, cache_ref = ref.lstm_forward(x, h0, Wx, Wh, b)
    np.testing.assert_allclose(h, h_ref, rtol=0, atol=1e-12)
    assert h.shape == (N, T, H) and h.flags.c_contiguous
    grads = speed.lstm_backward_fast(dh, cache)
    for name, g, g_ref in zip(GRADS, grads, ref.lstm_backward(dh, cache_ref)):
        assert g.shape == g_ref.shape, name
        np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-11, err_msg=name)
    for before, after in zip(originals, (x, h0, Wx, Wh, b, dh)):
        np.testing.assert_array_equal(before, after)  # nothing modified in place


def test_fast_lstm_keeps_float32_and_is_right_to_float32_precision():
    x, h0, Wx, Wh, b, dh = lstm_inputs(4, 7, 3, 5, seed=1)
    h, cache = speed.lstm_forward_fast(*(a.astype(np.float32) for a in (x, h0, Wx, Wh, b)))
    grads = speed.lstm_backward_fast(dh.astype(np.float32), cache)
    assert h.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    h_ref, cache_ref = ref.lstm_forward(x, h0, Wx, Wh, b)
    np.testing.assert_allclose(h, h_ref, atol=1e-5)
    for name, g, g_ref in zip(GRADS, grads, ref.lstm_backward(dh, cache_ref)):
        np.testing.assert_allclose(g, g_ref, atol=1e-4 * max(1, np.abs(g_ref).max()), err_msg=name)


def test_fast_lstm_gradients_agree_with_centred_differences():
    x, h0, Wx, Wh, b, dh = lstm_inputs(2, 3, 2, 3, seed=2)
    _, cache = speed.lstm_forward_fast(x, h0, Wx, Wh, b)
    dWh = speed.lstm_backward_fast(dh, cache)[3]
    num = ref.numerical_gradient(lambda W: speed.lstm_forward_fast(x, h0, Wx, W, b)[0], Wh, dh)
    np.testing.assert_allclose(dWh, num, atol=1e-7)


def test_fast_lstm_saturated_gates_stay_finite():
    x, h0, Wx, Wh, b, dh = lstm_inputs(2, 4, 3, 2, seed=3)
    h, cache = speed.lstm_forward_fast(x * 1e3, h0, Wx, Wh, b)
    grads = speed.lstm_backward_fast(dh, cache)
    assert np.all(np.isfinite(h)) and all(np.all(np.isfinite(g)) for g in grads)
    np.testing.assert_allclose(h, ref.lstm_forward(x * 1e3, h0, Wx, Wh, b)[0], atol=1e-12)


def test_unroll_runs_a_cell_over_the_sequence():
    x, h0, Wx, Wh, b, _ = lstm_inputs(3, 4, 2, 5, seed=4)
    cell = ref.LSTMCell(2, 5).double()
    with torch.no_grad():
        for name, value in (("Wx", Wx), ("Wh", Wh), ("b", b)):
            getattr(cell, name).copy_(torch.from_numpy(value))
    h, last_c = speed.unroll(cell, torch.from_numpy(x), torch.from_numpy(h0))
    np.testing.assert_allclose(h.detach().numpy(), ref.lstm_forward(x, h0, Wx, Wh, b)[0], atol=1e-12)
    assert last_c.shape == (3, 5)
    c0 = torch.ones(3, 5, dtype=torch.float64)  # a given initial cell state is used
    h_c0, _ = speed.unroll(cell, torch.from_numpy(x), torch.from_numpy(h0), c0)
    next_h, _ = cell(torch.from_numpy(x[:, 0]), torch.from_numpy(h0), c0)
    torch.testing.assert_close(h_c0[:, 0], next_h)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-11), (np.float32, 2e-4)])
def test_all_four_runners_compute_the_same_outputs_and_gradients(dtype, atol):
    arrays = lstm_inputs(3, 5, 4, 6, seed=5, dtype=dtype)
    runners = speed.lstm_runners(*arrays)
    assert list(runners) == [speed.NUMPY_COURSE, speed.NUMPY_FAST, speed.TORCH_OPS, speed.TORCH_NN]
    h_ref, cache = ref.lstm_forward(*(a.astype(np.float64) for a in arrays[:5]))
    grads_ref = dict(zip(GRADS, ref.lstm_backward(arrays[5].astype(np.float64), cache)))
    for name, run in runners.items():
        for _ in range(2):  # a second run must not accumulate gradients
            h, grads = run()
        np.testing.assert_allclose(h, h_ref, atol=atol, err_msg=name)
        assert set(grads) == set(GRADS), name
        for g in GRADS:
            np.testing.assert_allclose(grads[g], grads_ref[g], atol=atol * 10, err_msg=f"{name}: {g}")


def test_runners_use_the_cell_class_they_are_given():
    built = []

    class CountingCell(ref.LSTMCell):
        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            built.append((input_size, hidden_size))

    runners = speed.lstm_runners(*lstm_inputs(2, 3, 4, 5), cell_class=CountingCell)
    runners[speed.TORCH_OPS]()
    assert built == [(4, 5)]


def test_time_runners_interleaves_and_reports_a_median_per_runner():
    calls = []
    runners = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    seconds = speed.time_runners(runners, repeats=3, warmup=2)
    assert set(seconds) == {"a", "b", "c"} and all(s >= 0 for s in seconds.values())
    assert calls == ["a", "a", "b", "b", "c", "c"] + ["a", "b", "c"] * 3  # warm-up, then taking turns


def test_speed_table_times_the_four_implementations():
    seconds = speed.speed_table(N=2, T=3, D=2, H=3, repeats=1, warmup=0)
    assert list(seconds) == [speed.NUMPY_COURSE, speed.NUMPY_FAST, speed.TORCH_OPS, speed.TORCH_NN]
    assert all(s > 0 for s in seconds.values())


def test_format_speed_table_gives_milliseconds_and_ratios_to_nn_lstm():
    table = speed.format_speed_table({speed.NUMPY_FAST: 0.030, speed.TORCH_NN: 0.020})
    lines = table.splitlines()
    assert "time / nn.LSTM" in lines[0]
    assert lines[2].startswith(speed.NUMPY_FAST) and "30.0 ms" in lines[2] and lines[2].endswith("1.50x")
    assert lines[3].startswith(speed.TORCH_NN) and lines[3].endswith("1.00x")


def test_the_benchmark_script_prints_the_table_and_the_ratio():
    proc = subprocess.run([sys.executable, "benchmarks/bench_lstm_speed.py", "-N", "2", "-T", "3", "-D", "2", "-H", "3",
                           "--repeats", "1", "--threads", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in (speed.NUMPY_COURSE, speed.NUMPY_FAST, speed.TORCH_OPS, speed.TORCH_NN):
        assert name in proc.stdout
    assert "times as long as nn.LSTM on this machine" in proc.stdout and "N=2, T=3, D=2, H=3" in proc.stdout
    assert "target" not in proc.stdout.lower()  # a measurement and what it means, not an internal goal
    assert "PyTorch" in proc.stdout and "with 1 threads" in proc.stdout


def test_nn_lstm_runner_reads_the_bias_gradient_from_bias_ih():
    """nn.LSTM carries b in bias_ih_l0 (bias_hh_l0 = 0); both biases get the same gradient."""
    lstm = nn.LSTM(2, 3, batch_first=True).double()
    x, h0, Wx, Wh, b, dh = lstm_inputs(2, 4, 2, 3, seed=6)
    ref.load_lstm_weights(lstm, Wx, Wh, b)
    out, _ = lstm(torch.from_numpy(x), (torch.from_numpy(h0)[None], torch.zeros(1, 2, 3, dtype=torch.float64)))
    out.backward(torch.from_numpy(dh))
    torch.testing.assert_close(lstm.bias_ih_l0.grad, lstm.bias_hh_l0.grad)


def test_lstm_speed_check_reports_rounding_only():
    line = speed.lstm_speed_check()
    numbers = [float(v) for v in line.split(": ")[-1].split()]
    assert len(numbers) == 6 and max(numbers) < 1e-12, line


def test_lstm_lm_functions_carry_h_and_c_side_by_side():
    """predict and step give what the model gives with the state (h, c), and return it as (N, 2H)."""
    torch.manual_seed(0)
    V, D, H = 7, 3, 4

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.lstm, self.out = nn.Embedding(V, D), nn.LSTM(D, H, batch_first=True), nn.Linear(H, V)

        def forward(self, x, state=None):
            h, state = self.lstm(self.embed(x), state)
            return self.out(h), state

    model = Tiny()
    predict, step = speed.lstm_lm_functions(model, H)
    rng = np.random.default_rng(0)
    x, hc = rng.integers(0, V, size=(2, 5)), rng.standard_normal((2, 2 * H)).astype(np.float32)
    scores, hc_next = predict(x, hc)
    state = (torch.from_numpy(hc[None, :, :H]).contiguous(), torch.from_numpy(hc[None, :, H:]).contiguous())
    with torch.no_grad():
        expected, (h, c) = model(torch.from_numpy(x), state)
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(hc_next, np.concatenate([h[0].numpy(), c[0].numpy()], axis=1), atol=1e-6)
    logits, hc_step = step(x[:, 0], hc)
    assert logits.shape == (2, V) and hc_step.shape == (2, 2 * H)
    np.testing.assert_allclose(logits, predict(x[:, :1], hc)[0][:, 0], atol=1e-6)
