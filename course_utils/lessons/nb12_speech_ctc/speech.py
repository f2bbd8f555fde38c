"""Plumbing of notebook 12 (speech recognition with CTC): synthetic utterances, log-spectrogram
features, a loader for a folder of labelled WAV files, batches, training and error analysis.

The lessons (the CTC loss, greedy decoding, the acoustic model, the error rate) are the notebook's
exercises; what is here only makes data and measures the learner's model, whatever its insides,
as long as it follows the exercise's signature:

    model(features (N, T, F), lengths (N,)) -> log_probs (N, T, C)

Shapes: N batch, T frames, F frequency bins, C classes (the blank, id 0, and the phonemes),
S label length; L samples of a waveform.

The utterances are a stand-in for recorded speech, made with NumPy by a source-filter model:
vowels and a nasal are a pulse train at a pitch (the voice) shaped by resonances at a speaker's
formant frequencies; "s" and "f" are shaped noise; silences separate some sounds. Durations,
speaking rate, pitch, the speaker's vocal tract length (formants scaled together) and the
background noise are random.
"""
from __future__ import annotations

import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

SAMPLE_RATE = 8000  # Hz, the rate of telephone speech and of the Free Spoken Digit Dataset
FRAME, HOP = 128, 80  # 16 ms windows every 10 ms: 65 frequency bins of 62.5 Hz

# The phonemes: id 0 is CTC's blank, ids 1..8 are these symbols.
PHONEMES = ["a", "e", "i", "o", "u", "m", "s", "f"]
BLANK = 0
SYMBOLS = ["_"] + PHONEMES  # "_" prints the blank

# Formants (Hz) of the vowels and the nasal for an average speaker: (F1, F2, F3).
FORMANTS = {"a": (750, 1250, 2600), "e": (480, 1850, 2650), "i": (300, 2300, 3000),
            "o": (520, 950, 2500), "u": (320, 820, 2400), "m": (260, 1100, 2300)}
# Noise bands (Hz) of the fricatives: "s" high and strong, "f" broad and weak.
NOISE_BANDS = {"s": (2700, 3900, 0.9), "f": (700, 3900, 0.35)}


@dataclass
class Utterance:
    """One utterance: its waveform (L,) float32 in [-1, 1], its phoneme ids (S,) (1..8), and where
    each phoneme lies, as (start, end) sample indices (S, 2), which CTC never sees."""

    wave: np.ndarray
    labels: np.ndarray
    segments: np.ndarray

    @property
    def text(self) -> str:
        """The phonemes as a string of symbols, e.g. "ams" (see ``to_text``)."""
        return to_text(self.labels)


def to_text(ids: Sequence[int]) -> str:
    """Phoneme ids -> a string of symbols, e.g. [1, 6, 7] -> "ams"."""
    return "".join(SYMBOLS[int(i)] for i in ids)


def random_labels(rng: np.random.Generator, min_len: int = 3, max_len: int = 7) -> list[int]:
    """A random phoneme sequence (ids 1..8) of min_len..max_len phonemes; repeats happen."""
    return [int(i) for i in rng.integers(1, len(PHONEMES) + 1, size=rng.integers(min_len, max_len + 1))]


def _envelope(freqs: np.ndarray, formants: Sequence[float], bandwidth: float) -> np.ndarray:
    """The gain of a vocal tract with resonances at ``formants``, at each frequency."""
    gain = sum(1.0 / (1.0 + ((freqs - f) / (bandwidth * (1 + k * 0.5))) ** 2) / (1 + k)
               for k, f in enumerate(formants))
    return gain * (1.0 + freqs / 500.0) ** -0.5  # the glottal source's fall with frequency


