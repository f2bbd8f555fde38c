"""Reference pieces of notebooks 10 and 11: an encoder-decoder, beam search, additive attention.

Shapes: N batch, S source length, T target length, E embedding size, H hidden size,
A attention size, V vocabulary size. Token ids are int64; ``lengths`` are int64 on the CPU;
``src_mask`` is bool (N, S), True at real (not padded) positions. Padding is at the end.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class Encoder(nn.Module):
    """Embedding + one-layer GRU over padded source sequences.

    forward(src int (N, S), lengths int (N,)) -> outputs (N, S, H), final (N, H):
    outputs[n, s] is the state after reading src[n, :s + 1] (zeros at padded positions) and
    final[n] the state after the last real token of sequence n. The GRU never reads padding.
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True)

    def forward(self, src, lengths):
        """src int (N, S), lengths int (N,) -> outputs (N, S, H), final (N, H), as the class says."""
        embedded = self.embedding(src)  # (N, S, E)
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_outputs, h_n = self.rnn(packed)  # h_n (1, N, H): after each sequence's last real token
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=src.shape[1])
        return outputs, h_n[0]


class Decoder(nn.Module):
    """Embedding + one-layer GRU + linear output layer; reads tokens, predicts the next ones.

    forward(tokens int (N, T), hidden (N, H)) -> logits (N, T, V), hidden (N, H): with T the
    whole target it is teacher forcing; with T = 1, one step of decoding. ``hidden`` is the
    state to start from (the encoder's final state); the returned one is the state after
    the last token.
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens, hidden):
        """tokens int (N, T), hidden (N, H) -> logits (N, T, V), hidden (N, H), as the class says."""
        embedded = self.embedding(tokens)  # (N, T, E)
        states, h_n = self.rnn(embedded, hidden[None])  # the GRU wants the state as (1, N, H)
        return self.out(states), h_n[0]


def teacher_forcing_loss(encoder: nn.Module, decoder: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor,
                         tgt: torch.Tensor, pad_id: int) -> torch.Tensor:
    """The mean cross-entropy of the next target token, the decoder reading the true previous tokens.

    tgt: int (N, T + 1), each row <start> y_1 .. y_n <end> followed by pad_id. The decoder starts
    from the encoder's final state, reads tgt[:, :-1] (<start> y_1 .. y_n) and is scored on
    tgt[:, 1:] (y_1 .. y_n <end>); positions whose target is pad_id are left out of the mean.
    Returns a scalar tensor.
    """
    _, final = encoder(src, src_lengths)
    logits, _ = decoder(tgt[:, :-1], final)  # (N, T, V): teacher forcing, all steps in one call
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=pad_id)


@torch.no_grad()
def greedy_decode(encoder: nn.Module, decoder: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor,
                  start_id: int, end_id: int, max_len: int) -> list[list[int]]:
    """Greedy decoding of a batch: feed back the most probable token until <end> or max_len tokens.

    Returns N lists of token ids, each without <start> and without <end>, of at most max_len
    tokens. The decoder runs once per step on the whole batch, and the loop stops as soon as
    every sequence has produced <end>.
    """
    _, hidden = encoder(src, src_lengths)
    N = src.shape[0]
    tokens = torch.full((N, 1), start_id, dtype=torch.long, device=src.device)
    outputs: list[list[int]] = [[] for _ in range(N)]
    finished = torch.zeros(N, dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits, hidden = decoder(tokens, hidden)  # (N, 1, V)
        tokens = logits.argmax(dim=-1)  # (N, 1): the most probable next token, over the vocabulary
        finished |= tokens[:, 0] == end_id
        for n in (~finished).nonzero()[:, 0].tolist():
            outputs[n].append(int(tokens[n, 0]))
        if finished.all():
            break
    return outputs


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's length penalty (Wu et al., 2016): ((5 + length) / 6) ** alpha; 1 when alpha = 0."""
    return ((5 + length) / 6) ** alpha


def beam_hypotheses(step: Callable, hidden: torch.Tensor, start_id: int, end_id: int, beam_width: int,
                    max_len: int) -> list[tuple[list[int], float]]:
    """The hypotheses that a beam of width ``beam_width`` finishes, as (tokens, score) pairs.

    step(tokens int (B,), hidden (B, H)) -> (log_probs (B, V), hidden (B, H)): one decoder
    step for B hypotheses at once. hidden: (1, H), the state to start from.

    Every hypothesis starts from <start>; its score is the sum of the log-probabilities of
    its tokens. At each step every live hypothesis is extended by every token, and the best
    ``beam_width - len(finished)`` extensions are kept: an extension that ends with end_id is
    finished and leaves the beam, which shrinks by one (as in Jurafsky and Martin's *Speech
    and Language Processing*). The search stops when the beam is empty or after max_len
    steps. Returns, for every finished hypothesis (or every live one if none finished), its
    tokens (without <start>, with the final <end> if any) and its score.
    """
    sequences: list[list[int]] = [[]]  # the live hypotheses' tokens so far
    scores = torch.zeros(1, dtype=hidden.dtype, device=hidden.device)  # (B,): their scores
    tokens = torch.full((1,), start_id, dtype=torch.long, device=hidden.device)  # (B,): their last tokens
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_len):
        log_probs, hidden = step(tokens, hidden)  # (B, V), (B, H)
        V = log_probs.shape[1]
        # score of an extension = score of its hypothesis + log p(token | hypothesis)
        candidates = (scores[:, None] + log_probs).reshape(-1)  # (B * V,): every extension
        top_scores, top = candidates.topk(min(beam_width - len(finished), candidates.numel()))
        parents, next_tokens = top // V, top % V  # which hypothesis each extension extends, and how
        live = []
        for k in range(len(top)):
            sequence = sequences[int(parents[k])] + [int(next_tokens[k])]
            if int(next_tokens[k]) == end_id:
                finished.append((sequence, float(top_scores[k])))
            else:
                live.append(k)
        if not live:
            break
        sequences = [sequences[int(parents[k])] + [int(next_tokens[k])] for k in live]
        keep = torch.tensor(live, device=top.device)
        # each kept extension continues from the state of the hypothesis it extends
        tokens, scores, hidden = next_tokens[keep], top_scores[keep], hidden[parents[keep]]
    if not finished:
        finished = [(sequence, float(score)) for sequence, score in zip(sequences, scores)]
    return finished


def beam_search(step: Callable, hidden: torch.Tensor, start_id: int, end_id: int, beam_width: int,
                max_len: int, alpha: float = 0.0) -> tuple[list[int], float]:
    """The best hypothesis that a beam of width ``beam_width`` finds (see beam_hypotheses).

    alpha: the hypotheses are ranked by ``score / length_penalty(len(tokens), alpha)`` (GNMT's
    length normalisation, ``len(tokens)`` counting the final <end>); the returned score is still
    the plain sum of log-probabilities. alpha = 0 ranks by the score itself.
    """
    finished = beam_hypotheses(step, hidden, start_id, end_id, beam_width, max_len)
    return max(finished, key=lambda pair: pair[1] / length_penalty(len(pair[0]), alpha))


