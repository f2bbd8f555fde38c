"""course_utils.lessons.nb14_session_recommendation.sessions: the generated sessions, the clicks loader, the baselines and the evaluation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.lessons.nb14_session_recommendation import sessions as S
from course_utils.lessons.nb14_session_recommendation.reference import recall_mrr_at_k, session_parallel_batches, session_train_step


@pytest.fixture(scope="module")
def data():
    return S.generate_sessions(600, seed=0)


def test_generated_sessions_have_the_layout_and_the_structure_described(data):
    c = S.SessionConfig()
    assert data.n_items == c.n_intents * c.items_per_intent + c.n_shared
    assert data.offsets[0] == 0 and data.offsets[-1] == len(data.items) and len(data) == 600
    lengths = data.lengths()
    assert lengths.min() >= 2 and lengths.max() <= c.max_length
    assert data.shared.sum() == c.n_shared and data.shared[-c.n_shared:].all()
    for s in range(len(data)):
        x = data.session(s)
        intent_items = x[~data.shared[x]]
        assert (intent_items // c.items_per_intent == data.intents[s]).all()  # every intent item is of its intent
        assert not data.shared[x[0]]  # the first click reveals the intent


def test_generation_is_deterministic_and_the_structure_depends_on_the_seed_only():
    a, b = S.generate_sessions(50, seed=3), S.generate_sessions(50, seed=3)
    np.testing.assert_array_equal(a.items, b.items)
    longer = S.generate_sessions(80, seed=3)
    np.testing.assert_array_equal(longer.items[:len(a.items)], a.items)
    assert not np.array_equal(S.generate_sessions(50, seed=4).items[:20], a.items[:20])


def test_what_follows_a_shared_item_depends_on_the_intent(data):
    ev = S.events(data)
    sh = ev.last_shared
    intents = data.intents[ev.session[sh]]
    # after a shared item, the next click belongs to the session's intent
    assert (ev.target[sh] // S.SessionConfig().items_per_intent == intents).all()


def test_subset_and_events(data):
    part = data.subset(slice(10, 20))
    assert len(part) == 10
    np.testing.assert_array_equal(part.session(0), data.session(10))
    ev = S.events(part)
    assert len(ev.target) == (part.lengths() - 1).sum()
    s, p = ev.session[3], ev.position[3]
    assert ev.target[3] == part.session(s)[p] and ev.last[3] == part.session(s)[p - 1]


def write(tmp_path, lines):
    path = tmp_path / "clicks.dat"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_load_clicks_reads_yoochoose_layout_sorts_filters_and_renumbers(tmp_path):
    path = write(tmp_path, [
        "2,2014-04-07T10:00:00.000Z,214536502,0",
        "1,2014-04-07T09:00:05.000Z,214577561,0",
        "1,2014-04-07T09:00:01.000Z,214536502,S",  # out of order within its session
        "2,2014-04-07T10:01:00.000Z,214577561,0",
        "3,2014-04-07T11:00:00.000Z,214536502,0",  # one click only: dropped
        "4,2014-04-07T08:00:00.000Z,999,2053",  # 999 is clicked once: dropped, and then session 4 is too short
        "4,2014-04-07T08:00:01.000Z,214536502,2053",
    ])
    data, ids = S.load_clicks(path, min_item_support=2)
    assert ids.tolist() == ["214536502", "214577561"]
    assert [data.session(s).tolist() for s in range(len(data))] == [[0, 1], [0, 1]]  # session 1, then 2
    assert (data.intents == -1).all() and data.n_items == 2


def test_load_clicks_accepts_a_header_and_keeps_the_order_of_first_clicks(tmp_path):
    path = write(tmp_path, ["session_id,timestamp,item_id,category",
                            "7,2014-04-02T10:00:00.000Z,5,0", "7,2014-04-02T10:00:09.000Z,6,0",
                            "3,2014-04-01T10:00:00.000Z,6,0", "3,2014-04-01T10:00:03.000Z,6,0"])
    data, ids = S.load_clicks(path, min_item_support=1)
    assert [ids[data.session(s)].tolist() for s in range(len(data))] == [["6", "6"], ["5", "6"]]


def test_baselines_score_what_they_should():
    train = S.from_lists([[0, 1], [0, 1], [0, 2], [3, 2], [2, 3], [2, 1]], 4)
    test = S.from_lists([[0, 1, 3]], 4)
    ev = S.events(test)
    pop = S.most_popular(train)(test, ev)
    assert pop.shape == (2, 4) and np.argmax(pop[0]) == 2  # item 2 was clicked most often (4 times)
    mk = S.markov(train)(test, ev)
    assert np.argmax(mk[0]) == 1  # after 0 came 1 twice, 2 once
    knn = S.session_knn(train, k=3)(test, ev)
    assert knn.shape == (2, 4) and knn[0, 1] > knn[0, 2] > knn[0, 3]  # 1 is in two of the neighbours, 2 in one
    result = S.evaluate(S.markov(train), test, ev, k=1)
    assert result["hit"].tolist() == [True, False]  # after 1, never followed by anything: the most popular, 2


def test_evaluate_agrees_with_the_reference_metrics(data):
    train, test = data.subset(slice(0, 500)), data.subset(slice(500, None))
    ev = S.events(test)
    scores = S.markov(train)(test, ev)
    result = S.evaluate(S.markov(train), test, ev, k=20)
    assert (result["recall"], result["mrr"]) == pytest.approx(recall_mrr_at_k(scores, ev.target, 20))


class TinyGRU(nn.Module):
    def __init__(self, n_items, hidden_size=8):
        super().__init__()
        self.hidden_size = hidden_size
        self.embedding = nn.Embedding(n_items, 4)
        self.cell = nn.GRUCell(4, hidden_size)
        self.out = nn.Linear(hidden_size, n_items)

    def forward(self, items, hidden):
        hidden = self.cell(self.embedding(items), hidden)
        return self.out(hidden), hidden


def test_gru_scorer_scores_each_prefix_as_running_the_session_does(data):
    torch.manual_seed(0)
    test = data.subset(slice(0, 30))
    model = TinyGRU(data.n_items)
    ev = S.events(test)
    scores = S.gru_scorer(model, batch_size=7)(test, ev)
    e = 11
    x = test.session(ev.session[e])[:ev.position[e]]
    h = torch.zeros(1, 8)
    with torch.no_grad():
        for item in x:
            logits, h = model(torch.tensor([int(item)]), h)
    np.testing.assert_allclose(scores[e], logits[0].numpy(), rtol=1e-5, atol=1e-6)


def test_train_gru_runs_the_learners_functions_and_the_loss_falls(data):
    torch.manual_seed(0)
    model = TinyGRU(data.n_items, 16)
    history = S.train_gru(model, session_train_step, session_parallel_batches, data, epochs=2, batch_size=16,
                          lr=1e-2)
    steps = len(history["loss"])
    assert steps > 100
    assert history["loss"][-50:].mean() < history["loss"][:50].mean() - 0.5
