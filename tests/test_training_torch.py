"""course_utils.lessons.nb08_sentiment_classification.training_torch: the training loop, predictions and measures of notebook 08."""
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.lessons.nb08_sentiment_classification.training_torch import accuracy, confusion_matrix, fit_classifier, predict, predict_probabilities


class FirstToken(nn.Module):
    """Logits from the first token's embedding; records the width T of every batch it sees."""

    def __init__(self, vocab_size=5, num_classes=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, num_classes)
        self.widths = []

    def forward(self, tokens, lengths):
        assert lengths.device.type == "cpu" and lengths.dtype == torch.int64
        self.widths.append(tokens.shape[1])
        return self.embedding(tokens[:, 0])


def toy_data(n=40):
    """Label = (first token == 2); lengths 1..3, padded to T = 6 (more than any length)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 4, size=n).astype(np.int64)
    tokens = np.zeros((n, 6), dtype=np.int64)
    for i, length in enumerate(lengths):
        tokens[i, :length] = rng.integers(1, 5, size=length)
    return tokens, lengths, (tokens[:, 0] == 2).astype(np.int64)


def test_fit_classifier_learns_reports_every_step_and_leaves_eval_mode():
    tokens, lengths, labels = toy_data()
    torch.manual_seed(0)
    model = FirstToken()
    history = fit_classifier(model, tokens, lengths, labels, epochs=30, batch_size=16, lr=0.1, progress=False)
    assert history["steps_per_epoch"] == 3 and history["loss"].shape == (90,)
    assert history["loss"][-3:].mean() < 0.1 < history["loss"][:3].mean()
    assert history["seconds"] > 0 and not model.training
    assert accuracy(labels, predict(model, tokens, lengths)) == 1.0


def test_batches_are_cut_to_their_longest_sequence():
    tokens, lengths, labels = toy_data()
    model = FirstToken()
    fit_classifier(model, tokens, lengths, labels, epochs=1, batch_size=8, progress=False)
    assert max(model.widths) <= 3 < tokens.shape[1]


def test_training_is_deterministic_given_the_seeds():
    tokens, lengths, labels = toy_data()
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        runs.append(fit_classifier(FirstToken(), tokens, lengths, labels, epochs=2, batch_size=8, seed=3,
                                   progress=False)["loss"])
    np.testing.assert_array_equal(*runs)


def test_predictions_do_not_depend_on_the_batch_size():
    tokens, lengths, _ = toy_data()
    torch.manual_seed(0)
    model = FirstToken()
    probs = predict_probabilities(model, tokens, lengths, batch_size=7)
    assert probs.shape == (40, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(probs, predict_probabilities(model, tokens, lengths, batch_size=1000), rtol=1e-6)
    assert np.array_equal(predict(model, tokens, lengths), probs.argmax(axis=1))


def test_accuracy_and_confusion_matrix():
    labels, preds = np.array([0, 0, 1, 1, 1, 2]), np.array([0, 1, 1, 1, 0, 2])
    assert accuracy(labels, preds) == pytest.approx(4 / 6)
    np.testing.assert_array_equal(confusion_matrix(labels, preds, 3), [[1, 1, 0], [1, 2, 0], [0, 0, 1]])
    assert confusion_matrix(labels, preds, 3).dtype == np.int64
