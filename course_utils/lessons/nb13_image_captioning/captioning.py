"""Notebook 13's data and plumbing: generated scenes of coloured shapes, their captions, the
captioning models that the notebook trains, and the measurements (exact match, BLEU).

A scene is a 32 x 32 RGB image divided into a 2 x 2 grid of cells; one to three shapes sit in
distinct cells, each with a kind (circle, square, triangle), a colour (red, green, blue,
yellow), a size (small, large) and a jittered position inside its cell. Its caption comes
from a small grammar: the shapes in reading order (top row first, left to right), each
"a <size> <colour> <kind>", joined by how each one stands to the next ("above" when the next
is in the lower row, "left of" when it is in the same row):

    "a small red circle left of a large blue square above a small yellow triangle"

Every scene with a held-out combination (by default a green triangle) is kept out of
training, so that one can measure whether a model composes words it learned separately.

Letters: N batch, T caption steps, V vocabulary, C = 3 channels, P = 32 pixels a side,
L = 16 feature-grid positions (4 x 4), F feature size, H hidden size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

KINDS = ("circle", "square", "triangle")
COLOURS = {"red": (0.9, 0.15, 0.1), "green": (0.1, 0.8, 0.2), "blue": (0.15, 0.3, 0.95),
           "yellow": (0.95, 0.85, 0.1)}
SIZES = {"small": 3.0, "large": 6.0}  # half the width of a shape, in pixels
P, CELL = 32, 16  # image side, cell side (a 2 x 2 grid of cells)
SPECIALS = ("<pad>", "<start>", "<end>")
WORDS = ("a", *SIZES, *COLOURS, *KINDS, "above", "left", "of")


@dataclass(frozen=True)
class Shape:
    """One shape of a scene: its kind, colour and size, its cell of the 2 x 2 grid, and its offset in it."""

    kind: str
    colour: str
    size: str
    row: int  # cell row, 0 (top) or 1
    col: int  # cell column, 0 (left) or 1
    dy: float = 0.0  # offset of the centre from the cell's centre, in pixels
    dx: float = 0.0


def caption(shapes: list[Shape]) -> str:
    """The grammar's caption of a scene (its shapes in any order)."""
    ordered = sorted(shapes, key=lambda s: (s.row, s.col))
    words = []
    for i, s in enumerate(ordered):
        if i:
            words.append("above" if s.row > ordered[i - 1].row else "left of")
        words.append(f"a {s.size} {s.colour} {s.kind}")
    return " ".join(words)


