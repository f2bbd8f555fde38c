"""Checks of notebook 07: NumPy weights in PyTorch layers, an LSTM cell as an nn.Module,
and the last real hidden state of padded sequences."""
from __future__ import annotations

import numpy as np

from course_utils import reference as ref

from ._core import Case, Mistake
from ._exercise_torch import TorchExercise
from .ex_lstm import STEP_MISTAKES as LSTM_STEP_MISTAKES
from .ex_rnn import weights

# --- 7.1-7.3: loading NumPy weights into nn.RNN, nn.LSTM, nn.GRU -------------------------

KINDS = {"RNN": (1, ("Wx", "Wh", "b")), "LSTM": (4, ("Wx", "Wh", "b")), "GRU": (3, ("Wx", "Wh", "bx", "bh"))}


def _load_cases(kind):
    k, names = KINDS[kind]

    def make(rng):
        cases = []
        for label, (N, T, D, H), seed in [("fixed weights", (3, 4, 5, 6), 0), ("random weights", (2, 6, 3, 4), None),
                                          ("random weights with H=1", (2, 3, 4, 1), None)]:
            g = np.random.default_rng(int(rng.integers(0, 2**31)) if seed is None else seed)
            Wx, Wh, b = weights(g, D, H, k=k)
            w = {"Wx": Wx, "Wh": Wh, "b": b} if kind != "GRU" else {"Wx": Wx, "Wh": Wh, "bx": b,
                                                                  "bh": g.standard_normal(3 * H) * 0.5}
            x, h0 = g.standard_normal((N, T, D)), np.tanh(g.standard_normal((N, H)))
            cases.append(Case(f"{label}, N={N}, T={T}, D={D}, H={H}", {"x": x, "h0": h0, **w},
                              options={"plan": {"kind": kind, "sizes": {"D": D, "H": H}}}))
        return cases
    return make


def _numpy_h(kind, bias=None):
    """What the layer outputs if the weights were loaded with a given (wrong) bias handling."""
    def outputs(case):
        a = dict(case.args)
        if kind == "RNN":
            b = a["b"] * 2 if bias == "both" else a["b"]
            return {"h": ref.rnn_forward(a["x"], a["h0"], a["Wx"], a["Wh"], b)[0]}
        if kind == "LSTM":
            b = a["b"] * 2 if bias == "both" else a["b"]
            return {"h": ref.lstm_forward(a["x"], a["h0"], a["Wx"], a["Wh"], b)[0]}
        bx, bh = a["bx"], a["bh"]
        if bias == "swapped":
            bx, bh = bh, bx
        elif bias == "summed":
            bx, bh = bx + bh, np.zeros_like(bh)
        return {"h": ref.gru_forward(a["x"], a["h0"], a["Wx"], a["Wh"], bx, bh)[0]}
    return outputs


LOAD_HINTS = {
    "crash": "PyTorch stores weight_ih_l0 as (gates * H, D), the transpose of Wx: copy Wx.T, and Wh.T into "
             "weight_hh_l0, with param.copy_(torch.from_numpy(...)) inside `with torch.no_grad():`.",
    "h": "weight_ih_l0 = Wx.T, weight_hh_l0 = Wh.T; PyTorch adds bias_ih_l0 and bias_hh_l0.",
}


def _load_exercise(kind, name, mistakes):
    return TorchExercise(name, "torch_load", name, _load_cases(kind), ("h",), mistakes=mistakes, hints=LOAD_HINTS)


BOTH = ("PyTorch adds its two biases, so b went in twice: put b in bias_ih_l0 and zeros in bias_hh_l0.")
LOAD_RNN_WEIGHTS = _load_exercise("RNN", "load_rnn_weights", [Mistake(BOTH, _numpy_h("RNN", "both"))])
LOAD_LSTM_WEIGHTS = _load_exercise("LSTM", "load_lstm_weights", [Mistake(BOTH, _numpy_h("LSTM", "both"))])
LOAD_GRU_WEIGHTS = _load_exercise("GRU", "load_gru_weights", [
    Mistake("bx and bh are swapped: bx goes into bias_ih_l0, bh into bias_hh_l0.", _numpy_h("GRU", "swapped")),
    Mistake("the GRU's biases cannot be added up: the reset gate multiplies h @ W_hn.T + b_hn, so bh must "
            "stay in bias_hh_l0 and bx in bias_ih_l0.", _numpy_h("GRU", "summed")),
])

# --- 7.4: an LSTM cell as an nn.Module ---------------------------------------------------


