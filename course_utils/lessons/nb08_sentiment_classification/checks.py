"""Checks of notebook 08: the padding mask, the masked mean, the bidirectional LSTM
classifier, which must give the same logits whatever the padding holds, and one training step."""
from __future__ import annotations

import numpy as np

from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise_torch import TorchExercise, wrong_module


def _seed(rng, seed):
    return np.random.default_rng(int(rng.integers(0, 2**31)) if seed is None else seed)


# --- 8.1: padding_mask ----------------------------------------------------------------------


def _mask_cases(rng):
    cases = []
    for label, lengths, T, seed in [("fixed lengths [3, 1, 4], T=4", [3, 1, 4], 4, 0),
                                    ("random lengths, N=6, T=7", None, 7, None),
                                    ("lengths [2, 5] with extra padding, T=8", [2, 5], 8, None),
                                    ("no padding: lengths [5, 5], T=5", [5, 5], 5, None),
                                    ("one sequence of length 1, T=1", [1], 1, None)]:
        g = _seed(rng, seed)
        lengths = np.array(lengths if lengths is not None else g.integers(1, T + 1, size=6), dtype=np.int64)
        cases.append(Case(label, {"lengths": lengths, "T": T}, options={"plan": {
            "returns": ("mask",), "name": "padding_mask"}}))
    return cases


def _mask(rule):
    def outputs(case):
        lengths, T = case.args["lengths"], case.args["T"]
        return {"mask": rule(np.arange(T)[None, :], lengths[:, None])}
    return outputs


def _wrong_mask_le(lengths, T):  # t <= L: one position too many
    import torch

    return torch.arange(T)[None] <= lengths[:, None]


def _wrong_mask_from_1(lengths, T):  # positions counted from 1
    import torch

    return torch.arange(1, T + 1)[None] < lengths[:, None]


def _wrong_mask_inverted(lengths, T):  # True at the padding
    import torch

    return torch.arange(T)[None] >= lengths[:, None]


def _wrong_mask_transposed(lengths, T):  # (T, N): positions as a column, lengths as a row
    import torch

    return torch.arange(T)[:, None] < lengths[None, :]


padding_mask = TorchExercise(
    "padding_mask", "torch_function", "padding_mask", _mask_cases, ("mask",),
    mistakes=[
        Mistake("one position too many is True: the real positions of a sequence of length L are "
                "t = 0, ..., L - 1, so compare with <, not <=.", _mask(lambda t, L: t <= L), _wrong_mask_le),
        Mistake("the last real position is False: positions count from 0, so t < lengths[n] is the test "
                "(not t + 1 < lengths[n]).", _mask(lambda t, L: t + 1 < L), _wrong_mask_from_1),
        Mistake("the mask is inverted: True marks the real tokens, False the padding.",
                _mask(lambda t, L: t >= L), _wrong_mask_inverted),
        Mistake("the mask is (T, N); it should be (N, T), one row per sequence: compare "
                "torch.arange(T)[None, :] with lengths[:, None].", _mask(lambda t, L: (t < L).T),
                _wrong_mask_transposed),
    ],
    hints={"mask": "mask[n, t] is True exactly when t < lengths[n]: torch.arange(T)[None, :] < lengths[:, None].",
           "mask.shape": "the mask is (N, T): torch.arange(T) as a row (1, T) against lengths as a column (N, 1).",
           "crash": "build the positions with torch.arange(T, device=lengths.device) and compare them with "
                    "lengths[:, None]; broadcasting gives (N, T)."},
)

# --- 8.2: masked_mean -------------------------------------------------------------------------


def _mean_cases(rng):
    cases = []
    for label, (N, T, D), kind, seed in [("fixed inputs, padding at the end", (3, 5, 4), "prefix", 0),
                                         ("random inputs, N=1, T=1", (1, 1, 3), "prefix", None),
                                         ("random inputs, N=T=D=4", (4, 4, 4), "prefix", None),
                                         ("random inputs, no padding", (2, 3, 5), "full", None),
                                         ("random inputs, a mask with gaps", (3, 6, 2), "gaps", None)]:
        g = _seed(rng, seed)
        if kind == "gaps":
            mask = g.random((N, T)) < 0.5
            mask[np.arange(N), g.integers(0, T, size=N)] = True  # every row has a real position
        else:
            lengths = np.full(N, T) if kind == "full" else g.integers(1, T + 1, size=N)
            if kind == "prefix" and N > 1:
                lengths[0] = max(1, T - 2)  # at least one row with padding
            mask = np.arange(T)[None, :] < lengths[:, None]
        cases.append(Case(f"{label}, D={D}" if "D=" not in label else label,
                          {"x": g.standard_normal((N, T, D)), "mask": mask}, options={"plan": {
                              "returns": ("mean",), "name": "masked_mean", "douts": {"mean": g.standard_normal((N, D))},
                              "grad_wrt": ("x",)}}))
    return cases


