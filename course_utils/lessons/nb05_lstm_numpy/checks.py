"""Checks of notebook 05: the LSTM, forward and backward."""
from __future__ import annotations

from itertools import permutations

import numpy as np

from course_utils import reference as ref

from course_utils.checking.core import Mistake, attach_implementations
from course_utils.checking.exercise import BackwardExercise, FunctionExercise
from course_utils.checking.variants import bptt, seq_backward_mistakes, seq_forward_mistakes
from course_utils.lessons.nb01_rnn_forward.checks import weights


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


# --- the step's mistakes as a learner writes them (the catalogue's wrong implementations) ---------

def _learner_sigmoid(a):
    return 0.5 * (1 + np.tanh(a / 2))


def _learner_step(x, prev_h, prev_c, Wx, Wh, b, order="ifgo", g_act=np.tanh, tanh_c=True):
    """A learner's lstm_step_forward that reads the blocks of a in ``order``, with g = g_act(.)."""
    blocks = dict(zip(order, np.split(x @ Wx + prev_h @ Wh + b, 4, axis=1)))
    i, f, o = (_learner_sigmoid(blocks[k]) for k in "ifo")
    next_c = f * prev_c + i * g_act(blocks["g"])
    return o * (np.tanh(next_c) if tanh_c else next_c), next_c, None


def _wrong_order_ifog(x, prev_h, prev_c, Wx, Wh, b):  # the g and o blocks of a read swapped
    return _learner_step(x, prev_h, prev_c, Wx, Wh, b, order="ifog")


def _wrong_order_figo(x, prev_h, prev_c, Wx, Wh, b):  # the i and f blocks of a read swapped
    return _learner_step(x, prev_h, prev_c, Wx, Wh, b, order="figo")


def _wrong_sigmoid_g(x, prev_h, prev_c, Wx, Wh, b):  # g = sigmoid(.) instead of tanh(.)
    return _learner_step(x, prev_h, prev_c, Wx, Wh, b, g_act=_learner_sigmoid)


def _wrong_no_tanh_c(x, prev_h, prev_c, Wx, Wh, b):  # next_h = o * next_c, without the tanh
    return _learner_step(x, prev_h, prev_c, Wx, Wh, b, tanh_c=False)


def _wrong_returns_c_then_h(x, prev_h, prev_c, Wx, Wh, b):  # return next_c, next_h, cache
    next_h, next_c, cache = ref.lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    return next_c, next_h, cache


def _step_outputs(step):
    def outputs(case):
        next_h, next_c, _ = step(*case.args.values())
        return {"next_h": next_h, "next_c": next_c}
    return outputs


def _returns_swapped(case):
    next_h, next_c, _ = ref.lstm_step_forward(*case.args.values())
    return {"next_h": next_c, "next_c": next_h}


lstm_step_forward = FunctionExercise(
    "lstm_step_forward", ("next_h", "next_c", "cache"), ref.lstm_step_forward, _step_build, ("N", "D", "H"),
    mistakes=attach_implementations([Mistake(h, _step_outputs(s)) for h, s in STEP_MISTAKES], {
        "in the order i, f, o, g:": _wrong_order_ifog, "in the order f, i, g, o:": _wrong_order_figo,
        "g uses tanh, not sigmoid": _wrong_sigmoid_g, "the tanh of the cell state is missing": _wrong_no_tanh_c,
    }) + [Mistake("your next_h is the cell state and your next_c the hidden state: return them in the order "
                  "next_h, next_c, cache.", _returns_swapped, _wrong_returns_c_then_h)],
    # Used when no known mistake explains the output: where to look, not a guessed cause.
    hints={"next_h": "next_h is wrong and no mistake we know of explains it. next_h depends on everything "
                     "else: if next_c is right (see `others`), the gates i, f and g are, and what is left "
                     "is the output gate (its block of a, its activation) and how h_t is made from o and "
                     "c_t; if next_c is wrong too, start there: which block of a is which gate, which "
                     "activation each gets, how the two terms of c_t combine (hint 2 under the exercise).",
           "next_c": "next_h is right but next_c is not: return the new cell state c_t itself, the one "
                     "inside tanh(c_t).",
           "next_h.shape": "next_h should have shape (N, H); a has 4H columns, one block of H per gate."},
)

