"""Real translation pairs for notebooks 10 and 11, read from a local file, and BLEU.

The course trains on generated dates (``course_utils.lessons.nb10_seq2seq.dates``); this module reads the sentence
pairs that the PyTorch tutorial and d2l translate, so that the same encoder and decoder can be
trained on a real language pair when the file is on the disk. Nothing is downloaded.

The file format is the one of the Tatoeba-derived files of manythings.org/anki (``fra.txt``
in ``fra-eng.zip``): UTF-8 text, one pair per line, tab-separated,

    Go.<TAB>Va !<TAB>CC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #1158250 (Wittydev)

the source sentence, its translation, then optional fields (the attribution) that are ignored.

    >>> pairs = read_pairs("fra.txt", max_pairs=20_000)       # [("go .", "va !"), ...], tokenised
    >>> data = TranslationData(pairs, seed=0)                 # the interface of dates.DateData
    >>> batch = data.batch(data.pairs(64, np.random.default_rng(0)))
    >>> bleu(["le chat est ici ."], ["le chat est là ."])      # sacrebleu's corpus BLEU, 0-100

Shapes: N batch, S source length, T target length. Token ids are integers; each vocabulary has
``<pad>`` = 0, ``<start>`` = 1, ``<end>`` = 2 and ``<unk>`` = 3 before its words.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .dates import Batch, Vocab, pad_batch

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
_PUNCTUATION = re.compile(r"([.,!?;:«»\"()¡¿])")


def normalize(text: str) -> str:
    """Lower-case text with the punctuation split off as words, as d2l's ``preprocess_nmt`` does:
    "Va, vite !" -> "va , vite !". Accents are kept; French non-breaking spaces become spaces."""
    text = unicodedata.normalize("NFC", text).replace("\u202f", " ").replace("\xa0", " ").lower()
    return " ".join(_PUNCTUATION.sub(r" \1 ", text).split())


def tokenize(text: str) -> list[str]:
    """The words of ``normalize(text)``: "Va, vite !" -> ["va", ",", "vite", "!"]."""
    return normalize(text).split()


def read_pairs(path: str | Path, max_pairs: int | None = None, reverse: bool = False,
               max_words: int | None = None) -> list[tuple[str, str]]:
    """The sentence pairs of a tab-separated file, normalised (see ``normalize``).

    Each non-empty line holds ``source<TAB>target``, optionally followed by more tab-separated
    fields, which are ignored. ``reverse=True`` swaps the two sides (French to English for
    ``fra.txt``). ``max_words`` keeps only the pairs whose two sides have at most that many
    words; ``max_pairs`` stops after that many kept pairs (the files are sorted by length, so
    the first pairs are the shortest). A line without a tab raises ValueError naming it.
    """
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                raise ValueError(f"{path}, line {number}: expected 'source<TAB>target[<TAB>...]', got {line[:80]!r}")
            source, target = normalize(fields[0]), normalize(fields[1])
            if reverse:
                source, target = target, source
            if max_words is not None and max(len(source.split()), len(target.split())) > max_words:
                continue
            pairs.append((source, target))
            if max_pairs is not None and len(pairs) >= max_pairs:
                break
    return pairs


class WordVocab(Vocab):
    """Words <-> integer ids, with <pad> = 0, <start> = 1, <end> = 2 and <unk> = 3 first.

    Built from sentences (strings of space-separated words); words seen fewer than ``min_freq``
    times are left out and encoded as <unk>. The ids of the special tokens are those of
    ``dates.Vocab``, so the course's models and decoders work with either.

    >>> v = WordVocab(["le chat", "le chien"])
    >>> v.encode("le chat noir", end=True)      # "noir" is unknown
    array([6, 4, 3, 2])
    >>> v.decode([6, 4, 2, 6])                  # stops at <end>
    'le chat'
    """

    pad_id, start_id, end_id, unk_id = 0, 1, 2, 3

    def __init__(self, sentences: Iterable[str], min_freq: int = 1):
        counts = Counter(word for sentence in sentences for word in sentence.split())
        words = sorted(w for w, c in counts.items() if c >= min_freq)  # sorted: the same ids on every machine
        self.tokens = [PAD, START, END, UNK, *words]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def units(self, text: str) -> list[str]:
        """The units of ``text``: its words."""
        return text.split()

    def join(self, units: list[str]) -> str:
        """The text of a list of units: the words, separated by spaces."""
        return " ".join(units)

    def id_of(self, unit: str) -> int:
        """The id of one word; <unk>'s for a word not in the vocabulary."""
        return self.index.get(unit, self.unk_id)


class TranslationData:
    """Sentence pairs split into training and held-out pairs, with the interface of ``dates.DateData``
    (``src_vocab``, ``tgt_vocab``, ``pairs``, ``batch``, ``batches``), so that notebook 10's
    modules, ``seq2seq.train`` and the decoders run on it unchanged.

    pairs: (source, target) strings of space-separated words (``read_pairs``). A fraction
    ``heldout_fraction`` of them, picked with ``seed``, is held out; the vocabularies are built
    from the training pairs only (held-out words the model never saw become <unk>).
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], seed: int = 0, heldout_fraction: float = 0.1,
                 min_freq: int = 1):
        if not pairs:
            raise ValueError("no sentence pairs: read_pairs found none (is the path right?)")
        order = np.random.default_rng(seed).permutation(len(pairs))
        n_heldout = int(round(heldout_fraction * len(pairs)))
        self.heldout = [pairs[i] for i in sorted(order[:n_heldout])]
        self.train = [pairs[i] for i in sorted(order[n_heldout:])]
        self.src_vocab = WordVocab((s for s, _ in self.train), min_freq)
        self.tgt_vocab = WordVocab((t for _, t in self.train), min_freq)

    def pairs(self, n: int, rng: np.random.Generator, split: str = "train") -> list[tuple[str, str]]:
        """n random (source, target) pairs of the split ("train" or "heldout"), drawn with replacement from rng."""
        pool = {"train": self.train, "heldout": self.heldout}[split]
        return [pool[i] for i in rng.integers(0, len(pool), size=n)]

    def batch(self, pairs: Sequence[tuple[str, str]], device: str = "cpu") -> Batch:
        """The pairs as padded tensors (see ``dates.Batch``), on ``device``."""
        import torch

        pad = WordVocab.pad_id
        src, lengths = pad_batch([self.src_vocab.encode(s) for s, _ in pairs], pad)
        tgt_in, _ = pad_batch([self.tgt_vocab.encode(t, start=True) for _, t in pairs], pad)
        tgt_out, _ = pad_batch([self.tgt_vocab.encode(t, end=True) for _, t in pairs], pad)
        src_t = torch.from_numpy(src).to(device)
        return Batch(src_t, torch.from_numpy(lengths), src_t != pad, torch.from_numpy(tgt_in).to(device),
                     torch.from_numpy(tgt_out).to(device), [s for s, _ in pairs], [t for _, t in pairs])

    def batches(self, batch_size: int, seed: int, device: str = "cpu") -> Callable[[], Batch]:
        """A function that returns a fresh random training batch at every call (seeded)."""
        rng = np.random.default_rng(seed)
        return lambda: self.batch(self.pairs(batch_size, rng), device)


def bleu(hypotheses: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0-100) of the hypotheses against one reference each, computed by sacrebleu.

    tokenize: sacrebleu's tokeniser: "13a" (words, its default, for sentences) or "char"
    (characters, for strings without words such as ISO dates). sacrebleu's defaults otherwise
    (4-grams, brevity penalty, no smoothing beyond its "exp" method), so the number is comparable
    with published ones.
    """
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize).score)
