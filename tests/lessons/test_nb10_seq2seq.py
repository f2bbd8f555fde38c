"""Proofs of notebook 10's checks (PyTorch): Encoder, Decoder, teacher_forcing_loss, greedy_decode, beam_search.

The generic proofs come from tests/proofs.py (the reference and the correct solutions below pass,
every mistake of the catalogue in course_utils/lessons/nb10_seq2seq/checks.py is rejected with its
hint, the wrong solutions below that are no catalogue mistake are rejected with the check's own
words, stubs are "not attempted yet"). This file adds what is particular to notebook 10: a module
with wrong parameter names, the ``torch_beam_search`` calling convention (a fixed decoder built in
the grader's child from plain arrays, with the architecture of the reference Decoder), the cases
that make beam search and its length penalty matter, and the instructor's grader on this notebook.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.checking.conventions import decoder_step, run_plan
from course_utils.lessons.nb10_seq2seq.checks import GREEDY_FAILS, LENGTH_BIAS, _gru_decoder, _wrong_beam_greedy
from proofs import Proofs, function_stub, run


def stub(name):
    """An exercise as the notebook hands it out: a module keeps its given __init__ (the reference's, so that
    its parameters load) and its forward raises NotImplementedError; a function only raises it."""
    if not name[:1].isupper():
        return function_stub(name)

    def forward(self, *args):
        raise NotImplementedError(f"Exercise: {name}")
    return type(name, (getattr(ref, name),), {"forward": forward})


proofs = Proofs("nb10_seq2seq", min_correct=2, stub=stub)
correct, wrong = proofs.correct, proofs.wrong

# --- 10.1 Encoder ---------------------------------------------------------------------------


class EncoderBase(nn.Module):
    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True)


class EncoderSortedByHand(EncoderBase):
    """Sorts the batch by length itself, packs with enforce_sorted=True, and restores the order."""

    def forward(self, src, lengths):
        order = torch.argsort(lengths, descending=True)
        packed = pack_padded_sequence(self.embedding(src[order]), lengths[order].cpu(), batch_first=True)
        out, h_n = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        back = torch.argsort(order)
        return out[back], h_n[0][back]


class EncoderOneByOne(EncoderBase):
    """No packing: runs the GRU on each sequence alone, cut at its length, and pads with zeros."""

    def forward(self, src, lengths):
        outputs = torch.zeros(src.shape[0], src.shape[1], self.rnn.hidden_size, dtype=self.embedding.weight.dtype)
        finals = []
        for n in range(src.shape[0]):
            L = int(lengths[n])
            out, h_n = self.rnn(self.embedding(src[n:n + 1, :L]))
            outputs[n, :L] = out[0]
            finals.append(h_n[0, 0])
        return outputs, torch.stack(finals)


class EncoderFinalNotSqueezed(EncoderBase):
    def forward(self, src, lengths):
        packed = pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])[0], h_n


class EncoderSortedPacking(EncoderBase):
    def forward(self, src, lengths):
        packed = pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True)  # lengths not sorted
        out, h_n = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])[0], h_n[0]


class EncoderRenamed(nn.Module):
    """The right maths, but the GRU is called `gru`: the check cannot load its weights."""

    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.gru = nn.GRU(embed_size, hidden_size, batch_first=True)

    def forward(self, src, lengths):
        packed = pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, h_n = self.gru(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])[0], h_n[0]


correct("Encoder", EncoderSortedByHand)
correct("Encoder", EncoderOneByOne)
wrong("Encoder", EncoderFinalNotSqueezed, hint="final should be (N, H)", message="expected (4, 5)", output="final")
wrong("Encoder", EncoderSortedPacking, hint="enforce_sorted=False", message="your code raised an error")


def test_a_module_with_wrong_parameter_names_is_told_which_names_are_expected():
    verdict = run("Encoder", EncoderRenamed)
    assert verdict.status == "wrong"
    assert ("the parameters of Encoder are not the expected ones: missing rnn.bias_hh_l0, rnn.bias_ih_l0, "
            "rnn.weight_hh_l0, rnn.weight_ih_l0; unexpected gru.bias_hh_l0") in verdict.message


# --- 10.2 Decoder ---------------------------------------------------------------------------


class DecoderBase(nn.Module):
    def __init__(self, vocab_size, embed_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)


class DecoderStepByStep(DecoderBase):
    """One token at a time, as in decoding."""

    def forward(self, tokens, hidden):
        h = hidden.unsqueeze(0)
        logits = []
        for t in range(tokens.shape[1]):
            state, h = self.rnn(self.embedding(tokens[:, t:t + 1]), h)
            logits.append(self.out(state))
        return torch.cat(logits, dim=1), h.squeeze(0)


class DecoderLastState(DecoderBase):
    """Takes the returned state from the outputs, and the scores by hand."""

    def forward(self, tokens, hidden):
        states, _ = self.rnn(self.embedding(tokens), hidden.unsqueeze(0).contiguous())
        return states @ self.out.weight.T + self.out.bias, states[:, -1]


class DecoderHiddenNotSqueezed(DecoderBase):
    def forward(self, tokens, hidden):
        states, h_n = self.rnn(self.embedding(tokens), hidden[None])
        return self.out(states), h_n


class DecoderHidden2D(DecoderBase):
    def forward(self, tokens, hidden):
        states, h_n = self.rnn(self.embedding(tokens), hidden)  # nn.GRU wants (1, N, H)
        return self.out(states), h_n[0]


correct("Decoder", DecoderStepByStep)
correct("Decoder", DecoderLastState)
wrong("Decoder", DecoderHiddenNotSqueezed, hint="hidden should be (N, H)", message="expected (3, 5)", output="hidden")
wrong("Decoder", DecoderHidden2D, hint="(1, N, H)", message="your code raised an error")

# --- 10.3 teacher_forcing_loss --------------------------------------------------------------------


def teacher_forcing_loss_masked(encoder, decoder, src, src_lengths, tgt, pad_id):
    """log_softmax, gather and a mask, as in a hand-written course solution."""
    _, h = encoder(src, src_lengths)
    logits, _ = decoder(tgt[:, :-1], h)
    log_probs = logits.log_softmax(dim=-1).gather(2, tgt[:, 1:, None])[..., 0]
    mask = tgt[:, 1:] != pad_id
    return -(log_probs * mask).sum() / mask.sum()


def teacher_forcing_loss_full_target(encoder, decoder, src, src_lengths, tgt, pad_id):
    """Reads the whole tgt and drops the last step's logits; nll_loss over (N, V, T)."""
    logits, _ = decoder(tgt, encoder(src, src_lengths)[1])
    return F.nll_loss(logits[:, :-1].log_softmax(-1).transpose(1, 2), tgt[:, 1:], ignore_index=pad_id)


