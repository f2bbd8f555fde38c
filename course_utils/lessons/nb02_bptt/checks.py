"""Checks of notebook 02: numerical gradients and the backward passes of the vanilla RNN and the temporal affine layer."""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref
from course_utils.checking.conventions import TEST_FUNCTIONS
from course_utils.checking.core import Case, Mistake, attach_implementations
from course_utils.checking.exercise import BackwardExercise, Exercise
from course_utils.checking.variants import seq_backward_mistakes
from course_utils.lessons.nb01_rnn_forward import checks as nb01


# --- numerical_gradient --------------------------------------------------------------


def _wrong_forward_difference(f, x, dout, h=1e-5):  # one-sided: (L(x + h e_i) - L(x)) / h
    x = x.copy()
    grad = np.zeros_like(x)
    base = np.sum(f(x) * dout)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        grad[i] = (np.sum(f(x) * dout) - base) / h
        x[i] = old
    return grad


def _wrong_divides_by_h(f, x, dout, h=1e-5):  # the centred difference divided by h, not by 2h
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (np.sum(f(x + step) * dout) - np.sum(f(x - step) * dout)) / h
    return grad


def _wrong_ignores_dout(f, x, dout, h=1e-5):  # the gradient of sum(f(x)), dout left out
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (np.sum(f(x + step)) - np.sum(f(x - step))) / (2 * h)
    return grad


def _wrong_never_restores(f, x, dout, h=1e-5):  # x[i] is left at old - h after its entry is done
    x = x.copy()
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        grad[i] = (plus - np.sum(f(x) * dout)) / (2 * h)
    return grad


class NumericalGradientExercise(Exercise):
    """numerical_gradient(f, x, dout) -> grad, the shape of x: the gradient of sum(f(x) * dout) by
    centred differences, on three test functions named in ``TEST_FUNCTIONS``."""

    name = "numerical_gradient"
    funcs = ("numerical_gradient",)
    outputs = ("grad",)

    def cases(self, rng):
        """The grid of cases: one fixed and three random, each a test function with x of its own shape
        (a matrix, a 3-d array, a vector) and a random dout."""
        seed = int(rng.integers(0, 2**31))
        g = np.random.default_rng(seed)
        specs = [
            ("fixed inputs: f(x) = tanh(x @ A), x of shape (3, 4)", "tanh(x @ A)", (3, 4), (4, 5), 0),
            ("random inputs: f(x) = sin(x) * x**2, x of shape (2, 3, 2)", "sin(x) * x**2", (2, 3, 2), (1,), None),
            ("random inputs: f(x) = x / sqrt(1 + sum(x**2)), x of shape (2, 5)", "x / sqrt(1 + sum(x**2))", (2, 5), (1,), None),
            ("random inputs: f(x) = sin(x) * x**2, x of shape (6,)", "sin(x) * x**2", (6,), (1,), None),
        ]
        cases = []
        for label, fname, xshape, ashape, s in specs:
            r = np.random.default_rng(s) if s is not None else g
            x = r.standard_normal(xshape)
            A = r.standard_normal(ashape)
            dout = r.standard_normal(TEST_FUNCTIONS[fname](A)(x).shape)
            cases.append(Case(label, {"x": x, "dout": dout}, options={"f": fname, "A": A}))
        return cases

    def function(self, case):
        """The case's test function f, rebuilt from its name and its array A."""
        return TEST_FUNCTIONS[case.options["f"]](case.options["A"])

    def plan(self, case):
        """The test function travels by name and A, not as a function: the child rebuilds it."""
        return "numerical_gradient", {"f": case.options["f"], "A": case.options["A"], **case.args}

    def expected(self, case):
        """The reference's centred differences on the case's f, x and dout."""
        return {"grad": ref.numerical_gradient(self.function(case), case.args["x"], case.args["dout"])}

    @staticmethod
    def variant(f, x, dout, h=1e-5, forward=False, halve=False, use_dout=True, restore=True):
        """Finite differences with one of the catalogued mistakes switched on: a forward difference,
        dividing by h, dout left out, or x[i] never put back. Returns grad, the shape of x."""
        x = x.copy()
        grad = np.zeros_like(x)
        L = (lambda v: np.sum(f(v) * dout)) if use_dout else (lambda v: np.sum(f(v)))
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + h
            plus = L(x)
            x[i] = old if forward else old - h
            minus = L(x)
            if restore:
                x[i] = old
            grad[i] = (plus - minus) / (h if (forward or halve) else 2 * h)
        return grad

    def mistake(self, **kw):
        """A mistake's model: the outputs of ``variant`` with ``kw`` switched on, on a case."""
        return lambda case: {"grad": self.variant(self.function(case), case.args["x"], case.args["dout"], **kw)}

    def __init__(self):
        self.mistakes = [
            Mistake("that is the forward difference (f(x + h) - f(x)) / h: use centred differences, "
                    "(f(x + h) - f(x - h)) / 2h, which are far more accurate.", self.mistake(forward=True),
                    _wrong_forward_difference),
            Mistake("you divide by h; the centred difference divides by 2h, the distance between "
                    "x - h and x + h.", self.mistake(halve=True), _wrong_divides_by_h),
            Mistake("you differentiate sum(f(x)), not sum(f(x) * dout): multiply f(x) by dout "
                    "before summing.", self.mistake(use_dout=False), _wrong_ignores_dout),
            Mistake("after perturbing x[i], put the old value back (x[i] = old) before moving to "
                    "the next entry.", self.mistake(restore=False), _wrong_never_restores),
        ]
        self.hints = {"grad": "for every index i: grad[i] = (L(x + h e_i) - L(x - h e_i)) / 2h with "
                              "L(x) = np.sum(f(x) * dout); np.ndindex(x.shape) visits every index."}


