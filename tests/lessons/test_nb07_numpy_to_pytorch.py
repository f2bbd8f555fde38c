"""Proofs of notebook 07's checks (PyTorch: load_rnn_weights, load_gru_weights, LSTMCell,
last_hidden_state, final_states_packed), and what is special to them: a loader that loads an
nn.LSTM too, a module with wrong parameter names told in plain words, the ``modules`` parameter
of the ``torch_function`` convention (a fixed-weight recurrent layer built in the grader's child and
passed to the learner's function), and the grading of these exercises in the grader's sandbox.

The catalogued mistakes are proven from course_utils/lessons/nb07_numpy_to_pytorch/checks.py; here
are correct code written differently and the wrong code that no catalogue entry names.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import reference as ref
from course_utils.check import EXERCISES
from course_utils.checking.conventions import ReturnError, build_recurrent, run_plan
from proofs import Proofs, default_stub, run


class Skeleton(nn.Module):
    """The visible part of exercise 7.4: parameters Wx, Wh, b."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        D, H = input_size, hidden_size
        self.Wx = nn.Parameter(torch.randn(D, 4 * H) / D**0.5)
        self.Wh = nn.Parameter(torch.randn(H, 4 * H) / H**0.5)
        self.b = nn.Parameter(torch.zeros(4 * H))


class StubCell(Skeleton):
    """The hand-out: the skeleton with a forward that still raises NotImplementedError."""

    def forward(self, x, prev_h, prev_c):
        raise NotImplementedError("Exercise 7.4: LSTMCell")


def stub(name):
    """As handed out: the cell has its parameters (the check loads them), its forward raises."""
    return StubCell if name == "LSTMCell" else default_stub(name)


proofs = Proofs("nb07_numpy_to_pytorch", stub=stub)
correct, wrong = proofs.correct, proofs.wrong


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# --- 7.1 load_rnn_weights -----------------------------------------------------------------


def load_rnn_weights_bias_in_hh(rnn, Wx, Wh, b):
    """b in the other bias: only the sum of the two counts."""
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(t(Wx.T))
        rnn.weight_hh_l0.copy_(t(Wh.T))
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.copy_(t(b))


def load_rnn_weights_state_dict(rnn, Wx, Wh, b):
    """Through load_state_dict, with half of b in each bias."""
    dtype = rnn.weight_ih_l0.dtype
    rnn.load_state_dict({"weight_ih_l0": t(Wx.T).to(dtype), "weight_hh_l0": t(Wh.T).to(dtype),
                         "bias_ih_l0": t(b / 2).to(dtype), "bias_hh_l0": t(b / 2).to(dtype)})



def load_rnn_weights_without_transposes(rnn, Wx, Wh, b):
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(t(Wx))  # (D, H) into (H, D)
        rnn.weight_hh_l0.copy_(t(Wh))
        rnn.bias_ih_l0.copy_(t(b))
        rnn.bias_hh_l0.zero_()



def load_rnn_weights_without_no_grad(rnn, Wx, Wh, b):
    rnn.weight_ih_l0.copy_(t(Wx.T))
    rnn.weight_hh_l0.copy_(t(Wh.T))
    rnn.bias_ih_l0.copy_(t(b))
    rnn.bias_hh_l0.zero_()


def load_rnn_weights_ifog_reordered(rnn, Wx, Wh, b):
    """Reverses the columns, as if PyTorch's order differed from the course's: no mistake models it."""
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(t(Wx[:, ::-1].T))
        rnn.weight_hh_l0.copy_(t(Wh[:, ::-1].T))
        rnn.bias_ih_l0.copy_(t(b[::-1]))
        rnn.bias_hh_l0.zero_()


def load_rnn_weights_loads_an_lstm_too(lstm_or_rnn, Wx, Wh, b):
    """The notebook runs the learner's load_rnn_weights on an nn.LSTM: the reference does the same."""
    ref.load_rnn_weights(lstm_or_rnn, Wx, Wh, b)


correct("load_rnn_weights", load_rnn_weights_bias_in_hh)
correct("load_rnn_weights", load_rnn_weights_state_dict)
wrong("load_rnn_weights", load_rnn_weights_without_transposes, hint="a shape does not fit",
      message="your code raised an error")
wrong("load_rnn_weights", load_rnn_weights_without_no_grad, hint="inside `with torch.no_grad():`",
      message="your code raised an error")
wrong("load_rnn_weights", load_rnn_weights_ifog_reordered, hint="no common mistake explains how it differs",
      message="`h` is wrong", output="h")


