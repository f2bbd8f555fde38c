"""A long-range memory task, and a NumPy training loop for any recurrent cell (notebooks 05, 06).

The task, "remember the first symbol": step 0 of a sequence shows one of K symbols, every
later step shows one of K noise symbols drawn at random, and the label is the first symbol.
A classifier reads the last hidden state only, so the cell must carry the first symbol
across T - 1 steps of noise. Chance is 1 / K.

Shapes: N batch, T time steps, K classes (symbols), D = 2K input size (one-hot: K symbol
channels, then K noise channels), H hidden size.

The cell's own sequence forward and backward passes are passed in (the learner's):

    forward(x, h0, *weights) -> h (N, T, H), cache
    backward(dh, cache) -> dx, dh0, *dweights          (the weights in the same order)

Everything else (output layer, loss, gradient clipping, Adam) comes from
``course_utils.reference``; the learner's own versions from notebooks 01-04 would do the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from course_utils.progress import tqdm  # a widget in Jupyter, text in terminals and saved notebooks

from course_utils.reference import (
    adam_step,
    clip_grad_norm,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
)

# A cell's weights, in the order its forward function takes them after (x, h0), and how many
# blocks of H columns its weight matrices have (one per gate or candidate).
WEIGHT_NAMES = {"rnn": ("Wx", "Wh", "b"), "lstm": ("Wx", "Wh", "b"), "gru": ("Wx", "Wh", "bx", "bh")}
BLOCKS = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass(frozen=True)
class Cell:
    """A recurrent cell: its kind ("rnn", "lstm" or "gru") and its sequence forward and backward.

    forward(x, h0, *weights) -> (h, cache), x: (N, T, D), h0: (N, H), h: (N, T, H);
    backward(dh, cache) -> (dx, dh0, *dweights), dh: (N, T, H).
    The weights are those named in ``WEIGHT_NAMES[kind]``, in that order.
    """

    kind: str
    forward: Callable
    backward: Callable

    def __post_init__(self):
        if self.kind not in WEIGHT_NAMES:
            raise ValueError(f"kind should be one of {sorted(WEIGHT_NAMES)}, got {self.kind!r}")


def first_symbol_task(N: int, T: int, K: int, rng: np.random.Generator,
                      dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """N sequences of the "remember the first symbol" task.

    Returns x: (N, T, 2K) one-hot, x[n, 0] one of the K symbol channels 0..K-1 and x[n, t]
    for t >= 1 one of the K noise channels K..2K-1, drawn uniformly; and y: int (N,) in
    0..K-1, the symbol of step 0.
    """
    if T < 1 or K < 2:
        raise ValueError(f"need T >= 1 and K >= 2, got T={T}, K={K}")
    y = rng.integers(0, K, size=N)
    noise = rng.integers(K, 2 * K, size=(N, T - 1))
    channels = np.concatenate([y[:, None], noise], axis=1)  # (N, T): the hot channel of each step
    x = np.zeros((N, T, 2 * K), dtype=dtype)
    np.put_along_axis(x, channels[..., None], 1, axis=-1)
    return x, y


def one_of_each_symbol(T: int, K: int, rng: np.random.Generator, dtype: type = np.float32) -> np.ndarray:
    """K sequences that share the same noise and differ only in their first symbol.

    Returns x: (K, T, 2K); sequence k starts with symbol k. Whatever differs between the
    states of these sequences at step t is what the cell still knows about the first symbol.
    """
    x, _ = first_symbol_task(1, T, K, rng, dtype)
    x = np.repeat(x, K, axis=0)
    x[:, 0, :K] = np.eye(K, dtype=dtype)
    return x


def init_params(kind: str, D: int, H: int, K: int, rng: np.random.Generator,
                forget_bias: float | None = None, dtype: type = np.float32) -> dict[str, np.ndarray]:
    """Weights of a cell of ``kind`` and of the output layer.

    Cell weights as PyTorch initialises them: every entry uniform in [-1/sqrt(H), 1/sqrt(H)];
    Wx: (D, B*H), Wh: (H, B*H), biases (B*H,), with B = BLOCKS[kind]. Output layer:
    W_out: (H, K) uniform in the same range, b_out: (K,) zeros.

    ``forget_bias`` (None: keep the uniform draw) sets the bias of the gate that keeps the old
    state, so that the gate starts near sigmoid(forget_bias): for an LSTM the forget-gate block
    b[H:2H] (blocks i, f, g, o); for a GRU the update-gate block (blocks r, z, n; z is the
    fraction of prev_h kept), bx[H:2H] = forget_bias and bh[H:2H] = 0. A vanilla RNN has no gate.
    """
    B, s = BLOCKS[kind], 1 / np.sqrt(H)
    shapes = {"Wx": (D, B * H), "Wh": (H, B * H), "b": (B * H,), "bx": (B * H,), "bh": (B * H,)}
    params = {name: rng.uniform(-s, s, size=shapes[name]) for name in WEIGHT_NAMES[kind]}
    if forget_bias is not None and kind == "lstm":
        params["b"][H:2 * H] = forget_bias
    if forget_bias is not None and kind == "gru":
        params["bx"][H:2 * H], params["bh"][H:2 * H] = forget_bias, 0.0
    params["W_out"] = rng.uniform(-s, s, size=(H, K))
    params["b_out"] = np.zeros(K)
    return {name: p.astype(dtype) for name, p in params.items()}


def count_params(kind: str, D: int, H: int) -> int:
    """Number of weights of a cell of ``kind`` (output layer excluded), counted from their shapes."""
    params = init_params(kind, D, H, 2, np.random.default_rng(0))
    return sum(params[name].size for name in WEIGHT_NAMES[kind])


def _scores(cell: Cell, params: dict, x: np.ndarray):
    """Scores (N, 1, K) from the last hidden state, and what the backward pass needs."""
    N, H = x.shape[0], params["Wh"].shape[0]
    h0 = np.zeros((N, H), dtype=x.dtype)
    h, cell_cache = cell.forward(x, h0, *(params[name] for name in WEIGHT_NAMES[cell.kind]))
    scores, affine_cache = temporal_affine_forward(h[:, -1:], params["W_out"], params["b_out"])
    return scores, (h.shape, cell_cache, affine_cache)


def loss_and_grads(cell: Cell, params: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Cross-entropy of the classifier softmax(h[:, -1] @ W_out + b_out), and its gradients.

    x: (N, T, D), y: int (N,). Returns the mean loss and a dict of gradients shaped like params.
    """
    scores, (h_shape, cell_cache, affine_cache) = _scores(cell, params, x)
    loss, dscores = temporal_softmax_loss(scores, y[:, None], np.ones((len(y), 1), dtype=bool))
    dh_last, dW_out, db_out = temporal_affine_backward(dscores, affine_cache)
    dh = np.zeros(h_shape, dtype=dh_last.dtype)
    dh[:, -1] = dh_last[:, 0]  # only the last hidden state reaches the loss
    _, _, *dweights = cell.backward(dh, cell_cache)
    grads = dict(zip(WEIGHT_NAMES[cell.kind], dweights))
    grads.update(W_out=dW_out, b_out=db_out)
    return loss, grads


