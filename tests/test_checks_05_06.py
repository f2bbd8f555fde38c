"""Proofs of the checks of notebooks 05 (LSTM) and 06 (GRU): the mistakes learners really make in
the backward passes are recognised and named by their cause, under every seed, and correct code
written otherwise (autograd, a dict cache, one big loop) passes.

The learners' functions here are written as a learner would write them, not built from the
checks' own mistake models; tests/test_checks.py has more of notebooks 05-06's cases.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils import reference as ref
from course_utils.check import EXERCISES

SEEDS = (0, 1, 2, 3, 4)


def _sigmoid(a):
    return 0.5 * (1 + np.tanh(a / 2))


def run(exercise, *funcs, seed=0):
    return EXERCISES[exercise].run(*funcs, rng=np.random.default_rng(seed))


# =======================================================================================
# Notebook 05: the LSTM
# =======================================================================================

def lstm_step_forward_dict(x, prev_h, prev_c, Wx, Wh, b):
    """The blocks with np.split; the cache a dict of what the backward needs."""
    i, f, g, o = np.split(x @ Wx + prev_h @ Wh + b, 4, axis=1)
    i, f, g, o = _sigmoid(i), _sigmoid(f), np.tanh(g), _sigmoid(o)
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    return next_h, next_c, dict(x=x, prev_h=prev_h, prev_c=prev_c, Wx=Wx, Wh=Wh, i=i, f=f, g=g, o=o, c=next_c)


def lstm_step_backward_dict(dnext_h, dnext_c, cache, old_cell_in_do=False):
    k = cache
    t = np.tanh(k["c"])
    dc = dnext_c + dnext_h * k["o"] * (1 - t * t)
    do = dnext_h * (np.tanh(k["prev_c"]) if old_cell_in_do else t)
    da = np.hstack([dc * k["g"] * k["i"] * (1 - k["i"]), dc * k["prev_c"] * k["f"] * (1 - k["f"]),
                    dc * k["i"] * (1 - k["g"] ** 2), do * k["o"] * (1 - k["o"])])
    return da @ k["Wx"].T, da @ k["Wh"].T, dc * k["f"], k["x"].T @ da, k["prev_h"].T @ da, da.sum(0)


def lstm_step_backward_do_uses_prev_c(dnext_h, dnext_c, cache):
    return lstm_step_backward_dict(dnext_h, dnext_c, cache, old_cell_in_do=True)


def lstm_step_backward_autograd(dnext_h, dnext_c, cache):
    """PyTorch does the calculus: rebuild the step on tensors and call backward."""
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


def lstm_step_forward_for_autograd(x, prev_h, prev_c, Wx, Wh, b):
    next_h, next_c, cache = lstm_step_forward_dict(x, prev_h, prev_c, Wx, Wh, b)
    return next_h, next_c, {**cache, "b_value": b}


def lstm_forward_dict(x, h0, Wx, Wh, b):
    h, c, steps = h0, np.zeros_like(h0), []
    out = np.empty(x.shape[:2] + h0.shape[1:], dtype=x.dtype)
    for t in range(x.shape[1]):
        h, c, step = lstm_step_forward_dict(x[:, t], h, c, Wx, Wh, b)
        out[:, t] = h
        steps.append(step)
    return out, steps


def _lstm_bptt(dh, steps, step_backward=lstm_step_backward_dict, mistake=None):
    """A learner's lstm_backward; `mistake` names the one this version makes."""
    T = dh.shape[1]
    dx = np.empty(dh.shape[:2] + (steps[0]["x"].shape[1],), dtype=dh.dtype)
    dWx, dWh, db = np.zeros_like(steps[0]["Wx"]), np.zeros_like(steps[0]["Wh"]), 0
    dprev_h, dprev_c = np.zeros_like(dh[:, 0]), np.zeros_like(dh[:, 0])
    for t in range(T - 1, -1, -1):
        if mistake == "unpacked swapped":
            dx[:, t], dprev_c, dprev_h, dWx_t, dWh_t, db_t = step_backward(dh[:, t] + dprev_h, dprev_c, steps[t])
        elif mistake == "passed swapped":
            dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = step_backward(dh[:, t] + dprev_c, dprev_h, steps[t])
        elif mistake == "nothing passed back":  # dprev_h and dprev_c computed, never used
            dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = step_backward(dh[:, t], np.zeros_like(dprev_c),
                                                                           steps[t])
        else:
            dx[:, t], dprev_h, dprev_c, dWx_t, dWh_t, db_t = step_backward(dh[:, t] + dprev_h, dprev_c, steps[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def lstm_backward_dict(dh, cache):
    return _lstm_bptt(dh, cache)


def lstm_backward_unpacks_dprev_c_as_dprev_h(dh, cache):
    return _lstm_bptt(dh, cache, mistake="unpacked swapped")


def lstm_backward_passes_dprev_c_as_dnext_h(dh, cache):
    return _lstm_bptt(dh, cache, mistake="passed swapped")


def lstm_backward_passes_nothing_back(dh, cache):
    return _lstm_bptt(dh, cache, mistake="nothing passed back")


def lstm_backward_step_do_uses_prev_c(dh, cache):
    return _lstm_bptt(dh, cache, step_backward=lstm_step_backward_do_uses_prev_c)


SWAPPED = "dprev_h and dprev_c are swapped between the steps"
NOTHING_BACK = "no gradient reaches the step before"
DO_PREV_C = "do uses the old cell state"

LSTM_CORRECT = [
    ("lstm_step_backward", lstm_step_forward_dict, lstm_step_backward_dict),
    ("lstm_step_backward", lstm_step_forward_for_autograd, lstm_step_backward_autograd),
    ("lstm_backward", lstm_forward_dict, lstm_backward_dict),
]
LSTM_WRONG = [
    ("lstm_step_backward", (lstm_step_forward_dict, lstm_step_backward_do_uses_prev_c), DO_PREV_C),
    ("lstm_backward", (lstm_forward_dict, lstm_backward_unpacks_dprev_c_as_dprev_h), SWAPPED),
    ("lstm_backward", (lstm_forward_dict, lstm_backward_passes_dprev_c_as_dnext_h), SWAPPED),
    ("lstm_backward", (lstm_forward_dict, lstm_backward_passes_nothing_back), NOTHING_BACK),
    ("lstm_backward", (lstm_forward_dict, lstm_backward_step_do_uses_prev_c),
     "step backward with this mistake: " + DO_PREV_C),
]


# =======================================================================================
# Notebook 06: the GRU
# =======================================================================================

def gru_step_forward_split(x, prev_h, Wx, Wh, bx, bh):
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, hn = np.split(prev_h @ Wh + bh, 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return n + z * (prev_h - n), (x, prev_h, Wx, Wh, r, z, n, hn)


def gru_step_backward_learner(dnext_h, cache, mistake=None):
    x, prev_h, Wx, Wh, r, z, n, hn = cache
    H = prev_h.shape[1]
    if mistake == "z swapped":  # the backward of z * n + (1 - z) * prev_h
        dn, dz, direct = dnext_h * z, dnext_h * (n - prev_h), dnext_h * (1 - z)
    else:
        dn, dz, direct = dnext_h * (1 - z), dnext_h * (prev_h - n), dnext_h * z
    dpre_n = dn * (1 - n * n)
    r_mult = prev_h @ Wh[:, 2 * H:] if mistake == "dr without bias" else hn
    dpre_r = dpre_n * r_mult * r * (1 - r)
    dpre_z = dz * z * (1 - z)
    if mistake == "r on dax":
        dax_n, dah_n = dpre_n * r, dpre_n
    else:
        dax_n, dah_n = dpre_n, dpre_n * r
    dax = np.concatenate([dpre_r, dpre_z, dax_n], axis=1)
    dah = np.concatenate([dpre_r, dpre_z, dah_n], axis=1)
    return dax @ Wx.T, dah @ Wh.T + direct, x.T @ dax, prev_h.T @ dah, dax.sum(0), dah.sum(0)


def gru_step_backward_z_swapped(dnext_h, cache):
    return gru_step_backward_learner(dnext_h, cache, mistake="z swapped")


def gru_step_backward_r_on_dax(dnext_h, cache):
    return gru_step_backward_learner(dnext_h, cache, mistake="r on dax")


def gru_step_backward_dr_without_bias(dnext_h, cache):
    return gru_step_backward_learner(dnext_h, cache, mistake="dr without bias")


def gru_step_forward_for_autograd(x, prev_h, Wx, Wh, bx, bh):
    next_h, _ = gru_step_forward_split(x, prev_h, Wx, Wh, bx, bh)
    return next_h, dict(x=x, h=prev_h, Wx=Wx, Wh=Wh, bx=bx, bh=bh)


def gru_step_backward_autograd(dnext_h, cache):
    """PyTorch does the calculus: rebuild the step on tensors and call backward."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in cache.items()}
    H = cache["h"].shape[1]
    ax = t["x"] @ t["Wx"] + t["bx"]
    ah = t["h"] @ t["Wh"] + t["bh"]
    r = torch.sigmoid(ax[:, :H] + ah[:, :H])
    z = torch.sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = torch.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
    ((1 - z) * n + z * t["h"]).mul(torch.tensor(dnext_h)).sum().backward()
    return tuple(t[k].grad.numpy() for k in ("x", "h", "Wx", "Wh", "bx", "bh"))


def gru_forward_split(x, h0, Wx, Wh, bx, bh):
    h, steps, hs = h0, [], []
    for t in range(x.shape[1]):
        h, step = gru_step_forward_split(x[:, t], h, Wx, Wh, bx, bh)
        hs.append(h)
        steps.append(step)
    return np.stack(hs, 1), steps


def _gru_bptt(dh, steps, step_backward=gru_step_backward_learner, carry=True):
    dxs, totals = [], [0, 0, 0, 0]
    dprev_h = np.zeros_like(dh[:, 0])
    for t in reversed(range(dh.shape[1])):
        dx_t, dprev_h, *grads = step_backward(dh[:, t] + dprev_h if carry else dh[:, t], steps[t])
        dxs.insert(0, dx_t)
        totals = [a + g for a, g in zip(totals, grads)]
    return (np.stack(dxs, 1), dprev_h, *totals)


def gru_backward_learner(dh, cache):
    return _gru_bptt(dh, cache)


def gru_backward_does_not_carry_dprev_h(dh, cache):
    return _gru_bptt(dh, cache, carry=False)


def gru_backward_step_z_swapped(dh, cache):
    return _gru_bptt(dh, cache, step_backward=gru_step_backward_z_swapped)


def gru_backward_step_r_on_dax(dh, cache):
    return _gru_bptt(dh, cache, step_backward=gru_step_backward_r_on_dax)


Z_SWAPPED = "z and 1 - z are swapped"
R_ON_DAX = "r is applied to the wrong gradient"
DR_BIAS = "r multiplies ah_n = prev_h @ Wh_n + bh_n, bias included"
NOT_CARRIED = "each step only gets dh[:, t]"

GRU_CORRECT = [
    ("gru_step_backward", gru_step_forward_split, gru_step_backward_learner),
    ("gru_step_backward", gru_step_forward_for_autograd, gru_step_backward_autograd),
    ("gru_backward", gru_forward_split, gru_backward_learner),
]
GRU_WRONG = [
    ("gru_step_backward", (gru_step_forward_split, gru_step_backward_z_swapped), Z_SWAPPED),
    ("gru_step_backward", (gru_step_forward_split, gru_step_backward_r_on_dax), R_ON_DAX),
    ("gru_step_backward", (gru_step_forward_split, gru_step_backward_dr_without_bias), DR_BIAS),
    ("gru_backward", (gru_forward_split, gru_backward_does_not_carry_dprev_h), NOT_CARRIED),
    ("gru_backward", (gru_forward_split, gru_backward_step_z_swapped), "step backward with this mistake: " + Z_SWAPPED),
    ("gru_backward", (gru_forward_split, gru_backward_step_r_on_dax), "step backward with this mistake: " + R_ON_DAX),
]


# =======================================================================================
# The tests
# =======================================================================================

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("exercise, fwd, bwd", LSTM_CORRECT + GRU_CORRECT,
                         ids=[f"{e}-{b.__name__}" for e, _, b in LSTM_CORRECT + GRU_CORRECT])
def test_correct_code_written_otherwise_passes(exercise, fwd, bwd, seed):
    verdict = run(exercise, fwd, bwd, seed=seed)
    assert verdict.status == "passed", verdict.message


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("exercise, funcs, hint", LSTM_WRONG + GRU_WRONG,
                         ids=[f"{e}-{f[-1].__name__}" for e, f, _ in LSTM_WRONG + GRU_WRONG])
def test_a_learners_mistake_gets_the_hint_that_names_it(exercise, funcs, hint, seed):
    verdict = run(exercise, *funcs, seed=seed)
    assert verdict.status == "wrong", verdict.message
    assert hint in verdict.hint, verdict.message


def test_the_reference_passes_every_check_of_05_and_06():
    for name in ("lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
                 "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"):
        funcs = [getattr(ref, f) for f in EXERCISES[name].funcs]
        for seed in SEEDS:
            assert run(name, *funcs, seed=seed), name


def test_an_unexplained_gradient_error_does_not_guess_a_cause():
    """A mistake outside the catalogue gets the fallback hint, which says where to look and that no
    known mistake explains it (the old fallback told the learner to "stack the gradients of the four
    pre-activations" whatever was wrong)."""
    def lstm_step_backward_df_uses_f(dnext_h, dnext_c, cache):  # df = dc * f: not catalogued
        k = cache
        t = np.tanh(k["c"])
        dc = dnext_c + dnext_h * k["o"] * (1 - t * t)
        da = np.hstack([dc * k["g"] * k["i"] * (1 - k["i"]), dc * k["f"] * k["f"] * (1 - k["f"]),
                        dc * k["i"] * (1 - k["g"] ** 2), dnext_h * t * k["o"] * (1 - k["o"])])
        return da @ k["Wx"].T, da @ k["Wh"].T, dc * k["f"], k["x"].T @ da, k["prev_h"].T @ da, da.sum(0)

    verdict = run("lstm_step_backward", lstm_step_forward_dict, lstm_step_backward_df_uses_f)
    assert verdict.status == "wrong" and verdict.output == "dx"
    assert "no mistake we know of explains it" in verdict.hint
    assert "stack the gradients" not in verdict.hint


# --- the grader ----------------------------------------------------------------------------

@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the grader's sandbox needs Linux")
@pytest.mark.parametrize("stem", ["05_lstm_numpy", "06_gru_numpy"])
def test_the_grader_gives_the_solution_full_marks_and_the_hand_out_zero(tmp_path, stem):
    """The demo cells that call the learner's own step (05's i, f, o, g reader, 06's negated z)
    run in the grader's child like any other top-level definition."""
    import grading_corpus as corpus
    from conftest import NOTEBOOKS, SOLUTIONS

    from course_utils.grading import Limits, Options, grade

    name = stem + ".ipynb"
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