def test_load_rnn_weights_loads_an_nn_lstm_too():
    """Notebook 07 says so and runs it: the same parameter names, 4H rows in the course's gate order."""
    g = np.random.default_rng(0)
    x, h0 = g.standard_normal((2, 3, 4)), g.standard_normal((2, 5))
    Wx, Wh, b = g.standard_normal((4, 20)), g.standard_normal((5, 20)), g.standard_normal(20)
    lstm = nn.LSTM(4, 5, batch_first=True).double()
    load_rnn_weights_loads_an_lstm_too(lstm, Wx, Wh, b)
    h0_t = t(h0)[None]
    with torch.no_grad():
        h = lstm(t(x), (h0_t, torch.zeros_like(h0_t)))[0].numpy()
    np.testing.assert_allclose(h, ref.lstm_forward(x, h0, Wx, Wh, b)[0], rtol=0, atol=1e-12)

# --- 7.3 load_gru_weights -----------------------------------------------------------------


def load_gru_weights_state_dict(gru, Wx, Wh, bx, bh):
    dtype = gru.weight_ih_l0.dtype
    gru.load_state_dict({"weight_ih_l0": t(Wx.T).to(dtype), "weight_hh_l0": t(Wh.T).to(dtype),
                         "bias_ih_l0": t(bx).to(dtype), "bias_hh_l0": t(bh).to(dtype)})



def load_gru_weights_Wh_untransposed(gru, Wx, Wh, bx, bh):
    with torch.no_grad():
        gru.weight_ih_l0.copy_(t(Wx.T))
        gru.weight_hh_l0.copy_(t(Wh))  # (H, 3H) into (3H, H)
        gru.bias_ih_l0.copy_(t(bx))
        gru.bias_hh_l0.copy_(t(bh))



correct("load_gru_weights", load_gru_weights_state_dict)
wrong("load_gru_weights", load_gru_weights_Wh_untransposed, hint="a shape does not fit",
      message="your code raised an error")

# --- 7.4 LSTMCell -------------------------------------------------------------------------


class LSTMCellSlices(Skeleton):
    """Gate by gate, each with its own slice of the weights and a hand-written sigmoid."""

    def forward(self, x, prev_h, prev_c):
        H = prev_h.shape[1]
        gate = [x @ self.Wx[:, k * H:(k + 1) * H] + prev_h @ self.Wh[:, k * H:(k + 1) * H] + self.b[k * H:(k + 1) * H]
                for k in range(4)]
        sig = lambda z: 1 / (1 + torch.exp(-z))  # noqa: E731
        next_c = sig(gate[1]) * prev_c + sig(gate[0]) * torch.tanh(gate[2])
        return sig(gate[3]) * torch.tanh(next_c), next_c


class LSTMCellWithTorchCat(Skeleton):
    """One product of the concatenated [x, prev_h] with the stacked weights."""

    def forward(self, x, prev_h, prev_c):
        a = torch.cat([x, prev_h], dim=1) @ torch.cat([self.Wx, self.Wh], dim=0) + self.b
        i, f, g, o = torch.split(a, prev_h.shape[1], dim=1)
        next_c = torch.addcmul(f.sigmoid() * prev_c, i.sigmoid(), g.tanh())
        return o.sigmoid() * next_c.tanh(), next_c



class LSTMCellThroughNumpy(Skeleton):
    """The right numbers, computed in NumPy: autograd cannot see through them."""

    def forward(self, x, prev_h, prev_c):
        next_h, next_c, _ = ref.lstm_step_forward(x.detach().numpy(), prev_h.detach().numpy(), prev_c.detach().numpy(),
                                                  self.Wx.detach().numpy(), self.Wh.detach().numpy(),
                                                  self.b.detach().numpy())
        return torch.from_numpy(next_h), torch.from_numpy(next_c)


class LSTMCellDetachedC(Skeleton):
    """Detaches prev_c's contribution: right values, a gradient of prev_c that is zero."""

    def forward(self, x, prev_h, prev_c):
        i, f, g, o = (x @ self.Wx + prev_h @ self.Wh + self.b).chunk(4, dim=-1)
        next_c = torch.sigmoid(f) * prev_c.detach() + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(next_c), next_c


