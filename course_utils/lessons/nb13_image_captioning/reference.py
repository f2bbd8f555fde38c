"""References of notebook 13 (image captioning): the loss of a decoder whose initial state comes
from the image, greedy sampling of a caption, and additive attention over an image's feature grid.

Letters: N batch, T caption steps, V vocabulary, L grid positions, F feature size, H hidden size,
A attention size. The model of 13.1 and 13.2 has the layers of ``course_utils.lessons.nb13_image_captioning.captioning.Captioner``:
encoder (images -> features (N, F)), init_state (F -> H), embedding, rnn (GRU, batch_first), out (H -> V).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def caption_loss(model, images, captions, pad_id):
    """Mean cross-entropy of the next word, the decoder starting from the image and reading the true words.

    images (N, C, P, P); captions int (N, T + 1): <start> w_1 .. w_n <end>, then pad_id.
    h_0 = tanh(init_state(encoder(images))); returns a scalar tensor: the mean of -log p(next word)
    over the positions whose target is not pad_id.
    """
    h0 = torch.tanh(model.init_state(model.encoder(images)))  # (N, H): the image sets the initial state
    states, _ = model.rnn(model.embedding(captions[:, :-1]), h0[None])  # reads <start> w_1 .. w_n
    logits = model.out(states)  # (N, T, V): scores of w_1 .. w_n <end>
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), captions[:, 1:].reshape(-1), ignore_index=pad_id)


@torch.no_grad()
def sample_caption(model, images, start_id, end_id, max_len):
    """Greedy captions: N lists of word ids (without <start> and <end>), at most max_len each."""
    N = images.shape[0]
    hidden = torch.tanh(model.init_state(model.encoder(images)))[None]  # (1, N, H)
    tokens = torch.full((N, 1), start_id, dtype=torch.long)
    captions, done = [[] for _ in range(N)], torch.zeros(N, dtype=torch.bool)
    for _ in range(max_len):
        states, hidden = model.rnn(model.embedding(tokens), hidden)  # one step
        tokens = model.out(states).argmax(dim=-1)  # (N, 1)
        done |= tokens[:, 0] == end_id
        for n in (~done).nonzero()[:, 0].tolist():
            captions[n].append(int(tokens[n, 0]))
        if done.all():
            break
    return captions


class GridAttention(nn.Module):
    """Additive attention of a decoder state over an image's feature grid (show, attend and tell).

    forward(grid (N, L, F), hidden (N, H)) -> context (N, F), weights (N, L):
    score[n, l] = v . tanh(W_f grid[n, l] + W_h hidden[n]); weights = softmax over l;
    context[n] = sum_l weights[n, l] grid[n, l].
    """

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int):
        super().__init__()
        self.W_f = nn.Linear(feature_size, attention_size, bias=False)
        self.W_h = nn.Linear(hidden_size, attention_size, bias=False)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def forward(self, grid, hidden):
        """grid (N, L, F), hidden (N, H) -> context (N, F), weights (N, L), as the class says."""
        scores = self.v(torch.tanh(self.W_f(grid) + self.W_h(hidden)[:, None]))[..., 0]  # (N, L)
        weights = torch.softmax(scores, dim=1)  # over the grid positions
        context = (weights[:, :, None] * grid).sum(dim=1)  # (N, F)
        return context, weights
