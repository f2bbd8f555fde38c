"""Exercise definitions: how to call the learner's code, and how to judge what it returns."""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

from .conventions import learner_line, run_cases, run_plan
from .core import (
    FAIL, PASS, TODO, TOLERANCE, Case, Mistake, NotAttempted, ReturnError, Verdict,
    copy_args, quiet_numpy, describe, finite_or_explain, fmt_index, fmt_shape, matches,
    relative_error, report, unpack,
)

DTYPE_HINT = (
    "keep the dtype of the inputs: np.zeros(shape) and np.ones(shape) make float64 arrays whatever "
    "your inputs are, so create new arrays with np.zeros_like(x), np.zeros(shape, dtype=x.dtype) or "
    "np.zeros(shape, x.dtype), and do not call .astype(np.float64)."
)

# What a crash usually means, by the kind of exception; a shape or value error gets the
# exercise's own "crash" hint when it has one (most crashes in these exercises are shapes).
CRASH_HINTS = {
    "NameError": "{name} is not defined where your code uses it: a typo, a variable used before it is "
                 "assigned, or a helper defined in a cell you have not run (run the cells above first).",
    "UnboundLocalError": "a variable is read before your function assigns it (on this path through your "
                         "code, e.g. a loop that ran zero times, or an `if` that was not taken).",
    "TypeError": "a function was called with the wrong number or kind of arguments, or a value has the "
                 "wrong type (None where an array was expected: did a helper forget to `return`?). "
                 "Compare the failing line with the signatures in the docstrings.",
    "AttributeError": "a value does not have the attribute or method your line uses: check what type it "
                      "really is (a tuple instead of an array? None returned by a helper?).",
    "IndexError": "an index is out of range: check the bounds of your loop (0 to T - 1) and which axis you "
                  "index (time is axis 1: x[:, t], not x[t]).",
    "KeyError": "a dictionary has no such key: check the names you store and read (in the cache, or a "
                "dict of parameters or gradients).",
    "ZeroDivisionError": "a division by zero: which quantity can be 0 on these inputs?",
    "RecursionError": "your function calls itself without end.",
}
SHAPE_HINT = "check the shapes of the arrays in the line that failed; the expected shapes are in the docstring."