def _mean(rule):
    def outputs(case):
        x, m = case.args["x"], case.args["mask"].astype(np.float64)
        return {"mean": rule(x, m)}
    return outputs


def _wrong_mean_all(x, mask):  # the mean over all T positions, padding included
    return x.mean(dim=1)


def _wrong_mean_over_T(x, mask):  # the masked sum divided by T
    return (x * mask[..., None]).sum(1) / x.shape[1]


def _wrong_masked_sum(x, mask):  # the masked sum, not divided
    return (x * mask[..., None]).sum(1)


def _wrong_mean_padding_summed(x, mask):  # every position summed, divided by the real ones
    return x.sum(1) / mask.sum(1, keepdim=True)


def _wrong_mean_batch_count(x, mask):  # divided by the real positions of the whole batch
    return (x * mask[..., None]).sum(1) / mask.sum()


masked_mean = TorchExercise(
    "masked_mean", "torch_function", "masked_mean", _mean_cases, ("mean", "dx"),
    mistakes=[
        Mistake("that is the mean over all T positions, padding included: multiply x by the mask and divide "
                "by each row's number of real positions.", _mean(lambda x, m: x.mean(axis=1)), _wrong_mean_all),
        Mistake("the sum is right but it is divided by T: divide by each row's number of real positions, "
                "mask.sum(dim=1, keepdim=True).", _mean(lambda x, m: (x * m[..., None]).sum(1) / m.shape[1]),
                _wrong_mean_over_T),
        Mistake("that is the masked sum: divide it by each row's number of real positions.",
                _mean(lambda x, m: (x * m[..., None]).sum(1)), _wrong_masked_sum),
        Mistake("the padded positions were summed too: multiply x by the mask (with a trailing axis, "
                "mask[..., None]) before summing over t.",
                _mean(lambda x, m: x.sum(1) / m.sum(1, keepdims=True)), _wrong_mean_padding_summed),
        Mistake("mask.sum() counts the real positions of the whole batch; each row needs its own count: "
                "mask.sum(dim=1, keepdim=True).", _mean(lambda x, m: (x * m[..., None]).sum(1) / m.sum()),
                _wrong_mean_batch_count),
        Mistake("mask (N, T) was multiplied with x (N, T, D) without a trailing axis, so broadcasting lined "
                "it up with the wrong axes: use mask[..., None] (or mask.unsqueeze(-1)), shape (N, T, 1).",
                _mean(lambda x, m: (x * m[None]).sum(1) / m.sum(1, keepdims=True))),
    ],
    hints={"mean": "sum x * mask[..., None] over t (dim=1), then divide by mask.sum(dim=1, keepdim=True).",
           "crash": "mask is (N, T) and x is (N, T, D): give the mask a trailing axis, mask[..., None] "
                    "(N, T, 1), so that it broadcasts over D; turn it into numbers with .to(x.dtype) if needed.",
           "dx": "the mean is right, so autograd's gradient follows: keep to torch operations on x "
                 "(no .detach(), .numpy() or in-place changes of x)."},
)

# --- 8.3: SentimentLSTM -------------------------------------------------------------------------

PARAMS = ("embedding.weight",
          "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
          "lstm.weight_ih_l0_reverse", "lstm.weight_hh_l0_reverse", "lstm.bias_ih_l0_reverse",
          "lstm.bias_hh_l0_reverse", "out.weight", "out.bias")


