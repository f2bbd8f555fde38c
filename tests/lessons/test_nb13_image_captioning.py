"""Proofs of notebook 13's checks (image captioning: caption_loss, sample_caption, GridAttention),
the properties the sampling cases need, and the grading of the real notebook (the solution full
marks, the hand-out zero).

The catalogued mistakes are proven from course_utils/lessons/nb13_image_captioning/checks.py; here
are correct code written differently and the wrong code that no catalogue entry names.
"""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_utils.check import EXERCISES
from course_utils.lessons.nb13_image_captioning.checks import SAMPLE_SEEDS, _sample_case, sample_caption
from proofs import Proofs, default_stub


class AttentionBase(nn.Module):
    def __init__(self, feature_size, hidden_size, attention_size):
        super().__init__()
        self.W_f = nn.Linear(feature_size, attention_size, bias=False)
        self.W_h = nn.Linear(hidden_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)


class AttentionStub(AttentionBase):
    def forward(self, grid, hidden):
        raise NotImplementedError("Exercise 13.3: GridAttention")


def stub(name):
    """As handed out: the module has its layers (the check loads their weights), its forward raises."""
    return AttentionStub if name == "GridAttention" else default_stub(name)


proofs = Proofs("nb13_image_captioning", min_correct=2, stub=stub)

# --- 13.1 caption_loss ------------------------------------------------------------------------


def loss_with_mask(model, images, captions, pad_id):
    """log_softmax and gather, with an explicit mask of the real target words."""
    h0 = torch.tanh(model.init_state(model.encoder(images))).unsqueeze(0)
    out, _ = model.rnn(model.embedding(captions[:, :-1]), h0)
    log_p = model.out(out).log_softmax(dim=-1)
    target = captions[:, 1:]
    picked = log_p.gather(2, target.unsqueeze(-1)).squeeze(-1)
    mask = target != pad_id
    return -(picked * mask).sum() / mask.sum()


def loss_step_by_step(model, images, captions, pad_id):
    """One GRU step at a time, the per-word losses collected in a list."""
    h = torch.tanh(model.init_state(model.encoder(images)))[None]
    losses = []
    for t in range(captions.shape[1] - 1):
        out, h = model.rnn(model.embedding(captions[:, t:t + 1]), h)
        losses.append(F.cross_entropy(model.out(out[:, 0]), captions[:, t + 1], reduction="none"))
    per_word = torch.stack(losses, dim=1)
    real = captions[:, 1:] != pad_id
    return per_word[real].mean()


def loss_h0_not_3d(model, images, captions, pad_id):
    h0 = torch.tanh(model.init_state(model.encoder(images)))
    out, _ = model.rnn(model.embedding(captions[:, :-1]), h0)  # (N, H), not (1, N, H)
    logits = model.out(out)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), captions[:, 1:].reshape(-1), ignore_index=pad_id)


proofs.correct("caption_loss", loss_with_mask)
proofs.correct("caption_loss", loss_step_by_step)
proofs.wrong("caption_loss", loss_h0_not_3d, message="your code raised an error", hint="pass h0[None]")

# --- 13.2 sample_caption ----------------------------------------------------------------------


@torch.no_grad()
def sample_python_lists(model, images, start_id, end_id, max_len):
    """Each image's caption grows in a Python list; a set holds the finished images."""
    h = torch.tanh(model.init_state(model.encoder(images))).unsqueeze(0)
    last = torch.tensor([[start_id]] * len(images))
    captions, finished = [[] for _ in range(len(images))], set()
    for _ in range(max_len):
        out, h = model.rnn(model.embedding(last), h)
        last = model.out(out[:, -1]).argmax(-1, keepdim=True)
        for n, w in enumerate(last[:, 0].tolist()):
            if n not in finished:
                if w == end_id:
                    finished.add(n)
                else:
                    captions[n].append(w)
        if len(finished) == len(images):
            break
    return captions


@torch.no_grad()
def sample_one_by_one(model, images, start_id, end_id, max_len):
    """One image at a time, returned as 1-D tensors."""
    result = []
    for n in range(len(images)):
        h = torch.tanh(model.init_state(model.encoder(images[n:n + 1])))[None]
        word, words = start_id, []
        for _ in range(max_len):
            out, h = model.rnn(model.embedding(torch.tensor([[word]])), h)
            word = int(model.out(out).argmax())
            if word == end_id:
                break
            words.append(word)
        result.append(torch.tensor(words, dtype=torch.long))
    return result