class Exercise:
    """Base class. Subclasses define ``funcs``, ``cases``, ``call`` and ``expected``."""

    name: str
    funcs: tuple[str, ...]
    outputs: tuple[str, ...]
    mistakes: Sequence[Mistake] = ()
    hints: dict[str, str] = {}
    exact: bool = False  # compare integer outputs exactly

    # --- to be defined by subclasses -------------------------------------------------
    def cases(self, rng: np.random.Generator) -> list[Case]:
        """The cases of the exercise, drawn with ``rng`` (the gradient checks come from ``gradient_cases``)."""
        raise NotImplementedError

    def plan(self, case: Case) -> tuple[str, dict]:
        """How to call the learner's functions on a case: a convention of ``conventions`` and its
        plain-data parameters. The grader sends exactly this to its child process."""
        raise NotImplementedError

    def call(self, funcs: Sequence[Callable], case: Case) -> tuple[dict[str, np.ndarray], list[str]]:
        """Run the learner's functions on a case: (outputs, names of inputs it modified)."""
        convention, params = self.plan(case)
        return run_plan(funcs, convention, params)

    def expected(self, case: Case) -> dict[str, np.ndarray]:
        """The reference's outputs on a case, by name."""
        raise NotImplementedError

    def output_names(self, case: Case) -> tuple[str, ...]:
        """The outputs compared on this case, in the order they are judged."""
        return self.outputs

    # --- shared judging --------------------------------------------------------------
    def tolerance(self, case: Case, name: str) -> float:
        """The relative error allowed for output ``name``; by default the one of the case's dtype."""
        return TOLERANCE[case.dtype]

    def fail(self, case: Case, what: str, detail: str = "", hint: str = "", output: str = "") -> Verdict:
        """A "wrong" Verdict on ``case``: what is wrong, a detail line, a hint, and the output concerned."""
        lines = [f"{FAIL} {self.name}: {what}.", f"    on:    {describe(case)}"]
        if detail:
            lines.append(f"    {detail}")
        if hint:
            lines.append(f"    hint:  {hint}")
        mistake = hint if hint in {m.hint for m in self.mistakes} else ""  # from known_mistake
        return Verdict(self.name, "wrong", lines, hint=hint, output=output, mistake=mistake)

    def known_mistake(self, case: Case, outputs: dict) -> str:
        """The hint of the first catalogued mistake that explains ``outputs`` on this case, or ""."""
        tol = max(TOLERANCE[case.dtype], 1e-6)
        expected = self.expected(case)
        for mistake in self.mistakes:
            try:
                with quiet_numpy():
                    candidate = self.mistake_outputs(mistake, case)
            except Exception:
                continue
            # A mistake that would pass on this case explains nothing here.
            if matches(expected, candidate, TOLERANCE[case.dtype]):
                continue
            if matches(outputs, candidate, tol):
                return mistake.hint
        return ""

    def mistake_outputs(self, mistake: Mistake, case: Case) -> dict[str, Any]:
        """What a learner making ``mistake`` returns on ``case``: its model, or else its wrong
        implementation run through this exercise's calling convention (the reference standing in
        for any function before the exercise's own)."""
        if mistake.outputs is not None:
            return mistake.outputs(case)
        outputs, _ = self.call(self.with_reference(mistake.implementation), case)
        return outputs

    def with_reference(self, own: Callable) -> tuple[Callable, ...]:
        """The functions a check is called with: the reference's for all but the exercise's own."""
        from course_utils import reference

        return (*(getattr(reference, f) for f in self.funcs[:-1]), own)

    def judge(self, case: Case, outputs: dict[str, Any], modified: Sequence[str] = ()) -> Verdict | None:
        """Compare outputs with the reference. None when this case passes, else a Verdict."""
        expected = self.expected(case)
        for name in self.output_names(case):
            exp = np.asarray(expected[name])
            if name not in outputs:
                return self.fail(case, f"`{name}` is missing from what your function returned", output=name)
            act = outputs[name]
            if act.shape != exp.shape:
                hint = self.known_mistake(case, outputs) or self.hints.get(name + ".shape", "")
                return self.fail(
                    case, f"`{name}` has the wrong shape",
                    f"shape: {fmt_shape(act.shape)}, expected {fmt_shape(exp.shape)}", hint, name)
            if exp.dtype.kind == "f" and act.dtype != exp.dtype and act.ndim > 0:
                return self.fail(
                    case, f"`{name}` has dtype {act.dtype}, but the inputs were {exp.dtype}",
                    hint=DTYPE_HINT, output=name)
            if exp.dtype.kind in "iu" and act.dtype.kind not in "iu":
                return self.fail(case, f"`{name}` should hold integers, but its dtype is {act.dtype}",
                                 hint="return indices as an integer array (for example with .astype(int)).",
                                 output=name)
            bad = finite_or_explain(name, act)
            if bad:
                hint = self.known_mistake(case, outputs) or self.hints.get(name + ".finite", "")
                return self.fail(case, bad, hint=hint, output=name)
            if self.exact or exp.dtype.kind in "iub":
                if not np.array_equal(act, exp):
                    where = tuple(int(i) for i in np.argwhere(act != exp)[0]) if act.ndim else ()
                    hint = self.known_mistake(case, outputs) or self.hints.get(name, "")
                    return self.fail(
                        case, f"`{name}` is wrong",
                        f"first difference at {fmt_index(name, where)}: {act[where]}, expected {exp[where]}"
                        + self.locate(case, name, outputs, expected), hint, name)
                continue
            err, where = relative_error(act, exp)
            tol = self.tolerance(case, name)
            if not err <= tol:
                hint = self.known_mistake(case, outputs) or self.hints.get(name, "")
                return self.fail(
                    case, f"`{name}` is wrong",
                    f"largest error: {err:.1e} at {fmt_index(name, where)} (allowed: {tol:.0e})"
                    + self.locate(case, name, outputs, expected), hint, name)
        if modified:
            names = " and ".join(", ".join(f"`{m}`" for m in modified).rsplit(", ", 1))
            what = "inputs" if len(modified) > 1 else "input"
            return self.fail(
                case, f"your function changed its {what} {names} in place",
                hint="work on new arrays (a = a + b, not a += b, on an input; or copy it first): "
                     "callers still need their inputs.")
        return None

    def locate(self, case: Case, name: str, outputs: dict, expected: dict) -> str:
        """Where the error is, as extra detail lines: the time steps at which a sequence output is
        wrong, and which of the other outputs are right. It narrows the search without guessing a
        cause (a known mistake names the cause in the hint)."""
        lines = []
        steps = wrong_steps(case, outputs[name], np.asarray(expected[name]), self.tolerance(case, name))
        if steps:
            lines.append(f"where: {name} is {steps}")
        right, wrong = [], []
        given = getattr(getattr(self, "forward", None), "outputs", ())  # judged already, and right
        for other in self.output_names(case):
            if other == name or other not in outputs or other in given:
                continue
            (right if self._agrees(case, other, outputs[other], np.asarray(expected[other])) else wrong).append(other)
        if right or wrong:
            said = [f"{', '.join(f'`{o}`' for o in group)} {word}" for group, word in ((right, "right"), (wrong, "wrong"))
                    if group]
            lines.append("others: " + "; ".join(said))
        return "".join("\n    " + line for line in lines)

    def _agrees(self, case: Case, name: str, act: np.ndarray, exp: np.ndarray) -> bool:
        if act.shape != exp.shape:
            return False
        if self.exact or exp.dtype.kind in "iub":
            return bool(np.array_equal(act, exp))
        with quiet_numpy():
            return bool(np.all(np.isfinite(act))) and relative_error(act, exp)[0] <= self.tolerance(case, name)

    # --- verdicts for code that did not return; shared with the grader, which learns of
    # --- these from its child process as plain text
    def not_attempted(self, message: str = "") -> Verdict:
        """``message``: the NotImplementedError's, e.g. "Exercise 11.1: AdditiveAttention"."""
        stub = self.name if len(self.funcs) == 1 else f"{self.funcs[0]} or {self.name}"
        return Verdict(self.name, "not attempted", [
            f"{TODO} {self.name}: not attempted yet ({stub} still raises NotImplementedError)."])

    def wrong_form(self, case: Case, message: str) -> Verdict:
        """The verdict when the learner's code returned something of the wrong structure."""
        return self.fail(case, "does not have the expected form", hint=message)

    def raised(self, case: Case, message: str, where: str = "") -> Verdict:
        """The learner's code raised ``message`` ("ValueError: ..."), at line ``where``."""
        return self.fail(case, "your code raised an error",
                         detail=f"error: {message[:300]}" + (f"\n    {where}" if where else ""),
                         hint=self.crash_hint(message))

    def crash_hint(self, message: str) -> str:
        """Where to look after the learner's code raised ``message`` ("TypeError: ...")."""
        kind = message.split(":", 1)[0].strip()
        if kind in self.hints.get("crash.types", {}):
            return self.hints["crash.types"][kind]
        if kind in CRASH_HINTS:
            missing = re.search(r"name '(\w+)' is not defined", message)
            return CRASH_HINTS[kind].format(name=f"`{missing[1]}`" if missing else "a name")
        return self.hints.get("crash", SHAPE_HINT)

    # --- gradient checks: cases of their own, run and judged like every other case -----------
    def gradient_cases(self, cases: list[Case]) -> list[Case]:
        """Cases judged by ``judge_gradients`` after the ordinary ones (a gradient check); none here."""
        return []

    def gradient_plan(self, case: Case) -> tuple[str, dict]:
        """How to run a gradient case: a convention and its parameters, like ``plan``."""
        raise NotImplementedError

    def judge_gradients(self, case: Case, outputs: dict) -> Verdict | None:
        """Each gradient ``g`` against ``numeric g``, centred differences of the learner's own code,
        within 1e-5; on success the largest error goes into the pass line."""
        worst, what = 0.0, case.options.get("of", "your forward pass")
        for gname in case.options["pairs"]:
            act, num = outputs.get(gname), outputs.get("numeric " + gname)
            if act is None or num is None or act.shape != num.shape:
                return self.fail(case, f"`{gname}` does not have the shape of what it is the gradient of",
                                 hint=case.options.get("hint") or self.hints.get(gname, ""), output=gname)
            err, where = relative_error(act, num)
            worst = max(worst, err)
            if not err <= 1e-5:
                return self.fail(case, f"`{gname}` disagrees with centred differences of {what}",
                                 f"largest error: {err:.1e} at {fmt_index(gname, where)} (allowed: 1e-05)",
                                 case.options.get("hint") or self.hints.get(gname, ""), gname)
        case.options["note"] = f"gradient check against centred differences: largest error {worst:.0e}"
        return None

    def all_cases(self, rng: np.random.Generator) -> list[Case]:
        """Every case a check (and a grade) runs, the gradient checks last."""
        cases = self.cases(rng)
        return cases + self.gradient_cases(cases)

    def plan_of(self, case: Case) -> tuple[str, dict]:
        """The plan of any case: ``gradient_plan`` for a gradient check, else ``plan``."""
        return self.gradient_plan(case) if case.options.get("gradient") else self.plan(case)

    def verdict_of(self, case: Case, outputs: dict, modified: Sequence[str] = ()) -> Verdict | None:
        """The verdict on what a case returned: ``judge_gradients`` for a gradient check, else ``judge``."""
        return self.judge_gradients(case, outputs) if case.options.get("gradient") else self.judge(case, outputs, modified)

    @staticmethod
    def counted(cases: list[Case]) -> int:
        """How many of ``cases`` the pass line counts (the gradient checks are not)."""
        return sum(not c.options.get("gradient") for c in cases)

    # --- the self-check --------------------------------------------------------------
    def run(self, *funcs: Callable, rng: np.random.Generator | None = None) -> Verdict:
        """Check the learner's functions on every case and return a Verdict (no printing)."""
        if len(funcs) != len(self.funcs) or not all(callable(f) for f in funcs):
            usage = f"check.{self.name}({', '.join(self.funcs)})"
            return Verdict(self.name, "error", [f"{FAIL} {self.name}: call the check as {usage}."])
        rng = np.random.default_rng() if rng is None else rng
        cases = self.all_cases(rng)
        # The grader's child runs this same loop (conventions.run_cases) and the grader judges what it
        # sends back with these same methods: a self-check and a grade cannot disagree.
        outcomes = run_cases(funcs, (self.plan_of(case) for case in cases))
        for case, (status, *what) in zip(cases, outcomes):
            if status == "not attempted":
                return self.not_attempted(what[0])
            if status == "return error":
                return self.wrong_form(case, str(what[0]))
            if status == "raised":
                e = what[0]
                return self.raised(case, f"{type(e).__name__}: {e}".strip(), learner_line(e))
            verdict = self.verdict_of(case, *what)
            if verdict is not None:
                return verdict
        notes = "; ".join(c.options["note"] for c in cases if "note" in c.options)
        line = f"{PASS} {self.name}: correct on {self.counted(cases)} cases"
        return Verdict(self.name, "passed", [line + (f"; {notes}." if notes else ".")])

    def __call__(self, *funcs: Callable) -> Verdict:
        """The self-check, ``check.<name>(your functions)``: prints one line and returns a truthy
        Verdict when right; otherwise prints what is wrong, with a hint, and raises CheckFailed
        (an AssertionError); a stub prints "not attempted yet" and raises NotAttemptedYet (a
        CheckFailed), so that Run All stops there."""
        __tracebackhide__ = True
        return report(self.run(*funcs))

    def __repr__(self) -> str:
        return f"<check of {self.name}: call it as check.{self.name}({', '.join(self.funcs)})>"


