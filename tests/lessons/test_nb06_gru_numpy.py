"""Proofs of notebook 06's checks (the GRU with PyTorch's equations, forward and backward), and the
grading of its notebook.

The catalogued mistakes are proven from course_utils/lessons/nb06_gru_numpy/checks.py; here are
correct code written differently (slices of the weights, np.split, the input projection of every
step at once, autograd) and the wrong code that no catalogue entry names.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from course_utils import reference as ref
from course_utils.check import EXERCISES
from proofs import Proofs, run

proofs = Proofs("nb06_gru_numpy")

DTYPE_HINT = "keep the dtype of the inputs"


def _sigmoid(a):
    """A learner's own sigmoid, written differently from the reference's."""
    return 0.5 * (1 + np.tanh(a / 2))


# --- gru_step_forward ----------------------------------------------------------------------------


def gru_step_forward_gate_slices(x, prev_h, Wx, Wh, bx, bh):
    H = prev_h.shape[1]
    r_, z_, n_ = (slice(k * H, (k + 1) * H) for k in range(3))
    r = _sigmoid(x @ Wx[:, r_] + bx[r_] + prev_h @ Wh[:, r_] + bh[r_])
    z = _sigmoid(x @ Wx[:, z_] + bx[z_] + prev_h @ Wh[:, z_] + bh[z_])
    ah_n = prev_h @ Wh[:, n_] + bh[n_]
    n = np.tanh(x @ Wx[:, n_] + bx[n_] + r * ah_n)
    next_h = n + z * (prev_h - n)  # = (1 - z) * n + z * prev_h
    return next_h, {"x": x, "prev_h": prev_h, "Wx": Wx, "Wh": Wh, "r": r, "z": z, "n": n, "ah_n": ah_n}


def gru_step_forward_split(x, prev_h, Wx, Wh, bx, bh):
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, hn = np.split(prev_h @ Wh + bh, 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return n + z * (prev_h - n), (x, prev_h, Wx, Wh, r, z, n, hn)


def gru_step_forward_float64(x, prev_h, Wx, Wh, bx, bh):
    next_h, cache = gru_step_forward_gate_slices(x, prev_h, Wx, Wh, bx, bh)
    return np.array(next_h, dtype=float), cache


proofs.correct("gru_step_forward", gru_step_forward_gate_slices)
proofs.correct("gru_step_forward", gru_step_forward_split)
proofs.wrong("gru_step_forward", gru_step_forward_float64, message="has dtype float64, but the inputs were float32",
             hint=DTYPE_HINT, output="next_h")

# --- gru_step_backward ---------------------------------------------------------------------------


def gru_step_backward_einsum(dnext_h, cache):
    x, prev_h, Wx, Wh, r, z, n, ah_n = (cache[k] for k in ("x", "prev_h", "Wx", "Wh", "r", "z", "n", "ah_n"))
    dan = dnext_h * (1 - z) * (1 - n ** 2)  # gradient of n's pre-activation
    dar = dan * ah_n * r * (1 - r)
    daz = dnext_h * (prev_h - n) * z * (1 - z)
    dax = np.concatenate([dar, daz, dan], axis=1)
    dah = np.concatenate([dar, daz, dan * r], axis=1)
    return (np.einsum("nk,dk->nd", dax, Wx), dnext_h * z + np.einsum("nk,hk->nh", dah, Wh),
            np.einsum("nd,nk->dk", x, dax), np.einsum("nh,nk->hk", prev_h, dah),
            np.einsum("nk->k", dax), np.einsum("nk->k", dah))


def gru_step_backward_learner(dnext_h, cache):
    x, prev_h, Wx, Wh, r, z, n, hn = cache
    dn, dz, direct = dnext_h * (1 - z), dnext_h * (prev_h - n), dnext_h * z
    dpre_n = dn * (1 - n * n)
    dpre_r = dpre_n * hn * r * (1 - r)
    dpre_z = dz * z * (1 - z)
    dax = np.concatenate([dpre_r, dpre_z, dpre_n], axis=1)
    dah = np.concatenate([dpre_r, dpre_z, dpre_n * r], axis=1)
    return dax @ Wx.T, dah @ Wh.T + direct, x.T @ dax, prev_h.T @ dah, dax.sum(0), dah.sum(0)


def gru_step_forward_for_autograd(x, prev_h, Wx, Wh, bx, bh):
    next_h, _ = gru_step_forward_split(x, prev_h, Wx, Wh, bx, bh)
    return next_h, dict(x=x, h=prev_h, Wx=Wx, Wh=Wh, bx=bx, bh=bh)


def gru_step_backward_autograd(dnext_h, cache):
    """PyTorch does the calculus: rebuild the step on tensors and call backward."""
    import torch

    t = {k: torch.tensor(v, requires_grad=True) for k, v in cache.items()}
    H = cache["h"].shape[1]
    ax = t["x"] @ t["Wx"] + t["bx"]
    ah = t["h"] @ t["Wh"] + t["bh"]
    r = torch.sigmoid(ax[:, :H] + ah[:, :H])
    z = torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = torch.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
    ((1 - z) * n + z * t["h"]).mul(torch.tensor(dnext_h)).sum().backward()
    return tuple(t[k].grad.numpy() for k in ("x", "h", "Wx", "Wh", "bx", "bh"))


proofs.correct("gru_step_backward", gru_step_forward_gate_slices, gru_step_backward_einsum)
proofs.correct("gru_step_backward", gru_step_forward_split, gru_step_backward_learner)
proofs.correct("gru_step_backward", gru_step_forward_for_autograd, gru_step_backward_autograd)

# --- gru_forward ---------------------------------------------------------------------------------


def gru_forward_preallocated(x, h0, Wx, Wh, bx, bh):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=x.dtype)
    prev_h, steps = h0, {}
    for t in range(T):
        prev_h, steps[t] = gru_step_forward_gate_slices(x[:, t], prev_h, Wx, Wh, bx, bh)
        h[:, t] = prev_h
    return h, steps


def gru_forward_input_projection(x, h0, Wx, Wh, bx, bh):
    """x @ Wx + bx for every step at once; only the recurrence runs in the loop."""
    N, T, _ = x.shape
    H = h0.shape[1]
    ax = x @ Wx + bx  # (N, T, 3H)
    h = np.empty((N, T, H), dtype=x.dtype)
    gates = np.empty((N, T, 3 * H), dtype=x.dtype)  # r, z, n
    ah_n = np.empty((N, T, H), dtype=x.dtype)
    prev_h = h0
    for t in range(T):
        ah = prev_h @ Wh + bh
        r, z = np.split(_sigmoid(ax[:, t, :2 * H] + ah[:, :2 * H]), 2, axis=1)
        n = np.tanh(ax[:, t, 2 * H:] + r * ah[:, 2 * H:])
        prev_h = (1 - z) * n + z * prev_h
        gates[:, t] = np.concatenate([r, z, n], axis=1)
        ah_n[:, t] = ah[:, 2 * H:]
        h[:, t] = prev_h
    return h, (x, h0, Wx, Wh, gates, ah_n, h)


def gru_forward_split(x, h0, Wx, Wh, bx, bh):
    h, steps, hs = h0, [], []
    for t in range(x.shape[1]):
        h, step = gru_step_forward_split(x[:, t], h, Wx, Wh, bx, bh)
        hs.append(h)
        steps.append(step)
    return np.stack(hs, 1), steps


proofs.correct("gru_forward", gru_forward_preallocated)
proofs.correct("gru_forward", gru_forward_input_projection)
proofs.correct("gru_forward", gru_forward_split)

# --- gru_backward --------------------------------------------------------------------------------


def gru_backward_with_steps(dh, cache):
    steps = cache
    dx = np.zeros(dh.shape[:2] + (steps[0]["x"].shape[1],), dtype=dh.dtype)
    grads = [np.zeros_like(steps[0][k]) for k in ("Wx", "Wh")]
    grads += [np.zeros(grads[0].shape[1], dtype=dh.dtype) for _ in range(2)]
    dprev_h = np.zeros_like(dh[:, 0])
    for t in range(dh.shape[1] - 1, -1, -1):
        dx[:, t], dprev_h, *step_grads = gru_step_backward_einsum(dh[:, t] + dprev_h, steps[t])
        for total, g in zip(grads, step_grads):
            total += g
    return (dx, dprev_h, *grads)


def gru_backward_input_projection(dh, cache):
    """The gradients of all pre-activations first; the weight gradients in one product each."""
    x, h0, Wx, Wh, gates, ah_n, h = cache
    dax, dah = np.empty_like(gates), np.empty_like(gates)
    prev_h = np.concatenate([h0[:, None], h[:, :-1]], axis=1)  # the state before each step
    dnext_h = np.zeros_like(h0)
    for t in reversed(range(dh.shape[1])):
        r, z, n = np.split(gates[:, t], 3, axis=1)
        d = dh[:, t] + dnext_h
        dan = d * (1 - z) * (1 - n ** 2)
        dar = dan * ah_n[:, t] * r * (1 - r)
        daz = d * (prev_h[:, t] - n) * z * (1 - z)
        dax[:, t] = np.concatenate([dar, daz, dan], axis=1)
        dah[:, t] = np.concatenate([dar, daz, dan * r], axis=1)
        dnext_h = d * z + dah[:, t] @ Wh.T
    return (dax @ Wx.T, dnext_h, np.einsum("ntd,ntk->dk", x, dax), np.einsum("nth,ntk->hk", prev_h, dah),
            dax.sum(axis=(0, 1)), dah.sum(axis=(0, 1)))


def gru_backward_learner(dh, cache):
    dxs, totals = [], [0, 0, 0, 0]
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dx_t, dprev_h, *grads = gru_step_backward_learner(dh[:, t] + dprev_h, cache[t])
        dxs.insert(0, dx_t)
        totals = [a + g for a, g in zip(totals, grads)]
    return (np.stack(dxs, 1), dprev_h, *totals)


proofs.correct("gru_backward", gru_forward_preallocated, gru_backward_with_steps)
proofs.correct("gru_backward", gru_forward_input_projection, gru_backward_input_projection)
proofs.correct("gru_backward", gru_forward_split, gru_backward_learner)

globals().update(proofs.tests())


# --- beyond the generic proofs -------------------------------------------------------------------

@pytest.mark.parametrize("seed", (0, 1, 2, 3, 4))
def test_the_reference_passes_every_check_of_06(seed):
    for name in ("gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"):
        funcs = [getattr(ref, f) for f in EXERCISES[name].funcs]
        assert run(name, *funcs, seed=seed), name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox needs Linux")
def test_the_grader_gives_the_solution_full_marks_and_the_hand_out_zero(tmp_path):
    """The demo cells that call the learner's own step (the negated z) run in the grader's child
    like any other top-level definition."""
    import grading_corpus as corpus
    from conftest import NOTEBOOKS, SOLUTIONS

    from course_utils.grading import Limits, Options, grade

    name = "06_gru_numpy.ipynb"
    corpus.write(corpus.load(SOLUTIONS / name), tmp_path / "solutions" / name)
    corpus.write(corpus.load(SOLUTIONS / name), tmp_path / "subs" / "instructor" / name)
    corpus.write(corpus.load(NOTEBOOKS / name), tmp_path / "subs" / "hand_out" / name)
    results = grade(tmp_path / "subs", tmp_path / "out", Options(
        solutions=tmp_path / "solutions", seed="test-seed", jobs=1, progress=False, limits=Limits(wall=60, cpu=60)))
    students = {s["student"]: s for s in results["students"]}
    instructor, hand_out = students["instructor"], students["hand_out"]
    assert [e["exercise"] for e in instructor["exercises"] if e["status"] != "passed"] == []
    assert instructor["total"] == sum(e["possible"] for e in instructor["exercises"]) > 0  # written: pending
    assert {e["status"] for e in hand_out["exercises"]} == {"not attempted"}
