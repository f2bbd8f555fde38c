"""Checks of notebook 06: the GRU (PyTorch's equations), forward and backward."""
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
    Wx, Wh, bx = weights(rng, D, H, k=3)
    return {"x": rng.standard_normal((N, D)), "prev_h": np.tanh(rng.standard_normal((N, H))),
            "Wx": Wx, "Wh": Wh, "bx": bx, "bh": rng.standard_normal(3 * H) * 0.5}


def _seq_build(rng, N, T, D, H):
    Wx, Wh, bx = weights(rng, D, H, k=3)
    return {"x": rng.standard_normal((N, T, D)), "h0": np.tanh(rng.standard_normal((N, H))),
            "Wx": Wx, "Wh": Wh, "bx": bx, "bh": rng.standard_normal(3 * H) * 0.5}


def gru_step_variant(order="rzn", interpolation="torch", reset="torch"):
    def step(x, prev_h, Wx, Wh, bx, bh):
        H = prev_h.shape[1]
        ax, ah = x @ Wx + bx, prev_h @ Wh + bh
        blk = {name: k for k, name in enumerate(order)}
        sl = lambda name: slice(blk[name] * H, (blk[name] + 1) * H)  # noqa: E731
        r = _sig(ax[:, sl("r")] + ah[:, sl("r")])
        z = _sig(ax[:, sl("z")] + ah[:, sl("z")])
        if reset == "torch":
            n = np.tanh(ax[:, sl("n")] + r * ah[:, sl("n")])
        elif reset == "before_bias":  # r * (prev_h @ Wh_n) + bh_n
            n = np.tanh(ax[:, sl("n")] + r * (prev_h @ Wh[:, sl("n")]) + bh[sl("n")])
        else:  # the reset gate applied to prev_h, as in Cho et al. (2014)
            n = np.tanh(ax[:, sl("n")] + (r * prev_h) @ Wh[:, sl("n")] + bh[sl("n")])
        next_h = (1 - z) * n + z * prev_h if interpolation == "torch" else z * n + (1 - z) * prev_h
        return next_h, None
    return step


STEP_MISTAKES = [
    ("next_h = z * n + (1 - z) * prev_h is the formulation of some papers and textbooks; this course "
     "uses PyTorch's: next_h = (1 - z) * n + z * prev_h.", gru_step_variant(interpolation="paper")),
    ("the reset gate multiplies the whole recurrent part of n, bias included: "
     "n = tanh(ax_n + r * (prev_h @ Wh_n + bh_n)).", gru_step_variant(reset="before_bias")),
    ("you apply the reset gate to prev_h before the product (Cho et al.'s variant); PyTorch's GRU "
     "uses n = tanh(ax_n + r * ah_n) with ah_n = prev_h @ Wh_n + bh_n.", gru_step_variant(reset="input")),
] + [
    (f"your output matches the GRU with the blocks in the order {', '.join(p)}: the block order is "
     "r, z, n (reset, update, candidate).", gru_step_variant(order="".join(p)))
    for p in permutations("rzn") if "".join(p) != "rzn"
]


def _step_outputs(step):
    return lambda case: {"next_h": step(*case.args.values())[0]}


GRU_STEP_FORWARD = FunctionExercise(
    "gru_step_forward", ("next_h", "cache"), ref.gru_step_forward, _step_build, ("N", "D", "H"),
    mistakes=[Mistake(h, _step_outputs(s)) for h, s in STEP_MISTAKES],
    hints={"next_h": "ax = x @ Wx + bx, ah = prev_h @ Wh + bh, blocks r, z, n; r, z = sigmoid(ax + ah) "
                     "of their blocks; n = tanh(ax_n + r * ah_n); next_h = (1 - z) * n + z * prev_h.",
           "next_h.shape": "next_h should have shape (N, H); ax and ah have 3H columns, one block per gate."},
)

GRU_FORWARD = FunctionExercise(
    "gru_forward", ("h", "cache"), ref.gru_forward, _seq_build, ("N", "T", "D", "H"),
    mistakes=seq_forward_mistakes(Mistake, ref.gru_step_forward, STEP_MISTAKES, False,
                                  ("x", "h0", "Wx", "Wh", "bx", "bh"), ("Wx", "Wh", "bx", "bh")),
    hints={"h": "loop over t: h_t = gru_step_forward(x[:, t], h_{t-1}, ...) with h_{-1} = h0; store "
                "h_t in h[:, t].",
           "h.shape": "return every hidden state, shape (N, T, H) (np.stack(states, axis=1))."},
)


