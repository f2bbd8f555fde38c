"""PyTorch exercises: the learner's function or module runs through a convention of
``conventions`` (in the grader, in the child process); the expected outputs come from running
the reference through the very same convention, here in the trusted process.

All checks run in float64, so that a correct module matches the reference to ~1e-12 and
the tolerance (1e-7, relative) separates right from wrong by orders of magnitude.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .conventions import run_plan
from .core import Case, Mistake
from .exercise import Exercise


class TorchExercise(Exercise):
    """``make_cases(rng) -> [Case]`` where each case's ``options["plan"]`` holds the convention's
    parameters except the plain inputs, which are ``case.args``."""

    def __init__(self, name: str, convention: str, reference: Callable | str, make_cases: Callable,
                 outputs: Sequence[str], mistakes: Sequence[Mistake] = (), hints: dict | None = None):
        self.name, self.convention, self._reference = name, convention, reference
        self.funcs = (name,)
        self.make_cases = make_cases
        self.outputs = tuple(outputs)
        self.mistakes = list(mistakes)
        self.hints = hints or {}

    @property
    def reference(self):
        """The reference function or module; a name is looked up in ``course_utils.reference``."""
        if isinstance(self._reference, str):  # imported lazily: torch loads only when needed
            from course_utils import reference

            return getattr(reference, self._reference)
        return self._reference

    def cases(self, rng: np.random.Generator) -> list[Case]:
        """The cases made by ``make_cases``."""
        return self.make_cases(rng)

    def plan(self, case: Case) -> tuple[str, dict]:
        """The case's convention parameters with its inputs: ``x``, ``h0`` and the weights for
        ``torch_load``, else ``args``."""
        params = dict(case.options["plan"])
        if self.convention == "torch_load":  # the layer runs on x and h0; the rest are the weights to load
            params.update(x=case.args["x"], h0=case.args["h0"],
                          weights={k: v for k, v in case.args.items() if k not in ("x", "h0")})
        else:
            params["args"] = case.args
        return self.convention, params

    def expected(self, case: Case) -> dict:
        """The reference's outputs, run through the same convention as the learner's code."""
        outputs, _ = run_plan((self.reference,), *self.plan(case))
        return outputs


class GreedyOutputExercise(TorchExercise):
    """A decoding loop that returns token ids per row (greedy decoding in 10, caption sampling in 13):
    judges each row's tokens, then that the loop stopped once every row had produced <end>.
    Outputs: ``tokens`` (N, L) padded rows, ``lengths`` (N,), ``rows``, the row-steps the model ran.
    ``words`` names things as the notebook does: row ("sequence", "image"), output ("output",
    "caption"), outputs ("sequences", "captions"), loop ("decoding", "sampling"), model ("decoder",
    "GRU"), items ("tokens", "words")."""

    words = {"row": "sequence", "output": "output", "outputs": "sequences", "loop": "decoding",
             "model": "decoder", "items": "tokens"}

    def judge(self, case, outputs, modified=()):
        """Each row's tokens up to its length, then that the loop stopped once every row had
        produced <end> (``rows``), then the inputs changed in place."""
        w = self.words
        expected = self.expected(case)
        if "tokens" in outputs and "lengths" in outputs:
            mine = [r[:L].tolist() for r, L in zip(outputs["tokens"], outputs["lengths"])]
            want = [r[:L].tolist() for r, L in zip(expected["tokens"], expected["lengths"])]
            wrong = [n for n, (a, b) in enumerate(zip(mine, want)) if a != b]
            if wrong:
                n = wrong[0]
                return self.fail(case, f"the {w['output']} of {w['row']} {n} is wrong",
                                 f"{w['row']} {n}: {mine[n]}, expected {want[n]}"
                                 + (f" ({len(wrong)} of {len(want)} {w['outputs']} are wrong)" if len(wrong) > 1 else ""),
                                 self.known_mistake(case, outputs) or self.hints["tokens"], "tokens")
            rows, N = int(outputs.get("rows", 0)), len(want)
            steps = max(min(len(x) + 1, int(case.args["max_len"])) for x in want)
            if rows > N * steps:
                return self.fail(
                    case, f"the {w['outputs']} are right, but {w['loop']} went on after every {w['row']} had "
                          "produced <end>",
                    f"the {w['model']} ran {rows} {w['row']}-steps; {N} {w['row']}s x {steps} steps are enough",
                    f"stop as soon as every {w['row']} has produced <end>: keep a flag per {w['row']} that records "
                    f"whether it has finished (after <end> a {w['model']} may well produce other {w['items']}, so "
                    f"looking only at the last {w['items']} is not enough).", "rows")
        if modified:
            return super().judge(case, {**expected, **{k: v for k, v in outputs.items() if k == "rows"}}, modified)
        return None

    def wrong_form(self, case, message):
        """A loop that ran away is named as such; any other wrong form as in ``Exercise``."""
        if message.startswith("your loop kept calling the decoder"):  # conventions.DecodingRunaway
            return self.fail(case, f"{self.words['loop']} did not stop", hint=message, output="tokens")
        return super().wrong_form(case, message)


# --- teacher forcing: the mistakes of a loss over a padded batch of token sequences (10, 13) -------


def teacher_forcing_split(tokens, kind: str = ""):
    """(reads, targets) of a padded (N, L) batch ``<start> y_1 .. y_n <end> <pad>..``, as a learner
    with the misunderstanding ``kind`` ("not shifted", "reads targets") would take them."""
    reads, targets = tokens[:, :-1], tokens[:, 1:]
    if kind == "not shifted":
        targets = tokens[:, :-1]
    elif kind == "reads targets":
        reads = tokens[:, 1:]
    return reads, targets


def padded_token_loss(logits, targets, pad_id: int, kind: str = ""):
    """The mean cross-entropy over the targets that are not ``pad_id``, or what a learner with the
    misunderstanding ``kind`` computes instead ("padding", "pad 0", "mean over all", "sum", "per row").
    logits: (N, T, V); targets: (N, T)."""
    from torch.nn import functional as F

    flat, y = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    if kind == "padding":
        return F.cross_entropy(flat, y)
    if kind == "pad 0":
        return F.cross_entropy(flat, y, ignore_index=0)
    per_item = F.cross_entropy(flat, y, reduction="none").reshape(targets.shape)
    real = (targets != pad_id).to(per_item.dtype)
    if kind == "mean over all":
        return (per_item * real).sum() / real.numel()
    if kind == "sum":
        return (per_item * real).sum()
    if kind == "per row":
        return ((per_item * real).sum(dim=1) / real.sum(dim=1)).mean()
    return (per_item * real).sum() / real.sum()


def teacher_forcing_mistakes(variant: Callable[[str], Callable], w: dict) -> list[Mistake]:
    """The catalogued mistakes of shifting and of padding, in the notebook's words ``w``: item
    ("token", "word"), batch ("tgt", "captions"), y ("y", "w"), row ("sequence", "caption"),
    length ("target", "caption"). ``variant(kind)`` models the outputs of each mistake."""
    return [
        Mistake(f"the decoder is scored on the very {w['item']}s it reads: shift the targets by one. It reads "
                f"<start> {w['y']}_1 .. {w['y']}_n ({w['batch']} without its last column) and must predict the *next* "
                f"{w['item']} at each step, {w['y']}_1 .. {w['y']}_n <end> ({w['batch']} without its first column).",
                variant("not shifted")),
        Mistake(f"the decoder reads the {w['item']}s it has to predict ({w['batch']} without its first column): it "
                f"should read <start> {w['y']}_1 .. {w['y']}_n, {w['batch']} without its *last* column, and predict "
                f"the {w['item']}s one step ahead.", variant("reads targets")),
        Mistake("the padding counts in your loss: leave out the positions whose target is pad_id "
                "(F.cross_entropy(..., ignore_index=pad_id), or a mask).", variant("padding")),
        Mistake("the padding id is the argument pad_id (here it is not 0): ignore the positions whose target "
                "is pad_id, not 0.", variant("pad 0")),
        Mistake(f"the padded positions are left out of the sum but counted in the mean: divide by the number "
                f"of real target {w['item']}s (those that are not pad_id), not by N * T.", variant("mean over all")),
        Mistake(f"this is the sum of the per-{w['item']} losses: average it over the real (not pad_id) target "
                f"{w['item']}s, so that the loss does not grow with the batch size or the {w['length']} length.",
                variant("sum")),
        Mistake(f"this is the mean over {w['row']}s of each {w['row']}'s mean loss, which weighs a {w['item']} of a "
                f"short {w['length']} more than one of a long {w['length']}: average over all the real target "
                f"{w['item']}s of the batch at once.", variant("per row")),
    ]


def wrong_module(reference_name: str, forward: Callable) -> Callable:
    """A learner's module with a wrong ``forward``, for a catalogue entry's ``implementation``: the
    reference's class (its parameters, which the check loads by name) with ``forward`` in place of
    its own, built as the check builds the learner's class."""
    def build(*init):
        from course_utils import reference

        base = getattr(reference, reference_name)
        return type(base.__name__, (base,), {"forward": forward})(*init)
    build.__name__ = reference_name
    return build