def _learner_forward(step, x, h0, Wx, Wh, b, c0=None):
    """A learner's lstm_forward around ``step``; the cell state starts as ``c0`` (zeros if None)."""
    h, c, hs = h0, (np.zeros_like(h0) if c0 is None else c0), []
    for t in range(x.shape[1]):
        h, c, _ = step(x[:, t], h, c, Wx, Wh, b)
        hs.append(h)
    return np.stack(hs, axis=1), None


def _wrong_c0_is_h0(x, h0, Wx, Wh, b):  # prev_h = prev_c = h0
    return _learner_forward(ref.lstm_step_forward, x, h0, Wx, Wh, b, c0=h0)


def _wrong_always_from_h0(x, h0, Wx, Wh, b):  # every step from h0 and a zero cell: no state carried
    c0 = np.zeros_like(h0)
    return np.stack([ref.lstm_step_forward(x[:, t], h0, c0, Wx, Wh, b)[0] for t in range(x.shape[1])], axis=1), None


def _wrong_step_order_ifog(x, h0, Wx, Wh, b):  # its step reads the g and o blocks swapped
    return _learner_forward(_wrong_order_ifog, x, h0, Wx, Wh, b)


lstm_forward = FunctionExercise(
    "lstm_forward", ("h", "cache"), ref.lstm_forward, _seq_build, ("N", "T", "D", "H"),
    mistakes=attach_implementations(seq_forward_mistakes(
        Mistake, ref.lstm_step_forward, STEP_MISTAKES, True, ("x", "h0", "Wx", "Wh", "b"), ("Wx", "Wh", "b")), {
        "the cell state starts as h0": _wrong_c0_is_h0, "carry the state": _wrong_always_from_h0,
        "step function with this mistake: your output matches the LSTM with the blocks in the order i, f, o, g:":
            _wrong_step_order_ifog}),
    hints={"h": "h is wrong and no mistake we know of explains it. Look at the time steps where it is "
                "wrong: wrong from t = 0 on points to the first step and what it is given (h0, c0 = 0 and x[:, 0]); "
                "right at t = 0 but wrong later points to what is carried from one step to the next "
                "(both states, h and c); wrong at every step in the same way points to lstm_step_forward (does "
                "its check pass?).",
           "h.shape": "return every hidden state, shape (N, T, H) (np.stack(states, axis=1))."},
)


def lstm_step_backward_variant(use_dnext_c=True, tanh_c_grad="ok", sig_grad="ok", g_grad="ok",
                               dprev_c_f=True, do_cell="next"):
    """An LSTM step backward with a mistake, written on the reference's cache."""
    def step_backward(dnext_h, dnext_c, cache):
        x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c = cache
        next_c = f * prev_c + i * g
        dtanh = {"ok": 1 - tanh_c**2, "missing": 1, "of_c": 1 - next_c**2}[tanh_c_grad]
        dc = (dnext_c if use_dnext_c else 0) + dnext_h * o * dtanh
        do = dnext_h * (tanh_c if do_cell == "next" else np.tanh(prev_c))
        di, df, dg = dc * g, dc * prev_c, dc * i
        dprev_c = dc * f if dprev_c_f else dc
        s = {"ok": lambda v: v * (1 - v), "s": lambda v: v, "none": lambda v: 1}[sig_grad]
        gg = (1 - g**2) if g_grad == "ok" else (1 - g)
        da = np.concatenate([di * s(i), df * s(f), dg * gg, do * s(o)], axis=1)
        return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)
    return step_backward