def wrong_steps(case: Case, act: np.ndarray, exp: np.ndarray, tol: float) -> str:
    """For an output laid out (N, T, ...) like the case's sequence input, the time steps at which it
    is wrong, in words ("wrong at t = 0 only, right at t = 1..3"); "" when it is not a sequence
    output, or when every step is wrong in the same way."""
    seqs = [v for v in case.args.values() if isinstance(v, np.ndarray) and v.ndim >= 2 and v.shape[1] > 1]
    if not seqs or act.shape != exp.shape or act.ndim < 2:
        return ""
    N, T = seqs[0].shape[:2]
    if act.shape[:2] != (N, T):
        return ""
    with quiet_numpy():
        diff = np.abs(act.astype(np.float64) - exp.astype(np.float64)).reshape(N, T, -1)
        diff = np.where(np.isfinite(diff), diff, np.inf)
        scale = max(1.0, float(np.max(np.abs(exp)))) if exp.size else 1.0
        per_step = diff.max(axis=(0, 2)) / scale
    bad = [t for t in range(T) if not per_step[t] <= tol]
    if not bad or len(bad) == T:
        return ""
    good = [t for t in range(T) if t not in bad]
    return f"wrong at {_steps(bad)}{' only' if len(bad) == 1 else ''}, right at {_steps(good)}"


