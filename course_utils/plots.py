"""Figures used by several notebooks. Every function draws on a new or given Axes and returns it.

Shapes: N batch, T time steps, H hidden size.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def plot_hidden_states(h: np.ndarray, ax: plt.Axes | None = None, title: str = "Hidden states over time",
                       vmax: float = 1.0, colorbar: bool = True) -> plt.Axes:
    """Heatmap of the hidden states of one sequence: unit i (rows) against time step t (columns).

    h: (T, H), the states of one sequence, e.g. ``h[0]`` of an RNN's output (N, T, H).
    Drawn as an H x T image with a diverging colour map centred on 0 over [-vmax, vmax]:
    tanh states lie in [-1, 1], so the default vmax = 1 makes saturated units stand out.
    Pixel (i, t) is centred on time step t, so the image lines up with a plot of x[0, :, 0].
    """
    h = np.asarray(h)
    if h.ndim != 2:
        raise ValueError(f"h should be the (T, H) states of one sequence, got shape {h.shape}; "
                         "for a batch (N, T, H) pass h[n]")
    T, H = h.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    image = ax.imshow(h.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                      interpolation="nearest", extent=(-0.5, T - 0.5, -0.5, H - 0.5))
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="h[t, i]", pad=0.01)
    ax.set(title=title, xlabel="time step t", ylabel="hidden unit i")
    return ax


def plot_confusion_matrix(cm: np.ndarray, class_names: list[str] | tuple[str, ...], ax: plt.Axes | None = None,
                          title: str = "Confusion matrix") -> plt.Axes:
    """A classifier's confusion matrix as an annotated image (notebook 08).

    cm: int (C, C), cm[i, j] the number of examples of true class i predicted as class j
    (rows: true class, columns: predicted class). Each cell shows its count and the share
    of its row (the true class); the colour is that share, so the diagonal is the recall.
    """
    cm = np.asarray(cm)
    C = len(class_names)
    if cm.shape != (C, C):
        raise ValueError(f"cm should be ({C}, {C}) for {C} classes, got shape {cm.shape}")
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.5, 3))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(C):
        for j in range(C):
            ax.text(j, i, f"{cm[i, j]}\n{share[i, j]:.0%}", ha="center", va="center",
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set(xticks=range(C), yticks=range(C), xticklabels=class_names, yticklabels=class_names,
           xlabel="predicted class", ylabel="true class", title=title)
    return ax