def _cell_cases(rng):
    cases = []
    for label, (N, D, H), seed in [("fixed inputs", (3, 5, 6), 0), ("random inputs with N=1", (1, 4, 3), None),
                                   ("random inputs with H=1", (2, 3, 1), None), ("random inputs, D=H", (4, 5, 5), None)]:
        g = np.random.default_rng(int(rng.integers(0, 2**31)) if seed is None else seed)
        Wx, Wh, b = weights(g, D, H, k=4)
        args = {"x": g.standard_normal((N, D)), "prev_h": np.tanh(g.standard_normal((N, H))),
                "prev_c": g.standard_normal((N, H))}
        douts = {"next_h": g.standard_normal((N, H)), "next_c": g.standard_normal((N, H))}
        cases.append(Case(f"{label}, N={N}, D={D}, H={H}", args, options={
            "plan": {"init": {"input_size": D, "hidden_size": H}, "state": {"Wx": Wx, "Wh": Wh, "b": b},
                     "returns": ("next_h", "next_c"), "name": "LSTMCell", "douts": douts,
                     "grad_wrt": ("x", "prev_h", "prev_c")}}))
    return cases


def _cell_mistake(step):
    def outputs(case):
        s = case.options["plan"]["state"]
        next_h, next_c, _ = step(case.args["x"], case.args["prev_h"], case.args["prev_c"], s["Wx"], s["Wh"], s["b"])
        return {"next_h": next_h, "next_c": next_c}
    return outputs


LSTM_CELL = TorchExercise(
    "LSTMCell", "torch_module", "LSTMCell", _cell_cases,
    ("next_h", "next_c", "dWx", "dWh", "db", "dx", "dprev_h", "dprev_c"),
    mistakes=[Mistake(h, _cell_mistake(s)) for h, s in LSTM_STEP_MISTAKES],
    hints={"next_c": "a = x @ self.Wx + prev_h @ self.Wh + self.b; i, f, g, o = a.chunk(4, dim=-1); "
                     "next_c = sigmoid(f) * prev_c + sigmoid(i) * tanh(g).",
           "next_h": "next_h = torch.sigmoid(o) * torch.tanh(next_c).",
           "crash": "keep the parameter names and shapes of the skeleton: Wx (D, 4H), Wh (H, 4H), b (4H,), "
                    "and use torch operations only (torch.sigmoid, torch.tanh, @)."},
)
LSTM_CELL.hints.update({k: "the forward values are right, so autograd's gradients follow: make sure every "
                           "operation is a torch operation on the inputs and parameters (no .detach(), "
                           ".numpy() or in-place changes of an input)." for k in
                        ("dWx", "dWh", "db", "dx", "dprev_h", "dprev_c")})

# --- 7.5: the last real hidden state of padded sequences ------------------------------------


def _last_cases(rng):
    cases = []
    for label, lengths, T, H, seed in [("fixed lengths [4, 1, 3]", [4, 1, 3], 4, 5, 0),
                                       ("random lengths, N=6, T=7", None, 7, 3, None),
                                       ("one sequence, T=1", [1], 1, 2, None),
                                       ("all sequences full length, T=5", [5, 5], 5, 4, None)]:
        g = np.random.default_rng(int(rng.integers(0, 2**31)) if seed is None else seed)
        lengths = np.array(lengths if lengths is not None else g.integers(1, T + 1, size=6), dtype=np.int64)
        h = g.standard_normal((len(lengths), T, H))
        cases.append(Case(label + f", H={H}", {"h": h, "lengths": lengths}, options={"plan": {
            "returns": ("last",), "name": "last_hidden_state", "douts": {"last": g.standard_normal((len(lengths), H))},
            "grad_wrt": ("h",)}}))
    return cases


def _last(pick):
    def outputs(case):
        h, lengths = case.args["h"], case.args["lengths"]
        return {"last": pick(h, lengths)}
    return outputs


LAST_HIDDEN_STATE = TorchExercise(
    "last_hidden_state", "torch_function", "last_hidden_state", _last_cases, ("last", "dh"),
    mistakes=[
        Mistake("h[:, -1] is the state after the last *padded* step; shorter sequences end earlier: "
                "pick h[n, lengths[n] - 1] for each n.", _last(lambda h, L: h[:, -1])),
        Mistake("h[:, lengths - 1] picks every chosen step for every sequence, (N, N, H): index both axes "
                "together, h[torch.arange(N), lengths - 1].", _last(lambda h, L: h[:, L - 1])),
    ],
    hints={"last": "row n of the result is h[n, lengths[n] - 1]; index with torch.arange(N) and lengths - 1.",
           "crash": "the last real step of sequence n is lengths[n] - 1 (steps count from 0).",
           "dh": "only the picked positions of h should get a gradient; use indexing, not a copy via NumPy."},
)

# --- 7.6: running an nn.LSTM over a packed batch -------------------------------------------


def lstm_state(g: np.random.Generator, D: int, H: int, layers: int = 1) -> dict:
    """Random weights for a batch-first nn.LSTM, under PyTorch's parameter names."""
    state = {}
    for k in range(layers):
        d = D if k == 0 else H
        state[f"weight_ih_l{k}"] = g.standard_normal((4 * H, d)) / np.sqrt(d)
        state[f"weight_hh_l{k}"] = g.standard_normal((4 * H, H)) / np.sqrt(H)
        state[f"bias_ih_l{k}"] = g.standard_normal(4 * H) * 0.5
        state[f"bias_hh_l{k}"] = g.standard_normal(4 * H) * 0.5
    return state


