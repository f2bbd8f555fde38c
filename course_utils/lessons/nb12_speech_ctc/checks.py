"""Checks of notebook 12 (speech recognition with CTC): the CTC loss by its forward recursion,
greedy CTC decoding, the bidirectional acoustic model, the error rate."""
from __future__ import annotations

import itertools

import numpy as np

from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise import Exercise
from course_utils.checking.exercise_torch import TorchExercise, wrong_module
from course_utils.lessons.nb10_seq2seq.checks import _seed

# --- 12.1: ctc_loss ---------------------------------------------------------------------------


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _ctc_case(label, logits, targets, target_lengths, input_lengths, blank, g, long=False):
    args = {"logits": np.asarray(logits, dtype=np.float64), "targets": np.asarray(targets, dtype=np.int64),
            "input_lengths": np.asarray(input_lengths, dtype=np.int64),
            "target_lengths": np.asarray(target_lengths, dtype=np.int64), "blank": int(blank)}
    return Case(label, args, options={"dloss": g.uniform(0.5, 1.5, size=len(args["targets"])), "long": long})


def _ctc_cases(rng):
    cases = []
    g = _seed(rng, 0)
    cases.append(_ctc_case("fixed inputs: N=3, T=8, C=5, targets [1, 1, 2], [3], [2, 4]; input lengths 8, 6, 8",
                           g.standard_normal((3, 8, 5)) * 1.5, [[1, 1, 2], [3, 0, 0], [2, 4, 0]], [3, 1, 2],
                           [8, 6, 8], 0, g))
    g = _seed(rng, None)
    cases.append(_ctc_case("random inputs: one frame (T=1), one label (S=1), N=1", g.standard_normal((1, 1, 4)),
                           [[2]], [1], [1], 0, g))
    g = _seed(rng, None)
    cases.append(_ctc_case("random inputs: target [2, 2, 2] in T=5 frames, the fewest it needs (N=1)",
                           g.standard_normal((1, 5, 3)), [[2, 2, 2]], [3], [5], 0, g))
    g = _seed(rng, None)
    N, T, C = 4, 10, 6
    targets = g.integers(0, C - 1, size=(N, 4))
    targets[0, :2] = targets[0, 2]  # a repeat
    cases.append(_ctc_case("random inputs: N=4, T=10, C=6, the blank is the last class (blank=5)",
                           g.standard_normal((N, T, C)) * 2, targets, [4, 3, 2, 1], [10, 9, 7, 4], C - 1, g))
    g = _seed(rng, None)
    N, T, C = 5, 9, 7
    target_lengths = g.integers(1, 4, size=N)
    targets = g.integers(1, C, size=(N, 3)) * (np.arange(3)[None] < target_lengths[:, None])
    input_lengths = np.maximum(g.integers(3, T + 1, size=N), 2 * target_lengths + 1)
    input_lengths[0] = T
    cases.append(_ctc_case(f"random inputs: N={N}, T={T}, C={C}, targets padded with 0 after their lengths",
                           g.standard_normal((N, T, C)) * 2, targets, target_lengths, input_lengths, 0, g))
    g = _seed(rng, None)
    cases.append(_ctc_case("random inputs: a long input, T=300 frames, C=20, a target of 5 labels (N=1)",
                           g.standard_normal((1, 300, 20)), g.integers(1, 20, size=(1, 5)), [5], [300], 0, g,
                           long=True))
    return cases


