"""Plumbing of notebooks 10 and 11: an encoder-decoder wrapper, its training loop, greedy
decoding, exact-match evaluation and the attention heatmap.

The lessons (the encoder, the decoder, attention, beam search) are the notebooks' exercises;
what is here only trains and measures the learner's modules, whatever their insides, as
long as they follow the exercises' signatures:

    encoder(src (N, S), lengths (N,)) -> outputs (N, S, H), final (N, H)
    decoder(tokens (N, T), hidden (N, H)) -> logits (N, T, V), hidden (N, H)
    attention decoder(tokens, hidden, enc_outputs (N, S, H), src_mask (N, S))
        -> logits (N, T, V), hidden (N, H), weights (N, T, S)

Shapes: N batch, S source length, T target length, H hidden size, V target vocabulary size.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from course_utils.progress import tqdm  # a widget in Jupyter, text in terminals and saved notebooks

from .dates import Batch, DateData


class Seq2Seq(nn.Module):
    """An encoder and a decoder, trained together. ``attention=True`` when the decoder also
    reads the encoder's outputs (notebook 11's AttentionDecoder)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, attention: bool = False):
        super().__init__()
        self.encoder, self.decoder, self.attention = encoder, decoder, attention

    def decode(self, tokens, hidden, enc_outputs, src_mask):
        """The decoder on tokens (N, T): logits (N, T, V), hidden (N, H), weights (N, T, S) or None."""
        if self.attention:
            return self.decoder(tokens, hidden, enc_outputs, src_mask)
        logits, hidden = self.decoder(tokens, hidden)
        return logits, hidden, None

    def forward(self, batch: Batch) -> torch.Tensor:
        """Teacher forcing: logits (N, T, V) for every target position, the decoder reading
        the true previous tokens ``batch.tgt_in`` (<start>, then the target)."""
        enc_outputs, final = self.encoder(batch.src, batch.src_lengths)
        logits, _, _ = self.decode(batch.tgt_in, final, enc_outputs, batch.src_mask)
        return logits

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean cross-entropy of the next target token, over every position of tgt_out that is not <pad>."""
        logits = self(batch)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1), ignore_index=0)

    @torch.no_grad()
    def greedy_decode(self, batch: Batch, max_len: int, start_id: int = 1) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Greedy decoding: at each step feed back the most probable token.

        Returns tokens int (N, max_len), and the attention weights (N, max_len, S) (None
        without attention). Decoding does not stop at <end>; Vocab.decode cuts there.
        """
        enc_outputs, hidden = self.encoder(batch.src, batch.src_lengths)
        token = torch.full((batch.src.shape[0], 1), start_id, dtype=torch.long, device=batch.src.device)
        tokens, weights = [], []
        for _ in range(max_len):
            logits, hidden, w = self.decode(token, hidden, enc_outputs, batch.src_mask)
            token = logits.argmax(dim=-1)  # (N, 1): the most probable next token
            tokens.append(token)
            weights.append(w)
        return torch.cat(tokens, dim=1), (None if weights[0] is None else torch.cat(weights, dim=1))


