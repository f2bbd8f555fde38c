"""Reference pieces of notebook 07: from the NumPy RNNs to PyTorch.

Shapes: N batch, T time steps, D input size, H hidden size. PyTorch's recurrent layers
compute ``x @ W_ih.T + b_ih + h @ W_hh.T + b_hh``: their weights are the transposes of the
course's NumPy weights, and they carry two biases where the NumPy RNN and LSTM have one.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def _copy(param: torch.Tensor, value: np.ndarray) -> None:
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def load_rnn_weights(rnn: nn.RNN, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray) -> None:
    """Copy NumPy weights Wx (D, H), Wh (H, H), b (H,) into a one-layer ``nn.RNN``, in place."""
    _copy(rnn.weight_ih_l0, Wx.T)  # (H, D)
    _copy(rnn.weight_hh_l0, Wh.T)  # (H, H)
    _copy(rnn.bias_ih_l0, b)
    _copy(rnn.bias_hh_l0, np.zeros_like(b))  # the two biases add up: one of them carries b


def load_lstm_weights(lstm: nn.LSTM, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray) -> None:
    """Copy Wx (D, 4H), Wh (H, 4H), b (4H,) into a one-layer ``nn.LSTM``; both use gate order i, f, g, o."""
    _copy(lstm.weight_ih_l0, Wx.T)  # (4H, D)
    _copy(lstm.weight_hh_l0, Wh.T)  # (4H, H)
    _copy(lstm.bias_ih_l0, b)
    _copy(lstm.bias_hh_l0, np.zeros_like(b))


def load_gru_weights(gru: nn.GRU, Wx: np.ndarray, Wh: np.ndarray, bx: np.ndarray, bh: np.ndarray) -> None:
    """Copy Wx (D, 3H), Wh (H, 3H), bx, bh (3H,) into a one-layer ``nn.GRU`` (blocks r, z, n).

    Unlike the RNN's and LSTM's, the GRU's two biases are not interchangeable: the reset
    gate multiplies ``h @ W_hn.T + b_hn``, so bh must go into bias_hh and bx into bias_ih.
    """
    _copy(gru.weight_ih_l0, Wx.T)
    _copy(gru.weight_hh_l0, Wh.T)
    _copy(gru.bias_ih_l0, bx)
    _copy(gru.bias_hh_l0, bh)


class LSTMCell(nn.Module):
    """One LSTM step with PyTorch operations; autograd provides the backward pass.

    Parameters Wx (D, 4H), Wh (H, 4H), b (4H,), gate order i, f, g, o, as in notebook 05.
    forward(x (N, D), prev_h (N, H), prev_c (N, H)) -> next_h, next_c (N, H).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        H = hidden_size
        self.Wx = nn.Parameter(torch.randn(input_size, 4 * H) / math.sqrt(input_size))
        self.Wh = nn.Parameter(torch.randn(H, 4 * H) / math.sqrt(H))
        self.b = nn.Parameter(torch.zeros(4 * H))

    def forward(self, x, prev_h, prev_c):
        """One step: x (N, D), prev_h and prev_c (N, H) -> next_h, next_c (N, H)."""
        a = x @ self.Wx + prev_h @ self.Wh + self.b
        i, f, g, o = a.chunk(4, dim=-1)
        next_c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.tanh(g)
        next_h = torch.sigmoid(o) * torch.tanh(next_c)
        return next_h, next_c


def last_hidden_state(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's hidden state after its last real step.

    h: (N, T, H), outputs over a padded batch; lengths: int (N,), each between 1 and T.
    Returns (N, H) with row n equal to h[n, lengths[n] - 1].
    """
    return h[torch.arange(h.shape[0]), lengths - 1]


def final_states_packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a batch-first ``nn.LSTM`` over padded x (N, T, D) so that padding is never read.

    Returns h_n (N, H): the hidden state after each sequence's last real step.
    """
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, (h_n, _) = lstm(packed)
    return h_n[-1]
