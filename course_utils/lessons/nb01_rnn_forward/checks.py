"""Checks of notebook 01: the forward passes of the vanilla RNN and of the temporal affine layer."""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from course_utils.checking.core import Mistake, attach_implementations
from course_utils.checking.exercise import FunctionExercise
from course_utils.checking.variants import seq_forward_mistakes


def weights(rng, D, H, k=1):
    """Input and recurrent weights scaled so that pre-activations are of order 1."""
    return (rng.standard_normal((D, k * H)) / np.sqrt(D), rng.standard_normal((H, k * H)) / np.sqrt(H),
            rng.standard_normal(k * H) * 0.5)


def _step_build(rng, N, D, H):
    Wx, Wh, b = weights(rng, D, H)
    return {"x": rng.standard_normal((N, D)), "prev_h": np.tanh(rng.standard_normal((N, H))),
            "Wx": Wx, "Wh": Wh, "b": b}


def _seq_build(rng, N, T, D, H):
    Wx, Wh, b = weights(rng, D, H)
    return {"x": rng.standard_normal((N, T, D)), "h0": np.tanh(rng.standard_normal((N, H))),
            "Wx": Wx, "Wh": Wh, "b": b}


def _wrong_step(pre, act=np.tanh):
    """A step function computing act(pre(x, prev_h, Wx, Wh, b))."""
    def step(x, prev_h, Wx, Wh, b):
        out = act(pre(x, prev_h, Wx, Wh, b))
        return out, None
    return step


def _sig(a):
    return 1 / (1 + np.exp(-a))


STEP_MISTAKES = [
    ("the bias b is missing: next_h = tanh(x @ Wx + prev_h @ Wh + b).",
     _wrong_step(lambda x, h, Wx, Wh, b: x @ Wx + h @ Wh)),
    ("tanh is missing: next_h = tanh(a), not the pre-activation a itself.",
     _wrong_step(lambda x, h, Wx, Wh, b: x @ Wx + h @ Wh + b, act=lambda a: a)),
    ("that is a sigmoid; the vanilla RNN uses tanh.",
     _wrong_step(lambda x, h, Wx, Wh, b: x @ Wx + h @ Wh + b, act=_sig)),
    ("Wx and Wh are swapped: x is multiplied by Wx (D, H), prev_h by Wh (H, H).",
     _wrong_step(lambda x, h, Wx, Wh, b: x @ Wh + h @ Wx + b)),
    ("the recurrent term prev_h @ Wh is missing: it is what carries the past into this step.",
     _wrong_step(lambda x, h, Wx, Wh, b: x @ Wx + b)),
    ("ReLU is not the activation here: the vanilla RNN uses tanh.",
     _wrong_step(lambda x, h, Wx, Wh, b: x @ Wx + h @ Wh + b, act=lambda a: np.maximum(a, 0))),
]


def _as_mistakes(step_mistakes, names=("x", "prev_h", "Wx", "Wh", "b"), out="next_h"):
    return [Mistake(hint, (lambda s: lambda c: {out: s(*[c.args[n] for n in names])[0]})(step))
            for hint, step in step_mistakes]


def _wrong_step_without_bias(x, prev_h, Wx, Wh, b):  # b left out
    next_h = np.tanh(x @ Wx + prev_h @ Wh)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def _wrong_step_sigmoid(x, prev_h, Wx, Wh, b):  # a sigmoid, 1 / (1 + exp(-a)), instead of tanh
    next_h = 0.5 * (1 + np.tanh((x @ Wx + prev_h @ Wh + b) / 2))
    return next_h, (x, prev_h, Wx, Wh, next_h)


def _wrong_rnn_from_h0(x, h0, Wx, Wh, b):  # every step starts from h0: the state is not carried
    hs = [np.tanh(x[:, t] @ Wx + h0 @ Wh + b) for t in range(x.shape[1])]
    return np.stack(hs, axis=1), None