def _steps(ts: list[int]) -> str:
    """[0, 1, 2, 5] -> "t = 0..2 and 5"."""
    runs, start = [], ts[0]
    for a, b in zip(ts, ts[1:] + [None]):
        if b != a + 1:
            runs.append(str(start) if start == a else f"{start}..{a}")
            start = b
    return "t = " + (" and ".join(", ".join(runs).rsplit(", ", 1)))


# --- case generation ----------------------------------------------------------------

BASE = dict(N=3, T=4, D=5, H=6, V=7, M=4)


def size_variants(dims: Sequence[str], rng: np.random.Generator) -> list[tuple[str, dict, int | None, type]]:
    """(label, sizes, seed, dtype) for the standard set of cases.

    Fixed sizes with a fixed seed, every named size set to 1 in turn, the input size equal
    to the hidden size (so that swapped weight matrices still multiply), fresh random sizes
    and values, and float32.
    """
    base = {d: BASE[d] for d in dims}
    fresh = lambda: int(rng.integers(0, 2**31))  # noqa: E731
    variants = [("fixed inputs, " + _sizes(base), base, 0, np.float64)]
    for d in dims:
        if d in "NTH":
            variants.append((f"random inputs with {d}=1", {**base, d: 1}, fresh(), np.float64))
    if "D" in dims and "H" in dims:
        variants.append(("random inputs with D=H", {**base, "D": base["H"]}, fresh(), np.float64))
    if "H" in dims and "M" in dims:
        variants.append(("random inputs with M=H", {**base, "M": base["H"]}, fresh(), np.float64))
    sizes = {d: int(rng.integers(2, 8)) for d in dims}
    variants.append(("random inputs, " + _sizes(sizes), sizes, fresh(), np.float64))
    variants.append(("float32 inputs, " + _sizes(base), base, fresh(), np.float32))
    return variants