numerical_gradient = NumericalGradientExercise()

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


def _wrong_tanh_grad_of_a(dnext_h, cache):  # 1 - a**2 on the pre-activation a, not 1 - tanh(a)**2
    x, prev_h, Wx, Wh, next_h = cache
    a = np.arctanh(next_h)  # the pre-activation, recovered from the cache
    da = dnext_h * (1 - a**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def _wrong_without_tanh_grad(dnext_h, cache):  # dnext_h taken as the gradient of a: tanh' left out
    x, prev_h, Wx, Wh, _ = cache
    return dnext_h @ Wx.T, dnext_h @ Wh.T, x.T @ dnext_h, prev_h.T @ dnext_h, dnext_h.sum(axis=0)


def _wrong_db_not_summed(dnext_h, cache):  # db left as da, (N, H), not summed over the batch
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da


def _step_bwd_mistake(step_backward):
    def outputs(case):
        next_h, cache = ref.rnn_step_forward(*case.args.values())
        return {"next_h": next_h, **dict(zip(STEP_GRADS, step_backward(case.douts["dnext_h"], cache)))}
    return outputs


# Fallback hints, for gradients that no catalogued mistake explains: where to look, not the formula.
STEP_GRAD_HINTS = {
    "dx": "no common mistake explains this gradient. dx comes back through two stages: through tanh to "
          "the pre-activation a = x Wx + prev_h Wh + b, then through the product with Wx to x. Check the "
          "gradient of a first (tanh's local derivative), then that product, and that dx has the shape "
          "of x (hints 2 and 3 under the exercise).",
    "dprev_h": "no common mistake explains this gradient. dprev_h comes back through tanh to the "
               "pre-activation a, then through the product with Wh to prev_h; it has the shape of prev_h "
               "(hints 2 and 3 under the exercise).",
    "dWx": "no common mistake explains this gradient. dWx has the shape of Wx, (D, H), and adds up the "
           "contributions of every example of the batch; in the forward pass Wx multiplies x "
           "(hint 2 under the exercise).",
    "dWh": "no common mistake explains this gradient. dWh has the shape of Wh, (H, H), and adds up the "
           "contributions of every example of the batch; in the forward pass Wh multiplies prev_h "
           "(hint 2 under the exercise).",
    "db": "no common mistake explains this gradient. b is added to every row of the batch: db has "
          "shape (H,) (hint 2 under the exercise).",
}

_LOOP = ("If your rnn_step_backward passed its check, look at the loop: every step from t = T - 1 down to "
         "t = 0 must run once, with its own cache, cache[t], and as upstream gradient dh[:, t] plus what "
         "flows back from step t + 1")
SEQ_GRAD_HINTS = {
    "dx": f"no common mistake explains this gradient. {_LOOP}; dx[:, t] is what step t sends to its input "
          "(hints 1 and 2 under the exercise).",
    "dh0": "no common mistake explains this gradient. dh0 is what flows out of step 0 into h0: check "
           f"that the loop reaches t = 0 and that you return what step 0 sends back. {_LOOP} (hint 2 under "
           "the exercise).",
    **{g: f"no common mistake explains this gradient. The weights are shared by all T steps, so {g} adds "
          f"up one contribution per step. {_LOOP} (hint 2 under the exercise)."
       for g in ("dWx", "dWh", "db")},
    "crash": "check the shapes of the arrays in the line that failed. If it stacks the steps' dx and some "
             "are None or missing, the loop did not visit every step: it must run from t = T - 1 down to "
             "t = 0 included (hint 2 under the exercise).",
}

rnn_step_backward = BackwardExercise(
    "rnn_step_backward", nb01.rnn_step_forward, STEP_GRADS, ref.rnn_step_backward,
    mistakes=attach_implementations([Mistake(h, _step_bwd_mistake(f)) for h, f in STEP_BACKWARD_MISTAKES], {
        "the tanh derivative is taken on the pre-activation": _wrong_tanh_grad_of_a,
        "the tanh derivative is missing": _wrong_without_tanh_grad,
        "db should be summed over the batch": _wrong_db_not_summed,
    }),
    hints=STEP_GRAD_HINTS,
)

SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")


def _bptt_loop(dh, caches, steps, cache_of):
    """BPTT over the given steps (in that order), step t reading caches[cache_of(t)].

    dx, dWx, dWh, db as a learner's preallocated loop would return them: a step that never
    runs leaves its dx at zero and adds nothing to the weight gradients."""
    _, _, Wx, Wh, _ = caches[0]
    N, T = dh.shape[:2]
    dx = np.zeros((N, T, Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0], dtype=dh.dtype)
    dprev_h = np.zeros_like(dh[:, 0])
    for t in steps(T):
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, caches[cache_of(t)])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return {"dx": dx, "dWx": dWx, "dWh": dWh, "db": db}


