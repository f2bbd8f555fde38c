"""Checks of notebook 03: the gradient through time, measured (gradient_norm_by_lag).

Shapes: N batch, T time steps, D input size, H hidden size.
"""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from ._calls import plain_rnn_step_backward as step_backward
from ._calls import plain_rnn_step_forward as step_forward
from ._core import Case, Mistake
from ._exercise import Exercise, standard_cases


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


def _mistake(hint, **kw):
    return Mistake(hint, lambda case: _variant(case, **kw))


class GradientNormByLagExercise(Exercise):
    name = "gradient_norm_by_lag"
    funcs = ("gradient_norm_by_lag",)
    outputs = ("norms",)

    def cases(self, rng):
        return standard_cases(_build, ("N", "T", "D", "H"), rng)

    def plan(self, case):
        return "gradient_norm_by_lag", {"args": case.args}

    def expected(self, case):
        a = case.args
        return {"norms": ref.gradient_norm_by_lag(*[v.copy() for v in a.values()], step_forward, step_backward)}

    def judge(self, case, outputs, modified=()):
        # A measurement, not a layer: norms computed in float64 from float32 inputs are as good.
        norms = outputs.get("norms")
        if norms is not None and norms.dtype.kind == "f":
            outputs = {**outputs, "norms": norms.astype(case.dtype)}
        return super().judge(case, outputs, modified)

    mistakes = [
        _mistake("you go through the steps from the first to the last; the gradient travels backwards: "
                 "start at the last step's cache and end at the first (reversed(caches)).", order="forward"),
        _mistake("every step starts again from dh_last: feed each step the dprev_h that the step after it "
                 "returned, so that the gradient is carried back one step at a time.", carry=False),
        _mistake("your norms are those of dx, the gradient with respect to the inputs; measure dprev_h, "
                 "the gradient with respect to the hidden state one step earlier.", norm_of="dx"),
        _mistake("you take one norm of the whole (N, H) array; take the norm of each sequence's gradient "
                 "(over the H units, axis=1), then average over the N sequences.", norm="whole"),
        _mistake("your norms are taken over the batch axis (axis=0); take them over the H units of each "
                 "sequence (axis=1), then average over the N sequences.", norm="columns"),
        _mistake("your norms start at lag 1: norms[0] is lag 0, the norm of dh_last itself, "
                 "so there are T + 1 entries.", lags="no lag 0"),
        _mistake("your norms stop at lag T - 1: the last entry is lag T, the gradient with respect to h0, "
                 "so there are T + 1 entries.", lags="no h0"),
        _mistake("your norms are in the opposite order: norms[k] is lag k, so norms[0] belongs to dh_last "
                 "and norms[T] to h0.", lags="reversed"),
    ]
    hints = {
        "norms": "norms[k] is the norm of dL/dh_{T-k} (over the H units), averaged over the N "
                 "sequences; compare your first two entries with a computation by hand "
                 "(see hint 2 under the exercise).",
        "norms.shape": "norms has T + 1 entries, one per lag k = 0, 1, ..., T: from dh_last (lag 0) "
                       "back to the gradient with respect to h0 (lag T).",
    }


GRADIENT_NORM_BY_LAG = GradientNormByLagExercise()

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [GRADIENT_NORM_BY_LAG]
