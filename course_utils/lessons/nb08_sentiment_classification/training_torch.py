"""Training and evaluation plumbing for PyTorch classifiers of padded token sequences (notebook 08).

The models are the learner's; what is here only feeds them batches, trains them with Adam and
measures them. A model is any ``nn.Module`` called as

    model(tokens (N, T) int64, lengths (N,) int64 on the CPU) -> logits (N, C)

Shapes: N examples, T tokens (padded with 0 after each sequence's end), C classes.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _batch(tokens: np.ndarray, lengths: np.ndarray, idx: np.ndarray, device: str):
    """Rows idx as tensors, cut to the batch's longest sequence (the rest is padding)."""
    T = int(lengths[idx].max())
    return (torch.from_numpy(tokens[idx, :T]).to(device), torch.from_numpy(lengths[idx]))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, tokens: torch.Tensor, lengths: torch.Tensor,
               labels: torch.Tensor, max_norm: float) -> float:
    """One step on the mean cross-entropy of a batch, gradients clipped to global norm ``max_norm``:
    the loss before the step. (Notebook 08 has the learner write this; ``fit_classifier`` uses
    theirs when given one.)"""
    optimizer.zero_grad()
    loss = F.cross_entropy(model(tokens, lengths), labels)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


def fit_classifier(model: nn.Module, tokens: np.ndarray, lengths: np.ndarray, labels: np.ndarray,
                   epochs: int, batch_size: int = 64, lr: float = 3e-3, clip: float = 1.0, seed: int = 0,
                   device: str = "cpu", progress: bool = True, desc: str = "training",
                   step: Callable = train_step) -> dict:
    """Adam on the mean cross-entropy of ``model``'s logits, for a fixed number of epochs.

    tokens: int (N, T), lengths: int (N,), labels: int (N,) in 0..C-1, all NumPy arrays.
    Every epoch visits the examples once, in an order drawn from ``seed``; each mini-batch is
    one call of ``step(model, optimizer, tokens, lengths, labels, clip) -> loss`` (the learner's
    ``train_step`` in notebook 08), which clips the gradients to global norm ``clip``. The model
    must already be on ``device``.
    Returns {"loss": float array (steps,), the loss of every step, "steps_per_epoch": int,
    "seconds": wall-clock time}. The model is left in eval mode.
    """
    from course_utils.progress import tqdm  # a widget in Jupyter, text in terminals and saved notebooks

    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-len(labels) // batch_size)
    losses = np.empty(epochs * steps_per_epoch)
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=len(losses), desc=desc, disable=not progress, mininterval=0.5)
    for epoch in range(epochs):
        order = rng.permutation(len(labels))
        for k in range(steps_per_epoch):
            idx = order[k * batch_size:(k + 1) * batch_size]
            x, x_lengths = _batch(tokens, lengths, idx, device)
            y = torch.from_numpy(labels[idx]).to(device)
            losses[epoch * steps_per_epoch + k] = float(step(model, optimiser, x, x_lengths, y, clip))
            bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{losses[(epoch + 1) * steps_per_epoch - 1]:.3f}")
    bar.close()
    model.eval()
    return {"loss": losses, "steps_per_epoch": steps_per_epoch, "seconds": time.perf_counter() - start}


@torch.no_grad()
def predict_probabilities(model: nn.Module, tokens: np.ndarray, lengths: np.ndarray, device: str = "cpu",
                          batch_size: int = 1000) -> np.ndarray:
    """The softmax of the model's logits: float (N, C). Runs the model in eval mode."""
    model.eval()
    out = []
    for i in range(0, len(lengths), batch_size):
        idx = np.arange(i, min(i + batch_size, len(lengths)))
        out.append(torch.softmax(model(*_batch(tokens, lengths, idx, device)), dim=1).cpu().numpy())
    return np.concatenate(out)


def predict(model: nn.Module, tokens: np.ndarray, lengths: np.ndarray, device: str = "cpu",
            batch_size: int = 1000) -> np.ndarray:
    """The most probable class of every example: int (N,). Runs the model in eval mode."""
    return predict_probabilities(model, tokens, lengths, device, batch_size).argmax(axis=1).astype(np.int64)


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """The fraction of predictions equal to the labels (both int (N,))."""
    return float(np.mean(np.asarray(labels) == np.asarray(predictions)))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """int (C, C): entry [i, j] counts the examples of true class i predicted as class j."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(predictions)), 1)
    return cm