def _loop_mistake(steps, cache_of=lambda t: t):
    def outputs(case):
        h, caches = ref.rnn_forward(*case.args.values())
        # dh0 is left out of the model: learners who make this mistake compute it in several ways
        return {"h": h, **_bptt_loop(case.douts["dh"], caches, steps, cache_of)}
    return outputs


def loop_mistakes():
    """Mistakes in the BPTT loop itself: a step skipped, a step reading another step's cache."""
    return [
        Mistake("step 0 is never visited: range(T - 1, 0, -1) stops before 0, so dx[:, 0] stays zero and "
                "the weight gradients miss step 0's share. Run the loop down to t = 0 included: "
                "range(T - 1, -1, -1), or reversed(range(T)).",
                _loop_mistake(lambda T: range(T - 1, 0, -1))),
        Mistake("step t reads cache[t - 1], the cache of the step before it (and at t = 0, cache[-1] is the "
                "last step's). The backward pass of step t needs what the forward pass of step t saw and "
                "produced: its own cache, cache[t].",
                _loop_mistake(lambda T: range(T - 1, -1, -1), cache_of=lambda t: t - 1)),
    ]


def _wrong_bptt_overwrites(dh, cache):  # dWx = dWx_t: the weight gradients keep the last step visited only
    dxs, dprev_h = [None] * dh.shape[1], np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dWx, dWh, db = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[t])
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


