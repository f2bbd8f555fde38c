"""References of notebook 12 (speech recognition with CTC): the CTC loss by its forward
recursion, greedy CTC decoding, the bidirectional acoustic model, the error rate.

Shapes: N batch, T frames, C classes (blank included), S label length, F features, H hidden size.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

# "Impossible" in log space. Not -inf: torch.logsumexp of inputs that are all -inf has a nan
# gradient (exp(-inf - (-inf))), and a nan times a zero upstream gradient is still nan.
NEG = -1e30


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0):
    """The CTC loss of each sequence, -log p(targets | input), by the forward recursion.

    log_probs: (N, T, C) log-probabilities per frame (a log_softmax); targets: int (N, S), padded
    after each sequence's target_lengths[n] labels; input_lengths, target_lengths: int (N,).
    Returns loss: (N,), differentiable with respect to log_probs.
    """
    losses = []
    for n in range(log_probs.shape[0]):
        T, S = int(input_lengths[n]), int(target_lengths[n])
        ext = torch.full((2 * S + 1,), blank, dtype=torch.long)  # l' = blank, y1, blank, y2, ..., blank
        ext[1::2] = targets[n, :S]
        lp = log_probs[n, :T, ext]  # (T, 2S + 1): log y_t(l'_s)
        # a path may skip the blank before l'_s when l'_s is a label that differs from l'_{s-2}
        skip = torch.zeros(2 * S + 1, dtype=torch.bool)
        skip[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
        neg = lp.new_full((2 * S + 1,), NEG)
        alpha = torch.where(torch.arange(2 * S + 1) < 2, lp[0], neg)  # start on the blank or the first label
        for t in range(1, T):
            stay = alpha
            step = torch.cat([neg[:1], alpha[:-1]])
            jump = torch.where(skip, torch.cat([neg[:2], alpha[:-2]]), neg)
            alpha = torch.logsumexp(torch.stack([stay, step, jump]), dim=0) + lp[t]
        losses.append(-torch.logsumexp(alpha[-2:], dim=0))  # end on the last label or the final blank
    return torch.stack(losses)


def ctc_greedy_decode(log_probs, lengths, blank=0):
    """Best path decoding: the most probable class of each frame, repeats merged, blanks dropped.

    log_probs: (N, T, C) array; lengths: int (N,), frames after lengths[n] are padding.
    Returns a list of N lists of class ids (ints).
    """
    out = []
    for n in range(len(log_probs)):
        best = np.argmax(log_probs[n, :int(lengths[n])], axis=-1)
        merged = [c for t, c in enumerate(best) if t == 0 or c != best[t - 1]]
        out.append([int(c) for c in merged if c != blank])
    return out


class AcousticModel(nn.Module):
    """A bidirectional GRU over the frames and a linear layer to the classes, with log_softmax.

    forward(features (N, T, F), lengths int (N,)) -> log_probs (N, T, C); frames after lengths[n]
    are padding: the recurrence never reads them (packed), and they get log_softmax(out.bias).
    """

    def __init__(self, n_features, hidden_size, n_classes):
        super().__init__()
        self.rnn = nn.GRU(n_features, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, n_classes)

    def forward(self, features, lengths):
        """features (N, T, F), lengths int (N,) -> log_probs (N, T, C), as the class says."""
        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=features.shape[1])  # (N, T, 2H)
        return torch.log_softmax(self.out(states), dim=-1)


def edit_distance(a, b):
    """The fewest insertions, deletions and substitutions that turn sequence a into sequence b."""
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i]
        for j in range(1, len(b) + 1):
            row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])))
        prev = row
    return prev[-1]


def error_rate(references, hypotheses):
    """The corpus error rate: the sum of the edit distances from each reference to its hypothesis,
    divided by the total length of the references. Lists of sequences of ids; returns a float."""
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return errors / sum(len(r) for r in references)
