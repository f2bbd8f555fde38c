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
    hints={"next_h": "no common mistake explains these values: compare your code term by term with "
                     "h_t = tanh(x_t Wx + h_{t-1} Wh + b), which input each weight multiplies, the bias, "
                     "the activation (hints 1 and 2 under the exercise).",
           "next_h.shape": "next_h should have shape (N, H): x @ Wx is (N, H), prev_h @ Wh is (N, H)."},
)

RNN_FORWARD = FunctionExercise(
    "rnn_forward", ("h", "cache"), ref.rnn_forward, _seq_build, ("N", "T", "D", "H"),
    mistakes=seq_forward_mistakes(Mistake, ref.rnn_step_forward, STEP_MISTAKES, False,
                                  ("x", "h0", "Wx", "Wh", "b"), ("Wx", "Wh", "b")),
    hints={"h": "no common mistake explains these values: check that step t reads x[:, t] and the state "
                "after step t - 1 (h0 for t = 0), and that h[:, t] is the state after step t "
                "(hints 1 and 2 under the exercise).",
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
    hints={"out": "no common mistake explains these values: out[n, t] must be x[n, t] W + b for every n "
                  "and t (hints 1 and 2 under the exercise).",
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

RNN_STEP_BACKWARD = BackwardExercise(
    "rnn_step_backward", RNN_STEP_FORWARD, STEP_GRADS, ref.rnn_step_backward,
    mistakes=[Mistake(h, _step_bwd_mistake(f)) for h, f in STEP_BACKWARD_MISTAKES],
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

RNN_BACKWARD = BackwardExercise(
    "rnn_backward", RNN_FORWARD, SEQ_GRADS, ref.rnn_backward,
    mistakes=seq_backward_mistakes(Mistake, ref.rnn_forward, ref.rnn_step_backward, STEP_BACKWARD_MISTAKES,
                                   False, ("x", "h0", "Wx", "Wh", "b"), SEQ_GRADS) + loop_mistakes(),
    hints=SEQ_GRAD_HINTS, wrt={"dx": "x", "dh0": "h0", "dWx": "Wx", "dWh": "Wh", "db": "b"},
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
    hints={"dx": "no common mistake explains this gradient. out[n, t] = x[n, t] W + b is one affine map "
                 "per example and step: dx[n, t] depends only on dout[n, t] and W, and has the shape of "
                 "x[n, t], (H,) (hints 1 and 2 under the exercise).",
           "dW": "no common mistake explains this gradient. W is used by every example at every step, so "
                 "dW, of shape (H, M), adds up N * T contributions (hints 1 and 2 under the exercise).",
           "db": "no common mistake explains this gradient. b is added at every example and every step, so "
                 "db, of shape (M,), adds up N * T contributions (hint 2 under the exercise)."},
)

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [RNN_STEP_FORWARD, RNN_FORWARD, TEMPORAL_AFFINE_FORWARD, RNN_STEP_BACKWARD, RNN_BACKWARD, TEMPORAL_AFFINE_BACKWARD]
