"""Plumbing of notebook 04's character-level language model: text, batches, evaluation, sampling.

The lesson (forward, loss, backward, clipping, the optimiser step) stays in the notebook;
what is here only feeds the model and measures it.

Shapes: N batch (parallel streams of text), T time steps (characters per window),
H hidden size, V vocabulary size. Token ids are integers in [0, V).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

# forward(x, h0) -> (scores, last_h): x int (N, T), h0 (N, H), scores (N, T, V), last_h (N, H).
Forward = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# step(x, prev_h) -> (logits, next_h): x int (N,), prev_h (N, H), logits (N, V), next_h (N, H).
Step = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# sample(logits, temperature, rng) -> int (N,): e.g. the notebook's sample_with_temperature.
Sampler = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def load_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The text of a file, to train on instead of the default corpus.

    Line endings are normalised to "\\n" (Windows files would otherwise teach the model
    "\\r\\n"). Raises ValueError for an empty file, and for a file that is not in
    ``encoding``, with a message that says how to pass the right one.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not {encoding} text ({err.reason} at byte {err.start}); "
                         f"pass its encoding, e.g. load_text({str(path)!r}, encoding='latin-1')") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise ValueError(f"{path} is empty: a language model needs text to learn from")
    return text


def batch_windows(ids: np.ndarray, N: int, T: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch number k (k = 0, 1, 2, ...) of consecutive windows of the text.

    ids: int (C,), the whole training text. Returns x, y: int (N, T), with y the next
    character of each position of x (y[n, t] follows x[n, t] in the text).

    Row n reads the text as a ring, starting at character n * (C // N), T characters per
    batch: row n of batch k + 1 continues exactly where row n of batch k stopped. So the
    last hidden state of one batch is the right first state of the next one, and can be
    carried (truncated backpropagation through time). Once a row has read the whole ring
    (after C / T batches) it starts over; k can grow without limit.
    """
    C = len(ids)
    if C < 2:
        raise ValueError("the text needs at least two characters: an input and its next one")
    start = np.arange(N)[:, None] * (C // N)  # (N, 1): where each row starts reading
    position = (start + k * T + np.arange(T)) % C  # (N, T)
    return ids[position], ids[(position + 1) % C]


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def bits_per_char(forward: Forward, ids: np.ndarray, H: int, N: int = 32, T: int = 256) -> float:
    """Mean -log2 p(next character) of a model over a text: its bits per character.

    forward(x, h0) -> (scores, last_h), x int (N, T), h0 (N, H), scores (N, T, V) before
    the softmax, last_h (N, H). ids: int (C,), the text to evaluate on (e.g. held-out text).

    The text is cut into N equal streams that are read side by side, T characters at a time,
    carrying the hidden state from one window to the next; each stream starts from a zero
    state (float32). Every character but the first of each stream is predicted once; the
    last (C - 1) % N characters are left out. Perplexity is 2 ** bits_per_char(...).
    """
    N = max(1, min(N, len(ids) - 1))
    L = (len(ids) - 1) // N  # characters predicted per stream
    x_all = ids[:N * L].reshape(N, L)
    y_all = ids[1:N * L + 1].reshape(N, L)
    h = np.zeros((N, H), dtype=np.float32)
    total_nats = 0.0
    for s in range(0, L, T):
        scores, h = forward(x_all[:, s:s + T], h)
        log_probs = _log_softmax(np.asarray(scores, dtype=np.float64))
        total_nats -= np.take_along_axis(log_probs, y_all[:, s:s + T, None], axis=-1).sum()
    return float(total_nats / (N * L) / math.log(2))


def unigram_bits_per_char(train_ids: np.ndarray, heldout_ids: np.ndarray, V: int) -> float:
    """Bits per character of the unigram baseline: each character predicted by its frequency alone.

    p(c) = (count of c in train_ids + 1) / (len(train_ids) + V), add-one smoothing so that a
    character that never occurs in training still has a probability. Returns the mean of
    -log2 p(c) over heldout_ids. A model that uses context should do better.
    """
    counts = np.bincount(train_ids, minlength=V) + 1
    p = counts / counts.sum()
    return float(-np.log2(p[heldout_ids]).mean())


def generate(step: Step, prompt_ids: np.ndarray, h0: np.ndarray, length: int, temperature: float,
             sample: Sampler, rng: np.random.Generator) -> np.ndarray:
    """Sample `length` characters from a model, one at a time, each fed back as the next input.

    step(x, prev_h) -> (logits, next_h): one step of the model, x int (1,), prev_h (1, H),
    logits (1, V). prompt_ids: int (P,), P >= 1, read first to set the hidden state; h0: (1, H).
    sample(logits, temperature, rng) -> int (1,) picks each next character.
    Returns int (length,), the generated ids (without the prompt).
    """
    if len(prompt_ids) == 0:
        raise ValueError("the prompt needs at least one character")
    h = h0
    for i in prompt_ids:
        logits, h = step(np.array([i]), h)
    out = np.empty(length, dtype=np.int64)
    for t in range(length):
        out[t] = int(sample(logits, temperature, rng)[0])
        logits, h = step(out[t:t + 1], h)
    return out


def side_by_side(columns: dict[str, str], width: int = 25, rows: int | None = None) -> str:
    """Texts in columns of `width` characters, under their titles, for printing.

    Each text keeps its own line breaks; longer lines are cut into pieces of `width`
    characters. `rows` limits the lines shown (None: all). Returns one string.
    """
    def lines_of(text: str) -> list[str]:
        out = []
        for line in text.split("\n"):
            out += [line[i:i + width] for i in range(0, max(len(line), 1), width)]
        return out

    cells = [lines_of(text) for text in columns.values()]
    n_rows = max(map(len, cells)) if rows is None else rows
    table = [" │ ".join(f"{title[:width]:<{width}}" for title in columns),
             "─┼─".join("─" * width for _ in columns)]
    for r in range(n_rows):
        table.append(" │ ".join(f"{c[r] if r < len(c) else '':<{width}}" for c in cells).rstrip())
    return "\n".join(table)


def adam_state(params: dict[str, np.ndarray]) -> dict:
    """Adam's state before the first step: {"t": 0, "m": zeros like params, "v": zeros like params}.

    t counts the steps taken; m and v are the running averages of each parameter's gradient
    and of its square (notebook 04's adam_step).
    """
    return {"t": 0, "m": {k: np.zeros_like(p) for k, p in params.items()},
            "v": {k: np.zeros_like(p) for k, p in params.items()}}