def accuracy(cell: Cell, params: dict, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of the sequences x: (N, T, D) whose label y: int (N,) gets the highest score."""
    scores, _ = _scores(cell, params, x)
    return float(np.mean(scores[:, 0].argmax(axis=-1) == y))


def train(cell: Cell, T: int, K: int = 4, H: int = 32, steps: int = 400, batch: int = 64,
          lr: float = 3e-3, max_norm: float = 5.0, seed: int = 0, forget_bias: float | None = None,
          progress: bool | tqdm = False) -> tuple[dict, list[float]]:
    """Train a classifier on the first-symbol task of length T with Adam; fresh data every step.

    Each step draws ``batch`` new sequences, computes the gradients with the cell's forward
    and backward, clips their global norm to ``max_norm`` and takes one Adam step (learning
    rate ``lr``) for every parameter. ``forget_bias``: see ``init_params``. ``progress``: True
    for a progress bar of its own, or an existing bar to advance by one per step.
    Returns the trained params (see ``init_params``) and the loss of every step.
    """
    rng = np.random.default_rng(seed)
    params = init_params(cell.kind, 2 * K, H, K, rng, forget_bias)
    m = {name: np.zeros_like(p) for name, p in params.items()}  # Adam's running averages
    v = {name: np.zeros_like(p) for name, p in params.items()}
    own_bar = not isinstance(progress, tqdm)
    bar = tqdm(total=steps, disable=not progress, desc=f"{cell.kind}, T={T}", mininterval=1.0) \
        if own_bar else progress
    losses = []
    for step in range(1, steps + 1):
        x, y = first_symbol_task(batch, T, K, rng)
        loss, grads = loss_and_grads(cell, params, x, y)
        grads, _ = clip_grad_norm(grads, max_norm)
        for name in params:
            params[name], m[name], v[name] = adam_step(params[name], grads[name], m[name], v[name], step, lr)
        losses.append(loss)
        bar.update(1)
    if own_bar:
        bar.close()
    return params, losses


def held_out_set(T: int, K: int = 4, N: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A held-out set of the task: x: (N, T, 2K), y: int (N,), from a seed that training never uses.

    ``train`` draws its batches from default_rng(seed) for small seeds; the test set comes from
    default_rng(10_000 + seed).
    """
    return first_symbol_task(N, T, K, np.random.default_rng(10_000 + seed))


def accuracy_vs_length(cells: dict[str, Cell], lengths: Sequence[int], K: int = 4, H: int = 32,
                       steps: int = 400, seed: int = 0, **train_kwargs) -> dict[str, list[float]]:
    """Train every cell at every length from the same seed, and measure held-out accuracy.

    cells: display name -> Cell. Shows one progress bar over all training steps, prints a
    table (one row per length, one column per cell) and returns {name: [accuracy at
    lengths[0], accuracy at lengths[1], ...]}, accuracies in [0, 1] on ``held_out_set(T, K)``.
    ``train_kwargs`` go to ``train`` (batch, lr, max_norm, forget_bias).
    """
    results: dict[str, list[float]] = {name: [] for name in cells}
    with tqdm(total=len(cells) * sum(1 for _ in lengths) * steps, desc="training",
              mininterval=1.0) as bar:
        for T in lengths:
            x_test, y_test = held_out_set(T, K, seed=seed)
            for name, cell in cells.items():
                bar.set_postfix_str(f"{name}, T={T}", refresh=False)
                params, _ = train(cell, T, K, H, steps, seed=seed, progress=bar, **train_kwargs)
                results[name].append(accuracy(cell, params, x_test, y_test))
    print(format_table(lengths, results, chance=1 / K))
    return results


def format_table(lengths: Sequence[int], results: dict[str, list[float]], chance: float) -> str:
    """Accuracies as a text table, in percent: one row per length, one column per model."""
    width = max(10, *(len(name) + 2 for name in results))
    lines = ["length T" + "".join(f"{name:>{width}}" for name in results)]
    for j, T in enumerate(lengths):
        lines.append(f"{T:>8}" + "".join(f"{100 * acc[j]:>{width - 1}.1f}%" for acc in results.values()))
    lines.append(f"(chance: {100 * chance:.1f}%)")
    return "\n".join(lines)


def plot_accuracy_vs_length(lengths: Sequence[int], results: dict[str, list[float]], chance: float,
                            ax: plt.Axes | None = None,
                            title: str = "Remembering the first symbol across T steps of noise") -> plt.Axes:
    """Held-out accuracy (%) against sequence length T (log scale), one line per model, and chance.

    results: name -> accuracies in [0, 1], one per length. Later models get smaller markers and
    other line styles, so that tied models stay visible. Returns the Axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    # Models often tie (all at 100%): shrinking markers and varied line styles keep every one visible.
    markers, styles = "osD^v", ["-", "--", ":", "-."]
    for k, (name, acc) in enumerate(results.items()):
        ax.plot(lengths, 100 * np.asarray(acc), marker=markers[k % 5], ls=styles[k % 4],
                markersize=max(10 - 2.5 * k, 4), lw=2, label=name)
    ax.axhline(100 * chance, color="gray", ls="--", label=f"chance ({100 * chance:.0f}%)")
    ax.set_xscale("log")
    ax.set_xticks(list(lengths), [str(T) for T in lengths])
    ax.minorticks_off()
    ax.set(title=title, xlabel="sequence length T (time steps, log scale)",
           ylabel="held-out accuracy (%)", ylim=(0, 105))
    ax.legend()
    return ax


def plot_unit_heatmaps(panels: dict[str, np.ndarray], vmin: float | Sequence[float] = 0.0,
                       vmax: float | Sequence[float] = 1.0, ncols: int = 3,
                       cmap: str | Sequence[str] = "viridis", title: str = "") -> plt.Figure:
    """One heatmap per panel, hidden unit (rows) against time step (columns), in a grid.

    panels: title -> (T, H) array, for example a gate's values over one sequence. vmin, vmax
    and cmap set each panel's colours (one value for all panels, or a sequence with one per
    panel). Returns the Figure.
    """
    n = len(panels)
    nrows = -(-n // ncols)
    vmins, vmaxs = np.broadcast_to(vmin, n), np.broadcast_to(vmax, n)
    cmaps = [cmap] * n if isinstance(cmap, str) else list(cmap)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False,
                             constrained_layout=True)
    for ax, (name, values), lo, hi, cm in zip(axes.flat, panels.items(), vmins, vmaxs, cmaps):
        values = np.asarray(values)
        if values.ndim != 2:
            raise ValueError(f"panel {name!r} should be (T, H), got shape {values.shape}")
        T, H = values.shape
        image = ax.imshow(values.T, aspect="auto", origin="lower", cmap=cm, vmin=lo, vmax=hi,
                          interpolation="nearest", extent=(-0.5, T - 0.5, -0.5, H - 0.5))
        fig.colorbar(image, ax=ax, pad=0.02)
        ax.set(title=name, xlabel="time step t", ylabel="unit")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig
