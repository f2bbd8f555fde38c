"""course_utils.lessons.nb08_sentiment_classification.sentiment: the generated reviews follow their rules, bags of words cannot decide the
twins, tokens are padded as documented, and load_imdb reads the aclImdb folder layout."""
from collections import Counter

import numpy as np
import pytest

from course_utils.lessons.nb08_sentiment_classification.sentiment import (
    ASPECTS, INTENSIFIERS, KIND_WEIGHTS, NEGATIVE, NEGATORS, OPENERS, POSITIVE, Vocab, bag_of_words, encode_texts,
    generate_reviews, load_imdb, tokenize, write_imdb_layout,
)


@pytest.fixture(scope="module")
def reviews():
    return generate_reviews(5000, np.random.default_rng(0))


# --- an oracle written from the rules in the module's docstring, independently of the generator ---


def clause_score(words):
    """Score of "the ASPECT is|was [MODIFIER] ADJECTIVE"."""
    assert words[0] == "the" and words[1] in ASPECTS and words[2] in ("is", "was"), words
    *middle, adjective = words[3:]
    polarity = 1 if adjective in POSITIVE else -1 if adjective in NEGATIVE else None
    assert polarity is not None and len(middle) <= 1, words
    if middle and middle[0] in INTENSIFIERS:
        return 2 * polarity
    if middle and middle[0] in NEGATORS:
        return -polarity
    assert not middle, words
    return polarity


def clause_scores(words):
    """The scores of clauses joined by "and"."""
    scores, clause = [], []
    for w in words + ["and"]:
        if w == "and":
            scores.append(clause_score(clause))
            clause = []
        else:
            clause.append(w)
    return scores


def side_score(words):
    """A side of "but" or "although": clauses joined by "and", all of the same sign."""
    scores = clause_scores(words)
    assert len({np.sign(s) for s in scores}) == 1, words
    return scores


def oracle(text):
    """(kind, label) of a review, from its words only."""
    words = text.split()
    assert words[-1] == "."
    words = words[:-1]
    for opener in OPENERS:
        if " ".join(words).startswith(opener + " "):
            words = words[len(opener.split()):]
    if "only" in words:  # the ASPECT is not only A but also B
        a, b = words[5], words[8]
        assert words[3:5] == ["not", "only"] and words[6:8] == ["but", "also"]
        assert (a in POSITIVE) == (b in POSITIVE)
        return "not only", int(a in POSITIVE)
    if "but" in words:
        k = words.index("but")
        first, second = side_score(words[:k]), side_score(words[k + 1:])
        assert np.sign(sum(first)) != np.sign(sum(second))
        return "but", int(sum(second) > 0)
    if "although" in words:
        if words[0] == "although":
            k = words.index(",")
            sub, main = words[1:k], words[k + 1:]
        else:
            k = words.index(",")
            main, sub = words[:k], words[k + 2:]
            assert words[k + 1] == "although"
        assert np.sign(sum(side_score(sub))) != np.sign(sum(side_score(main)))
        return "although", int(sum(side_score(main)) > 0)
    scores = clause_scores(words)
    if len(scores) == 1:
        return ("negation" if any(w in NEGATORS for w in words) else "plain"), int(scores[0] > 0)
    if np.sign(scores[0]) == np.sign(scores[1]):
        return "and", int(sum(scores) > 0)
    assert sorted(map(abs, scores)) == [1, 2]  # opposite signs: exactly one clause is intensified
    return "intensity", int(max(scores, key=abs) > 0)


def test_every_label_follows_from_the_rules(reviews):
    for text, label, kind in zip(reviews.texts, reviews.labels, reviews.kinds):
        assert oracle(text) == (kind, label), text


def test_every_construction_occurs_and_labels_are_balanced(reviews):
    counts = Counter(reviews.kinds)
    assert set(counts) == set(KIND_WEIGHTS)
    for kind, weight in KIND_WEIGHTS.items():
        assert abs(counts[kind] / len(reviews) - weight) < 0.03
    assert reviews.labels.dtype == np.int64 and set(reviews.labels.tolist()) == {0, 1}
    assert 0.45 < reviews.labels.mean() < 0.55
    lengths = [len(t.split()) for t in reviews.texts]
    assert min(lengths) == 5 and max(lengths) > 20  # lengths vary: padding matters


def test_the_same_text_never_has_two_labels(reviews):
    seen = {}
    for text, label in zip(reviews.texts, reviews.labels):
        assert seen.setdefault(text, label) == label


def test_twins_have_the_same_bag_of_words_and_the_opposite_label(reviews):
    n_twins = 0
    for text, label, kind, twin in zip(reviews.texts, reviews.labels, reviews.kinds, reviews.twins):
        if kind in ("but", "although", "intensity"):
            assert twin is not None, text
        if kind in ("plain", "negation", "not only"):
            assert twin is None, text
        if twin is None:
            continue
        n_twins += 1
        assert twin != text and bag_of_words(twin) == bag_of_words(text)
        assert oracle(twin) == (kind, 1 - label), (text, twin)
    assert 0.4 < n_twins / len(reviews) < 0.6  # a bag-of-words model cannot decide about half of them