def _sizes(sizes: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items())


def standard_cases(build: Callable[..., dict], dims: Sequence[str], rng: np.random.Generator) -> list[Case]:
    """Cases from ``build(rng, **sizes) -> args`` (float64), cast to each variant's dtype."""
    cases = []
    for label, sizes, seed, dtype in size_variants(dims, rng):
        args = build(np.random.default_rng(seed), **sizes)
        args = {k: v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                for k, v in args.items()}
        cases.append(Case(label, args))
    return cases


class FunctionExercise(Exercise):
    """An exercise that is one function: call it, compare what it returns."""

    def __init__(self, name: str, returns: tuple[str, ...], reference: Callable, build: Callable,
                 dims: Sequence[str], mistakes: Sequence[Mistake] = (), hints: dict | None = None,
                 extra_cases: Callable[[np.random.Generator], list[Case]] | None = None):
        self.name, self.returns, self.reference = name, returns, reference
        self.funcs = (name,)
        self.outputs = tuple(r for r in returns if r != "cache")
        self.build, self.dims = build, dims
        self.mistakes = list(mistakes)
        self.hints = hints or {}
        self.extra_cases = extra_cases

    def cases(self, rng):
        """The standard sizes and dtypes, built by ``build``, plus the exercise's extra cases."""
        cases = standard_cases(self.build, self.dims, rng)
        if self.extra_cases:
            cases += self.extra_cases(rng)
        return cases

    def plan(self, case):
        """Call the function on the case's arguments and name what it returns."""
        return "function", {"args": case.args, "returns": self.returns, "name": self.name}

    def expected(self, case):
        """The reference's named outputs on a copy of the case's arguments (the cache is dropped)."""
        return unpack(self.reference(*copy_args(case.args).values()), self.returns, self.name)


