"""course_utils.lessons.nb04_char_rnn_numpy.char_lm: text loading, batches of windows, evaluation and generation do what they say."""
import math

import numpy as np
import pytest

from course_utils.lessons.nb04_char_rnn_numpy.char_lm import (
    batch_windows, bits_per_char, generate, load_text, side_by_side, unigram_bits_per_char,
)


def test_load_text_reads_a_file_and_normalises_line_endings(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_bytes("Größe: 3 €\r\nzweite Zeile\rdritte\n".encode("utf-8"))
    assert load_text(path) == "Größe: 3 €\nzweite Zeile\ndritte\n"
    assert load_text(str(path)) == load_text(path)


def test_load_text_explains_a_wrong_encoding_and_an_empty_file(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="encoding='latin-1'"):
        load_text(latin)
    assert load_text(latin, encoding="latin-1") == "café"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_text(empty)


def test_batch_windows_gives_inputs_and_next_characters():
    ids = np.arange(100)
    x, y = batch_windows(ids, N=4, T=5, k=0)
    assert x.shape == y.shape == (4, 5) and x.dtype == ids.dtype
    np.testing.assert_array_equal(x[:, 0], [0, 25, 50, 75])  # row n starts at n * (C // N)
    np.testing.assert_array_equal(x[1], [25, 26, 27, 28, 29])
    np.testing.assert_array_equal(y, (x + 1) % 100)


def test_batch_windows_rows_continue_from_one_batch_to_the_next_and_wrap_around():
    ids = np.random.default_rng(0).integers(0, 7, size=53)
    N, T = 3, 4
    C = len(ids)
    stream = np.concatenate([ids, ids, ids])  # the ring, unrolled
    for k in range(30):  # 30 * 4 = 120 characters per row: more than twice round the ring
        x, y = batch_windows(ids, N, T, k)
        x_next, _ = batch_windows(ids, N, T, k + 1)
        np.testing.assert_array_equal(x_next[:, 0], y[:, -1])  # batch k + 1 continues batch k
        for n in range(N):
            start = (n * (C // N) + k * T) % C
            np.testing.assert_array_equal(x[n], stream[start:start + T])
            np.testing.assert_array_equal(y[n], stream[start + 1:start + T + 1])


def test_batch_windows_rejects_a_text_without_a_next_character():
    with pytest.raises(ValueError):
        batch_windows(np.array([3]), N=1, T=2, k=0)


def uniform_forward(V):
    def forward(x, h0):
        return np.zeros(x.shape + (V,), dtype=np.float32), h0
    return forward


def test_bits_per_char_of_a_uniform_model_is_log2_V():
    ids = np.random.default_rng(1).integers(0, 11, size=1000)
    assert bits_per_char(uniform_forward(11), ids, H=3, N=7, T=13) == pytest.approx(math.log2(11))


def test_bits_per_char_carries_the_hidden_state_between_windows():
    """A model that predicts from the previous input, kept in h, is right everywhere but at
    the first character of each stream, where the state is still zero."""
    V, margin = 5, 30.0
    ids = np.arange(403) % V  # 0 1 2 3 4 0 1 ...: the next id is (id + 1) % V

    def forward(x, h0):
        prev = h0[:, 0].astype(int)  # h holds the previous input id
        scores = np.zeros(x.shape + (V,))
        for t in range(x.shape[1]):
            # y[t] = x[t] + 1 = x[t - 1] + 2: predicted from the state only
            scores[np.arange(len(x)), t, (prev + 2) % V] = margin
            prev = x[:, t]
        h = np.zeros_like(h0)
        h[:, 0] = prev
        return scores, h

    N, T = 4, 7
    L = (len(ids) - 1) // N
    # A wrong guess costs about margin / ln 2 bits; a right one about (V - 1) e^-margin.
    wrong = [(0 + 2) % V != ids[n * L + 1] for n in range(N)]
    expected_bits = sum(wrong) * (margin + math.log(1 + (V - 1) * math.exp(-margin))) / math.log(2)
    assert bits_per_char(forward, ids, H=2, N=N, T=T) == pytest.approx(expected_bits / (N * L), abs=1e-9)


def test_bits_per_char_copes_with_a_text_shorter_than_the_batch():
    ids = np.array([0, 1, 0])
    assert bits_per_char(uniform_forward(2), ids, H=1, N=32, T=256) == pytest.approx(1.0)


def test_unigram_bits_per_char_uses_add_one_smoothed_frequencies():
    train = np.array([0, 0, 0, 1])  # counts + 1: 4, 2, 1 over V = 3, total 7
    heldout = np.array([0, 1, 2, 2])
    expected = -(math.log2(4 / 7) + math.log2(2 / 7) + 2 * math.log2(1 / 7)) / 4
    assert unigram_bits_per_char(train, heldout, V=3) == pytest.approx(expected)
    uniform = np.arange(6)
    assert unigram_bits_per_char(uniform, uniform, V=6) == pytest.approx(math.log2(6))


def counting_step(V):
    """A model whose logits favour (x + 1) % V, and whose state counts the steps taken."""
    def step(x, prev_h):
        logits = np.zeros((len(x), V))
        logits[np.arange(len(x)), (x + 1) % V] = 5.0
        return logits, prev_h + 1
    return step


def greedy(logits, temperature, rng):
    return logits.argmax(axis=-1)


def test_generate_reads_the_prompt_then_feeds_back_each_sample():
    V = 6
    seen = []

    def step(x, prev_h):
        seen.append(int(x[0]))
        return counting_step(V)(x, prev_h)

    out = generate(step, np.array([2, 4]), np.zeros((1, 3)), length=5, temperature=0.0,
                   sample=greedy, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(out, [5, 0, 1, 2, 3])  # continues after the prompt's last id, 4
    assert out.dtype.kind == "i"
    assert seen == [2, 4, 5, 0, 1, 2, 3]  # the prompt, then each sample fed back


def test_generate_draws_from_the_given_rng_through_the_sampler():
    def sampler(logits, temperature, rng):
        return rng.integers(0, logits.shape[-1], size=len(logits))

    args = (counting_step(9), np.array([0]), np.zeros((1, 2)), 50, 1.0, sampler)
    a = generate(*args, rng=np.random.default_rng(5))
    b = generate(*args, rng=np.random.default_rng(5))
    c = generate(*args, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError):
        generate(counting_step(9), np.array([], dtype=int), np.zeros((1, 2)), 5, 1.0, sampler,
                 np.random.default_rng(0))


def test_side_by_side_puts_texts_in_titled_columns_with_their_line_breaks():
    table = side_by_side({"left": "abcdefg\nhi", "right": "xyz"}, width=4)
    lines = table.split("\n")
    assert lines[0] == "left │ righ"  # titles are cut to the width too
    assert lines[1] == "─" * 4 + "─┼─" + "─" * 4
    assert lines[2:] == ["abcd │ xyz", "efg  │", "hi   │"]
    assert len(side_by_side({"a": "1\n2\n3\n4", "b": ""}, width=3, rows=2).split("\n")) == 4
