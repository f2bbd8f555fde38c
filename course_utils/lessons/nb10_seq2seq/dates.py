"""Date normalisation data for notebooks 10 and 11: human-written dates and their ISO form.

    >>> data = DateData(seed=0)
    >>> pairs = data.pairs(3, np.random.default_rng(0))     # [("Tue 3 March 1998", "1998-03-03"), ...]
    >>> batch = data.batch(pairs)                           # padded tensors, ready for a model

Everything is generated here, from the standard library: ``datetime`` does the calendar
(month lengths, leap years, weekdays) and the English names are spelled out below, so the
text does not depend on the machine's locale. The same seed gives the same data everywhere.

Days run from 1 January 1950 to 31 December 2049. Two-digit years are read with the usual
pivot: 50-99 are 1950-1999 and 00-49 are 2000-2049. Numeric formats put the day first
(03/04/98 is 3 April 1998), so no input is ambiguous and a perfect model is possible.

Shapes: N batch, S source (input) length, T target length. Token ids are integers; each
vocabulary has ``<pad>`` = 0, ``<start>`` = 1 and ``<end>`` = 2 before its characters.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

FIRST_DAY, LAST_DAY = dt.date(1950, 1, 1), dt.date(2049, 12, 31)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # date.weekday()


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 3 -> "3rd", 4 -> "4th", 11 -> "11th", 22 -> "22nd"."""
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _names(d: dt.date) -> dict[str, str]:
    month, weekday = MONTHS[d.month - 1], WEEKDAYS[d.weekday()]
    return {"d": str(d.day), "dd": f"{d.day:02d}", "m": str(d.month), "mm": f"{d.month:02d}",
            "yy": f"{d.year % 100:02d}", "yyyy": str(d.year), "Month": month, "Mon": month[:3],
            "Weekday": weekday, "Wkd": weekday[:3], "dth": ordinal(d.day)}


# Each format is a template over the names of _names(); some are then lower- or upper-cased.
# They run from 6 characters ("3/3/98") to about 50 ("on Wednesday, the 23rd day of September
# in the year 1998"), so that accuracy can be measured against input length.
FORMATS: dict[str, tuple[str, str]] = {  # name: (template, case)
    "d/m/yy": ("{d}/{m}/{yy}", ""),
    "dd/mm/yy": ("{dd}/{mm}/{yy}", ""),
    "dd.mm.yyyy": ("{dd}.{mm}.{yyyy}", ""),
    "d/m/yyyy": ("{d}/{m}/{yyyy}", ""),
    "yyyymmdd": ("{yyyy}{mm}{dd}", ""),
    "iso": ("{yyyy}-{mm}-{dd}", ""),
    "d-Mon-yy": ("{d}-{Mon}-{yy}", ""),
    "d Mon yyyy": ("{d} {Mon} {yyyy}", ""),
    "DD MON YYYY": ("{dd} {Mon} {yyyy}", "upper"),
    "d Month yyyy": ("{d} {Month} {yyyy}", ""),
    "Month d, yyyy": ("{Month} {d}, {yyyy}", ""),
    "month dth, yyyy": ("{Month} {dth}, {yyyy}", "lower"),
    "Wkd d Month yyyy": ("{Wkd} {d} {Month} {yyyy}", ""),
    "Weekday, Month d, yyyy": ("{Weekday}, {Month} {d}, {yyyy}", ""),
    "the dth of Month yyyy": ("the {dth} of {Month} {yyyy}", ""),
    "Weekday, the dth of Month, yyyy": ("{Weekday}, the {dth} of {Month}, {yyyy}", ""),
    "on weekday the dth day of month in the year yyyy": (
        "on {Weekday}, the {dth} day of {Month} in the year {yyyy}", "lower"),
}


def format_date(d: dt.date, fmt: str) -> str:
    """The date written in format ``fmt``, a key of FORMATS: format_date(date(1998, 3, 3),
    "Wkd d Month yyyy") == "Tue 3 March 1998"."""
    template, case = FORMATS[fmt]
    text = template.format(**_names(d))
    return text.lower() if case == "lower" else text.upper() if case == "upper" else text


def all_days(first: dt.date = FIRST_DAY, last: dt.date = LAST_DAY) -> list[dt.date]:
    """Every day from first to last, both included, in order."""
    return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]


PAD, START, END = "<pad>", "<start>", "<end>"