class BackwardExercise(Exercise):
    """A backward pass, checked through the learner's own forward pass and cache.

    The forward outputs are compared first (a wrong forward makes every gradient wrong),
    then every gradient, and finally, in the self-check, the learner's gradients are
    compared with centred differences of the learner's own forward pass.
    """

    def __init__(self, name: str, forward: FunctionExercise, returns: tuple[str, ...],
                 reference: Callable, mistakes: Sequence[Mistake] = (), hints: dict | None = None,
                 wrt: dict[str, str] | None = None):
        self.name, self.forward, self.returns, self.reference = name, forward, returns, reference
        self.funcs = (forward.name, name)
        self.outputs = forward.outputs + returns
        self.mistakes = list(mistakes)
        self.hints = hints or {}
        # which forward argument each gradient belongs to: dx -> x, dprev_h -> prev_h
        self.wrt = wrt or {g: g[1:] for g in returns}

    def cases(self, rng):
        """The forward exercise's cases, each with random upstream gradients ``douts`` shaped like
        the forward outputs (fixed ones on the "fixed" cases)."""
        cases = self.forward.cases(rng)
        for case in cases:
            outs = self.forward.expected(case)
            seed = int(rng.integers(0, 2**31)) if not case.label.startswith("fixed") else 1
            g = np.random.default_rng(seed)
            case.douts = {"d" + k: g.standard_normal(v.shape).astype(v.dtype) for k, v in outs.items()}
        return cases

    def plan(self, case):
        """Run the learner's forward, then their backward on ``douts`` and the forward's cache."""
        return "backward", {"args": case.args, "douts": case.douts, "forward_returns": self.forward.returns,
                            "forward_name": self.forward.name, "returns": self.returns, "name": self.name}

    def expected(self, case):
        """The reference forward outputs and the reference gradients, by name."""
        result = self.reference_forward(case)
        outs = unpack(result, self.forward.returns, self.forward.name)
        grads = self.reference(*copy_args(case.douts).values(), result[-1])
        outs.update(unpack(grads, self.returns, self.name))
        return outs

    def reference_forward(self, case):
        """The reference forward's full return value on the case, cache included."""
        return self.forward.reference(*copy_args(case.args).values())

    def judge(self, case, outputs, modified=()):
        """The forward outputs first (a wrong forward explains every gradient), then the gradients."""
        forward_only = {k: v for k, v in outputs.items() if k in self.forward.outputs}
        verdict = self.forward.judge(case, forward_only)
        if verdict is not None:
            verdict.exercise = self.name
            verdict.lines[0] = f"{FAIL} {self.name}: your {self.forward.name} is not right yet, so the gradients cannot be."
            verdict.lines.append(f"    fix {self.forward.name} first: its check above tells you what is wrong.")
            return verdict
        return super().judge(case, outputs, modified)

    def run(self, *funcs, rng=None):
        """Check the forward function first: a wrong forward makes every gradient wrong, and
        a backward that cannot read a broken cache would otherwise look like the culprit."""
        if len(funcs) == 2 and all(callable(f) for f in funcs):
            first = self.forward.run(funcs[0], rng=rng)
            if first.status == "not attempted":
                return Verdict(self.name, "not attempted", [
                    f"{TODO} {self.name}: not attempted yet ({self.forward.name} still raises NotImplementedError)."])
            if not first:
                first.exercise = self.name
                first.lines[0] = (f"{FAIL} {self.name}: your {self.forward.name} is not right yet, "
                                  "so the gradients cannot be.")
                first.lines.append(f"    fix {self.forward.name} first: its check above tells you what is wrong.")
                return first
        return super().run(*funcs, rng=rng)

    def gradient_cases(self, cases):
        """Gradient check: the learner's backward against centred differences of their forward."""
        case = next(c for c in cases if c.dtype == np.float64)
        return [Case(case.label, case.args, case.douts,
                     {"gradient": True, "pairs": list(self.wrt), "of": "your forward pass"})]

    def gradient_plan(self, case):
        """Compare each gradient with centred differences of the learner's forward, through ``douts``."""
        return "gradient_check", {
            "mode": "backward", "args": case.args, "douts": case.douts,
            "pairs": [[g, arg, None] for g, arg in self.wrt.items()],
            "forward_returns": self.forward.returns, "forward_name": self.forward.name,
            "returns": self.returns, "name": self.name}
