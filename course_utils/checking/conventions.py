"""How the learner's functions are called: plain NumPy, no reference code.

The instructor's grader copies this one file into a locked-down child process that runs
student code, so it must not import anything from ``course_utils`` (a student could
otherwise reach the reference implementations from inside that process). Each calling
convention takes the learner's functions and plain data (arrays, numbers, strings) and
returns ``(outputs, modified)``: a dict of plain arrays and the names of inputs that the
learner's code changed in place.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable

import numpy as np


class NotAttempted(Exception):
    """The learner's function still raises NotImplementedError."""


class ReturnError(Exception):
    """The learner's function returned something of the wrong structure."""


@contextlib.contextmanager
def quiet_numpy():
    """Silence NumPy's overflow warnings: a check reports such problems in words."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def learner_line(exc: BaseException) -> str:
    """The line of the learner's own code where an exception was raised, e.g.
    "in rnn_forward: x_t = x[t]" ("" if it cannot be found). Frames of NumPy, PyTorch and
    this package are skipped: the learner needs to see their line, not a library's."""
    import linecache
    import traceback

    here = __file__.rsplit("/", 2)[0]  # the course_utils folder (or the grader's temp dir)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        name = frame.filename
        if name.startswith(here) or "site-packages" in name or name.startswith("<frozen"):
            continue
        line = (frame.line or linecache.getline(name, frame.lineno)).strip()
        if line:
            return f"in {frame.name}: {line}"
    return ""


def call_safely(fn: Callable, *args) -> Any:
    """Call learner code; NotImplementedError means the exercise is still a stub."""
    try:
        with quiet_numpy():
            return fn(*args)
    except NotImplementedError as e:
        raise NotAttempted(str(e)) from None


def as_array(value: Any, name: str) -> np.ndarray:
    """Turn a returned value into a plain numeric array, or raise ReturnError."""
    if isinstance(value, (bool, np.bool_)):
        raise ReturnError(f"`{name}` should be an array, but your function returned {value!r}.")
    if isinstance(value, (int, float, np.number)):
        return np.asarray(value)
    if type(value) is not np.ndarray:
        kind = type(value).__name__
        raise ReturnError(f"`{name}` should be a NumPy array, but your function returned a {kind}.")
    if value.dtype.kind not in "biuf":
        raise ReturnError(f"`{name}` should hold numbers, but its dtype is {value.dtype}.")
    # A plain, contiguous copy: no subclass and no view can change behaviour later.
    return np.array(value, copy=True, order="C", subok=False)


def unpack(result: Any, names: tuple, func_name: str) -> dict:
    """Map a function's returned tuple to names (``"cache"`` is dropped)."""
    names = tuple(names)
    if len(names) == 1:
        result = (result,)
    if not isinstance(result, tuple) or len(result) != len(names):
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
        raise ReturnError(
            f"{func_name} should return {len(names)} values ({', '.join(names)}), but it returned {got}.")
    return {n: as_array(v, n) for n, v in zip(names, result) if n != "cache"}


def copy_args(args: dict) -> dict:
    """A copy of ``args`` with every array copied, so that the learner's code cannot change the caller's."""
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}


def modified_inputs(before: dict, after: dict) -> list:
    """The names of the arrays in ``before`` that differ in ``after`` (the inputs changed in place)."""
    return [k for k, v in before.items()
            if isinstance(v, np.ndarray) and not np.array_equal(v, after[k], equal_nan=True)]


# --- calling conventions ----------------------------------------------------------------


def call_function(funcs, args, returns, name):
    """fn(*args) -> the named return values."""
    (fn,) = funcs
    mine = copy_args(args)
    result = call_safely(fn, *mine.values())
    return unpack(result, returns, name), modified_inputs(args, mine)


def call_backward(funcs, args, douts, forward_returns, forward_name, returns, name):
    """out..., cache = forward(*args); grads = backward(*douts, cache)."""
    fwd, bwd = funcs
    mine = copy_args(args)
    result = call_safely(fwd, *mine.values())
    outputs = unpack(result, forward_returns, forward_name)
    my_douts = copy_args(douts)
    grads = call_safely(bwd, *my_douts.values(), result[-1])
    outputs.update(unpack(grads, returns, name))
    return outputs, modified_inputs(args, mine) + modified_inputs(douts, my_douts)


# Test functions for numerical_gradient, rebuilt from a name and an array.
TEST_FUNCTIONS = {
    "tanh(x @ A)": lambda A: (lambda x: np.tanh(x @ A)),
    "sin(x) * x**2": lambda A: (lambda x: np.sin(x) * x**2),
    "x / sqrt(1 + sum(x**2))": lambda A: (lambda x: x / np.sqrt(1 + np.sum(x**2))),
}


def call_numerical_gradient(funcs, f, A, x, dout):
    """fn(f, x, dout) -> grad, the shape of x, with f rebuilt from its name in ``TEST_FUNCTIONS``."""
    (fn,) = funcs
    mine_x, mine_dout = x.copy(), dout.copy()
    grad = call_safely(fn, TEST_FUNCTIONS[f](A), mine_x, mine_dout)
    return {"grad": as_array(grad, "grad")}, modified_inputs({"x": x, "dout": dout}, {"x": mine_x, "dout": mine_dout})


def call_clip_grad_norm(funcs, grads, max_norm):
    """fn(grads, max_norm) -> (clipped, total_norm): the clipped arrays by name, and the inputs
    changed in place or aliased by what it returned."""
    (fn,) = funcs
    mine = {k: v.copy() for k, v in grads.items()}
    result = call_safely(fn, mine, max_norm)
    if not isinstance(result, tuple) or len(result) != 2:
        raise ReturnError("clip_grad_norm should return two values: (clipped, total_norm).")
    clipped, total = result
    if not isinstance(clipped, dict) or set(clipped) != set(grads):
        raise ReturnError(f"`clipped` should be a dict with the same names as `grads`: {sorted(grads)}.")
    out = {f"clipped['{k}']": as_array(clipped[k], f"clipped['{k}']") for k in grads}
    out["total_norm"] = as_array(total, "total_norm")
    modified = [f"grads['{k}']" for k in grads if not np.array_equal(grads[k], mine[k])]
    modified += [f"alias:clipped['{k}']" for k in grads
                 if isinstance(clipped[k], np.ndarray) and np.shares_memory(clipped[k], mine[k])]
    return out, modified


