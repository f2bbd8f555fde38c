"""Checks of notebook 03: the gradient through time, measured (gradient_norm_by_lag), and clip_grad_norm.

Shapes: N batch, T time steps, D input size, H hidden size.
"""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from course_utils.checking.conventions import plain_rnn_step_backward as step_backward
from course_utils.checking.conventions import plain_rnn_step_forward as step_forward
from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise import Exercise, standard_cases


def _build(rng, N, T, D, H):
    # Wh with spectral radius near 1 and inputs of size 1: the norms neither vanish nor explode
    # over a few steps, so every lag weighs in the comparison.
    return {"x": rng.standard_normal((N, T, D)), "h0": 0.5 * rng.standard_normal((N, H)),
            "Wx": rng.standard_normal((D, H)) / np.sqrt(D), "Wh": rng.standard_normal((H, H)) / np.sqrt(H),
            "b": 0.1 * rng.standard_normal(H), "dh_last": rng.standard_normal((N, H))}


def _variant(case, order="backward", carry=True, norm_of="dprev_h", norm="rows", lags="all"):
    """What a measurement with one of the usual mistakes returns."""
    a = case.args
    caches, h = [], a["h0"]
    for t in range(a["x"].shape[1]):
        h, cache = step_forward(a["x"][:, t], h, a["Wx"], a["Wh"], a["b"])
        caches.append(cache)

    def size(g):
        if norm == "whole":
            return np.linalg.norm(g)
        return np.linalg.norm(g, axis=0 if norm == "columns" else 1).mean()

    dh = a["dh_last"]
    norms = [size(dh)]
    for cache in (reversed(caches) if order == "backward" else caches):
        dx, dprev_h, *_ = step_backward(dh if carry else a["dh_last"], cache)
        dh = dprev_h
        norms.append(size(dx if norm_of == "dx" else dprev_h))
    norms = np.array(norms)
    if lags == "no lag 0":
        norms = norms[1:]
    elif lags == "no h0":
        norms = norms[:-1]
    elif lags == "reversed":
        norms = norms[::-1]
    return {"norms": norms.astype(a["dh_last"].dtype)}


def _mistake(hint, implementation, **kw):
    return Mistake(hint, lambda case: _variant(case, **kw), implementation)


# Wrong measurements, as a learner writes them: fn(x, h0, Wx, Wh, b, dh_last, step_forward, step_backward).

def _caches(x, h0, Wx, Wh, b, rnn_step_forward):
    caches, h = [], h0
    for t in range(x.shape[1]):
        h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        caches.append(cache)
    return caches


def _size(g):
    return np.linalg.norm(g, axis=1).mean()


def _wrong_forward_order(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):  # first step first
    dh, norms = dh_last, [_size(dh_last)]
    for cache in _caches(x, h0, Wx, Wh, b, rnn_step_forward):
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(_size(dh))
    return np.array(norms)


def _wrong_not_carried(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):  # always dh_last
    norms = [_size(dh_last)]
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        _, dprev_h, _, _, _ = rnn_step_backward(dh_last, cache)
        norms.append(_size(dprev_h))
    return np.array(norms)


def _wrong_norm_of_dx(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):  # the inputs' gradient
    dh, norms = dh_last, [_size(dh_last)]
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        dx, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(_size(dx))
    return np.array(norms)


def _wrong_one_norm(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):  # the norm of all N x H numbers
    dh, norms = dh_last, [np.linalg.norm(dh_last)]
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(np.linalg.norm(dh))
    return np.array(norms)


def _wrong_without_lag_0(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):  # dh_last left out
    dh, norms = dh_last, []
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.append(_size(dh))
    return np.array(norms)


def _wrong_without_h0(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):  # recorded before each step
    dh, norms = dh_last, []
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        norms.append(_size(dh))
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
    return np.array(norms)


def _wrong_in_time_order(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward):  # h0's norm first
    dh, norms = dh_last, [_size(dh_last)]
    for cache in reversed(_caches(x, h0, Wx, Wh, b, rnn_step_forward)):
        _, dh, _, _, _ = rnn_step_backward(dh, cache)
        norms.insert(0, _size(dh))
    return np.array(norms)


