"""Checks of notebook 00 (sigmoid, softmax), 02 (numerical_gradient) and 03 (clip_grad_norm)."""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from ._core import Case, Mistake
from ._exercise import Exercise, FunctionExercise

# --- sigmoid -------------------------------------------------------------------------


def _sigmoid_build(rng, N, D):
    return {"x": rng.standard_normal((N, D)) * 3}


def _sigmoid_extremes(rng):
    # The literal 1 / (1 + np.exp(-x)) passes these: exp(1000) is inf (NumPy warns), and
    # 1 / inf is 0, the right value. The form exp(x) / (1 + exp(x)) gives inf / inf = nan.
    x = np.array([[-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]])
    return [Case("very large and very small x, 3-D", {"x": np.stack([x, -x])}),
            Case("very large and very small x (float32)", {"x": x.astype(np.float32)})]


def _mistake_sigmoid(f):
    return lambda case: {"out": f(case.args["x"])}


SIGMOID = FunctionExercise(
    "sigmoid", ("out",), ref.sigmoid, _sigmoid_build, ("N", "D"),
    mistakes=[
        Mistake("that is sigmoid(-x): the formula is 1 / (1 + exp(-x)).",
                _mistake_sigmoid(lambda x: 1 / (1 + np.exp(x)))),
        Mistake("that is tanh(x), not the sigmoid 1 / (1 + exp(-x)).", _mistake_sigmoid(np.tanh)),
    ],
    hints={
        "out": "sigmoid(x) = 1 / (1 + exp(-x)), elementwise.",
        "out.finite": "exp of a large number overflows to inf, and inf / inf is nan. Write the "
                      "sigmoid so that np.exp only ever sees numbers <= 0 (hints 1 and 2 under "
                      "the exercise).",
    },
    extra_cases=_sigmoid_extremes,
)

# --- softmax -------------------------------------------------------------------------


def _softmax_build(rng, N, V):
    return {"scores": rng.standard_normal((N, V)) * 2}


def _softmax_more(rng):
    big = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -998.0]])
    return [
        Case("scores of shape (N, T, V) = (2, 3, 4)", {"scores": rng.standard_normal((2, 3, 4))}),
        Case("one row of scores, shape (V,) = (5,)", {"scores": rng.standard_normal(5)}),
        Case("very large scores: [[1000, 1001, 999], [-1000, -1001, -998]]", {"scores": big}),
    ]


def _m_softmax(f):
    return lambda case: {"probs": f(case.args["scores"])}


SOFTMAX = FunctionExercise(
    "softmax", ("probs",), ref.softmax, _softmax_build, ("N", "V"),
    mistakes=[
        Mistake("your probabilities sum to 1 down each column (axis 0): normalise over the last "
                "axis, with axis=-1 and keepdims=True.",
                _m_softmax(lambda s: np.exp(s - s.max(axis=0, keepdims=True))
                           / np.exp(s - s.max(axis=0, keepdims=True)).sum(axis=0, keepdims=True))),
        Mistake("your probabilities sum to 1 over the whole array: normalise each row separately, "
                "over the last axis (axis=-1, keepdims=True).",
                _m_softmax(lambda s: np.exp(s - s.max()) / np.exp(s - s.max()).sum())),
        Mistake("that is exp(scores) without dividing by the sum over the last axis.",
                _m_softmax(lambda s: np.exp(s))),
    ],
    hints={
        "probs": "softmax(s)_k = exp(s_k) / sum_j exp(s_j), over the last axis (axis=-1).",
        "probs.finite": "subtract each row's own maximum before np.exp "
                        "(scores.max(axis=-1, keepdims=True)): exp(1000) overflows to inf, and "
                        "one maximum for the whole array makes far-below rows 0 / 0.",
    },
    extra_cases=_softmax_more,
)

# --- numerical_gradient --------------------------------------------------------------

from ._calls import TEST_FUNCTIONS  # noqa: E402


class NumericalGradientExercise(Exercise):
    name = "numerical_gradient"
    funcs = ("numerical_gradient",)
    outputs = ("grad",)

    def cases(self, rng):
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
        return TEST_FUNCTIONS[case.options["f"]](case.options["A"])

    def plan(self, case):
        return "numerical_gradient", {"f": case.options["f"], "A": case.options["A"], **case.args}

    def expected(self, case):
        return {"grad": ref.numerical_gradient(self.function(case), case.args["x"], case.args["dout"])}

    @staticmethod
    def variant(f, x, dout, h=1e-5, forward=False, halve=False, use_dout=True, restore=True):
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
        return lambda case: {"grad": self.variant(self.function(case), case.args["x"], case.args["dout"], **kw)}

    def __init__(self):
        self.mistakes = [
            Mistake("that is the forward difference (f(x + h) - f(x)) / h: use centred differences, "
                    "(f(x + h) - f(x - h)) / 2h, which are far more accurate.", self.mistake(forward=True)),
            Mistake("you divide by h; the centred difference divides by 2h, the distance between "
                    "x - h and x + h.", self.mistake(halve=True)),
            Mistake("you differentiate sum(f(x)), not sum(f(x) * dout): multiply f(x) by dout "
                    "before summing.", self.mistake(use_dout=False)),
            Mistake("after perturbing x[i], put the old value back (x[i] = old) before moving to "
                    "the next entry.", self.mistake(restore=False)),
        ]
        self.hints = {"grad": "for every index i: grad[i] = (L(x + h e_i) - L(x - h e_i)) / 2h with "
                              "L(x) = np.sum(f(x) * dout); np.ndindex(x.shape) visits every index."}


NUMERICAL_GRADIENT = NumericalGradientExercise()