def ctc_variant(case, kind=""):
    """-log p(targets | input) per sequence, computed in NumPy by the forward recursion written
    with one misunderstanding ``kind`` ("" for none): the loss (N,) that mistake gives."""
    a = case.args
    log_probs = _log_softmax(a["logits"])
    blank = 0 if kind == "blank 0" else a["blank"]
    losses = []
    for n in range(len(log_probs)):
        T = log_probs.shape[1] if kind == "all frames" else int(a["input_lengths"][n])
        S = a["targets"].shape[1] if kind == "padded targets" else int(a["target_lengths"][n])
        ext = np.full(2 * S + 1, blank)
        ext[1::2] = a["targets"][n, :S]
        lp = log_probs[n, :T][:, ext]  # (T, 2S + 1)
        skip = np.zeros(2 * S + 1, dtype=bool)
        if kind != "no skip":
            skip[2:] = ext[2:] != blank
            if kind != "skip repeats":
                skip[2:] &= ext[2:] != ext[:-2]
        alpha = np.full(2 * S + 1, -np.inf)
        alpha[0] = lp[0, 0]
        if S and kind != "blank start":
            alpha[1] = lp[0, 1]
        with np.errstate(invalid="ignore"):
            for t in range(1, T):
                step = np.concatenate([[-np.inf], alpha[:-1]])
                jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], alpha[:-2]]), -np.inf)
                alpha = np.logaddexp(np.logaddexp(alpha, step), jump) + lp[t]
        ends = {"last label": alpha[-2:-1] if S else alpha[-1:], "final blank": alpha[-1:]}.get(kind, alpha[-2:])
        loss = -np.logaddexp.reduce(ends)
        losses.append(-loss if kind == "sign" else loss / max(S, 1) if kind == "per label" else loss)
    return {"loss": np.array(losses)}


def _ctc_mistake(kind):
    return lambda case: ctc_variant(case, kind)


def _wrong_ctc_loss(kind):
    """ctc_loss by the recursion in log space, as a learner with the misunderstanding ``kind`` writes it:
    "no skip", "skip repeats" or "all frames" (as in ``ctc_variant``)."""
    def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0):
        import torch

        losses = []
        for n in range(len(log_probs)):
            T = log_probs.shape[1] if kind == "all frames" else int(input_lengths[n])  # "all frames": reads padding
            S = int(target_lengths[n])
            ext = torch.full((2 * S + 1,), blank, dtype=torch.long)
            ext[1::2] = targets[n, :S]
            lp = log_probs[n, :T, ext]
            skip = torch.zeros(2 * S + 1, dtype=torch.bool)
            if kind != "no skip":  # "no skip": never jumps over a blank
                repeat_ok = kind == "skip repeats"  # "skip repeats": jumps between two equal labels too
                skip[2:] = (ext[2:] != blank) & ((ext[2:] != ext[:-2]) | repeat_ok)
            neg = lp.new_full((2 * S + 1,), -1e30)
            alpha = torch.cat([lp[0, :2], neg[2:]])
            for t in range(1, T):
                step = torch.cat([neg[:1], alpha[:-1]])
                jump = torch.where(skip, torch.cat([neg[:2], alpha[:-2]]), neg)
                alpha = torch.logsumexp(torch.stack([alpha, step, jump]), dim=0) + lp[t]
            losses.append(-torch.logsumexp(alpha[-2:], dim=0))
        return torch.stack(losses)
    return ctc_loss


UNDERFLOW_HINT = ("on T = 300 frames the probability of the target is about e^-940, less than the smallest float "
                  "(about e^-745): a product of probabilities underflows to 0, and log 0 = -inf. Keep every alpha "
                  "as a log-probability, add log-probabilities along a path and combine paths with torch.logsumexp "
                  "(see hint 1).")


class CTCLossExercise(TorchExercise):
    """The learner's ctc_loss on log_softmax(logits); its loss, and its gradient with respect to the logits."""

    def plan(self, case):
        """The case's inputs and the upstream gradient ``dloss`` (N,), to backpropagate to the logits."""
        return "torch_ctc_loss", {**case.args, "dloss": case.options["dloss"]}

    def judge(self, case, outputs, modified=()):
        """On the long cases, an infinite loss is the underflow of products of probabilities: said so."""
        loss = outputs.get("loss")
        if (case.options.get("long") and loss is not None and loss.shape == (len(case.args["targets"]),)
                and not np.all(np.isfinite(loss))):
            return self.fail(case, "`loss` contains inf values", hint=UNDERFLOW_HINT, output="loss")
        return super().judge(case, outputs, modified)