def _state(g, V, E, H, C):
    """Fixed weights of the exercise's module: every name and shape as in the skeleton."""
    w = lambda *shape, scale=1.0: g.standard_normal(shape) * scale  # noqa: E731
    state = {"embedding.weight": w(V, E)}
    state["embedding.weight"][0] = 0.0  # padding_idx=0: the padding's embedding is zero
    for suffix in ("", "_reverse"):
        state[f"lstm.weight_ih_l0{suffix}"] = w(4 * H, E, scale=1 / np.sqrt(E))
        state[f"lstm.weight_hh_l0{suffix}"] = w(4 * H, H, scale=1 / np.sqrt(H))
        state[f"lstm.bias_ih_l0{suffix}"] = w(4 * H, scale=0.5)
        state[f"lstm.bias_hh_l0{suffix}"] = w(4 * H, scale=0.5)
    state["out.weight"] = w(C, 2 * H, scale=1 / np.sqrt(H))
    state["out.bias"] = w(C, scale=0.5)
    return state


def _tokens(g, lengths, T, V):
    tokens = np.zeros((len(lengths), T), dtype=np.int64)
    for n, L in enumerate(lengths):
        tokens[n, :L] = g.integers(1, V, size=L)  # real tokens are never the padding id 0
    return tokens


def _lstm_case(label, tokens, lengths, state, sizes, douts):
    V, E, H, C = sizes
    return Case(label, {"tokens": tokens, "lengths": np.asarray(lengths, dtype=np.int64)}, options={"plan": {
        "init": {"vocab_size": V, "embed_dim": E, "hidden_size": H, "num_classes": C}, "state": state,
        "returns": ("logits",), "name": "SentimentLSTM", "douts": {"logits": douts}, "grad_wrt": ()}})


def _lstm_cases(rng):
    g = np.random.default_rng(0)
    sizes = V, E, H, C = 12, 4, 3, 2
    lengths, T = np.array([5, 2, 4, 1]), 5
    state, tokens = _state(g, *sizes), _tokens(g, lengths, T, V)
    douts = g.standard_normal((len(lengths), C))
    noisy = tokens.copy()
    noisy[tokens == 0] = g.integers(1, V, size=int((tokens == 0).sum()))
    longer = np.concatenate([tokens, np.zeros((len(lengths), 3), dtype=np.int64)], axis=1)
    cases = [
        _lstm_case(f"fixed weights and tokens, lengths {lengths.tolist()}, T={T}", tokens, lengths, state, sizes, douts),
        _lstm_case("the same reviews with other token ids than 0 at the padded positions (they must not count)",
                   noisy, lengths, state, sizes, douts),
        _lstm_case("the same reviews with 3 more padding columns, T=8 (the logits must not change)",
                   longer, lengths, state, sizes, douts),
    ]
    for label, (N, T, V, E, H, C), full in [("random weights, N=6, T=7, V=15, E=5, H=4, C=3", (6, 7, 15, 5, 4, 3), False),
                                            ("random weights, one review of length 1", (1, 1, 9, 3, 2, 2), False),
                                            ("random weights, H=1", (3, 4, 8, 3, 1, 2), False),
                                            ("random weights, no padding (every length is T=4)", (3, 4, 10, 3, 2, 2), True)]:
        g = _seed(rng, None)
        lengths = np.full(N, T) if full else g.integers(1, T + 1, size=N)
        if not full and N > 1:
            lengths[0] = T  # one review fills the batch, as in any padded batch
        sizes = (V, E, H, C)
        cases.append(_lstm_case(label, _tokens(g, lengths, T, V), lengths, _state(g, *sizes), sizes,
                                g.standard_normal((N, C))))
    return cases


def _reference_parts(case):
    """The reference module with the case's weights, and the case's inputs as tensors (float64)."""
    import torch

    from course_utils.lessons.nb08_sentiment_classification.reference import SentimentLSTM

    plan = case.options["plan"]
    model = SentimentLSTM(*plan["init"].values()).to(torch.float64)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in plan["state"].items()})
    model.eval()
    return model, torch.from_numpy(case.args["tokens"]), torch.from_numpy(case.args["lengths"])


def _lstm_mistake(final_of):
    """Logits computed from a wrong summary: final_of(model, x (N, T, E), tokens, lengths) -> (N, 2H)."""
    def outputs(case):
        import torch

        model, tokens, lengths = _reference_parts(case)
        with torch.no_grad():
            x = model.embedding(tokens)
            return {"logits": model.out(final_of(model, x, tokens, lengths)).numpy()}
    return outputs


