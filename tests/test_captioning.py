"""Tests of course_utils.lessons.nb13_image_captioning.captioning: the scenes, their captions, the held-out split and the plumbing."""
import numpy as np
import torch

from course_utils.lessons.nb13_image_captioning.captioning import (AttentionCaptioner, CaptionData, Captioner, Shape, attention_caption_loss,
                                     attention_sample, attribute_accuracy, bleu, caption, exact_match, render)
from course_utils.lessons.nb13_image_captioning.reference import GridAttention, caption_loss, sample_caption


def test_caption_follows_the_grammar_in_reading_order():
    shapes = [Shape("triangle", "yellow", "small", 1, 0), Shape("circle", "red", "small", 0, 0),
              Shape("square", "blue", "large", 0, 1)]
    assert caption(shapes) == ("a small red circle left of a large blue square above a small yellow triangle")
    assert caption([Shape("circle", "green", "large", 1, 1)]) == "a large green circle"


def test_render_draws_each_shape_in_its_colour_and_cell():
    image = render([Shape("square", "red", "large", 0, 1)])
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    assert np.allclose(image[:, 8, 24], [0.9, 0.15, 0.1], atol=1e-6)  # the centre of the top-right cell
    assert image[:, 24, 8].sum() == 0  # the bottom-left cell is empty


def test_the_held_out_combination_never_appears_in_training():
    data = CaptionData(n_train=300, n_test=50, n_combo=40, seed=1)
    assert "green triangle" not in " ".join(data.captions["train"] + data.captions["test"])
    assert all("green triangle" in c for c in data.captions["combo"])
    assert data.grids["train"].shape == (300, 16, 64)
    tokens = data.tokens(data.captions["train"][:5])
    assert (tokens[:, 0] == data.vocab.start_id).all()
    assert [data.vocab.decode(r) for r in tokens] == data.captions["train"][:5]


def test_the_models_train_and_sample():
    data = CaptionData(n_train=64, n_test=8, n_combo=8, seed=2)
    torch.manual_seed(0)
    images, captions = data.batch(np.arange(8))
    plain = Captioner(len(data.vocab))
    assert caption_loss(plain, images, captions, 0).shape == ()
    assert len(sample_caption(plain, images, 1, 2, 5)) == 8
    attend = AttentionCaptioner(len(data.vocab), GridAttention(64, 128, 16))
    loss = attention_caption_loss(attend, images, captions, 0)
    loss.backward()
    ids, weights = attention_sample(attend, images, 1, 2, 5)
    assert len(ids) == 8 and all(w.shape == (len(i) + (len(i) < 5), 16) for i, w in zip(ids, weights))
    assert np.allclose(weights[0].sum(axis=1), 1)


def test_measures():
    assert exact_match(["a b", "c"], ["a b", "d"]) == 0.5
    assert abs(bleu(["a small red circle"], ["a small red circle"]) - 100.0) < 1e-6
    scene = [Shape("triangle", "green", "small", 0, 0)]
    assert attribute_accuracy(["a small green circle"], [scene], "green", "triangle") == {
        "right": 0.0, "said": {"green circle": 1}}
