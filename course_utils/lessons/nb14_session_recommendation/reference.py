"""References of notebook 14 (session-based recommendation): GRU4Rec's session-parallel
mini-batches, Recall@k and MRR@k, and one training step of a session GRU.

Shapes: C clicks, I items, B lanes (sessions side by side), S steps, H hidden size, N events.
"""
from __future__ import annotations

import numpy as np


def session_parallel_batches(items, offsets, batch_size):
    """GRU4Rec's session-parallel mini-batches.

    items: int (C,), the clicks of every session one after the other; offsets: int
    (n_sessions + 1,), session s is items[offsets[s]:offsets[s + 1]], each at least 2 clicks;
    batch_size: B <= n_sessions. Lane b starts with session b; when a lane's session has no
    next click left, the lane takes the next unused session (in order), and the steps stop at the
    first step at which a lane needs a session and none is left.
    Returns inputs int (S, B), targets int (S, B) (the click after each input, same session) and
    starts bool (S, B): True where lane b begins a new session at step s (all of step 0).
    """
    n_sessions = len(offsets) - 1
    session = np.arange(batch_size)  # the session in each lane
    pos = offsets[session].copy()  # the index in `items` of each lane's next input
    start = np.ones(batch_size, dtype=bool)
    next_session = batch_size
    inputs, targets, starts = [], [], []
    while True:
        inputs.append(items[pos])
        targets.append(items[pos + 1])
        starts.append(start)
        pos = pos + 1
        start = pos + 1 >= offsets[session + 1]  # no target left for this input: a new session
        if next_session + start.sum() > n_sessions:
            break
        for b in np.flatnonzero(start):
            session[b], pos[b] = next_session, offsets[next_session]
            next_session += 1
    return (np.array(inputs, dtype=np.int64).reshape(-1, batch_size),
            np.array(targets, dtype=np.int64).reshape(-1, batch_size),
            np.array(starts, dtype=bool).reshape(-1, batch_size))


def recall_mrr_at_k(scores, targets, k=20):
    """Recall@k and MRR@k of next-item scores.

    scores: (N, I), higher means more likely; targets: int (N,). The rank of a target is 1 + the
    number of items whose score is strictly higher than the target's. Recall@k: the fraction of
    events whose rank is <= k; MRR@k: the mean of 1 / rank, counting 0 for a rank > k.
    Returns (recall, mrr), two floats.
    """
    target_scores = scores[np.arange(len(targets)), targets]
    ranks = 1 + (scores > target_scores[:, None]).sum(axis=1)
    hit = ranks <= k
    return float(hit.mean()), float(np.where(hit, 1.0 / ranks, 0.0).mean())


def session_train_step(model, optimizer, inputs, targets, starts, hidden):
    """One step of GRU4Rec's training: B sessions side by side, one click each.

    model(items int (B,), hidden (B, H)) -> logits (B, I), hidden (B, H); inputs, targets int
    (B,); starts bool (B,): lanes where a new session begins (their state must start from 0);
    hidden (B, H): the state the previous step returned. Minimises the mean cross-entropy of the
    targets. Returns (loss: a float, hidden (B, H) detached from the graph).
    """
    import torch
    from torch.nn import functional as F

    hidden = torch.where(starts[:, None], torch.zeros_like(hidden), hidden)  # a new session starts from 0
    logits, hidden = model(inputs, hidden)
    loss = F.cross_entropy(logits, targets)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), hidden.detach()  # the next step does not backpropagate into this one