class GradientNormByLagExercise(Exercise):
    """gradient_norm_by_lag(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward) -> norms
    (T + 1,), called with the course's own step functions."""

    name = "gradient_norm_by_lag"
    funcs = ("gradient_norm_by_lag",)
    outputs = ("norms",)

    def cases(self, rng):
        """The grid of cases: the standard N/T/D/H sizes, with Wh near spectral radius 1."""
        return standard_cases(_build, ("N", "T", "D", "H"), rng)

    def plan(self, case):
        """Called through its own convention, which passes the step functions in."""
        return "gradient_norm_by_lag", {"args": case.args}

    def expected(self, case):
        """The reference's norms, measured with the same step functions as the learner's."""
        a = case.args
        return {"norms": ref.gradient_norm_by_lag(*[v.copy() for v in a.values()], step_forward, step_backward)}

    def judge(self, case, outputs, modified=()):
        """Judged in the case's dtype: norms computed in float64 from float32 inputs are as good."""
        # A measurement, not a layer: norms computed in float64 from float32 inputs are as good.
        norms = outputs.get("norms")
        if norms is not None and norms.dtype.kind == "f":
            outputs = {**outputs, "norms": norms.astype(case.dtype)}
        return super().judge(case, outputs, modified)

    mistakes = [
        _mistake("you go through the steps from the first to the last; the gradient travels backwards: "
                 "start at the last step's cache and end at the first (reversed(caches)).", _wrong_forward_order, order="forward"),
        _mistake("every step starts again from dh_last: feed each step the dprev_h that the step after it "
                 "returned, so that the gradient is carried back one step at a time.", _wrong_not_carried, carry=False),
        _mistake("your norms are those of dx, the gradient with respect to the inputs; measure dprev_h, "
                 "the gradient with respect to the hidden state one step earlier.", _wrong_norm_of_dx, norm_of="dx"),
        _mistake("you take one norm of the whole (N, H) array; take the norm of each sequence's gradient "
                 "(over the H units, axis=1), then average over the N sequences.", _wrong_one_norm, norm="whole"),
        _mistake("your norms are taken over the batch axis (axis=0); take them over the H units of each "
                 "sequence (axis=1), then average over the N sequences.", None, norm="columns"),
        _mistake("your norms start at lag 1: norms[0] is lag 0, the norm of dh_last itself, "
                 "so there are T + 1 entries.", _wrong_without_lag_0, lags="no lag 0"),
        _mistake("your norms stop at lag T - 1: the last entry is lag T, the gradient with respect to h0, "
                 "so there are T + 1 entries.", _wrong_without_h0, lags="no h0"),
        _mistake("your norms are in the opposite order: norms[k] is lag k, so norms[0] belongs to dh_last "
                 "and norms[T] to h0.", _wrong_in_time_order, lags="reversed"),
    ]
    hints = {
        "norms": "norms[k] is the norm of dL/dh_{T-k} (over the H units), averaged over the N "
                 "sequences; compare your first two entries with a computation by hand "
                 "(see hint 2 under the exercise).",
        "norms.shape": "norms has T + 1 entries, one per lag k = 0, 1, ..., T: from dh_last (lag 0) "
                       "back to the gradient with respect to h0 (lag T).",
    }


gradient_norm_by_lag = GradientNormByLagExercise()



# --- clip_grad_norm ------------------------------------------------------------------


