"""Proofs of notebook 08's checks (padding_mask, masked_mean, SentimentLSTM, train_step), what is
special to them (the classifier's logits must not depend on the padding; train_step's cases make
every mistake visible and never depend on a draw; fit_classifier uses the learner's step), and the
grading of the notebook in the instructor's grader.

The catalogued mistakes are proven from course_utils/lessons/nb08_sentiment_classification/checks.py;
here are correct code written differently and the wrong code that no catalogue entry names.
"""
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils import reference as ref
from course_utils.check import EXERCISES
from proofs import Proofs, default_stub, run

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


def step_zeroing_last(model, optimizer, tokens, lengths, labels, max_norm):
    """Correct: forward first, gradients cleared after the step (a fresh model has none)."""
    logits = model(tokens, lengths)
    loss = nn.CrossEntropyLoss()(logits, labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)
    return float(loss)


def step_by_hand(model, optimizer, tokens, lengths, labels, max_norm):
    """Correct: model.zero_grad, log-softmax + NLL, the global norm clipped by hand."""
    model.zero_grad()
    loss = F.nll_loss(F.log_softmax(model(tokens, lengths), dim=-1), labels)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / total)
    optimizer.step()
    return loss.detach()  # a 0-d tensor is accepted as a number


class Stub(Skeleton):
    """The hand-out: the skeleton with a forward that still raises NotImplementedError."""

    def forward(self, tokens, lengths):
        raise NotImplementedError("Exercise 8.4: SentimentLSTM")


def stub(name):
    """As handed out: the classifier has its submodules (the check loads their weights), its forward raises."""
    return Stub if name == "SentimentLSTM" else default_stub(name)


proofs = Proofs("nb08_sentiment_classification", min_correct=2, stub=stub)
proofs.correct("padding_mask", mask_by_rows)
proofs.correct("padding_mask", mask_flipped)
proofs.correct("masked_mean", mean_einsum)
proofs.correct("masked_mean", mean_masked_fill)
proofs.correct("SentimentLSTM", FromOutputs)
proofs.correct("SentimentLSTM", SortedByHand)
proofs.correct("train_step", ref.train_step)
proofs.correct("train_step", step_zeroing_last)
proofs.correct("train_step", step_by_hand)


# --- wrong code that no catalogue entry names: the check's own words on it -------------------------


def mean_without_trailing_axis(x, mask):
    return (x * mask).sum(1) / mask.sum(1, keepdim=True)


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


def step_item_first(model, optimizer, tokens, lengths, labels, max_norm):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(tokens, lengths), labels).item()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss


def step_detached(model, optimizer, tokens, lengths, labels, max_norm):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(tokens, lengths).detach(), labels)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


def step_no_grad(model, optimizer, tokens, lengths, labels, max_norm):
    optimizer.zero_grad()
    with torch.no_grad():
        logits = model(tokens, lengths)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_no_return(model, optimizer, tokens, lengths, labels, max_norm):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(tokens, lengths), labels)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()


RAISED = "your code raised an error"
proofs.wrong("masked_mean", mean_without_trailing_axis, hint="trailing axis", message=RAISED)
proofs.wrong("SentimentLSTM", BackwardOnly, hint="(2, N, H)", message=RAISED)
proofs.wrong("SentimentLSTM", SortedLengthsRequired, hint="enforce_sorted=False", message=RAISED)
proofs.wrong("SentimentLSTM", Detached, hint="no .detach()", message="`dembedding.weight` is wrong",
             output="dembedding.weight")
proofs.wrong("train_step", step_item_first, hint="loss.item() is a plain Python number", message=RAISED)
proofs.wrong("train_step", step_detached, hint="no graph to go back through", message=RAISED)
proofs.wrong("train_step", step_no_grad, hint="torch.no_grad()", message=RAISED)
proofs.wrong("train_step", step_no_return, hint="NoneType", message="does not have the expected form")


# --- what is special to these checks ---------------------------------------------------------------


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
    assert sum(e["points"] for e in by_student["ada"].values()) == 7
    assert {e["status"] for e in by_student["bob"].values()} == {"not attempted"}
    assert by_student["cy"]["padding_mask"]["status"] == by_student["cy"]["masked_mean"]["status"] == "passed"
    assert by_student["cy"]["SentimentLSTM"]["status"] == "wrong"
    assert "last *padded* step" in by_student["cy"]["SentimentLSTM"]["hint"]


# --- train_step: the cases make every mistake visible, and the verdict never depends on a draw ----


def _gradient_norms(case):
    from course_utils.checking.conventions import build_classifier

    plan = case.options["plan"]
    model = build_classifier(plan["sizes"], plan["state"])
    norms = []
    for batch in plan["batches"]:
        model.zero_grad()
        F.cross_entropy(model(torch.from_numpy(batch["tokens"]), torch.from_numpy(batch["lengths"])),
                        torch.from_numpy(batch["labels"])).backward()
        norms.append(float(torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))))
    return norms


def test_train_step_cases_say_whether_clipping_acts_and_are_the_same_for_every_seed():
    ex = EXERCISES["train_step"]
    first, second, third = ex.cases(np.random.default_rng(0))
    assert min(_gradient_norms(first)) > 1.0 > first.options["plan"]["max_norm"]  # clipping acts at both steps
    assert max(_gradient_norms(second)) < second.options["plan"]["max_norm"]  # nothing to clip
    assert max(_gradient_norms(third)) > 1.0 > third.options["plan"]["max_norm"]  # clip at 1.0 is told apart
    for seed in (1, 2):
        for a, b in zip(ex.cases(np.random.default_rng(seed)), (first, second, third)):
            assert a.label == b.label
            for key in ("loss_1", "weights_1", "loss_2", "weights_2"):
                np.testing.assert_array_equal(ex.expected(a)[key], ex.expected(b)[key])


def test_train_step_is_called_twice_and_fit_classifier_uses_the_learners_step():
    from course_utils.lessons.nb08_sentiment_classification.training_torch import fit_classifier

    calls = []

    def counting(model, optimizer, tokens, lengths, labels, max_norm):
        calls.append((tuple(tokens.shape), max_norm))
        return ref.train_step(model, optimizer, tokens, lengths, labels, max_norm)

    assert EXERCISES["train_step"].run(counting, rng=np.random.default_rng(0))
    assert len(calls) == 6  # two steps in each of three cases
    calls.clear()


globals().update(proofs.tests())  # the proofs of every exercise: tests/proofs.py
