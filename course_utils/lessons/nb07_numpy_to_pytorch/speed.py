"""How fast is an LSTM? Four implementations of the same forward and backward pass, and a timer.

Shapes: N batch, T time steps, D input size, H hidden size. The weights are the course's:
Wx (D, 4H), Wh (H, 4H), b (4H,), gate blocks i, f, g, o; the initial cell state is zero.

1. ``course_utils.reference.lstm_forward`` / ``lstm_backward``: notebook 05's LSTM, step by step,
   every step with its own input product and its own weight-gradient products.
2. :func:`lstm_forward_fast` / :func:`lstm_backward_fast`: the same maths written for speed in
   NumPy: the input products of all T steps in one matrix product, the weight gradients in one
   product each at the end, every gate through one ``tanh``, and arrays allocated once.
3. :func:`unroll`: an LSTM cell written with PyTorch operations (notebook 07's ``LSTMCell``),
   called once per step; autograd does the backward pass.
4. ``torch.nn.LSTM``: PyTorch's own layer.

:func:`speed_table` runs all four on the same inputs, interleaved, and returns the median
time of each; :func:`format_speed_table` prints it with every row's ratio to ``nn.LSTM``.
``benchmarks/bench_lstm_speed.py`` prints the table for N=64, T=50, D=64, H=128.
:func:`lstm_speed_check` confirms, in one line, that the fast NumPy LSTM computes notebook 05's numbers.

Also notebook 07's other plumbing: :func:`lstm_lm_functions` adapts a PyTorch character-level LSTM to
notebook 04's ``bits_per_char`` and ``generate``.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

NUMPY_COURSE, NUMPY_FAST = "NumPy, notebook 05 (step by step)", "NumPy, written for speed"
TORCH_OPS, TORCH_NN = "PyTorch, LSTMCell from operations", "PyTorch, nn.LSTM"


def _gate_constants(H: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """sigmoid(z) = 0.5 tanh(z / 2) + 0.5. So with the sigmoid blocks' pre-activations halved,
    gates = tanh(a) * scale + shift computes sigmoid on the i, f, o blocks and tanh on the g
    block in one pass. Returns scale (4H,) (0.5 on i, f, o; 1 on g) and shift (0.5 on i, f, o; 0 on g)."""
    half, one, zero = np.full(H, 0.5, dtype), np.ones(H, dtype), np.zeros(H, dtype)
    return np.concatenate([half, half, one, half]), np.concatenate([half, half, zero, half])


def lstm_forward_fast(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                      b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The course's LSTM forward pass, written for speed; same result as ``lstm_forward``.

    x: (N, T, D), h0: (N, H), Wx: (D, 4H), Wh: (H, 4H), b: (4H,); the initial cell state is zero.
    Returns h: (N, T, H) and a cache for :func:`lstm_backward_fast`. Keeps the dtype of x.
    """
    N, T, D = x.shape
    H = h0.shape[1]
    dtype = x.dtype
    scale, shift = _gate_constants(H, dtype)
    # Halve the sigmoid blocks' columns once, so that one tanh per step gives every gate; and
    # append b to Wx as one more row, for a column of ones appended to x: x Wx + b = [x, 1] [Wx; b].
    Wxb = np.concatenate([Wx, b[None, :]]) * scale  # (D + 1, 4H)
    Wh_s = Wh * scale
    x1 = np.ones((T, N, D + 1), dtype)  # time-major: the inputs of each step are contiguous
    x1[:, :, :D] = x.transpose(1, 0, 2)
    # The input part of every step in one product: (T*N, D + 1) @ (D + 1, 4H) -> (T, N, 4H)
    gates = (x1.reshape(T * N, D + 1) @ Wxb).reshape(T, N, 4 * H)
    c = np.empty((T, N, H), dtype)
    tanh_c = np.empty((T, N, H), dtype)
    h = np.empty((T + 1, N, H), dtype)  # h[0] = h0, h[t + 1] = the state after step t
    h[0] = h0
    recurrent = np.empty((N, 4 * H), dtype)
    prev_c = np.zeros((N, H), dtype)
    for t in range(T):
        a = gates[t]  # a view: the gates overwrite the pre-activations in place
        a += np.matmul(h[t], Wh_s, out=recurrent)  # a = x Wx + b + prev_h Wh (halved on i, f, o)
        np.tanh(a, out=a)
        a *= scale
        a += shift  # now the gates i, f, g, o
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        np.multiply(f, prev_c, out=c[t])
        c[t] += i * g  # next_c = f * prev_c + i * g
        np.tanh(c[t], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=h[t + 1])  # next_h = o * tanh(next_c)
        prev_c = c[t]
    out = np.ascontiguousarray(h[1:].transpose(1, 0, 2))
    return out, (x1, h, c, tanh_c, gates, Wx, Wh)