def _wrong_rnn_stores_prev_h(x, h0, Wx, Wh, b):  # h[:, t] is the state before step t, not after it
    hs, h = [], h0
    for t in range(x.shape[1]):
        hs.append(h)
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
    return np.stack(hs, axis=1), None


def _wrong_rnn_step_without_bias(x, h0, Wx, Wh, b):  # built on a step that leaves out b
    hs, h = [], h0
    for t in range(x.shape[1]):
        h, _ = _wrong_step_without_bias(x[:, t], h, Wx, Wh, b)
        hs.append(h)
    return np.stack(hs, axis=1), None


rnn_step_forward = FunctionExercise(
    "rnn_step_forward", ("next_h", "cache"), ref.rnn_step_forward, _step_build, ("N", "D", "H"),
    mistakes=attach_implementations(_as_mistakes(STEP_MISTAKES), {
        "the bias b is missing": _wrong_step_without_bias, "that is a sigmoid": _wrong_step_sigmoid}),
    hints={"next_h": "no common mistake explains these values: compare your code term by term with "
                     "h_t = tanh(x_t Wx + h_{t-1} Wh + b), which input each weight multiplies, the bias, "
                     "the activation (hints 1 and 2 under the exercise).",
           "next_h.shape": "next_h should have shape (N, H): x @ Wx is (N, H), prev_h @ Wh is (N, H)."},
)

rnn_forward = FunctionExercise(
    "rnn_forward", ("h", "cache"), ref.rnn_forward, _seq_build, ("N", "T", "D", "H"),
    mistakes=attach_implementations(seq_forward_mistakes(Mistake, ref.rnn_step_forward, STEP_MISTAKES, False,
                                              ("x", "h0", "Wx", "Wh", "b"), ("Wx", "Wh", "b")), {
        "h[:, t] is computed from h0 at every step": _wrong_rnn_from_h0,
        "h[:, t] holds the state before step t": _wrong_rnn_stores_prev_h,
        "your sequence matches a step function with this mistake: the bias b is missing": _wrong_rnn_step_without_bias,
    }),
    hints={"h": "no common mistake explains these values: check that step t reads x[:, t] and the state "
                "after step t - 1 (h0 for t = 0), and that h[:, t] is the state after step t "
                "(hints 1 and 2 under the exercise).",
           "h.shape": "return every hidden state, shape (N, T, H): h[:, t] is the state after step t "
                      "(np.stack(states, axis=1))."},
)


def _wrong_affine_without_bias(x, W, b):  # b left out
    return x @ W, (x, W)


def _wrong_affine_last_step(x, W, b):  # applied to the last time step only
    return x[:, -1] @ W + b, (x, W)


def _affine_build(rng, N, T, H, M):
    return {"x": rng.standard_normal((N, T, H)), "W": rng.standard_normal((H, M)) / np.sqrt(H),
            "b": rng.standard_normal(M)}


temporal_affine_forward = FunctionExercise(
    "temporal_affine_forward", ("out", "cache"), ref.temporal_affine_forward, _affine_build,
    ("N", "T", "H", "M"),
    mistakes=[
        Mistake("the bias b is missing: out = x @ W + b.", lambda c: {"out": c.args["x"] @ c.args["W"]},
                _wrong_affine_without_bias),
        Mistake("W is transposed: x (N, T, H) @ W (H, M) gives (N, T, M).",
                lambda c: {"out": c.args["x"] @ c.args["W"].T + c.args["b"]}),
        Mistake("you apply the layer to the last time step only; apply it at every step.",
                lambda c: {"out": c.args["x"][:, -1] @ c.args["W"] + c.args["b"]}, _wrong_affine_last_step),
    ],
    hints={"out": "no common mistake explains these values: out[n, t] must be x[n, t] W + b for every n "
                  "and t (hints 1 and 2 under the exercise).",
           "out.shape": "out should have shape (N, T, M): one M-vector per example and time step."},
)
