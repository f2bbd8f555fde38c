"""Checks of notebook 07: NumPy weights in PyTorch layers (nn.RNN, whose loader loads an nn.LSTM too, and
nn.GRU), an LSTM cell as an nn.Module, the last real hidden state of padded sequences, and packing.

Fallback hints (used when no catalogued mistake explains a wrong output) say what is wrong and where to
look, and point to the hints under the exercise; they do not guess a cause."""
from __future__ import annotations

import re

import numpy as np

from course_utils import reference as ref

from course_utils.checking.core import Case, Mistake
from course_utils.checking.exercise_torch import TorchExercise, wrong_module
from course_utils.checking.core import attach_implementations
from course_utils.lessons.nb05_lstm_numpy.checks import STEP_MISTAKES as LSTM_STEP_MISTAKES
from course_utils.lessons.nb01_rnn_forward.checks import weights

# --- 7.1-7.2: loading NumPy weights into nn.RNN (and so nn.LSTM) and nn.GRU -------------------------

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


def _initial_biases(kind, D, H):
    """The biases a fresh layer of the grader's convention starts with (it seeds PyTorch with 0):
    what a bias that the learner never set still holds."""
    import torch

    torch.manual_seed(0)
    layer = getattr(torch.nn, kind)(D, H, batch_first=True)
    return layer.bias_ih_l0.detach().double().numpy(), layer.bias_hh_l0.detach().double().numpy()


def _numpy_h(kind, mistake=None):
    """What the layer outputs if the weights were loaded with a given mistake."""
    def outputs(case):
        a = dict(case.args)
        Wh = a["Wh"].T if mistake == "Wh not transposed" else a["Wh"]
        if kind in ("RNN", "LSTM"):
            b = a["b"]
            if mistake == "both":
                b = 2 * b
            elif mistake == "bias_hh left":
                b = b + _initial_biases(kind, a["Wx"].shape[0], a["Wh"].shape[0])[1]
            forward = ref.rnn_forward if kind == "RNN" else ref.lstm_forward
            return {"h": forward(a["x"], a["h0"], a["Wx"], Wh, b)[0]}
        bx, bh = a["bx"], a["bh"]
        if mistake == "swapped":
            bx, bh = bh, bx
        elif mistake == "summed":
            bx, bh = bx + bh, np.zeros_like(bh)
        elif mistake == "bh zero":
            bh = np.zeros_like(bh)
        return {"h": ref.gru_forward(a["x"], a["h0"], a["Wx"], Wh, bx, bh)[0]}
    return outputs