def _packed_cases(rng):
    cases = []
    for label, lengths, T, D, H, layers, seed in [
            ("fixed lengths [3, 5, 2] (not sorted)", [3, 5, 2], 5, 4, 3, 1, 0),
            ("random lengths, N=5, T=6, two layers", 5, 6, 3, 4, 2, None),
            ("random lengths, N=T=4", 4, 4, 2, 3, 1, None),
            ("one sequence, T=1", [1], 1, 3, 2, 1, None),
            ("all sequences full length, T=3", [3, 3], 3, 2, 2, 1, None)]:
        g = np.random.default_rng(int(rng.integers(0, 2**31)) if seed is None else seed)
        if isinstance(lengths, int):  # N random lengths; the longest fills the batch, as after padding
            N = lengths
            lengths = g.integers(1, T + 1, size=N)
            lengths[g.integers(0, N)] = T
        lengths = np.array(lengths, dtype=np.int64)
        x = g.standard_normal((len(lengths), T, D))
        x[np.arange(T)[None, :] >= lengths[:, None]] = 0  # zero padding after each sequence's end
        sizes = {"D": D, "H": H, "layers": layers}
        cases.append(Case(f"{label}, D={D}, H={H}", {"x": x, "lengths": lengths}, options={"plan": {
            "returns": ("last",), "name": "final_states_packed",
            "douts": {"last": g.standard_normal((len(lengths), H))}, "grad_wrt": ("x",),
            "modules": {"lstm": ("LSTM", sizes, lstm_state(g, D, H, layers))}}}))
    return cases


def _packed_mistake(run):
    """What a learner's function returns when it does `run(lstm, x, lengths)` (tensors in, last out)."""
    def outputs(case):
        import torch

        from ._calls import build_recurrent

        plan = case.options["plan"]
        lstm = build_recurrent(*plan["modules"]["lstm"])
        with torch.no_grad():
            last = run(lstm, torch.from_numpy(case.args["x"]), torch.from_numpy(case.args["lengths"]))
        return {"last": last.numpy()}
    return outputs


def _pack(x, lengths, batch_first=True):
    from torch.nn.utils.rnn import pack_padded_sequence

    return pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)


def _unpacked_h_n(lstm, x, lengths):
    return lstm(x)[1][0][-1]


def _first_layer(lstm, x, lengths):
    return lstm(_pack(x, lengths))[1][0][0]


def _padded_output_last_step(lstm, x, lengths):
    from torch.nn.utils.rnn import pad_packed_sequence

    out, _ = pad_packed_sequence(lstm(_pack(x, lengths))[0], batch_first=True, total_length=x.shape[1])
    return out[:, -1]


def _time_major_pack(lstm, x, lengths):
    return lstm(_pack(x, lengths, batch_first=False))[1][0][-1]


PACK_CALL = "nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)"
FINAL_STATES_PACKED = TorchExercise(
    "final_states_packed", "torch_function", "final_states_packed", _packed_cases, ("last", "dx"),
    mistakes=[
        Mistake("h_n of a padded batch is the state after the last *padded* step, not after each sequence's "
                f"end: pack x first, {PACK_CALL}, and run the LSTM on the packed batch.",
                _packed_mistake(_unpacked_h_n)),
        Mistake("h_n[0] is the state of the first layer; with several layers the top layer's is h_n[-1].",
                _packed_mistake(_first_layer)),
        Mistake("pad_packed_sequence puts zeros after each sequence's end, so out[:, -1] is zero for every "
                "sequence shorter than the batch: return h_n[-1], the LSTM's last state of each sequence.",
                _packed_mistake(_padded_output_last_step)),
        Mistake("x was packed as if it were time-major (T, N, D): pass batch_first=True to "
                "pack_padded_sequence, since x is (N, T, D).", _packed_mistake(_time_major_pack)),
    ],
    hints={"last": f"packed = {PACK_CALL}; _, (h_n, c_n) = lstm(packed); return h_n[-1].",
           "last.shape": "h_n has one row per layer, (layers, N, H): return the top layer only, h_n[-1], (N, H).",
           "crash": f"pack with {PACK_CALL}: x is batch-first, and the lengths come in no particular order "
                    "(they must be on the CPU: lengths.cpu()).",
           "dx": "the padding must never be read: run the LSTM on the packed batch, not on x itself."},
)

# The exercises of this module, registered by `course_utils.check` (in notebook order).
EXERCISES = [LOAD_RNN_WEIGHTS, LOAD_LSTM_WEIGHTS, LOAD_GRU_WEIGHTS, LSTM_CELL, LAST_HIDDEN_STATE, FINAL_STATES_PACKED]