ctc_loss = CTCLossExercise(
    "ctc_loss", "torch_ctc_loss", "ctc_loss", _ctc_cases, ("loss", "dlogits"),
    mistakes=[
        Mistake("a path may also jump over the blank between two *different* labels: from state s - 2 to s when "
                "l'_s is a label and l'_s != l'_{s-2} (see hint 2).", _ctc_mistake("no skip"),
                implementation=_wrong_ctc_loss("no skip")),
        Mistake("between two equal labels the blank is compulsory: a path may jump from s - 2 to s only when "
                "l'_s != l'_{s-2}, otherwise [a, a] would read as one a (see hint 2).", _ctc_mistake("skip repeats"),
                implementation=_wrong_ctc_loss("skip repeats")),
        Mistake("a path may start on the first label as well as on the blank: at t = 0 both states 0 and 1 are "
                "open, alpha_0(1) = log y_0(l_1).", _ctc_mistake("blank start")),
        Mistake("a path may end on the last label or on the final blank: the loss is "
                "-logsumexp of the last two alphas, not of one.", _ctc_mistake("last label")),
        Mistake("a path may end on the last label or on the final blank: the loss is "
                "-logsumexp of the last two alphas, not of the last one only.", _ctc_mistake("final blank")),
        Mistake("frames after input_lengths[n] are padding: run the recursion over log_probs[n, :input_lengths[n]] "
                "only.", _ctc_mistake("all frames"), implementation=_wrong_ctc_loss("all frames")),
        Mistake("targets are padded after target_lengths[n]: use targets[n, :target_lengths[n]] only.",
                _ctc_mistake("padded targets")),
        Mistake("the loss is the *negative* log-likelihood, -log p(targets | input): small when the model is right.",
                _ctc_mistake("sign")),
        Mistake("return each sequence's -log p(targets | input) as it is, not divided by the target length "
                "(that is what nn.CTCLoss's reduction='mean' adds on top).", _ctc_mistake("per label")),
        Mistake("use the `blank` argument: here the blank is the last class, not 0.", _ctc_mistake("blank 0")),
    ],
    hints={"loss.shape": "return one loss per sequence, a tensor of shape (N,) (torch.stack a list of N "
                         "scalars): do not sum or average over the batch.",
           "loss.finite": "the loss is infinite or nan: no path kept any probability. Check that both first states "
                          "are open at t = 0 and that the transitions let a path reach the last two states.",
           "dlogits": "the loss is right but its gradient is not: every step must stay inside autograd (no .item(), "
                      ".numpy(), .detach() or torch.no_grad()).",
           "dlogits.finite": "the loss is right but its gradient has nan values: torch.logsumexp over inputs that "
                             "are all -inf has a nan gradient (exp(-inf - (-inf))), even where it is multiplied by 0. "
                             "Mark impossible states with a large finite negative number, like -1e30, not -inf "
                             "(see hint 3).",
           "crash": "log_probs is (N, T, C); for one sequence, log_probs[n, :T_n][:, ext] is (T_n, 2S + 1): the "
                    "log-probability of each extended label l' at each frame.",
           "crash.types": {"RuntimeError": "autograd could not follow the computation: if the message says a "
                                           "variable was 'modified by an inplace operation', keep each step's "
                                           "alpha as a new tensor (a Python list of them, or alpha = ...) instead "
                                           "of writing into rows of one preallocated tensor."}},
)

# --- 12.2: ctc_greedy_decode -----------------------------------------------------------------


def _paths_to_log_probs(g, paths, C, T):
    """(N, T, C) log-probabilities whose most probable class at each frame is the given path."""
    N = len(paths)
    logits = g.standard_normal((N, T, C))
    for n, path in enumerate(paths):
        logits[n, np.arange(T), path] += 6.0
    return _log_softmax(logits)


def _decode_case(label, g, paths, lengths, C, blank=0):
    paths = np.asarray(paths)
    return Case(label, {"log_probs": _paths_to_log_probs(g, paths, C, paths.shape[1]),
                        "lengths": np.asarray(lengths, dtype=np.int64), "blank": int(blank)})