class _Exercise07(TorchExercise):
    """A TorchExercise whose crash hint can depend on the error's message, not only on its kind:
    ``crash_matches`` is a list of (regular expression, hint), tried in order."""

    def __init__(self, *args, crash_matches=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_matches = list(crash_matches)

    def crash_hint(self, message: str) -> str:
        for pattern, hint in self.crash_matches:
            if re.search(pattern, message):
                return hint
        return super().crash_hint(message)


LOAD_CRASHES = [
    (r"leaf Variable that requires grad|a leaf Variable", "a parameter cannot be changed in place while autograd "
     "records: do the copies inside `with torch.no_grad():`."),
    (r"size|shape|must match|expected", "a shape does not fit: PyTorch's weight_ih_l0 is (gates * H, D) and "
     "weight_hh_l0 (gates * H, H), while Wx is (D, gates * H) and Wh (H, gates * H). Compare PyTorch's "
     "x W_ih^T with the course's x Wx (hint 1 under the exercise)."),
]
LOAD_HINTS = {
    "crash": LOAD_CRASHES[1][1],
    "h": "the layer does not compute the course's network, and no common mistake explains how it differs: "
         "compare each of the four parameters with PyTorch's formula (hint 2 under the exercise), and print "
         "them after loading to see what they hold.",
}


def _load_exercise(kind, name, mistakes):
    return _Exercise07(name, "torch_load", name, _load_cases(kind), ("h",), mistakes=mistakes, hints=LOAD_HINTS,
                       crash_matches=LOAD_CRASHES)


def _copy_into(layer, w_ih, w_hh, b_ih, b_hh=None):
    """A learner's copies into the first layer's four parameters, under no_grad (None: left as it is)."""
    import torch

    with torch.no_grad():
        for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), (w_ih, w_hh, b_ih, b_hh)):
            if value is not None:
                getattr(layer, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _wrong_rnn_b_twice(rnn, Wx, Wh, b):  # b in both biases, which PyTorch adds up
    _copy_into(rnn, Wx.T, Wh.T, b, b)


def _wrong_rnn_Wh_not_transposed(rnn, Wx, Wh, b):  # Wh copied as it is: square, so no error
    _copy_into(rnn, Wx.T, Wh, b, np.zeros_like(b))


def _wrong_rnn_bias_hh_untouched(rnn, Wx, Wh, b):  # bias_hh_l0 keeps its random initial values
    _copy_into(rnn, Wx.T, Wh.T, b)


def _wrong_gru_swapped_biases(gru, Wx, Wh, bx, bh):  # bh with the input product, bx with the recurrent one
    _copy_into(gru, Wx.T, Wh.T, bh, bx)


def _wrong_gru_summed_biases(gru, Wx, Wh, bx, bh):  # one bias carries the sum, as for the RNN
    _copy_into(gru, Wx.T, Wh.T, bx + bh, np.zeros_like(bh))


def _wrong_gru_like_the_rnn(gru, Wx, Wh, bx, bh):  # bias_hh_l0 zero, as for the RNN: bh is lost
    _copy_into(gru, Wx.T, Wh.T, bx, np.zeros_like(bh))


BOTH = "PyTorch adds its two biases, so b went in twice: one of them carries b, the other must be zero."
WH_NOT_TRANSPOSED = ("your layer computes the network with Wh transposed: PyTorch multiplies h_{t-1} W_hh^T, so "
                     "weight_hh_l0 holds the transpose of Wh (a square matrix copies without an error either way).")
BIAS_LEFT = ("bias_hh_l0 still holds its random initial values: PyTorch adds both biases, so the one that does not "
             "carry b must be set to zero.")
load_rnn_weights = _load_exercise("RNN", "load_rnn_weights", [
    Mistake(BOTH, _numpy_h("RNN", "both"), _wrong_rnn_b_twice),
    Mistake(WH_NOT_TRANSPOSED, _numpy_h("RNN", "Wh not transposed"), _wrong_rnn_Wh_not_transposed),
    Mistake(BIAS_LEFT, _numpy_h("RNN", "bias_hh left"), _wrong_rnn_bias_hh_untouched)])
load_gru_weights = _load_exercise("GRU", "load_gru_weights", [
    Mistake("bx and bh are swapped: bx goes with the input product, bh with the recurrent one.",
            _numpy_h("GRU", "swapped"), _wrong_gru_swapped_biases),
    Mistake("the GRU's biases cannot be added up: the reset gate multiplies h W_hn^T + b_hn, the recurrent "
            "product with its bias, so bh must stay in bias_hh_l0 and bx in bias_ih_l0.", _numpy_h("GRU", "summed"),
            _wrong_gru_summed_biases),
    Mistake("bias_hh_l0 is zero, as for the RNN, but the GRU's recurrent bias bh is not the same as zero: "
            "r multiplies h W_hn^T + b_hn, so bh belongs in bias_hh_l0.", _numpy_h("GRU", "bh zero"),
            _wrong_gru_like_the_rnn),
])

# --- 7.3: an LSTM cell as an nn.Module ---------------------------------------------------


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


def _cell_a(self, x, prev_h):
    return x @ self.Wx + prev_h @ self.Wh + self.b


def _wrong_cell_g_o_swapped(self, x, prev_h, prev_c):  # the last two blocks read as o, g
    import torch

    i, f, o, g = _cell_a(self, x, prev_h).chunk(4, dim=-1)
    next_c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(next_c), next_c


def _wrong_cell_sigmoid_g(self, x, prev_h, prev_c):  # the candidate g through a sigmoid
    import torch

    i, f, g, o = _cell_a(self, x, prev_h).chunk(4, dim=-1)
    next_c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.sigmoid(g)
    return torch.sigmoid(o) * torch.tanh(next_c), next_c


def _wrong_cell_without_tanh_c(self, x, prev_h, prev_c):  # next_h = o * next_c, no tanh
    import torch

    i, f, g, o = _cell_a(self, x, prev_h).chunk(4, dim=-1)
    next_c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * next_c, next_c


LSTMCell = _Exercise07(
    "LSTMCell", "torch_module", "LSTMCell", _cell_cases,
    ("next_h", "next_c", "dWx", "dWh", "db", "dx", "dprev_h", "dprev_c"),
    mistakes=attach_implementations([Mistake(h, _cell_mistake(s)) for h, s in LSTM_STEP_MISTAKES], {
        "in the order i, f, o, g:": wrong_module("LSTMCell", _wrong_cell_g_o_swapped),
        "g uses tanh, not sigmoid": wrong_module("LSTMCell", _wrong_cell_sigmoid_g),
        "the tanh of the cell state is missing": wrong_module("LSTMCell", _wrong_cell_without_tanh_c)}),
    hints={"next_h": "no common mistake (gate order, activations, a missing term) explains your outputs. If "
                     "`next_c` is wrong too (see `others`), look at a and c_t = sigma(f) * c_{t-1} + "
                     "sigma(i) * tanh(g) first; if it is right, at h_t = sigma(o) * tanh(c_t). Hint 2 under "
                     "the exercise shows how to split a.",
           "next_c": "`next_h` is right but the returned `next_c` is not: return the cell state c_t that next_h "
                     "was computed from.",
           "crash": "keep the parameter names and shapes of the skeleton: Wx (D, 4H), Wh (H, 4H), b (4H,), "
                    "and use torch operations only (torch.sigmoid, torch.tanh, @)."},
    crash_matches=[
        (r"values to unpack", "splitting a did not give four blocks: a is (N, 4H), so split it along its last "
                              "axis into four blocks of H columns (hint 2 under the exercise)."),
        (r"cannot be multiplied|size mismatch", "a matrix product's shapes do not fit: x (N, D) @ Wx (D, 4H) and "
                                                 "prev_h (N, H) @ Wh (H, 4H)."),
    ],
)
LSTMCell.hints.update({k: "the forward values are right, so autograd's gradients follow: make sure every "
                           "operation is a torch operation on the inputs and parameters (no .detach(), "
                           ".numpy() or in-place changes of an input)." for k in
                        ("dWx", "dWh", "db", "dx", "dprev_h", "dprev_c")})

# --- 7.4: the last real hidden state of padded sequences ------------------------------------


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


def _wrong_last_padded_step(h, lengths):  # the last padded step, for every sequence
    return h[:, -1]


def _wrong_last_all_pairs(h, lengths):  # one index on one axis: every chosen step of every sequence
    return h[:, lengths - 1]


last_hidden_state = TorchExercise(
    "last_hidden_state", "torch_function", "last_hidden_state", _last_cases, ("last", "dh"),
    mistakes=[
        Mistake("h[:, -1] is the state after the last *padded* step; shorter sequences end earlier: "
                "pick h[n, lengths[n] - 1] for each n.", _last(lambda h, L: h[:, -1]), _wrong_last_padded_step),
        Mistake("h[:, lengths - 1] picks every chosen step for every sequence, (N, N, H): index both axes "
                "together, with one index tensor for the sequences and one for the steps (hint 2 under the "
                "exercise).", _last(lambda h, L: h[:, L - 1]), _wrong_last_all_pairs),
    ],
    hints={"last": "some rows are not their sequence's state after its last real step, and no common mistake "
                   "explains which: row n must be h[n, lengths[n] - 1] (steps count from 0). Print lengths and "
                   "the steps you pick on a small batch.",
           "crash": "the last real step of sequence n is lengths[n] - 1 (steps count from 0).",
           "dh": "only the picked positions of h should get a gradient; use indexing, not a copy via NumPy."},
)

# --- 7.5: running an nn.LSTM over a packed batch -------------------------------------------


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

        from course_utils.checking.conventions import build_recurrent

        plan = case.options["plan"]
        lstm = build_recurrent(*plan["modules"]["lstm"])
        with torch.no_grad():
            last = run(lstm, torch.from_numpy(case.args["x"]), torch.from_numpy(case.args["lengths"]))
        return {"last": last.numpy()}
    return outputs


def _pack(x, lengths, batch_first=True):
    from torch.nn.utils.rnn import pack_padded_sequence

    return pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)


