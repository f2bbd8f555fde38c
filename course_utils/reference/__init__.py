"""Correct implementations of every exercise of the course, under the exercises' names.

Checks and the grader compare learners' code against these. They are written to be read:
one equation per line, the same names as in the notebooks.

    >>> from course_utils.reference import lstm_forward
"""
from .basics import clip_grad_norm, numerical_gradient, sigmoid, softmax
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .language_model import (
    embedding_backward,
    embedding_forward,
    lm_forward,
    lm_loss_and_grads,
    lm_train_step,
    sample_with_temperature,
    temporal_softmax_loss,
)
from .optim import adam_step
from .vanishing import gradient_norm_by_lag
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .rnn import (
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
    temporal_affine_backward,
    temporal_affine_forward,
)

# The PyTorch part is imported on first use, so that the NumPy notebooks do not wait for torch.
_TORCH = {
    "load_rnn_weights": "torch_rnn", "load_lstm_weights": "torch_rnn", "load_gru_weights": "torch_rnn",
    "LSTMCell": "torch_rnn", "last_hidden_state": "torch_rnn", "final_states_packed": "torch_rnn",
}


def __getattr__(name: str):
    if name in _TORCH:
        import importlib

        return getattr(importlib.import_module(f".{_TORCH[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Notebook 09 (forecasting): NumPy and PyTorch references in one module, loaded on first use.
_TORCH.update({"standardize": "forecasting", "make_windows": "forecasting", "LSTMForecaster": "forecasting"})


# Notebook 08 (sentiment classification): masks and the bidirectional LSTM classifier.
_TORCH.update({"padding_mask": "sentiment", "masked_mean": "sentiment", "SentimentLSTM": "sentiment",
               "train_step": "sentiment"})


# Notebooks 10 and 11 (seq2seq, attention): the encoder-decoder, beam search, additive attention.
_TORCH.update({name: "seq2seq" for name in
               ("Encoder", "Decoder", "teacher_forcing_loss", "greedy_decode", "beam_search",
                "AdditiveAttention", "AttentionDecoder")})


# Notebook 13 (image captioning): the loss from the image's initial state, sampling, grid attention.
_TORCH.update({name: "captioning" for name in ("caption_loss", "sample_caption", "GridAttention")})

# Notebook 12 (speech recognition with CTC): the CTC loss, greedy decoding, the acoustic model, the error rate.
_TORCH.update({name: "ctc" for name in
               ("ctc_loss", "ctc_greedy_decode", "AcousticModel", "edit_distance", "error_rate")})


__all__ = [
    "sigmoid", "softmax", "numerical_gradient", "clip_grad_norm", "gradient_norm_by_lag",
    "rnn_step_forward", "rnn_forward", "temporal_affine_forward",
    "rnn_step_backward", "rnn_backward", "temporal_affine_backward",
    "embedding_forward", "embedding_backward", "temporal_softmax_loss",
    "sample_with_temperature", "lm_forward", "lm_loss_and_grads", "lm_train_step",
    "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
    "adam_step",
]


# Notebook 14 (session-based recommendation): session-parallel batches, Recall@k and MRR@k, the training step.
_TORCH.update({name: "sessions" for name in ("session_parallel_batches", "recall_mrr_at_k", "session_train_step")})