def _packed(model, x, lengths):
    """(out (N, T, 2H) with zeros at the padding, h_n (2, N, H)) of the packed run."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, _) = model.lstm(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], h_n


def _unpacked_last(model, x, tokens, lengths):
    return model.lstm(x)[0][:, -1]


def _unpacked_at_length(model, x, tokens, lengths):
    import torch

    return model.lstm(x)[0][torch.arange(len(lengths)), lengths - 1]


def _packed_at_length(model, x, tokens, lengths):
    import torch

    return _packed(model, x, lengths)[0][torch.arange(len(lengths)), lengths - 1]


def _unpacked_h_n(model, x, tokens, lengths):
    import torch

    h_n = model.lstm(x)[1][0]
    return torch.cat([h_n[0], h_n[1]], dim=1)


def _mean_all(model, x, tokens, lengths):
    return model.lstm(x)[0].mean(dim=1)


def _mean_real(model, x, tokens, lengths):
    out = _packed(model, x, lengths)[0]
    return out.sum(dim=1) / lengths[:, None].to(out.dtype)


def _h_n_view(model, x, tokens, lengths):
    h_n = _packed(model, x, lengths)[1]
    return h_n.reshape(len(lengths), -1)


def _swapped(model, x, tokens, lengths):
    import torch

    h_n = _packed(model, x, lengths)[1]
    return torch.cat([h_n[1], h_n[0]], dim=1)


def _lengths_from_tokens(model, x, tokens, lengths):
    import torch

    h_n = _packed(model, x, (tokens != 0).sum(dim=1))[1]
    return torch.cat([h_n[0], h_n[1]], dim=1)


def _softmax(case):
    import torch

    model, tokens, lengths = _reference_parts(case)
    with torch.no_grad():
        return {"logits": torch.softmax(model(tokens, lengths), dim=1).numpy()}


# The catalogue's wrong implementations: a learner's forward, in the reference's module (nb07's wrong_module).


def _learner_packed_run(self, tokens, lengths):
    """(out, (h_n, c_n)) of the LSTM over the packed, embedded batch, as the learner's forward runs it."""
    from torch.nn.utils.rnn import pack_padded_sequence

    x = self.embedding(tokens)
    return self.lstm(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))


def _wrong_last_padded_step(self, tokens, lengths):  # out[:, -1] of an unpacked run
    out, _ = self.lstm(self.embedding(tokens))
    return self.out(out[:, -1])


def _wrong_outputs_at_length(self, tokens, lengths):  # packed outputs at each review's last step
    import torch
    from torch.nn.utils.rnn import pad_packed_sequence

    out, _ = pad_packed_sequence(_learner_packed_run(self, tokens, lengths)[0], batch_first=True)
    return self.out(out[torch.arange(len(lengths)), lengths - 1])


def _wrong_unpacked(self, tokens, lengths):  # h_n of an unpacked run, after the padding
    import torch

    _, (h_n, _) = self.lstm(self.embedding(tokens))
    return self.out(torch.cat([h_n[0], h_n[1]], dim=1))


def _wrong_mean_over_padding(self, tokens, lengths):  # the outputs' mean over all T steps
    out, _ = self.lstm(self.embedding(tokens))
    return self.out(out.mean(dim=1))


def _wrong_view_mixes_reviews(self, tokens, lengths):  # h_n (2, N, H) viewed as (N, 2H)
    _, (h_n, _) = _learner_packed_run(self, tokens, lengths)
    return self.out(h_n.view(len(lengths), -1))


def _wrong_swapped(self, tokens, lengths):  # the backward direction's state first
    import torch

    _, (h_n, _) = _learner_packed_run(self, tokens, lengths)
    return self.out(torch.cat([h_n[1], h_n[0]], dim=1))


def _wrong_lengths_from_tokens(self, tokens, lengths):  # lengths counted from the non-zero tokens
    import torch

    _, (h_n, _) = _learner_packed_run(self, tokens, (tokens != 0).sum(dim=1))
    return self.out(torch.cat([h_n[0], h_n[1]], dim=1))


