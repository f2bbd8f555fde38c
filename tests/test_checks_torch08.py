"""The checks of notebook 08 pass correct code however it is written, name realistic mistakes,
report stubs as not attempted, and grade the same way in the instructor's grader."""
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils import check
from course_utils import reference as ref
from course_utils.check import EXERCISES, CheckFailed

NAMES = ["padding_mask", "masked_mean", "SentimentLSTM"]


# --- correct code, written differently from the reference --------------------------------------


def mask_by_rows(lengths, T):
    return torch.stack([torch.arange(T) < int(L) for L in lengths])


def mask_flipped(lengths, T):
    return lengths.unsqueeze(1) > torch.arange(T).unsqueeze(0)


def mean_einsum(x, mask):
    m = mask.double()
    return torch.einsum("nt,ntd->nd", m, x) / m.sum(1).unsqueeze(1)


def mean_masked_fill(x, mask):
    return x.masked_fill(~mask[:, :, None], 0.0).sum(1) / mask.sum(1, keepdim=True)


class Skeleton(nn.Module):
    """The notebook's skeleton: fixed submodule names; subclasses write forward."""

    def __init__(self, vocab_size, embed_dim, hidden_size, num_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden_size, num_classes)

    def packed(self, tokens, lengths, enforce_sorted=False):
        x = self.embedding(tokens)
        return self.lstm(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=enforce_sorted))


class FromOutputs(Skeleton):
    """Correct: the forward half at the last real step, the backward half at step 0, of the packed outputs."""

    def forward(self, tokens, lengths):
        out, _ = pad_packed_sequence(self.packed(tokens, lengths)[0], batch_first=True)
        H = self.lstm.hidden_size
        forward_final = out[torch.arange(len(lengths)), lengths - 1, :H]
        backward_final = out[:, 0, H:]
        return self.out(torch.cat([forward_final, backward_final], dim=-1))


class SortedByHand(Skeleton):
    """Correct: sort by length, pack with enforce_sorted=True, undo the sort."""

    def forward(self, tokens, lengths):
        order = torch.argsort(lengths, descending=True)
        _, (h_n, _) = self.packed(tokens[order], lengths[order], enforce_sorted=True)
        final = h_n.permute(1, 0, 2).reshape(len(lengths), -1)  # (N, 2H), directions side by side
        return self.out(final[torch.argsort(order)])


CORRECT = {
    "padding_mask": [mask_by_rows, mask_flipped],
    "masked_mean": [mean_einsum, mean_masked_fill],
    "SentimentLSTM": [FromOutputs, SortedByHand],
}


# --- realistic mistakes, and the words their hint must contain ---------------------------------


class LastPaddedStep(Skeleton):
    def forward(self, tokens, lengths):
        out, _ = self.lstm(self.embedding(tokens))
        return self.out(out[:, -1])


class OutputsAtLength(Skeleton):
    def forward(self, tokens, lengths):
        out, _ = pad_packed_sequence(self.packed(tokens, lengths)[0], batch_first=True)
        return self.out(out[torch.arange(len(lengths)), lengths - 1])