def render(shapes: list[Shape], rng: np.random.Generator | None = None, noise: float = 0.05) -> np.ndarray:
    """The image of a scene: float32 (C, P, P) in [0, 1], dark background, pixel noise from rng."""
    yy, xx = np.mgrid[0:P, 0:P] + 0.5
    image = np.zeros((3, P, P), dtype=np.float32)
    for s in shapes:
        cy, cx, r = s.row * CELL + CELL / 2 + s.dy, s.col * CELL + CELL / 2 + s.dx, SIZES[s.size]
        if s.kind == "circle":
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
        elif s.kind == "square":
            inside = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
        else:  # a triangle pointing up: its width grows from the apex down to the base
            top, bottom = cy - r, cy + r
            inside = (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= (yy - top) / 2 * 1.1)
        image[:, inside] = np.array(COLOURS[s.colour], dtype=np.float32)[:, None]
    if rng is not None and noise:
        image += rng.normal(0.0, noise, image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


def random_scene(rng: np.random.Generator) -> list[Shape]:
    """One to three shapes in distinct cells, every attribute drawn uniformly."""
    n = int(rng.integers(1, 4))
    cells = rng.permutation(4)[:n]
    shapes = []
    for c in cells:
        size = str(rng.choice(list(SIZES)))
        jitter = 1.0  # a pixel either way: the shape stays in its cell
        shapes.append(Shape(str(rng.choice(KINDS)), str(rng.choice(list(COLOURS))), size, int(c) // 2, int(c) % 2,
                            float(rng.uniform(-jitter, jitter)), float(rng.uniform(-jitter, jitter))))
    return shapes


class Vocab:
    """Word ids: 0 <pad>, 1 <start>, 2 <end>, then the grammar's words."""

    def __init__(self, words=WORDS):
        self.tokens = list(SPECIALS) + list(words)
        self.ids = {w: i for i, w in enumerate(self.tokens)}
        self.pad_id, self.start_id, self.end_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """The ids of the words of ``text`` (no <start> or <end> added)."""
        return [self.ids[w] for w in text.split()]

    def decode(self, ids) -> str:
        """The words of a sequence of ids, the special tokens left out."""
        return " ".join(self.tokens[int(i)] for i in ids if int(i) > 2)


class CaptionData:
    """Training, held-out and held-out-combination scenes, rendered once.

    Attributes per split ("train", "test", "combo"): images[split] float32 tensor (N, C, P, P),
    grids[split] the fixed CNN's feature grids (N, L, F0) (what the models read),
    captions[split] list of N strings, scenes[split] list of N lists of Shape. "test" holds new
    scenes without the held-out combination; "combo" holds scenes with at least one shape of
    the held-out (colour, kind), none of which is in "train".
    """

    def __init__(self, n_train: int = 4000, n_test: int = 400, n_combo: int = 400, seed: int = 0,
                 heldout: tuple[str, str] = ("green", "triangle")):
        rng = np.random.default_rng(seed)
        self.vocab, self.heldout = Vocab(), heldout
        want = {"train": n_train, "test": n_test, "combo": n_combo}
        self.scenes = {k: [] for k in want}
        while any(len(self.scenes[k]) < want[k] for k in want):
            scene = random_scene(rng)
            split = "combo" if any((s.colour, s.kind) == heldout for s in scene) else (
                "train" if len(self.scenes["train"]) < n_train else "test")
            if len(self.scenes[split]) < want[split]:
                self.scenes[split].append(scene)
        self.images = {k: torch.from_numpy(np.stack([render(s, rng) for s in v])) for k, v in self.scenes.items()}
        self.grids = {k: fixed_cnn_features(v) for k, v in self.images.items()}
        self.captions = {k: [caption(s) for s in v] for k, v in self.scenes.items()}

    def tokens(self, texts: list[str]) -> torch.Tensor:
        """int64 (N, T + 1): <start> words <end>, then <pad> up to the longest caption."""
        rows = [[self.vocab.start_id, *self.vocab.encode(t), self.vocab.end_id] for t in texts]
        out = torch.full((len(rows), max(map(len, rows))), self.vocab.pad_id, dtype=torch.long)
        for n, r in enumerate(rows):
            out[n, :len(r)] = torch.tensor(r)
        return out

    def batch(self, idx, split: str = "train"):
        """Feature grids (N, L, F0) and caption tokens (N, T + 1) of the scenes idx of a split."""
        idx = np.asarray(idx)
        return self.grids[split][idx], self.tokens([self.captions[split][i] for i in idx])


# --- models ------------------------------------------------------------------------------------


def fixed_cnn_features(images: torch.Tensor, channels: int = 64, seed: int = 1234, batch_size: int = 500) -> torch.Tensor:
    """A fixed, random two-layer CNN (never trained): images (N, C, P, P) -> a feature grid (N, L, F0),
    L = 4 x 4 positions (each one pools an 8 x 8 patch of the image), F0 = channels, scaled to unit
    standard deviation. Random convolutions with ReLU and max-pooling keep colour and local shape, and
    computing them once keeps training cheap: only the captioning models' own layers are trained."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn((32, 3, 3, 3), generator=g) / 27 ** 0.5
    w2 = torch.randn((channels, 32, 3, 3), generator=g) / 288 ** 0.5
    out = []
    with torch.no_grad():
        for lo in range(0, len(images), batch_size):
            y = torch.relu(nn.functional.conv2d(images[lo:lo + batch_size] - 0.2, w1, padding=1))
            y = torch.relu(nn.functional.conv2d(nn.functional.max_pool2d(y, 2), w2, padding=1))
            out.append(nn.functional.max_pool2d(y, 4).flatten(2).transpose(1, 2))  # (N, 16, F0)
    return torch.cat(out) / 0.2


class GlobalEncoder(nn.Module):
    """The image as one vector: grid (N, L, F0) -> features (N, F) = tanh(LayerNorm(Linear(the L * F0 numbers))).

    The layer normalisation keeps every feature on the same scale, whatever the image: without it
    (a linear layer and a tanh alone) the show-and-tell model got stuck on some seeds, writing the
    same grammatical caption for every image (its loss stayed at the grammar's, about 0.74 nats)."""

    def __init__(self, grid_size: int = 16, grid_features: int = 64, feature_size: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(grid_size * grid_features, feature_size),
                                 nn.LayerNorm(feature_size), nn.Tanh())

    def forward(self, grid):
        """grid (N, L, F0) -> features (N, F)."""
        return self.net(grid)


class GridEncoder(nn.Module):
    """The image as a grid of vectors: grid (N, L, F0) -> grid (N, L, F) = relu(Linear per position),
    and their mean (N, F)."""

    def __init__(self, grid_features: int = 64, feature_size: int = 64):
        super().__init__()
        self.proj = nn.Linear(grid_features, feature_size)

    def forward(self, grid):
        """grid (N, L, F0) -> grid (N, L, F) and its mean over the positions (N, F)."""
        grid = torch.relu(self.proj(grid))
        return grid, grid.mean(dim=1)


class Captioner(nn.Module):
    """Show and tell: the image's global features set the initial state of a GRU language model.

    Layers (the exercises use them by name): encoder (image grids (N, L, F0) -> features (N, F)),
    init_state (Linear F -> H), embedding (V, E), rnn (GRU E -> H, batch_first), out (Linear H -> V).
    """

    def __init__(self, vocab_size: int, feature_size: int = 64, embed_size: int = 32, hidden_size: int = 128):
        super().__init__()
        self.encoder = GlobalEncoder(feature_size=feature_size)
        self.init_state = nn.Linear(feature_size, hidden_size)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, vocab_size)


class AttentionCaptioner(nn.Module):
    """Show, attend and tell: at every step the decoder attends over the image's feature grid.

    attention: a module with forward(grid (N, L, F), hidden (N, H)) -> context (N, F), weights (N, L)
    (exercise 13.3). With s the state before step t: context, w = attention(grid, s);
    s = GRUCell([embedding(y_{t-1}); context], s); logits_t = out([s; context]); s_0 = tanh(init_state(mean grid)).
    """

    def __init__(self, vocab_size: int, attention: nn.Module, feature_size: int = 64, embed_size: int = 32,
                 hidden_size: int = 128):
        super().__init__()
        self.encoder = GridEncoder(feature_size=feature_size)
        self.attention = attention
        self.init_state = nn.Linear(feature_size, hidden_size)
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRUCell(embed_size + feature_size, hidden_size)
        self.out = nn.Linear(hidden_size + feature_size, vocab_size)

    def start(self, images):
        """The feature grid (N, L, F) and the initial state (N, H) of a batch of image grids (N, L, F0)."""
        grid, mean = self.encoder(images)
        return grid, torch.tanh(self.init_state(mean))

    def step(self, token, grid, state):
        """One step: token (N,) -> logits (N, V), state (N, H), weights (N, L)."""
        context, weights = self.attention(grid, state)
        state = self.rnn(torch.cat([self.embedding(token), context], dim=-1), state)
        return self.out(torch.cat([state, context], dim=-1)), state, weights

    def forward(self, images, tokens):
        """Teacher forcing: tokens (N, T) read -> logits (N, T, V), weights (N, T, L)."""
        grid, state = self.start(images)
        logits, weights = [], []
        for t in range(tokens.shape[1]):
            step_logits, state, w = self.step(tokens[:, t], grid, state)
            logits.append(step_logits)
            weights.append(w)
        return torch.stack(logits, dim=1), torch.stack(weights, dim=1)


def attention_caption_loss(model: AttentionCaptioner, images, captions, pad_id: int):
    """The same loss as exercise 13.1 for the attention model: mean cross-entropy of the next word,
    teacher forcing, padding left out. captions int (N, T + 1)."""
    logits, _ = model(images, captions[:, :-1])
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), captions[:, 1:].reshape(-1),
                                       ignore_index=pad_id)


