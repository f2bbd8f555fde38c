"""Sentiment data for notebook 08: generated film reviews whose label depends on word order,
a vocabulary, padding into arrays, and a reader for the IMDB reviews folder.

    >>> train = generate_reviews(3, np.random.default_rng(0))
    >>> train.texts[0], train.labels[0], train.kinds[0]        # a text, 1 = positive, its construction
    >>> vocab = Vocab.build(tokenize(t) for t in train.texts)
    >>> tokens, lengths = encode_texts(train.texts, vocab)    # int (N, T), int (N,)

**The generated reviews.** A review is made of *clauses* such as ``the plot was very dull``
(an aspect, ``was`` or ``is``, an optional modifier, an adjective), with an optional opener
(``honestly ,``) and a full stop. Each clause has a score: the adjective's polarity (+1 for
``superb``, -1 for ``dull``), times 2 after an intensifier (``very``, ``really``, ...), times
-1 after a negator (``not``, ``never``). The label follows from the scores and the
construction (``kind``), by these rules and nothing else:

============  ===========================================================  ====================
kind          example                                                      label
============  ===========================================================  ====================
plain         the plot was superb .                                        the clause's sign
negation      the plot was not superb .                                    the clause's sign
and           the plot was not dull and the acting was good .              the common sign
intensity     the plot was extremely dull and the acting was good .        the stronger clause
but           the plot was dull but the acting was superb .                the side after but
although      although the plot was dull , the acting was superb .         the main side
              the acting was superb , although the plot was dull .         (not after although)
not only      the plot was not only dull but also predictable .            the adjectives' sign
============  ===========================================================  ====================

``and`` joins two clauses of the same sign, ``intensity`` two of opposite signs of which
exactly one is intensified. ``but`` and ``although`` join two sides of opposite signs, where a
side is one clause or two of the same sign joined by ``and`` (``the plot was dull and the cast
was weak but the music was superb .``). ``not only ... but also`` negates nothing.

Many reviews have an *anagram twin*: the same words in another order, with the opposite label
(swap the sides of ``but``; move ``very`` to the other clause; swap the modifiers of an ``and``
review with one negated clause). No model that sees only the bag of words can get both of a
pair right.

Shapes: N reviews, T tokens (the longest review of a batch). Token id 0 is ``<pad>``.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Iterable, Sequence

import numpy as np

CLASSES = ("negative", "positive")  # label 0, label 1

ASPECTS = ("plot", "acting", "music", "dialogue", "ending", "script", "pacing", "cast", "soundtrack",
           "direction")
POSITIVE = ("good", "great", "superb", "brilliant", "excellent", "wonderful", "clever", "charming",
            "gripping", "moving")
NEGATIVE = ("bad", "dull", "boring", "awful", "terrible", "weak", "predictable", "clumsy", "bland",
            "tedious")
INTENSIFIERS = ("very", "really", "extremely", "truly")
NEGATORS = ("not", "never")
VERBS = ("was", "is")
OPENERS = ("honestly ,", "to be fair ,", "in my opinion ,", "i think", "well ,")

# How often each construction is drawn, and how often a clause of a two-clause review gets
# no modifier, an intensifier or a negator.
KIND_WEIGHTS = {"plain": 0.10, "negation": 0.15, "and": 0.20, "intensity": 0.10, "but": 0.20,
                "although": 0.15, "not only": 0.10}
MODIFIER_WEIGHTS = {"": 0.5, "intensifier": 0.25, "negator": 0.25}
COMPOUND_PROBABILITY = 0.3  # that a side of "but" or "although" is two clauses joined by "and"


@dataclass(frozen=True)
class Clause:
    """``the {aspect} {verb} [{modifier}] {adjective}``; modifier is "", an intensifier or a negator."""

    aspect: str
    verb: str
    modifier: str
    adjective: str

    @property
    def score(self) -> int:
        """+-1 for the adjective's polarity, times 2 if intensified, times -1 if negated."""
        polarity = 1 if self.adjective in POSITIVE else -1
        if self.modifier in INTENSIFIERS:
            return 2 * polarity
        if self.modifier in NEGATORS:
            return -polarity
        return polarity

    def text(self) -> str:
        """The clause as one string of words, without the empty modifier."""
        return " ".join(w for w in ("the", self.aspect, self.verb, self.modifier, self.adjective) if w)


@dataclass
class Reviews:
    """A set of reviews: texts, labels int (N,) (1 positive, 0 negative), and for each review its
    construction (``kind``, "imdb" for real reviews) and its anagram twin with the opposite label
    (``twins``, None when the generator knows of none)."""

    texts: list[str]
    labels: np.ndarray
    kinds: list[str] = field(default_factory=list)
    twins: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


# --- the generator ----------------------------------------------------------------------------


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _clause(rng, sign: int, modifier: str, aspect: str | None = None) -> Clause:
    """A random clause whose score has the given sign, with a modifier of the given type."""
    word = {"": "", "intensifier": _pick(rng, INTENSIFIERS), "negator": _pick(rng, NEGATORS)}[modifier]
    polarity = -sign if modifier == "negator" else sign
    adjective = _pick(rng, POSITIVE if polarity > 0 else NEGATIVE)
    return Clause(aspect or _pick(rng, ASPECTS), _pick(rng, VERBS), word, adjective)