class LSTMCellRenamed(nn.Module):
    """Right maths, but its own parameter names and a stacked layout."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.W = nn.Parameter(torch.randn(input_size + hidden_size, 4 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))

    def forward(self, x, prev_h, prev_c):
        i, f, g, o = (torch.cat([x, prev_h], 1) @ self.W + self.bias).chunk(4, dim=-1)
        next_c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(next_c), next_c


class LSTMCellTransposedWx(nn.Module):
    """PyTorch's layout, (4H, D), instead of the course's."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.Wx = nn.Parameter(torch.randn(4 * hidden_size, input_size))
        self.Wh = nn.Parameter(torch.randn(hidden_size, 4 * hidden_size))
        self.b = nn.Parameter(torch.zeros(4 * hidden_size))

    def forward(self, x, prev_h, prev_c):
        raise AssertionError("never reached: the parameters are checked first")


class LSTMCellChunkAlongTheBatch(Skeleton):
    """Splits a along axis 0, the batch, as if a were (4H, N)."""

    def forward(self, x, prev_h, prev_c):
        i, f, g, o = (x @ self.Wx + prev_h @ self.Wh + self.b).chunk(4, dim=0)
        next_c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(next_c), next_c


class LSTMCellForgetsPrevC(Skeleton):
    """next_c without the forget gate's term: no catalogued mistake."""

    def forward(self, x, prev_h, prev_c):
        i, f, g, o = (x @ self.Wx + prev_h @ self.Wh + self.b).chunk(4, dim=-1)
        next_c = torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(next_c), next_c


correct("LSTMCell", LSTMCellSlices)
correct("LSTMCell", LSTMCellWithTorchCat)

wrong("LSTMCell", LSTMCellThroughNumpy, hint="do not depend on the inputs through autograd",
      message="does not have the expected form")
wrong("LSTMCell", LSTMCellChunkAlongTheBatch, hint="split it along its last axis",
      message="your code raised an error")
wrong("LSTMCell", LSTMCellForgetsPrevC, hint="no common mistake", message="`next_h` is wrong", output="next_h")
wrong("LSTMCell", LSTMCellDetachedC, hint="no .detach()", message="`dprev_c` is wrong", output="dprev_c")
wrong("LSTMCell", LSTMCellRenamed, hint="missing Wh, Wx, b; unexpected W, bias",
      message="does not have the expected form")
wrong("LSTMCell", LSTMCellTransposedWx, hint="Wx has shape (24, 5) instead of (5, 24)",
      message="does not have the expected form")

# --- 7.5 last_hidden_state ----------------------------------------------------------------


def last_hidden_state_gather(h, lengths):
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[2])  # (N, 1, H)
    return h.gather(1, index).squeeze(1)


def last_hidden_state_loop(h, lengths):
    return torch.stack([h[n, int(length) - 1] for n, length in enumerate(lengths)])


def last_hidden_state_off_by_one(h, lengths):
    return h[torch.arange(h.shape[0]), torch.clamp(lengths, max=h.shape[1] - 1)]


def last_hidden_state_through_numpy(h, lengths):
    return torch.from_numpy(h.detach().numpy()[np.arange(h.shape[0]), lengths.numpy() - 1])


correct("last_hidden_state", last_hidden_state_gather)
correct("last_hidden_state", last_hidden_state_loop)
wrong("last_hidden_state", last_hidden_state_off_by_one, hint="h[n, lengths[n] - 1]", message="`last` is wrong",
      output="last")
wrong("last_hidden_state", last_hidden_state_through_numpy, hint="do not depend on the inputs through autograd",
      message="does not have the expected form")

# --- 7.6 final_states_packed --------------------------------------------------------------


def final_states_from_the_padded_run(lstm, x, lengths):
    """Correct for a forward layer: run over the padding, then pick each last real state."""
    out, _ = lstm(x)
    return out[torch.arange(x.shape[0]), lengths - 1]


def final_states_sorted_by_hand(lstm, x, lengths):
    order = torch.argsort(lengths, descending=True)
    packed = nn.utils.rnn.pack_padded_sequence(x[order], lengths[order], batch_first=True)
    _, (h_n, _) = lstm(packed)
    return h_n[-1][torch.argsort(order)]


