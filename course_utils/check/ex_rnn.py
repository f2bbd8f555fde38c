"""Checks of notebooks 01 and 02: the vanilla RNN and the temporal affine layer."""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from ._core import Mistake
from ._exercise import BackwardExercise, FunctionExercise
from ._variants import seq_backward_mistakes, seq_forward_mistakes


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


RNN_STEP_FORWARD = FunctionExercise(
    "rnn_step_forward", ("next_h", "cache"), ref.rnn_step_forward, _step_build, ("N", "D", "H"),
    mistakes=_as_mistakes(STEP_MISTAKES),
    hints={"next_h": "next_h = np.tanh(x @ Wx + prev_h @ Wh + b).",
           "next_h.shape": "next_h should have shape (N, H): x @ Wx is (N, H), prev_h @ Wh is (N, H)."},
)

RNN_FORWARD = FunctionExercise(
    "rnn_forward", ("h", "cache"), ref.rnn_forward, _seq_build, ("N", "T", "D", "H"),
    mistakes=seq_forward_mistakes(Mistake, ref.rnn_step_forward, STEP_MISTAKES, False,
                                  ("x", "h0", "Wx", "Wh", "b"), ("Wx", "Wh", "b")),
    hints={"h": "loop over t: h_t = rnn_step_forward(x[:, t], h_{t-1}, ...) with h_{-1} = h0, and "
                "store h_t in h[:, t].",
           "h.shape": "return every hidden state, shape (N, T, H): h[:, t] is the state after step t "
                      "(np.stack(states, axis=1))."},
)


def _affine_build(rng, N, T, H, M):
    return {"x": rng.standard_normal((N, T, H)), "W": rng.standard_normal((H, M)) / np.sqrt(H),
            "b": rng.standard_normal(M)}


TEMPORAL_AFFINE_FORWARD = FunctionExercise(
    "temporal_affine_forward", ("out", "cache"), ref.temporal_affine_forward, _affine_build,
    ("N", "T", "H", "M"),
    mistakes=[
        Mistake("the bias b is missing: out = x @ W + b.", lambda c: {"out": c.args["x"] @ c.args["W"]}),
        Mistake("W is transposed: x (N, T, H) @ W (H, M) gives (N, T, M).",
                lambda c: {"out": c.args["x"] @ c.args["W"].T + c.args["b"]}),
        Mistake("you apply the layer to the last time step only; apply it at every step.",
                lambda c: {"out": c.args["x"][:, -1] @ c.args["W"] + c.args["b"]}),
    ],
    hints={"out": "out[n, t] = x[n, t] @ W + b; x @ W broadcasts over the first two axes.",
           "out.shape": "out should have shape (N, T, M): one M-vector per example and time step."},
)

# --- notebook 02: backward passes ------------------------------------------------------


def _step_backward_variant(da_rule="ok", db_sum=True, dWh_from="prev_h"):
    def step_backward(dnext_h, cache):
        x, prev_h, Wx, Wh, next_h = cache
        if da_rule == "pre":  # tanh' evaluated on the pre-activation a, as if it were tanh(a)
            a = np.arctanh(np.clip(next_h, -1 + 1e-15, 1 - 1e-15))
            da = dnext_h * (1 - a**2)
        elif da_rule == "tanh_again":  # tanh applied to next_h, which already is tanh(a)
            da = dnext_h * (1 - np.tanh(next_h)**2)
        elif da_rule == "none":
            da = dnext_h
        elif da_rule == "nosquare":
            da = dnext_h * (1 - next_h)
        else:
            da = dnext_h * (1 - next_h**2)
        dWh = (next_h if dWh_from == "next_h" else prev_h).T @ da
        return da @ Wx.T, da @ Wh.T, x.T @ da, dWh, (da.sum(axis=0) if db_sum else da)
    return step_backward