def teacher_forcing_loss_item(encoder, decoder, src, src_lengths, tgt, pad_id):
    _, h = encoder(src, src_lengths)
    logits, _ = decoder(tgt[:, :-1], h)
    return torch.tensor(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1),
                                        ignore_index=pad_id).item())


correct("teacher_forcing_loss", teacher_forcing_loss_masked)
correct("teacher_forcing_loss", teacher_forcing_loss_full_target)
wrong("teacher_forcing_loss", teacher_forcing_loss_item, hint="through autograd",
      message="does not have the expected form")

# --- 10.4 greedy_decode -------------------------------------------------------------------------


@torch.no_grad()
def greedy_decode_one_by_one(encoder, decoder, src, src_lengths, start_id, end_id, max_len):
    """One sequence at a time, with a while loop."""
    _, hidden = encoder(src, src_lengths)
    out = []
    for n in range(src.shape[0]):
        h, token, seq = hidden[n:n + 1], torch.tensor([[start_id]]), []
        while len(seq) < max_len:
            logits, h = decoder(token, h)
            token = logits[:, -1].argmax(-1, keepdim=True)
            if token.item() == end_id:
                break
            seq.append(token.item())
        out.append(seq)
    return out


def greedy_decode_shrinking(encoder, decoder, src, src_lengths, start_id, end_id, max_len):
    """The batch shrinks as sequences finish; outputs as tensors."""
    _, hidden = encoder(src, src_lengths)
    live = torch.arange(src.shape[0])
    tokens = torch.full((src.shape[0], 1), start_id)
    out = [[] for _ in range(src.shape[0])]
    for _ in range(max_len):
        logits, hidden = decoder(tokens, hidden)
        tokens = logits.argmax(dim=2)
        going = tokens[:, 0] != end_id
        for n, t in zip(live[going].tolist(), tokens[going, 0].tolist()):
            out[n].append(t)
        live, tokens, hidden = live[going], tokens[going], hidden[going]
        if len(live) == 0:
            break
    return [torch.tensor(o, dtype=torch.long) for o in out]