class GradsCase(Case):
    """A case whose arrays are the values of the dict ``grads``.

    ``Case.dtype`` only sees arrays passed directly as arguments, so it would call every case
    here float64: float32 gradients would be judged, labelled and matched against known
    mistakes with the float64 tolerance, and correct float32 code rejected.
    """

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the gradients (of the first array in ``grads``)."""
        return next(iter(self.args["grads"].values())).dtype


def _wrong_clip_each_array(grads, max_norm):  # each array clipped by its own norm
    clipped = {}
    for k, g in grads.items():
        norm = np.linalg.norm(g)
        clipped[k] = g * (max_norm / norm) if norm > max_norm else g.copy()
    return clipped, float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))


def _wrong_clip_always(grads, max_norm):  # scaled to max_norm even when the norm is below it
    total_norm = float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))
    return {k: g * (max_norm / total_norm) for k, g in grads.items()}, total_norm


def _wrong_clip_norm_after(grads, max_norm):  # the norm returned is that of the clipped arrays
    total_norm = float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))
    scale = min(1.0, max_norm / total_norm)
    clipped = {k: g * scale for k, g in grads.items()}
    return clipped, float(np.sqrt(sum(np.sum(g ** 2) for g in clipped.values())))


class ClipGradNormExercise(Exercise):
    """clip_grad_norm(grads, max_norm) -> (clipped, total_norm): every array of the dict scaled by one
    factor when the global norm is above max_norm."""

    name = "clip_grad_norm"
    funcs = ("clip_grad_norm",)

    def cases(self, rng):
        """The grid of cases: norms above and below max_norm, a single (1, 1) array, float32 gradients."""
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
        """Every clipped array, as ``clipped['dWx']``, then ``total_norm``."""
        return tuple(f"clipped['{k}']" for k in case.args["grads"]) + ("total_norm",)

    def plan(self, case):
        """Called through its own convention, which also reports arrays returned unchanged (aliases)."""
        return "clip_grad_norm", {"grads": case.args["grads"], "max_norm": case.args["max_norm"]}

    def expected(self, case):
        """The reference's clipped arrays, by ``clipped['name']``, and its total_norm."""
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
        """Widened by ``TORCH_EPS / total_norm`` on the clipped arrays, for PyTorch's + 1e-6 (see above)."""
        tol = super().tolerance(case, name)
        if name.startswith("clipped["):
            total = float(np.asarray(self.expected(case)["total_norm"]))
            tol += self.TORCH_EPS / total if total > case.args["max_norm"] else 0.0
        return tol

    def judge(self, case, outputs, modified=()):
        """As ``Exercise.judge``; then a clipped array that is the very input array fails."""
        aliases = [m[6:] for m in modified if m.startswith("alias:")]
        verdict = super().judge(case, outputs, [m for m in modified if not m.startswith("alias:")])
        if verdict is None and aliases:
            return self.fail(case, f"`{aliases[0]}` is the very array you were given, not a new one",
                             hint="return new arrays, for example g * scale, or g.copy() when "
                                  "no clipping is needed: the caller may keep using its gradients.")
        return verdict

    @staticmethod
    def variant(grads, max_norm, per_array=False, always=False, after=False, sum_norms=False):
        """Clipping with one of the catalogued mistakes switched on: per array, always, the norm
        after clipping, or the sum of the norms. Returns the outputs by name, as ``expected``."""
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
        """A mistake's model: the outputs of ``variant`` with ``kw`` switched on, on a case."""
        return lambda case: self.variant(case.args["grads"], case.args["max_norm"], **kw)

    def __init__(self):
        self.mistakes = [
            Mistake("you clip each gradient by its own norm; clip all of them together, by one "
                    "factor max_norm / total_norm from the global norm.", self.mistake(per_array=True),
                    _wrong_clip_each_array),
            Mistake("you scale the gradients even when total_norm <= max_norm: clip only when the "
                    "norm is too large.", self.mistake(always=True), _wrong_clip_always),
            Mistake("you return the norm after clipping; total_norm is the norm before clipping "
                    "(it is what you would plot to watch for explosions).", self.mistake(after=True),
                    _wrong_clip_norm_after),
            Mistake("you add up the norms of the arrays; the global norm is the square root of the "
                    "sum of all squared entries: sqrt(sum over arrays of np.sum(g**2))).",
                    self.mistake(sum_norms=True)),
        ]
        self.hints = {"total_norm": "total_norm = sqrt(sum over all arrays of np.sum(g ** 2)), "
                                    "as a float, before clipping."}


clip_grad_norm = ClipGradNormExercise()