def _modifier(rng) -> str:
    return str(rng.choice(list(MODIFIER_WEIGHTS), p=list(MODIFIER_WEIGHTS.values())))


def _aspects(rng, k: int) -> list[str]:
    return [ASPECTS[i] for i in rng.choice(len(ASPECTS), size=k, replace=False)]


def _with_modifier(c: Clause, word: str) -> Clause:
    return Clause(c.aspect, c.verb, word, c.adjective)


def _part(clauses: Sequence[Clause]) -> str:
    """One side of "but" or "although": one clause, or two joined by "and"."""
    return " and ".join(c.text() for c in clauses)


def _render(kind: str, parts: Sequence[Sequence[Clause]], flip: bool = False) -> str:
    """The words of a review (without opener and full stop) from its parts. For "although",
    parts[0] is the subordinate part and parts[1] the main one; ``flip`` puts the main part first."""
    if kind == "although":
        if flip:
            return f"{_part(parts[1])} , although {_part(parts[0])}"
        return f"although {_part(parts[0])} , {_part(parts[1])}"
    return " but ".join(_part(p) for p in parts)  # one part, except for "but"


def _score(part: Sequence[Clause]) -> int:
    return sum(c.score for c in part)


def _label(kind: str, parts: Sequence[Sequence[Clause]]) -> int:
    """The rules of the module docstring: 1 positive, 0 negative."""
    if kind == "intensity":
        score = max((c.score for c in parts[0]), key=abs)  # the stronger clause
    elif kind in ("but", "although"):
        score = _score(parts[1])  # the part after "but"; the main part
    else:  # plain, negation, and: one part whose clauses agree
        score = _score(parts[0])
    return int(score > 0)


def _twin(kind: str, parts: Sequence[Sequence[Clause]]) -> tuple | None:
    """The parts of an anagram with the opposite label, or None."""
    if kind in ("but", "although"):  # swap the two parts
        return (parts[1], parts[0])
    if kind == "intensity":  # move the intensifier to the other clause
        a, b = parts[0]
        return ((_with_modifier(a, b.modifier), _with_modifier(b, a.modifier)),)
    if kind == "and":  # with exactly one negated clause, swapping the modifiers flips both clauses
        a, b = parts[0]
        if (a.modifier in NEGATORS) != (b.modifier in NEGATORS):
            return ((_with_modifier(a, b.modifier), _with_modifier(b, a.modifier)),)
    return None


def _draw(rng) -> tuple[str, str, int, str | None]:
    """One review: (text, kind, label, twin text or None)."""
    kind = str(rng.choice(list(KIND_WEIGHTS), p=list(KIND_WEIGHTS.values())))
    sign = 1 if rng.random() < 0.5 else -1  # the label's sign, drawn first so labels are balanced
    flip = bool(rng.random() < 0.5)
    if kind == "not only":
        words = POSITIVE if sign > 0 else NEGATIVE
        first, second = rng.choice(len(words), size=2, replace=False)
        body = f"the {_pick(rng, ASPECTS)} {_pick(rng, VERBS)} not only {words[first]} but also {words[second]}"
        label, twin = int(sign > 0), None
    else:
        if kind in ("plain", "negation"):
            parts = ((_clause(rng, sign, "" if kind == "plain" else "negator"),),)
        elif kind == "and":
            a, b = _aspects(rng, 2)
            parts = ((_clause(rng, sign, _modifier(rng), a), _clause(rng, sign, _modifier(rng), b)),)
        elif kind == "intensity":  # the intensified clause has the label's sign
            a, b = _aspects(rng, 2)
            strong, weak = _clause(rng, sign, "intensifier", a), _clause(rng, -sign, "", b)
            parts = ((strong, weak) if flip else (weak, strong),)
        else:  # but, although: the second part decides; each part has one or two clauses
            sizes = [1 + int(rng.random() < COMPOUND_PROBABILITY) for _ in range(2)]
            aspects = iter(_aspects(rng, sum(sizes)))
            parts = tuple(tuple(_clause(rng, s, _modifier(rng), next(aspects)) for _ in range(k))
                          for s, k in zip((-sign, sign), sizes))
        body = _render(kind, parts, flip)
        label = _label(kind, parts)
        twin_parts = _twin(kind, parts)
        twin = None if twin_parts is None else _render(kind, twin_parts, flip)
    opener = _pick(rng, OPENERS) + " " if rng.random() < 0.3 else ""
    return f"{opener}{body} .", kind, label, None if twin is None else f"{opener}{twin} ."


