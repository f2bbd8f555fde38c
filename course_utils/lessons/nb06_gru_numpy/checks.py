"""Checks of notebook 06: the GRU (PyTorch's equations), forward and backward."""
from __future__ import annotations

from itertools import permutations

import numpy as np

from course_utils import reference as ref

from course_utils.checking.core import Mistake, attach_implementations
from course_utils.checking.exercise import BackwardExercise, FunctionExercise
from course_utils.checking.variants import seq_backward_mistakes, seq_forward_mistakes
from course_utils.lessons.nb01_rnn_forward.checks import weights


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
    """A GRU step with other conventions than PyTorch's: the gate order of Wx's blocks, the
    interpolation, and where the reset gate applies. step(...) -> (next_h (N, H), None)."""
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


# --- the step's mistakes as a learner writes them (the catalogue's wrong implementations) ---------

def _learner_sigmoid(a):
    return 0.5 * (1 + np.tanh(a / 2))


def _learner_step(x, prev_h, Wx, Wh, bx, bh, order="rzn", paper=False, cho_reset=False):
    """A learner's gru_step_forward that reads the blocks in ``order``, with the interpolation of
    some papers (``paper``) or the reset gate applied to prev_h (``cho_reset``) if asked."""
    ax = dict(zip(order, np.split(x @ Wx + bx, 3, axis=1)))
    ah = dict(zip(order, np.split(prev_h @ Wh + bh, 3, axis=1)))
    r, z = _learner_sigmoid(ax["r"] + ah["r"]), _learner_sigmoid(ax["z"] + ah["z"])
    if cho_reset:
        Wh_n, bh_n = dict(zip(order, np.split(Wh, 3, axis=1)))["n"], dict(zip(order, np.split(bh, 3)))["n"]
        n = np.tanh(ax["n"] + (r * prev_h) @ Wh_n + bh_n)
    else:
        n = np.tanh(ax["n"] + r * ah["n"])
    return (z * n + (1 - z) * prev_h if paper else (1 - z) * n + z * prev_h), None


def _wrong_paper_interpolation(x, prev_h, Wx, Wh, bx, bh):  # next_h = z * n + (1 - z) * prev_h
    return _learner_step(x, prev_h, Wx, Wh, bx, bh, paper=True)


def _wrong_reset_on_prev_h(x, prev_h, Wx, Wh, bx, bh):  # n = tanh(ax_n + (r * prev_h) @ Wh_n + bh_n)
    return _learner_step(x, prev_h, Wx, Wh, bx, bh, cho_reset=True)


def _wrong_order_zrn(x, prev_h, Wx, Wh, bx, bh):  # the r and z blocks read swapped
    return _learner_step(x, prev_h, Wx, Wh, bx, bh, order="zrn")


def _step_outputs(step):
    return lambda case: {"next_h": step(*case.args.values())[0]}


gru_step_forward = FunctionExercise(
    "gru_step_forward", ("next_h", "cache"), ref.gru_step_forward, _step_build, ("N", "D", "H"),
    mistakes=attach_implementations([Mistake(h, _step_outputs(s)) for h, s in STEP_MISTAKES], {
        "z * n + (1 - z) * prev_h is the formulation": _wrong_paper_interpolation,
        "reset gate to prev_h before the product": _wrong_reset_on_prev_h, "in the order z, r, n:": _wrong_order_zrn}),
    # Used when no known mistake explains the output: where to look, not a guessed cause.
    hints={"next_h": "next_h is wrong and no mistake we know of explains it: compare each of your lines with "
                     "the equations above the exercise, one gate at a time (which block of ax and ah each "
                     "gate reads, which activation, what r multiplies, which term z keeps). Hint 2 under the "
                     "exercise has the slices.",
           "next_h.shape": "next_h should have shape (N, H); ax and ah have 3H columns, one block per gate."},
)

def _learner_forward(step, x, h0, Wx, Wh, bx, bh):
    """A learner's gru_forward around ``step``."""
    h, hs = h0, []
    for t in range(x.shape[1]):
        h, _ = step(x[:, t], h, Wx, Wh, bx, bh)
        hs.append(h)
    return np.stack(hs, axis=1), None


def _wrong_always_from_h0(x, h0, Wx, Wh, bx, bh):  # every step from h0: no state carried
    return np.stack([ref.gru_step_forward(x[:, t], h0, Wx, Wh, bx, bh)[0] for t in range(x.shape[1])], axis=1), None