STEP_BACKWARD_MISTAKES = [
    ("dnext_c is ignored: the gradient of next_c is dnext_c plus what flows in through "
     "next_h = o * tanh(next_c).", lstm_step_backward_variant(use_dnext_c=False)),
    ("the derivative of tanh(next_c) is missing: the path through next_h contributes "
     "dnext_h * o * (1 - tanh(next_c)**2) to dc.", lstm_step_backward_variant(tanh_c_grad="missing")),
    ("the derivative of tanh(next_c) is 1 - tanh(next_c)**2, the tanh's value squared, "
     "not 1 - next_c**2.", lstm_step_backward_variant(tanh_c_grad="of_c")),
    ("the sigmoid derivative is s * (1 - s), where s is the gate's value.",
     lstm_step_backward_variant(sig_grad="s")),
    ("the gradients of the i, f and o blocks of a are missing the sigmoid's derivative: "
     "di, df and do are gradients of the gates' values; multiply each by s * (1 - s), with s "
     "that gate's value, to get the gradient of its pre-activation.",
     lstm_step_backward_variant(sig_grad="none")),
    ("the derivative of g = tanh(.) is 1 - g**2.", lstm_step_backward_variant(g_grad="nosquare")),
    ("dprev_c = dc * f: the old cell state reaches next_c through the forget gate.",
     lstm_step_backward_variant(dprev_c_f=False)),
    ("do uses the old cell state: the output gate multiplies tanh of the new one "
     "(h_t = o * tanh(c_t)), so do = dnext_h * tanh(next_c), not tanh(prev_c).",
     lstm_step_backward_variant(do_cell="prev")),
]

STEP_GRADS = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")


def _learner_step_backward(dnext_h, dnext_c, cache, sig_grad=lambda s: s * (1 - s), do_cell=None):
    """A learner's lstm_step_backward on the reference's cache: ``sig_grad(s)`` is the sigmoid's
    derivative as believed, ``do_cell`` the cell state whose tanh do is made of (next_c's if None)."""
    x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    do = dnext_h * (tanh_c if do_cell is None else np.tanh(do_cell))
    da = np.concatenate([dc * g * sig_grad(i), dc * prev_c * sig_grad(f), dc * i * (1 - g ** 2),
                         do * sig_grad(o)], axis=1)
    return (np.einsum("nk,dk->nd", da, Wx), np.einsum("nk,hk->nh", da, Wh), dc * f,
            np.einsum("nd,nk->dk", x, da), np.einsum("nh,nk->hk", prev_h, da), np.einsum("nk->k", da))


def _wrong_ignores_dnext_c(dnext_h, dnext_c, cache):  # dc without its dnext_c term
    return _learner_step_backward(dnext_h, np.zeros_like(dnext_c), cache)


def _wrong_sigmoid_grad_is_s(dnext_h, dnext_c, cache):  # sigmoid' taken as s, not s * (1 - s)
    return _learner_step_backward(dnext_h, dnext_c, cache, sig_grad=lambda s: s)


def _wrong_sigmoid_grad_missing(dnext_h, dnext_c, cache):  # di, df, do taken as the blocks of da
    return _learner_step_backward(dnext_h, dnext_c, cache, sig_grad=lambda s: 1)


def _wrong_dprev_c_without_f(dnext_h, dnext_c, cache):  # dprev_c = dc, the forget gate forgotten
    dx, dprev_h, dprev_c, dWx, dWh, db = _learner_step_backward(dnext_h, dnext_c, cache)
    return dx, dprev_h, dprev_c / cache[6], dWx, dWh, db


def _wrong_do_uses_prev_c(dnext_h, dnext_c, cache):  # do = dnext_h * tanh(prev_c)
    return _learner_step_backward(dnext_h, dnext_c, cache, do_cell=cache[2])


def _step_bwd(step_backward):
    def outputs(case):
        next_h, next_c, cache = ref.lstm_step_forward(*case.args.values())
        grads = step_backward(case.douts["dnext_h"], case.douts["dnext_c"], cache)
        return {"next_h": next_h, "next_c": next_c, **dict(zip(STEP_GRADS, grads))}
    return outputs


