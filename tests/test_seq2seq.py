"""course_utils.lessons.nb10_seq2seq.seq2seq (training, decoding, evaluation and figures of notebooks 10 and 11) and the
reference modules of course_utils.lessons.nb10_seq2seq.reference do what their docstrings say."""
import matplotlib.pyplot as plt  # conftest.py selects the Agg backend: no windows
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from course_utils import reference as ref
from course_utils.lessons.nb10_seq2seq.dates import DateData
from course_utils.lessons.nb10_seq2seq.seq2seq import (
    Seq2Seq, accuracy_by_length, exact_match, plot_accuracy_by_length, plot_attention, plot_losses, predict, train,
)


@pytest.fixture(scope="module")
def data():
    return DateData(seed=0)


def small_model(data, attention=False, H=16):
    torch.manual_seed(0)
    encoder = ref.Encoder(len(data.src_vocab), 8, H)
    decoder = (ref.AttentionDecoder(len(data.tgt_vocab), 8, H, 8) if attention
               else ref.Decoder(len(data.tgt_vocab), 8, H))
    return Seq2Seq(encoder, decoder, attention=attention).eval()


@pytest.mark.parametrize("attention", [False, True])
def test_forward_is_teacher_forcing_and_loss_its_cross_entropy(data, attention):
    model = small_model(data, attention)
    batch = data.batch(data.pairs(5, np.random.default_rng(0)))
    enc_outputs, final = model.encoder(batch.src, batch.src_lengths)
    if attention:
        logits, _, _ = model.decoder(batch.tgt_in, final, enc_outputs, batch.src_mask)
    else:
        logits, _ = model.decoder(batch.tgt_in, final)
    torch.testing.assert_close(model(batch), logits)
    expected = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.tgt_out.reshape(-1))
    torch.testing.assert_close(model.loss(batch), expected)


@pytest.mark.parametrize("attention", [False, True])
def test_greedy_decode_feeds_back_the_most_probable_token(data, attention):
    model = small_model(data, attention)
    batch = data.batch(data.pairs(4, np.random.default_rng(1)))
    tokens, weights = model.greedy_decode(batch, max_len=6)
    assert tokens.shape == (4, 6) and tokens.dtype == torch.long
    # one sequence at a time, by hand
    for n in range(4):
        one = data.batch([(batch.sources[n], batch.targets[n])])
        enc_outputs, hidden = model.encoder(one.src, one.src_lengths)
        token, mine = torch.tensor([[1]]), []
        for _ in range(6):
            logits, hidden, *_ = model.decode(token, hidden, enc_outputs, one.src_mask)
            token = logits.argmax(-1)
            mine.append(int(token))
        assert tokens[n].tolist() == mine
    if attention:
        assert weights.shape == (4, 6, batch.src.shape[1])
        torch.testing.assert_close(weights.sum(-1), torch.ones(4, 6))
        assert (weights.masked_select(~batch.src_mask[:, None, :].expand_as(weights)) == 0).all()
    else:
        assert weights is None


def test_train_runs_a_fixed_number_of_steps_reproducibly_and_lowers_the_loss(data):
    histories = []
    for _ in range(2):
        model = small_model(data, H=32)
        histories.append(train(model, data.batches(32, seed=0), steps=60, lr=1e-2, progress=False))
    h = histories[0]
    assert h["loss"].shape == (60,) and h["seconds"] > 0
    np.testing.assert_array_equal(h["loss"], histories[1]["loss"])
    assert h["loss"][-10:].mean() < 0.7 * h["loss"][:10].mean()
    assert not model.training  # left in eval mode


def test_predict_returns_strings_cut_at_end_and_exact_match_counts_equal_strings(data):
    model = small_model(data)
    sources = [s for s, _ in data.pairs(7, np.random.default_rng(2))]
    out = predict(model, data, sources, batch_size=3)
    assert len(out) == 7 and all(isinstance(p, str) and len(p) <= 11 for p in out)
    assert all(set(p) <= set("0123456789-") for p in out)
    assert exact_match(["1998-03-03", "2000-01-01"], ["1998-03-03", "2000-01-02"]) == 0.5


def test_accuracy_by_length_buckets_by_input_characters():
    labels, accuracy, counts = accuracy_by_length(["abc", "abcdef", "abcdefg", "x" * 12], [True, False, True, True],
                                                  edges=[0, 5, 10, 20, 30])
    assert labels == ["0-4", "5-9", "10-19", "20-29"]
    assert counts.tolist() == [1, 2, 1, 0]
    np.testing.assert_array_equal(accuracy[:3], [1.0, 0.5, 1.0])
    assert np.isnan(accuracy[3])


