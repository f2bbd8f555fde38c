"""Tests of course_utils.lessons.nb12_speech_ctc.speech: the synthetic utterances, the features, the WAV loader, the plumbing."""
from __future__ import annotations

import wave

import numpy as np
import pytest
import torch

from course_utils.lessons.nb12_speech_ctc import speech
from course_utils.reference import AcousticModel, ctc_greedy_decode


def test_utterances_are_reproducible_and_labelled():
    a, b = speech.make_utterances(5, seed=3), speech.make_utterances(5, seed=3)
    for u, v in zip(a, b):
        assert np.array_equal(u.wave, v.wave) and np.array_equal(u.labels, v.labels)
        assert u.wave.dtype == np.float32 and np.abs(u.wave).max() <= 1
        assert 3 <= len(u.labels) <= 7 and set(u.labels.tolist()) <= set(range(1, 9))
        assert u.segments.shape == (len(u.labels), 2)
        assert np.all(np.diff(u.segments.ravel()) >= 0) and u.segments[-1, 1] <= len(u.wave)
    assert not np.array_equal(speech.make_utterances(1, seed=4)[0].wave, a[0].wave)


def test_equal_neighbouring_sounds_are_separated_by_a_pause():
    rng = np.random.default_rng(0)
    utt = speech.synthesize([1, 1, 7], rng)
    (s0, e0), (s1, _) = utt.segments[:2]
    assert s1 - e0 >= 30 * speech.SAMPLE_RATE // 1000 / 1.3 - 1  # at least 30 ms at the fastest rate


def test_a_vowel_has_its_formants_and_s_is_high():
    rng = np.random.default_rng(1)
    utt = speech.synthesize([3, 7], rng)  # "i", then "s"
    spec = speech.log_spectrogram(utt.wave)
    hz = np.fft.rfftfreq(speech.FRAME, 1 / speech.SAMPLE_RATE)
    (i0, i1), (s0, s1) = utt.segments // speech.HOP
    vowel, hiss = spec[i0 + 2:i1 - 2].mean(axis=0), spec[s0 + 2:s1 - 2].mean(axis=0)
    assert vowel[hz < 500].max() > vowel[(hz > 1000) & (hz < 1600)].max()  # i: F1 low, nothing in the middle
    assert hiss[hz > 2800].mean() > hiss[hz < 2000].mean() + 10  # s: energy above 2.7 kHz