# Used when no known mistake explains the gradients: what each one depends on, so that the list of
# right and wrong outputs under the verdict points to the line to re-derive. No guessed cause.
LSTM_GRAD_HINTS = {
    "dx": "dx is wrong and no mistake we know of explains it. dx, dprev_h, dWx, dWh and db all come "
          "from da, the gradient of the pre-activation a (N, 4H); dprev_c does not. If dprev_c is right "
          "(see `others`), dc is right and the error is in a gate's gradient or its activation's "
          "derivative (and which block of da is which gate); if dprev_c is wrong too, start from dc. "
          "Hints 2 and 3 under the exercise give the local derivatives.",
    "dprev_h": "dx is right, so da is: look at how dprev_h is made from da (which weight matrix, "
               "transposed?).",
    "dprev_c": "dx is right, so da and dc are: dprev_c depends only on dc and on how c_{t-1} enters c_t.",
    "dWx": "dx is right, so da is: look at how dWx is made from da and x (shape (D, 4H)).",
    "dWh": "dx is right, so da is: look at how dWh is made from da and prev_h (shape (H, 4H)).",
    "db": "dx is right, so da is: b is added to every row of a, so db collects da over the batch "
          "(shape (4H,)).",
}

lstm_step_backward = BackwardExercise(
    "lstm_step_backward", lstm_step_forward, STEP_GRADS, ref.lstm_step_backward,
    mistakes=attach_implementations([Mistake(h, _step_bwd(f)) for h, f in STEP_BACKWARD_MISTAKES], {
        "dnext_c is ignored": _wrong_ignores_dnext_c, "the sigmoid derivative is s * (1 - s)": _wrong_sigmoid_grad_is_s,
        "missing the sigmoid's derivative": _wrong_sigmoid_grad_missing, "dprev_c = dc * f": _wrong_dprev_c_without_f,
        "do uses the old cell state": _wrong_do_uses_prev_c}),
    hints=LSTM_GRAD_HINTS,
)

SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")


def _swapped_bptt(case):
    """lstm_backward that hands dprev_h on as the cell's gradient and dprev_c as the hidden state's.
    dh0 is left out: it depends on which of the two the loop's last line calls dprev_h."""
    h, caches = ref.lstm_forward(*case.args.values())
    dh = case.douts["dh"]
    T = dh.shape[1]
    dxs, totals = [None] * T, [0, 0, 0]
    dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        dxs[t], dprev_h, dprev_c, *grads = ref.lstm_step_backward(dh[:, t] + dprev_c, dprev_h, caches[t])
        totals = [a + b for a, b in zip(totals, grads)]
    return {"h": h, "dx": np.stack(dxs, axis=1), **dict(zip(("dWx", "dWh", "db"), totals))}


def _bptt_outputs(**kw):
    def outputs(case):
        h, caches = ref.lstm_forward(*case.args.values())
        grads = bptt(ref.lstm_step_backward, caches, case.douts["dh"], cell=True, **kw)
        return {"h": h, **dict(zip(SEQ_GRADS, grads))}
    return outputs


def _learner_backward(step_backward, dh, caches, feed=lambda d, dprev_h, dprev_c: (d + dprev_h, dprev_c)):
    """A learner's lstm_backward around ``step_backward``: ``feed`` makes step t's dnext_h and dnext_c
    from dh[:, t] and the dprev_h and dprev_c that step t + 1 sent back."""
    dxs, totals = [None] * dh.shape[1], [0, 0, 0]
    dprev_h = dprev_c = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dprev_c, *grads = step_backward(*feed(dh[:, t], dprev_h, dprev_c), caches[t])
        totals = [a + g for a, g in zip(totals, grads)]
    return (np.stack(dxs, axis=1), dprev_h, *totals)


def _wrong_nothing_passed_back(dh, caches):  # dprev_h and dprev_c computed, never used
    return _learner_backward(ref.lstm_step_backward, dh, caches, lambda d, dprev_h, dprev_c: (d, 0 * dprev_c))


def _wrong_passes_swapped(dh, caches):  # dprev_c joins dh[:, t - 1], dprev_h goes in as dnext_c
    return _learner_backward(ref.lstm_step_backward, dh, caches, lambda d, dprev_h, dprev_c: (d + dprev_c, dprev_h))


def _wrong_unpacks_swapped(dh, caches):  # dx, dprev_c, dprev_h, ... = lstm_step_backward(...)
    dxs, totals = [None] * dh.shape[1], [0, 0, 0]
    dprev_h = dprev_c = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_c, dprev_h, *grads = ref.lstm_step_backward(dh[:, t] + dprev_h, dprev_c, caches[t])
        totals = [a + g for a, g in zip(totals, grads)]
    return (np.stack(dxs, axis=1), dprev_h, *totals)