def train(model: Seq2Seq, next_batch: Callable[[], Batch], steps: int, lr: float = 3e-3,
          clip: float = 1.0, progress: bool = True, desc: str = "training",
          loss_fn: Callable[[Seq2Seq, Batch], torch.Tensor] | None = None) -> dict:
    """Adam on ``loss_fn(model, batch)`` (default ``model.loss``) for a fixed number of steps, one
    fresh batch per step. Notebook 10 passes a loss built on the learner's teacher_forcing_loss.

    The learning rate falls linearly from ``lr`` to 0 over the run, which steadies the last
    steps; gradients are clipped to global norm ``clip``. Returns {"loss": float array (steps,),
    "seconds": wall-clock time}. The model is left in eval mode.
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda k: 1 - k / steps)
    losses = np.empty(steps)
    start = time.perf_counter()
    model.train()
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0)
    for k in bar:
        batch = next_batch()
        loss = model.loss(batch) if loss_fn is None else loss_fn(model, batch)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()
        schedule.step()
        losses[k] = loss.item()
        if k % 50 == 0:
            bar.set_postfix(loss=f"{losses[k]:.3f}")
    model.eval()
    return {"loss": losses, "seconds": time.perf_counter() - start}


def predict(model: Seq2Seq, data: DateData, sources: Sequence[str], device: str = "cpu",
            batch_size: int = 500, decode: Callable | None = None) -> list[str]:
    """Greedy predictions (strings, cut at <end>) for a list of source strings.

    decode: a greedy decoder with the signature of notebook 10's exercise,
    ``decode(encoder, decoder, src, src_lengths, start_id, end_id, max_len) -> N lists of ids``
    (without <start> and <end>); default ``model.greedy_decode``.
    """
    out = []
    max_len = len("yyyy-mm-dd") + 1
    vocab = data.tgt_vocab
    for i in range(0, len(sources), batch_size):
        batch = data.batch([(s, "") for s in sources[i:i + batch_size]], device)
        if decode is None:
            tokens, _ = model.greedy_decode(batch, max_len)
            out += [vocab.decode(row) for row in tokens.cpu().numpy()]
        else:
            with torch.no_grad():
                rows = decode(model.encoder, model.decoder, batch.src, batch.src_lengths, vocab.start_id,
                              vocab.end_id, max_len)
            out += [vocab.decode([*(int(t) for t in row), vocab.end_id]) for row in rows]
    return out


def exact_match(predictions: Sequence[str], targets: Sequence[str]) -> float:
    """The fraction of predictions equal to their target, character for character."""
    return float(np.mean([p == t for p, t in zip(predictions, targets)]))


def accuracy_by_length(sources: Sequence[str], correct: Sequence[bool],
                       edges: Sequence[int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Exact match per input-length bucket.

    sources: the N input strings; correct: N booleans (prediction == target); edges: bucket
    boundaries in characters, e.g. [0, 10, 20, 30, 60] for the buckets 0-9, 10-19, 20-29, 30-59.
    Returns the bucket labels ("10-19"), the accuracy in each bucket (nan where empty) and
    the number of examples in each.
    """
    lengths = np.array([len(s) for s in sources])
    correct = np.asarray(correct, dtype=float)
    labels, accuracy, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (lengths >= lo) & (lengths < hi)
        labels.append(f"{lo}-{hi - 1}")
        counts.append(int(inside.sum()))
        accuracy.append(correct[inside].mean() if inside.any() else np.nan)
    return labels, np.array(accuracy), np.array(counts)


def plot_losses(histories: dict[str, dict], ax=None, window: int = 25,
                title: str = "Training loss (teacher forcing)"):
    """The training loss of one or more runs, as a moving average over ``window`` steps, on a log scale.

    histories: label -> the dict that ``train`` returns (its "loss" array). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for label, history in histories.items():
        loss = np.asarray(history["loss"])
        w = max(1, min(window, len(loss)))
        smooth = np.convolve(loss, np.ones(w) / w, mode="valid")
        ax.plot(np.arange(w - 1, len(loss)) + 1, smooth, label=label)
    ax.set_yscale("log")
    ax.set(title=title, xlabel="training step", ylabel=f"cross-entropy (nats), mean of {window} steps")
    ax.legend()
    return ax


def plot_attention(weights: np.ndarray, source: str, output: str, ax=None, title: str | None = None,
                   colorbar: bool = True):
    """Heatmap of the attention weights of one example: output characters (rows) against input characters.

    weights: (T, S) with T >= len(output) decoding steps and S >= len(source) input positions
    (only the first len(output) + 1 rows, the last one for <end>, and the first len(source)
    columns are drawn). Returns the Axes.
    """
    import matplotlib.pyplot as plt

    rows = [*output, "<end>"][:weights.shape[0]]
    w = np.asarray(weights)[:len(rows), :len(source)]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 0.28 * len(source) + 1.5), 0.28 * len(rows) + 1.5))
    image = ax.imshow(w, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(source)), [c if c != " " else "␣" for c in source], fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set(xlabel="input character", ylabel="output character",
           title=title if title is not None else f"{source!r} -> {output!r}")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="attention weight", pad=0.01)
    return ax


def plot_accuracy_by_length(results: dict[str, tuple[Sequence[str], Sequence[bool]]], edges: Sequence[int],
                            ax=None, title: str = "Exact match against input length"):
    """One line per model: exact match in each input-length bucket (see accuracy_by_length).

    results: label -> (sources, correct), the N input strings and whether each prediction was
    right. Each point is drawn at its bucket; its count of examples is in the tick labels.
    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for label, (sources, correct) in results.items():
        buckets, accuracy, counts = accuracy_by_length(sources, correct, edges)
        ax.plot(range(len(buckets)), accuracy, marker="o", label=label)
    ax.set_xticks(range(len(buckets)), [f"{b}\n({c})" for b, c in zip(buckets, counts)])
    ax.set(title=title, xlabel="input length in characters (number of examples)", ylabel="exact match")
    ax.legend()
    return ax