def _random_path(g, T, C, blank):
    labels = [c for c in range(C) if c != blank]
    path, prev = [], blank
    for _ in range(T):
        r = g.random()
        prev = prev if r < 0.4 else blank if r < 0.7 else int(g.choice(labels))
        path.append(prev)
    return path


def _decode_cases(rng):
    cases = [_decode_case("fixed inputs: N=3, T=9, C=4, best paths with repeats, blanks and padding",
                          _seed(rng, 0), [[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 2, 2, 3, 3, 1, 2, 1, 1],
                                          [0, 0, 3, 0, 3, 3, 0, 2, 2]], [9, 5, 9], 4)]
    g = _seed(rng, None)
    cases.append(_decode_case("random inputs: one frame (T=1), N=2", g, [[2], [0]], [1, 1], 3))
    g = _seed(rng, None)
    cases.append(_decode_case("random inputs: every frame a blank (nothing said), N=2", g,
                              [[0] * 6, [0, 0, 0, 1, 1, 1]], [6, 3], 3))
    g = _seed(rng, None)
    cases.append(_decode_case("random inputs: the blank is the last class (blank=3), N=2", g,
                              [[0, 0, 3, 0, 1, 1, 3, 3], [2, 3, 2, 2, 0, 3, 3, 1]], [8, 8], 4, blank=3))
    g = _seed(rng, None)
    N, T, C = 5, 12, 6
    lengths = g.integers(1, T + 1, size=N)
    lengths[0] = T
    cases.append(_decode_case(f"random inputs: N={N}, T={T}, C={C}, lengths {lengths.tolist()}", g,
                              [_random_path(g, T, C, 0) for _ in range(N)], lengths, C))
    return cases


def decode_variant(case, kind=""):
    """Greedy CTC decoding with one misunderstanding ``kind`` ("" for none), as plain arrays."""
    a = case.args
    blank = 0 if kind == "blank 0" else a["blank"]
    rows = []
    for n in range(len(a["log_probs"])):
        T = a["log_probs"].shape[1] if kind == "all frames" else int(a["lengths"][n])
        best = [int(c) for c in np.argmax(a["log_probs"][n, :T], axis=-1)]
        if kind == "blanks first":
            best = [c for c in best if c != blank]
        merged = best if kind == "no merge" else [c for t, c in enumerate(best) if t == 0 or c != best[t - 1]]
        rows.append(merged if kind == "keep blanks" else [c for c in merged if c != blank])
    tokens = np.full((len(rows), max([len(r) for r in rows] + [1])), -1, dtype=np.int64)
    for n, r in enumerate(rows):
        tokens[n, :len(r)] = r
    return {"lengths": np.array([len(r) for r in rows], dtype=np.int64), "tokens": tokens}


class DecodeExercise(Exercise):
    """ctc_greedy_decode(log_probs, lengths, blank) -> N lists of class ids, compared exactly as
    ``tokens`` (N, L) padded with -1 and their ``lengths`` (N,)."""

    name, funcs, outputs, exact = "ctc_greedy_decode", ("ctc_greedy_decode",), ("lengths", "tokens"), True

    def __init__(self, mistakes, hints):
        self.mistakes, self.hints = mistakes, hints

    def cases(self, rng):
        """The grid of cases: fixed best paths with repeats, blanks and padding, one frame, only blanks,
        the blank as the last class, and random ones."""
        return _decode_cases(rng)

    def plan(self, case):
        """Called through ``ctc_decode``, which turns the returned lists into padded arrays."""
        return "ctc_decode", dict(case.args)

    def expected(self, case):
        """The reference decoding, as the same padded tokens and lengths."""
        from course_utils.reference import ctc_greedy_decode
        from course_utils.checking.conventions import _id_lists

        a = case.args
        tokens, lengths = _id_lists(ctc_greedy_decode(a["log_probs"].copy(), a["lengths"].copy(), a["blank"]),
                                    len(a["log_probs"]), self.name)
        return {"lengths": lengths, "tokens": tokens}


def _decode_mistake(kind):
    return lambda case: decode_variant(case, kind)


