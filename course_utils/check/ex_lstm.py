"""Checks of notebook 05: the LSTM, forward and backward."""
from __future__ import annotations

from itertools import permutations

import numpy as np

from course_utils import reference as ref

from ._core import Mistake
from ._exercise import BackwardExercise, FunctionExercise
from ._variants import seq_backward_mistakes, seq_forward_mistakes
from .ex_rnn import weights


def _sig(a):
    return 1 / (1 + np.exp(-a))


def _step_build(rng, N, D, H):
    Wx, Wh, b = weights(rng, D, H, k=4)
    return {"x": rng.standard_normal((N, D)), "prev_h": np.tanh(rng.standard_normal((N, H))),
            "prev_c": rng.standard_normal((N, H)), "Wx": Wx, "Wh": Wh, "b": b}


def _seq_build(rng, N, T, D, H):
    Wx, Wh, b = weights(rng, D, H, k=4)
    return {"x": rng.standard_normal((N, T, D)), "h0": np.tanh(rng.standard_normal((N, H))),
            "Wx": Wx, "Wh": Wh, "b": b}


def lstm_step_variant(order="ifgo", g_act="tanh", tanh_c=True, use_i=True, bias=True):
    """An LSTM step with a mistake: blocks read in another order, a wrong activation, ..."""
    def step(x, prev_h, prev_c, Wx, Wh, b):
        H = prev_h.shape[1]
        a = x @ Wx + prev_h @ Wh + (b if bias else 0)
        blocks = {name: a[:, k * H:(k + 1) * H] for k, name in enumerate(order)}
        i, f, o = _sig(blocks["i"]), _sig(blocks["f"]), _sig(blocks["o"])
        g = np.tanh(blocks["g"]) if g_act == "tanh" else _sig(blocks["g"])
        next_c = f * prev_c + (i * g if use_i else g)
        next_h = o * (np.tanh(next_c) if tanh_c else next_c)
        return next_h, next_c, None
    return step


STEP_MISTAKES = [
    (f"your output matches the LSTM with the blocks in the order {', '.join(p)}: the block order "
     "is i, f, g, o (input, forget, candidate g, output).", lstm_step_variant(order="".join(p)))
    for p in permutations("ifgo") if "".join(p) != "ifgo"
] + [
    ("g uses tanh, not sigmoid: the candidate cell values lie in (-1, 1).", lstm_step_variant(g_act="sigmoid")),
    ("next_h = o * tanh(next_c): the tanh of the cell state is missing.", lstm_step_variant(tanh_c=False)),
    ("next_c = f * prev_c + i * g: the input gate i is missing.", lstm_step_variant(use_i=False)),
    ("the bias b is missing from a = x @ Wx + prev_h @ Wh + b.", lstm_step_variant(bias=False)),
]


def _step_outputs(step):
    def outputs(case):
        next_h, next_c, _ = step(*case.args.values())
        return {"next_h": next_h, "next_c": next_c}
    return outputs


LSTM_STEP_FORWARD = FunctionExercise(
    "lstm_step_forward", ("next_h", "next_c", "cache"), ref.lstm_step_forward, _step_build, ("N", "D", "H"),
    mistakes=[Mistake(h, _step_outputs(s)) for h, s in STEP_MISTAKES],
    hints={"next_c": "a = x @ Wx + prev_h @ Wh + b; split a into i, f, g, o (in that order) of H "
                     "columns each; next_c = f * prev_c + i * g with i, f = sigmoid and g = tanh.",
           "next_h": "next_h = o * np.tanh(next_c), with o = sigmoid of the fourth block of a.",
           "next_h.shape": "next_h should have shape (N, H); a has 4H columns, one block of H per gate."},
)

LSTM_FORWARD = FunctionExercise(
    "lstm_forward", ("h", "cache"), ref.lstm_forward, _seq_build, ("N", "T", "D", "H"),
    mistakes=seq_forward_mistakes(Mistake, ref.lstm_step_forward, STEP_MISTAKES, True,
                                  ("x", "h0", "Wx", "Wh", "b"), ("Wx", "Wh", "b")),
    hints={"h": "carry both states: (h_t, c_t) = lstm_step_forward(x[:, t], h_{t-1}, c_{t-1}, ...), "
                "starting from h0 and c0 = 0; store h_t in h[:, t].",
           "h.shape": "return every hidden state, shape (N, T, H) (np.stack(states, axis=1))."},
)


