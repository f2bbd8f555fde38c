"""Data the course generates or finds on this machine: nothing is downloaded.

Shapes: N batch, T time steps, D features per step, V vocabulary size.
"""
from __future__ import annotations

import numpy as np


def sine_waves(N: int, T: int, rng: np.random.Generator, D: int = 1, noise: float = 0.0) -> np.ndarray:
    """A batch of sine waves with random frequency, phase and amplitude: (N, T, D).

    Each of the D features of an example is its own wave, sampled at t = 0, 1, ..., T - 1.
    """
    t = np.arange(T)[None, :, None]
    freq = rng.uniform(0.02, 0.12, size=(N, 1, D))  # cycles per step
    phase = rng.uniform(0, 2 * np.pi, size=(N, 1, D))
    amp = rng.uniform(0.5, 1.5, size=(N, 1, D))
    return amp * np.sin(2 * np.pi * freq * t + phase) + noise * rng.standard_normal((N, T, D))


def pydoc_corpus() -> str:
    """The English text of Python's own documentation topics (module ``pydoc_data``).

    It ships with every CPython installation, so it is always there, offline: about
    465,000 characters of reference prose on the language (keywords, operators, types).
    The topics are joined in sorted order, so the text is the same on every run.
    """
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k].strip() for k in sorted(topics))


class CharVocab:
    """Characters <-> integer ids, for character-level models.

    >>> vocab = CharVocab("hello")
    >>> vocab.decode(vocab.encode("hell"))
    'hell'
    """

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """int (len(text),) ids."""
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        """The text of a sequence of ids."""
        return "".join(self.chars[int(i)] for i in ids)