def _wrong_stores_prev_h(x, h0, Wx, Wh, bx, bh):  # h[:, t] is the state before step t
    hs, h = [], h0
    for t in range(x.shape[1]):
        hs.append(h)
        h, _ = ref.gru_step_forward(x[:, t], h, Wx, Wh, bx, bh)
    return np.stack(hs, axis=1), None


def _wrong_step_paper_interpolation(x, h0, Wx, Wh, bx, bh):  # its step: next_h = z * n + (1 - z) * prev_h
    return _learner_forward(_wrong_paper_interpolation, x, h0, Wx, Wh, bx, bh)


gru_forward = FunctionExercise(
    "gru_forward", ("h", "cache"), ref.gru_forward, _seq_build, ("N", "T", "D", "H"),
    mistakes=attach_implementations(seq_forward_mistakes(
        Mistake, ref.gru_step_forward, STEP_MISTAKES, False, ("x", "h0", "Wx", "Wh", "bx", "bh"),
        ("Wx", "Wh", "bx", "bh")), {
        "carry the state": _wrong_always_from_h0, "holds the state before step t": _wrong_stores_prev_h,
        "step function with this mistake: next_h = z * n + (1 - z) * prev_h": _wrong_step_paper_interpolation}),
    hints={"h": "h is wrong and no mistake we know of explains it. Look at the time steps where it is "
                "wrong: wrong from t = 0 on points to the first step and what it is given (h0 and x[:, 0]); "
                "right at t = 0 but wrong later points to what is carried from one step to the next "
                "(the state); wrong at every step in the same way points to gru_step_forward (does "
                "its check pass?).",
           "h.shape": "return every hidden state, shape (N, T, H) (np.stack(states, axis=1))."},
)


def gru_step_backward_variant(dz_sign=1, direct=True, r_on="dah", tanh_grad=True, interpolation="torch",
                              dr_term="ah_n", dbh="dah"):
    """A GRU step backward with a mistake, written on the reference's cache."""
    def step_backward(dnext_h, cache):
        x, prev_h, Wx, Wh, r, z, n, ah_n = cache
        H = prev_h.shape[1]
        keep = z if interpolation == "torch" else 1 - z  # the share of prev_h in next_h, as believed
        dn = dnext_h * (1 - keep)
        dz = dnext_h * (prev_h - n) * dz_sign * (1 if interpolation == "torch" else -1)
        dan = dn * ((1 - n**2) if tanh_grad else 1)
        term = ah_n if dr_term == "ah_n" else prev_h @ Wh[:, 2 * H:]  # what r is believed to multiply
        dar = dan * term * r * (1 - r)
        daz = dz * z * (1 - z)
        dax = np.concatenate([dar, daz, dan * r if r_on in ("dax", "both") else dan], axis=1)
        dah = np.concatenate([dar, daz, dan * r if r_on in ("dah", "both") else dan], axis=1)
        dprev_h = (dnext_h * keep if direct else 0) + dah @ Wh.T
        return (dax @ Wx.T, dprev_h, x.T @ dax, prev_h.T @ dah, dax.sum(axis=0),
                (dah if dbh == "dah" else dax).sum(axis=0))
    return step_backward


STEP_BACKWARD_MISTAKES = [
    ("the sign of dz: next_h = (1 - z) * n + z * prev_h, so dz = dnext_h * (prev_h - n).",
     gru_step_backward_variant(dz_sign=-1)),
    ("dprev_h misses the direct path: next_h contains z * prev_h, which adds dnext_h * z.",
     gru_step_backward_variant(direct=False)),
    ("z and 1 - z are swapped: your gradients are those of next_h = z * n + (1 - z) * prev_h. In this "
     "course's (PyTorch's) GRU z keeps the old state, next_h = (1 - z) * n + z * prev_h, so n gets "
     "dnext_h * (1 - z) and the direct path to prev_h dnext_h * z.",
     gru_step_backward_variant(interpolation="paper")),
    ("the gradient of ah_n is r times the gradient of n's pre-activation, because n = tanh(ax_n + r * ah_n).",
     gru_step_backward_variant(r_on="none")),
    ("r is applied to the wrong gradient: in n = tanh(ax_n + r * ah_n) r scales ah_n, not ax_n, so the n "
     "block of dah is r times that of dax, and dax's n block is the gradient of n's pre-activation itself.",
     gru_step_backward_variant(r_on="dax")),
    ("r scales only ah_n in n = tanh(ax_n + r * ah_n), so only the n block of dah gets the factor r; "
     "dax's n block is the gradient of n's pre-activation itself.", gru_step_backward_variant(r_on="both")),
    ("the gradient of r: r multiplies ah_n = prev_h @ Wh_n + bh_n, bias included, so dr = (gradient of "
     "n's pre-activation) * ah_n; you used prev_h @ Wh_n without the bias.",
     gru_step_backward_variant(dr_term="no_bias")),
    ("dbh equals dbx, but the two biases differ in the n block: bh_n sits inside r * ah_n, so its "
     "gradient is r times bx_n's.", gru_step_backward_variant(dbh="dax")),
    ("the tanh derivative of n is missing: multiply by 1 - n**2.", gru_step_backward_variant(tanh_grad=False)),
]