def _wrong_bptt_without_carry(dh, cache):  # step t gets dh[:, t] only, not what flows back from t + 1
    dxs, dWx, dWh, db = [None] * dh.shape[1], 0, 0, 0
    for t in reversed(range(dh.shape[1])):
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t], cache[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


def _wrong_bptt_forward_in_time(dh, cache):  # the steps visited from the first to the last
    dxs, dWx, dWh, db = [None] * dh.shape[1], 0, 0, 0
    dprev_h = np.zeros_like(dh[:, 0])
    for t in range(dh.shape[1]):
        dxs[t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return np.stack(dxs, axis=1), dprev_h, dWx, dWh, db


def _wrong_bptt_loop(dh, cache, steps, cache_of):
    """A preallocated BPTT loop over ``steps``, step t reading cache[cache_of(t)]."""
    Wx, Wh = cache[0][2], cache[0][3]
    dx = np.zeros((*dh.shape[:2], Wx.shape[0]), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(Wh.shape[0], dtype=dh.dtype)
    dprev_h = np.zeros_like(dh[:, 0])
    for t in steps:
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t] + dprev_h, cache[cache_of(t)])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


def _wrong_bptt_stops_before_0(dh, cache):  # range(T - 1, 0, -1): step 0 never visited
    return _wrong_bptt_loop(dh, cache, range(dh.shape[1] - 1, 0, -1), lambda t: t)


def _wrong_bptt_cache_before(dh, cache):  # step t reads cache[t - 1]
    return _wrong_bptt_loop(dh, cache, range(dh.shape[1] - 1, -1, -1), lambda t: t - 1)


rnn_backward = BackwardExercise(
    "rnn_backward", nb01.rnn_forward, SEQ_GRADS, ref.rnn_backward,
    mistakes=attach_implementations(
        seq_backward_mistakes(Mistake, ref.rnn_forward, ref.rnn_step_backward, STEP_BACKWARD_MISTAKES,
                              False, ("x", "h0", "Wx", "Wh", "b"), SEQ_GRADS) + loop_mistakes(), {
            "the weight gradients keep only one time step": _wrong_bptt_overwrites,
            "each step only gets dh[:, t]": _wrong_bptt_without_carry,
            "you go forward in time": _wrong_bptt_forward_in_time,
            "step 0 is never visited": _wrong_bptt_stops_before_0,
            "step t reads cache[t - 1]": _wrong_bptt_cache_before,
        }),
    hints=SEQ_GRAD_HINTS, wrt={"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "db": "b"},
)


def _wrong_affine_db_over_batch(dout, cache):  # db summed over the batch only, not over time
    x, W = cache
    return dout @ W.T, np.einsum("nth,ntm->hm", x, dout), dout.sum(axis=0)


def _wrong_affine_dW_last_step(dout, cache):  # dW from the last time step only
    x, W = cache
    return dout @ W.T, x[:, -1].T @ dout[:, -1], dout.sum(axis=(0, 1))


def _affine_bwd_mistake(f):
    def outputs(case):
        x, W, b = case.args["x"], case.args["W"], case.args["b"]
        dout = case.douts["dout"]
        return {"out": x @ W + b, **dict(zip(("dx", "dW", "db"), f(x, W, dout)))}
    return outputs


temporal_affine_backward = BackwardExercise(
    "temporal_affine_backward", nb01.temporal_affine_forward, ("dx", "dW", "db"), ref.temporal_affine_backward,
    mistakes=[
        Mistake("db is summed over the batch only; the bias is used at every time step too, so sum "
                "over both: dout.sum(axis=(0, 1)).",
                _affine_bwd_mistake(lambda x, W, d: (d @ W.T, np.einsum("nth,ntm->hm", x, d), d.sum(axis=0))),
                _wrong_affine_db_over_batch),
        Mistake("dW only counts the last time step: W is used at every step, so sum x[:, t].T @ "
                "dout[:, t] over t (reshape both to (N*T, ...) and use one product).",
                _affine_bwd_mistake(lambda x, W, d: (d @ W.T, x[:, -1].T @ d[:, -1], d.sum(axis=(0, 1)))),
                _wrong_affine_dW_last_step),
        Mistake("dx = dout @ W.T: W maps H to M, so its transpose maps the gradient back to H.",
                _affine_bwd_mistake(lambda x, W, d: (d @ W, np.einsum("nth,ntm->hm", x, d), d.sum(axis=(0, 1))))),
    ],
    hints={"dx": "no common mistake explains this gradient. out[n, t] = x[n, t] W + b is one affine map "
                 "per example and step: dx[n, t] depends only on dout[n, t] and W, and has the shape of "
                 "x[n, t], (H,) (hints 1 and 2 under the exercise).",
           "dW": "no common mistake explains this gradient. W is used by every example at every step, so "
                 "dW, of shape (H, M), adds up N * T contributions (hints 1 and 2 under the exercise).",
           "db": "no common mistake explains this gradient. b is added at every example and every step, so "
                 "db, of shape (M,), adds up N * T contributions (hint 2 under the exercise)."},
)