def _wrong_probabilities(self, tokens, lengths):  # a softmax over the logits
    import torch

    _, (h_n, _) = _learner_packed_run(self, tokens, lengths)
    return torch.softmax(self.out(torch.cat([h_n[0], h_n[1]], dim=1)), dim=1)


def _wrong_classifier(forward):
    return wrong_module("SentimentLSTM", forward)


PACK = ("pack the embedded batch with pack_padded_sequence(x, lengths.cpu(), batch_first=True, "
        "enforce_sorted=False), so that the LSTM stops at each review's end, and use its final states h_n")
LSTM_MISTAKES = [
    # first: on the batch with other ids at the padding, it looks like the unpacked run below
    Mistake("use the `lengths` argument rather than counting non-zero tokens: the check puts other ids than 0 "
            "after the end of some reviews, and those must be ignored too.", _lstm_mistake(_lengths_from_tokens),
            _wrong_classifier(_wrong_lengths_from_tokens)),
    Mistake("out[:, -1] is the output at the last *padded* step: for a shorter review the forward direction "
            f"has read padding, and the backward direction has read only padding and one token. Instead, {PACK}.",
            _lstm_mistake(_unpacked_last), _wrong_classifier(_wrong_last_padded_step)),
    Mistake("out[n, lengths[n] - 1] is the forward direction's final state, but there the backward direction "
            "has read only the last token. Its summary of the whole review is its state after reaching t = 0: "
            "h_n[1] of the packed run. Use torch.cat([h_n[0], h_n[1]], dim=1).", _lstm_mistake(_packed_at_length),
            _wrong_classifier(_wrong_outputs_at_length)),
    Mistake("out[n, lengths[n] - 1] of an unpacked run: the backward direction started in the padding and has "
            f"read only the last token there. {PACK[0].upper() + PACK[1:]}.", _lstm_mistake(_unpacked_at_length)),
    Mistake(f"without packing, the LSTM reads the padding too: h_n[0] comes after the padding. {PACK[0].upper()}"
            f"{PACK[1:]}.", _lstm_mistake(_unpacked_h_n), _wrong_classifier(_wrong_unpacked)),
    Mistake("that is the mean of the outputs over all T steps, padding included; this classifier reads the two "
            "final states instead: torch.cat([h_n[0], h_n[1]], dim=1) of the packed run.", _lstm_mistake(_mean_all),
            _wrong_classifier(_wrong_mean_over_padding)),
    Mistake("a mean of the outputs over the real steps is another (reasonable) model; this exercise's classifier "
            "reads the two final states: torch.cat([h_n[0], h_n[1]], dim=1) of the packed run.",
            _lstm_mistake(_mean_real)),
    Mistake("h_n is (2, N, H): h_n.view(N, 2 * H) or .reshape mixes the states of different reviews. Concatenate "
            "the directions instead: torch.cat([h_n[0], h_n[1]], dim=1).", _lstm_mistake(_h_n_view),
            _wrong_classifier(_wrong_view_mixes_reviews)),
    Mistake("the two directions are swapped: the forward direction's state comes first, "
            "torch.cat([h_n[0], h_n[1]], dim=1), as in the LSTM's own outputs.", _lstm_mistake(_swapped),
            _wrong_classifier(_wrong_swapped)),
    Mistake("return the raw scores (logits), not probabilities: F.cross_entropy applies the softmax itself.",
            _softmax, _wrong_classifier(_wrong_probabilities)),
]

LSTM_GRAD_HINT = ("the logits are right, so autograd's gradients follow: keep to torch operations (no .detach(), "
                  ".numpy(), .item() or in-place changes in the middle).")
SentimentLSTM = TorchExercise(
    "SentimentLSTM", "torch_module", "SentimentLSTM", _lstm_cases, ("logits", *(f"d{p}" for p in PARAMS)),
    mistakes=LSTM_MISTAKES,
    hints={"logits": "embed the tokens, pack them with the lengths, run self.lstm, and map "
                     "torch.cat([h_n[0], h_n[1]], dim=1) (N, 2H) to the logits with self.out.",
           "logits.shape": "the logits are (N, C): one row of C scores per review, from the final states (N, 2H).",
           "crash": "for one bidirectional layer h_n is (2, N, H): h_n[0] is the forward direction, h_n[1] the "
                    "backward one; concatenate them into (N, 2H) for self.out. pack_padded_sequence needs the "
                    "lengths on the CPU and, as they are not sorted, enforce_sorted=False.",
           **{f"d{p}": LSTM_GRAD_HINT for p in PARAMS}},
)