def _wrong_decode_blanks_first(log_probs, lengths, blank=0):  # drops the blanks, then merges repeats
    out = []
    for lp, T in zip(log_probs, lengths):
        best = [int(c) for c in lp[:T].argmax(-1) if c != blank]
        out.append([c for i, c in enumerate(best) if i == 0 or c != best[i - 1]])
    return out


def _wrong_decode_no_merge(log_probs, lengths, blank=0):  # drops the blanks, never merges repeats
    return [[int(c) for c in lp[:T].argmax(-1) if c != blank] for lp, T in zip(log_probs, lengths)]


def _wrong_decode_all_frames(log_probs, lengths, blank=0):  # decodes the padding frames too
    return [[c for c, _ in itertools.groupby(lp.argmax(-1).tolist()) if c != blank] for lp in log_probs]


def _wrong_decode_blank_zero(log_probs, lengths, blank=0):  # class 0 taken for the blank, whatever `blank` is
    return [[c for c, _ in itertools.groupby(lp[:T].argmax(-1).tolist()) if c != 0]
            for lp, T in zip(log_probs, lengths)]


ctc_greedy_decode = DecodeExercise(
    mistakes=[
        Mistake("merge repeats first, then drop the blanks: a blank between two equal labels separates them "
                "(a _ a -> a a), so removing the blanks first merges what was two sounds into one.",
                _decode_mistake("blanks first"), implementation=_wrong_decode_blanks_first),
        Mistake("consecutive frames with the same class are one output: merge repeats (a a _ b b -> a b).",
                _decode_mistake("no merge"), implementation=_wrong_decode_no_merge),
        Mistake("the blank means 'no output here': drop it after merging the repeats.",
                _decode_mistake("keep blanks")),
        Mistake("frames after lengths[n] are padding: decode log_probs[n, :lengths[n]] only.",
                _decode_mistake("all frames"), implementation=_wrong_decode_all_frames),
        Mistake("use the `blank` argument: here the blank is class 3, not 0.", _decode_mistake("blank 0"),
                implementation=_wrong_decode_blank_zero),
    ],
    hints={"lengths": "the number of classes you return for a sequence is wrong: take the argmax of each of its "
                      "first lengths[n] frames, merge consecutive repeats, then drop the blanks (see hint 2).",
           "tokens": "the classes you return for a sequence differ from its best path's, once merged and without "
                     "blanks: the best path holds the most probable class of each frame (see hint 2).",
           "crash": "log_probs is (N, T, C): log_probs[n, :lengths[n]] is (T_n, C), and its argmax over the last "
                    "axis gives one class per frame."},
)

# --- 12.3: AcousticModel ---------------------------------------------------------------------