# --- clip_grad_norm ------------------------------------------------------------------


class GradsCase(Case):
    """A case whose arrays are the values of the dict ``grads``.

    ``Case.dtype`` only sees arrays passed directly as arguments, so it would call every case
    here float64: float32 gradients would be judged, labelled and matched against known
    mistakes with the float64 tolerance, and correct float32 code rejected.
    """

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.args["grads"].values())).dtype


class ClipGradNormExercise(Exercise):
    name = "clip_grad_norm"
    funcs = ("clip_grad_norm",)

    def cases(self, rng):
        seed = int(rng.integers(0, 2**31))
        g = np.random.default_rng(seed)

        def grads(r, scale, dtype=np.float64, shapes=((4, 6), (6, 6), (6,))):
            names = ("dWx", "dWh", "db")
            return {n: (r.standard_normal(s) * scale).astype(dtype) for n, s in zip(names, shapes)}

        f = np.random.default_rng(0)
        return [
            GradsCase("fixed gradients, total norm about 60, max_norm=5",
                      {"grads": grads(f, 8.0), "max_norm": 5.0}),
            GradsCase("random gradients, total norm below max_norm=5",
                      {"grads": grads(g, 0.2), "max_norm": 5.0}),
            GradsCase("random gradients, total norm about 700, max_norm=1",
                      {"grads": grads(g, 100.0), "max_norm": 1.0}),
            GradsCase("one gradient of shape (1, 1), max_norm=0.5",
                      {"grads": {"dW": np.array([[3.0]])}, "max_norm": 0.5}),
            GradsCase("float32 gradients, max_norm=2", {"grads": grads(g, 5.0, np.float32), "max_norm": 2.0}),
        ]

    outputs = ()

    def output_names(self, case):
        return tuple(f"clipped['{k}']" for k in case.args["grads"]) + ("total_norm",)

    def plan(self, case):
        return "clip_grad_norm", {"grads": case.args["grads"], "max_norm": case.args["max_norm"]}

    def expected(self, case):
        clipped, total = ref.clip_grad_norm(case.args["grads"], case.args["max_norm"])
        out = {f"clipped['{k}']": v for k, v in clipped.items()}
        out["total_norm"] = np.asarray(total)
        return out

    # PyTorch's clip_grad_norm_ scales by max_norm / (total_norm + 1e-6), a learner who follows it
    # by the same. When clipping happens (total_norm > max_norm), the two scales differ by the
    # relative amount 1e-6 / total_norm, so each clipped entry (at most max_norm in size) moves by
    # at most |entry| * 1e-6 / total_norm; relative to max(1, largest entry) that is below
    # TORCH_EPS / total_norm. The allowed error of the clipped arrays is widened by exactly that
    # bound: below 2e-6 on every case, while every catalogued mistake is off by more than 1e-2.
    TORCH_EPS = 1e-6

    def tolerance(self, case, name):
        tol = super().tolerance(case, name)
        if name.startswith("clipped["):
            total = float(np.asarray(self.expected(case)["total_norm"]))
            tol += self.TORCH_EPS / total if total > case.args["max_norm"] else 0.0
        return tol

    def judge(self, case, outputs, modified=()):
        aliases = [m[6:] for m in modified if m.startswith("alias:")]
        verdict = super().judge(case, outputs, [m for m in modified if not m.startswith("alias:")])
        if verdict is None and aliases:
            return self.fail(case, f"`{aliases[0]}` is the very array you were given, not a new one",
                             hint="return new arrays, for example g * scale, or g.copy() when "
                                  "no clipping is needed: the caller may keep using its gradients.")
        return verdict

    @staticmethod
    def variant(grads, max_norm, per_array=False, always=False, after=False, sum_norms=False):
        norms = {k: float(np.sqrt(np.sum(np.square(g, dtype=np.float64)))) for k, g in grads.items()}
        total = sum(norms.values()) if sum_norms else float(np.sqrt(sum(n**2 for n in norms.values())))
        if per_array:
            clipped = {k: g * g.dtype.type(min(1.0, max_norm / norms[k])) for k, g in grads.items()}
        else:
            scale = max_norm / total if (always or total > max_norm) else 1.0
            clipped = {k: g * g.dtype.type(scale) for k, g in grads.items()}
        if after:
            total = float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in clipped.values())))
        out = {f"clipped['{k}']": v for k, v in clipped.items()}
        out["total_norm"] = np.asarray(total)
        return out

    def mistake(self, **kw):
        return lambda case: self.variant(case.args["grads"], case.args["max_norm"], **kw)

    def __init__(self):
        self.mistakes = [
            Mistake("you clip each gradient by its own norm; clip all of them together, by one "
                    "factor max_norm / total_norm from the global norm.", self.mistake(per_array=True)),
            Mistake("you scale the gradients even when total_norm <= max_norm: clip only when the "
                    "norm is too large.", self.mistake(always=True)),
            Mistake("you return the norm after clipping; total_norm is the norm before clipping "
                    "(it is what you would plot to watch for explosions).", self.mistake(after=True)),
            Mistake("you add up the norms of the arrays; the global norm is the square root of the "
                    "sum of all squared entries: sqrt(sum over arrays of np.sum(g**2))).",
                    self.mistake(sum_norms=True)),
        ]
        self.hints = {"total_norm": "total_norm = sqrt(sum over all arrays of np.sum(g ** 2)), "
                                    "as a float, before clipping."}


CLIP_GRAD_NORM = ClipGradNormExercise()

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [SIGMOID, SOFTMAX, NUMERICAL_GRADIENT, CLIP_GRAD_NORM]
