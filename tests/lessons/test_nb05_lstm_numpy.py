"""Proofs of notebook 05's checks (the LSTM, forward and backward), and the grading of its notebook.

The catalogued mistakes are proven from course_utils/lessons/nb05_lstm_numpy/checks.py; here are
correct code written differently (slices of the weights, a dict cache, the input projection of
every step at once, autograd) and the wrong code that no catalogue entry names.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from course_utils import reference as ref
from course_utils.check import EXERCISES
from proofs import Proofs, run

proofs = Proofs("nb05_lstm_numpy")

DTYPE_HINT = "keep the dtype of the inputs"
UNEXPLAINED = "no mistake we know of explains it"


def _sigmoid(a):
    """A learner's own sigmoid, written differently from the reference's."""
    return 0.5 * (1 + np.tanh(a / 2))


# --- lstm_step_forward ---------------------------------------------------------------------------


def lstm_step_forward_gate_slices(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]

    def pre(k):  # the pre-activation of block k, from its own slice of the weights
        cols = slice(k * H, (k + 1) * H)
        return x @ Wx[:, cols] + prev_h @ Wh[:, cols] + b[cols]

    i, f, g, o = _sigmoid(pre(0)), _sigmoid(pre(1)), np.tanh(pre(2)), _sigmoid(pre(3))
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    cache = {"x": x, "prev_h": prev_h, "prev_c": prev_c, "Wx": Wx, "Wh": Wh, "gates": (i, f, g, o),
             "next_c": next_c}
    return next_h, next_c, cache


def lstm_step_forward_dict(x, prev_h, prev_c, Wx, Wh, b):
    """The blocks with np.split; the cache a dict of what the backward needs."""
    i, f, g, o = np.split(x @ Wx + prev_h @ Wh + b, 4, axis=1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=Wx, Wh=Wh, i=i, f=f, g=g, o=o, c=next_c)


def lstm_step_forward_float64(x, prev_h, prev_c, Wx, Wh, b):
    next_h, next_c, cache = lstm_step_forward_gate_slices(x, prev_h, prev_c, Wx, Wh, b)
    return next_h.astype(np.float64), next_c.astype(np.float64), cache


proofs.correct("lstm_step_forward", lstm_step_forward_gate_slices)
proofs.correct("lstm_step_forward", lstm_step_forward_dict)
proofs.wrong("lstm_step_forward", lstm_step_forward_float64, message="has dtype float64, but the inputs were float32",
             hint=DTYPE_HINT, output="next_h")

# --- lstm_step_backward --------------------------------------------------------------------------


def lstm_step_backward_einsum(dnext_h, dnext_c, cache):
    i, f, g, o = cache["gates"]
    tanh_c = np.tanh(cache["next_c"])
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    da = np.concatenate([dc * g * i * (1 - i), dc * cache["prev_c"] * f * (1 - f),
                         dc * i * (1 - g ** 2), dnext_h * tanh_c * o * (1 - o)], axis=1)
    return (np.einsum("nk,dk->nd", da, cache["Wx"]), np.einsum("nk,hk->nh", da, cache["Wh"]), dc * f,
            np.einsum("nd,nk->dk", cache["x"], da), np.einsum("nh,nk->hk", cache["prev_h"], da),
            np.einsum("nk->k", da))


def lstm_step_backward_dict(dnext_h, dnext_c, cache):
    k = cache
    t = np.tanh(k["c"])
    dc = dnext_c + dnext_h * k["o"] * (1 - t * t)
    da = np.hstack([dc * k["g"] * k["i"] * (1 - k["i"]), dc * k["prev_c"] * k["f"] * (1 - k["f"]),
                    dc * k["i"] * (1 - k["g"] ** 2), dnext_h * t * k["o"] * (1 - k["o"])])
    return da @ k["Wx"].T, da @ k["Wh"].T, dc * k["f"], k["x"].T @ da, k["prev_h"].T @ da, da.sum(0)


def lstm_step_forward_for_autograd(x, prev_h, prev_c, Wx, Wh, b):
    next_h, next_c, cache = lstm_step_forward_dict(x, prev_h, prev_c, Wx, Wh, b)
    return next_h, next_c, {**cache, "b_value": b}


def lstm_step_backward_autograd(dnext_h, dnext_c, cache):
    """PyTorch does the calculus: rebuild the step on tensors and call backward."""
    import torch

    names = ("x", "prev_h", "prev_c", "Wx", "Wh")
    leaves = {n: torch.tensor(cache[n], requires_grad=True) for n in names}
    b = torch.zeros(cache["Wx"].shape[1], dtype=leaves["x"].dtype, requires_grad=True)
    a = leaves["x"] @ leaves["Wx"] + leaves["prev_h"] @ leaves["Wh"] + b + torch.tensor(cache["b_value"])
    i, f, g, o = a.chunk(4, dim=1)
    c = torch.sigmoid(f) * leaves["prev_c"] + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    (h * torch.tensor(dnext_h)).sum().add((c * torch.tensor(dnext_c)).sum()).backward()
    g_ = {n: leaves[n].grad.numpy() for n in names}
    return g_["x"], g_["prev_h"], g_["prev_c"], g_["Wx"], g_["Wh"], b.grad.numpy()


def lstm_step_backward_df_uses_f(dnext_h, dnext_c, cache):
    """df = dc * f instead of dc * prev_c: a mistake outside the catalogue."""
    k = cache
    t = np.tanh(k["c"])
    dc = dnext_c + dnext_h * k["o"] * (1 - t * t)
    da = np.hstack([dc * k["g"] * k["i"] * (1 - k["i"]), dc * k["f"] * k["f"] * (1 - k["f"]),
                    dc * k["i"] * (1 - k["g"] ** 2), dnext_h * t * k["o"] * (1 - k["o"])])
    return da @ k["Wx"].T, da @ k["Wh"].T, dc * k["f"], k["x"].T @ da, k["prev_h"].T @ da, da.sum(0)


proofs.correct("lstm_step_backward", lstm_step_forward_gate_slices, lstm_step_backward_einsum)
proofs.correct("lstm_step_backward", lstm_step_forward_dict, lstm_step_backward_dict)
proofs.correct("lstm_step_backward", lstm_step_forward_for_autograd, lstm_step_backward_autograd)

# --- lstm_forward --------------------------------------------------------------------------------


def lstm_forward_preallocated(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=x.dtype)
    prev_h, prev_c = h0, np.zeros_like(h0)
    steps = []
    for t in range(T):
        prev_h, prev_c, step = lstm_step_forward_gate_slices(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        steps.append(step)
    return h, {"steps": steps}


def lstm_forward_input_projection(x, h0, Wx, Wh, b):
    """x @ Wx for every step at once; only the recurrence runs in the loop."""
    N, T, _ = x.shape
    H = h0.shape[1]
    ax = x @ Wx + b  # (N, T, 4H)
    h, c = np.empty((N, T, H), dtype=x.dtype), np.empty((N, T, H), dtype=x.dtype)
    gates = np.empty((N, T, 4 * H), dtype=x.dtype)  # i, f, g, o after their activations
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(T):
        a = ax[:, t] + prev_h @ Wh
        gates[:, t] = _sigmoid(a)
        gates[:, t, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
        i, f, g, o = np.split(gates[:, t], 4, axis=1)
        prev_c = f * prev_c + i * g
        prev_h = o * np.tanh(prev_c)
        h[:, t], c[:, t] = prev_h, prev_c
    return h, (x, h0, Wx, Wh, gates, h, c)


def lstm_forward_dict(x, h0, Wx, Wh, b):
    h, c, steps = h0, np.zeros_like(h0), []
    out = np.empty(x.shape[:2] + h0.shape[1:], dtype=x.dtype)
    for t in range(x.shape[1]):
        h, c, step = lstm_step_forward_dict(x[:, t], h, c, Wx, Wh, b)
        out[:, t] = h
        steps.append(step)
    return out, steps


proofs.correct("lstm_forward", lstm_forward_preallocated)
proofs.correct("lstm_forward", lstm_forward_input_projection)
proofs.correct("lstm_forward", lstm_forward_dict)

# --- lstm_backward -------------------------------------------------------------------------------


def lstm_backward_with_steps(dh, cache):
    steps = cache["steps"]
    dx = np.zeros(dh.shape[:2] + (steps[0]["x"].shape[1],), dtype=dh.dtype)
    dWx, dWh = np.zeros_like(steps[0]["Wx"]), np.zeros_like(steps[0]["Wh"])
    db = np.zeros(dWh.shape[1], dtype=dh.dtype)
    dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    for t in reversed(range(len(steps))):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward_einsum(
            dh[:, t] + dprev_h, dprev_c, steps[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


def lstm_backward_input_projection(dh, cache):
    """The gradients of all pre-activations first; the weight gradients in one product each."""
    x, h0, Wx, Wh, gates, h, c = cache
    T = dh.shape[1]
    da = np.empty_like(gates)
    dnext_h, dnext_c = np.zeros_like(h0), np.zeros_like(h0)
    for t in reversed(range(T)):
        i, f, g, o = np.split(gates[:, t], 4, axis=1)
        prev_c = c[:, t - 1] if t > 0 else np.zeros_like(h0)
        tanh_c = np.tanh(c[:, t])
        dh_t = dh[:, t] + dnext_h
        dc = dnext_c + dh_t * o * (1 - tanh_c ** 2)
        da[:, t] = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f),
                                   dc * i * (1 - g ** 2), dh_t * tanh_c * o * (1 - o)], axis=1)
        dnext_c = dc * f
        dnext_h = da[:, t] @ Wh.T
    prev_h = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    return (da @ Wx.T, dnext_h, np.einsum("ntd,ntk->dk", x, da), np.einsum("nth,ntk->hk", prev_h, da),
            da.sum(axis=(0, 1)))


def lstm_backward_dict(dh, cache):
    steps = cache
    dx = np.empty(dh.shape[:2] + (steps[0]["x"].shape[1],), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(steps[0]["Wx"]), np.zeros_like(steps[0]["Wh"]), 0
    dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    for t in range(dh.shape[1] - 1, -1, -1):
        dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward_dict(dh[:, t] + dprev_h, dprev_c,
                                                                                 steps[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


proofs.correct("lstm_backward", lstm_forward_preallocated, lstm_backward_with_steps)
proofs.correct("lstm_backward", lstm_forward_input_projection, lstm_backward_input_projection)
proofs.correct("lstm_backward", lstm_forward_dict, lstm_backward_dict)

globals().update(proofs.tests())


# --- beyond the generic proofs -------------------------------------------------------------------

@pytest.mark.parametrize("seed", (0, 1, 2, 3, 4))
def test_the_reference_passes_every_check_of_05(seed):
    for name in ("lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"):
        funcs = [getattr(ref, f) for f in EXERCISES[name].funcs]
        assert run(name, *funcs, seed=seed), name


def test_an_unexplained_gradient_error_does_not_guess_a_cause():
    """A mistake outside the catalogue gets the fallback hint, which says where to look and that no
    known mistake explains it (the old fallback told the learner to "stack the gradients of the four
    pre-activations" whatever was wrong)."""
    verdict = run("lstm_step_backward", lstm_step_forward_dict, lstm_step_backward_df_uses_f)
    assert verdict.status == "wrong" and verdict.output == "dx"
    assert UNEXPLAINED in verdict.hint
    assert "stack the gradients" not in verdict.hint


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox needs Linux")
def test_the_grader_gives_the_solution_full_marks_and_the_hand_out_zero(tmp_path):
    """The demo cells that call the learner's own step (the i, f, o, g reader) run in the grader's
    child like any other top-level definition."""
    import grading_corpus as corpus
    from conftest import NOTEBOOKS, SOLUTIONS

    from course_utils.grading import Limits, Options, grade

    name = "05_lstm_numpy.ipynb"
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