ACOUSTIC_PARAMS = tuple(f"rnn.{w}_l0{d}" for d in ("", "_reverse")
                        for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")) + ("out.weight", "out.bias")


def _acoustic_cases(rng):
    cases = []
    for label, (N, T, F, H, C), seed in [
            ("fixed inputs: N=3, T=6, F=5, H=4, C=4, lengths [6, 3, 5]", (3, 6, 5, 4, 4), 0),
            ("random inputs: one frame (T=1), N=1", (1, 1, 3, 2, 3), None),
            ("random inputs: N=4, T=7, F=H=3, C=5", (4, 7, 3, 3, 5), None),
            ("random inputs: N=2, T=9, F=6, H=5, C=9", (2, 9, 6, 5, 9), None)]:
        g = _seed(rng, seed)
        lengths = np.array([6, 3, 5]) if seed == 0 else g.integers(1, T + 1, size=N)
        lengths[0] = T
        state = {}
        for d in ("", "_reverse"):
            state.update({f"rnn.weight_ih_l0{d}": g.standard_normal((3 * H, F)) / np.sqrt(F),
                          f"rnn.weight_hh_l0{d}": g.standard_normal((3 * H, H)) / np.sqrt(H),
                          f"rnn.bias_ih_l0{d}": g.standard_normal(3 * H) * 0.5,
                          f"rnn.bias_hh_l0{d}": g.standard_normal(3 * H) * 0.5})
        state.update({"out.weight": g.standard_normal((C, 2 * H)) / np.sqrt(H), "out.bias": g.standard_normal(C)})
        mask = np.arange(T)[None, :] < lengths[:, None]
        features = g.standard_normal((N, T, F)) * mask[..., None]
        if seed == 0:
            features[1, 3:] = 3.0  # padding that is not zero: a GRU that reads it goes astray
        cases.append(Case(label, {"features": features, "lengths": lengths.astype(np.int64)}, options={
            "mask": mask, "plan": {
                "init": {"n_features": F, "hidden_size": H, "n_classes": C}, "state": state,
                "returns": ("log_probs",), "name": "AcousticModel",
                "douts": {"log_probs": g.standard_normal((N, T, C)) * mask[..., None]},
                "grad_wrt": ("features",)}}))
    return cases


def _acoustic_mistake(kind):
    def outputs(case):
        import torch

        from course_utils.reference import AcousticModel

        plan = case.options["plan"]
        model = AcousticModel(*plan["init"].values()).to(torch.float64)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in plan["state"].items()})
        x, lengths = torch.from_numpy(case.args["features"]), torch.from_numpy(case.args["lengths"])
        with torch.no_grad():
            if kind == "no packing":
                states, _ = model.rnn(x)
            else:
                states = model.rnn(torch.nn.utils.rnn.pack_padded_sequence(
                    x, lengths, batch_first=True, enforce_sorted=False))[0]
                states = torch.nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=x.shape[1])[0]
            logits = model.out(states)
            out = {"logits": logits, "softmax": torch.softmax(logits, dim=-1),
                   "time axis": torch.log_softmax(logits, dim=1)}.get(kind, torch.log_softmax(logits, dim=-1))
        return {"log_probs": out.numpy()}
    return outputs


def _acoustic_no_packing(self, features, lengths):  # the GRU reads the padding: no packing
    return self.out(self.rnn(features)[0]).log_softmax(-1)


def _acoustic_logits(self, features, lengths):  # packed, but returns the logits, no log_softmax
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
    return self.out(pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=features.shape[1])[0])


class AcousticExercise(TorchExercise):
    """Only the real frames are judged: what a model returns on padding is never read (CTC stops at
    input_lengths), so it may be anything there."""

    def judge(self, case, outputs, modified=()):
        """Judged on the real frames only: the padded frames of ``log_probs`` are set to the expected values."""
        got = outputs.get("log_probs")
        expected = self.expected(case)["log_probs"]
        if got is not None and got.shape == expected.shape and got.dtype == expected.dtype:
            got = got.copy()
            got[~case.options["mask"]] = expected[~case.options["mask"]]
            outputs = {**outputs, "log_probs": got}
        return super().judge(case, outputs, modified)

    def known_mistake(self, case, outputs):
        """As ``Exercise.known_mistake``, with each mistake's padded frames ignored as ``judge`` does."""
        if "log_probs" not in outputs:
            return ""
        expected, pad = self.expected(case)["log_probs"], ~case.options["mask"]

        def real_frames_only(model):
            def outputs_(case):
                out = model(case)
                out["log_probs"] = out["log_probs"].copy()
                out["log_probs"][pad] = expected[pad]
                return out
            return outputs_

        mistakes, self.mistakes = self.mistakes, [Mistake(m.hint, real_frames_only(m.outputs)) for m in self.mistakes]
        try:
            return super().known_mistake(case, outputs)
        finally:
            self.mistakes = mistakes