def call_sampler(funcs, logits, temperature, seed, few):
    """Draw once on every row of logits, and three times on the rows of `few`:
    twice with the same generator seed (under different global NumPy seeds), once with another."""
    (fn,) = funcs
    outputs, modified = {}, []
    state = np.random.get_state()
    try:
        for key, global_seed, rng_seed, rows in [("samples", 1, seed, logits), ("again", 2, seed, few),
                                                 ("again_ref", 3, seed, few), ("other", 4, seed + 1, few)]:
            mine = rows.copy()
            np.random.seed(global_seed)  # a sampler that uses np.random.* gives itself away
            out = call_safely(fn, mine, temperature, np.random.default_rng(rng_seed))
            outputs[key] = as_array(out, "samples")
            if not np.array_equal(mine, rows) and "logits" not in modified:
                modified.append("logits")
    finally:
        np.random.set_state(state)
    return outputs, modified


CONVENTIONS = {
    "function": call_function,
    "backward": call_backward,
    "numerical_gradient": call_numerical_gradient,
    "clip_grad_norm": call_clip_grad_norm,
    "sampler": call_sampler,
}


def run_plan(funcs, convention: str, params: dict):
    """Run the learner's functions as a plan says: (outputs, modified)."""
    return CONVENTIONS[convention](funcs, **params)


def run_cases(funcs, plans, interruptible: bool = True):
    """The case loop of every self-check and of every grade, the one place where what the
    learner's code did is classified. Runs the plans ``[(convention, params), ...]`` in order and
    yields, for each, one of

    - ``("returned", outputs, modified)``: plain arrays, for the trusted side to judge;
    - ``("not attempted", message)``: a stub still raises NotImplementedError;
    - ``("return error", message)``: it returned something of the wrong structure;
    - ``("raised", exception)``: anything else it raised.

    It stops after the first case that did not return. In a learner's kernel
    (``interruptible``) a KeyboardInterrupt stops the check instead of counting as a crash."""
    for convention, params in plans:
        try:
            outputs, modified = run_plan(funcs, convention, params)
        except NotAttempted as e:
            yield "not attempted", str(e)
            return
        except ReturnError as e:
            yield "return error", str(e)
            return
        except KeyboardInterrupt as e:
            if interruptible:
                raise
            yield "raised", e
            return
        except BaseException as e:  # noqa: BLE001 (the learner's code may raise anything, SystemExit too)
            yield "raised", e
            return
        yield "returned", outputs, modified


# --- PyTorch conventions (torch is imported only when a plan needs it) ---------------------


def to_tensor(value, requires_grad=False):
    """A copy of ``value`` as a torch tensor; floating-point ones require grad when asked."""
    import torch

    tensor = torch.from_numpy(np.array(value, copy=True))
    if requires_grad and tensor.is_floating_point():
        tensor.requires_grad_(True)
    return tensor


def tensor_to_array(value, name):
    """A returned tensor as a plain array; anything else (a subclass, a list) is refused."""
    import torch

    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        kind = type(value).__name__
        raise ReturnError(f"`{name}` should be a torch.Tensor, but your code returned a {kind}.")
    return as_array(value.detach().cpu().numpy(), name)


def _outputs(result, returns, name):
    if len(returns) == 1:
        result = (result,)
    if not isinstance(result, tuple) or len(result) != len(returns):
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
        raise ReturnError(f"{name} should return {len(returns)} values ({', '.join(returns)}), but it returned {got}.")
    return dict(zip(returns, result))


def _backward(outputs, douts, wrt):
    """Backpropagate sum(out * dout) and collect the gradients of `wrt` (name -> tensor)."""
    import torch

    if any(tuple(getattr(outputs[k], "shape", ())) != d.shape for k, d in douts.items()):
        return {}  # an output of the wrong shape: the judge reports that, with its hint
    loss = sum((outputs[k] * to_tensor(d)).sum() for k, d in douts.items())
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        raise ReturnError("the outputs do not depend on the inputs through autograd: keep to torch "
                          "operations (no .numpy(), .item() or .detach() in the middle).")
    loss.backward()
    return {f"d{k}": (np.zeros(tuple(t.shape), dtype=str(t.dtype).replace("torch.", "")) if t.grad is None
                      else tensor_to_array(t.grad, f"d{k}")) for k, t in wrt.items()}


RECURRENT_LAYERS = ("RNN", "LSTM", "GRU")


def build_recurrent(kind, sizes, state):
    """A batch-first float64 torch.nn.RNN / LSTM / GRU with fixed weights.

    sizes: {"D", "H"} and optionally {"layers", "bidirectional"}; state: PyTorch's parameter
    names (weight_ih_l0, ...) -> arrays of the matching shapes.
    """
    import torch

    if kind not in RECURRENT_LAYERS:
        raise ValueError(f"unknown recurrent layer {kind!r}")
    cls = getattr(torch.nn, kind)
    module = cls(sizes["D"], sizes["H"], num_layers=sizes.get("layers", 1),
                 bidirectional=bool(sizes.get("bidirectional", False)), batch_first=True).to(torch.float64)
    with torch.no_grad():
        module.load_state_dict({k: to_tensor(v) for k, v in state.items()})
    return module