def test_plot_losses_draws_one_smoothed_line_per_run_on_a_log_scale():
    ax = plot_losses({"a": {"loss": np.linspace(2, 0.1, 100)}, "b": {"loss": np.ones(100)}}, window=10)
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    assert len(ax.get_lines()[0].get_xdata()) == 91
    assert ax.get_title() and "step" in ax.get_xlabel() and "nats" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    plt.close(ax.figure)


def test_plot_accuracy_by_length_draws_one_line_per_model():
    results = {"with": (["abc", "abcdefgh"], [True, True]), "without": (["abc", "abcdefgh"], [True, False])}
    ax = plot_accuracy_by_length(results, edges=[0, 5, 10])
    assert len(ax.get_lines()) == 2
    np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), [1.0, 0.0])
    assert "length" in ax.get_xlabel() and "exact match" in ax.get_ylabel() and ax.get_title()
    plt.close(ax.figure)


def test_plot_attention_draws_output_rows_against_input_columns():
    weights = np.random.default_rng(0).random((12, 9))
    ax = plot_attention(weights, "3/3/98", "1998-03-03")
    (image,) = ax.get_images()
    assert image.get_array().shape == (11, 6)  # 10 characters and <end>, against 6 input characters
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "<end>"
    assert [t.get_text() for t in ax.get_xticklabels()] == list("3/3/98")
    assert "input" in ax.get_xlabel() and "output" in ax.get_ylabel() and "1998-03-03" in ax.get_title()
    assert len(ax.figure.axes) == 2  # with its colorbar
    plt.close(ax.figure)


# --- the reference modules ------------------------------------------------------------------


def test_reference_encoder_never_reads_padding():
    torch.manual_seed(0)
    enc = ref.Encoder(10, 4, 5)
    src = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    noisy = src.clone()
    noisy[1, 2:] = torch.tensor([9, 9])
    lengths = torch.tensor([4, 2])
    (out, final), (out2, final2) = enc(src, lengths), enc(noisy, lengths)
    torch.testing.assert_close(final, final2)
    torch.testing.assert_close(out, out2)
    assert (out[1, 2:] == 0).all()
    alone_out, alone_final = enc(src[1:, :2], lengths[1:])
    torch.testing.assert_close(final[1], alone_final[0])


def test_reference_attention_masks_padding_exactly_and_sums_to_one():
    torch.manual_seed(0)
    att = ref.AdditiveAttention(3, 4, 5)
    keys = torch.randn(2, 6, 4)
    mask = torch.tensor([[True] * 6, [True, True, False, False, False, False]])
    context, weights = att(torch.randn(2, 3), keys, mask)
    assert (weights[1, 2:] == 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    torch.testing.assert_close(context, torch.einsum("ns,nsk->nk", weights, keys))


def test_reference_beam_search_of_width_one_is_greedy_decoding():
    from course_utils.checking.conventions import decoder_step
    from course_utils.lessons.nb10_seq2seq.checks import _gru_decoder

    for seed in range(5):
        g = np.random.default_rng(seed)
        step = decoder_step(_gru_decoder(g, 7, 3, 4))
        hidden = torch.from_numpy(np.tanh(g.standard_normal((1, 4))))
        tokens, score = ref.beam_search(step, hidden, 1, 2, beam_width=1, max_len=6)
        token, h, mine, total = torch.tensor([1]), hidden, [], 0.0
        for _ in range(6):
            log_probs, h = step(token, h)
            token = log_probs.argmax(-1)
            mine.append(int(token))
            total += float(log_probs.max())
            if int(token) == 2:
                break
        assert tokens == mine and np.isclose(score, total)


def test_train_and_predict_take_the_learners_loss_and_decoder():
    import numpy as np
    import torch

    from course_utils import reference as ref
    from course_utils.lessons.nb10_seq2seq.dates import DateData
    from course_utils.lessons.nb10_seq2seq.seq2seq import Seq2Seq, predict, train

    data = DateData(seed=0)
    torch.manual_seed(0)
    model = Seq2Seq(ref.Encoder(len(data.src_vocab), 4, 8), ref.Decoder(len(data.tgt_vocab), 4, 8))
    calls = []

    def loss_fn(m, batch):
        calls.append(1)
        return ref.teacher_forcing_loss(m.encoder, m.decoder, batch.src, batch.src_lengths, batch.tgt, 0)

    history = train(model, data.batches(8, seed=0), steps=3, progress=False, loss_fn=loss_fn)
    assert len(calls) == 3 and np.isfinite(history["loss"]).all()
    sources = [s for s, _ in data.pairs(7, np.random.default_rng(0))]
    assert predict(model, data, sources, decode=ref.greedy_decode, batch_size=3) == predict(model, data, sources)