AcousticModel = AcousticExercise(
    "AcousticModel", "torch_module", "AcousticModel", _acoustic_cases,
    ("log_probs", *[f"d{p}" for p in ACOUSTIC_PARAMS], "dfeatures"),
    mistakes=[
        Mistake("the GRU read the padding: the backward direction of a bidirectional GRU starts at the last "
                "frame of the batch, not of each utterance. Pack the features (pack_padded_sequence with the "
                "lengths, enforce_sorted=False) before the GRU and unpack after it (see hint 2).",
                _acoustic_mistake("no packing"),
                implementation=wrong_module("AcousticModel", _acoustic_no_packing)),
        Mistake("return log-probabilities: apply torch.log_softmax over the classes (dim=-1) to the linear "
                "layer's output.", _acoustic_mistake("logits"),
                implementation=wrong_module("AcousticModel", _acoustic_logits)),
        Mistake("CTC takes log-probabilities: log_softmax, not softmax.", _acoustic_mistake("softmax")),
        Mistake("the log_softmax went over the time axis (dim=1): each frame's distribution is over the "
                "classes, dim=-1.", _acoustic_mistake("time axis")),
    ],
    hints={"log_probs": "log_probs[n, t] is log_softmax(out([forward state; backward state] at frame t)), with "
                        "each direction reading frames 0..lengths[n] - 1 of utterance n only.",
           "log_probs.shape": "log_probs should be (N, T, C), as long as the input: pass total_length=T "
                              "(features.shape[1]) to pad_packed_sequence.",
           "crash": "features is (N, T, F) and batch-first; pack_padded_sequence wants the lengths on the CPU and "
                    "enforce_sorted=False; the bidirectional GRU returns (N, T, 2H) states once unpacked."},
)
AcousticModel.hints.update({f"d{p}": "the outputs are right, so autograd's gradients follow: keep to torch "
                                      "operations (no .detach(), .numpy() or in-place changes of an input)."
                             for p in (*ACOUSTIC_PARAMS, "features")})

# --- 12.4: error_rate ------------------------------------------------------------------------


def _rate_cases(rng):
    cases = [Case("fixed inputs: 5 utterances, with a deletion, an insertion, substitutions and an empty hypothesis",
                  {"references": [[1, 2, 3, 4], [5, 6], [1, 1, 2], [3, 4, 5], [7, 8]],
                   "hypotheses": [[1, 3, 4], [5, 6, 7], [2, 1, 1], [3, 8, 5], []]})]
    g = _seed(rng, None)
    refs = [list(map(int, g.integers(1, 6, size=g.integers(1, 8)))) for _ in range(6)]
    hyps = []
    for r in refs:
        h = [c if g.random() < 0.6 else int(g.integers(1, 6)) for c in r if g.random() < 0.85]
        h += [int(v) for v in g.integers(1, 6, size=g.integers(0, 3))]
        hyps.append(h)
    cases.append(Case("random inputs: 6 utterances of 1 to 7 labels", {"references": refs, "hypotheses": hyps}))
    cases.append(Case("fixed inputs: every hypothesis right", {"references": [[1, 2], [3]], "hypotheses": [[1, 2], [3]]}))
    cases.append(Case("fixed inputs: one utterance, a long hypothesis (more errors than labels)",
                      {"references": [[1, 2]], "hypotheses": [[3, 4, 5, 6, 1]]}))
    return cases


def _hamming(r, h):
    return sum(a != b for a, b in zip(r, h)) + abs(len(r) - len(h))


def _lcs_distance(r, h):
    L = np.zeros((len(r) + 1, len(h) + 1), dtype=int)
    for i in range(1, len(r) + 1):
        for j in range(1, len(h) + 1):
            L[i, j] = L[i - 1, j - 1] + 1 if r[i - 1] == h[j - 1] else max(L[i - 1, j], L[i, j - 1])
    return len(r) + len(h) - 2 * L[-1, -1]


def _rate_mistake(kind):
    def outputs(case):
        from course_utils.lessons.nb12_speech_ctc.reference import edit_distance

        refs, hyps = case.args["references"], case.args["hypotheses"]
        dist = {"hamming": _hamming, "indel": _lcs_distance}.get(kind, edit_distance)
        if kind == "mean of rates":
            return {"error_rate": np.array(np.mean([dist(r, h) / len(r) for r, h in zip(refs, hyps)]))}
        errors = sum(dist(r, h) for r, h in zip(refs, hyps))
        total = sum(len(h) for h in hyps) if kind == "hypothesis length" else sum(len(r) for r in refs)
        return {"error_rate": np.array(float(errors) if kind == "count" else errors / max(total, 1))}
    return outputs


