"""Measuring and taming vanishing and exploding gradients in a vanilla RNN (notebook 03).

Shapes: N batch, T time steps, D input size, H hidden size, M output size.
The RNN is the course's: ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``, states stored batch-first
as ``h: (N, T, H)`` with ``h[:, t - 1]`` holding h_t (the initial state h_0 is not in ``h``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from course_utils import reference as ref

from course_utils.progress import tqdm  # a widget in Jupyter, text in terminals and in saved notebooks

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

ClipFunction = Callable[[dict, float], tuple]


# --- recurrent matrices ------------------------------------------------------------------


def spectral_radius(W: np.ndarray) -> float:
    """The largest absolute value of the eigenvalues of a square matrix W: (H, H)."""
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def scale_to_spectral_radius(W: np.ndarray, rho: float) -> np.ndarray:
    """A copy of W: (H, H) multiplied by one number so that its spectral radius is rho.

    Scaling a matrix scales all its eigenvalues (and singular values) by the same factor.
    """
    return W * (rho / spectral_radius(W))


def orthogonal_init(H: int, rng: np.random.Generator, gain: float = 1.0) -> np.ndarray:
    """A random orthogonal matrix (H, H) times gain: all its singular values equal gain.

    The Q of the QR decomposition of a Gaussian matrix, with the signs of R's diagonal
    moved into Q so that Q is uniformly distributed over orthogonal matrices.
    """
    Q, R = np.linalg.qr(rng.standard_normal((H, H)))
    return gain * Q * np.sign(np.diag(R))  # column j of Q times the sign of R[j, j]


def identity_init(H: int, gain: float = 1.0) -> np.ndarray:
    """gain times the identity matrix (H, H): each hidden unit starts by copying itself."""
    return gain * np.eye(H)


# --- gradients through time --------------------------------------------------------------


def linear_rnn_step_forward(x: np.ndarray, prev_h: np.ndarray, Wx: np.ndarray, Wh: np.ndarray,
                            b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """One step of an RNN without tanh, next_h = x @ Wx + prev_h @ Wh + b: (N, H), and a cache.

    Same arguments as rnn_step_forward; used to see what tanh changes in the gradient's travel.
    """
    return x @ Wx + prev_h @ Wh + b, (x, prev_h, Wx, Wh)


def linear_rnn_step_backward(dnext_h: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """Backward pass of linear_rnn_step_forward: dx, dprev_h, dWx, dWh, db."""
    x, prev_h, Wx, Wh = cache
    return dnext_h @ Wx.T, dnext_h @ Wh.T, x.T @ dnext_h, prev_h.T @ dnext_h, dnext_h.sum(axis=0)


def factor_per_step(norms: np.ndarray, first_lag: int | None = None) -> float:
    """The average factor by which norms: (K,) change per step of lag, from first_lag to the end.

    The geometric mean (norms[-1] / norms[first_lag]) ** (1 / steps); first_lag defaults to
    half the largest lag, past the first steps where the factor has not settled yet.
    """
    last = len(norms) - 1
    first_lag = last // 2 if first_lag is None else first_lag
    return float((norms[last] / norms[first_lag]) ** (1 / (last - first_lag)))


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """sqrt(sum of every squared entry of every array in grads), as a float."""
    return float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in grads.values())))


# --- one unit, one target: a cliff in the loss (Pascanu, Mikolov and Bengio, 2013) -----------


def one_unit_loss(Wh: float, b: float, T: int = 50, h0: float = 0.5,
                  target: float = 0.7) -> tuple[float, dict[str, float]]:
    """An RNN with one unit and no input, h_t = tanh(Wh * h_{t-1} + b) from h_0 = h0, trained
    to end at h_T = target. Returns the loss (h_T - target) ** 2 and its gradients
    {"Wh": ..., "b": ...}, by backpropagation through all T steps (rnn_backward)."""
    x = np.zeros((1, T, 1))
    h, cache = ref.rnn_forward(x, np.full((1, 1), h0), np.zeros((1, 1)), np.array([[Wh]]), np.array([b]))
    dh = np.zeros_like(h)
    dh[0, -1, 0] = 2 * (h[0, -1, 0] - target)
    _, _, _, dWh, db = ref.rnn_backward(dh, cache)
    return float((h[0, -1, 0] - target) ** 2), {"Wh": float(dWh[0, 0]), "b": float(db[0])}


def train_one_unit(Wh: float, b: float, lr: float, num_steps: int, clip: ClipFunction | None = None,
                   max_norm: float = 1.0, **task) -> dict[str, np.ndarray]:
    """Gradient descent on one_unit_loss from (Wh, b), optionally clipping with clip(grads, max_norm).

    Returns arrays (num_steps,) of "loss", the gradient norms "|dWh|" and "|db|" (before
    clipping), and the parameters "Wh" and "b" at every step (before its update).
    """
    keys = ("loss", "|dWh|", "|db|", "Wh", "b")
    history = {k: np.zeros(num_steps) for k in keys}
    for step in range(num_steps):
        loss, grads = one_unit_loss(Wh, b, **task)
        for k, v in zip(keys, (loss, abs(grads["Wh"]), abs(grads["b"]), Wh, b)):
            history[k][step] = v
        if clip is not None:
            grads = {k: float(v) for k, v in clip({k: np.array(v) for k, v in grads.items()}, max_norm)[0].items()}
        Wh, b = Wh - lr * grads["Wh"], b - lr * grads["b"]
    return history


# --- a small RNN regressor trained by gradient descent -----------------------------------


def init_rnn_regressor(D: int, H: int, M: int, Wh: np.ndarray, rng: np.random.Generator,
                       input_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Parameters of an RNN with a linear read-out at every step, around a given Wh: (H, H).

    Returns {"Wx": (D, H), "Wh": (H, H), "b": (H,), "Wy": (H, M), "by": (M,)}; Wx and Wy are
    Gaussian with standard deviation input_scale / sqrt(D) and 1 / sqrt(H), the biases zero.
    """
    return {"Wx": rng.standard_normal((D, H)) * input_scale / np.sqrt(D), "Wh": Wh.copy(),
            "b": np.zeros(H), "Wy": rng.standard_normal((H, M)) / np.sqrt(H), "by": np.zeros(M)}


