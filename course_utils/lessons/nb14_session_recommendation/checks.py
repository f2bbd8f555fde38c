"""Checks of notebook 14 (session-based recommendation): session-parallel mini-batches,
Recall@k and MRR@k, and one training step of a session GRU.

The learner's code runs through a convention of ``conventions`` and so does the reference (as for
every ``TorchExercise``); the first two exercises are NumPy functions, called by the plain
"function" convention. Every case is drawn from a fixed seed: a verdict never depends on luck.
"""
from __future__ import annotations

import numpy as np

from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise_torch import TorchExercise

# --- 14.1: session_parallel_batches -------------------------------------------------------------

BATCH_RETURNS = ("inputs", "targets", "starts")


def _clicks(lengths, g, n_items=50):
    """items (C,), offsets (n + 1,): sessions of the given lengths, random item ids (repeats allowed)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return g.integers(0, n_items, size=int(offsets[-1])).astype(np.int64), offsets


def _batch_case(label, items, offsets, batch_size):
    return Case(label, {"items": items, "offsets": offsets, "batch_size": batch_size}, options={"plan": {
        "returns": BATCH_RETURNS, "name": "session_parallel_batches"}})


def _batch_cases(rng):
    cases = []
    lengths = [3, 2, 4, 2, 3, 3, 3]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.arange(100, 100 + offsets[-1], dtype=np.int64)  # item ids that show where each click is
    cases.append(_batch_case(f"fixed: 7 sessions of {lengths} clicks (items 100..119 in order), batch_size=3",
                             items, offsets, 3))
    for label, lengths, B, seed in [
            ("one lane (batch_size=1): every session in turn", [2, 4, 3, 2], 1, 1),
            ("batch_size = the number of sessions (5): the steps end with the shortest", [4, 2, 5, 3, 3], 5, 2),
            ("two lanes end at the same step, batch_size=2", [2, 2, 3, 3, 2, 4], 2, 3),
            ("every session of 2 clicks, batch_size=3", [2] * 8, 3, 4),
            ("20 sessions of 2 to 8 clicks, batch_size=4, item ids repeated", None, 4, 5)]:
        g = np.random.default_rng(200 + seed)
        if lengths is None:
            lengths = g.integers(2, 9, size=20)
        items, offsets = _clicks(lengths, g, n_items=12 if seed == 5 else 50)
        cases.append(_batch_case(label, items, offsets, B))
    return cases


def _wrong_batches(kind):
    """session_parallel_batches as a learner with the misunderstanding ``kind`` writes it: `starts` True
    at step 0 only ("never") or at the last step of a session ("ends"), a session's last click taken as
    an input ("crosses"), lane b taking sessions b, b + B, ... ("fixed lanes")."""
    def batches(items, offsets, batch_size):
        n = len(offsets) - 1
        session = np.arange(batch_size)
        pos = offsets[session].copy()
        start = np.ones(batch_size, dtype=bool)
        taken = batch_size  # sessions given to a lane so far
        inputs, targets, starts = [], [], []
        last_pair = 0 if kind == "crosses" else 1  # "crosses": the session's last click is an input too
        while True:
            inputs.append(items[pos])
            targets.append(items[np.minimum(pos + 1, len(items) - 1)])
            starts.append(start.copy())
            pos = pos + 1
            ended = pos + last_pair >= offsets[session + 1]
            if kind == "never":
                start = np.zeros(batch_size, dtype=bool)
            elif kind == "ends":
                starts[-1] = ended.copy() if len(starts) > 1 else starts[-1] | ended
                start = np.zeros(batch_size, dtype=bool)
            else:
                start = ended
            new = session + batch_size if kind == "fixed lanes" else taken + np.cumsum(ended) - 1
            if taken + ended.sum() > n or (new[ended] >= n).any():
                break
            session[ended], pos[ended] = new[ended], offsets[new[ended]]
            taken += int(ended.sum())
        return (np.array(inputs, dtype=np.int64).reshape(-1, batch_size),
                np.array(targets, dtype=np.int64).reshape(-1, batch_size),
                np.array(starts, dtype=bool).reshape(-1, batch_size))
    batches.__name__ = "session_parallel_batches"
    return batches


session_parallel_batches = TorchExercise(
    "session_parallel_batches", "function", "session_parallel_batches", _batch_cases, BATCH_RETURNS,
    mistakes=[
        Mistake("`starts` is True only at step 0: a lane that takes a new session must say so at the step "
                "where that session's first click is the input, so that the training step resets the state "
                "of that lane (see hint 2 under the exercise).", implementation=_wrong_batches("never")),
        Mistake("`starts` marks the last step of each session instead of the first step of the next one: the "
                "flag belongs to the step whose input is a new session's first click.",
                implementation=_wrong_batches("ends")),
        Mistake("each session's last click was used as an input too, with the next session's first click as its "
                "target: a session of L clicks gives L - 1 (input, target) pairs, and a target is always a click "
                "of the same session.", implementation=_wrong_batches("crosses")),
        Mistake("a lane took session b, b + batch_size, b + 2 batch_size, ...: a lane whose session ends takes "
                "the next session not used yet, whichever lane it is (lanes finish at different times).",
                implementation=_wrong_batches("fixed lanes")),
    ],
    hints={"inputs": "lane b starts with session b; when its session has no next click, it takes the next "
                     "session not used yet (see hint 1 under the exercise).",
           "inputs.shape": "inputs should be (S, B), one row per step: the steps stop at the first step at which "
                           "a lane needs a new session and none is left (sessions that are not finished by then are "
                           "dropped, as GRU4Rec does).",
           "targets": "the target of an input is the next click of the same session: items[p + 1] for an input "
                      "items[p].",
           "targets.shape": "targets has the same shape as inputs, (S, B).",
           "starts": "starts[s, b] is True exactly when the input of lane b at step s is the first click of a "
                     "session (every lane at step 0).",
           "starts.shape": "starts has the same shape as inputs, (S, B).",
           "crash": "check the indices into `items` and `offsets`: session s is items[offsets[s]:offsets[s + 1]], "
                    "and its last click is items[offsets[s + 1] - 1]."},
)

# --- 14.2: recall_mrr_at_k ----------------------------------------------------------------------

METRIC_RETURNS = ("recall", "mrr")


def _metric_case(label, scores, targets, k):
    return Case(label, {"scores": scores, "targets": np.asarray(targets, dtype=np.int64), "k": k},
                options={"plan": {"returns": METRIC_RETURNS, "name": "recall_mrr_at_k"}})


def _metric_cases(rng):
    cases = []
    # fixed: ranks 1, 3, 6 (6 > k), and a target tied with two other items at rank 2
    scores = np.array([[5.0, 1, 2, 0, 3, 4], [0.5, 0.9, 0.2, 0.8, 0.1, 0.7], [6, 5, 4, 3, 2, 1],
                       [1.0, 3, 2, 3, 0, 3]])
    cases.append(_metric_case("fixed scores, N=4, I=6, k=3 (one target tied with two other items)", scores,
                              [0, 3, 5, 1], 3))
    for label, (N, I, k), ties, dtype, seed in [
            ("random scores, N=50, I=30, k=5", (50, 30, 5), False, np.float64, 1),
            ("k=1: only a target ranked first counts", (40, 8, 1), False, np.float64, 2),
            ("k = I: every target is within k", (20, 7, 7), False, np.float64, 3),
            ("scores that are counts (many ties), N=60, I=10, k=3", (60, 10, 3), True, np.float64, 4),
            ("float32 scores, N=30, I=25, k=20", (30, 25, 20), False, np.float32, 5)]:
        g = np.random.default_rng(300 + seed)
        scores = g.integers(0, 4, size=(N, I)).astype(dtype) if ties else g.standard_normal((N, I)).astype(dtype)
        cases.append(_metric_case(label, scores, g.integers(0, I, size=N), k))
    return cases


def _wrong_metric(kind):
    """recall_mrr_at_k as a learner with the misunderstanding ``kind`` writes it: ranks counted from the
    lowest score ("ascending"), ties counted ahead ("ties"), ranks from a sort ("argsort", "argsort
    reversed", "top k"), ranks from 0 ("zero-based"), MRR without the cutoff ("no cutoff") or averaged
    over the hits only ("mean over hits")."""
    def metric(scores, targets, k):
        t = scores[np.arange(len(targets)), targets][:, None]
        if kind == "ascending":
            rank = 1 + (scores < t).sum(axis=1)
        elif kind == "ties":
            rank = (scores >= t).sum(axis=1)  # the target and every item tied with it
        elif kind == "argsort":
            order = np.argsort(-scores, axis=1, kind="stable")
            rank = 1 + np.argmax(order == targets[:, None], axis=1)
        elif kind == "top k":  # the top k by np.argsort's default sort, then where the target is among them
            hit = np.argsort(-scores, axis=1)[:, :k] == targets[:, None]
            found = hit.any(axis=1)
            return float(found.mean()), float(np.where(found, 1.0 / (hit.argmax(axis=1) + 1), 0.0).mean())
        elif kind == "argsort reversed":
            order = np.argsort(scores, axis=1)[:, ::-1]
            rank = 1 + np.argmax(order == targets[:, None], axis=1)
        else:
            rank = 1 + (scores > t).sum(axis=1)
        if kind == "zero-based":
            rank = rank - 1
        hit = rank <= k
        if kind == "no cutoff":
            return float(hit.mean()), float((1.0 / rank).mean())
        if kind == "mean over hits":
            return float(hit.mean()), float((1.0 / rank[hit]).mean())
        if kind == "zero-based":
            return float(hit.mean()), float(np.where(hit, 1.0 / (rank + 1), 0.0).mean())
        return float(hit.mean()), float(np.where(hit, 1.0 / rank, 0.0).mean())
    metric.__name__ = "recall_mrr_at_k"
    return metric


ARGSORT = ("the ranks come from a sort, which puts tied items in an arbitrary order: the rank is 1 + the number "
           "of items scoring *strictly* higher, which a comparison of scores with the target's score gives "
           "directly (see hint 2 under the exercise).")

recall_mrr_at_k = TorchExercise(
    "recall_mrr_at_k", "function", "recall_mrr_at_k", _metric_cases, METRIC_RETURNS,
    mistakes=[
        Mistake("the ranks are counted from the lowest score: a higher score means more likely, so the rank "
                "counts the items scoring *higher* than the target.", implementation=_wrong_metric("ascending")),
        Mistake("the rank counted the items tied with the target as ahead of it (and perhaps the target "
                "itself): the rank is 1 + the number of items scoring *strictly* higher, so ties count in "
                "the target's favour.", implementation=_wrong_metric("ties")),
        Mistake(ARGSORT, implementation=_wrong_metric("argsort")),
        Mistake(ARGSORT, implementation=_wrong_metric("argsort reversed")),
        Mistake(ARGSORT, implementation=_wrong_metric("top k")),
        Mistake("the ranks start at 0: the best-ranked target has rank 1, so a target is within the top k when "
                "its rank is <= k.", implementation=_wrong_metric("zero-based")),
        Mistake("MRR@k counts 1 / rank for every target: a target ranked below k counts 0 (it is not in the "
                "list of k items shown to the user).", implementation=_wrong_metric("no cutoff")),
        Mistake("MRR@k is averaged over the targets within the top k only: average over all targets, "
                "counting 0 for those ranked below k.", implementation=_wrong_metric("mean over hits")),
    ],
    hints={"recall": "recall@k is the fraction of targets whose rank is at most k (see hint 1 under the exercise).",
           "mrr": "MRR@k is the mean over all targets of 1 / rank, counting 0 where the rank is above k.",
           "recall.shape": "return two plain numbers (floats), not arrays.",
           "mrr.shape": "return two plain numbers (floats), not arrays.",
           "crash": "scores is (N, I) and targets (N,): the target's score of row n is scores[n, targets[n]]."},
)

# --- 14.3: session_train_step ------------------------------------------------------------------

N_STEPS = 3
STEP_OUTPUTS = tuple(f"{o}_{k}" for k in range(1, N_STEPS + 1) for o in ("loss", "hidden", "weights"))


def _gru_state(g, I, E, H):
    return {"embedding.weight": g.standard_normal((I, E)),
            "cell.weight_ih": g.standard_normal((3 * H, E)) / np.sqrt(E),
            "cell.weight_hh": g.standard_normal((3 * H, H)) / np.sqrt(H),
            "cell.bias_ih": g.standard_normal(3 * H) * 0.5, "cell.bias_hh": g.standard_normal(3 * H) * 0.5,
            "out.weight": g.standard_normal((I, H)) / np.sqrt(H), "out.bias": g.standard_normal(I) * 0.5}


def _step_cases(rng):
    cases = []
    for label, (I, E, H, B), starts, seed in [
            ("fixed weights, I=7, E=3, H=4, B=3; new sessions in lane 1 at step 1, lane 0 at step 2, lane 2 "
             "at step 3", (7, 3, 4, 3), [[0, 1, 0], [1, 0, 0], [0, 0, 1]], 0),
            ("one lane (B=1), a new session at step 2", (6, 2, 3, 1), [[0], [1], [0]], 1),
            ("H=1, B=4, new sessions in two lanes at once", (5, 2, 1, 4), [[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 0]],
             2),
            ("I=9, E=4, H=5, B=5, every lane new at step 1", (9, 4, 5, 5), [[1] * 5, [0, 1, 0, 0, 1], [0] * 5], 3)]:
        g = np.random.default_rng(400 + seed)
        steps = [{"inputs": g.integers(0, I, size=B), "targets": g.integers(0, I, size=B),
                  "starts": np.array(s, dtype=bool)} for s in starts]
        cases.append(Case(label, {}, options={"plan": {
            "sizes": {"I": I, "E": E, "H": H}, "state": _gru_state(g, I, E, H), "lr": 0.5,
            "hidden": np.tanh(g.standard_normal((B, H))), "steps": steps}}))
    return cases


def _wrong_train_step(kind):
    """session_train_step as a learner with the misunderstanding ``kind`` writes it: the reset left out
    ("no reset"), inverted, in every lane ("zeros") or after the step ("reset after"); no zero_grad,
    optimizer.step() before loss.backward() ("step first") or not at all ("no step"); the loss summed
    ("sum"), on probabilities ("softmax") or F.nll_loss on logits ("nll"); the state read returned
    ("old hidden")."""
    def train_step(model, optimizer, inputs, targets, starts, hidden):
        import torch
        from torch.nn import functional as F

        keep = (~starts).to(hidden.dtype)[:, None]
        if kind == "inverted":
            keep = 1 - keep
        if kind == "zeros":
            keep = torch.zeros_like(keep)
        if kind not in ("no reset", "reset after"):
            hidden = hidden * keep
        logits, new_hidden = model(inputs, hidden)
        if kind == "reset after":
            new_hidden = new_hidden * keep
        if kind == "sum":
            loss = F.cross_entropy(logits, targets, reduction="sum")
        elif kind == "softmax":
            loss = F.cross_entropy(torch.softmax(logits, dim=-1), targets)
        elif kind == "nll":
            loss = F.nll_loss(logits, targets)
        else:
            loss = F.cross_entropy(logits, targets)
        if kind != "no zero_grad":
            optimizer.zero_grad()
        if kind == "step first":
            optimizer.step()
            loss.backward()
        else:
            loss.backward()
            if kind != "no step":
                optimizer.step()
        returned = hidden if kind == "old hidden" else new_hidden
        return loss.item(), returned.detach()
    train_step.__name__ = "session_train_step"
    return train_step


def _step_plan_cases(rng):
    return _step_cases(rng)


NO_STEP = ("the weights were not changed by this step's gradients: call optimizer.step() after loss.backward() "
           "(is it missing, or called before it?).")


class _StepExercise(TorchExercise):
    def plan(self, case):
        return self.convention, dict(case.options["plan"])


session_train_step = _StepExercise(
    "session_train_step", "session_train_step", "session_train_step", _step_plan_cases, STEP_OUTPUTS,
    mistakes=[
        Mistake("the state was not reset where a new session starts: in the lanes where `starts` is True, "
                "the model must start from a hidden state of zeros, not from the previous session's state.",
                implementation=_wrong_train_step("no reset")),
        Mistake("the state was reset in the lanes that go *on* (where `starts` is False) and kept where a new "
                "session starts: the mask is inverted.", implementation=_wrong_train_step("inverted")),
        Mistake("the state was reset in every lane at every step, so the model never remembers an earlier "
                "click of the session: reset only the lanes where `starts` is True.",
                implementation=_wrong_train_step("zeros")),
        Mistake("the state was reset after the step, not before it: the reset applies to the state the model "
                "*reads* in the lanes where a new session starts now.",
                implementation=_wrong_train_step("reset after")),
        Mistake("the gradients of the earlier steps were added to this step's: call optimizer.zero_grad() "
                "before loss.backward() at every step.", implementation=_wrong_train_step("no zero_grad")),
        Mistake(NO_STEP, implementation=_wrong_train_step("step first")),
        Mistake(NO_STEP, implementation=_wrong_train_step("no step")),
        Mistake("the loss is the sum over the B lanes: take their mean (F.cross_entropy's default), so that the "
                "step size does not depend on the batch size.", implementation=_wrong_train_step("sum")),
        Mistake("the loss was computed on probabilities (a softmax before F.cross_entropy): F.cross_entropy "
                "takes the raw logits and applies log_softmax itself.", implementation=_wrong_train_step("softmax")),
        Mistake("F.nll_loss expects log-probabilities, and these are raw logits: use F.cross_entropy on the "
                "logits (or F.nll_loss on their log_softmax).", implementation=_wrong_train_step("nll")),
        Mistake("the returned hidden state is the one the model read, not the one it computed: return the model's "
                "new state (detached), from which the next step goes on.",
                implementation=_wrong_train_step("old hidden")),
    ],
    hints={
        **{f"loss_{k}": "the loss is F.cross_entropy(logits, targets) of the model's logits, after the reset "
                        "(see hint 2 under the exercise)." for k in range(1, N_STEPS + 1)},
        **{f"hidden_{k}": "return the model's new hidden state (B, H), detached from the graph."
           for k in range(1, N_STEPS + 1)},
        **{f"hidden_{k}.shape": "hidden should be (B, H), as the model returns it." for k in range(1, N_STEPS + 1)},
        **{f"weights_{k}": "the loss values are right, so look at the update: zero the gradients, "
                           "backpropagate, then optimizer.step(), once per call." for k in range(1, N_STEPS + 1)},
        "crash.types": {"RuntimeError": "if the error says 'backward through the graph a second time', the hidden "
                                        "state you returned was still attached to this step's graph: return "
                                        "hidden.detach(), so that the next step does not backpropagate into this "
                                        "one. Otherwise, compare the failing line with the shapes in the docstring."},
        "crash": "model(inputs, hidden) takes inputs (B,) and hidden (B, H) and returns logits (B, I) and the new "
                 "hidden (B, H); starts is a bool tensor (B,).",
    },
)
