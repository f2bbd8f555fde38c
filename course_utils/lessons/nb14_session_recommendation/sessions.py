"""Session-based recommendation plumbing of notebook 14: generated sessions, a loader for a
YOOCHOOSE-like clicks file, the three baselines, evaluation of next-item predictions, and a
training loop around the learner's session-parallel batches and training step.

Shapes: I items (ids 0..I-1), C clicks, B lanes of a session-parallel batch, H hidden size,
E events to predict (one per click after a session's first). Sessions are stored as GRU4Rec
stores them: ``items`` int (C,), the clicks of every session one after the other, and
``offsets`` int (n_sessions + 1,), where session s is ``items[offsets[s]:offsets[s + 1]]``.
A scorer maps a batch of session prefixes to scores ``(E, I)``: higher is more likely next.
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

# --- the generated sessions -------------------------------------------------------------------


@dataclass
class SessionConfig:
    """The model the sessions are drawn from (see ``generate_sessions``)."""

    n_intents: int = 8  # what a visitor came for: a "department" of the shop
    items_per_intent: int = 30
    n_shared: int = 10  # items every visitor browses, whatever their intent (basket, sale page, ...)
    successors: int = 3  # an intent item's usual next items
    shared_successors: int = 4  # a shared item's usual next items, per intent
    p_successor: float = 0.6  # after an intent item: one of its successors
    p_shared: float = 0.25  # ... or a shared item (else a popular item of the intent)
    p_shared_successor: float = 0.85  # after a shared item: one of its successors for the intent
    p_stop: float = 0.2  # after each click past the second, the session ends with this probability
    max_length: int = 20
    zipf: float = 1.0  # popularity of item r (from 0) within its group is proportional to 1 / (r + 1) ** zipf


@dataclass
class Sessions:
    """Sessions in GRU4Rec's layout, in time order.

    items: int (C,); offsets: int (n_sessions + 1,); intents: int (n_sessions,), the intent of
    each session (-1 when unknown, for loaded data); shared: bool (I,), the items of no intent;
    n_items: I.
    """

    items: np.ndarray
    offsets: np.ndarray
    n_items: int
    intents: np.ndarray
    shared: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def session(self, s: int) -> np.ndarray:
        """The items of session ``s``, int (its length,)."""
        return self.items[self.offsets[s]:self.offsets[s + 1]]

    def lengths(self) -> np.ndarray:
        """The length of every session, int (n_sessions,)."""
        return np.diff(self.offsets)

    def subset(self, index: slice) -> "Sessions":
        """Sessions ``index`` (a slice), in the same layout."""
        ids = range(len(self))[index]
        parts = [self.session(s) for s in ids]
        return from_lists(parts, self.n_items, self.intents[index], self.shared)


def from_lists(sessions: Sequence[Sequence[int]], n_items: int, intents=None, shared=None) -> Sessions:
    """Sessions from a list of item-id lists."""
    lengths = np.array([len(s) for s in sessions], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sessions]) if len(sessions) else \
        np.zeros(0, dtype=np.int64)
    intents = np.full(len(sessions), -1, dtype=np.int64) if intents is None else np.asarray(intents)
    shared = np.zeros(n_items, dtype=bool) if shared is None else np.asarray(shared)
    return Sessions(items, offsets, n_items, intents, shared)


def _popularity(n: int, zipf: float) -> np.ndarray:
    p = 1.0 / (np.arange(n) + 1.0) ** zipf
    return p / p.sum()


def generate_sessions(n_sessions: int, seed: int = 0, config: SessionConfig | None = None) -> Sessions:
    """Draw sessions from a model with sequential structure, in time order.

    Items: ``n_intents`` groups of ``items_per_intent`` intent items (ids 0..K*M-1, group k is
    k*M..(k+1)*M-1), then ``n_shared`` shared items that belong to no intent. A session first
    draws its intent k (Zipf popularity over intents), then its first item from group k
    (Zipf popularity within the group). After an intent item i, the next click is one of i's
    ``successors`` (fixed per item, drawn once with ``seed``) with probability ``p_successor``,
    a shared item with probability ``p_shared``, else a popular item of group k. After a
    shared item h, it is one of the ``shared_successors`` of (h, k) with probability
    ``p_shared_successor``, else a popular item of group k: what follows a shared item depends
    on the intent, which only the session's earlier clicks reveal. Lengths: 2, then each further
    click with probability 1 - p_stop, at most ``max_length``.
    The structure (successors, popularities) depends on ``seed`` only, not on n_sessions.
    """
    c = config or SessionConfig()
    K, M, S = c.n_intents, c.items_per_intent, c.n_shared
    I = K * M + S
    g = np.random.default_rng(seed)
    intent_p = _popularity(K, 0.5)
    item_p = _popularity(M, c.zipf)
    perm = np.stack([g.permutation(M) for _ in range(K)])  # which item of each group is most popular
    shared_p = _popularity(S, c.zipf)
    succ = np.stack([g.choice(M, size=c.successors, replace=False) for _ in range(K * M)])  # (K*M, n)
    succ_w = _popularity(c.successors, 1.0)
    shared_succ = g.integers(0, M, size=(S, K, c.shared_successors))  # (S, K, n), within group k
    shared_succ_w = _popularity(c.shared_successors, 0.7)
    d = np.random.default_rng([seed, 1])  # the draws of the sessions themselves
    sessions, intents = [], []
    for _ in range(n_sessions):
        k = d.choice(K, p=intent_p)
        intents.append(k)
        def popular():
            return k * M + perm[k, d.choice(M, p=item_p)]
        s = [popular()]
        while len(s) < c.max_length and (len(s) < 2 or d.random() > c.p_stop):
            last, u = s[-1], d.random()
            if last < K * M:  # an intent item
                if u < c.p_successor:
                    nxt = k * M + succ[last, d.choice(c.successors, p=succ_w)] if last // M == k else popular()
                elif u < c.p_successor + c.p_shared:
                    nxt = K * M + d.choice(S, p=shared_p)
                else:
                    nxt = popular()
            else:
                h = last - K * M
                nxt = k * M + shared_succ[h, k, d.choice(c.shared_successors, p=shared_succ_w)] \
                    if u < c.p_shared_successor else popular()
            s.append(int(nxt))
        sessions.append(s)
    shared = np.arange(I) >= K * M
    return from_lists(sessions, I, np.array(intents, dtype=np.int64), shared)


# --- a real clicks file -----------------------------------------------------------------------


def load_clicks(path: str | Path, min_item_support: int = 5, min_length: int = 2) -> tuple[Sessions, np.ndarray]:
    """Read a clicks file in YOOCHOOSE's layout (``yoochoose-clicks.dat`` of the RecSys
    Challenge 2015): lines ``session_id,timestamp,item_id,category``, no header, timestamps in
    ISO 8601 (``2014-04-07T10:51:09.277Z``).

    As GRU4Rec's preprocessing does: items clicked fewer than ``min_item_support`` times are
    dropped, then sessions shorter than ``min_length`` clicks. Each session's clicks are sorted
    by time; sessions are sorted by the time of their first click. Item ids become 0..I-1.
    Returns the Sessions and ``item_ids`` (I,), the original id of each item (as strings).
    """
    clicks: dict[str, list[tuple[str, str]]] = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row or row[0].strip().lower() in ("session_id", "sessionid"):
                continue  # a blank line, or a header line
            session, timestamp, item = row[0].strip(), row[1].strip(), row[2].strip()
            clicks.setdefault(session, []).append((timestamp, item))
    support: dict[str, int] = {}
    for events in clicks.values():
        for _, item in events:
            support[item] = support.get(item, 0) + 1
    kept = []
    for events in clicks.values():
        events = sorted(e for e in events if support[e[1]] >= min_item_support)  # ISO times sort as text
        if len(events) >= min_length:
            kept.append(events)
    kept.sort(key=lambda events: events[0][0])
    item_ids = np.array(sorted({item for events in kept for _, item in events}, key=_natural))
    index = {item: i for i, item in enumerate(item_ids)}
    sessions = [[index[item] for _, item in events] for events in kept]
    return from_lists(sessions, len(item_ids)), item_ids


def _natural(text: str):
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


# --- events to predict ------------------------------------------------------------------------


@dataclass
class Events:
    """Every next click of some sessions, as prefixes to score.

    session: int (E,), position: int (E,) the index of the click to predict (1 = the second
    click), target: int (E,), last: int (E,) the click before it, last_shared: bool (E,)
    whether ``last`` is a shared item.
    """

    session: np.ndarray
    position: np.ndarray
    target: np.ndarray
    last: np.ndarray
    last_shared: np.ndarray


def events(data: Sessions) -> Events:
    """Every next click of the sessions of ``data``, from the second click of each on, as Events."""
    s, p = [], []
    for i in range(len(data)):
        L = data.offsets[i + 1] - data.offsets[i]
        s += [i] * (L - 1)
        p += list(range(1, L))
    s, p = np.array(s, dtype=np.int64), np.array(p, dtype=np.int64)
    start = data.offsets[s]
    target, last = data.items[start + p], data.items[start + p - 1]
    shared = data.shared[last] if len(data.shared) else np.zeros(len(s), dtype=bool)
    return Events(s, p, target, last, shared)


# --- the baselines ----------------------------------------------------------------------------


def popularity_scores(train: Sessions) -> np.ndarray:
    """float (I,): how often each item was clicked in training (the same for every prefix)."""
    return np.bincount(train.items, minlength=train.n_items).astype(np.float64)


def most_popular(train: Sessions) -> Callable:
    """A scorer that ranks items by their number of clicks in training, whatever the session."""
    pop = popularity_scores(train)

    def score(data: Sessions, ev: Events) -> np.ndarray:
        return np.broadcast_to(pop, (len(ev.target), len(pop)))
    return score


def markov(train: Sessions) -> Callable:
    """A scorer from the last click only: counts of (item, next item) pairs in training, with
    popularity / (1 + clicks) added to break ties and to score items never seen after it."""
    I = train.n_items
    counts = np.zeros((I, I))
    for s in range(len(train)):
        x = train.session(s)
        np.add.at(counts, (x[:-1], x[1:]), 1.0)
    pop = popularity_scores(train)
    table = counts + pop / (1.0 + pop.sum())

    def score(data: Sessions, ev: Events) -> np.ndarray:
        return table[ev.last]
    return score


def session_knn(train: Sessions, k: int = 100, sample: int = 2000, chunk: int = 1000) -> Callable:
    """Session-based k nearest neighbours (Jannach and Ludewig, 2017): the prefix and the
    ``sample`` most recent training sessions as sets of items; the k of those with the largest
    cosine similarity to the prefix vote for their items, weighted by that similarity; popularity
    / (1 + clicks) breaks ties. Order within a session is ignored."""
    I = train.n_items
    recent = range(max(0, len(train) - sample), len(train))
    M = np.zeros((len(recent), I), dtype=np.float32)
    for row, s in enumerate(recent):
        M[row, train.session(s)] = 1.0
    M /= np.sqrt(M.sum(axis=1, keepdims=True))
    pop = popularity_scores(train)
    tie = pop / (1.0 + pop.sum())

    def score(data: Sessions, ev: Events) -> np.ndarray:
        out = np.empty((len(ev.target), I))
        for a in range(0, len(ev.target), chunk):
            b = min(a + chunk, len(ev.target))
            Q = np.zeros((b - a, I), dtype=np.float32)
            for row, (s, p) in enumerate(zip(ev.session[a:b], ev.position[a:b])):
                Q[row, data.session(s)[:p]] = 1.0
            sim = Q @ M.T  # (n, sessions); the norm of Q does not change the ranking of neighbours
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            w = np.take_along_axis(sim, top, axis=1)
            out[a:b] = np.einsum("nk,nki->ni", w, M[top]) + tie
        return out
    return score


# --- evaluation -------------------------------------------------------------------------------


def ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """int (E,): 1 + the number of items scoring strictly higher than the target."""
    target_scores = np.take_along_axis(scores, targets[:, None], axis=1)
    return 1 + (scores > target_scores).sum(axis=1)


def evaluate(scorer: Callable, data: Sessions, ev: Events, k: int = 20, chunk: int = 4000) -> dict:
    """Recall@k and MRR@k of a scorer on every event; returns {"recall", "mrr"}: floats, and
    {"hit", "rr"}: per event (E,), for breakdowns."""
    r = np.concatenate([ranks(np.asarray(scorer(data, _slice(ev, a, a + chunk))), ev.target[a:a + chunk])
                        for a in range(0, len(ev.target), chunk)])
    hit = r <= k
    rr = np.where(hit, 1.0 / r, 0.0)
    return {"recall": float(hit.mean()), "mrr": float(rr.mean()), "hit": hit, "rr": rr}


def _slice(ev: Events, a: int, b: int) -> Events:
    return Events(*(getattr(ev, f)[a:b] for f in ("session", "position", "target", "last", "last_shared")))


# --- the GRU ----------------------------------------------------------------------------------


def gru_scorer(model, batch_size: int = 512) -> Callable:
    """A scorer from a model(items (B,), hidden (B, H)) -> (logits (B, I), hidden (B, H)) with a
    ``hidden_size``: runs each session's prefix through it, one click at a time, sessions side
    by side."""
    import torch

    @torch.no_grad()
    def score(data: Sessions, ev: Events) -> np.ndarray:
        model.eval()
        out = np.empty((len(ev.target), data.n_items), dtype=np.float32)
        sessions, row = np.unique(ev.session, return_inverse=True)
        for a in range(0, len(sessions), batch_size):
            group = sessions[a:a + batch_size]
            lengths = data.offsets[group + 1] - data.offsets[group]
            padded = np.zeros((len(group), lengths.max()), dtype=np.int64)
            for n, s in enumerate(group):
                padded[n, :lengths[n]] = data.session(s)
            h = torch.zeros(len(group), model.hidden_size)
            logits = np.empty((len(group), lengths.max(), data.n_items), dtype=np.float32)
            for t in range(lengths.max() - 1):  # logits[:, t + 1] score the click at position t + 1
                step, h = model(torch.from_numpy(padded[:, t]), h)
                logits[:, t + 1] = step.numpy()
            mine = (row >= a) & (row < a + len(group))
            out[mine] = logits[row[mine] - a, ev.position[mine]]
        return out
    return score


def train_gru(model, train_step: Callable, batches: Callable, data: Sessions, epochs: int, batch_size: int,
              lr: float, seed: int = 0) -> dict:
    """Train with Adam for ``epochs`` passes over ``data``, each in a fresh order of sessions:
    ``batches(items, offsets, batch_size) -> inputs (S, B), targets (S, B), starts (S, B)`` (the
    learner's session-parallel batches) and, at each step, ``train_step(model, optimizer,
    inputs[s], targets[s], starts[s], hidden) -> (loss, hidden)``. Returns {"loss": per step,
    "seconds"}."""
    import torch

    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    losses, start = [], time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(data))
        shuffled = from_lists([data.session(s) for s in order], data.n_items)
        inputs, targets, starts = (torch.from_numpy(np.asarray(a)) for a in
                                   batches(shuffled.items, shuffled.offsets, batch_size))
        hidden = torch.zeros(batch_size, model.hidden_size)
        for s in range(len(inputs)):
            loss, hidden = train_step(model, optimizer, inputs[s], targets[s], starts[s], hidden)
            losses.append(float(loss))
    return {"loss": np.array(losses), "seconds": time.perf_counter() - start}