def greedy_decode_no_max_len(encoder, decoder, src, src_lengths, start_id, end_id, max_len):
    _, hidden = encoder(src, src_lengths)
    tokens = torch.full((src.shape[0], 1), start_id)
    out, done = [[] for _ in range(src.shape[0])], torch.zeros(src.shape[0], dtype=torch.bool)
    while not done.all():
        logits, hidden = decoder(tokens, hidden)
        tokens = logits.argmax(-1)
        for n in range(src.shape[0]):
            if not done[n] and tokens[n, 0] != end_id:
                out[n].append(int(tokens[n, 0]))
        done |= tokens[:, 0] == end_id
    return out


def greedy_decode_padded_tensor(encoder, decoder, src, src_lengths, start_id, end_id, max_len):
    return torch.zeros(src.shape[0], max_len, dtype=torch.long)


def greedy_decode_stops_on_last_tokens(encoder, decoder, src, src_lengths, start_id, end_id, max_len):
    """The right outputs, but the loop stops only when the *last* tokens are all <end> (after <end> the
    decoder may produce other tokens, so it runs on)."""
    _, hidden = encoder(src, src_lengths)
    tokens, steps = torch.full((src.shape[0], 1), start_id, dtype=torch.long), []
    for _ in range(max_len):
        logits, hidden = decoder(tokens, hidden)
        tokens = logits.argmax(dim=-1)
        steps.append(tokens[:, 0])
        if bool((tokens == end_id).all()):
            break
    rows = torch.stack(steps, 1).tolist()
    return [row[:row.index(end_id)] if end_id in row else row for row in rows]


correct("greedy_decode", greedy_decode_one_by_one)
correct("greedy_decode", greedy_decode_shrinking)
wrong("greedy_decode", greedy_decode_stops_on_last_tokens, hint="keep a flag per sequence",
      message="went on after every sequence had produced <end>", output="rows")
wrong("greedy_decode", greedy_decode_no_max_len, hint="stop after max_len steps", message="decoding did not stop")
wrong("greedy_decode", greedy_decode_padded_tensor, hint="not one padded tensor",
      message="does not have the expected form")


def test_the_loss_check_uses_the_notebook_modules_signatures_and_the_reference_matches_nb10():
    """The reference loss on notebook 10's own Encoder and Decoder equals Seq2Seq.loss on a Batch."""
    from course_utils.lessons.nb10_seq2seq.dates import DateData
    from course_utils.lessons.nb10_seq2seq.seq2seq import Seq2Seq

    data = DateData(seed=0)
    batch = data.batch(data.pairs(5, np.random.default_rng(0)))
    torch.manual_seed(0)
    model = Seq2Seq(ref.Encoder(len(data.src_vocab), 4, 6), ref.Decoder(len(data.tgt_vocab), 4, 6))
    loss = ref.teacher_forcing_loss(model.encoder, model.decoder, batch.src, batch.src_lengths, batch.tgt, 0)
    torch.testing.assert_close(loss, model.loss(batch))
    decoded = ref.greedy_decode(model.encoder, model.decoder, batch.src, batch.src_lengths, 1, 2, 11)
    tokens, _ = model.greedy_decode(batch, 11)
    assert [data.tgt_vocab.decode(d + [2]) for d in decoded] == [data.tgt_vocab.decode(t) for t in tokens]