# --- 8.4: train_step ---------------------------------------------------------------------------
#
# The learner's step runs twice, on two fixed batches, on a small fixed classifier (`_calls.
# build_classifier`) with plain SGD: with SGD an update is -lr times the gradient, so every
# difference in the gradients (not zeroed, not clipped, a wrong loss) shows in the weights.
# (Adam's first update hardly depends on the gradients' scale: it would hide a missing clip.)


def _classifier_state(g, V, E, H, C):
    w = lambda *shape, scale=1.0: g.standard_normal(shape) * scale  # noqa: E731
    state = {"embedding.weight": w(V, E)}
    state["embedding.weight"][0] = 0.0  # padding_idx=0
    state.update({"lstm.weight_ih_l0": w(4 * H, E, scale=1 / np.sqrt(E)),
                  "lstm.weight_hh_l0": w(4 * H, H, scale=1 / np.sqrt(H)),
                  "lstm.bias_ih_l0": w(4 * H, scale=0.5), "lstm.bias_hh_l0": w(4 * H, scale=0.5),
                  "out.weight": w(C, H, scale=1.5), "out.bias": w(C, scale=0.5)})
    return state


def _step_cases(rng):
    """Fixed cases only (no fresh draw): the verdict is the same on every run."""
    cases = []
    for label, seed, (V, E, H, C), lr, max_norm, batch_lengths in [
            ("fixed weights, two batches, max_norm=0.5 (the gradients' norm is above it: clipping acts)",
             18, (10, 4, 3, 2), 0.5, 0.5, [(5, 2, 4, 1), (3, 4, 2)]),
            ("fixed weights, two batches, max_norm=100 (far above the gradients' norm: nothing to clip)",
             11, (10, 4, 3, 2), 0.5, 100.0, [(4, 1, 3), (2, 5, 5, 1)]),
            ("3 classes, batches of 1 and 2 reviews, max_norm=0.3", 12, (8, 3, 2, 3), 1.0, 0.3, [(3,), (2, 4)])]:
        g = np.random.default_rng(seed)
        batches = []
        for lengths in batch_lengths:
            lengths = np.array(lengths, dtype=np.int64)
            batches.append({"tokens": _tokens(g, lengths, int(lengths.max()), V), "lengths": lengths,
                            "labels": g.integers(0, C, size=len(lengths)).astype(np.int64)})
        cases.append(Case(label, {}, options={"plan": {
            "sizes": {"V": V, "E": E, "H": H, "C": C}, "state": _classifier_state(g, V, E, H, C),
            "lr": lr, "max_norm": max_norm, "batches": batches}}))
    return cases


class TrainStepExercise(TorchExercise):
    """The step is called through its own convention; a crash is explained by its message."""

    def plan(self, case):
        """The step's convention with the case's classifier, batches, learning rate and max_norm."""
        return self.convention, dict(case.options["plan"])

    def tolerance(self, case, name):
        """1e-5 for every weight after the steps (the comment says why)."""
        # clip_grad_norm_ scales by max_norm / (norm + 1e-6); clipping by hand, as notebook 03 defines it,
        # scales by max_norm / norm. Both are right: 1e-5 lets both pass, and every catalogued mistake
        # is off by 1e-3 or more.
        return 1e-5

    def crash_hint(self, message):
        """The hint of a known crash of a training step (STEP_CRASHES), else the general one."""
        for words, hint in STEP_CRASHES:
            if words in message:
                return hint
        return super().crash_hint(message)


def _wrong_step(zero=True, loss_of=None, clip="norm", step=True, zero_before_step=False):
    """A learner's training step with one thing changed: the catalogue's wrong implementations (run
    through the check's own convention, they are also what the check matches a wrong step against)."""
    def train_step(model, optimizer, tokens, lengths, labels, max_norm):
        import torch
        from torch.nn import functional as F

        if zero:
            optimizer.zero_grad()
        logits = model(tokens, lengths)
        loss = loss_of(logits, labels) if loss_of else F.cross_entropy(logits, labels)
        loss.backward()
        if zero_before_step:
            optimizer.zero_grad()
        if clip == "norm":
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        elif clip == "one":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        elif clip == "value":
            torch.nn.utils.clip_grad_value_(model.parameters(), max_norm)
        elif clip == "each":
            for p in model.parameters():
                torch.nn.utils.clip_grad_norm_(p, max_norm)
        if step:
            optimizer.step()
        if clip == "after":  # too late: the step has used the unclipped gradients
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return loss.item()
    return train_step