def rnn_regression_loss(params: dict[str, np.ndarray], x: np.ndarray,
                        y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """Mean squared error of the RNN's read-out and its gradients.

    x: (N, T, D), y: (N, T, M). The prediction is h @ Wy + by with h: (N, T, H) from
    rnn_forward started at h_0 = 0. Returns (loss, grads) with grads keyed like params.
    """
    h0 = np.zeros((x.shape[0], params["Wh"].shape[0]))
    h, rnn_cache = ref.rnn_forward(x, h0, params["Wx"], params["Wh"], params["b"])
    pred, affine_cache = ref.temporal_affine_forward(h, params["Wy"], params["by"])
    loss = float(np.mean((pred - y) ** 2))
    dpred = 2 * (pred - y) / pred.size  # d mean((pred - y)^2) / d pred
    dh, dWy, dby = ref.temporal_affine_backward(dpred, affine_cache)
    _, _, dWx, dWh, db = ref.rnn_backward(dh, rnn_cache)
    return loss, {"Wx": dWx, "Wh": dWh, "b": db, "Wy": dWy, "by": dby}


def train_rnn_regressor(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, lr: float,
                        num_steps: int, clip: ClipFunction | None = None, max_norm: float = 1.0,
                        progress: bool = False, desc: str = "training") -> dict[str, np.ndarray]:
    """Full-batch gradient descent on rnn_regression_loss; params are not modified.

    x: (N, T, D), y: (N, T, M). With clip (a function like clip_grad_norm(grads, max_norm)),
    the gradients are clipped to global norm max_norm before every step.
    Returns {"loss": (num_steps,), "grad_norm": (num_steps,), "params": the final params}:
    the loss and the global gradient norm (before clipping) at every step. Once the loss is
    no longer finite, training stops and the remaining entries are nan.
    """
    params = {k: v.copy() for k, v in params.items()}
    history = {"loss": np.full(num_steps, np.nan), "grad_norm": np.full(num_steps, np.nan)}
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is what we want to watch
        for step in tqdm(range(num_steps), desc=desc, disable=not progress):
            loss, grads = rnn_regression_loss(params, x, y)
            history["loss"][step] = loss
            if not np.isfinite(loss):
                break
            if clip is None:
                history["grad_norm"][step] = global_norm(grads)
            else:
                grads, history["grad_norm"][step] = clip(grads, max_norm)
            for name in params:
                params[name] = params[name] - lr * grads[name]
    history["params"] = params
    return history


# --- figures -----------------------------------------------------------------------------


def plot_training_run(history: dict[str, np.ndarray], ax: plt.Axes, title: str,
                      max_norm: float | None = None) -> plt.Axes:
    """Loss and gradient norm of one run of train_rnn_regressor against the step, log scale.

    history: {"loss": (S,), "grad_norm": (S,)}. If the loss stopped being finite, a red line
    marks that step. max_norm, if given, is drawn as a dashed line: the clipping threshold.
    """
    loss, grad_norm = history["loss"], history["grad_norm"]
    values = np.concatenate([loss, grad_norm])
    values = values[np.isfinite(values) & (values > 0)]
    # Whole decades, set before plotting: matplotlib overflows on axes that reach near 1e308.
    low, high = np.floor(np.log10(values.min())) - 1, np.ceil(np.log10(values.max())) + 1
    ax.set_yscale("log")
    ax.set_ylim(10.0 ** low, 10.0 ** min(high, 200))
    ax.set_xlim(0, len(loss))
    ax.plot(loss, label="loss (mean squared error)")
    ax.plot(grad_norm, lw=0.8, label="global gradient norm before clipping")
    if max_norm is not None:
        ax.axhline(max_norm, color="k", ls="--", lw=0.8, label=f"max_norm = {max_norm}")
    if not np.isfinite(loss).all():
        first = int(np.argmin(np.isfinite(loss)))
        ax.axvline(first, color="tab:red", lw=1.5, label=f"loss is {loss[first]} from step {first}")
    ax.set(title=title, xlabel="training step", ylabel="value (log scale)")
    ax.legend(fontsize=8)
    return ax