# --- 10.5 beam_search -------------------------------------------------------------------------


def beam_search_one_by_one(step, hidden, start_id, end_id, beam_width, max_len, alpha=0.0):
    """Hypotheses as Python tuples, each stepped on its own (B = 1), ranked with sorted(); the length
    penalty written with math.pow."""
    import math

    beam = [(0.0, [], start_id, hidden)]  # (score, tokens, last token, state)
    finished = []
    for _ in range(max_len):
        candidates = []
        for score, seq, last, h in beam:
            log_probs, h_next = step(torch.tensor([last]), h)
            for token, lp in enumerate(log_probs[0].tolist()):
                candidates.append((score + lp, seq + [token], token, h_next))
        candidates.sort(key=lambda c: -c[0])
        beam = []
        for c in candidates[:beam_width - len(finished)]:
            if c[2] == end_id:
                finished.append((c[1], c[0]))
            else:
                beam.append(c)
        if not beam:
            break
    if not finished:
        finished = [(seq, score) for score, seq, _, _ in beam]
    best = max(finished, key=lambda f: f[1] / math.pow((5 + len(f[0])) / 6, alpha))
    return best[0], best[1]


def beam_search_early_stop(step, hidden, start_id, end_id, beam_width, max_len, alpha=0.0):
    """The reference's search, stopping as soon as no live hypothesis can beat the best finished one
    (scores only go down; without a length penalty): the same answer, found sooner. The penalty
    computed on a tensor of lengths."""
    sequences, scores = [[]], torch.zeros(1, dtype=hidden.dtype)
    tokens, finished = torch.tensor([start_id]), []
    for _ in range(max_len):
        log_probs, hidden = step(tokens, hidden)
        V = log_probs.shape[1]
        top_scores, top = (scores[:, None] + log_probs).flatten().topk(beam_width - len(finished))
        live = []
        for k in range(len(top)):
            seq = sequences[top[k] // V] + [int(top[k] % V)]
            (finished.append((seq, float(top_scores[k]))) if seq[-1] == end_id else live.append(k))
        if not live or (alpha == 0 and max((s for _, s in finished), default=-np.inf) >= float(top_scores[live[0]])):
            break  # no live hypothesis can catch up with the best finished one
        keep = torch.tensor(live)
        sequences = [sequences[top[k] // V] + [int(top[k] % V)] for k in live]
        tokens, scores, hidden = top[keep] % V, top_scores[keep], hidden[top[keep] // V]
    if not finished:
        finished = [(s, float(v)) for s, v in zip(sequences, scores)]
    lengths = torch.tensor([len(s) for s, _ in finished], dtype=torch.float64)
    normalised = torch.tensor([v for _, v in finished]) / ((5 + lengths) / 6) ** alpha
    return finished[int(normalised.argmax())]


def beam_search_states_not_reordered(step, hidden, start_id, end_id, beam_width, max_len):
    """Forgets that each kept extension must continue from its parent's state."""
    sequences, scores, tokens, finished = [[]], torch.zeros(1, dtype=hidden.dtype), torch.tensor([start_id]), []
    for _ in range(max_len):
        log_probs, hidden = step(tokens, hidden)
        V = log_probs.shape[1]
        top_scores, top = (scores[:, None] + log_probs).flatten().topk(beam_width - len(finished))
        live = [k for k in range(len(top)) if int(top[k] % V) != end_id]
        finished += [(sequences[top[k] // V] + [end_id], float(top_scores[k])) for k in range(len(top)) if k not in live]
        if not live:
            break
        keep = torch.tensor(live)
        sequences = [sequences[top[k] // V] + [int(top[k] % V)] for k in live]
        tokens, scores = top[keep] % V, top_scores[keep]
    if not finished:
        finished = [(s, float(v)) for s, v in zip(sequences, scores)]
    return max(finished, key=lambda f: f[1])


def beam_search_float_tokens(step, hidden, start_id, end_id, beam_width, max_len):
    tokens, score = ref.beam_search(step, hidden, start_id, end_id, beam_width, max_len)
    return torch.tensor(tokens, dtype=torch.float64), score


def beam_search_six_arguments(step, hidden, start_id, end_id, beam_width, max_len):
    """Written before the length penalty was asked for."""
    return ref.beam_search(step, hidden, start_id, end_id, beam_width, max_len)


correct("beam_search", beam_search_one_by_one)
correct("beam_search", beam_search_early_stop)
wrong("beam_search", beam_search_states_not_reordered, hint="hidden[parents]",
      message="step(tokens, hidden) wants hidden of shape (B, H)")
wrong("beam_search", beam_search_float_tokens, hint="a list of token ids (ints), or a 1-D integer tensor",
      message="does not have the expected form")
wrong("beam_search", beam_search_six_arguments, hint="a seventh argument, alpha", message="7 were given")


# --- the torch_beam_search convention ------------------------------------------------------------


def test_the_gru_step_is_one_step_of_the_reference_decoder_architecture():
    g = np.random.default_rng(0)
    V, E, H = 7, 3, 4
    arrays = _gru_decoder(g, V, E, H)
    decoder = ref.Decoder(V, E, H).double()
    decoder.load_state_dict({k: torch.from_numpy(v) for k, v in {
        "embedding.weight": arrays["embedding"], "rnn.weight_ih_l0": arrays["weight_ih"],
        "rnn.weight_hh_l0": arrays["weight_hh"], "rnn.bias_ih_l0": arrays["bias_ih"],
        "rnn.bias_hh_l0": arrays["bias_hh"], "out.weight": arrays["out_weight"], "out.bias": arrays["out_bias"]}.items()})
    tokens, hidden = torch.tensor([1, 4, 6]), torch.from_numpy(np.tanh(g.standard_normal((3, H))))
    log_probs, next_hidden = decoder_step(arrays)(tokens, hidden)
    logits, expected_hidden = decoder(tokens[:, None], hidden)
    torch.testing.assert_close(log_probs, logits[:, 0].log_softmax(-1), rtol=0, atol=1e-12)
    torch.testing.assert_close(next_hidden, expected_hidden, rtol=0, atol=1e-12)


def test_the_table_step_looks_up_the_previous_token_and_keeps_the_state():
    step = decoder_step({"kind": "table", "log_probs": GREEDY_FAILS})
    hidden = torch.arange(6.0, dtype=torch.float64).reshape(3, 2)
    log_probs, next_hidden = step(torch.tensor([1, 3, 4]), hidden)
    np.testing.assert_array_equal(log_probs.numpy(), GREEDY_FAILS[[1, 3, 4]])
    np.testing.assert_allclose(np.exp(GREEDY_FAILS).sum(axis=1), 1.0)
    assert torch.equal(next_hidden, hidden)


@pytest.mark.parametrize("tokens, hidden, message", [
    (torch.tensor([[1]]), torch.zeros(1, 4), "1-D tensor of int64 token ids"),
    (torch.tensor([1.0]), torch.zeros(1, 4), "1-D tensor of int64 token ids"),
    ([1], torch.zeros(1, 4), "but got a list"),
    (torch.tensor([1, 2]), torch.zeros(1, 4), "hidden of shape (B, H) = (2, 4)"),
    (torch.tensor([1]), torch.zeros(4), "hidden of shape (B, H) = (1, 4)"),
    (torch.tensor([9]), torch.zeros(1, 4), "token id outside 0..6"),
])
def test_the_step_refuses_wrong_arguments_in_plain_words(tokens, hidden, message):
    step = decoder_step(_gru_decoder(np.random.default_rng(0), 7, 3, 4))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        step(tokens, hidden)


def test_greedy_decoding_misses_the_best_sequence_on_the_first_case():
    ex = EXERCISES["beam_search"]
    case = ex.cases(np.random.default_rng(0))[0]
    best = ex.expected(case)
    greedy, _ = run_plan((_wrong_beam_greedy,), "torch_beam_search", case.args)
    assert best["tokens"].tolist() == [4, 2] and greedy["tokens"].tolist() == [3, 3, 3, 3]
    assert np.isclose(np.exp(best["score"]), 0.4 * 0.9, rtol=0.01)


def test_the_fixed_gru_case_needs_a_beam_and_reordered_states():
    ex = EXERCISES["beam_search"]
    case = next(c for c in ex.cases(np.random.default_rng(0)) if c.label.startswith("a fixed GRU"))
    best = ex.expected(case)["tokens"].tolist()
    assert len(best) >= 3 and best[-1] == 2
    greedy, _ = run_plan((_wrong_beam_greedy,), "torch_beam_search", case.args)
    assert greedy["tokens"].tolist() != best


def test_the_length_penalty_cases_need_the_penalty_and_its_exact_form():
    """On LENGTH_BIAS the shorter hypothesis is the more probable; GNMT's penalty keeps it at alpha 0.5 and 1
    and prefers the longer one at alpha 2, and the penalty changes the fixed GRU decoder's answer too."""
    step, hidden = decoder_step({"kind": "table", "log_probs": LENGTH_BIAS}), torch.zeros(1, 2, dtype=torch.float64)
    finished = ref.beam_hypotheses(step, hidden, 1, 2, 2, 6)
    assert [tokens for tokens, _ in finished] == [[3, 2], [4, 5, 6, 2]]
    assert finished[0][1] > finished[1][1]
    for alpha, best in [(0.5, [3, 2]), (1.0, [3, 2]), (2.0, [4, 5, 6, 2])]:
        assert ref.beam_search(step, hidden, 1, 2, 2, 6, alpha)[0] == best
    ex = EXERCISES["beam_search"]
    case = next(c for c in ex.cases(np.random.default_rng(0)) if c.label.startswith("the fixed GRU decoder"))
    plain, _ = run_plan((ref.beam_search,), "torch_beam_search", {k: v for k, v in case.args.items() if k != "alpha"})
    assert plain["tokens"].tolist() != ex.expected(case)["tokens"].tolist()


def test_tokens_may_be_a_list_or_an_integer_tensor_and_the_score_a_tensor():
    as_tensor = lambda *a: (lambda r: (torch.tensor(r[0]), torch.tensor(r[1])))(ref.beam_search(*a))  # noqa: E731
    assert run("beam_search", as_tensor).status == "passed"


# --- the check's own words on the catalogued mistakes ----------------------------------------------


def catalogued(exercise, hint_start):
    """The wrong implementations of the catalogue entries of ``exercise`` whose hint starts with ``hint_start``."""
    found = [m.implementation for m in EXERCISES[exercise].mistakes
             if m.hint.startswith(hint_start) and m.implementation is not None]
    assert found, f"no wrong implementation in the catalogue of {exercise} has a hint that starts {hint_start!r}"
    return found


@pytest.mark.parametrize("exercise, hint_start, message, output", [
    ("Encoder", "the GRU read the padding too", "", "outputs"),
    ("Encoder", "`final` is right, but the GRU read the padding", "", "outputs"),
    ("Encoder", "outputs[:, -1] is the last *column*", "", "final"),
    ("Decoder", "the decoder started from zeros", "", "logits"),
    ("Decoder", "these are log-probabilities", "", "logits"),
    ("Decoder", "the returned `hidden` is the state after the first token", "", "hidden"),
    ("teacher_forcing_loss", "", "", "loss"),  # every entry
    ("greedy_decode", "", "", "tokens"),  # every entry
    ("beam_search", "with alpha > 0 the finished hypotheses", "alpha=2.0", "tokens"),  # ignored, or multiplied
    ("beam_search", "the length of a hypothesis counts all its tokens", "alpha=1.0", "tokens"),
    ("beam_search", "the penalty is GNMT's", "alpha=0.5", "tokens"),
    ("beam_search", "the length penalty only ranks the hypotheses", "", "score"),
    ("beam_search", "that is greedy decoding's answer", "expected [4, 2]", "tokens"),
    ("beam_search", "your beam stays beam_width wide", "found a more probable hypothesis than the beam", "tokens"),
    ("beam_search", "each kept hypothesis must continue", "the score is not the log-probability of the returned "
     "tokens", "score"),
    ("beam_search", "a hypothesis that produces <end> is finished", "", "tokens"),
    ("beam_search", "leave <start> out", "", "tokens"),
    ("beam_search", "keep the final <end>", "", "tokens"),
    ("beam_search", "the score is the sum of the log-probabilities", "", "score"),
])
def test_a_catalogued_mistake_is_described_in_the_checks_own_words(exercise, hint_start, message, output):
    """Beyond its hint (proven by tests/proofs.py): what the check says is wrong, and which output it blames."""
    for implementation in catalogued(exercise, hint_start):
        verdict = run(exercise, implementation)
        assert verdict.status == "wrong" and message in verdict.message, verdict.message
        assert output is None or verdict.output == output, verdict.message


# --- the instructor's grader ------------------------------------------------------------------

SOLUTION_CELLS = [
    "import numpy as np\nimport torch\nfrom torch import nn\n"
    "from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence\nfrom course_utils import check",
    "# EXERCISE 10.1: Encoder (3 points)\nclass Encoder(nn.Module):\n"
    "    def __init__(self, vocab_size, embed_size, hidden_size):\n        super().__init__()\n"
    "        self.embedding = nn.Embedding(vocab_size, embed_size)\n"
    "        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True)\n\n"
    "    def forward(self, src, lengths):\n        ### BEGIN SOLUTION\n"
    "        packed = pack_padded_sequence(self.embedding(src), lengths.cpu(), batch_first=True, enforce_sorted=False)\n"
    "        out, h_n = self.rnn(packed)\n"
    "        return pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])[0], h_n[0]\n"
    "        ### END SOLUTION",
    "check.Encoder(Encoder)",
    "# EXERCISE 10.3: beam_search (3 points)\n"
    "def beam_search(step, hidden, start_id, end_id, beam_width, max_len, alpha=0.0):\n"
    "    ### BEGIN SOLUTION\n"
    "    sequences, scores, tokens, finished = [[]], torch.zeros(1, dtype=hidden.dtype), torch.tensor([start_id]), []\n"
    "    for _ in range(max_len):\n"
    "        log_probs, hidden = step(tokens, hidden)\n"
    "        V = log_probs.shape[1]\n"
    "        top_scores, top = (scores[:, None] + log_probs).flatten().topk(beam_width - len(finished))\n"
    "        live = [k for k in range(len(top)) if int(top[k] % V) != end_id]\n"
    "        finished += [(sequences[top[k] // V] + [end_id], float(top_scores[k])) for k in range(len(top)) if k not in live]\n"
    "        if not live:\n            break\n"
    "        keep = torch.tensor(live)\n"
    "        sequences = [sequences[top[k] // V] + [int(top[k] % V)] for k in live]\n"
    "        tokens, scores, hidden = top[keep] % V, top_scores[keep], hidden[top[keep] // V]\n"
    "    if not finished:\n        finished = [(s, float(v)) for s, v in zip(sequences, scores)]\n"
    "    return max(finished, key=lambda f: f[1] / ((5 + len(f[0])) / 6) ** alpha)\n"
    "    ### END SOLUTION",
    "check.beam_search(beam_search)",
    "for step in range(10**9):  # a training loop: never run by the grader\n    pass",
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox is Linux's")
def test_the_grader_grades_notebook_10s_exercises_in_its_sandbox(tmp_path):
    grading = pytest.importorskip("course_utils.grading")
    import grading_corpus as corpus

    solutions, subs, sol, student = corpus.tiny_course(tmp_path, "10_tiny", SOLUTION_CELLS)
    greedy = ("tokens, out, score = torch.tensor([start_id]), [], 0.0\n"
              "for _ in range(max_len):\n"
              "    log_probs, hidden = step(tokens, hidden)\n"
              "    token = int(log_probs[0].argmax())\n"
              "    score += float(log_probs[0, token])\n"
              "    out.append(token)\n"
              "    if token == end_id:\n        break\n"
              "    tokens = torch.tensor([token])\n"
              "return out, score")
    corpus.write(corpus.hostile(student, sol, "beam_search", greedy), subs / "cy" / "10_tiny.ipynb")
    limits = grading.Limits(wall=60, cpu=60, memory=2048 << 20)
    results = grading.grade(subs, tmp_path / "out", grading.Options(
        solutions=solutions, seed="test-seed", jobs=2, limits=limits, progress=False))
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 6, "bob": 0, "cy": 3}, json.dumps(results["students"], indent=1)[:3000]
    cy = {e["exercise"]: e for e in next(s for s in results["students"] if s["student"] == "cy")["exercises"]}
    assert cy["beam_search"]["status"] == "wrong"
    assert "greedy decoding's answer" in cy["beam_search"]["hint"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox is Linux's")
def test_the_grader_gives_notebook_10s_solution_full_marks_and_its_hand_out_zero(tmp_path):
    """The real notebook: solutions/10_seq2seq.ipynb gets every point (beam_search's length-penalty cases
    included, through the torch_beam_search_lp convention), notebooks/10_seq2seq.ipynb none."""
    grading = pytest.importorskip("course_utils.grading")
    import grading_corpus as corpus
    from conftest import NOTEBOOKS, SOLUTIONS

    name = "10_seq2seq.ipynb"
    if not (NOTEBOOKS / name).exists():
        pytest.skip("no hand-out generated yet")
    solutions, subs = tmp_path / "solutions", tmp_path / "subs"
    corpus.write(corpus.load(SOLUTIONS / name), solutions / name)
    corpus.write(corpus.load(SOLUTIONS / name), subs / "instructor" / name)
    corpus.write(corpus.load(NOTEBOOKS / name), subs / "hand_out" / name)
    results = grading.grade(subs, tmp_path / "out", grading.Options(
        solutions=solutions, seed="test-seed", jobs=2, progress=False,
        limits=grading.Limits(wall=120, cpu=120, memory=2048 << 20)))
    students = {s["student"]: s for s in results["students"]}
    graded = {e["exercise"]: e["status"] for e in students["instructor"]["exercises"]}
    assert graded == {n: "passed" for n in ("Encoder", "Decoder", "teacher_forcing_loss", "greedy_decode",
                                            "beam_search")}, json.dumps(students["instructor"], indent=1)[:3000]
    assert students["instructor"]["total"] == 12
    assert students["hand_out"]["total"] == 0
    assert {e["status"] for e in students["hand_out"]["exercises"]} == {"not attempted"}


globals().update(proofs.tests())  # the generic proofs: tests/proofs.py