def _shape(signal: np.ndarray, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Filter a signal by a frequency response ``gain(freqs)``, through the FFT."""
    n = len(signal)
    n_fft = 1 << max(int(n - 1).bit_length(), 1)  # a power of 2: the FFT is fastest there
    spectrum = np.fft.rfft(signal, n_fft)
    return np.fft.irfft(spectrum * gain(np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)), n_fft)[:n]


def _ramp(n: int, edge: int) -> np.ndarray:
    """An amplitude envelope rising and falling over ``edge`` samples at each end (no clicks)."""
    env = np.ones(n)
    edge = min(edge, n // 2)
    if edge:
        up = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
        env[:edge], env[n - edge:] = up, up[::-1]
    return env


def synthesize(labels: Sequence[int], rng: np.random.Generator) -> Utterance:
    """An utterance of the phonemes ``labels`` (ids 1..8) by a random speaker.

    The speaker draws a pitch (90-230 Hz), a vocal tract scale (0.85-1.18, all formants together),
    a speaking rate (0.75-1.3) and a loudness; each phoneme a duration (60-160 ms at rate 1);
    30 % of the gaps between phonemes, and every gap between two equal phonemes, are silences of
    30-90 ms. Background noise at 15-30 dB below the speech.
    """
    pitch, scale = rng.uniform(90, 230), rng.uniform(0.85, 1.18)
    rate, loudness = rng.uniform(0.75, 1.3), rng.uniform(0.5, 0.9)
    ms = SAMPLE_RATE // 1000
    pieces, segments, pos = [np.zeros(int(rng.uniform(40, 150) * ms))], [], 0
    pos = len(pieces[0])
    for k, label in enumerate(labels):
        if k and (labels[k - 1] == label or rng.random() < 0.3):
            gap = np.zeros(int(rng.uniform(30, 90) * ms / rate))
            pieces.append(gap)
            pos += len(gap)
        symbol = PHONEMES[label - 1]
        n = int(rng.uniform(60, 160) * ms / rate)
        if symbol in FORMANTS:
            f0 = pitch * (1 + 0.05 * np.sin(np.linspace(0, rng.uniform(1, 3), n)))  # intonation
            phase = np.cumsum(f0 / SAMPLE_RATE)
            pulses = np.diff(np.floor(phase), prepend=0.0)  # one pulse per pitch period
            formants = [f * scale * rng.uniform(0.97, 1.03) for f in FORMANTS[symbol]]
            sound = _shape(pulses, lambda fr: _envelope(fr, formants, 90 * scale))
            sound *= 0.6 if symbol == "m" else 1.0
        else:
            lo, hi, amp = NOISE_BANDS[symbol]
            noise = rng.standard_normal(n)
            sound = amp * _shape(noise, lambda fr: 1 / (1 + np.exp(-(fr - lo) / 80)) / (1 + np.exp((fr - hi) / 80)))
            sound *= 0.25
        sound = sound / (np.abs(sound).max() + 1e-9) * rng.uniform(0.7, 1.0)
        pieces.append(sound * _ramp(n, 10 * ms))
        segments.append((pos, pos + n))
        pos += n
    pieces.append(np.zeros(int(rng.uniform(40, 150) * ms)))
    speech = np.concatenate(pieces) * loudness
    noise_db = rng.uniform(15, 30)
    rms = np.sqrt(np.mean(speech ** 2))
    signal = speech + rng.standard_normal(len(speech)) * rms * 10 ** (-noise_db / 20)
    signal = np.clip(signal, -1, 1).astype(np.float32)
    return Utterance(signal, np.array(labels, dtype=np.int64), np.array(segments, dtype=np.int64).reshape(-1, 2))


def make_utterances(n: int, seed: int) -> list[Utterance]:
    """``n`` utterances of 3-7 random phonemes, each by its own random speaker."""
    rng = np.random.default_rng(seed)
    return [synthesize(random_labels(rng), rng) for _ in range(n)]


def log_spectrogram(wave_: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    """Log power spectrogram: (T, F) with T = 1 + (L - frame) // hop frames and F = frame // 2 + 1 bins.

    Each frame of ``frame`` samples, every ``hop`` samples, is multiplied by a Hann window; its
    power spectrum |rfft|^2 is taken in decibels, 10 log10(power + 1e-10).
    """
    wave_ = np.asarray(wave_, dtype=np.float64)
    T = 1 + (len(wave_) - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(wave_, frame)[::hop][:T]
    power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
    return (10 * np.log10(power + 1e-10)).astype(np.float32)


@dataclass
class SpeechData:
    """Features and labels of a set of utterances, ready for a model.

    features: list of (T_i, F) float32 arrays, standardised with the training set's mean and
    standard deviation per frequency bin; labels: list of (S_i,) int64 arrays of phoneme ids.
    """

    features: list
    labels: list
    utterances: list

    def __len__(self) -> int:
        return len(self.labels)


def featurize(utterances: Sequence[Utterance], mean: np.ndarray | None = None, std: np.ndarray | None = None
              ) -> tuple[SpeechData, np.ndarray, np.ndarray]:
    """Log spectrograms of ``utterances``, standardised per bin with ``mean`` and ``std`` (F,)
    (computed from these utterances when not given: pass the training set's to the others)."""
    specs = [log_spectrogram(u.wave) for u in utterances]
    if mean is None:
        stacked = np.concatenate(specs)
        mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
    feats = [((s - mean) / std).astype(np.float32) for s in specs]
    return SpeechData(feats, [u.labels for u in utterances], list(utterances)), mean, std


def batch(data: SpeechData, index: Sequence[int]):
    """A padded batch of the utterances ``index``, as tensors:
    features (N, T, F) float32 (zeros after each utterance's end), lengths (N,) int64,
    targets (N, S) int64 (padded with 0, the blank, which CTC never reads past target_lengths),
    target_lengths (N,) int64."""
    import torch

    feats = [data.features[i] for i in index]
    labels = [data.labels[i] for i in index]
    T, S = max(len(f) for f in feats), max(len(y) for y in labels)
    x = np.zeros((len(index), T, feats[0].shape[1]), dtype=np.float32)
    y = np.zeros((len(index), S), dtype=np.int64)
    for n, (f, lab) in enumerate(zip(feats, labels)):
        x[n, :len(f)], y[n, :len(lab)] = f, lab
    return (torch.from_numpy(x), torch.tensor([len(f) for f in feats]), torch.from_numpy(y),
            torch.tensor([len(lab) for lab in labels]))


def length_batches(data: SpeechData, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The utterances in batches of similar length (less padding, faster), in a random order."""
    order = np.argsort([len(f) + rng.uniform(0, 8) for f in data.features])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train(model, data: SpeechData, steps: int = 200, seconds: float = 60.0, batch_size: int = 32,
          lr: float = 3e-3, max_norm: float = 1.0, seed: int = 0) -> dict:
    """Train ``model`` with ``nn.CTCLoss`` and Adam for ``steps`` steps, or until this process has
    used ``seconds`` of CPU time, whichever comes first. (CPU time, not the clock: on a quiet machine
    with one thread they are the same, and on a busy one the clock counts other programs' turns too.)

    Returns {"losses": the loss of every step, "seconds": the wall-clock time spent, "cpu_seconds":
    the CPU time of this process meanwhile, "steps": the number of steps taken}.
    """
    import torch
    from torch import nn

    ctc = nn.CTCLoss(blank=BLANK, zero_infinity=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng, losses = np.random.default_rng(seed), []
    start, cpu = time.perf_counter(), time.process_time()
    model.train()
    while len(losses) < steps and time.process_time() - cpu < seconds:
        for index in length_batches(data, batch_size, rng):
            x, lengths, y, y_lengths = batch(data, index)
            log_probs = model(x, lengths)  # (N, T, C)
            loss = ctc(log_probs.transpose(0, 1), y, lengths, y_lengths)  # CTCLoss wants (T, N, C)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            losses.append(loss.item())
            if len(losses) >= steps or time.process_time() - cpu >= seconds:
                break
    model.eval()
    return {"losses": losses, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "steps": len(losses)}


def predict(model, data: SpeechData, decode: Callable, batch_size: int = 64) -> tuple[list, np.ndarray]:
    """Decode every utterance: (hypotheses as lists of ids, log_probs of the first batch as a
    (N, T, C) array, for plotting). ``decode(log_probs (N, T, C) ndarray, lengths (N,) ndarray)``."""
    import torch

    hyps, first = [], None
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            x, lengths, _, _ = batch(data, range(i, min(i + batch_size, len(data))))
            log_probs = model(x, lengths).numpy()
            first = log_probs if first is None else first
            hyps += [list(map(int, h)) for h in decode(log_probs, lengths.numpy())]
    return hyps, first


def edit_operations(ref: Sequence[int], hyp: Sequence[int]) -> list[tuple[str, int, int]]:
    """One cheapest way to turn ``ref`` into ``hyp``: a list of ("sub", r, h), ("del", r, -1) and
    ("ins", -1, h), the labels concerned (matches are left out)."""
    R, H = len(ref), len(hyp)
    d = np.zeros((R + 1, H + 1), dtype=int)
    d[:, 0], d[0, :] = np.arange(R + 1), np.arange(H + 1)
    for i in range(1, R + 1):
        for j in range(1, H + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    ops, i, j = [], R, H
    while i or j:
        if i and j and d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] != hyp[j - 1]:
                ops.append(("sub", int(ref[i - 1]), int(hyp[j - 1])))
            i, j = i - 1, j - 1
        elif i and d[i, j] == d[i - 1, j] + 1:
            ops.append(("del", int(ref[i - 1]), -1))
            i -= 1
        else:
            ops.append(("ins", -1, int(hyp[j - 1])))
            j -= 1
    return ops[::-1]


def error_table(references: Sequence[Sequence[int]], hypotheses: Sequence[Sequence[int]]) -> str:
    """The errors of a test set by kind and sound, most frequent first, as text."""
    from collections import Counter

    counts = Counter()
    for r, h in zip(references, hypotheses):
        for kind, a, b in edit_operations(r, h):
            counts[{"sub": f"{SYMBOLS[a]} heard as {SYMBOLS[b]}", "del": f"{SYMBOLS[a]} missed",
                    "ins": f"{SYMBOLS[b]} inserted"}[kind]] += 1
    totals = Counter()
    for key, n in counts.items():
        totals["substitutions" if "heard as" in key else "deletions" if "missed" in key else "insertions"] += n
    lines = [", ".join(f"{k}: {totals[k]}" for k in ("substitutions", "deletions", "insertions"))]
    lines += [f"  {n:3d} x {key}" for key, n in counts.most_common(8)]
    return "\n".join(lines)


# --- a real dataset: a folder of labelled WAV files ------------------------------------------


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A WAV file as (wave (L,) float32 in [-1, 1], sample rate), with the standard library's ``wave``.

    8-, 16- and 32-bit integer PCM; several channels are averaged into one."""
    with wave.open(str(path), "rb") as f:
        width, channels, rate, n = f.getsampwidth(), f.getnchannels(), f.getframerate(), f.getnframes()
        raw = f.readframes(n)
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        dtype = np.int16 if width == 2 else np.int32
        x = np.frombuffer(raw, dtype=dtype).astype(np.float32) / float(np.iinfo(dtype).max + 1)
    else:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported (8, 16 or 32-bit PCM only)")
    return x.reshape(-1, channels).mean(axis=1), rate


def write_wav(path: str | Path, wave_: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """Save a mono waveform in [-1, 1] as a 16-bit PCM WAV file."""
    pcm = (np.clip(np.asarray(wave_, dtype=np.float64), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())


@dataclass
class Recording:
    """One file of a labelled recording folder: its waveform, sample rate, label, speaker, index."""

    wave: np.ndarray
    rate: int
    label: str
    speaker: str
    index: int
    path: Path


def load_wav_folder(folder: str | Path) -> list[Recording]:
    """Read a folder of WAV files named ``{label}_{speaker}_{index}.wav``, the layout of the Free
    Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset, its ``recordings/``
    folder: ``7_jackson_32.wav`` is speaker jackson's 33rd recording of "seven", 8 kHz mono).

    Sorted by label, speaker and index. Files whose names do not follow the layout are skipped;
    a folder without any such file raises FileNotFoundError.
    """
    folder = Path(folder)
    recordings = []
    for path in sorted(folder.glob("*.wav")):
        parts = path.stem.rsplit("_", 2)
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        x, rate = read_wav(path)
        recordings.append(Recording(x, rate, parts[0], parts[1], int(parts[2]), path))
    if not recordings:
        raise FileNotFoundError(f"no WAV files named label_speaker_index.wav in {folder}")
    return sorted(recordings, key=lambda r: (r.label, r.speaker, r.index))


# --- figures ---------------------------------------------------------------------------------


def plot_spectrogram(ax, spec: np.ndarray, utt: Utterance | None = None, title: str = ""):
    """A (T, F) log spectrogram as an image, time across; the phonemes' true positions on top."""
    T, F = spec.shape
    hz = SAMPLE_RATE / 2
    im = ax.imshow(spec.T, origin="lower", aspect="auto", cmap="magma",
                   extent=(0, T * HOP / SAMPLE_RATE, 0, hz))
    if utt is not None:
        for (s, e), label in zip(utt.segments, utt.labels):
            ax.text((s + e) / 2 / SAMPLE_RATE, hz * 0.93, SYMBOLS[label], color="white", ha="center",
                    fontsize=12, weight="bold")
            ax.axvline(s / SAMPLE_RATE, color="white", lw=0.5, alpha=0.5)
            ax.axvline(e / SAMPLE_RATE, color="white", lw=0.5, alpha=0.5, ls=":")
    ax.set(xlabel="time (s)", ylabel="frequency (Hz)", title=title)
    return im


def plot_posteriors(ax, log_probs: np.ndarray, length: int, title: str = ""):
    """Per-frame probabilities (T, C) over time: the blank as a grey area, each phoneme a line."""
    probs = np.exp(log_probs[:length])
    t = np.arange(length) * HOP / SAMPLE_RATE
    ax.fill_between(t, probs[:, BLANK], color="0.8", label="blank")
    for c in range(1, probs.shape[1]):
        if probs[:, c].max() > 0.2:
            peak = int(probs[:, c].argmax())
            line, = ax.plot(t, probs[:, c], lw=1.5, label=SYMBOLS[c])
            ax.text(t[peak], min(probs[peak, c] + 0.04, 1.05), SYMBOLS[c], color=line.get_color(), ha="center",
                    weight="bold")
    ax.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1.12), title=title)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