def _wrong_rate_positions(references, hypotheses):  # compared position by position, no alignment
    errors = sum(sum(a != b for a, b in zip(r, h)) + abs(len(r) - len(h)) for r, h in zip(references, hypotheses))
    return errors / sum(len(r) for r in references)


def _wrong_rate_substitution_two(references, hypotheses):  # a substitution costs 2, a deletion and an insertion
    def distance(r, h):
        d = np.zeros((len(r) + 1, len(h) + 1), dtype=int)
        d[:, 0], d[0, :] = np.arange(len(r) + 1), np.arange(len(h) + 1)
        for i in range(1, len(r) + 1):
            for j in range(1, len(h) + 1):
                d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + 2 * (r[i - 1] != h[j - 1]))
        return d[-1, -1]
    return sum(distance(r, h) for r, h in zip(references, hypotheses)) / sum(len(r) for r in references)


def _wrong_rate_average(references, hypotheses):  # the mean of each utterance's own rate
    from course_utils.lessons.nb12_speech_ctc.reference import edit_distance

    return float(np.mean([edit_distance(r, h) / len(r) for r, h in zip(references, hypotheses)]))


def _wrong_rate_by_hypotheses(references, hypotheses):  # divided by the length of the hypotheses
    from course_utils.lessons.nb12_speech_ctc.reference import edit_distance

    return sum(edit_distance(r, h) for r, h in zip(references, hypotheses)) / sum(len(h) for h in hypotheses)


def _wrong_rate_count(references, hypotheses):  # the number of edits, not divided by anything
    from course_utils.lessons.nb12_speech_ctc.reference import edit_distance

    return sum(edit_distance(r, h) for r, h in zip(references, hypotheses))


class RateExercise(Exercise):
    """error_rate(references, hypotheses) -> the corpus error rate, a float, on lists of id sequences."""

    name, funcs, outputs = "error_rate", ("error_rate",), ("error_rate",)

    def __init__(self, mistakes, hints):
        self.mistakes, self.hints = mistakes, hints

    def cases(self, rng):
        """The grid of cases: fixed utterances with every kind of edit, random ones, and all right."""
        return _rate_cases(rng)

    def plan(self, case):
        """Called through ``sequences_function``: the arguments are lists of lists, not arrays."""
        return "sequences_function", {"args": case.args, "name": self.name}

    def expected(self, case):
        """The reference error rate, as a 0-d float64 array."""
        from course_utils.reference import error_rate

        return {"error_rate": np.array(float(error_rate(case.args["references"], case.args["hypotheses"])))}


error_rate = RateExercise(
    mistakes=[
        Mistake("the distance counts position by position: an inserted or deleted label shifts everything after "
                "it, and each shifted label counts as an error. The edit distance finds the cheapest alignment "
                "instead (see hint 1).", _rate_mistake("hamming"), implementation=_wrong_rate_positions),
        Mistake("a substitution is one edit, not a deletion and an insertion: in the recurrence, the diagonal "
                "step costs 1 when the labels differ.", _rate_mistake("indel"),
                implementation=_wrong_rate_substitution_two),
        Mistake("this averages each utterance's rate, so a 2-label utterance weighs as much as a 7-label one: "
                "divide the total number of edits by the total number of reference labels.",
                _rate_mistake("mean of rates"), implementation=_wrong_rate_average),
        Mistake("divide by the number of labels in the *references*, not in the hypotheses.",
                _rate_mistake("hypothesis length"), implementation=_wrong_rate_by_hypotheses),
        Mistake("return a rate: the total number of edits divided by the total number of reference labels.",
                _rate_mistake("count"), implementation=_wrong_rate_count),
    ],
    hints={"error_rate": "error_rate = (sum of the edit distances from each reference to its hypothesis) / (total "
                         "number of reference labels); the edit distance counts insertions, deletions and "
                         "substitutions, each as 1 (see hint 2).",
           "crash": "references and hypotheses are lists of lists of ints, of the same length; a hypothesis may "
                    "be empty."},
)
error_rate.exact = False