STEP_GRADS = ("dx", "dprev_h", "dWx", "dWh", "dbx", "dbh")


def _learner_step_backward(dnext_h, cache, mistake=""):
    """A learner's gru_step_backward on the reference's cache, making ``mistake`` (none if "")."""
    x, prev_h, Wx, Wh, r, z, n, ah_n = cache
    H = prev_h.shape[1]
    if mistake == "z swapped":  # the backward of z * n + (1 - z) * prev_h
        dn, dz, direct = dnext_h * z, dnext_h * (n - prev_h), dnext_h * (1 - z)
    else:
        dn, dz, direct = dnext_h * (1 - z), dnext_h * (prev_h - n), dnext_h * z
    dz = -dz if mistake == "dz sign" else dz
    dpre_n = dn * (1 - n * n)
    dpre_r = dpre_n * (prev_h @ Wh[:, 2 * H:] if mistake == "dr without bias" else ah_n) * r * (1 - r)
    dpre_z = dz * z * (1 - z)
    dax_n, dah_n = (dpre_n * r, dpre_n) if mistake == "r on dax" else (dpre_n, dpre_n * r)
    dax = np.concatenate([dpre_r, dpre_z, dax_n], axis=1)
    dah = np.concatenate([dpre_r, dpre_z, dah_n], axis=1)
    dprev_h = dah @ Wh.T + (0 if mistake == "no direct path" else direct)
    return dax @ Wx.T, dprev_h, x.T @ dax, prev_h.T @ dah, dax.sum(0), dah.sum(0)


def _wrong_dz_sign(dnext_h, cache):  # dz = dnext_h * (n - prev_h)
    return _learner_step_backward(dnext_h, cache, "dz sign")


def _wrong_no_direct_path(dnext_h, cache):  # dprev_h = dah @ Wh.T only, without dnext_h * z
    return _learner_step_backward(dnext_h, cache, "no direct path")


def _wrong_z_swapped(dnext_h, cache):  # the backward of next_h = z * n + (1 - z) * prev_h
    return _learner_step_backward(dnext_h, cache, "z swapped")


def _wrong_r_on_dax(dnext_h, cache):  # the factor r on the n block of dax instead of dah
    return _learner_step_backward(dnext_h, cache, "r on dax")


def _wrong_dr_without_bias(dnext_h, cache):  # dr = dpre_n * (prev_h @ Wh_n), bh_n left out
    return _learner_step_backward(dnext_h, cache, "dr without bias")


def _wrong_dbh_equals_dbx(dnext_h, cache):  # dbh = dbx, forgetting that dah_n = r * dax_n
    dx, dprev_h, dWx, dWh, dbx, _ = ref.gru_step_backward(dnext_h, cache)
    return dx, dprev_h, dWx, dWh, dbx, dbx.copy()


def _step_bwd(step_backward):
    def outputs(case):
        next_h, cache = ref.gru_step_forward(*case.args.values())
        return {"next_h": next_h, **dict(zip(STEP_GRADS, step_backward(case.douts["dnext_h"], cache)))}
    return outputs


# Used when no known mistake explains the gradients: what each one depends on, so that the list of
# right and wrong outputs under the verdict points to the line to re-derive. No guessed cause.
GRU_GRAD_HINTS = {
    "dx": "dx is wrong and no mistake we know of explains it. dx comes from dax, the gradient of "
          "ax = x @ Wx + bx (N, 3H): look at its three blocks, the gradients of the pre-activations of "
          "r, z and n, one at a time, from next_h back (hints 2 and 3 under the exercise give the "
          "local derivatives). If dWx and dbx are wrong too (see `others`), dax is.",
    "dprev_h": "dx is right, so dax is: prev_h reaches next_h along two paths, through ah = prev_h @ Wh + bh "
               "(whose gradient dah differs from dax in the n block only) and directly, through z; "
               "dprev_h adds both.",
    "dWx": "dx is right, so dax is: look at how dWx is made from dax and x (shape (D, 3H)).",
    "dWh": "dx and dprev_h are right: look at how dWh is made from dah, the gradient of ah, and prev_h "
           "(shape (H, 3H)).",
    "dbx": "dx is right, so dax is: bx is added to every row of ax, so dbx collects dax over the batch.",
    "dbh": "dbx is right: bh is added to every row of ah, so dbh collects dah, the gradient of ah, "
           "over the batch.",
}

