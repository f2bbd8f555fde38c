"""Notebook 11: additive (Bahdanau) attention and the decoder that uses it."""
from __future__ import annotations

import torch
from torch import nn


class AdditiveAttention(nn.Module):
    """Bahdanau's additive attention over masked source positions.

    forward(query (N, Hq), keys (N, S, Hk), mask bool (N, S)) -> context (N, Hk), weights (N, S):
    score[n, s] = v . tanh(W_q query[n] + W_k keys[n, s]), -inf where mask is False;
    weights = softmax of the scores over s (exactly 0 on padding, summing to 1);
    context[n] = sum_s weights[n, s] keys[n, s].
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int):
        super().__init__()
        self.W_q = nn.Linear(query_size, attention_size, bias=False)
        self.W_k = nn.Linear(key_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, query, keys, mask):
        """query (N, Hq), keys (N, S, Hk), mask bool (N, S) -> context (N, Hk), weights (N, S)."""
        # score[n, s] = v^T tanh(W_q q_n + W_k k_{n,s}):  (N, 1, A) + (N, S, A) -> (N, S, A) -> (N, S)
        scores = self.v(torch.tanh(self.W_q(query)[:, None] + self.W_k(keys)))[..., 0]
        scores = scores.masked_fill(~mask, float("-inf"))  # padding gets weight exp(-inf) = 0
        weights = torch.softmax(scores, dim=1)  # over the source positions s
        context = (weights[:, :, None] * keys).sum(dim=1)  # (N, Hk)
        return context, weights


class AttentionDecoder(nn.Module):
    """A GRU decoder that attends over the encoder's outputs at every step (Bahdanau et al.).

    forward(tokens int (N, T), hidden (N, H), enc_outputs (N, S, H), src_mask bool (N, S))
    -> logits (N, T, V), hidden (N, H), weights (N, T, S). At step t, with s the state before it:
    context, w = attention(s, enc_outputs, src_mask); s = GRUCell([embedding(token_t); context], s);
    logits_t = out([s; context]).
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, attention_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.attention = AdditiveAttention(hidden_size, hidden_size, attention_size)
        self.rnn = nn.GRUCell(embed_size + hidden_size, hidden_size)
        self.out = nn.Linear(2 * hidden_size, vocab_size)

    def forward(self, tokens, hidden, enc_outputs, src_mask):
        """tokens int (N, T), hidden (N, H), enc_outputs (N, S, H), src_mask bool (N, S)
        -> logits (N, T, V), hidden (N, H), weights (N, T, S), one step at a time."""
        embedded = self.embedding(tokens)  # (N, T, E)
        logits, weights = [], []
        for t in range(tokens.shape[1]):
            context, w = self.attention(hidden, enc_outputs, src_mask)  # what to read, from s_{t-1}
            hidden = self.rnn(torch.cat([embedded[:, t], context], dim=1), hidden)
            logits.append(self.out(torch.cat([hidden, context], dim=1)))
            weights.append(w)
        return torch.stack(logits, dim=1), hidden, torch.stack(weights, dim=1)