def _wrong_cell_grad_not_carried(dh, caches):  # each step gets a zero dnext_c
    return _learner_backward(ref.lstm_step_backward, dh, caches, lambda d, dprev_h, dprev_c: (d + dprev_h, 0 * dprev_c))


def _wrong_overwrites_grads(dh, caches):  # dWx = dWx_t: only the weight gradients of step 0 are left
    dxs = [None] * dh.shape[1]
    dprev_h = dprev_c = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dprev_c, dWx, dWh, db = ref.lstm_step_backward(dh[:, t] + dprev_h, dprev_c, caches[t])
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


def _wrong_step_dprev_c_without_f(dh, caches):  # its step backward returns dprev_c = dc
    return _learner_backward(_wrong_dprev_c_without_f, dh, caches)


def _wrong_step_do_uses_prev_c(dh, caches):  # its step backward makes do of tanh(prev_c)
    return _learner_backward(_wrong_do_uses_prev_c, dh, caches)


SWAPPED_BETWEEN_STEPS = (
    "dprev_h and dprev_c are swapped between the steps: step t - 1 gets the cell's gradient as its hidden "
    "state's, and the hidden state's as its cell's. lstm_step_backward returns dx, dprev_h, dprev_c, ... in "
    "that order: dprev_h joins dh[:, t - 1] as dnext_h, dprev_c goes in as dnext_c.")

SEQ_BACKWARD_MISTAKES = [
    Mistake("no gradient reaches the step before: each step gets only dh[:, t] and a zero cell "
            "gradient. Step t returns dprev_h and dprev_c; step t - 1 needs both, dh[:, t - 1] + dprev_h "
            "as its dnext_h and dprev_c as its dnext_c, which is what makes this backpropagation "
            "*through time*.", _bptt_outputs(carry_h=False, carry_c=False), _wrong_nothing_passed_back),
    Mistake(SWAPPED_BETWEEN_STEPS, _swapped_bptt, _wrong_passes_swapped),
    Mistake(SWAPPED_BETWEEN_STEPS, implementation=_wrong_unpacks_swapped),  # the same mistake, unpacked
]

# Used when no known mistake explains the gradients (the verdict says at which time steps they are wrong).
LSTM_SEQ_GRAD_HINTS = {
    "dx": "dx is wrong and no mistake we know of explains it. Look at the time steps where it is wrong: "
          "right at the last step but wrong before it points to what one step hands to the step before "
          "(dprev_h and dprev_c, and what each is added to); wrong at every step points to "
          "lstm_step_backward itself (does its check pass?).",
    "dh0": "dx is right at every step, so the loop is: dh0 is what the first step (t = 0) sends back as "
           "its dprev_h, after the loop.",
    "dWx": "dx is right at every step, so is every step's da: Wx is used by every step, so dWx adds up "
           "what each step returns for it.",
    "dWh": "dx is right at every step, so is every step's da: Wh is used by every step, so dWh adds up "
           "what each step returns for it.",
    "db": "dx is right at every step, so is every step's da: b is used by every step, so db adds up "
          "what each step returns for it.",
}

lstm_backward = BackwardExercise(
    "lstm_backward", lstm_forward, SEQ_GRADS, ref.lstm_backward,
    mistakes=SEQ_BACKWARD_MISTAKES + attach_implementations(seq_backward_mistakes(
        Mistake, ref.lstm_forward, ref.lstm_step_backward, STEP_BACKWARD_MISTAKES, True,
        ("x", "h0", "Wx", "Wh", "b"), SEQ_GRADS), {
        "the cell-state gradient does not reach the step before": _wrong_cell_grad_not_carried,
        "add each step's gradients up": _wrong_overwrites_grads,
        "step backward with this mistake: dprev_c = dc * f": _wrong_step_dprev_c_without_f,
        "step backward with this mistake: do uses the old cell state": _wrong_step_do_uses_prev_c}),
    hints=LSTM_SEQ_GRAD_HINTS, wrt={"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "db": "b"},
)