# Used when no known mistake explains the gradients (the verdict says at which time steps they are wrong).
GRU_SEQ_GRAD_HINTS = {
    "dx": "dx is wrong and no mistake we know of explains it. Look at the time steps where it is wrong: "
          "right at the last step but wrong before it points to what one step hands to the step before "
          "(dprev_h, and what it is added to); wrong at every step points to gru_step_backward itself "
          "(does its check pass?).",
    "dh0": "dx is right at every step, so the loop is: dh0 is what the first step (t = 0) sends back as "
           "its dprev_h, after the loop.",
    **{g: f"dx is right at every step, so is every step's gradient: {g[1:]} is used by every step, so "
          f"{g} adds up what each step returns for it." for g in ("dWx", "dWh", "dbx", "dbh")},
}

gru_step_backward = BackwardExercise(
    "gru_step_backward", gru_step_forward, STEP_GRADS, ref.gru_step_backward,
    mistakes=attach_implementations([Mistake(h, _step_bwd(f)) for h, f in STEP_BACKWARD_MISTAKES], {
        "the sign of dz": _wrong_dz_sign, "dprev_h misses the direct path": _wrong_no_direct_path,
        "z and 1 - z are swapped": _wrong_z_swapped, "r is applied to the wrong gradient": _wrong_r_on_dax,
        "r multiplies ah_n = prev_h @ Wh_n + bh_n, bias included": _wrong_dr_without_bias,
        "dbh equals dbx": _wrong_dbh_equals_dbx}),
    hints=GRU_GRAD_HINTS, wrt={"dx": "x", "dprev_h": "prev_h", "dWx": "Wx", "dWh": "Wh", "dbx": "bx", "dbh": "bh"},
)

SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "dbx", "dbh")


def _learner_backward(step_backward, dh, caches, carry=True):
    """A learner's gru_backward around ``step_backward``; dprev_h joins dh[:, t - 1] if ``carry``."""
    dxs, totals = [None] * dh.shape[1], [0, 0, 0, 0]
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, *grads = step_backward(dh[:, t] + dprev_h if carry else dh[:, t], caches[t])
        totals = [a + g for a, g in zip(totals, grads)]
    return (np.stack(dxs, axis=1), dprev_h, *totals)


def _wrong_overwrites_grads(dh, caches):  # dWx = dWx_t: only the weight gradients of step 0 are left
    dxs, dprev_h = [None] * dh.shape[1], np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dWx, dWh, dbx, dbh = ref.gru_step_backward(dh[:, t] + dprev_h, caches[t])
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, dbx, dbh


def _wrong_not_carried(dh, caches):  # each step gets dh[:, t] only, dprev_h never used
    return _learner_backward(ref.gru_step_backward, dh, caches, carry=False)


def _wrong_step_dz_sign(dh, caches):  # its step backward: dz = dnext_h * (n - prev_h)
    return _learner_backward(_wrong_dz_sign, dh, caches)


def _wrong_step_z_swapped(dh, caches):  # its step backward is that of z * n + (1 - z) * prev_h
    return _learner_backward(_wrong_z_swapped, dh, caches)


def _wrong_step_r_on_dax(dh, caches):  # its step backward puts r on dax's n block
    return _learner_backward(_wrong_r_on_dax, dh, caches)

gru_backward = BackwardExercise(
    "gru_backward", gru_forward, SEQ_GRADS, ref.gru_backward,
    mistakes=attach_implementations(seq_backward_mistakes(
        Mistake, ref.gru_forward, ref.gru_step_backward, STEP_BACKWARD_MISTAKES, False,
        ("x", "h0", "Wx", "Wh", "bx", "bh"), SEQ_GRADS), {
        "add each step's gradients up": _wrong_overwrites_grads, "each step only gets dh[:, t]": _wrong_not_carried,
        "step backward with this mistake: the sign of dz": _wrong_step_dz_sign,
        "step backward with this mistake: z and 1 - z are swapped": _wrong_step_z_swapped,
        "step backward with this mistake: r is applied to the wrong gradient": _wrong_step_r_on_dax}),
    hints=GRU_SEQ_GRAD_HINTS, wrt={"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "dbx": "bx", "dbh": "bh"},
)