@torch.no_grad()
def attention_sample(model: AttentionCaptioner, images, start_id: int, end_id: int, max_len: int):
    """Greedy captions of the attention model: N lists of word ids (without <start>, <end>), and
    for each the attention weights of its steps, float (len + 1, L) (the last row chose <end>)."""
    grid, state = model.start(images)
    token = torch.full((len(images),), start_id, dtype=torch.long)
    ids, weights, done = [[] for _ in images], [[] for _ in images], torch.zeros(len(images), dtype=torch.bool)
    for _ in range(max_len):
        logits, state, w = model.step(token, grid, state)
        token = logits.argmax(dim=-1)
        for n in (~done).nonzero()[:, 0].tolist():
            weights[n].append(w[n].numpy())
            if int(token[n]) != end_id:
                ids[n].append(int(token[n]))
        done |= token == end_id
        if done.all():
            break
    return ids, [np.stack(w) for w in weights]


def train_captioner(model: nn.Module, loss_fn, data: CaptionData, steps: int = 600, batch_size: int = 64,
                    lr: float = 3e-3, seed: int = 0, max_norm: float = 1.0) -> list[float]:
    """Adam on loss_fn(model, images, captions, pad_id) for `steps` random training batches, with
    gradients clipped to max_norm and a learning rate falling linearly to 0. Returns the losses."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1 - k / steps)
    losses = []
    model.train()
    for _ in range(steps):
        images, captions = data.batch(rng.integers(0, len(data.captions["train"]), size=batch_size))
        loss = loss_fn(model, images, captions, data.vocab.pad_id)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    return losses


def predict(sample_fn, model, data: CaptionData, split: str, max_len: int = 20, batch_size: int = 250) -> list[str]:
    """Captions of every image of a split, as strings: sample_fn(model, images, start_id, end_id,
    max_len) -> N lists of word ids."""
    texts = []
    for lo in range(0, len(data.captions[split]), batch_size):
        images = data.grids[split][lo:lo + batch_size]
        ids = sample_fn(model, images, data.vocab.start_id, data.vocab.end_id, max_len)
        texts += [data.vocab.decode(r) for r in ids]
    return texts


def exact_match(predictions: list[str], references: list[str]) -> float:
    """The fraction of captions that are right word for word."""
    return float(np.mean([p == r for p, r in zip(predictions, references)]))


def bleu(predictions: list[str], references: list[str]) -> float:
    """Corpus BLEU (0-100) with sacrebleu, one reference per caption."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


