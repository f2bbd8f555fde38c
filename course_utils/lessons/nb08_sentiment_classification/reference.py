"""Reference pieces of notebook 08: masks over padded batches, a bidirectional LSTM classifier, and
one training step of a classifier.

Shapes: N batch, T time steps (padded), D features, V vocabulary size, E embedding size,
H hidden size per direction, C classes. Token id 0 is padding; lengths are each between 1 and T.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence


def padding_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """bool (N, T): True at the real positions t < lengths[n], False at the padding."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of x (N, T, D) over the positions where mask (N, T) is True: (N, D).

    Every row of mask has at least one True.
    """
    weights = mask.unsqueeze(-1).to(x.dtype)  # (N, T, 1): 1 at real positions, 0 at padding
    return (x * weights).sum(dim=1) / weights.sum(dim=1)


class SentimentLSTM(nn.Module):
    """Embedding, bidirectional LSTM, and a linear layer on the two final states.

    forward(tokens int (N, T), lengths int (N,)) -> logits (N, C). The forward direction's
    state after each review's last real token and the backward direction's state after it has
    read back to the first token are concatenated (2H) and mapped to C scores. Padding is
    never read, so neither its ids nor its amount change the logits.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (N, T) padded with 0, lengths (N,) -> logits (N, C), from both directions' final states."""
        x = self.embedding(tokens)  # (N, T, E)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (2, N, H), [forward final, backward final]
        final = torch.cat([h_n[0], h_n[1]], dim=1)  # (N, 2H)
        return self.out(final)  # (N, C)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, tokens: torch.Tensor, lengths: torch.Tensor,
               labels: torch.Tensor, max_norm: float) -> float:
    """One step of gradient descent on the mean cross-entropy of a batch; returns that loss (a float).

    tokens int (N, T), lengths int (N,), labels int (N,) in 0..C-1; model(tokens, lengths) -> logits (N, C).
    The gradients are clipped to global norm max_norm before the optimizer's step.
    """
    optimizer.zero_grad()  # the gradients of the previous batch must not add to these
    loss = F.cross_entropy(model(tokens, lengths), labels)  # mean over the batch, from the raw logits
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # after backward, before the step
    optimizer.step()
    return loss.item()