def generate_reviews(n: int, rng: np.random.Generator, exclude: Collection[str] = ()) -> Reviews:
    """n generated reviews (see the module docstring for their rules), from rng only.

    About half are positive. Texts are lower case, with punctuation as separate words, so
    ``text.split()`` is already their tokenisation. A review whose text is in ``exclude``
    (say, the training set's texts, for a held-out set) is drawn again.
    """
    texts, kinds, labels, twins = [], [], [], []
    for _ in range(n):
        text, kind, label, twin = _draw(rng)
        while text in exclude:
            text, kind, label, twin = _draw(rng)
        texts.append(text)
        kinds.append(kind)
        labels.append(label)
        twins.append(twin)
    return Reviews(texts, np.array(labels, dtype=np.int64), kinds, twins)


def bag_of_words(text: str) -> tuple[tuple[str, int], ...]:
    """The multiset of a text's tokens, as a hashable sorted tuple of (token, count)."""
    return tuple(sorted(Counter(tokenize(text)).items()))


# --- tokens, vocabulary, padding --------------------------------------------------------------

TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
PAD, UNK = "<pad>", "<unk>"


def tokenize(text: str) -> list[str]:
    """Lower-case words and single punctuation marks; HTML line breaks (IMDB's ``<br />``) are spaces.

    >>> tokenize("Not good. <br /><br />Don't!")
    ['not', 'good', '.', "don't", '!']
    """
    return TOKEN_RE.findall(re.sub(r"<br\s*/?>", " ", text.lower()))


class Vocab:
    """Words <-> integer ids, with ``<pad>`` = 0 and ``<unk>`` = 1 (unknown words) first.

    >>> vocab = Vocab.build([["the", "plot", "was", "dull"], ["the", "end"]])
    >>> vocab.encode(["the", "plot", "was", "superb"])
    [2, 5, 6, 1]
    """

    pad_id, unk_id = 0, 1

    def __init__(self, words: Sequence[str]):
        self.words = [PAD, UNK, *words]
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1,
              max_size: int | None = None) -> "Vocab":
        """The words seen at least min_count times, most frequent first (ties alphabetically),
        at most max_size of them (plus <pad> and <unk>)."""
        counts = Counter(w for tokens in token_lists for w in tokens)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(words[:max_size])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """The ids of tokens; an unknown word is <unk>."""
        return [self.index.get(w, self.unk_id) for w in tokens]

    def decode(self, ids: Iterable[int]) -> str:
        """The words of ids, without padding."""
        return " ".join(self.words[int(i)] for i in ids if int(i) != self.pad_id)


def encode_texts(texts: Sequence[str], vocab: Vocab, max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise, encode and pad texts into one array.

    Returns tokens int64 (N, T), padded with 0 after each text's end, T the longest text's
    length, and lengths int64 (N,). With max_len, texts keep their first max_len tokens.
    An empty text becomes one ``<unk>``, so that every length is at least 1.
    """
    ids = [vocab.encode(tokenize(t))[:max_len] or [vocab.unk_id] for t in texts]
    lengths = np.array([len(s) for s in ids], dtype=np.int64)
    tokens = np.full((len(ids), int(lengths.max(initial=1))), vocab.pad_id, dtype=np.int64)
    for n, s in enumerate(ids):
        tokens[n, :len(s)] = s
    return tokens, lengths


# --- real reviews -------------------------------------------------------------------------------


def load_imdb(path: str | Path, split: str = "train", limit: int | None = None) -> Reviews:
    """The Large Movie Review Dataset (Maas et al., 2011) from its unpacked folder, if you have it.

    Reads ``path/split/pos/*.txt`` (label 1) and ``path/split/neg/*.txt`` (label 0), the layout
    of ``aclImdb_v1.tar.gz`` from https://ai.stanford.edu/~amaas/data/sentiment/ (download and
    unpack it yourself: the course never downloads anything). Files are read in sorted order,
    negatives first; ``limit`` keeps the first ``limit`` files of each class. The ``unsup``
    folder is ignored. ``kinds`` are all "imdb" and there are no known twins.
    """
    root = Path(path).expanduser()
    if split not in ("train", "test"):
        raise ValueError(f"split should be 'train' or 'test', not {split!r}")
    texts, labels = [], []
    for label, folder in ((0, "neg"), (1, "pos")):
        where = root / split / folder
        if not where.is_dir():
            raise FileNotFoundError(f"no folder {where}: expected the aclImdb layout, "
                                    f"{root}/{{train,test}}/{{pos,neg}}/*.txt")
        files = sorted(where.glob("*.txt"))[:limit]
        texts += [f.read_text(encoding="utf-8", errors="replace") for f in files]
        labels += [label] * len(files)
    return Reviews(texts, np.array(labels, dtype=np.int64), ["imdb"] * len(texts), [None] * len(texts))


def write_imdb_layout(root: str | Path, split: str, reviews: Reviews) -> Path:
    """Write reviews as files in the aclImdb layout: ``root/split/pos/{i}_8.txt`` for label 1 and
    ``root/split/neg/{i}_2.txt`` for label 0 (IMDB names its files id_rating). Returns root.

    For trying ``load_imdb`` and the code around it without the real dataset.
    """
    root = Path(root)
    for i, (text, label) in enumerate(zip(reviews.texts, reviews.labels)):
        folder = root / split / ("pos" if label == 1 else "neg")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}_{8 if label == 1 else 2}.txt").write_text(text, encoding="utf-8")
    return root