def attribute_accuracy(predictions: list[str], scenes: list[list[Shape]], colour: str, kind: str) -> dict:
    """For every shape of the given colour and kind, whether the predicted caption names it with the
    right words, and, when it does not, what it calls it: {"right": fraction, "said": {phrase: count}}.
    The phrase is the "<colour> <kind>" at that shape's place in the prediction (or "missing")."""
    said, right, total = {}, 0, 0
    for text, scene in zip(predictions, scenes):
        ordered = sorted(scene, key=lambda s: (s.row, s.col))
        phrases = _shape_phrases(text)
        for i, s in enumerate(ordered):
            if (s.colour, s.kind) != (colour, kind):
                continue
            total += 1
            got = phrases[i] if i < len(phrases) else "missing"
            right += got == f"{colour} {kind}"
            said[got] = said.get(got, 0) + 1
    return {"right": right / max(total, 1), "said": dict(sorted(said.items(), key=lambda kv: -kv[1]))}


def _shape_phrases(text: str) -> list[str]:
    """The "<colour> <kind>" of each shape that a caption names, in order."""
    words = text.split()
    return [f"{words[i + 2]} {words[i + 3]}" for i in range(len(words) - 3) if words[i] == "a"]


def plot_attention(image, words: list[str], weights, title: str = ""):
    """The image, then one panel per word with the attention weights (L = 4 x 4) drawn over it."""
    import matplotlib.pyplot as plt

    n = len(words)
    fig, axes = plt.subplots(1, n + 1, figsize=(1.6 * (n + 1), 2.0))
    img = np.asarray(image).transpose(1, 2, 0)
    axes[0].imshow(img)
    axes[0].set_title("image", fontsize=9)
    side = int(round(np.sqrt(np.asarray(weights).shape[1])))
    for ax, word, w in zip(axes[1:], words, weights):
        ax.imshow(img)
        ax.imshow(np.asarray(w).reshape(side, side), cmap="gray", alpha=0.6, vmin=0,
                  extent=(0, P, P, 0), interpolation="bilinear")
        ax.set_title(word, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "where the decoder looks for each word (bright: high weight)", fontsize=10)
    fig.tight_layout()
    return fig