class Vocab:
    """Characters <-> integer ids, with <pad> = 0, <start> = 1 and <end> = 2 first.

    >>> v = Vocab("0123456789-")
    >>> v.encode("1998", end=True)
    array([ 5, 13, 13, 12,  2])
    >>> v.decode([5, 13, 13, 12, 2, 0])      # stops at <end>
    '1998'
    """

    pad_id, start_id, end_id = 0, 1, 2

    def __init__(self, chars: str | Sequence[str]):
        self.tokens = [PAD, START, END, *sorted(set(chars))]
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, start: bool = False, end: bool = False) -> np.ndarray:
        """int (len(units) + start + end,) ids of the units of ``text``, optionally between <start> and <end>."""
        ids = [self.id_of(u) for u in self.units(text)]
        return np.array([self.start_id] * start + ids + [self.end_id] * end, dtype=np.int64)

    def decode(self, ids) -> str:
        """The text of a sequence of ids, up to the first <end>; <pad> and <start> are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.end_id:
                break
            if i not in (self.pad_id, self.start_id):
                out.append(self.tokens[i])
        return self.join(out)

    # What a unit of text is: a character here; a word for translation.WordVocab.
    def units(self, text: str) -> Sequence[str]:
        """The units of ``text``: its characters."""
        return text

    def join(self, units: list[str]) -> str:
        """The text of a list of units: the characters joined."""
        return "".join(units)

    def id_of(self, unit: str) -> int:
        """The id of one unit (a KeyError for a character not in the vocabulary)."""
        return self.index[unit]


def pad_batch(seqs: Sequence[np.ndarray], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences of different lengths into one array, padded at the end.

    seqs: N int arrays of lengths L_n >= 1. Returns ids int (N, max L_n), with pad_id after
    each sequence's end, and lengths int (N,).
    """
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    ids = np.full((len(seqs), int(lengths.max())), pad_id, dtype=np.int64)
    for n, s in enumerate(seqs):
        ids[n, :len(s)] = s
    return ids, lengths


@dataclass
class Batch:
    """One batch of a sequence-to-sequence task, as tensors on one device.

    src: int (N, S), the inputs padded with <pad>; src_lengths: int (N,) (on the CPU, as
    ``pack_padded_sequence`` wants them); src_mask: bool (N, S), True at real positions;
    tgt: int (N, T + 1), <start>, the target, <end>, then <pad>; tgt_in: int (N, T), tgt
    without its last column (what the decoder reads, teacher forcing); tgt_out: int (N, T),
    tgt without its first column (what it should predict); sources, targets: the N strings.
    """

    src: "torch.Tensor"  # noqa: F821
    src_lengths: "torch.Tensor"  # noqa: F821
    src_mask: "torch.Tensor"  # noqa: F821
    tgt_in: "torch.Tensor"  # noqa: F821
    tgt_out: "torch.Tensor"  # noqa: F821
    sources: list[str]
    targets: list[str]
    tgt: "torch.Tensor" = None  # noqa: F821

    def __post_init__(self):
        if self.tgt is None:  # <start> + tgt_out: the full target, as teacher_forcing_loss reads it
            import torch

            self.tgt = torch.cat([self.tgt_in[:, :1], self.tgt_out], dim=1)


class DateData:
    """Human-written dates and their ISO form, with separate training and held-out days.

    Every day of 1950-2049 (36,525 days) is either a training day or a held-out day:
    ``heldout_fraction`` of them, picked with ``seed``, are never drawn for training, in any
    format. So held-out accuracy measures dates the model has never seen.
    ``formats``: the FORMATS keys to use (default: all).
    """

    def __init__(self, seed: int = 0, heldout_fraction: float = 0.1, formats: Sequence[str] | None = None):
        days = all_days()
        order = np.random.default_rng(seed).permutation(len(days))
        n_heldout = int(round(heldout_fraction * len(days)))
        self.heldout_days = sorted(days[i] for i in order[:n_heldout])
        self.train_days = sorted(days[i] for i in order[n_heldout:])
        self.formats = list(FORMATS if formats is None else formats)
        chars = {c for d in (dt.date(2000, 9, 27), dt.date(1999, 12, 31)) for f in self.formats
                 for c in format_date(d, f)}
        chars |= {c for name in MONTHS + WEEKDAYS for c in name + name.lower() + name.upper()}
        self.src_vocab = Vocab("".join(chars) + "0123456789")
        self.tgt_vocab = Vocab("0123456789-")

    def pairs(self, n: int, rng: np.random.Generator, split: str = "train",
              fmt: str | None = None) -> list[tuple[str, str]]:
        """n (source, target) pairs: a random day of the split written in a random format (or in
        format ``fmt``), and its ISO date. split: "train" or "heldout". The draws come from rng only.
        """
        days = {"train": self.train_days, "heldout": self.heldout_days}[split]
        picks = rng.integers(0, len(days), size=n)
        fmts = [fmt] * n if fmt is not None else [self.formats[f] for f in rng.integers(0, len(self.formats), size=n)]
        return [(format_date(days[i], f), days[i].isoformat()) for i, f in zip(picks, fmts)]

    def batch(self, pairs: Sequence[tuple[str, str]], device: str = "cpu") -> Batch:
        """The pairs as padded tensors (see Batch), on ``device``."""
        import torch

        src, lengths = pad_batch([self.src_vocab.encode(s) for s, _ in pairs], Vocab.pad_id)
        tgt_in, _ = pad_batch([self.tgt_vocab.encode(t, start=True) for _, t in pairs], Vocab.pad_id)
        tgt_out, _ = pad_batch([self.tgt_vocab.encode(t, end=True) for _, t in pairs], Vocab.pad_id)
        src_t = torch.from_numpy(src).to(device)
        return Batch(src_t, torch.from_numpy(lengths), src_t != Vocab.pad_id,
                     torch.from_numpy(tgt_in).to(device), torch.from_numpy(tgt_out).to(device),
                     [s for s, _ in pairs], [t for _, t in pairs])

    def batches(self, batch_size: int, seed: int, device: str = "cpu") -> "Callable[[], Batch]":
        """A function that returns a fresh random training batch at every call (seeded)."""
        rng = np.random.default_rng(seed)
        return lambda: self.batch(self.pairs(batch_size, rng), device)