STEP_BACKWARD_MISTAKES = [
    ("the tanh derivative is taken on the pre-activation a: it is 1 - tanh(a)**2 = 1 - next_h**2.",
     _step_backward_variant("pre")),
    ("next_h is already tanh(a): the derivative is 1 - next_h**2, without another np.tanh.",
     _step_backward_variant("tanh_again")),
    ("the tanh derivative is missing: multiply dnext_h by 1 - next_h**2 before the matrix products.",
     _step_backward_variant("none")),
    ("the tanh derivative is 1 - next_h**2, squared, not 1 - next_h.", _step_backward_variant("nosquare")),
    ("db should be summed over the batch: db = da.sum(axis=0), shape (H,).",
     _step_backward_variant(db_sum=False)),
    ("dWh uses next_h; Wh multiplies prev_h in the forward pass, so dWh = prev_h.T @ da.",
     _step_backward_variant(dWh_from="next_h")),
]

STEP_GRADS = ("dx", "dprev_h", "dWx", "dWh", "db")


def _step_bwd_mistake(step_backward):
    def outputs(case):
        next_h, cache = ref.rnn_step_forward(*case.args.values())
        return {"next_h": next_h, **dict(zip(STEP_GRADS, step_backward(case.douts["dnext_h"], cache)))}
    return outputs


RNN_GRAD_HINTS = {
    "dx": "dx = da @ Wx.T, where da = dnext_h * (1 - next_h**2) is the gradient of the pre-activation.",
    "dprev_h": "dprev_h = da @ Wh.T, where da = dnext_h * (1 - next_h**2).",
    "dWx": "dWx = x.T @ da, shape (D, H).",
    "dWh": "dWh = prev_h.T @ da, shape (H, H).",
    "db": "db = da.sum(axis=0), shape (H,).",
    "dh0": "dh0 is the gradient that flows out of the first step, dprev_h after the loop.",
}

RNN_STEP_BACKWARD = BackwardExercise(
    "rnn_step_backward", RNN_STEP_FORWARD, STEP_GRADS, ref.rnn_step_backward,
    mistakes=[Mistake(h, _step_bwd_mistake(f)) for h, f in STEP_BACKWARD_MISTAKES],
    hints=RNN_GRAD_HINTS,
)

SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")

RNN_BACKWARD = BackwardExercise(
    "rnn_backward", RNN_FORWARD, SEQ_GRADS, ref.rnn_backward,
    mistakes=seq_backward_mistakes(Mistake, ref.rnn_forward, ref.rnn_step_backward, STEP_BACKWARD_MISTAKES,
                                   False, ("x", "h0", "Wx", "Wh", "b"), SEQ_GRADS),
    hints=RNN_GRAD_HINTS, wrt={"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "db": "b"},
)


def _affine_bwd_mistake(f):
    def outputs(case):
        x, W, b = case.args["x"], case.args["W"], case.args["b"]
        dout = case.douts["dout"]
        return {"out": x @ W + b, **dict(zip(("dx", "dW", "db"), f(x, W, dout)))}
    return outputs


TEMPORAL_AFFINE_BACKWARD = BackwardExercise(
    "temporal_affine_backward", TEMPORAL_AFFINE_FORWARD, ("dx", "dW", "db"), ref.temporal_affine_backward,
    mistakes=[
        Mistake("db is summed over the batch only; the bias is used at every time step too, so sum "
                "over both: dout.sum(axis=(0, 1)).",
                _affine_bwd_mistake(lambda x, W, d: (d @ W.T, np.einsum("nth,ntm->hm", x, d), d.sum(axis=0)))),
        Mistake("dW only counts the last time step: W is used at every step, so sum x[:, t].T @ "
                "dout[:, t] over t (reshape both to (N*T, ...) and use one product).",
                _affine_bwd_mistake(lambda x, W, d: (d @ W.T, x[:, -1].T @ d[:, -1], d.sum(axis=(0, 1))))),
        Mistake("dx = dout @ W.T: W maps H to M, so its transpose maps the gradient back to H.",
                _affine_bwd_mistake(lambda x, W, d: (d @ W, np.einsum("nth,ntm->hm", x, d), d.sum(axis=(0, 1))))),
    ],
    hints={"dx": "dx = dout @ W.T, shape (N, T, H).",
           "dW": "dW = x.reshape(N * T, H).T @ dout.reshape(N * T, M), shape (H, M).",
           "db": "db = dout.sum(axis=(0, 1)), shape (M,)."},
)

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [RNN_STEP_FORWARD, RNN_FORWARD, TEMPORAL_AFFINE_FORWARD, RNN_STEP_BACKWARD, RNN_BACKWARD, TEMPORAL_AFFINE_BACKWARD]