def _unpacked_h_n(lstm, x, lengths):  # not packed: h_n comes after the padding
    return lstm(x)[1][0][-1]


def _first_layer(lstm, x, lengths):  # h_n[0], the first layer's state
    return lstm(_pack(x, lengths))[1][0][0]


def _padded_output_last_step(lstm, x, lengths):  # out[:, -1], zero after a shorter sequence's end
    from torch.nn.utils.rnn import pad_packed_sequence

    out, _ = pad_packed_sequence(lstm(_pack(x, lengths))[0], batch_first=True, total_length=x.shape[1])
    return out[:, -1]


def _time_major_pack(lstm, x, lengths):  # packed without batch_first=True
    return lstm(_pack(x, lengths, batch_first=False))[1][0][-1]


final_states_packed = _Exercise07(
    "final_states_packed", "torch_function", "final_states_packed", _packed_cases, ("last", "dx"),
    mistakes=[
        Mistake("h_n of a padded batch is the state after the last *padded* step, not after each sequence's "
                "end: pack x first (nn.utils.rnn.pack_padded_sequence) and run the LSTM on the packed batch.",
                _packed_mistake(_unpacked_h_n), _unpacked_h_n),
        Mistake("h_n[0] is the state of the first layer; with several layers the top layer's is h_n[-1].",
                _packed_mistake(_first_layer), _first_layer),
        Mistake("pad_packed_sequence puts zeros after each sequence's end, so out[:, -1] is zero for every "
                "sequence shorter than the batch: return h_n[-1], the LSTM's last state of each sequence.",
                _packed_mistake(_padded_output_last_step), _padded_output_last_step),
        Mistake("x was packed as if it were time-major (T, N, D): pass batch_first=True to "
                "pack_padded_sequence, since x is (N, T, D).", _packed_mistake(_time_major_pack)),
    ],
    hints={"last": "the states are not each sequence's state after its own last step, and no common mistake "
                   "explains how they differ: check that the LSTM runs on the packed batch and which rows of h_n "
                   "you return (hints 2 and 3 under the exercise).",
           "last.shape": "h_n has one row per layer, (layers, N, H): return the top layer only, h_n[-1], (N, H).",
           "crash": "pack_padded_sequence must be told that x is batch-first (batch_first=True); it takes lengths "
                    "in any order only with enforce_sorted=False, and wants them on the CPU (lengths.cpu()).",
           "dx": "the padding must never be read: run the LSTM on the packed batch, not on x itself."},
    crash_matches=[
        (r"enforce_sorted", "pack_padded_sequence wants the lengths sorted, longest first, unless it is given "
                            "enforce_sorted=False: the lengths of this batch come in any order."),
        (r"exceeds dimension size|input\.size\(-1\)|input_size", "pack_padded_sequence read x as time-major, "
         "(T, N, D), its default: x is (N, T, D), so pass batch_first=True."),
        (r"\bcpu\b|\bCPU\b", "pack_padded_sequence wants the lengths as a CPU tensor: pass lengths.cpu()."),
    ],
)