def lstm_backward_fast(dh: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward pass of :func:`lstm_forward_fast`; same result as ``lstm_backward``.

    dh: (N, T, H), the upstream gradient of every hidden state.
    Returns dx: (N, T, D), dh0: (N, H), dWx: (D, 4H), dWh: (H, 4H), db: (4H,).
    The loop only carries the gradient back through time and stores the gradient of every
    step's pre-activations, da (T, N, 4H); the weight gradients are one product each at the end.
    """
    x1, h, c, tanh_c, gates, Wx, Wh = cache
    T, N, D = x1.shape[0], x1.shape[1], x1.shape[2] - 1
    H = h.shape[2]
    dtype = gates.dtype
    # d gate / d a = s (1 - s) on the sigmoid blocks and 1 - g^2 on the g block:
    # gate * (not_g - gate) + is_g covers both, with is_g = 1 on the g block only.
    is_g = np.zeros(4 * H, dtype)
    is_g[2 * H:3 * H] = 1
    not_g = 1 - is_g
    zero_c = np.zeros((N, H), dtype)
    da = np.empty((T, N, 4 * H), dtype)
    dgate_da = np.empty((N, 4 * H), dtype)
    dh_tm = dh.transpose(1, 0, 2)
    dnext_h = np.zeros((N, H), dtype)  # the gradient carried back from step t + 1
    dnext_c = np.zeros((N, H), dtype)
    WhT = np.ascontiguousarray(Wh.T)
    for t in reversed(range(T)):
        gate = gates[t]
        i, f, g, o = gate[:, :H], gate[:, H:2 * H], gate[:, 2 * H:3 * H], gate[:, 3 * H:]
        prev_c = c[t - 1] if t > 0 else zero_c
        d_h = dnext_h + dh_tm[t]
        # next_c reaches the loss directly and through next_h = o * tanh(next_c)
        dc = d_h * o
        dc *= 1 - tanh_c[t] * tanh_c[t]
        dc += dnext_c
        d = da[t]
        np.multiply(dc, g, out=d[:, :H])  # di
        np.multiply(dc, prev_c, out=d[:, H:2 * H])  # df
        np.multiply(dc, i, out=d[:, 2 * H:3 * H])  # dg
        np.multiply(d_h, tanh_c[t], out=d[:, 3 * H:])  # do
        np.subtract(not_g, gate, out=dgate_da)
        dgate_da *= gate
        dgate_da += is_g
        d *= dgate_da  # back through the nonlinearities: da
        dnext_c = dc * f
        dnext_h = d @ WhT
    da_flat = da.reshape(T * N, 4 * H)
    dWx = x1.reshape(T * N, D + 1)[:, :D].T @ da_flat  # sum over every step and example at once
    dWh = h[:-1].reshape(T * N, H).T @ da_flat  # h[:-1]: the state before each step
    db = da_flat.sum(axis=0)
    dx = (da_flat @ Wx.T).reshape(T, N, D).transpose(1, 0, 2)
    return np.ascontiguousarray(dx), dnext_h, dWx, dWh, db


def lstm_speed_check(seed: int = 3) -> str:
    """One line: the largest differences between the fast NumPy LSTM and notebook 05's, on a small batch
    (N=4, T=6, D=3, H=5, float64), for h and each gradient."""
    from course_utils import reference as ref

    rng = np.random.default_rng(seed)
    x, h0, dh = rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 5)), rng.standard_normal((4, 6, 5))
    Wx, Wh, b = rng.standard_normal((3, 20)), rng.standard_normal((5, 20)), rng.standard_normal(20)
    h_fast, cache_fast = lstm_forward_fast(x, h0, Wx, Wh, b)
    h_ref, cache_ref = ref.lstm_forward(x, h0, Wx, Wh, b)
    differences = [np.abs(fast - slow).max() for fast, slow in
                   zip([h_fast, *lstm_backward_fast(dh, cache_fast)], [h_ref, *ref.lstm_backward(dh, cache_ref)])]
    return ("fast NumPy LSTM against notebook 05's, largest differences of h, dx, dh0, dWx, dWh, db: "
            + " ".join(f"{d:.0e}" for d in differences))


def lstm_lm_functions(model, H: int, device="cpu"):
    """For a character-level LSTM ``model(x int (N, T), (h, c)) -> (scores (N, T, V), (h, c))`` with
    hidden size H: the ``predict`` of notebook 04's ``bits_per_char`` and the ``step`` of its
    ``generate``. Both carry the LSTM's two states as one NumPy array, h and c side by side, (N, 2H).

    predict(x int (N, T), hc (N, 2H)) -> scores (N, T, V), next hc; step(x int (N,), hc) -> logits (N, V), next hc.
    """
    import torch

    @torch.no_grad()
    def predict(x, hc):
        hc = torch.as_tensor(hc, dtype=torch.float32, device=device)
        state = (hc[None, :, :H].contiguous(), hc[None, :, H:].contiguous())
        scores, (h, c) = model(torch.as_tensor(x, device=device), state)
        return scores.cpu().numpy(), torch.cat([h[0], c[0]], dim=1).cpu().numpy()

    def step(x, hc):
        scores, hc = predict(x[:, None], hc)
        return scores[:, 0], hc

    return predict, step


def unroll(cell, x, h0, c0=None):
    """Run an LSTM cell module over a sequence with a Python loop.

    cell(x_t (N, D), prev_h (N, H), prev_c (N, H)) -> (next_h, next_c), e.g. notebook 07's
    ``LSTMCell``; x: (N, T, D) tensor, h0: (N, H), c0: (N, H) or None for zeros.
    Returns h: (N, T, H), the state after every step, and the last cell state (N, H).
    """
    import torch

    prev_h, prev_c = h0, torch.zeros_like(h0) if c0 is None else c0
    states = []
    for t in range(x.shape[1]):
        prev_h, prev_c = cell(x[:, t], prev_h, prev_c)
        states.append(prev_h)
    return torch.stack(states, dim=1), prev_c


def lstm_runners(x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray,
                 dh: np.ndarray, cell_class=None) -> dict[str, Callable[[], tuple[np.ndarray, dict]]]:
    """One function per implementation; each runs a forward and a backward pass on these inputs.

    x: (N, T, D), h0: (N, H), weights as in the module docstring, dh: (N, T, H) the upstream
    gradient; float32 or float64. cell_class(input_size, hidden_size) builds the PyTorch cell with
    parameters Wx, Wh, b (default: ``course_utils.reference.LSTMCell``). Every runner returns
    (h (N, T, H), {"dx", "dh0", "dWx", "dWh", "db"}) as NumPy arrays in the course's layout.
    """
    import torch

    from course_utils import reference as ref

    N, T, D = x.shape
    H = h0.shape[1]
    dtype = getattr(torch, str(x.dtype))
    cell_class = ref.LSTMCell if cell_class is None else cell_class
    cell = cell_class(D, H).to(dtype)
    with torch.no_grad():
        for name, value in (("Wx", Wx), ("Wh", Wh), ("b", b)):
            getattr(cell, name).copy_(torch.from_numpy(value))
    lstm = torch.nn.LSTM(D, H, batch_first=True).to(dtype)
    ref.load_lstm_weights(lstm, Wx, Wh, b)
    x_t, h0_t, dh_t = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, h0, dh))

    def numpy_course():
        h, cache = ref.lstm_forward(x, h0, Wx, Wh, b)
        return h, dict(zip(("dx", "dh0", "dWx", "dWh", "db"), ref.lstm_backward(dh, cache)))

    def numpy_fast():
        h, cache = lstm_forward_fast(x, h0, Wx, Wh, b)
        return h, dict(zip(("dx", "dh0", "dWx", "dWh", "db"), lstm_backward_fast(dh, cache)))

    def torch_run(forward, params):
        xs, h0s = x_t.clone().requires_grad_(True), h0_t.clone().requires_grad_(True)
        for p in params:
            p.grad = None
        h = forward(xs, h0s)
        h.backward(dh_t)
        return h.detach().numpy(), {"dx": xs.grad.numpy(), "dh0": h0s.grad.numpy()}

    def torch_ops():
        h, grads = torch_run(lambda xs, h0s: unroll(cell, xs, h0s)[0], list(cell.parameters()))
        return h, {**grads, "dWx": cell.Wx.grad.numpy(), "dWh": cell.Wh.grad.numpy(), "db": cell.b.grad.numpy()}

    def torch_nn():
        h, grads = torch_run(lambda xs, h0s: lstm(xs, (h0s[None], torch.zeros_like(h0s)[None]))[0],
                             list(lstm.parameters()))
        return h, {**grads, "dWx": lstm.weight_ih_l0.grad.numpy().T, "dWh": lstm.weight_hh_l0.grad.numpy().T,
                   "db": lstm.bias_ih_l0.grad.numpy()}  # b sits in bias_ih_l0; bias_hh_l0 gets the same gradient

    return {NUMPY_COURSE: numpy_course, NUMPY_FAST: numpy_fast, TORCH_OPS: torch_ops, TORCH_NN: torch_nn}


def time_runners(runners: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median wall-clock seconds of each runner over `repeats` calls, after `warmup` calls.

    The runners take turns (one call of each, then the next round), so that a busy moment of the
    machine slows all of them alike and the ratios between them stay meaningful.
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def speed_table(N: int = 64, T: int = 50, D: int = 64, H: int = 128, repeats: int = 5, warmup: int = 1,
                cell_class=None, seed: int = 0, dtype=np.float32) -> dict[str, float]:
    """Median seconds of one forward plus backward pass of each implementation, on the same
    random inputs and weights (float32 by default, as PyTorch's layers). See :func:`lstm_runners`."""
    rng = np.random.default_rng(seed)
    arrays = (rng.standard_normal((N, T, D)), np.tanh(rng.standard_normal((N, H))),
              rng.standard_normal((D, 4 * H)) / np.sqrt(D), rng.standard_normal((H, 4 * H)) / np.sqrt(H),
              0.1 * rng.standard_normal(4 * H), rng.standard_normal((N, T, H)))
    runners = lstm_runners(*(a.astype(dtype) for a in arrays), cell_class=cell_class)
    return time_runners(runners, repeats=repeats, warmup=warmup)


def format_speed_table(seconds: dict[str, float], baseline: str = TORCH_NN) -> str:
    """The times as a table: one row per implementation, milliseconds and the ratio to `baseline`."""
    width = max(len(name) for name in seconds)
    lines = [f"{'implementation':<{width}}  {'forward + backward':>18}  {'time / nn.LSTM':>14}",
             "-" * (width + 36)]
    for name, s in seconds.items():
        lines.append(f"{name:<{width}}  {s * 1e3:15.1f} ms  {s / seconds[baseline]:13.2f}x")
    return "\n".join(lines)