def gru_step_backward_variant(dz_sign=1, direct=True, r_on_dah=True, tanh_grad=True):
    def step_backward(dnext_h, cache):
        x, prev_h, Wx, Wh, r, z, n, ah_n = cache
        dn = dnext_h * (1 - z)
        dz = dnext_h * (prev_h - n) * dz_sign
        dan = dn * ((1 - n**2) if tanh_grad else 1)
        dar = dan * ah_n * r * (1 - r)
        daz = dz * z * (1 - z)
        dax = np.concatenate([dar, daz, dan], axis=1)
        dah = np.concatenate([dar, daz, dan * r if r_on_dah else dan], axis=1)
        dprev_h = (dnext_h * z if direct else 0) + dah @ Wh.T
        return dax @ Wx.T, dprev_h, x.T @ dax, prev_h.T @ dah, dax.sum(axis=0), dah.sum(axis=0)
    return step_backward


STEP_BACKWARD_MISTAKES = [
    ("the sign of dz: next_h = (1 - z) * n + z * prev_h, so dz = dnext_h * (prev_h - n).",
     gru_step_backward_variant(dz_sign=-1)),
    ("dprev_h misses the direct path: next_h contains z * prev_h, which adds dnext_h * z.",
     gru_step_backward_variant(direct=False)),
    ("the gradient of ah_n is r times the gradient of n's pre-activation, because n = tanh(ax_n + r * ah_n).",
     gru_step_backward_variant(r_on_dah=False)),
    ("the tanh derivative of n is missing: multiply by 1 - n**2.", gru_step_backward_variant(tanh_grad=False)),
]

STEP_GRADS = ("dx", "dprev_h", "dWx", "dWh", "dbx", "dbh")


def _step_bwd(step_backward):
    def outputs(case):
        next_h, cache = ref.gru_step_forward(*case.args.values())
        return {"next_h": next_h, **dict(zip(STEP_GRADS, step_backward(case.douts["dnext_h"], cache)))}
    return outputs


GRU_GRAD_HINTS = {
    "dx": "dx = dax @ Wx.T, where dax (N, 3H) holds the gradients of ax's r, z, n blocks.",
    "dprev_h": "dprev_h = dnext_h * z + dah @ Wh.T, where dah (N, 3H) holds the gradients of ah's blocks.",
    "dWx": "dWx = x.T @ dax, shape (D, 3H).",
    "dWh": "dWh = prev_h.T @ dah, shape (H, 3H).",
    "dbx": "dbx = dax.sum(axis=0); dbx and dbh differ only in the n block, where dah_n = r * dax_n.",
    "dbh": "dbh = dah.sum(axis=0); in the n block, dah_n = r * dax_n.",
    "dh0": "dh0 is the gradient that flows out of the first step, dprev_h after the loop.",
}

GRU_STEP_BACKWARD = BackwardExercise(
    "gru_step_backward", GRU_STEP_FORWARD, STEP_GRADS, ref.gru_step_backward,
    mistakes=[Mistake(h, _step_bwd(f)) for h, f in STEP_BACKWARD_MISTAKES],
    hints=GRU_GRAD_HINTS, wrt={"dx": "x", "dprev_h": "prev_h", "dWx": "Wx", "dWh": "Wh", "dbx": "bx", "dbh": "bh"},
)

SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "dbx", "dbh")

GRU_BACKWARD = BackwardExercise(
    "gru_backward", GRU_FORWARD, SEQ_GRADS, ref.gru_backward,
    mistakes=seq_backward_mistakes(Mistake, ref.gru_forward, ref.gru_step_backward, STEP_BACKWARD_MISTAKES,
                                   False, ("x", "h0", "Wx", "Wh", "bx", "bh"), SEQ_GRADS),
    hints=GRU_GRAD_HINTS, wrt={"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "dbx": "bx", "dbh": "bh"},
)

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [GRU_STEP_FORWARD, GRU_STEP_BACKWARD, GRU_FORWARD, GRU_BACKWARD]
