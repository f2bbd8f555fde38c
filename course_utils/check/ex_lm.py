"""Checks of notebook 04: embedding, temporal softmax loss, sampling with temperature."""
from __future__ import annotations

import math

import numpy as np

from course_utils import reference as ref

from ._core import Case, Mistake, copy_args, relative_error
from ._exercise import BackwardExercise, Exercise, FunctionExercise

# --- embedding -----------------------------------------------------------------------


def _embedding_build(rng, N, T, V, D):
    # Fewer distinct tokens than positions, so that repeated tokens are common.
    return {"x": rng.integers(0, max(1, V // 2 + 1), size=(N, T)), "W": rng.standard_normal((V, D))}


EMBEDDING_FORWARD = FunctionExercise(
    "embedding_forward", ("out", "cache"), ref.embedding_forward, _embedding_build, ("N", "T", "V", "D"),
    mistakes=[
        Mistake("the first two axes are swapped: out[n, t] = W[x[n, t]], which is simply W[x].",
                lambda c: {"out": c.args["W"][c.args["x"].T]}),
        Mistake("you sum the embeddings over time; keep one vector per position: out = W[x].",
                lambda c: {"out": c.args["W"][c.args["x"]].sum(axis=1)}),
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


EMBEDDING_BACKWARD = BackwardExercise(
    "embedding_backward", EMBEDDING_FORWARD, ("dW",), ref.embedding_backward,
    mistakes=[
        Mistake("a token that appears several times gets the gradient of only one occurrence: "
                "dW[x] += dout does not add repeated indices up. Use np.add.at(dW, x, dout), or a loop.",
                _emb_bwd(_buffered)),
        Mistake("you average over the occurrences of each token; the gradient is their sum.",
                _emb_bwd(_averaged)),
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


def _loss_extra(rng):
    g = np.random.default_rng(int(rng.integers(0, 2**31)))
    big = _loss_build(g, 2, 3, 5)
    big["scores"] = big["scores"] * 300  # scores in the hundreds: exp overflows without care
    full = _loss_build(g, 2, 3, 5)
    full["mask"] = np.ones((2, 3), dtype=bool)
    return [Case("very large scores (hundreds), N=2, T=3, V=5", big),
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


class TemporalSoftmaxLossExercise(FunctionExercise):
    def tolerance(self, case, name):
        return 1e-7 if case.dtype == np.float64 else 1e-4

    def extra(self, funcs, cases):
        """Gradient check: dscores against centred differences of the learner's own loss."""
        (fn,) = funcs
        case = cases[0]
        args = copy_args(case.args)
        _, dscores = fn(*args.values())

        def loss_of(scores):
            return np.asarray(fn(scores, case.args["y"], case.args["mask"])[0])

        num = ref.numerical_gradient(loss_of, case.args["scores"], np.asarray(1.0))
        err, _ = relative_error(dscores, num)
        if err > 1e-5:
            return self.fail(case, "`dscores` disagrees with centred differences of your loss",
                             f"largest error: {err:.1e} (allowed: 1e-05)", self.hints["dscores"]), ""
        return None, f"gradient check against centred differences: largest error {err:.0e}"


TEMPORAL_SOFTMAX_LOSS = TemporalSoftmaxLossExercise(
    "temporal_softmax_loss", ("loss", "dscores"), ref.temporal_softmax_loss, _loss_build, ("N", "T", "V"),
    mistakes=[
        Mistake("the mask is ignored: only positions where mask is True count, in the loss and in "
                "dscores.", _lm(use_mask=False)),
        Mistake("you divide by N; the loss is the mean over the positions where mask is True, so "
                "divide by mask.sum() (in the loss and in dscores).", _lm(divide="N")),
        Mistake("you divide by N * T; the loss is the mean over the positions where mask is True, so "
                "divide by mask.sum().", _lm(divide="NT")),
        Mistake("the loss is right, but dscores ignores the mask: positions where mask is False get "
                "zero gradient.", _lm(grad_mask=False)),
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
    hints = {"crash": "temperature 0 needs its own branch (argmax): dividing by 0 gives inf and nan "
                      "probabilities. For temperature > 0, probabilities must be finite and sum to 1 per row."}

    def cases(self, rng):
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
        logits = case.args["logits"]
        # 60 rows: two correct samplers with different generators agree on all of them
        # with a probability below 1e-9.
        few = np.repeat(logits[::max(1, len(logits) // 2)][:2], 30, axis=0)
        return "sampler", {"logits": logits, "temperature": case.args["temperature"],
                           "seed": case.options["seed"], "few": few}

    def expected(self, case):
        return {"samples": np.zeros(len(case.args["logits"]), dtype=np.int64)}

    def judge(self, case, outputs, modified=()):
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
        rows = logits[::REPEATS][:2].astype(np.float64)
        candidates = [
            ("you multiply the logits by the temperature; divide them: softmax(logits / temperature).",
             ref.softmax(rows * t)),
            ("the temperature has no effect: sample from softmax(logits / temperature).", ref.softmax(rows)),
            ("you always take the argmax; for temperature > 0, draw a random token.", _dist(rows, 0)),
            ("your tokens are uniformly distributed: draw them with probabilities "
             "softmax(logits / temperature).", np.full_like(rows, 1 / V)),
        ]
        for hint, p in candidates:
            if not np.allclose(p, _dist(rows, t), atol=0.02) and self.zscore(samples, p, V) <= 5:
                return hint
        return ""


SAMPLE_WITH_TEMPERATURE = SampleWithTemperatureExercise()

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [EMBEDDING_FORWARD, EMBEDDING_BACKWARD, TEMPORAL_SOFTMAX_LOSS, SAMPLE_WITH_TEMPERATURE]