class Unpacked(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.lstm(self.embedding(tokens))
        return self.out(torch.cat([h_n[0], h_n[1]], dim=1))


class MeanOverPadding(Skeleton):
    def forward(self, tokens, lengths):
        out, _ = self.lstm(self.embedding(tokens))
        return self.out(out.mean(dim=1))


class ViewMixesReviews(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.packed(tokens, lengths)
        return self.out(h_n.view(len(lengths), -1))


class Swapped(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.packed(tokens, lengths)
        return self.out(torch.cat([h_n[1], h_n[0]], dim=1))


class LengthsFromTokens(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.packed(tokens, (tokens != 0).sum(dim=1))
        return self.out(torch.cat([h_n[0], h_n[1]], dim=1))


class Probabilities(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.packed(tokens, lengths)
        return torch.softmax(self.out(torch.cat([h_n[0], h_n[1]], dim=1)), dim=1)


class BackwardOnly(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.packed(tokens, lengths)
        return self.out(h_n[-1])


class SortedLengthsRequired(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.packed(tokens, lengths, enforce_sorted=True)
        return self.out(torch.cat([h_n[0], h_n[1]], dim=1))


class Detached(Skeleton):
    def forward(self, tokens, lengths):
        _, (h_n, _) = self.packed(tokens, lengths)
        return self.out(torch.cat([h_n[0], h_n[1]], dim=1).detach())


MISTAKES = [
    ("padding_mask", lambda L, T: torch.arange(T)[None] <= L[:, None], "<, not <="),
    ("padding_mask", lambda L, T: torch.arange(1, T + 1)[None] < L[:, None], "positions count from 0"),
    ("padding_mask", lambda L, T: torch.arange(T)[None] >= L[:, None], "inverted"),
    ("padding_mask", lambda L, T: torch.arange(T)[:, None] < L[None, :], "(T, N)"),
    ("masked_mean", lambda x, m: x.mean(dim=1), "padding included"),
    ("masked_mean", lambda x, m: (x * m[..., None]).sum(1) / x.shape[1], "divided by T"),
    ("masked_mean", lambda x, m: (x * m[..., None]).sum(1), "masked sum"),
    ("masked_mean", lambda x, m: x.sum(1) / m.sum(1, keepdim=True), "summed too"),
    ("masked_mean", lambda x, m: (x * m[..., None]).sum(1) / m.sum(), "whole batch"),
    ("masked_mean", lambda x, m: (x * m).sum(1) / m.sum(1, keepdim=True), "trailing axis"),
    ("SentimentLSTM", LastPaddedStep, "last *padded* step"),
    ("SentimentLSTM", OutputsAtLength, "backward direction has read only the last token"),
    ("SentimentLSTM", Unpacked, "without packing"),
    ("SentimentLSTM", MeanOverPadding, "padding included"),
    ("SentimentLSTM", ViewMixesReviews, "mixes the states of different reviews"),
    ("SentimentLSTM", Swapped, "directions are swapped"),
    ("SentimentLSTM", LengthsFromTokens, "use the `lengths` argument"),
    ("SentimentLSTM", Probabilities, "not probabilities"),
    ("SentimentLSTM", BackwardOnly, "(2, N, H)"),
    ("SentimentLSTM", SortedLengthsRequired, "enforce_sorted=False"),
    ("SentimentLSTM", Detached, "no .detach()"),
]


def stub(name):
    if name == "SentimentLSTM":
        class Stub(Skeleton):
            def forward(self, tokens, lengths):
                raise NotImplementedError("Exercise 8.3: SentimentLSTM")
        return Stub

    def f(*args):
        raise NotImplementedError(f"Exercise: {name}")
    return f


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes_in_well_under_a_second(name):
    start = time.perf_counter()
    verdict = EXERCISES[name].run(getattr(ref, name), rng=np.random.default_rng(0))
    assert verdict, verdict.message
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name,solution", [(n, s) for n in NAMES for s in CORRECT[n]],
                         ids=[f"{n}-{s.__name__}" for n in NAMES for s in CORRECT[n]])
@pytest.mark.parametrize("seed", [0, 1])
def test_differently_written_correct_code_passes(name, solution, seed):
    verdict = EXERCISES[name].run(solution, rng=np.random.default_rng(seed))
    assert verdict, verdict.message


@pytest.mark.parametrize("name,wrong,words", MISTAKES, ids=[f"{n}-{w}" for n, _, w in MISTAKES])
def test_a_realistic_mistake_is_rejected_with_its_hint(name, wrong, words):
    verdict = EXERCISES[name].run(wrong, rng=np.random.default_rng(0))
    assert verdict.status == "wrong", verdict.message
    assert words in verdict.hint, verdict.message


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_is_not_attempted(name, capsys):
    verdict = getattr(check, name)(stub(name))  # the public check: prints, does not raise
    assert verdict.status == "not attempted"
    assert "not attempted yet" in capsys.readouterr().out


def test_the_public_check_prints_one_line_when_right_and_raises_when_wrong(capsys):
    assert check.SentimentLSTM(ref.SentimentLSTM)
    assert capsys.readouterr().out.count("\n") == 1
    with pytest.raises(CheckFailed):
        check.SentimentLSTM(LastPaddedStep)
    assert "✗ SentimentLSTM" in capsys.readouterr().out


def test_wrong_submodule_names_get_a_clear_message():
    class Renamed(nn.Module):
        def __init__(self, vocab_size, embed_dim, hidden_size, num_classes=2):
            super().__init__()
            self.emb = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
            self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)  # not bidirectional
            self.out = nn.Linear(2 * hidden_size, num_classes)

        def forward(self, tokens, lengths):
            raise NotImplementedError

    verdict = EXERCISES["SentimentLSTM"].run(Renamed, rng=np.random.default_rng(0))
    assert verdict.status == "wrong"
    assert "missing embedding.weight" in verdict.hint and "lstm.weight_ih_l0_reverse" in verdict.hint
    assert "unexpected emb.weight" in verdict.hint


def test_the_padding_cases_expect_the_same_logits_as_the_plain_batch():
    ex = EXERCISES["SentimentLSTM"]
    cases = ex.cases(np.random.default_rng(0))
    plain, noisy, longer = cases[:3]
    assert "other token ids" in noisy.label and "more padding" in longer.label
    assert (noisy.args["tokens"] != 0).all() and longer.args["tokens"].shape[1] == plain.args["tokens"].shape[1] + 3
    expected = [ex.expected(c) for c in (plain, noisy, longer)]
    for other in expected[1:]:
        for key in expected[0]:
            np.testing.assert_allclose(other[key], expected[0][key], rtol=0, atol=1e-12)


def test_the_padding_embedding_gets_no_gradient():
    ex = EXERCISES["SentimentLSTM"]
    for case in ex.cases(np.random.default_rng(0)):
        assert not ex.expected(case)["dembedding.weight"][0].any()


# --- the instructor's grader -------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox's protections are Linux's")
def test_the_grader_gives_the_solution_full_marks_the_hand_out_none_and_a_mistake_its_hint(tmp_path):
    import grading_corpus as corpus
    from conftest import NOTEBOOKS, SOLUTIONS

    from course_utils.grading import Limits, Options, grade

    name = "08_sentiment_classification.ipynb"
    if not (SOLUTIONS / name).exists() or not (NOTEBOOKS / name).exists():
        pytest.skip("notebook 08 is not released yet")
    solution, hand_out = corpus.load(SOLUTIONS / name), corpus.load(NOTEBOOKS / name)
    corpus.write(solution, tmp_path / "solutions" / name)
    corpus.write(solution, tmp_path / "subs" / "ada" / name)
    corpus.write(hand_out, tmp_path / "subs" / "bob" / name)
    wrong = corpus.replace_stub(corpus.solved(hand_out, solution, {"padding_mask", "masked_mean"}), "SentimentLSTM",
                                "out, _ = self.lstm(self.embedding(tokens))\nreturn self.out(out[:, -1])")
    corpus.write(wrong, tmp_path / "subs" / "cy" / name)
    results = grade(tmp_path / "subs", tmp_path / "out", Options(
        solutions=tmp_path / "solutions", seed="test-seed", jobs=2, progress=False,
        limits=Limits(wall=60, cpu=60, memory=2048 << 20)))
    by_student = {s["student"]: {e["exercise"]: e for e in s["exercises"]} for s in results["students"]}
    assert {e["status"] for e in by_student["ada"].values()} == {"passed"}
    assert sum(e["points"] for e in by_student["ada"].values()) == 5
    assert {e["status"] for e in by_student["bob"].values()} == {"not attempted"}
    assert by_student["cy"]["padding_mask"]["status"] == by_student["cy"]["masked_mean"]["status"] == "passed"
    assert by_student["cy"]["SentimentLSTM"]["status"] == "wrong"
    assert "last *padded* step" in by_student["cy"]["SentimentLSTM"]["hint"]
