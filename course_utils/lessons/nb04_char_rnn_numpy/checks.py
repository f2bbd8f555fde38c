"""Checks of notebook 04: embedding, temporal softmax loss, the language model, its training step, sampling."""
from __future__ import annotations

import math

import numpy as np

from course_utils import reference as ref

from course_utils.checking.core import Case, Mistake, copy_args
from course_utils.checking.exercise import BackwardExercise, Exercise, FunctionExercise

# --- embedding -----------------------------------------------------------------------


def _embedding_build(rng, N, T, V, D):
    # Fewer distinct tokens than positions, so that repeated tokens are common.
    return {"x": rng.integers(0, max(1, V // 2 + 1), size=(N, T)), "W": rng.standard_normal((V, D))}


def _wrong_axes_swapped(x, W):  # W[x.T]: the batch and time axes swapped
    return W[x.T], (x, W.shape)


def _wrong_summed_over_time(x, W):  # one vector per sequence instead of one per position
    return W[x].sum(axis=1), (x, W.shape)


embedding_forward = FunctionExercise(
    "embedding_forward", ("out", "cache"), ref.embedding_forward, _embedding_build, ("N", "T", "V", "D"),
    mistakes=[
        Mistake("the first two axes are swapped: out[n, t] = W[x[n, t]], which is simply W[x].",
                lambda c: {"out": c.args["W"][c.args["x"].T]}, _wrong_axes_swapped),
        Mistake("you sum the embeddings over time; keep one vector per position: out = W[x].",
                lambda c: {"out": c.args["W"][c.args["x"]].sum(axis=1)}, _wrong_summed_over_time),
    ],
    hints={"out": "out[n, t] = W[x[n, t]]; NumPy's integer indexing does it in one go: W[x].",
           "out.shape": "out should have shape (N, T, D): W[x] picks one row of W per token."},
)


def _emb_bwd(f):
    def outputs(case):
        x, W = case.args["x"], case.args["W"]
        return {"out": W[x], "dW": f(x, W, case.douts["dout"])}
    return outputs


def _buffered(x, W, dout):
    dW = np.zeros_like(W)
    dW[x] += dout  # repeated indices: only one of the additions survives
    return dW


def _averaged(x, W, dout):
    dW = np.zeros_like(W)
    np.add.at(dW, x, dout)
    counts = np.bincount(x.ravel(), minlength=W.shape[0])[:, None]
    return dW / np.maximum(counts, 1)


def _wrong_index_add(dout, cache):  # dW[x] += dout: a repeated token adds only one occurrence
    x, shape = cache
    dW = np.zeros(shape, dtype=dout.dtype)
    dW[x] += dout
    return dW


def _wrong_averaged(dout, cache):  # the occurrences of a token averaged instead of summed
    x, shape = cache
    dW = np.zeros(shape, dtype=dout.dtype)
    np.add.at(dW, x, dout)
    return dW / np.maximum(np.bincount(x.ravel(), minlength=shape[0]), 1)[:, None].astype(dW.dtype)


embedding_backward = BackwardExercise(
    "embedding_backward", embedding_forward, ("dW",), ref.embedding_backward,
    mistakes=[
        Mistake("a token that appears several times gets the gradient of only one occurrence: "
                "dW[x] += dout does not add repeated indices up. Use np.add.at(dW, x, dout), or a loop.",
                _emb_bwd(_buffered), _wrong_index_add),
        Mistake("you average over the occurrences of each token; the gradient is their sum.",
                _emb_bwd(_averaged), _wrong_averaged),
    ],
    hints={"dW": "dW[v] is the sum of dout[n, t] over every position where x[n, t] == v "
                 "(np.add.at(dW, x, dout)); rows of tokens that never appear are zero."},
    wrt={"dW": "W"},
)

# --- temporal_softmax_loss -------------------------------------------------------------


def _loss_build(rng, N, T, V):
    mask = rng.random((N, T)) < 0.7
    mask.flat[rng.integers(0, N * T)] = True  # at least one position counts
    return {"scores": rng.standard_normal((N, T, V)) * 2, "y": rng.integers(0, V, size=(N, T)), "mask": mask}


OVERFLOW_HINT = ("np.exp of scores near 1000 overflows to inf: subtract each row's maximum from the scores "
                 "before np.exp (that changes no probability).")
UNDERFLOW_HINT = ("the correct class is 800 below the best one: its probability, e^-800, rounds to 0 in "
                  "float64, and np.log(0) is -inf (clamping it gives a wrong number). Compute log p directly "
                  "as a log-softmax: log p = s - max(s) - log(sum(exp(s - max(s)))), then pick the target's "
                  "entry; never take the log of a probability.")


def _loss_extra(rng):
    g = np.random.default_rng(int(rng.integers(0, 2**31)))
    full = _loss_build(g, 2, 3, 5)
    full["mask"] = np.ones((2, 3), dtype=bool)
    # Fixed values, so that a fragile implementation gets the same verdict on every run.
    base = np.array([[[0.5, -1.0, 2.0, 0.0, 1.0], [1.5, 0.0, -0.5, 3.0, 0.5], [2.0, 1.0, 0.0, -1.0, -2.0]],
                     [[-2.0, 0.0, 1.0, 0.5, 1.5], [0.0, 0.0, 2.5, -1.5, 1.0], [1.0, -0.5, 0.0, 2.0, 3.0]]])
    y = np.array([[0, 3, 4], [2, 1, 0]])
    mask = np.array([[True, True, False], [True, False, True]])
    far = base.copy()
    far[0, 0, 2] = far[1, 0, 0] = 800.0  # the correct class of two counted positions: 800 below the best
    return [Case("very large scores: every score about 1000, N=2, T=3, V=5", {"scores": base + 1000.0, "y": y, "mask": mask},
                 options={"hint": OVERFLOW_HINT}),
            Case("a correct class 800 below the best one, N=2, T=3, V=5", {"scores": far, "y": y, "mask": mask},
                 options={"hint": UNDERFLOW_HINT}),
            Case("every position in the mask, N=2, T=3, V=5", full)]


def _loss_variant(scores, y, mask, use_mask=True, divide="count", grad_mask=True, grad_divide=True,
                  minus_one=True):
    N, T, V = scores.shape
    m = mask if use_mask else np.ones_like(mask)
    denom = {"count": m.sum(), "N": N, "NT": N * T}[divide]
    logp = scores - scores.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    loss = np.sum(nll * m) / denom
    d = np.exp(logp)
    if minus_one:
        np.put_along_axis(d, y[..., None], np.take_along_axis(d, y[..., None], -1) - 1, -1)
    if grad_mask:
        d = d * m[..., None]
    if grad_divide:
        d = d / denom
    return {"loss": np.asarray(loss), "dscores": d.astype(scores.dtype)}


def _lm(**kw):
    return lambda c: _loss_variant(c.args["scores"], c.args["y"], c.args["mask"], **kw)


def _nll_and_probs(scores, y):
    """A learner's own pieces: -log p of the targets (N, T), the probabilities, the one-hot targets."""
    shifted = scores - scores.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    one_hot = np.eye(scores.shape[-1], dtype=scores.dtype)[y]
    return -(one_hot * log_probs).sum(axis=-1), np.exp(log_probs), one_hot


def _wrong_loss_without_mask(scores, y, mask):  # every position counts, in the loss and in dscores
    nll, probs, one_hot = _nll_and_probs(scores, y)
    return float(nll.sum() / y.size), (probs - one_hot) / y.size


def _wrong_loss_over_N(scores, y, mask):  # divided by the batch size, not by the counted positions
    nll, probs, one_hot = _nll_and_probs(scores, y)
    N = scores.shape[0]
    return float((nll * mask).sum() / N), (probs - one_hot) * mask[..., None] / N


def _wrong_grad_without_mask(scores, y, mask):  # the loss masked, dscores not
    nll, probs, one_hot = _nll_and_probs(scores, y)
    count = int(mask.sum())
    return float((nll * mask).sum() / count), (probs - one_hot) / count


class TemporalSoftmaxLossExercise(FunctionExercise):
    """temporal_softmax_loss(scores, y, mask) -> (loss, dscores (N, T, V)), with cases built for the
    numerical traps of the softmax (overflow, underflow) besides the standard N/T/V grid."""

    def judge(self, case, outputs, modified=()):
        """On the cases built for one numerical trap, a wrong or infinite value that no catalogued
        mistake explains is that trap: the case's own hint says so."""
        verdict = super().judge(case, outputs, modified)
        trap = case.options.get("hint")
        if (verdict is not None and trap and verdict.hint not in {m.hint for m in self.mistakes}
                and ("is wrong" in verdict.lines[0] or "contains" in verdict.lines[0])):
            verdict.lines = [line for line in verdict.lines if not line.startswith("    hint:")]
            verdict.lines.append(f"    hint:  {trap}")
            verdict.hint = trap
        return verdict

    def tolerance(self, case, name):
        """1e-7 in float64 and 1e-4 otherwise: the usual tolerances, for any dtype of the case."""
        return 1e-7 if case.dtype == np.float64 else 1e-4

    def gradient_cases(self, cases):
        """Gradient check: dscores against centred differences of the learner's own loss."""
        case = cases[0]
        return [Case(case.label, case.args, options={"gradient": True, "pairs": ["dscores"], "of": "your loss"})]

    def gradient_plan(self, case):
        """dscores against centred differences of the learner's loss with respect to scores."""
        return "gradient_check", {"mode": "loss", "args": case.args, "pairs": [["dscores", "scores", None]],
                                  "returns": self.returns, "name": self.name}


temporal_softmax_loss = TemporalSoftmaxLossExercise(
    "temporal_softmax_loss", ("loss", "dscores"), ref.temporal_softmax_loss, _loss_build, ("N", "T", "V"),
    mistakes=[
        Mistake("the mask is ignored: only positions where mask is True count, in the loss and in "
                "dscores.", _lm(use_mask=False), _wrong_loss_without_mask),
        Mistake("you divide by N; the loss is the mean over the positions where mask is True, so "
                "divide by mask.sum() (in the loss and in dscores).", _lm(divide="N"), _wrong_loss_over_N),
        Mistake("you divide by N * T; the loss is the mean over the positions where mask is True, so "
                "divide by mask.sum().", _lm(divide="NT")),
        Mistake("the loss is right, but dscores ignores the mask: positions where mask is False get "
                "zero gradient.", _lm(grad_mask=False), _wrong_grad_without_mask),
        Mistake("the loss is right, but dscores is not divided by the number of counted positions.",
                _lm(grad_divide=False)),
        Mistake("dscores is softmax(scores); subtract 1 at the correct class: dscores = probs - one_hot(y).",
                _lm(minus_one=False)),
    ],
    hints={
        "loss": "loss = mean over positions with mask True of -log softmax(scores[n, t])[y[n, t]].",
        "loss.finite": "compute log-probabilities stably: subtract each row's maximum before np.exp, "
                       "then log_probs = shifted - log(sum(exp(shifted))).",
        "dscores.finite": "compute the probabilities stably: subtract each row's maximum before np.exp.",
        "dscores": "dscores = (softmax(scores) - one_hot(y)) * mask[..., None] / mask.sum().",
        "loss.shape": "loss should be a single number: return float(...) of the mean.",
    },
    extra_cases=_loss_extra,
)

# --- sample_with_temperature -------------------------------------------------------------

ROWS = np.array([[2.0, 1.0, 0.0, -0.5, 0.5], [0.0, 1.5, -1.0, 0.3, 1.0]])  # (2, V): two distinct rows
REPEATS = 1000


def _dist(logits, temperature):
    if temperature == 0:
        p = np.zeros_like(logits)
        p[np.arange(len(logits)), logits.argmax(-1)] = 1
        return p
    return ref.softmax(logits / temperature)


def _draw(probs, rng):
    """One token per row of probs, by inverse CDF: a learner's own draw."""
    idx = (probs.cumsum(axis=-1) < rng.random((len(probs), 1))).sum(axis=-1)
    return np.minimum(idx, probs.shape[-1] - 1)


def _wrong_multiplies(logits, temperature, rng):  # softmax(logits * temperature)
    return logits.argmax(axis=-1) if temperature == 0 else _draw(ref.softmax(logits * temperature), rng)


def _wrong_no_temperature(logits, temperature, rng):  # the temperature is never used
    return logits.argmax(axis=-1) if temperature == 0 else _draw(ref.softmax(logits), rng)


def _wrong_always_argmax(logits, temperature, rng):  # greedy at every temperature
    return logits.argmax(axis=-1)


def _wrong_uniform(logits, temperature, rng):  # rng.choice(V) without p=: every token equally likely
    return logits.argmax(axis=-1) if temperature == 0 else rng.choice(logits.shape[1], size=len(logits))


# The catalogue of sampling mistakes, each with the distribution it draws from (rows of logits,
# temperature -> probabilities): the check tests the learner's samples against those.
SAMPLING_MISTAKES = (
    (Mistake("you multiply the logits by the temperature; divide them: softmax(logits / temperature).",
             implementation=_wrong_multiplies), lambda rows, t: ref.softmax(rows * t)),
    (Mistake("the temperature has no effect: sample from softmax(logits / temperature).",
             implementation=_wrong_no_temperature), lambda rows, t: ref.softmax(rows)),
    (Mistake("you always take the argmax; for temperature > 0, draw a random token.",
             implementation=_wrong_always_argmax), lambda rows, t: _dist(rows, 0)),
    (Mistake("your tokens are uniformly distributed: draw them with probabilities "
             "softmax(logits / temperature).", implementation=_wrong_uniform),
     lambda rows, t: np.full_like(rows, 1 / rows.shape[1])),
)


class SampleWithTemperatureExercise(Exercise):
    """Judged by the distribution of the samples, not by the exact draws.

    Any correct sampler passes, however it uses the generator: the frequencies of each token,
    over 1000 draws per row, must agree with softmax(logits / temperature) within 5 standard
    errors. The same generator state must give the same samples (randomness comes from
    ``rng``), whatever the state of NumPy's global generator.
    """

    name = "sample_with_temperature"
    funcs = ("sample_with_temperature",)
    outputs = ("samples",)
    mistakes = [mistake for mistake, _ in SAMPLING_MISTAKES]
    hints = {"crash": "temperature 0 needs its own branch (argmax): dividing by 0 gives inf and nan "
                      "probabilities. For temperature > 0, probabilities must be finite and sum to 1 per row."}

    def cases(self, rng):
        """The grid of cases: temperature 0 on random logits, then temperatures 1, 0.5 and 2 (and 1 in
        float32) on two rows of logits repeated ``REPEATS`` times each."""
        seed = int(rng.integers(0, 2**31))
        g = np.random.default_rng(seed)
        cases = [Case("temperature 0 (greedy), logits of shape (6, 9)",
                      {"logits": g.standard_normal((6, 9)), "temperature": 0.0}, options={"seed": seed})]
        for t in (1.0, 0.5, 2.0):
            logits = np.repeat(ROWS, REPEATS, axis=0)
            cases.append(Case(f"temperature {t}, 2 rows of logits x {REPEATS} draws each",
                              {"logits": logits, "temperature": t}, options={"seed": seed + int(t * 10)}))
        cases.append(Case("temperature 1, float32 logits, 2 rows x 1000 draws",
                          {"logits": np.repeat(ROWS, REPEATS, axis=0).astype(np.float32), "temperature": 1.0},
                          options={"seed": seed + 99}))
        return cases

    def plan(self, case):
        """Called through the ``sampler`` convention, with 60 extra rows ``few`` drawn again to test
        that the randomness comes from ``rng``."""
        logits = case.args["logits"]
        # 60 rows: two correct samplers with different generators agree on all of them
        # with a probability below 1e-9.
        few = np.repeat(logits[::max(1, len(logits) // 2)][:2], 30, axis=0)
        return "sampler", {"logits": logits, "temperature": case.args["temperature"],
                           "seed": case.options["seed"], "few": few}

    def expected(self, case):
        """Only the shape and dtype of the samples, (N,) integers: ``judge`` tests their distribution."""
        return {"samples": np.zeros(len(case.args["logits"]), dtype=np.int64)}

    def output_names(self, case):
        """None: the samples are judged by their distribution (``judge``), never against ``expected``,
        so the shared judging only looks at the inputs changed in place."""
        return ()

    def judge(self, case, outputs, modified=()):
        """Judged by the distribution of the samples (argmax at temperature 0), and by their
        repeatability with the same generator, not by the exact draws."""
        logits, t = case.args["logits"], case.args["temperature"]
        N, V = logits.shape
        s = outputs.get("samples")
        if s is None:
            return self.fail(case, "no samples were returned")
        if s.shape != (N,):
            return self.fail(case, "the samples have the wrong shape",
                             f"shape: {s.shape}, expected ({N},)", "return one token index per row of logits.")
        if s.dtype.kind not in "iu":
            return self.fail(case, f"the samples should be integers, but their dtype is {s.dtype}",
                             hint="return token indices, for example with .astype(int).")
        if s.min() < 0 or s.max() >= V:
            return self.fail(case, f"some samples are not token indices between 0 and {V - 1}",
                             f"range of your samples: {s.min()} to {s.max()}",
                             "the index of the first token whose cumulative probability exceeds u "
                             "is (cdf < u).sum(); or use rng.choice(V, p=probs).")
        if t == 0:
            if not np.array_equal(s, logits.argmax(-1)):
                return self.fail(case, "at temperature 0 the samples are not the argmax",
                                 hint="temperature 0 means greedy: return logits.argmax(axis=-1), "
                                      "without dividing by zero.")
            return None if not modified else super().judge(case, {"samples": s}, modified)
        if not np.array_equal(outputs["again"], outputs["again_ref"]):
            return self.fail(case, "the same generator state gave different samples",
                             hint="draw every random number from the rng argument (rng.random, "
                                  "rng.choice), not from np.random.* or random.*.")
        expected_p = _dist(logits[::REPEATS][:2], t)
        z = self.zscore(s, expected_p, V)
        if z > 5:
            hint = self.which(s, logits, t, V)
            return self.fail(
                case, "the samples do not follow softmax(logits / temperature)",
                f"the largest deviation of a token's frequency is {z:.0f} standard errors (allowed: 5)",
                hint or "divide the logits by the temperature, take the softmax, then draw one "
                        "token per row from those probabilities.")
        if np.array_equal(outputs["again"], outputs["other"]):
            return self.fail(case, "two different generators gave exactly the same samples",
                             hint="use the rng passed in as the argument; do not create your own "
                                  "generator inside the function.")
        if modified:
            return super().judge(case, {"samples": s.astype(np.int64)}, modified)
        return None

    @staticmethod
    def zscore(samples, probs, V):
        """The largest deviation, in standard errors, of a token's count from its expected count, over the
        rows of ``probs`` (2, V), each drawn ``REPEATS`` times in ``samples``."""
        worst = 0.0
        for r in range(len(probs)):
            counts = np.bincount(samples[r * REPEATS:(r + 1) * REPEATS], minlength=V)
            for k in range(V):
                p = probs[r, k]
                sd = math.sqrt(REPEATS * p * (1 - p)) if 0 < p < 1 else 0.0
                dev = abs(counts[k] - REPEATS * p)
                worst = max(worst, dev / sd if sd > 0 else (0.0 if dev < 0.5 else math.inf))
        return worst

    def which(self, samples, logits, t, V):
        """The hint of the catalogued mistake whose distribution the samples follow, or ""."""
        rows = logits[::REPEATS][:2].astype(np.float64)
        for mistake, distribution in SAMPLING_MISTAKES:
            p = distribution(rows, t)
            if not np.allclose(p, _dist(rows, t), atol=0.02) and self.zscore(samples, p, V) <= 5:
                return mistake.hint
        return ""


sample_with_temperature = SampleWithTemperatureExercise()


# --- the language model: lm_forward, lm_loss_and_grads, lm_train_step ----------------------------

NAMES = ("W_embed", "Wx", "Wh", "b", "W_out", "b_out")
BACKWARD_ORDER = ("W_out", "b_out", "Wx", "Wh", "b", "W_embed")  # as the gradients are computed


def _lm_params(rng, V, D, H):
    return {"W_embed": rng.standard_normal((V, D)), "Wx": rng.standard_normal((D, H)) / np.sqrt(D),
            "Wh": rng.standard_normal((H, H)) / np.sqrt(H), "b": 0.1 * rng.standard_normal(H),
            "W_out": rng.standard_normal((H, V)) / np.sqrt(H), "b_out": 0.1 * rng.standard_normal(V)}


def _lm_case(label, seed, N, T, V, D, H, dtype=np.float64):
    """Inputs of the model: tokens that repeat, a mask with positions left out, a non-zero h0."""
    g = np.random.default_rng(seed)
    params = {k: v.astype(dtype) for k, v in _lm_params(g, V, D, H).items()}
    x = g.integers(0, max(2, V - 1), size=(N, T))
    y = g.integers(0, V, size=(N, T))
    mask = np.ones((N, T), dtype=bool)
    if N * T > 1:
        mask.flat[g.permutation(N * T)[: max(1, N * T // 3)]] = False  # some positions do not count
    h0 = (0.5 * g.standard_normal((N, H))).astype(dtype)
    sizes = f"N={N}, T={T}, V={V}, D={D}, H={H}"
    return Case(f"{label}, {sizes}", {"params": params, "x": x, "y": y, "mask": mask, "h0": h0})


def _lm_cases(rng):
    fresh = lambda: int(rng.integers(0, 2**31))  # noqa: E731
    return [_lm_case("fixed inputs", 0, 2, 3, 6, 4, 4),  # D = H: swapped weights still multiply
            _lm_case("random inputs with N=1", fresh(), 1, 4, 5, 3, 4),
            _lm_case("random inputs with T=1", fresh(), 3, 1, 5, 3, 4),
            _lm_case("random inputs", fresh(), int(rng.integers(2, 5)), int(rng.integers(2, 6)),
                     int(rng.integers(4, 9)), int(rng.integers(2, 6)), int(rng.integers(2, 6))),
            _lm_case("float32 inputs", fresh(), 2, 3, 6, 4, 4, np.float32)]


def _flat(result, returns):
    out = {}
    for r, value in zip(returns, result):
        if r == "grads":
            out.update({f"grads['{k}']": np.asarray(value[k]) for k in NAMES})
        elif r != "cache":
            out[r] = np.asarray(value)
    return out


def _lm_variant(case, h0_zero=False, first_h=False, swap_w=False, no_mask=False, demb_from_dh=False,
                swap_grads=False):
    """The reference language model with one mistake: what a learner making it returns."""
    a = copy_args(case.args)
    p = dict(a["params"])
    h0 = np.zeros_like(a["h0"]) if h0_zero else a["h0"]
    emb, emb_cache = ref.embedding_forward(a["x"], p["W_embed"])
    Wx, Wh = (p["Wh"], p["Wx"]) if swap_w else (p["Wx"], p["Wh"])
    h, rnn_cache = ref.rnn_forward(emb, h0, Wx, Wh, p["b"])
    scores, out_cache = ref.temporal_affine_forward(h, p["W_out"], p["b_out"])
    last_h = h[:, 0] if first_h else h[:, -1]
    if "y" not in a:  # lm_forward: the model alone
        return {"scores": scores, "last_h": last_h}
    mask = np.ones_like(a["mask"]) if no_mask else a["mask"]
    loss, dscores = ref.temporal_softmax_loss(scores, a["y"], mask)
    g = {}
    dh, g["W_out"], g["b_out"] = ref.temporal_affine_backward(dscores, out_cache)
    demb, _, g["Wx"], g["Wh"], g["b"] = ref.rnn_backward(dh, rnn_cache)
    if swap_grads:
        g["Wx"], g["Wh"] = g["Wh"], g["Wx"]
    g["W_embed"] = ref.embedding_backward(dh if demb_from_dh else demb, emb_cache)
    out = {"scores": scores, "last_h": last_h, "loss": np.asarray(loss)}
    out.update({f"grads['{k}']": v for k, v in g.items()})
    return out


class LanguageModelExercise(Exercise):
    """A function of the model's parameters (a dict of arrays) and a batch."""

    def __init__(self, name, returns, reference, mistakes, hints, order):
        self.name, self.returns, self.reference = name, returns, reference
        self.funcs = (name,)
        self.outputs = order
        self.mistakes, self.hints = list(mistakes), hints

    def cases(self, rng):
        """The grid of cases: the language model's fixed and random sizes; lm_forward gets only params,
        x and h0."""
        cases = _lm_cases(rng)
        if self.name == "lm_forward":  # the model alone: no targets, no mask
            for c in cases:
                c.args = {k: c.args[k] for k in ("params", "x", "h0")}
        return cases

    def plan(self, case):
        """Called through ``dict_function``: the parameters are a dict, and so are the returned ``grads``."""
        return "dict_function", {"args": case.args, "returns": self.returns, "name": self.name,
                                 "keys": {"grads": list(NAMES)}}

    def expected(self, case):
        """The reference's outputs, each array of a returned dict by its own name (``grads['Wx']``)."""
        return _flat(self.reference(*copy_args(case.args).values()), self.returns)


def _fwd(**kw):
    return lambda case: {k: v for k, v in _lm_variant(case, **kw).items() if k in ("scores", "last_h")}


H0_HINT = ("the RNN starts from zeros instead of h0: pass h0 to rnn_forward, so that a window "
           "continues from the state the previous one ended in.")
LAST_H_HINT = "the last hidden state is h[:, -1], the state after the last step; you return the first step's, h[:, 0]."
SWAP_HINT = ("Wx and Wh are swapped in the call to rnn_forward: its arguments are (x, h0, Wx, Wh, b), "
             "Wx for the input and Wh for the previous state.")


def _wrong_first_state(params, x, h0):  # h[:, 0], the state after the first step, as last_h
    scores, _, cache = ref.lm_forward(params, x, h0)
    emb = ref.embedding_forward(x, params["W_embed"])[0]
    h = ref.rnn_forward(emb, h0, params["Wx"], params["Wh"], params["b"])[0]
    return scores, h[:, 0], cache


def _wrong_swapped_weights(params, x, h0):  # rnn_forward(x, h0, Wh, Wx, b)
    return ref.lm_forward({**params, "Wx": params["Wh"], "Wh": params["Wx"]}, x, h0)

lm_forward = LanguageModelExercise(
    "lm_forward", ("scores", "last_h", "cache"), ref.lm_forward,
    mistakes=[Mistake(H0_HINT, _fwd(h0_zero=True)), Mistake(LAST_H_HINT, _fwd(first_h=True), _wrong_first_state),
              Mistake(SWAP_HINT, _fwd(swap_w=True), _wrong_swapped_weights)],
    hints={"scores": "the scores come from three layers in turn: embedding_forward, rnn_forward, "
                     "temporal_affine_forward, each with its own entries of params (see the hints "
                     "under the exercise).",
           "scores.shape": "scores should have shape (N, T, V): one score per vocabulary entry at every "
                           "position, from the output layer (temporal_affine_forward).",
           "last_h": "last_h is the hidden state after the last time step: h[:, -1] of rnn_forward's output.",
           "last_h.shape": "last_h should have shape (N, H): the state of the last time step only."},
    order=("scores", "last_h"),
)


def _lg(**kw):
    return lambda case: {k: v for k, v in _lm_variant(case, **kw).items() if k != "scores"}


GRAD_HINT = ("each parameter's gradient comes from the backward function of the layer that uses it, fed "
             "the gradient of that layer's output, in the reverse order of the forward pass (hint 2 "
             "under the exercise lists what each returns).")


def _wrong_mask_of_ones(params, x, y, mask, h):  # np.ones(...) passed as the mask
    return ref.lm_loss_and_grads(params, x, y, np.ones_like(mask), h)


def _wrong_from_zeros(params, x, y, mask, h):  # the RNN started from zeros, not from h
    return ref.lm_loss_and_grads(params, x, y, mask, np.zeros_like(h))


def _wrong_embedding_from_dh(params, x, y, mask, h):  # embedding_backward fed dh instead of demb
    scores, last_h, (c_emb, c_rnn, c_out) = ref.lm_forward(params, x, h)
    loss, dscores = ref.temporal_softmax_loss(scores, y, mask)
    g = {}
    dh, g["W_out"], g["b_out"] = ref.temporal_affine_backward(dscores, c_out)
    _, _, g["Wx"], g["Wh"], g["b"] = ref.rnn_backward(dh, c_rnn)
    g["W_embed"] = ref.embedding_backward(dh, c_emb)
    return loss, g, last_h


def _wrong_swapped_grads(params, x, y, mask, h):  # dWx stored as grads['Wh'] and dWh as grads['Wx']
    loss, g, last_h = ref.lm_loss_and_grads(params, x, y, mask, h)
    return loss, {**g, "Wx": g["Wh"], "Wh": g["Wx"]}, last_h


class LossAndGradsExercise(LanguageModelExercise):
    """lm_loss_and_grads: the language model's loss and the gradients of all its parameters,
    checked against centred differences of the learner's own loss as well."""

    def gradient_cases(self, cases):
        """Gradient check: every gradient against centred differences of the learner's own loss."""
        case = cases[0]
        return [Case(case.label, case.args, options={
            "gradient": True, "pairs": [f"grads['{n}']" for n in BACKWARD_ORDER], "of": "your loss",
            "hint": GRAD_HINT})]

    def gradient_plan(self, case):
        """Every ``grads['name']`` against centred differences of the loss with respect to params[name]."""
        return "gradient_check", {"mode": "loss", "args": case.args,
                                  "pairs": [[f"grads['{n}']", "params", n] for n in BACKWARD_ORDER],
                                  "returns": self.returns, "name": self.name}


lm_loss_and_grads = LossAndGradsExercise(
    "lm_loss_and_grads", ("loss", "grads", "last_h"), ref.lm_loss_and_grads,
    mistakes=[
        Mistake("the loss counts every position: pass the mask you were given to temporal_softmax_loss, "
                "not np.ones(...).", _lg(no_mask=True), _wrong_mask_of_ones),
        Mistake(H0_HINT, _lg(h0_zero=True), _wrong_from_zeros),
        Mistake(LAST_H_HINT, _lg(first_h=True)),
        Mistake(SWAP_HINT, _lg(swap_w=True)),
        Mistake("grads['W_embed'] is computed from the gradient of the hidden states; the embedding "
                "layer's output is the RNN's input, so feed embedding_backward the first value "
                "rnn_backward returns (the gradient of its input x).", _lg(demb_from_dh=True),
                _wrong_embedding_from_dh),
        Mistake("grads['Wx'] and grads['Wh'] are swapped: rnn_backward returns dx, dh0, dWx, dWh, db, "
                "in this order.", _lg(swap_grads=True), _wrong_swapped_grads),
    ],
    hints={"loss": "the loss is temporal_softmax_loss of the model's scores, the targets y and the mask "
                   "(the forward pass is lm_forward's).",
           "loss.shape": "the loss should be one number, the one temporal_softmax_loss returns.",
           "last_h": "last_h is the hidden state after the last time step, as lm_forward returns it.",
           "last_h.shape": "last_h should have shape (N, H): the state of the last time step only.",
           **{f"grads['{k}']": GRAD_HINT for k in NAMES},
           **{f"grads['{k}'].shape": f"grads['{k}'] should have the shape of params['{k}']." for k in NAMES}},
    order=("loss", "last_h", *(f"grads['{k}']" for k in BACKWARD_ORDER)),
)

# --- lm_train_step -------------------------------------------------------------------------------

STEPS = 4  # steps of the loop a case runs: enough for clipping and Adam's state to show


def _train_case(label, seed, N, T, V, D, H, lr, max_norm, dtype=np.float64):
    g = np.random.default_rng(seed)
    params = {k: v.astype(dtype) for k, v in _lm_params(g, V, D, H).items()}
    xs = g.integers(0, max(2, V - 1), size=(STEPS, N, T))
    ys = g.integers(0, V, size=(STEPS, N, T))
    zeros = {k: np.zeros_like(p) for k, p in params.items()}
    adam = {"t": 0, "m": zeros, "v": {k: z.copy() for k, z in zeros.items()}}
    h0 = np.zeros((N, H), dtype=dtype)
    return Case(f"{label}: {STEPS} steps, N={N}, T={T}, V={V}, D={D}, H={H}, lr={lr}, max_norm={max_norm}",
                {"params": params, "adam": adam, "xs": xs, "ys": ys, "h0": h0, "lr": lr, "max_norm": max_norm})


def _train(case, clip="global", t_fixed=False, carry_h=True, keep_moments=True, use_lr=True):
    """The reference loop of train steps, with one mistake: what a learner making it gets."""
    a = copy_args(case.args)
    params, adam, h = dict(a["params"]), a["adam"], a["h0"]
    losses, norms = [], []
    for x, y in zip(a["xs"], a["ys"]):
        loss, grads, last_h = ref.lm_loss_and_grads(params, x, y, np.ones(y.shape, dtype=bool), h)
        if clip == "global":
            grads, total = ref.clip_grad_norm(grads, a["max_norm"])
        else:
            total = ref.clip_grad_norm(grads, a["max_norm"])[1]
            if clip == "each":
                grads = {k: ref.clip_grad_norm({k: gr}, a["max_norm"])[0][k] for k, gr in grads.items()}
        t = adam["t"] + 1  # with t_fixed, never stored: every step is step 1
        new, m, v = {}, {}, {}
        for k in params:
            new[k], m[k], v[k] = ref.adam_step(params[k], grads[k], adam["m"][k], adam["v"][k], t,
                                               a["lr"] if use_lr else 1e-3)
        adam = {"t": adam["t"] if t_fixed else t, "m": m if keep_moments else adam["m"],
                "v": v if keep_moments else adam["v"]}
        params, h = new, (last_h if carry_h else h)
        losses.append(loss)
        norms.append(total)
    out = {"loss": np.array(losses), "total_norm": np.array(norms), "adam['t']": np.asarray(adam["t"]),
           "last_h": h}
    out.update({f"params['{k}']": v for k, v in params.items()})
    return out


def _tm(**kw):
    return lambda case: _train(case, **kw)


def _step_with(params, adam, x, y, h, lr, max_norm, clip="global", t_same=False, keep=True, carry=True,
               pass_lr=True):
    """One train step as a learner writes it, with the mistake its keywords name."""
    loss, grads, last_h = ref.lm_loss_and_grads(params, x, y, np.ones(y.shape, dtype=bool), h)
    clipped, total = ref.clip_grad_norm(grads, max_norm)
    if clip == "global":
        grads = clipped
    elif clip == "each":
        grads = {k: ref.clip_grad_norm({k: g}, max_norm)[0][k] for k, g in grads.items()}
    t = adam["t"] + 1
    new = {k: ref.adam_step(params[k], grads[k], adam["m"][k], adam["v"][k], t, lr if pass_lr else 1e-3)
           for k in params}
    state = {"t": adam["t"] if t_same else t,
             "m": {k: r[1] for k, r in new.items()} if keep else adam["m"],
             "v": {k: r[2] for k, r in new.items()} if keep else adam["v"]}
    return {k: r[0] for k, r in new.items()}, state, loss, last_h if carry else h, total


def _wrong_no_clipping(params, adam, x, y, h, lr, max_norm):  # the raw gradients into Adam
    return _step_with(params, adam, x, y, h, lr, max_norm, clip="none")


def _wrong_clips_each(params, adam, x, y, h, lr, max_norm):  # each gradient clipped by its own norm
    return _step_with(params, adam, x, y, h, lr, max_norm, clip="each")


def _wrong_t_same(params, adam, x, y, h, lr, max_norm):  # the returned state keeps the old t
    return _step_with(params, adam, x, y, h, lr, max_norm, t_same=True)


def _wrong_moments_dropped(params, adam, x, y, h, lr, max_norm):  # the returned state keeps the old m and v
    return _step_with(params, adam, x, y, h, lr, max_norm, keep=False)


def _wrong_state_not_handed_on(params, adam, x, y, h, lr, max_norm):  # h returned instead of last_h
    return _step_with(params, adam, x, y, h, lr, max_norm, carry=False)


def _wrong_default_lr(params, adam, x, y, h, lr, max_norm):  # adam_step called without lr
    return _step_with(params, adam, x, y, h, lr, max_norm, pass_lr=False)


STEP_HINT = ("the first loss depends only on lm_loss_and_grads (check it passed); later ones on the "
             "update: the clipped gradients, an Adam step of every parameter, t counted from 1, and "
             "the hidden state handed on (see the hints under the exercise).")


class TrainStepExercise(Exercise):
    """lm_train_step(params, adam, x, y, h, lr, max_norm) -> (params, adam, loss, last_h, total_norm),
    run for ``STEPS`` steps in a row, each from what the step before returned."""

    name = "lm_train_step"
    funcs = ("lm_train_step",)
    outputs = ("loss", "total_norm", "adam['t']", "last_h", *(f"params['{k}']" for k in NAMES))
    mistakes = [
        Mistake("the gradients are not clipped: pass them through clip_grad_norm(grads, max_norm) and use "
                "the clipped ones in the Adam steps.", _tm(clip="none"), _wrong_no_clipping),
        Mistake("you clip each gradient by its own norm; clip them together, by their global norm: "
                "clip_grad_norm(grads, max_norm) on the whole dict.", _tm(clip="each"), _wrong_clips_each),
        Mistake("Adam's step count does not grow: t is adam['t'] + 1, and the Adam state you return must "
                "hold it, so that the next step uses t + 1.", _tm(t_fixed=True), _wrong_t_same),
        Mistake("the running averages are not kept: the Adam state you return must hold the new m and v "
                "that adam_step returned for every parameter.", _tm(keep_moments=False), _wrong_moments_dropped),
        Mistake("you return the hidden state you were given; return the last hidden state of this "
                "batch, so that the next batch continues from it.", _tm(carry_h=False), _wrong_state_not_handed_on),
        Mistake("the learning rate is not used: pass lr to adam_step (its default, 1e-3, is used "
                "instead).", _tm(use_lr=False), _wrong_default_lr),
    ]
    hints = {"loss": STEP_HINT, **{f"params['{k}']": STEP_HINT for k in NAMES},
             "loss.finite": "nan or inf in the losses: Adam's bias correction divides by 1 - beta**t, "
                            "which is 0 at t = 0; the first step is t = 1 (adam['t'] + 1).",
             **{f"params['{k}'].finite": "nan or inf in the parameters: Adam's bias correction divides by "
                                         "1 - beta**t, which is 0 at t = 0; the first step is t = 1."
                for k in NAMES},
             "total_norm": "total_norm is the global norm of the gradients before clipping, as "
                           "clip_grad_norm returns it.",
             "adam['t']": "after K steps, adam['t'] is K: each step adds 1 to the t it was given.",
             "last_h": "last_h is the last hidden state of the batch, from lm_loss_and_grads.",
             "loss.shape": "return the loss of the step as one number."}

    def cases(self, rng):
        """The grid of cases: fixed and random sizes, with clipping at every step or none, and float32."""
        fresh = lambda: int(rng.integers(0, 2**31))  # noqa: E731
        return [_train_case("fixed inputs, clipping at every step", 0, 2, 3, 6, 3, 4, 0.05, 0.5),
                _train_case("random inputs, max_norm too large to clip", fresh(), 2, 3, 5, 3, 4, 0.05, 1e3),
                _train_case("random inputs, clipping", fresh(), 3, 2, 5, 2, 3, 0.02, 0.3),
                _train_case("float32 inputs, clipping", fresh(), 2, 3, 6, 3, 4, 0.05, 0.5, np.float32)]

    def plan(self, case):
        """Called through ``train_steps``, which chains the steps as a training loop does."""
        return "train_steps", case.args

    def expected(self, case):
        """The reference training loop's losses, norms and final parameters, Adam t and hidden state."""
        return _train(case)


lm_train_step = TrainStepExercise()



# --- adam_step ------------------------------------------------------------


def _adam_build(rng, N, D, t=1):
    m = rng.standard_normal((N, D)) * 0.1 if t > 1 else np.zeros((N, D))
    v = rng.random((N, D)) * 0.01 if t > 1 else np.zeros((N, D))
    return {"param": rng.standard_normal((N, D)), "grad": rng.standard_normal((N, D)), "m": m, "v": v,
            "t": t, "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


def _later_steps(rng):
    g = np.random.default_rng(int(rng.integers(0, 2**31)))
    return [Case("step t=10, with running averages, N=3, D=5", _adam_build(g, 3, 5, t=10)),
            Case("step t=1000, lr=0.1, beta1=0.5, one parameter of shape (1, 1)",
                 {**_adam_build(g, 1, 1, t=1000), "lr": 0.1, "beta1": 0.5}),
            Case("step t=3 of a 1-D parameter (a bias) of shape (7,)",
                 {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in _adam_build(g, 1, 7, t=3).items()}),
            Case("step t=1 with tiny gradients (about 1e-6), N=3, D=5", _tiny_gradients(g))]


def _tiny_gradients(rng):
    # Only where sqrt(v_hat) is not much larger than eps does the place of eps show.
    args = _adam_build(rng, 3, 5)
    args["grad"] = args["grad"] * 1e-6
    return args


def _variant(param, grad, m, v, t, lr, beta1, beta2, eps, correct=True, eps_inside=False, square=True,
             use_m=True, t0=False):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * (grad**2 if square else grad)
    tt = t - 1 if t0 else t
    with np.errstate(all="ignore"):
        m_hat = m / (1 - beta1**tt) if correct else m
        v_hat = v / (1 - beta2**tt) if correct else v
        step = (m_hat if use_m else grad) / (np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps)
    return {"new_param": param - lr * step, "new_m": m, "new_v": v}


def _m(*only, **kw):
    """The model of a mistake: the outputs of ``_variant``, or only those named in ``only``."""
    def outputs(case):
        out = _variant(*case.args.values(), **kw)
        return {k: out[k] for k in only} if only else out
    return outputs


def _wrong_no_bias_correction(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):  # m, v used raw
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    return param - lr * m / (np.sqrt(v) + eps), m, v


def _wrong_eps_inside_sqrt(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):  # sqrt(v_hat + eps)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return param - lr * m_hat / np.sqrt(v_hat + eps), m, v


def _wrong_v_not_squared(param, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):  # grad, not grad**2
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad  # can be negative: np.sqrt(v_hat) is nan
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


class AdamStepExercise(FunctionExercise):
    """adam_step(param, grad, m, v, t, lr, beta1, beta2, eps) -> (new_param, new_m, new_v), all the
    shape of param; judged with the moments first."""

    def output_names(self, case):
        """new_m and new_v before new_param, so that a wrong v is blamed, not the update it makes nan."""
        # The moments first, as in the update itself: v = ... + (1 - beta2) * grad (the square
        # forgotten) makes new_param nan through np.sqrt, and judging new_param first would
        # blame t instead of v.
        return ("new_m", "new_v", "new_param")


adam_step = AdamStepExercise(
    "adam_step", ("new_param", "new_m", "new_v"), ref.adam_step, _adam_build, ("N", "D"),
    mistakes=[
        Mistake("the bias correction is missing: divide m by (1 - beta1**t) and v by (1 - beta2**t); "
                "without it the first steps are far too small.", _m(correct=False), _wrong_no_bias_correction),
        Mistake("the bias correction uses t - 1: t counts steps from 1, so the first step divides "
                "by 1 - beta1.", _m(t0=True)),
        Mistake("eps goes outside the square root: param - lr * m_hat / (np.sqrt(v_hat) + eps).",
                _m(eps_inside=True), _wrong_eps_inside_sqrt),
        Mistake("v averages the squared gradient: v = beta2 * v + (1 - beta2) * grad**2.",
                _m("new_v", square=False),  # new_param is nan (np.sqrt of v < 0): only new_v can match
                _wrong_v_not_squared),
        Mistake("the update uses the raw gradient; it uses the averaged one, m_hat.", _m(use_m=False)),
    ],
    hints={"new_m": "new_m = beta1 * m + (1 - beta1) * grad.",
           "new_v": "new_v = beta2 * v + (1 - beta2) * grad**2.",
           "new_param": "new_param = param - lr * m_hat / (np.sqrt(v_hat) + eps), with "
                        "m_hat = new_m / (1 - beta1**t) and v_hat = new_v / (1 - beta2**t).",
           "new_param.finite": "t starts at 1: with t = 0 the bias correction divides by zero."},
    extra_cases=_later_steps,
)