def lstm_step_backward_variant(use_dnext_c=True, tanh_c_grad=True, sig_grad=True, g_grad="ok",
                               dprev_c_f=True):
    def step_backward(dnext_h, dnext_c, cache):
        x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c = cache
        dc = (dnext_c if use_dnext_c else 0) + dnext_h * o * ((1 - tanh_c**2) if tanh_c_grad else 1)
        do = dnext_h * tanh_c
        di, df, dg = dc * g, dc * prev_c, dc * i
        dprev_c = dc * f if dprev_c_f else dc
        s = (lambda v: v * (1 - v)) if sig_grad else (lambda v: v)
        gg = (1 - g**2) if g_grad == "ok" else (1 - g)
        da = np.concatenate([di * s(i), df * s(f), dg * gg, do * s(o)], axis=1)
        return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)
    return step_backward


STEP_BACKWARD_MISTAKES = [
    ("dnext_c is ignored: the gradient of next_c is dnext_c plus what flows in through "
     "next_h = o * tanh(next_c).", lstm_step_backward_variant(use_dnext_c=False)),
    ("the derivative of tanh(next_c) is missing: the path through next_h contributes "
     "dnext_h * o * (1 - tanh(next_c)**2) to dc.", lstm_step_backward_variant(tanh_c_grad=False)),
    ("the sigmoid derivative is s * (1 - s), where s is the gate's value.",
     lstm_step_backward_variant(sig_grad=False)),
    ("the derivative of g = tanh(.) is 1 - g**2.", lstm_step_backward_variant(g_grad="nosquare")),
    ("dprev_c = dc * f: the old cell state reaches next_c through the forget gate.",
     lstm_step_backward_variant(dprev_c_f=False)),
]

STEP_GRADS = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")


def _step_bwd(step_backward):
    def outputs(case):
        next_h, next_c, cache = ref.lstm_step_forward(*case.args.values())
        grads = step_backward(case.douts["dnext_h"], case.douts["dnext_c"], cache)
        return {"next_h": next_h, "next_c": next_c, **dict(zip(STEP_GRADS, grads))}
    return outputs


LSTM_GRAD_HINTS = {
    "dprev_c": "dprev_c = dc * f, where dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2).",
    "dx": "stack the gradients of the four pre-activations (i, f, g, o order) into da (N, 4H); "
          "dx = da @ Wx.T.",
    "dprev_h": "dprev_h = da @ Wh.T, with da the gradient of the pre-activations (N, 4H).",
    "dWx": "dWx = x.T @ da, shape (D, 4H).",
    "dWh": "dWh = prev_h.T @ da, shape (H, 4H).",
    "db": "db = da.sum(axis=0), shape (4H,).",
    "dh0": "dh0 is the gradient that flows out of the first step, dprev_h after the loop.",
}

LSTM_STEP_BACKWARD = BackwardExercise(
    "lstm_step_backward", LSTM_STEP_FORWARD, STEP_GRADS, ref.lstm_step_backward,
    mistakes=[Mistake(h, _step_bwd(f)) for h, f in STEP_BACKWARD_MISTAKES],
    hints=LSTM_GRAD_HINTS,
)

SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")



LSTM_BACKWARD = BackwardExercise(
    "lstm_backward", LSTM_FORWARD, SEQ_GRADS, ref.lstm_backward,
    mistakes=seq_backward_mistakes(Mistake, ref.lstm_forward, ref.lstm_step_backward,
                                   STEP_BACKWARD_MISTAKES, True, ("x", "h0", "Wx", "Wh", "b"), SEQ_GRADS),
    hints=LSTM_GRAD_HINTS, wrt={"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "db": "b"},
)

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [LSTM_STEP_FORWARD, LSTM_STEP_BACKWARD, LSTM_FORWARD, LSTM_BACKWARD]