def test_an_and_review_has_a_twin_exactly_when_one_clause_is_negated(reviews):
    for text, kind, twin in zip(reviews.texts, reviews.kinds, reviews.twins):
        if kind == "and":
            first, second = text.rstrip(" .").split(" and ")
            clauses = [first[first.index("the "):].split(), second.split()]  # without the opener
            negated = [len(c) == 5 and c[3] in NEGATORS for c in clauses]
            assert (twin is not None) == (negated[0] != negated[1]), text


def test_generation_is_deterministic_and_exclude_keeps_sets_apart():
    a = generate_reviews(300, np.random.default_rng(5))
    b = generate_reviews(300, np.random.default_rng(5))
    assert a.texts == b.texts and np.array_equal(a.labels, b.labels) and a.twins == b.twins
    held_out = generate_reviews(300, np.random.default_rng(6), exclude=set(a.texts))
    assert not set(held_out.texts) & set(a.texts) and len(held_out) == 300


def test_tokenize_lowers_splits_punctuation_and_drops_html_breaks():
    assert tokenize("Not good. <br /><br />Don't!") == ["not", "good", ".", "don't", "!"]
    assert tokenize("the plot was dull , but") == ["the", "plot", "was", "dull", ",", "but"]
    assert tokenize("") == []


def test_vocab_puts_pad_and_unk_first_then_words_by_frequency():
    vocab = Vocab.build([["b", "a", "b"], ["c", "b", "a"]])
    assert vocab.words == ["<pad>", "<unk>", "b", "a", "c"] and len(vocab) == 5
    assert vocab.encode(["a", "zzz", "c"]) == [3, 1, 4]
    assert vocab.decode([2, 3, 0, 0]) == "b a"
    assert Vocab.build([["b", "a", "b"], ["c", "b", "a"]], min_count=2).words == ["<pad>", "<unk>", "b", "a"]
    assert Vocab.build([["b", "a", "b"], ["c", "b", "a"]], max_size=1).words == ["<pad>", "<unk>", "b"]


def test_encode_texts_pads_with_zeros_after_each_end():
    vocab = Vocab.build([["the", "plot", "was", "dull", "."]])
    tokens, lengths = encode_texts(["the plot was dull .", "dull .", "the unknown plot"], vocab)
    assert tokens.dtype == lengths.dtype == np.int64
    assert tokens.shape == (3, 5) and lengths.tolist() == [5, 2, 3]
    assert tokens[1].tolist() == [vocab.index["dull"], vocab.index["."], 0, 0, 0]
    assert tokens[2, 1] == vocab.unk_id
    for row, length in zip(tokens, lengths):
        assert (row[:length] != 0).all() and (row[length:] == 0).all()


def test_encode_texts_truncates_to_max_len_and_never_gives_length_zero():
    vocab = Vocab.build([["a", "b", "c"]])
    tokens, lengths = encode_texts(["a b c a b c", ""], vocab, max_len=4)
    assert tokens.shape == (2, 4) and lengths.tolist() == [4, 1]
    assert tokens[1].tolist() == [vocab.unk_id, 0, 0, 0]


def make_acl_imdb(root):
    """A tiny folder in the layout of aclImdb_v1.tar.gz, written here by hand."""
    files = {
        "train/pos/0_9.txt": "A <b>great</b> film.<br /><br />Loved it!",
        "train/pos/1_7.txt": "Not bad at all.",
        "train/neg/0_2.txt": "Dull, dull, dull.",
        "train/neg/10_1.txt": "The worst.",
        "train/neg/2_3.txt": "Not good.",
        "train/unsup/0_0.txt": "no label: ignored",
        "test/pos/0_10.txt": "Superb.",
        "test/neg/0_4.txt": "Weak plot.",
        "train/labeledBow.feat": "0:1 1:2",
        "imdb.vocab": "the\nand\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_load_imdb_reads_the_acl_imdb_layout(tmp_path):
    root = make_acl_imdb(tmp_path / "aclImdb")
    train = load_imdb(root, "train")
    assert train.texts == ["Dull, dull, dull.", "The worst.", "Not good.",  # neg in sorted file order
                           "A <b>great</b> film.<br /><br />Loved it!", "Not bad at all."]
    assert train.labels.tolist() == [0, 0, 0, 1, 1] and train.labels.dtype == np.int64
    assert train.kinds == ["imdb"] * 5 and train.twins == [None] * 5
    test = load_imdb(str(root), "test")
    assert test.texts == ["Weak plot.", "Superb."] and test.labels.tolist() == [0, 1]
    assert load_imdb(root, "train", limit=1).labels.tolist() == [0, 1]
    assert "<br" not in " ".join(tokenize(train.texts[3]))


def test_load_imdb_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="aclImdb layout"):
        load_imdb(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_imdb(make_acl_imdb(tmp_path / "aclImdb"), "unsup")


def test_write_imdb_layout_round_trips_through_load_imdb(tmp_path):
    reviews = generate_reviews(20, np.random.default_rng(1))
    root = write_imdb_layout(tmp_path / "aclImdb", "test", reviews)
    back = load_imdb(root, "test")
    assert sorted(zip(back.texts, back.labels.tolist())) == sorted(zip(reviews.texts, reviews.labels.tolist()))
    assert all(p.name.endswith(("_8.txt",)) for p in (root / "test" / "pos").iterdir())