def final_states_every_layer(lstm, x, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return lstm(packed)[1][0]


def final_states_without_batch_first(lstm, x, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    return lstm(packed)[1][0][-1]


def final_states_sorted_lengths_required(lstm, x, lengths):
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True)
    return lstm(packed)[1][0][-1]


correct("final_states_packed", final_states_from_the_padded_run)
correct("final_states_packed", final_states_sorted_by_hand)
wrong("final_states_packed", final_states_every_layer, hint="return the top layer only",
      message="`last` has the wrong shape", output="last")
wrong("final_states_packed", final_states_without_batch_first, hint="batch_first=True",
      message="your code raised an error")
wrong("final_states_packed", final_states_sorted_lengths_required, hint="enforce_sorted=False",
      message="enforce_sorted")


# --- what is special to these checks ------------------------------------------------------


@pytest.mark.parametrize("exercise, words, output", [("load_rnn_weights", "b went in twice", "h"),
                                                     ("load_rnn_weights", "the network with Wh transposed", "h"),
                                                     ("LSTMCell", "in the order i, f, o, g:", "next_h")])
def test_a_catalogued_mistake_is_told_on_the_output_it_changes(exercise, words, output):
    ex = EXERCISES[exercise]
    (mistake,) = [m for m in ex.mistakes if words in m.hint and m.implementation is not None]
    verdict = run(exercise, *ex.with_reference(mistake.implementation))
    assert verdict.status == "wrong" and verdict.output == output, verdict.message


def test_a_cell_with_wrong_parameter_names_is_told_which_names_are_expected():
    verdict = run("LSTMCell", LSTMCellRenamed)
    assert verdict.status == "wrong"
    assert "the parameters of LSTMCell are not the expected ones: missing Wh, Wx, b; unexpected W, bias." in verdict.message


class PlainCell:
    """The right maths in a plain class: no nn.Module, so no parameters to load or train."""

    def __init__(self, input_size, hidden_size):
        self.cell = LSTMCellSlices(input_size, hidden_size)

    def __call__(self, x, prev_h, prev_c):
        return self.cell(x, prev_h, prev_c)


def test_a_class_that_is_not_a_module_is_refused_in_words():
    verdict = run("LSTMCell", PlainCell)
    assert verdict.status == "wrong" and "should be a subclass of torch.nn.Module" in verdict.message


def test_returning_a_numpy_array_is_refused_in_words():
    verdict = run("last_hidden_state", lambda h, lengths: h.detach().numpy()[np.arange(len(h)), lengths.numpy() - 1])
    assert verdict.status == "wrong" and "should be a torch.Tensor" in verdict.message


# --- the `modules` parameter of the torch_function convention ------------------------------


def test_plans_with_modules_encode_for_the_grader():
    sandbox = pytest.importorskip("course_utils.grading.sandbox")
    case = EXERCISES["final_states_packed"].cases(np.random.default_rng(0))[0]
    arrays = {}
    json.dumps(sandbox.encode(EXERCISES["final_states_packed"].plan(case)[1], arrays))
    assert arrays


def test_build_recurrent_makes_a_batch_first_float64_layer_with_the_given_weights():
    from course_utils.lessons.nb07_numpy_to_pytorch.checks import lstm_state

    state = lstm_state(np.random.default_rng(0), D=3, H=4, layers=2)
    lstm = build_recurrent("LSTM", {"D": 3, "H": 4, "layers": 2}, state)
    assert isinstance(lstm, nn.LSTM) and lstm.batch_first and lstm.num_layers == 2
    for name, value in state.items():
        assert getattr(lstm, name).dtype == torch.float64
        np.testing.assert_array_equal(getattr(lstm, name).detach().numpy(), value)
    gru = build_recurrent("GRU", {"D": 2, "H": 3, "bidirectional": True},
                          {k: v.detach().numpy() for k, v in nn.GRU(2, 3, bidirectional=True).double().state_dict().items()})
    assert gru.bidirectional and gru.batch_first
    with pytest.raises(ValueError):
        build_recurrent("Transformer", {"D": 2, "H": 3}, {})


def _plan(**extra):
    from course_utils.lessons.nb07_numpy_to_pytorch.checks import lstm_state

    g = np.random.default_rng(1)
    x = g.standard_normal((2, 3, 2))
    return {"args": {"x": x, "lengths": np.array([3, 1])}, "returns": ("last",), "name": "f",
            "modules": {"lstm": ("LSTM", {"D": 2, "H": 4}, lstm_state(g, 2, 4))}, **extra}


def test_modules_are_passed_first_and_fixed_by_the_plan():
    seen = {}

    def f(lstm, x, lengths):
        seen.update(lstm=lstm, x=x, lengths=lengths)
        return lstm(x)[0][:, -1]

    params = _plan()
    outputs, modified = run_plan((f,), "torch_function", params)
    assert isinstance(seen["lstm"], nn.LSTM) and seen["x"].shape == (2, 3, 2) and seen["lengths"].tolist() == [3, 1]
    expected = build_recurrent(*params["modules"]["lstm"])(torch.from_numpy(params["args"]["x"]))[0][:, -1]
    np.testing.assert_allclose(outputs["last"], expected.detach().numpy(), rtol=0, atol=1e-15)
    assert modified == []


def test_a_function_that_changes_the_modules_weights_is_reported():
    def f(lstm, x, lengths):
        with torch.no_grad():
            lstm.bias_hh_l0.zero_()
        return lstm(x)[0][:, -1]

    _, modified = run_plan((f,), "torch_function", _plan())
    assert modified == ["lstm"]
    verdict = run("final_states_packed", lambda lstm, x, lengths: (lstm.weight_hh_l0.data.mul_(1.0),
                                                                     ref.final_states_packed(lstm, x, lengths))[1])
    assert verdict.status == "passed", verdict.message  # unchanged values: no complaint
    verdict = run("final_states_packed", lambda lstm, x, lengths: (lstm.weight_hh_l0.data.zero_(),
                                                                     ref.final_states_packed(lstm, x, lengths))[1])
    assert verdict.status == "wrong"


def test_gradients_flow_into_the_inputs_through_the_module():
    outputs, _ = run_plan((ref.final_states_packed,), "torch_function",
                          _plan(douts={"last": np.ones((2, 4))}, grad_wrt=("x",)))
    assert outputs["dx"].shape == (2, 3, 2)
    assert np.all(outputs["dx"][1, 1:] == 0) and np.any(outputs["dx"][1, 0] != 0)  # padding gets no gradient


def test_a_return_that_is_not_a_tensor_is_refused():
    with pytest.raises(ReturnError):
        run_plan((lambda lstm, x, lengths: [1.0],), "torch_function", _plan())


# --- the instructor's grader --------------------------------------------------------------


SOLUTION_CELLS = [
    "import numpy as np\nimport torch\nfrom torch import nn\nfrom course_utils import check",
    "# EXERCISE 7.4: LSTMCell (3 points)\nclass LSTMCell(nn.Module):\n"
    "    def __init__(self, input_size, hidden_size):\n        super().__init__()\n"
    "        D, H = input_size, hidden_size\n        self.Wx = nn.Parameter(torch.randn(D, 4 * H))\n"
    "        self.Wh = nn.Parameter(torch.randn(H, 4 * H))\n        self.b = nn.Parameter(torch.zeros(4 * H))\n\n"
    "    def forward(self, x, prev_h, prev_c):\n        ### BEGIN SOLUTION\n"
    "        i, f, g, o = (x @ self.Wx + prev_h @ self.Wh + self.b).chunk(4, dim=-1)\n"
    "        next_c = torch.sigmoid(f) * prev_c + torch.sigmoid(i) * torch.tanh(g)\n"
    "        next_h = torch.sigmoid(o) * torch.tanh(next_c)\n        ### END SOLUTION\n        return next_h, next_c",
    "check.LSTMCell(LSTMCell)",
    "# EXERCISE 7.6: final_states_packed (2 points)\ndef final_states_packed(lstm, x, lengths):\n"
    "    ### BEGIN SOLUTION\n"
    "    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)\n"
    "    return lstm(packed)[1][0][-1]\n    ### END SOLUTION",
    "check.final_states_packed(final_states_packed)",
    "for step in range(10**9):  # a training loop: never run by the grader\n    pass",
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader's sandbox is Linux's")
def test_the_grader_grades_notebook_07s_kind_of_exercise_in_its_sandbox(tmp_path):
    grading = pytest.importorskip("course_utils.grading")
    import grading_corpus as corpus

    solutions, subs, sol, student = corpus.tiny_course(tmp_path, "07_tiny", SOLUTION_CELLS)
    corpus.write(corpus.hostile(student, sol, "final_states_packed", "return lstm(x)[1][0][-1]"),
                 subs / "cy" / "07_tiny.ipynb")
    limits = grading.Limits(wall=60, cpu=60, memory=2048 << 20)
    results = grading.grade(subs, tmp_path / "out", grading.Options(
        solutions=solutions, seed="test-seed", jobs=2, limits=limits, progress=False))
    totals = {s["student"]: s["total"] for s in results["students"]}
    assert totals == {"ada": 5, "bob": 0, "cy": 3}, json.dumps(results["students"], indent=1)[:3000]
    cy = {e["exercise"]: e for e in next(s for s in results["students"] if s["student"] == "cy")["exercises"]}
    assert cy["final_states_packed"]["status"] == "wrong"
    assert "pack x first" in cy["final_states_packed"]["hint"]



globals().update(proofs.tests())  # the proofs of every exercise: tests/proofs.py