def call_torch_function(funcs, args, returns, name, douts=None, grad_wrt=(), modules=None):
    """fn(*modules, *tensors) -> tensors; optionally backpropagate douts into the inputs named in grad_wrt.

    modules: name -> (kind, sizes, state), recurrent layers built by ``build_recurrent`` and
    passed first, in order (e.g. fn(lstm, x, lengths)); a module whose weights the learner's
    code changes is reported as a modified input.
    """
    import torch

    (fn,) = funcs
    torch.manual_seed(0)
    built = {k: build_recurrent(*spec) for k, spec in (modules or {}).items()}
    tensors = {k: to_tensor(v, k in grad_wrt) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    result = _outputs(call_safely(fn, *built.values(), *tensors.values()), returns, name)
    outputs = {k: tensor_to_array(v, k) for k, v in result.items() if k != "cache"}
    modified = [k for k, v in args.items() if isinstance(v, np.ndarray)
                and not np.array_equal(tensors[k].detach().numpy(), v, equal_nan=True)]
    modified += [k for k, (_, _, state) in (modules or {}).items()
                 if any(not np.array_equal(p.detach().cpu().numpy(), state[p_name], equal_nan=True)
                        for p_name, p in built[k].state_dict().items())]
    if douts:
        outputs.update(_backward(result, douts, {k: tensors[k] for k in grad_wrt}))
    return outputs, modified


def call_torch_module(funcs, init, state, args, returns, name, douts=None, grad_wrt=()):
    """Build the learner's module, load fixed weights by name, run it, backpropagate douts.

    Returns the outputs, the gradients of every parameter ("d" + name) and of the inputs in
    grad_wrt. The learner's parameter names and shapes must be those the exercise fixes.
    """
    import torch

    (cls,) = funcs
    torch.manual_seed(0)
    module = call_safely(cls, *init.values())
    if not isinstance(module, torch.nn.Module):
        raise ReturnError(f"{name} should be a subclass of torch.nn.Module.")
    module = module.to(torch.float64)
    have = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in state.items()}
    if have != want:
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        wrong = sorted(k for k in set(want) & set(have) if want[k] != have[k])
        parts = [f"missing {', '.join(missing)}" if missing else "",
                 f"unexpected {', '.join(extra)}" if extra else "",
                 ", ".join(f"{k} has shape {have[k]} instead of {want[k]}" for k in wrong)]
        raise ReturnError(f"the parameters of {name} are not the expected ones: "
                          + "; ".join(p for p in parts if p) + ".")
    with torch.no_grad():
        module.load_state_dict({k: to_tensor(v) for k, v in state.items()})
    module.eval()
    tensors = {k: to_tensor(v, k in grad_wrt) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    result = _outputs(call_safely(module, *tensors.values()), returns, name)
    outputs = {k: tensor_to_array(v, k) for k, v in result.items()}
    if douts:
        wrt = dict(module.named_parameters())
        wrt.update({k: tensors[k] for k in grad_wrt})
        outputs.update(_backward(result, douts, wrt))
    modified = [k for k, v in args.items() if isinstance(v, np.ndarray)
                and not np.array_equal(tensors[k].detach().numpy(), v, equal_nan=True)]
    return outputs, modified


def call_torch_load(funcs, kind, sizes, weights, x, h0):
    """Load NumPy weights into a fresh nn.RNN / nn.LSTM / nn.GRU with the learner's function,
    then run it on x: returns the module's output sequence h (N, T, H)."""
    import torch

    (fn,) = funcs
    torch.manual_seed(0)
    cls = {"RNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[kind]
    module = cls(sizes["D"], sizes["H"], batch_first=True).to(torch.float64)
    mine = {k: v.copy() for k, v in weights.items()}
    call_safely(fn, module, *mine.values())
    h0_t = to_tensor(h0)[None]
    with torch.no_grad():
        state = (h0_t, torch.zeros_like(h0_t)) if kind == "LSTM" else h0_t
        h, _ = module(to_tensor(x), state)
    modified = [k for k in weights if not np.array_equal(weights[k], mine[k])]
    return {"h": tensor_to_array(h, "h")}, modified


CONVENTIONS.update({
    "torch_function": call_torch_function,
    "torch_module": call_torch_module,
    "torch_load": call_torch_load,
})


# --- beam search over a fixed decoder (notebook 10) ----------------------------------------


def decoder_step(decoder):
    """A fixed decoder, built from plain arrays, as the step function that beam search calls:
    step(tokens int (B,), hidden (B, H)) -> (log_probs (B, V), hidden (B, H)), in float64.

    decoder["kind"] is "table": the next token's log-probabilities depend on the previous token
    only, ``log_probs = decoder["log_probs"][tokens]`` with a (V, V) table, and the hidden state
    passes through unchanged; or "gru": notebook 10's Decoder architecture one step at a time,
    embedding (V, E) -> GRU cell (weight_ih (3H, E), weight_hh (3H, H), bias_ih, bias_hh) ->
    linear layer (out_weight (V, H), out_bias (V,)) -> log_softmax.
    Wrong arguments raise ValueError with a message that says what step expects.
    """
    import torch

    table = embedding = cell = out = None
    if decoder["kind"] == "table":
        table = to_tensor(decoder["log_probs"])
        V = H = None
    else:
        embedding = to_tensor(decoder["embedding"])
        H = decoder["weight_hh"].shape[1]
        cell = torch.nn.GRUCell(embedding.shape[1], H).to(torch.float64)
        out = torch.nn.Linear(H, embedding.shape[0]).to(torch.float64)
        with torch.no_grad():
            for param, key in [(cell.weight_ih, "weight_ih"), (cell.weight_hh, "weight_hh"),
                               (cell.bias_ih, "bias_ih"), (cell.bias_hh, "bias_hh"),
                               (out.weight, "out_weight"), (out.bias, "out_bias")]:
                param.copy_(to_tensor(decoder[key]))
        V = embedding.shape[0]

    def step(tokens, hidden):
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.dtype != torch.long:
            what = (f"a tensor of shape {tuple(tokens.shape)} and dtype {tokens.dtype}"
                    if isinstance(tokens, torch.Tensor) else f"a {type(tokens).__name__}")
            raise ValueError("step(tokens, hidden) wants tokens as a 1-D tensor of int64 token ids, "
                             f"one per live hypothesis (B,), but got {what}")
        if (not isinstance(hidden, torch.Tensor) or hidden.dim() != 2 or hidden.shape[0] != tokens.shape[0]
                or (H is not None and hidden.shape[1] != H)):
            what = f"shape {tuple(hidden.shape)}" if isinstance(hidden, torch.Tensor) else f"a {type(hidden).__name__}"
            raise ValueError(f"step(tokens, hidden) wants hidden of shape (B, H) = ({tokens.shape[0]}, "
                             f"{H if H is not None else 'H'}), one row per token, but got {what}")
        if V is not None and (tokens.min() < 0 or tokens.max() >= V):
            raise ValueError(f"step(tokens, hidden) got a token id outside 0..{V - 1}")
        with torch.no_grad():
            if table is not None:
                return table[tokens], hidden.clone()
            next_hidden = cell(embedding[tokens], hidden.to(torch.float64))
            return torch.log_softmax(out(next_hidden), dim=-1), next_hidden
    return step


def _token_list(value, name):
    import torch

    if isinstance(value, torch.Tensor):
        if value.dim() != 1 or value.dtype.is_floating_point or value.dtype == torch.bool:
            raise ReturnError(f"`{name}` should be a list of token ids (ints), or a 1-D integer tensor; "
                              f"your code returned a tensor of shape {tuple(value.shape)} and dtype {value.dtype}.")
        return np.array(value.detach().cpu().numpy(), dtype=np.int64)
    if not isinstance(value, (list, tuple)):
        raise ReturnError(f"`{name}` should be a list of token ids (ints), but your code returned a "
                          f"{type(value).__name__}.")
    ids = []
    for v in value:
        if isinstance(v, torch.Tensor) and v.dim() == 0 and not v.dtype.is_floating_point:
            v = int(v)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise ReturnError(f"`{name}` should hold token ids (ints), but it holds a {type(v).__name__}.")
        ids.append(int(v))
    return np.array(ids, dtype=np.int64)


def _score(value, name):
    import torch

    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ReturnError(f"`{name}` should be one number, but your code returned a tensor of shape "
                              f"{tuple(value.shape)}.")
        value = value.detach().cpu().reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ReturnError(f"`{name}` should be a number (a float), but your code returned a {type(value).__name__}.")
    return np.array(float(value), dtype=np.float64)


def call_torch_beam_search(funcs, decoder, hidden, start_id, end_id, beam_width, max_len):
    """fn(step, hidden (1, H), start_id, end_id, beam_width, max_len) -> (tokens, score), with
    step the fixed decoder of ``decoder_step(decoder)``. Returns {"tokens": int (L,), "score": ()}."""
    import torch

    (fn,) = funcs
    torch.manual_seed(0)
    step = decoder_step(decoder)
    h = to_tensor(hidden)
    result = call_safely(fn, step, h, int(start_id), int(end_id), int(beam_width), int(max_len))
    if not isinstance(result, tuple) or len(result) != 2:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
        raise ReturnError(f"beam_search should return two values (tokens, score), but it returned {got}.")
    modified = [] if np.array_equal(h.detach().numpy(), hidden) else ["hidden"]
    return {"tokens": _token_list(result[0], "tokens"), "score": _score(result[1], "score")}, modified


CONVENTIONS["torch_beam_search"] = call_torch_beam_search


# --- one training step on a fixed classifier (notebook 08) ----------------------------------


def build_classifier(sizes, state):
    """A small float64 classifier of padded token ids with fixed weights, for checking a training step:
    model(tokens int64 (N, T), lengths int64 (N,)) -> logits (N, C). An embedding (V, E) with padding
    id 0, a one-directional LSTM (E -> H) over the real steps only (packed), and a linear layer
    (H -> C) on its final state. sizes: {"V", "E", "H", "C"}; state: its state_dict as arrays."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(sizes["V"], sizes["E"], padding_idx=0)
            self.lstm = torch.nn.LSTM(sizes["E"], sizes["H"], batch_first=True)
            self.out = torch.nn.Linear(sizes["H"], sizes["C"])

        def forward(self, tokens, lengths):
            packed = pack_padded_sequence(self.embedding(tokens), lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            return self.out(self.lstm(packed)[1][0][-1])

    torch.manual_seed(0)
    model = Classifier().to(torch.float64)
    with torch.no_grad():
        model.load_state_dict({k: to_tensor(v) for k, v in state.items()})
    return model


def call_torch_train_step(funcs, sizes, state, lr, max_norm, batches):
    """Call fn(model, optimizer, tokens, lengths, labels, max_norm) -> loss once per batch, in order,
    on one fixed model (``build_classifier``) with optimizer = torch.optim.SGD(model.parameters(), lr).

    batches: a list of {"tokens" (N, T), "lengths" (N,), "labels" (N,)} int arrays. Returns, for
    the k-th call (from 1), "loss_k": the number it returned, and "weights_k": every parameter after
    it, flattened and concatenated in the order of model.parameters().
    """
    import torch

    (fn,) = funcs
    model = build_classifier(sizes, state)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=float(lr))
    outputs, modified = {}, []
    for k, batch in enumerate(batches, start=1):
        tensors = {name: to_tensor(v) for name, v in batch.items()}
        loss = call_safely(fn, model, optimizer, tensors["tokens"], tensors["lengths"], tensors["labels"],
                           float(max_norm))
        outputs[f"loss_{k}"] = _score(loss, "loss")
        outputs[f"weights_{k}"] = np.concatenate([p.detach().cpu().numpy().ravel() for p in model.parameters()])
        modified += [name for name, v in batch.items()
                     if not np.array_equal(tensors[name].numpy(), v) and name not in modified]
    return outputs, modified


CONVENTIONS["torch_train_step"] = call_torch_train_step


# --- functions of a dict of parameters (notebook 04's language model) ----------------------


def copy_tree(value):
    """A deep copy of arrays, dicts of arrays and dicts of those."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: copy_tree(v) for k, v in value.items()}
    return value


def changed_in_place(before: dict, after: dict, prefix: str = "") -> list:
    """Names (``params['Wx']``) of the arrays of ``before`` that differ in ``after``."""
    names = []
    for k, v in before.items():
        name = f"{prefix}['{k}']" if prefix else k
        if isinstance(v, dict):
            names += changed_in_place(v, after.get(k, {}) if isinstance(after.get(k), dict) else {}, name)
        elif isinstance(v, np.ndarray) and not np.array_equal(v, after.get(k), equal_nan=True):
            names.append(name)
    return names


def flatten_dict(value, name: str, keys) -> dict:
    """A returned dict of arrays as outputs ``name['key']``; it must have exactly ``keys``."""
    if not isinstance(value, dict) or set(value) != set(keys):
        got = f"the keys {sorted(map(str, value))}" if isinstance(value, dict) else f"a {type(value).__name__}"
        raise ReturnError(f"`{name}` should be a dict with the keys {', '.join(keys)}, but it is {got}.")
    return {f"{name}['{k}']": as_array(value[k], f"{name}['{k}']") for k in keys}


def call_dict_function(funcs, args, returns, name, keys):
    """fn(*args) with dicts of arrays among the arguments (a model's parameters): every
    returned dict (named in ``keys``, with the keys it must have) becomes outputs ``name['key']``."""
    (fn,) = funcs
    mine = copy_tree(args)
    result = call_safely(fn, *mine.values())
    if not isinstance(result, tuple) or len(result) != len(returns):
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
        raise ReturnError(f"{name} should return {len(returns)} values ({', '.join(returns)}), but it returned {got}.")
    outputs = {}
    for r, value in zip(returns, result):
        if r == "cache":
            continue
        outputs.update(flatten_dict(value, r, keys[r]) if r in keys else {r: as_array(value, r)})
    return outputs, changed_in_place(args, mine)


def call_train_steps(funcs, params, adam, xs, ys, h0, lr, max_norm):
    """Run ``train_step(params, adam, x, y, h, lr, max_norm) -> (params, adam, loss, last_h,
    total_norm)`` on the batches xs[k], ys[k] in turn, each step starting from what the step
    before returned. Outputs: the losses and norms of every step (K,), and the final
    parameters, Adam step count and hidden state."""
    (fn,) = funcs
    names = list(params)
    losses, norms, modified = [], [], []
    h = h0
    for k in range(len(xs)):
        inputs = {"params": params, "adam": adam, "x": xs[k], "y": ys[k], "h": h}
        mine = copy_tree(inputs)
        result = call_safely(fn, *mine.values(), lr, max_norm)
        if not isinstance(result, tuple) or len(result) != 5:
            got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
            raise ReturnError("the train step should return 5 values (params, adam, loss, last_h, "
                              f"total_norm), but it returned {got}.")
        new_params, new_adam, loss, h, total_norm = result
        modified += [m for m in changed_in_place(inputs, mine) if m not in modified]
        flatten_dict(new_params, "params", names)
        if not isinstance(new_adam, dict) or set(new_adam) != {"t", "m", "v"}:
            raise ReturnError("`adam` should be returned as a dict with the keys t, m and v, like the one "
                              "you were given.")
        flatten_dict(new_adam["m"], "adam['m']", names)
        flatten_dict(new_adam["v"], "adam['v']", names)
        losses.append(as_array(loss, "loss"))
        norms.append(as_array(total_norm, "total_norm"))
        h = as_array(h, "last_h")
        params, adam = copy_tree(new_params), copy_tree(new_adam)
    outputs = {"loss": np.array(losses, dtype=np.float64), "total_norm": np.array(norms, dtype=np.float64),
               "adam['t']": as_array(adam["t"], "adam['t']"), "last_h": h}
    outputs.update(flatten_dict(params, "params", names))
    return outputs, modified


CONVENTIONS.update({"dict_function": call_dict_function, "train_steps": call_train_steps})


# --- the gradient through time, measured with given step functions (notebook 03) -----------


def plain_rnn_step_forward(x, prev_h, Wx, Wh, b):
    """The course's RNN step, for exercises that take a step function as an argument."""
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def plain_rnn_step_backward(dnext_h, cache):
    """The backward pass of ``plain_rnn_step_forward``: (dx, dprev_h, dWx, dWh, db)."""
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h**2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def call_gradient_norm_by_lag(funcs, args):
    """fn(x, h0, Wx, Wh, b, dh_last, rnn_step_forward, rnn_step_backward) -> norms (T + 1,),
    with this file's own step functions passed in: the measurement is judged, not notebook 02."""
    (fn,) = funcs
    mine = copy_args(args)
    norms = call_safely(fn, *mine.values(), plain_rnn_step_forward, plain_rnn_step_backward)
    if isinstance(norms, list) and all(isinstance(v, (int, float, np.floating, np.integer)) for v in norms):
        norms = np.array(norms, dtype=np.float64)  # a list of numbers is a fine answer too
    return {"norms": as_array(norms, "norms")}, modified_inputs(args, mine)


CONVENTIONS["gradient_norm_by_lag"] = call_gradient_norm_by_lag


# --- teacher forcing and greedy decoding (notebook 10) ---------------------------------------


class DecodingRunaway(ReturnError):
    """The learner's decoding loop called the decoder for more steps than max_len allows."""


def build_seq2seq(model):
    """A small encoder and decoder with notebook 10's signatures, from plain arrays, in float64.

    They are not notebook 10's Encoder and Decoder (any modules with these signatures will do):
    encoder(src (N, S), lengths (N,)) -> outputs (N, S, H), final (N, H): ``outputs`` are the rows
    of model["src_embedding"] (Vs, H) at the real positions (0 on padding), ``final`` their mean.
    decoder(tokens (N, T), hidden (N, H)) -> logits (N, T, V), hidden (N, H): at each step
    h = tanh(h @ W + embedding[y]) and logits = table[y] + h @ out, with model["table"] (V, V),
    model["embedding"] (V, H), model["W"] (H, H), model["out"] (H, V).
    The decoder counts the rows it decodes (``decoder.rows``, one per sequence and call) and
    raises DecodingRunaway past ``model["max_rows"]`` (if given): a loop without a bound stops.
    """
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Parameter(to_tensor(model["src_embedding"]))

        def forward(self, src, lengths):
            mask = torch.arange(src.shape[1])[None, :] < lengths.cpu()[:, None]
            outputs = self.embedding[src] * mask[..., None]
            return outputs, outputs.sum(dim=1) / lengths.cpu()[:, None]

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            for name in ("table", "embedding", "W", "out"):
                setattr(self, name, nn.Parameter(to_tensor(model[name])))
            self.rows, self.max_rows = 0, model.get("max_rows")

        def forward(self, tokens, hidden):
            self.rows += int(tokens.shape[0])
            if self.max_rows is not None and self.rows > self.max_rows:
                raise DecodingRunaway(
                    "your loop kept calling the decoder for more than max_len steps: decoding must stop "
                    "after max_len steps even when a sequence never produces <end> (one of these never does).")
            logits = []
            for t in range(tokens.shape[1]):
                y = tokens[:, t]
                hidden = torch.tanh(hidden @ self.W + self.embedding[y])
                logits.append(self.table[y] + hidden @ self.out)
            return torch.stack(logits, dim=1), hidden

    return Encoder().to(torch.float64), Decoder().to(torch.float64)


def call_torch_seq2seq_loss(funcs, model, args):
    """fn(encoder, decoder, src, src_lengths, tgt, pad_id) -> a scalar loss tensor; returns the
    loss and its gradient with respect to every parameter ("dencoder.embedding", "ddecoder.table", ...)."""
    import torch

    (fn,) = funcs
    torch.manual_seed(0)
    encoder, decoder = build_seq2seq(model)
    tensors = {k: to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    loss = call_safely(fn, encoder, decoder, *tensors.values())
    if type(loss) not in (torch.Tensor, torch.nn.Parameter) or loss.numel() != 1:
        what = (f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
                else f"a {type(loss).__name__}")
        raise ReturnError(f"teacher_forcing_loss should return one number as a tensor (shape ()), so that "
                          f"loss.backward() can train the model, but it returned {what}.")
    outputs = {"loss": tensor_to_array(loss.reshape(()), "loss")}
    if not loss.requires_grad:
        raise ReturnError("the loss does not depend on the model's parameters through autograd: keep to torch "
                          "operations (no .item(), .numpy(), .detach() or torch.no_grad() in the loss).")
    loss.reshape(()).backward()
    for prefix, module in (("encoder", encoder), ("decoder", decoder)):
        for name, p in module.named_parameters():
            outputs[f"d{prefix}.{name}"] = (np.zeros(tuple(p.shape)) if p.grad is None
                                            else tensor_to_array(p.grad, f"d{prefix}.{name}"))
    modified = [k for k, v in args.items() if isinstance(v, np.ndarray)
                and not np.array_equal(tensors[k].numpy(), v)]
    return outputs, modified


def call_torch_greedy_decode(funcs, model, args):
    """fn(encoder, decoder, src, src_lengths, start_id, end_id, max_len) -> N lists of token ids.

    Returns {"tokens": int (N, L) padded with -1, "lengths": int (N,), "rows": ()}, where rows
    counts the sequences the decoder was run on, summed over its calls."""
    import torch

    (fn,) = funcs
    torch.manual_seed(0)
    N, max_len = len(args["src"]), int(args["max_len"])
    encoder, decoder = build_seq2seq({**model, "max_rows": N * (max_len + 1)})
    tensors = {k: to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    result = call_safely(fn, encoder, decoder, *tensors.values())
    outputs = token_rows(result, N, "greedy_decode", "token", "sequence", "output")
    return {**outputs, "rows": np.array(decoder.rows, dtype=np.int64)}, changed_tensors(args, tensors)


def token_rows(result, N: int, func: str, item: str, row: str, output: str) -> dict:
    """A decoding function's N lists of ids as {"tokens": int (N, L) padded with -1, "lengths": (N,)};
    ReturnError, in the notebook's words (a list of `item` ids per `row`, its `output`), if it is not that."""
    import torch

    if isinstance(result, torch.Tensor) and result.dim() == 2:
        raise ReturnError(f"{func} should return a list of N lists of {item} ids (one per {row}, each as long as "
                          f"that {row}'s {output}), not one padded tensor.")
    if not isinstance(result, (list, tuple)) or len(result) != N:
        got = f"{len(result)} items" if isinstance(result, (list, tuple)) else f"a {type(result).__name__}"
        raise ReturnError(f"{func} should return a list of N = {N} lists of {item} ids, one per {row}, "
                          f"but it returned {got}.")
    rows = [_token_list(r, f"the {output} of {row} {n}") for n, r in enumerate(result)]
    tokens = np.full((N, max(max(len(r) for r in rows), 1)), -1, dtype=np.int64)
    for n, r in enumerate(rows):
        tokens[n, :len(r)] = r
    return {"tokens": tokens, "lengths": np.array([len(r) for r in rows], dtype=np.int64)}


def changed_tensors(args: dict, tensors: dict) -> list[str]:
    """The array arguments whose tensors the learner's code changed in place."""
    return [k for k, v in args.items() if isinstance(v, np.ndarray) and not np.array_equal(tensors[k].numpy(), v)]


CONVENTIONS["torch_seq2seq_loss"] = call_torch_seq2seq_loss
CONVENTIONS["torch_greedy_decode"] = call_torch_greedy_decode


# --- gradient checks: the learner's gradients beside centred differences of their own code ------


def centred_differences(f, x: np.ndarray, dout: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """d sum(f(x) * dout) / dx, one entry at a time (x is restored after each)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(np.asarray(f(x), dtype=np.float64) * dout)
        x[i] = old - h
        minus = np.sum(np.asarray(f(x), dtype=np.float64) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def call_gradient_check(funcs, mode, args, pairs, douts=None, forward_returns=(), forward_name="",
                        returns=(), name=""):
    """The gradients the learner's code returns, and centred differences of the learner's own
    forward pass (``mode="backward"``: forward then backward, the scalar being
    sum(forward outputs * douts)) or own loss (``mode="loss"``: the function returns the loss
    first and its gradients among ``returns``). ``pairs``: [output, argument, key or None] for
    each gradient: the gradient ``output`` belongs to ``args[argument]`` (``[key]`` of a dict).
    Outputs: ``output`` and ``numeric output`` for each pair; the trusted side compares them."""
    def with_value(arg, key, value):
        a = copy_tree(args)
        if key is None:
            a[arg] = value
        else:
            a[arg] = {**a[arg], key: value}
        return a

    outputs = {}
    if mode == "backward":
        fwd, bwd = funcs
        result = call_safely(fwd, *copy_tree(args).values())
        grads = unpack(call_safely(bwd, *copy_tree(douts).values(), result[-1]), tuple(returns), name)
        kept = [r for r in forward_returns if r != "cache"]
        dout = np.concatenate([np.ravel(douts["d" + k]) for k in kept])

        def scalar_terms(arg, key, value):
            outs = unpack(call_safely(fwd, *with_value(arg, key, value).values()), tuple(forward_returns), forward_name)
            return np.concatenate([np.ravel(outs[k]) for k in kept])
    else:
        (fn,) = funcs
        result = call_safely(fn, *copy_tree(args).values())
        if not isinstance(result, tuple) or len(result) != len(returns):
            raise ReturnError(f"{name} should return {len(returns)} values ({', '.join(returns)}).")
        grads = dict(zip(returns, result))
        dout = np.asarray(1.0)

        def scalar_terms(arg, key, value):
            return np.asarray(call_safely(fn, *with_value(arg, key, value).values())[0], dtype=np.float64)
    for output, arg, key in pairs:
        if key is None:
            analytic, start = grads.get(output.split("[")[0]), args[arg]
        else:
            holder = grads.get(output.split("[")[0])
            if not isinstance(holder, dict) or key not in holder:
                raise ReturnError(f"`{output}` is missing from what your function returned.")
            analytic, start = holder[key], args[arg][key]
        outputs[output] = as_array(analytic, output)
        outputs["numeric " + output] = centred_differences(
            lambda v, arg=arg, key=key: scalar_terms(arg, key, v), start, dout)
    return outputs, []


CONVENTIONS["gradient_check"] = call_gradient_check


# --- beam search with a length penalty (notebook 10) ------------------------------------------


def call_torch_beam_search_lp(funcs, decoder, hidden, start_id, end_id, beam_width, max_len, alpha):
    """fn(step, hidden (1, H), start_id, end_id, beam_width, max_len, alpha) -> (tokens, score): the
    ``torch_beam_search`` convention with GNMT's length-penalty exponent as a seventh argument."""
    import torch

    (fn,) = funcs
    torch.manual_seed(0)
    step = decoder_step(decoder)
    h = to_tensor(hidden)
    result = call_safely(fn, step, h, int(start_id), int(end_id), int(beam_width), int(max_len), float(alpha))
    if not isinstance(result, tuple) or len(result) != 2:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"a {type(result).__name__}"
        raise ReturnError(f"beam_search should return two values (tokens, score), but it returned {got}.")
    modified = [] if np.array_equal(h.detach().numpy(), hidden) else ["hidden"]
    return {"tokens": _token_list(result[0], "tokens"), "score": _score(result[1], "score")}, modified


CONVENTIONS["torch_beam_search_lp"] = call_torch_beam_search_lp


# --- notebook 12 (speech recognition with CTC) ----------------------------------------------


def call_torch_ctc_loss(funcs, logits, targets, input_lengths, target_lengths, blank, dloss):
    """fn(log_probs (N, T, C), targets (N, S), input_lengths (N,), target_lengths (N,), blank) -> loss (N,),
    with log_probs = log_softmax(logits) computed here. Returns the loss and the gradient of
    sum(loss * dloss) with respect to the logits, "dlogits" (N, T, C): PyTorch's own ctc_loss gives
    its gradient for inputs that come out of a log_softmax, so gradients are compared there."""
    import torch

    (fn,) = funcs
    torch.manual_seed(0)
    logits_t = to_tensor(logits, requires_grad=True)
    log_probs = torch.log_softmax(logits_t, dim=-1)
    given = log_probs.detach().clone()
    given_ints = {"targets": targets, "input_lengths": input_lengths, "target_lengths": target_lengths}
    ints = {k: to_tensor(v) for k, v in given_ints.items()}
    loss = call_safely(fn, log_probs, *ints.values(), int(blank))
    outputs = {"loss": tensor_to_array(loss, "loss")}
    if tuple(loss.shape) == dloss.shape:
        if not loss.requires_grad:
            raise ReturnError("the loss does not depend on log_probs through autograd: keep to torch operations "
                              "(no .item(), .numpy(), .detach() or torch.no_grad() in the recursion).")
        (loss * to_tensor(dloss)).sum().backward()
        outputs["dlogits"] = (np.zeros(logits.shape) if logits_t.grad is None
                              else tensor_to_array(logits_t.grad, "dlogits"))
    modified = ["log_probs"] if not torch.equal(log_probs.detach(), given) else []
    modified += [k for k, v in ints.items() if not np.array_equal(v.numpy(), given_ints[k])]
    return outputs, modified


def _id_lists(result, N, name):
    """N sequences of ids (lists, tuples, 1-D integer arrays or tensors) as (tokens padded with -1, lengths)."""
    if not isinstance(result, (list, tuple)) or len(result) != N:
        got = f"{len(result)} items" if isinstance(result, (list, tuple)) else f"a {type(result).__name__}"
        raise ReturnError(f"{name} should return a list of N = {N} lists of class ids, one per sequence, "
                          f"but it returned {got}.")
    rows = []
    for n, r in enumerate(result):
        if hasattr(r, "tolist") and getattr(r, "ndim", 1) == 1 and str(getattr(r, "dtype", "int")).find("int") >= 0:
            r = r.tolist()
        if not isinstance(r, (list, tuple)) or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in r):
            what = type(r).__name__ if not isinstance(r, (list, tuple)) else "something other than ints"
            raise ReturnError(f"the output of sequence {n} should be a list of class ids (ints), but it is {what}.")
        rows.append([int(v) for v in r])
    tokens = np.full((N, max([len(r) for r in rows] + [1])), -1, dtype=np.int64)
    for n, r in enumerate(rows):
        tokens[n, :len(r)] = r
    return tokens, np.array([len(r) for r in rows], dtype=np.int64)


def call_ctc_decode(funcs, log_probs, lengths, blank):
    """fn(log_probs (N, T, C) ndarray, lengths (N,) ndarray, blank) -> N lists of class ids.
    Returns {"tokens": int (N, L) padded with -1, "lengths": int (N,)}."""
    (fn,) = funcs
    mine = {"log_probs": log_probs.copy(), "lengths": lengths.copy()}
    result = call_safely(fn, mine["log_probs"], mine["lengths"], int(blank))
    tokens, sizes = _id_lists(result, len(log_probs), "ctc_greedy_decode")
    return {"tokens": tokens, "lengths": sizes}, modified_inputs({"log_probs": log_probs, "lengths": lengths}, mine)


def call_sequences_function(funcs, args, name):
    """fn(*args) -> one number, where args are lists of lists of ints (or arrays); the lists the
    learner's function changes are reported as modified inputs."""
    import copy

    (fn,) = funcs
    mine = copy.deepcopy(args)
    value = call_safely(fn, *mine.values())
    if hasattr(value, "item") and getattr(value, "size", getattr(value, "numel", lambda: 1)()) == 1 \
            and not isinstance(value, np.ndarray):
        value = value.item()  # a 0-d tensor
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating, np.ndarray)):
        raise ReturnError(f"{name} should return one number (a float), but it returned a {type(value).__name__}.")
    out = as_array(value, name)
    if out.shape != ():
        raise ReturnError(f"{name} should return one number (a float), but it returned an array of shape {out.shape}.")
    return {name: out.astype(np.float64)}, [k for k in args if mine[k] != args[k]]


CONVENTIONS.update({"torch_ctc_loss": call_torch_ctc_loss, "ctc_decode": call_ctc_decode,
                    "sequences_function": call_sequences_function})


# --- one training step of a session GRU (notebook 14) ----------------------------------------


def build_session_gru(sizes, state):
    """A small float64 session GRU with fixed weights, for checking a training step:
    model(items int64 (B,), hidden (B, H)) -> logits (B, I), hidden (B, H): an embedding (I, E),
    a GRU cell (E -> H) and a linear layer (H -> I). sizes: {"I", "E", "H"}; state: its
    state_dict as arrays."""
    import torch

    class SessionGRU(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden_size = sizes["H"]
            self.embedding = torch.nn.Embedding(sizes["I"], sizes["E"])
            self.cell = torch.nn.GRUCell(sizes["E"], sizes["H"])
            self.out = torch.nn.Linear(sizes["H"], sizes["I"])

        def forward(self, items, hidden):
            hidden = self.cell(self.embedding(items), hidden)
            return self.out(hidden), hidden

    torch.manual_seed(0)
    model = SessionGRU().to(torch.float64)
    with torch.no_grad():
        model.load_state_dict({k: to_tensor(v) for k, v in state.items()})
    return model


def call_session_train_step(funcs, sizes, state, lr, hidden, steps):
    """Call fn(model, optimizer, inputs, targets, starts, hidden) -> (loss, hidden) once per step,
    in order, on one fixed model (``build_session_gru``) with optimizer = torch.optim.SGD(lr),
    starting from ``hidden`` (B, H) and passing on the hidden state each call returns.

    steps: a list of {"inputs" int (B,), "targets" int (B,), "starts" bool (B,)}. Returns, for the
    k-th call (from 1), "loss_k", "hidden_k" (B, H) and "weights_k": every parameter after it,
    flattened and concatenated in the order of model.parameters().
    """
    import torch

    (fn,) = funcs
    model = build_session_gru(sizes, state)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=float(lr))
    h = to_tensor(hidden)
    outputs, modified = {}, []
    for k, step in enumerate(steps, start=1):
        tensors = {name: to_tensor(v) for name, v in step.items()}
        result = _outputs(call_safely(fn, model, optimizer, tensors["inputs"], tensors["targets"],
                                      tensors["starts"], h), ("loss", "hidden"), "session_train_step")
        outputs[f"loss_{k}"] = _score(result["loss"], "loss")
        h = result["hidden"]
        outputs[f"hidden_{k}"] = tensor_to_array(h, "hidden")
        outputs[f"weights_{k}"] = np.concatenate([p.detach().cpu().numpy().ravel() for p in model.parameters()])
        modified += [name for name, v in step.items()
                     if not np.array_equal(tensors[name].numpy(), v) and name not in modified]
    return outputs, modified


CONVENTIONS["session_train_step"] = call_session_train_step


# --- the captioning model of notebook 13: the loss and greedy sampling ---------------------


def build_captioner(sizes, state, max_rows=None):
    """A small float64 model with the layers of notebook 13's Captioner, from plain arrays:
    encoder (flatten, Linear D -> F): images (N, ...) of D numbers -> features (N, F);
    init_state (Linear F -> H); embedding (V, E); rnn (GRU E -> H, batch_first); out (Linear H -> V).
    sizes: {"D", "F", "E", "H", "V"}; state: its state_dict as arrays. The GRU counts the
    sequence-steps it runs (``model.rnn.rows``) and raises DecodingRunaway past max_rows."""
    import torch
    from torch import nn

    class CountingGRU(nn.GRU):
        def forward(self, x, hx=None):
            self.rows += int(x.shape[0]) * int(x.shape[1]) if x.dim() == 3 else int(x.shape[0])
            if max_rows is not None and self.rows > max_rows:
                raise DecodingRunaway(
                    "your loop kept calling the decoder for more than max_len steps: sampling must stop after "
                    "max_len steps even when a caption never produces <end> (one of these never does).")
            return super().forward(x, hx)

    class Captioner(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(sizes["D"], sizes["F"]))
            self.init_state = nn.Linear(sizes["F"], sizes["H"])
            self.embedding = nn.Embedding(sizes["V"], sizes["E"])
            self.rnn = CountingGRU(sizes["E"], sizes["H"], batch_first=True)
            self.out = nn.Linear(sizes["H"], sizes["V"])

    torch.manual_seed(0)
    model = Captioner().to(torch.float64)
    with torch.no_grad():
        model.load_state_dict({k: to_tensor(v) for k, v in state.items()})
    model.rnn.rows = 0
    return model.eval()


def call_torch_caption_loss(funcs, sizes, state, args):
    """fn(model, images, captions, pad_id) -> a scalar loss tensor, on a fixed ``build_captioner``
    model; returns the loss and its gradient with respect to every parameter ("d" + name)."""
    import torch

    (fn,) = funcs
    model = build_captioner(sizes, state)
    tensors = {k: to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    loss = call_safely(fn, model, *tensors.values())
    if type(loss) not in (torch.Tensor, torch.nn.Parameter) or loss.numel() != 1:
        what = (f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
                else f"a {type(loss).__name__}")
        raise ReturnError(f"caption_loss should return one number as a tensor (shape ()), so that "
                          f"loss.backward() can train the model, but it returned {what}.")
    outputs = {"loss": tensor_to_array(loss.reshape(()), "loss")}
    if not loss.requires_grad:
        raise ReturnError("the loss does not depend on the model's parameters through autograd: keep to torch "
                          "operations (no .item(), .numpy(), .detach() or torch.no_grad() in the loss).")
    loss.reshape(()).backward()
    for name, p in model.named_parameters():
        outputs[f"d{name}"] = np.zeros(tuple(p.shape)) if p.grad is None else tensor_to_array(p.grad, f"d{name}")
    modified = [k for k, v in args.items() if isinstance(v, np.ndarray) and not np.array_equal(tensors[k].numpy(), v)]
    return outputs, modified


def call_torch_sample_caption(funcs, sizes, state, args):
    """fn(model, images, start_id, end_id, max_len) -> N lists of word ids, on a fixed
    ``build_captioner`` model. Returns {"tokens": int (N, L) padded with -1, "lengths": int (N,),
    "rows": ()}, rows counting the sequence-steps the GRU ran."""
    import torch

    (fn,) = funcs
    N, max_len = len(args["images"]), int(args["max_len"])
    model = build_captioner(sizes, state, max_rows=N * (max_len + 1))
    tensors = {k: to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    result = call_safely(fn, model, *tensors.values())
    outputs = token_rows(result, N, "sample_caption", "word", "image", "caption")
    return {**outputs, "rows": np.array(model.rnn.rows, dtype=np.int64)}, changed_tensors(args, tensors)


CONVENTIONS["torch_caption_loss"] = call_torch_caption_loss
CONVENTIONS["torch_sample_caption"] = call_torch_sample_caption
