"""PyTorch exercises: the learner's function or module runs through a convention of
``_calls`` (in the grader, in the child process); the expected outputs come from running
the reference through the very same convention, here in the trusted process.

All checks run in float64, so that a correct module matches the reference to ~1e-12 and
the tolerance (1e-7, relative) separates right from wrong by orders of magnitude.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._calls import run_plan
from ._core import Case, Mistake
from ._exercise import Exercise


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
        if isinstance(self._reference, str):  # imported lazily: torch loads only when needed
            from course_utils import reference

            return getattr(reference, self._reference)
        return self._reference

    def cases(self, rng: np.random.Generator) -> list[Case]:
        return self.make_cases(rng)

    def plan(self, case: Case) -> tuple[str, dict]:
        params = dict(case.options["plan"])
        if self.convention == "torch_load":  # the layer runs on x and h0; the rest are the weights to load
            params.update(x=case.args["x"], h0=case.args["h0"],
                          weights={k: v for k, v in case.args.items() if k not in ("x", "h0")})
        else:
            params["args"] = case.args
        return self.convention, params

    def expected(self, case: Case) -> dict:
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
        if message.startswith("your loop kept calling the decoder"):  # _calls.DecodingRunaway
            return self.fail(case, f"{self.words['loop']} did not stop", hint=message, output="tokens")
        return super().wrong_form(case, message)