def _double_softmax(logits, labels):
    import torch
    from torch.nn import functional as F

    return F.cross_entropy(torch.softmax(logits, dim=1), labels)


def _summed(logits, labels):
    from torch.nn import functional as F

    return F.cross_entropy(logits, labels, reduction="sum")


STEP_CRASHES = [
    ("'float' object has no attribute 'backward'",
     "loss.item() is a plain Python number, with no graph behind it: call .backward() on the loss tensor, "
     "and take loss.item() only at the end, for the value you return."),
    ("does not require grad",
     "loss.backward() found no graph to go back through: the loss was computed from something cut off from "
     "the model's weights (.detach(), .item(), .numpy(), or code inside torch.no_grad()). Compute it with "
     "torch operations straight from model(tokens, lengths)."),
]

NO_UPDATE = ("the weights did not change: optimizer.step() must run, after loss.backward() and the clipping, "
             "with the gradients still in .grad (zeroing them between the backward pass and the step "
             "throws them away).")
UNCLIPPED = ("the update used the unclipped gradients (their norm here is above max_norm): clip them with "
             "torch.nn.utils.clip_grad_norm_ after loss.backward() and before optimizer.step(). Clipping "
             "after the step comes too late: the step has already used them.")
train_step = TrainStepExercise(
    "train_step", "torch_train_step", "train_step", _step_cases,
    ("loss_1", "weights_1", "loss_2", "weights_2"),
    mistakes=[
        Mistake("the first step is right but the second is not: the first batch's gradients were still in "
                ".grad, and loss.backward() adds the new ones to them. Zero the gradients at every step "
                "(optimizer.zero_grad()) before loss.backward().", implementation=_wrong_step(zero=False)),
        Mistake(NO_UPDATE, implementation=_wrong_step(step=False)),
        Mistake(NO_UPDATE, implementation=_wrong_step(zero_before_step=True)),  # the same, zeroed too late
        Mistake(UNCLIPPED, implementation=_wrong_step(clip=None)),
        Mistake(UNCLIPPED, implementation=_wrong_step(clip="after")),  # the same, clipped too late
        Mistake("the loss was computed from probabilities: F.cross_entropy takes the raw logits and applies "
                "the (log-)softmax itself, so a softmax before it is applied twice.",
                implementation=_wrong_step(loss_of=_double_softmax)),
        Mistake("that loss is the sum over the batch; use the mean (F.cross_entropy's default), so that the "
                "size of a step does not depend on the number of reviews in the batch.",
                implementation=_wrong_step(loss_of=_summed)),
        Mistake("the gradients were clipped to norm 1, not to max_norm: use the max_norm argument.",
                implementation=_wrong_step(clip="one")),
        Mistake("each entry of the gradients was clipped to [-max_norm, max_norm] (clip_grad_value_); clip "
                "their global norm instead, all parameters together: clip_grad_norm_.",
                implementation=_wrong_step(clip="value")),
        Mistake("each parameter's gradient was clipped on its own; the norm to clip is the global one, of all "
                "the gradients together: one call of clip_grad_norm_ on model.parameters().",
                implementation=_wrong_step(clip="each")),
    ],
    hints={"loss_1": "the returned loss is not the mean cross-entropy of the model's logits on this batch "
                     "before the update (see hint 2 under the exercise).",
           "loss_2": "the first step is right, but the loss of the second batch is not: does your step depend "
                     "on anything but its arguments?",
           "weights_1": "the loss is right but the weights after the step are not, and no known mistake explains "
                        "it: compare the order of your lines with hint 3 under the exercise.",
           "weights_2": "the first step is right, but the weights after the second are not, and no known mistake "
                        "explains it: does your step keep anything from one call to the next?",
           "crash": "your step crashed: the model is called as model(tokens, lengths), and the labels are int64 "
                    "class ids (N,)."},
)
