"""Generic wrong versions of sequence code, to recognise learners' mistakes.

A mistake in a step function also shows in the sequence function built on it, and the
classic sequence mistakes (state not carried, gradients overwritten) look the same for
every cell. These helpers build both from a step function.
"""
from __future__ import annotations

import numpy as np


def unroll(step, x, h0, *weights, cell=False, carry=True, c0_from_h0=False, shift=False):
    """Run ``step`` over time: h (N, T, H). ``cell``: the step takes and returns a cell state."""
    h, c = h0, (h0.copy() if c0_from_h0 else np.zeros_like(h0))
    hs = []
    for t in range(x.shape[1]):
        prev_h, prev_c = (h, c) if carry else (h0, np.zeros_like(h0))
        if cell:
            h, c, _ = step(x[:, t], prev_h, prev_c, *weights)
        else:
            h, _ = step(x[:, t], prev_h, *weights)
        hs.append(prev_h if shift else h)
    return np.stack(hs, axis=1)


def bptt(step_backward, caches, dh, cell=False, carry_h=True, carry_c=True, accumulate=True,
         forward_in_time=False):
    """Backpropagation through time with optional mistakes. Returns dx, dh0, then weight grads."""
    T = dh.shape[1]
    dxs = [None] * T
    dprev_h = np.zeros_like(dh[:, 0])
    dprev_c = np.zeros_like(dh[:, 0])
    total = None
    order = range(T) if forward_in_time else reversed(range(T))
    for t in order:
        up = dh[:, t] + (dprev_h if carry_h else 0)
        if cell:
            dx, dprev_h, new_c, *wgrads = step_backward(up, dprev_c if carry_c else 0 * dprev_c, caches[t])
            dprev_c = new_c
        else:
            dx, dprev_h, *wgrads = step_backward(up, caches[t])
        dxs[t] = dx
        if total is None or not accumulate:
            total = list(wgrads)
        else:
            total = [a + b for a, b in zip(total, wgrads)]
    return (np.stack(dxs, axis=1), dprev_h, *total)


def seq_forward_mistakes(Mistake, step_ref, step_mistakes, cell, names, weights):
    """The sequence versions of step-function mistakes, plus the classic sequence mistakes.

    step_mistakes: [(hint, wrong_step)]. names: the args of the sequence function (x, h0, ...).
    """
    def make(step, **kw):
        def outputs(case):
            a = case.args
            return {"h": unroll(step, a["x"], a["h0"], *[a[w] for w in weights], cell=cell, **kw)}
        return outputs

    out = [
        Mistake("h[:, t] is computed from h0 at every step: carry the state, feeding each step "
                "the hidden state of the step before.", make(step_ref, carry=False)),
        Mistake("h[:, t] holds the state before step t (h[:, 0] is h0): store the new state, "
                "the one after the step.", make(step_ref, shift=True)),
    ]
    if cell:
        out.append(Mistake("the cell state starts as h0; it starts at zero "
                           "(c0 = np.zeros_like(h0)).", make(step_ref, c0_from_h0=True)))
    for hint, wrong_step in step_mistakes:
        out.append(Mistake("your sequence matches a step function with this mistake: " + hint,
                           make(wrong_step)))
    return out


def seq_backward_mistakes(Mistake, forward_ref, step_backward_ref, step_backward_mistakes, cell, names,
                          returns):
    """BPTT mistakes: gradients overwritten, state gradient not carried, wrong direction."""
    def make(step_backward, **kw):
        def outputs(case):
            h, caches = forward_ref(*case.args.values())
            grads = bptt(step_backward, caches, case.douts["dh"], cell=cell, **kw)
            return {**{"h": h}, **dict(zip(returns, grads))}
        return outputs

    out = [
        Mistake("the weight gradients keep only one time step: the weights are shared by every "
                "step, so add each step's gradients up (dWx += dWx_t).",
                make(step_backward_ref, accumulate=False)),
        Mistake("each step only gets dh[:, t]: also add the gradient flowing back from the step "
                "after it (dprev_h), which is what makes this backpropagation *through time*.",
                make(step_backward_ref, carry_h=False)),
        Mistake("you go forward in time; backpropagation runs from the last step to the first "
                "(reversed(range(T))).", make(step_backward_ref, forward_in_time=True)),
    ]
    if cell:
        out.append(Mistake("the cell-state gradient does not reach the step before: either the loop does not "
                           "pass dprev_c of step t into step t - 1 as its dnext_c, or your step backward "
                           "ignores dnext_c (its check above would say so).", make(step_backward_ref, carry_c=False)))
    for hint, wrong in step_backward_mistakes:
        out.append(Mistake("your gradients match a step backward with this mistake: " + hint, make(wrong)))
    return out