@torch.no_grad()
def sample_stops_on_the_last_words(model, images, start_id, end_id, max_len):
    """Stops when the words just chosen are all <end>: an image that had finished may have gone on."""
    h = torch.tanh(model.init_state(model.encoder(images)))[None]
    tokens, steps = torch.full((len(images), 1), start_id), []
    for _ in range(max_len):
        out, h = model.rnn(model.embedding(tokens), h)
        tokens = model.out(out).argmax(-1)
        steps.append(tokens[:, 0])
        if bool((tokens == end_id).all()):
            break
    return [row[:row.index(end_id)] if end_id in row else row for row in torch.stack(steps, 1).tolist()]


@torch.no_grad()
def sample_until_end_only(model, images, start_id, end_id, max_len):
    """No bound: loops until every caption has produced <end>."""
    h = torch.tanh(model.init_state(model.encoder(images)))[None]
    last, steps = torch.full((len(images), 1), start_id), []
    while True:
        out, h = model.rnn(model.embedding(last), h)
        last = model.out(out).argmax(-1)
        steps.append(last[:, 0])
        if bool((torch.stack(steps, 1) == end_id).any(1).all()):
            break
    return [row[:row.index(end_id)] for row in torch.stack(steps, 1).tolist()]


proofs.correct("sample_caption", sample_python_lists)
proofs.correct("sample_caption", sample_one_by_one)
proofs.wrong("sample_caption", sample_stops_on_the_last_words, message="", hint="keep a flag per image")
proofs.wrong("sample_caption", sample_until_end_only, message="sampling did not stop",
             hint="must stop after max_len steps")


def test_the_sampling_cases_have_the_properties_the_mistakes_need():
    """Captions differ from image to image; one never ends; the others end at different steps."""
    for key, (N, max_len, sizes) in {"fixed": (5, 6, (4, 3, 3, 4, 7)), "long": (6, 8, (6, 4, 3, 5, 9))}.items():
        e = sample_caption.expected(_sample_case(key, SAMPLE_SEEDS[key], N, max_len, sizes))
        lengths = e["lengths"].tolist()
        assert max_len in lengths and min(lengths) < max_len and len(set(lengths)) >= 3, lengths


# --- 13.3 GridAttention -----------------------------------------------------------------------


class AttentionEinsum(AttentionBase):
    def forward(self, grid, hidden):
        e = torch.tanh(torch.einsum("nlf,af->nla", grid, self.W_f.weight)
                       + torch.einsum("nh,ah->na", hidden, self.W_h.weight).unsqueeze(1))
        alpha = F.softmax(torch.einsum("nla,a->nl", e, self.v.weight[0]), dim=-1)
        return torch.einsum("nl,nlf->nf", alpha, grid), alpha


class AttentionBmm(AttentionBase):
    def forward(self, grid, hidden):
        scores = self.v(torch.tanh(self.W_f(grid) + self.W_h(hidden).unsqueeze(1))).squeeze(2)
        weights = scores.exp() / scores.exp().sum(dim=1, keepdim=True)
        return torch.bmm(weights.unsqueeze(1), grid).squeeze(1), weights


class AttentionNotBroadcast(AttentionBase):
    def forward(self, grid, hidden):
        scores = self.v(torch.tanh(self.W_f(grid) + self.W_h(hidden)))[..., 0]
        weights = torch.softmax(scores, dim=1)
        return (weights[..., None] * grid).sum(1), weights


proofs.correct("GridAttention", AttentionEinsum)
proofs.correct("GridAttention", AttentionBmm)
proofs.wrong("GridAttention", AttentionNotBroadcast, message="your code raised an error", hint="[:, None]")

globals().update(proofs.tests())


def test_registered_in_notebook_order():
    names = list(EXERCISES)
    assert names.index("caption_loss") < names.index("sample_caption") < names.index("GridAttention")


def test_the_grader_gives_notebook_13s_solution_full_marks_and_its_hand_out_zero(tmp_path):
    """The real notebook: solutions/13_image_captioning.ipynb gets every point in the grader's sandbox,
    notebooks/13_image_captioning.ipynb none."""
    grading = pytest.importorskip("course_utils.grading")
    import grading_corpus as corpus
    from conftest import NOTEBOOKS, SOLUTIONS

    name = "13_image_captioning.ipynb"
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
    assert graded == {n: "passed" for n in proofs.names}, json.dumps(students["instructor"], indent=1)[:3000]
    assert students["instructor"]["total"] == 8
    assert students["hand_out"]["total"] == 0
    assert {e["status"] for e in students["hand_out"]["exercises"]} == {"not attempted"}