def test_log_spectrogram_shape_and_a_pure_tone():
    t = np.arange(8000) / speech.SAMPLE_RATE
    spec = speech.log_spectrogram(np.sin(2 * np.pi * 1000 * t))
    assert spec.shape == (1 + (8000 - speech.FRAME) // speech.HOP, speech.FRAME // 2 + 1)
    assert spec.dtype == np.float32
    assert np.all(spec.argmax(axis=1) == 16)  # 1000 Hz / 62.5 Hz per bin


def test_featurize_standardises_with_the_training_statistics():
    utts = speech.make_utterances(6, seed=0)
    train, mean, std = speech.featurize(utts[:4])
    stacked = np.concatenate(train.features)
    assert np.allclose(stacked.mean(axis=0), 0, atol=1e-4) and np.allclose(stacked.std(axis=0), 1, atol=1e-3)
    other, m2, s2 = speech.featurize(utts[4:], mean, std)
    assert m2 is mean and s2 is std
    assert np.allclose(other.features[0], (speech.log_spectrogram(utts[4].wave) - mean) / std, atol=1e-5)


def test_batch_pads_features_and_targets():
    data, _, _ = speech.featurize(speech.make_utterances(3, seed=0))
    x, lengths, y, y_lengths = speech.batch(data, [0, 1, 2])
    assert x.shape == (3, int(lengths.max()), 65) and x.dtype == torch.float32
    for n in range(3):
        assert np.array_equal(x[n, :lengths[n]].numpy(), data.features[n])
        assert torch.all(x[n, lengths[n]:] == 0)
        assert y[n, :y_lengths[n]].tolist() == data.labels[n].tolist() and torch.all(y[n, y_lengths[n]:] == 0)


def test_length_batches_cover_every_utterance_once():
    data, _, _ = speech.featurize(speech.make_utterances(10, seed=0))
    batches = speech.length_batches(data, 4, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(10)) and max(map(len, batches)) == 4


def test_training_steps_and_prediction_run():
    data, _, _ = speech.featurize(speech.make_utterances(8, seed=0))
    torch.manual_seed(0)
    model = AcousticModel(65, 8, len(speech.SYMBOLS))
    result = speech.train(model, data, steps=3, batch_size=4)
    assert result["steps"] == 3 and len(result["losses"]) == 3 and result["cpu_seconds"] > 0
    hyps, log_probs = speech.predict(model, data, ctc_greedy_decode)
    assert len(hyps) == 8 and log_probs.shape[0] == 8 and log_probs.shape[2] == len(speech.SYMBOLS)


@pytest.mark.parametrize("ref, hyp, ops", [
    ([1, 2, 3], [1, 2, 3], []),
    ([1, 2, 3], [1, 3], [("del", 2, -1)]),
    ([1, 2], [1, 2, 4], [("ins", -1, 4)]),
    ([1, 2], [1, 5], [("sub", 2, 5)]),
    ([], [3], [("ins", -1, 3)]),
])
def test_edit_operations(ref, hyp, ops):
    assert speech.edit_operations(ref, hyp) == ops


def test_error_table_counts_by_kind():
    table = speech.error_table([[1, 2, 3], [7]], [[1, 3], [6, 7]])
    assert table.splitlines()[0] == "substitutions: 0, deletions: 1, insertions: 1"
    assert "e missed" in table and "m inserted" in table


# --- the WAV loader, on tiny files written here ----------------------------------------------


def _write(path, samples, width=2, channels=1, rate=8000):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples).tobytes())


def test_read_wav_reads_8_16_32_bit_and_averages_channels(tmp_path):
    _write(tmp_path / "a.wav", np.array([0, 16384, -32768], dtype="<i2"))
    _write(tmp_path / "b.wav", np.array([128, 192, 0], dtype=np.uint8), width=1)
    _write(tmp_path / "c.wav", np.array([0, 2**30], dtype="<i4"), width=4, rate=16000)
    _write(tmp_path / "d.wav", np.array([16384, 0, -16384, -16384], dtype="<i2"), channels=2)
    x, rate = speech.read_wav(tmp_path / "a.wav")
    assert rate == 8000 and x.dtype == np.float32 and np.allclose(x, [0, 0.5, -1])
    assert np.allclose(speech.read_wav(tmp_path / "b.wav")[0], [0, 0.5, -1])
    x, rate = speech.read_wav(tmp_path / "c.wav")
    assert rate == 16000 and np.allclose(x, [0, 0.5])
    assert np.allclose(speech.read_wav(tmp_path / "d.wav")[0], [0.25, -0.5])


def test_write_then_read_round_trips(tmp_path):
    utt = speech.make_utterances(1, seed=0)[0]
    speech.write_wav(tmp_path / "u.wav", utt.wave)
    x, rate = speech.read_wav(tmp_path / "u.wav")
    assert rate == speech.SAMPLE_RATE and np.abs(x - utt.wave).max() < 1e-4


def test_load_wav_folder_reads_the_free_spoken_digit_layout(tmp_path):
    for name in ["7_jackson_32.wav", "7_jackson_4.wav", "0_theo_0.wav", "3_nicolas_12.wav"]:
        _write(tmp_path / name, np.zeros(80, dtype="<i2"))
    _write(tmp_path / "notes.wav", np.zeros(8, dtype="<i2"))  # not in the layout: skipped
    (tmp_path / "README.md").write_text("not a recording")
    recs = speech.load_wav_folder(tmp_path)
    assert [(r.label, r.speaker, r.index) for r in recs] == [
        ("0", "theo", 0), ("3", "nicolas", 12), ("7", "jackson", 4), ("7", "jackson", 32)]
    assert all(r.rate == 8000 and len(r.wave) == 80 for r in recs)


def test_load_wav_folder_without_recordings_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="label_speaker_index"):
        speech.load_wav_folder(tmp_path)
