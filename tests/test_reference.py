"""Tests of the reference implementations in course_utils.reference.

The oracle is outside: every reference is compared with PyTorch (values and autograd, in
float64, with the NumPy weights copied into torch's layers) and with centred differences
computed here, never with another piece of course_utils.

Sections follow the notebooks:
    00 basics (sigmoid, softmax)
    01-02 RNN, temporal affine, gradient checking
    03 gradient clipping
    04 language model (embedding, temporal softmax loss, sampling, Adam)
    05 LSTM
    06 GRU
    all: float32 stays float32, inputs are never modified
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_utils.reference as R

# float64 against PyTorch: both compute the same expression in double precision, so they
# agree to ~1e-15; 1e-9 leaves room for different summation orders, nothing more.
TOL = 1e-9
# Analytic gradients against centred differences with step H_STEP = 1e-6 on O(1) values:
# truncation error ~ h^2 |f'''| / 6 ~ 1e-13, rounding error ~ eps |L| / h ~ 1e-9 at worst.
H_STEP = 1e-6
NUM_TOL = 1e-8

# (N, T, D, H) for comparisons with PyTorch, and smaller ones for centred differences.
SHAPES = [(1, 1, 1, 1), (3, 5, 4, 6), (2, 7, 3, 1)]
SMALL_SHAPES = [(1, 1, 1, 1), (2, 3, 3, 2), (1, 4, 2, 1)]


def shape_id(shape):
    return "N{}-T{}-D{}-H{}".format(*shape)


# ----------------------------------------------------------------------------- helpers


def make_rng(seed=0):
    return np.random.default_rng(seed)


def randn(rng, *shape, scale=1.0, dtype=np.float64):
    """Standard normal entries times scale, in the given dtype."""
    return (scale * rng.standard_normal(shape)).astype(dtype)


def assert_close(actual, expected, tol, what):
    """Same shape, and largest absolute difference at most tol."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    err = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert err <= tol, f"{what}: max abs difference {err:.3g} > {tol:g}"


def to_torch(a, requires_grad=False):
    """A float64 torch copy of a NumPy array (never shares memory with it)."""
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=requires_grad)


def to_numpy(t):
    return t.detach().numpy().copy()


def centred_difference(loss, args, wrt, h=H_STEP):
    """Gradients of the scalar loss(*args) with respect to args[k], for every k in wrt.

    (loss(a + h e_i) - loss(a - h e_i)) / 2h entry by entry, on float64 copies of the args.
    """
    grads = []
    for k in wrt:
        a = np.array(args[k], dtype=np.float64)  # a private copy that we perturb
        perturbed = list(args)
        perturbed[k] = a
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            plus = loss(*perturbed)
            a[i] = old - h
            minus = loss(*perturbed)
            a[i] = old
            g[i] = (plus - minus) / (2 * h)
        grads.append(g)
    return grads


def snapshot(obj):
    """A deep copy of the arrays inside nested tuples, lists and dicts."""
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(o) for o in obj)
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    return obj


def arrays_in(obj):
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from arrays_in(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from arrays_in(o)


def assert_unchanged(obj, before, what):
    now, then = list(arrays_in(obj)), list(arrays_in(before))
    assert len(now) == len(then), f"{what}: the structure of the inputs changed"
    for k, (a, b) in enumerate(zip(now, then)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: input array {k} changed dtype or shape"
        assert np.array_equal(a, b, equal_nan=True), f"{what}: input array {k} was modified"


# --- PyTorch twins of the recurrent layers


def torch_layer(cls, Wx, Wh, b_ih, b_hh=None):
    """A float64 PyTorch layer or cell of class cls that holds the NumPy weights.

    PyTorch multiplies weights from the left: weight_ih (gates*H, D) = Wx.T and
    weight_hh (gates*H, H) = Wh.T, with the same gate order (i, f, g, o and r, z, n).
    It has two biases; the NumPy RNN and LSTM have one, so bias_ih = b and bias_hh = 0.
    The GRU has both: bias_ih = bx, bias_hh = bh.
    """
    D, H = Wx.shape[0], Wh.shape[0]
    is_cell = cls in (nn.RNNCell, nn.LSTMCell, nn.GRUCell)
    if is_cell:
        layer = cls(D, H, dtype=torch.float64)
    else:
        layer = cls(D, H, batch_first=True, dtype=torch.float64)
    sfx = "" if is_cell else "_l0"
    with torch.no_grad():
        getattr(layer, "weight_ih" + sfx).copy_(to_torch(Wx.T))
        getattr(layer, "weight_hh" + sfx).copy_(to_torch(Wh.T))
        getattr(layer, "bias_ih" + sfx).copy_(to_torch(b_ih))
        getattr(layer, "bias_hh" + sfx).copy_(to_torch(np.zeros_like(b_ih) if b_hh is None else b_hh))
    return layer


def weight_grads(layer, both_biases=False):
    """[dWx, dWh, dbias_ih(, dbias_hh)] of a torch layer after backward, in NumPy's layout."""
    sfx = "" if hasattr(layer, "weight_ih") else "_l0"
    grads = [
        to_numpy(getattr(layer, "weight_ih" + sfx).grad).T,
        to_numpy(getattr(layer, "weight_hh" + sfx).grad).T,
        to_numpy(getattr(layer, "bias_ih" + sfx).grad),
    ]
    if both_biases:
        grads.append(to_numpy(getattr(layer, "bias_hh" + sfx).grad))
    return grads


@dataclass
class Layer:
    """A forward/backward pair of the reference, with what it takes to test it.

    inputs(rng, N, T, D, H, dtype) -> the forward's arguments.
    twin(*args) -> (list of torch outputs, function returning the torch gradients after
        backward, in the order the reference's backward returns them).
    wrt: indices of the forward's arguments that the backward returns gradients for.
    """

    forward: Callable
    backward: Callable
    inputs: Callable
    twin: Callable
    wrt: tuple
    grad_names: tuple


def as_tuple(grads):
    """A backward returns a tuple of gradients, or one array (embedding_backward's dW)."""
    return (grads,) if isinstance(grads, np.ndarray) else tuple(grads)


def upstream(rng, outs, dtype=np.float64):
    return [randn(rng, *np.shape(o), dtype=dtype) for o in outs]


def check_forward_against_torch(layer, shape, seed=0):
    args = layer.inputs(make_rng(seed), *shape)
    outs = layer.forward(*args)[:-1]
    with torch.no_grad():
        expected, _ = layer.twin(*args)
    assert len(outs) == len(expected)
    for k, (out, exp) in enumerate(zip(outs, expected)):
        assert_close(out, to_numpy(exp), TOL, f"{layer.forward.__name__} output {k}")


def check_backward_against_autograd(layer, shape, seed=0):
    rng = make_rng(seed)
    args = layer.inputs(rng, *shape)
    *outs, cache = layer.forward(*args)
    douts = upstream(rng, outs)
    grads = as_tuple(layer.backward(*douts, cache))

    touts, torch_grads = layer.twin(*args)
    sum((t * to_torch(d)).sum() for t, d in zip(touts, douts)).backward()
    expected = torch_grads()
    assert len(grads) == len(expected) == len(layer.grad_names)
    for name, g, e in zip(layer.grad_names, grads, expected):
        assert_close(g, e, TOL, f"{layer.backward.__name__}: {name}")


def check_backward_against_centred_differences(layer, shape, seed=0):
    rng = make_rng(seed)
    args = layer.inputs(rng, *shape)
    *outs, cache = layer.forward(*args)
    douts = upstream(rng, outs)
    grads = as_tuple(layer.backward(*douts, cache))

    def loss(*a):
        return sum(np.sum(o * d) for o, d in zip(layer.forward(*a)[:-1], douts))

    expected = centred_difference(loss, args, layer.wrt)
    for name, g, e in zip(layer.grad_names, grads, expected):
        assert_close(g, e, NUM_TOL, f"{layer.backward.__name__}: {name} against centred differences")


def grad(t):
    return to_numpy(t.grad)


# ----------------------------------------------------------------------------- 00 basics


def no_float_warnings():
    """Overflow, division by zero and invalid operations raise instead of warning."""
    return np.errstate(over="raise", divide="raise", invalid="raise")


def test_sigmoid_matches_torch_including_huge_inputs():
    x = np.concatenate([randn(make_rng(0), 50, scale=5.0), [-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0]])
    with no_float_warnings():
        y = R.sigmoid(x)
    assert np.all(np.isfinite(y))
    assert_close(y, to_numpy(torch.sigmoid(to_torch(x))), TOL, "sigmoid")
    assert y[-1] == 1.0 and y[-7] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_of_plus_minus_1000_is_finite(dtype):
    with no_float_warnings():
        y = R.sigmoid(np.array([-1000.0, 1000.0], dtype=dtype))
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, [0.0, 1.0])


@pytest.mark.parametrize("shape", [(7,), (4, 6), (2, 3, 5)], ids=["1d", "2d", "3d"])
def test_softmax_over_last_axis_matches_torch(shape):
    scores = randn(make_rng(1), *shape, scale=3.0)
    p = R.softmax(scores)
    assert_close(p, to_numpy(torch.softmax(to_torch(scores), dim=-1)), TOL, f"softmax {shape}")
    assert_close(p.sum(axis=-1), np.ones(shape[:-1]), TOL, "softmax row sums")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_huge_scores_is_finite(dtype):
    scores = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 0.0]], dtype=dtype)
    with no_float_warnings():
        p = R.softmax(scores)
    assert p.dtype == dtype and np.all(np.isfinite(p))
    expected = to_numpy(torch.softmax(to_torch(scores), dim=-1))
    assert_close(p, expected, 1e-6 if dtype == np.float32 else TOL, "softmax of huge scores")


# ----------------------------------------------------------------------------- 01-02 RNN


def rnn_step_inputs(rng, N, T, D, H, dtype=np.float64):
    return (randn(rng, N, D, dtype=dtype), randn(rng, N, H, scale=0.5, dtype=dtype),
            randn(rng, D, H, scale=0.5, dtype=dtype), randn(rng, H, H, scale=0.5, dtype=dtype),
            randn(rng, H, scale=0.5, dtype=dtype))


def rnn_inputs(rng, N, T, D, H, dtype=np.float64):
    _, h0, Wx, Wh, b = rnn_step_inputs(rng, N, T, D, H, dtype)
    return randn(rng, N, T, D, dtype=dtype), h0, Wx, Wh, b


def rnn_step_twin(x, prev_h, Wx, Wh, b):
    cell = torch_layer(nn.RNNCell, Wx, Wh, b)
    x, prev_h = to_torch(x, True), to_torch(prev_h, True)
    return [cell(x, prev_h)], lambda: [grad(x), grad(prev_h), *weight_grads(cell)]


def rnn_twin(x, h0, Wx, Wh, b):
    rnn = torch_layer(nn.RNN, Wx, Wh, b)
    x, h0 = to_torch(x, True), to_torch(h0, True)
    h, _ = rnn(x, h0[None])  # PyTorch's h0 is (num_layers, N, H)
    return [h], lambda: [grad(x), grad(h0), *weight_grads(rnn)]


def affine_inputs(rng, N, T, D, H, dtype=np.float64):
    # x (N, T, H) -> out (N, T, M) with M = D
    return randn(rng, N, T, H, dtype=dtype), randn(rng, H, D, dtype=dtype), randn(rng, D, dtype=dtype)


def affine_twin(x, W, b):
    x, W_t, b = to_torch(x, True), to_torch(W.T, True), to_torch(b, True)
    return [F.linear(x, W_t, b)], lambda: [grad(x), grad(W_t).T, grad(b)]


RNN_LAYERS = {
    "rnn_step": Layer(R.rnn_step_forward, R.rnn_step_backward, rnn_step_inputs, rnn_step_twin,
                      (0, 1, 2, 3, 4), ("dx", "dprev_h", "dWx", "dWh", "db")),
    "rnn": Layer(R.rnn_forward, R.rnn_backward, rnn_inputs, rnn_twin,
                 (0, 1, 2, 3, 4), ("dx", "dh0", "dWx", "dWh", "db")),
    "temporal_affine": Layer(R.temporal_affine_forward, R.temporal_affine_backward, affine_inputs,
                             affine_twin, (0, 1, 2), ("dx", "dW", "db")),
}


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", RNN_LAYERS)
def test_rnn_forward_matches_torch(name, shape):
    check_forward_against_torch(RNN_LAYERS[name], shape)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", RNN_LAYERS)
def test_rnn_backward_matches_autograd(name, shape):
    check_backward_against_autograd(RNN_LAYERS[name], shape)


@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", RNN_LAYERS)
def test_rnn_backward_matches_centred_differences(name, shape):
    check_backward_against_centred_differences(RNN_LAYERS[name], shape)


def test_rnn_forward_feeds_each_state_into_the_next_step():
    x, h0, Wx, Wh, b = rnn_inputs(make_rng(2), 2, 4, 3, 5)
    h, _ = R.rnn_forward(x, h0, Wx, Wh, b)
    prev_h = h0
    for t in range(x.shape[1]):
        prev_h, _ = R.rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        assert_close(h[:, t], prev_h, TOL, f"rnn_forward step {t}")


# --- numerical_gradient (02)


def _elementwise(x, dout):
    return lambda x: np.sin(x) * x**2, dout * (np.cos(x) * x**2 + 2 * x * np.sin(x))


def _matrix(x, dout):
    A = randn(make_rng(3), x.shape[-1], dout.shape[-1])
    return lambda x: np.tanh(x @ A), (dout * (1 - np.tanh(x @ A) ** 2)) @ A.T


def _row_sum(x, dout):
    # f(x) = x * sum_j x_j along the last axis
    s = x.sum(axis=-1, keepdims=True)
    return lambda x: x * x.sum(axis=-1, keepdims=True), dout * s + (dout * x).sum(axis=-1, keepdims=True)


NUMGRAD_CASES = {  # name: (x shape, dout shape, builder of (f, analytic gradient))
    "1d": ((6,), (6,), _elementwise),
    "2d": ((3, 4), (3, 2), _matrix),
    "3d": ((2, 3, 4), (2, 3, 4), _row_sum),
}


@pytest.mark.parametrize("case", NUMGRAD_CASES)
def test_numerical_gradient_matches_analytic_and_leaves_x_alone(case):
    x_shape, dout_shape, build = NUMGRAD_CASES[case]
    rng = make_rng(4)
    x, dout = randn(rng, *x_shape), randn(rng, *dout_shape)
    x_before = x.copy()
    f, analytic = build(x, dout)
    g = R.numerical_gradient(f, x, dout)
    np.testing.assert_array_equal(x, x_before)  # bit for bit: not even a rounding residue
    assert g.shape == x.shape and g.dtype == x.dtype and g is not x
    # Default step h = 1e-5: truncation ~ h^2 |f'''| / 6 ~ 1e-10, rounding ~ eps |L| / h ~ 1e-10.
    assert_close(g, analytic, 1e-8, f"numerical_gradient {case}")
    # A non-default step is honoured (and gives the same answer up to the truncation error).
    assert_close(R.numerical_gradient(f, x, dout, h=1e-4), analytic, 1e-6, "numerical_gradient h=1e-4")


# ----------------------------------------------------------------------------- 03 clipping


def clip_inputs(rng, dtype=np.float64):
    return {"Wx": randn(rng, 3, 4, scale=3.0, dtype=dtype), "Wh": randn(rng, 4, 4, scale=3.0, dtype=dtype),
            "b": randn(rng, 4, scale=3.0, dtype=dtype)}


def torch_clip(grads, max_norm):
    params = []
    for g in grads.values():
        p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
        p.grad = to_torch(g)
        params.append(p)
    total = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return {name: to_numpy(p.grad) for name, p in zip(grads, params)}, total


@pytest.mark.parametrize("factor", [0.1, 0.9, 2.0, 10.0], ids=lambda f: f"max_norm={f}*norm")
def test_clip_grad_norm_matches_torch(factor):
    grads = clip_inputs(make_rng(5))
    before = snapshot(grads)
    norm = float(np.sqrt(sum(np.sum(g**2) for g in grads.values())))
    max_norm = factor * norm
    clipped, total = R.clip_grad_norm(grads, max_norm)
    expected, torch_total = torch_clip(grads, max_norm)

    assert isinstance(total, float)
    assert abs(total - torch_total) <= 1e-12 * torch_total
    assert set(clipped) == set(grads)
    # PyTorch scales by max_norm / (total_norm + 1e-6), the spec by max_norm / total_norm: the
    # two differ by the factor (total + 1e-6) / total, i.e. by a relative 1e-6 / total of the
    # clipped value (nothing at all when there is no clipping, where both scales are clamped
    # to 1). So the tolerance is that relative difference of the largest entry, plus rounding.
    for name in grads:
        tol = float(np.max(np.abs(clipped[name]))) * 1e-6 / total + 1e-14
        assert_close(clipped[name], expected[name], tol, f"clip_grad_norm {name}")
        # ... and with PyTorch's epsilon undone, they agree to rounding error.
        if total > max_norm:
            assert_close(clipped[name], expected[name] * (total + 1e-6) / total, 1e-12, f"clip {name}")

    new_norm = float(np.sqrt(sum(np.sum(g**2) for g in clipped.values())))
    if factor < 1:
        assert abs(new_norm - max_norm) <= 1e-12 * max_norm  # exactly max_norm after clipping
    else:
        for name in grads:  # no clipping: the very same values
            np.testing.assert_array_equal(clipped[name], grads[name])

    # New arrays, and the caller's gradients untouched.
    assert_unchanged(grads, before, "clip_grad_norm")
    for name in grads:
        assert not np.shares_memory(clipped[name], grads[name]), f"clip_grad_norm returned {name} itself"


# ----------------------------------------------------------------------------- 04 language model


def embedding_inputs(rng, N, T, D, H, dtype=np.float64):
    V = D + 2
    return rng.integers(0, V, size=(N, T)), randn(rng, V, H, dtype=dtype)


def embedding_twin(x, W):
    W = to_torch(W, True)
    return [F.embedding(torch.as_tensor(x), W)], lambda: [grad(W)]


LM_LAYERS = {
    "embedding": Layer(R.embedding_forward, R.embedding_backward, embedding_inputs, embedding_twin,
                       (1,), ("dW",)),
}


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_embedding_matches_torch_and_autograd(shape):
    check_forward_against_torch(LM_LAYERS["embedding"], shape)
    check_backward_against_autograd(LM_LAYERS["embedding"], shape)


@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=shape_id)
def test_embedding_backward_matches_centred_differences(shape):
    check_backward_against_centred_differences(LM_LAYERS["embedding"], shape)


def test_embedding_backward_adds_up_repeated_tokens():
    rng = make_rng(6)
    x = np.array([[0, 2, 0, 0], [2, 2, 1, 0]])  # 0 four times, 2 three times, 3 never
    W = randn(rng, 4, 3)
    out, cache = R.embedding_forward(x, W)
    assert_close(out, to_numpy(F.embedding(torch.as_tensor(x), to_torch(W))), TOL, "embedding_forward")
    dout = randn(rng, 2, 4, 3)
    dW = R.embedding_backward(dout, cache)
    W_t = to_torch(W, True)
    (F.embedding(torch.as_tensor(x), W_t) * to_torch(dout)).sum().backward()
    assert_close(dW, grad(W_t), TOL, "embedding_backward with repeated ids")
    np.testing.assert_array_equal(dW[3], 0.0)


def softmax_loss_inputs(rng, N=3, T=4, V=5, mask="mixed", scale=3.0):
    scores = randn(rng, N, T, V, scale=scale)
    y = rng.integers(0, V, size=(N, T))
    if mask == "all":
        m = np.ones((N, T), dtype=bool)
    elif mask == "one":
        m = np.zeros((N, T), dtype=bool)
        m[N - 1, T // 2] = True
    else:
        m = rng.random((N, T)) < 0.6
        m[0, 0], m[-1, -1] = True, False  # at least one of each
    return scores, y, m


@pytest.mark.parametrize("mask", ["all", "mixed", "one"])
@pytest.mark.parametrize("scale", [3.0, 1000.0], ids=["normal", "huge_scores"])
def test_temporal_softmax_loss_matches_cross_entropy(mask, scale):
    scores, y, m = softmax_loss_inputs(make_rng(7), mask=mask, scale=scale)
    with no_float_warnings():
        loss, dscores = R.temporal_softmax_loss(scores, y, m)
    assert isinstance(loss, float) and np.isfinite(loss)

    s = to_torch(scores, True)
    sel = torch.as_tensor(m)
    expected = F.cross_entropy(s[sel], torch.as_tensor(y)[sel])  # mean over the masked positions
    expected.backward()
    assert abs(loss - expected.item()) <= TOL * max(1.0, abs(expected.item())), (loss, expected.item())
    assert_close(dscores, grad(s), TOL, "temporal_softmax_loss dscores")
    np.testing.assert_array_equal(dscores[~m], 0.0)


@pytest.mark.parametrize("mask", ["all", "mixed", "one"])
def test_temporal_softmax_loss_gradient_matches_centred_differences(mask):
    scores, y, m = softmax_loss_inputs(make_rng(8), N=2, T=3, V=4, mask=mask)
    _, dscores = R.temporal_softmax_loss(scores, y, m)
    (expected,) = centred_difference(lambda s: R.temporal_softmax_loss(s, y, m)[0], [scores], [0])
    assert_close(dscores, expected, NUM_TOL, "temporal_softmax_loss dscores against centred differences")


def test_sample_with_temperature_zero_is_argmax():
    logits = randn(make_rng(9), 6, 7, scale=3.0)
    for seed in range(3):
        idx = R.sample_with_temperature(logits, 0, make_rng(seed))
        assert idx.shape == (6,) and np.issubdtype(idx.dtype, np.integer)
        np.testing.assert_array_equal(idx, np.argmax(logits, axis=-1))
        np.testing.assert_array_equal(R.sample_with_temperature(logits, 0.0, make_rng(seed)), idx)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sample_with_temperature_frequencies_match_softmax(temperature):
    base = np.array([[2.0, 1.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0, 3.0], [-2.0, 4.0, 1.0, 1.0, 0.0]])
    draws = 20_000
    logits = np.repeat(base, draws, axis=0)  # row k of base is drawn `draws` times
    idx = R.sample_with_temperature(logits, temperature, make_rng(10))
    assert idx.shape == (len(logits),) and np.issubdtype(idx.dtype, np.integer)
    assert idx.min() >= 0 and idx.max() < base.shape[1]
    probs = to_numpy(torch.softmax(to_torch(base) / temperature, dim=-1))
    for k in range(len(base)):
        freq = np.bincount(idx[k * draws:(k + 1) * draws], minlength=base.shape[1]) / draws
        stderr = np.sqrt(probs[k] * (1 - probs[k]) / draws)
        # 5 standard errors: a correct sampler fails this with probability ~1e-6 per entry
        # (and the seed is fixed, so the test is deterministic).
        assert np.all(np.abs(freq - probs[k]) <= 5 * stderr + 1e-12), (k, freq, probs[k])


def test_sample_with_temperature_is_reproducible_and_uses_the_generator():
    logits = randn(make_rng(11), 50, 8)
    a = R.sample_with_temperature(logits, 1.0, make_rng(12))
    b = R.sample_with_temperature(logits, 1.0, make_rng(12))
    c = R.sample_with_temperature(logits, 1.0, make_rng(13))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sample_with_temperature_huge_logits_small_temperature():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 999.0, 0.0]])
    with no_float_warnings():
        idx = R.sample_with_temperature(logits, 0.5, make_rng(14))
    np.testing.assert_array_equal(idx, [0, 1])


# --- Adam (04)


@pytest.mark.parametrize("shape", [(3, 5), (7,), (1, 1)], ids=str)
@pytest.mark.parametrize("hyper", [{"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
                                   {"lr": 0.1, "beta1": 0.5, "beta2": 0.99, "eps": 1e-3}], ids=["default", "other"])
def test_adam_step_matches_torch_adam(shape, hyper):
    # torch.optim.Adam computes lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps),
    # which is the spec's lr * m_hat / (sqrt(v_hat) + eps) written differently.
    rng = make_rng(18)
    param = randn(rng, *shape)
    m, v = np.zeros(shape), np.zeros(shape)
    p = to_torch(param, True)
    opt = torch.optim.Adam([p], lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"])
    for t in range(1, 8):  # t counts from 1
        g = randn(rng, *shape, scale=10.0 ** rng.uniform(-3, 1))  # gradients of varying scale
        param, m, v = R.adam_step(param, g, m, v, t, **hyper)
        p.grad = to_torch(g)
        opt.step()
        state = opt.state[p]
        assert_close(m, to_numpy(state["exp_avg"]), TOL, f"adam_step new_m at t={t}")
        assert_close(v, to_numpy(state["exp_avg_sq"]), TOL, f"adam_step new_v at t={t}")
        assert_close(param, to_numpy(p), TOL, f"adam_step new_param at t={t}")


# ----------------------------------------------------------------------------- 05 LSTM


def lstm_step_inputs(rng, N, T, D, H, dtype=np.float64):
    return (randn(rng, N, D, dtype=dtype), randn(rng, N, H, scale=0.5, dtype=dtype),
            randn(rng, N, H, dtype=dtype), randn(rng, D, 4 * H, scale=0.5, dtype=dtype),
            randn(rng, H, 4 * H, scale=0.5, dtype=dtype), randn(rng, 4 * H, scale=0.5, dtype=dtype))


def lstm_inputs(rng, N, T, D, H, dtype=np.float64):
    _, h0, _, Wx, Wh, b = lstm_step_inputs(rng, N, T, D, H, dtype)
    return randn(rng, N, T, D, dtype=dtype), h0, Wx, Wh, b


def lstm_step_twin(x, prev_h, prev_c, Wx, Wh, b):
    cell = torch_layer(nn.LSTMCell, Wx, Wh, b)
    x, prev_h, prev_c = to_torch(x, True), to_torch(prev_h, True), to_torch(prev_c, True)
    next_h, next_c = cell(x, (prev_h, prev_c))
    return [next_h, next_c], lambda: [grad(x), grad(prev_h), grad(prev_c), *weight_grads(cell)]


def lstm_twin(x, h0, Wx, Wh, b):
    lstm = torch_layer(nn.LSTM, Wx, Wh, b)
    x, h0 = to_torch(x, True), to_torch(h0, True)
    c0 = torch.zeros_like(h0)  # the spec: lstm_forward starts from a zero cell state
    h, _ = lstm(x, (h0[None], c0[None]))
    return [h], lambda: [grad(x), grad(h0), *weight_grads(lstm)]


LSTM_LAYERS = {
    "lstm_step": Layer(R.lstm_step_forward, R.lstm_step_backward, lstm_step_inputs, lstm_step_twin,
                       (0, 1, 2, 3, 4, 5), ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")),
    "lstm": Layer(R.lstm_forward, R.lstm_backward, lstm_inputs, lstm_twin,
                  (0, 1, 2, 3, 4), ("dx", "dh0", "dWx", "dWh", "db")),
}


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", LSTM_LAYERS)
def test_lstm_forward_matches_torch(name, shape):
    # For the step, this compares next_h with the cell's h and next_c with the cell's c.
    check_forward_against_torch(LSTM_LAYERS[name], shape)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", LSTM_LAYERS)
def test_lstm_backward_matches_autograd(name, shape):
    check_backward_against_autograd(LSTM_LAYERS[name], shape)


@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", LSTM_LAYERS)
def test_lstm_backward_matches_centred_differences(name, shape):
    check_backward_against_centred_differences(LSTM_LAYERS[name], shape)


def test_lstm_forward_starts_from_a_zero_cell_state():
    x, h0, Wx, Wh, b = lstm_inputs(make_rng(15), 2, 4, 3, 5)
    # nn.LSTM without hx starts from h0 = c0 = 0.
    h, _ = R.lstm_forward(x, np.zeros_like(h0), Wx, Wh, b)
    with torch.no_grad():
        expected, _ = torch_layer(nn.LSTM, Wx, Wh, b)(to_torch(x))
    assert_close(h, to_numpy(expected), TOL, "lstm_forward from h0 = 0")
    # With a non-zero h0, the first step is one LSTMCell step from (h0, c = 0).
    h, _ = R.lstm_forward(x, h0, Wx, Wh, b)
    with torch.no_grad():
        h1, _ = torch_layer(nn.LSTMCell, Wx, Wh, b)(to_torch(x[:, 0]), (to_torch(h0), torch.zeros(2, 5, dtype=torch.float64)))
    assert_close(h[:, 0], to_numpy(h1), TOL, "lstm_forward first step")


def test_lstm_step_backward_with_only_a_cell_gradient():
    # dnext_h = 0: the whole gradient enters through next_c.
    rng = make_rng(16)
    args = lstm_step_inputs(rng, 2, 1, 3, 4)
    next_h, _, cache = R.lstm_step_forward(*args)
    dc = randn(rng, 2, 4)
    grads = R.lstm_step_backward(np.zeros_like(next_h), dc, cache)
    touts, torch_grads = lstm_step_twin(*args)
    (touts[1] * to_torch(dc)).sum().backward()
    for name, g, e in zip(LSTM_LAYERS["lstm_step"].grad_names, grads, torch_grads()):
        assert_close(g, e, TOL, f"lstm_step_backward {name} (dnext_h = 0)")


# ----------------------------------------------------------------------------- 06 GRU


def gru_step_inputs(rng, N, T, D, H, dtype=np.float64):
    return (randn(rng, N, D, dtype=dtype), randn(rng, N, H, scale=0.5, dtype=dtype),
            randn(rng, D, 3 * H, scale=0.5, dtype=dtype), randn(rng, H, 3 * H, scale=0.5, dtype=dtype),
            randn(rng, 3 * H, scale=0.5, dtype=dtype), randn(rng, 3 * H, scale=0.5, dtype=dtype))


def gru_inputs(rng, N, T, D, H, dtype=np.float64):
    _, h0, Wx, Wh, bx, bh = gru_step_inputs(rng, N, T, D, H, dtype)
    return randn(rng, N, T, D, dtype=dtype), h0, Wx, Wh, bx, bh


def gru_step_twin(x, prev_h, Wx, Wh, bx, bh):
    cell = torch_layer(nn.GRUCell, Wx, Wh, bx, bh)
    x, prev_h = to_torch(x, True), to_torch(prev_h, True)
    return [cell(x, prev_h)], lambda: [grad(x), grad(prev_h), *weight_grads(cell, both_biases=True)]


def gru_twin(x, h0, Wx, Wh, bx, bh):
    gru = torch_layer(nn.GRU, Wx, Wh, bx, bh)
    x, h0 = to_torch(x, True), to_torch(h0, True)
    h, _ = gru(x, h0[None])
    return [h], lambda: [grad(x), grad(h0), *weight_grads(gru, both_biases=True)]


GRU_LAYERS = {
    "gru_step": Layer(R.gru_step_forward, R.gru_step_backward, gru_step_inputs, gru_step_twin,
                      (0, 1, 2, 3, 4, 5), ("dx", "dprev_h", "dWx", "dWh", "dbx", "dbh")),
    "gru": Layer(R.gru_forward, R.gru_backward, gru_inputs, gru_twin,
                 (0, 1, 2, 3, 4, 5), ("dx", "dh0", "dWx", "dWh", "dbx", "dbh")),
}


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", GRU_LAYERS)
def test_gru_forward_matches_torch(name, shape):
    check_forward_against_torch(GRU_LAYERS[name], shape)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", GRU_LAYERS)
def test_gru_backward_matches_autograd(name, shape):
    check_backward_against_autograd(GRU_LAYERS[name], shape)


@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=shape_id)
@pytest.mark.parametrize("name", GRU_LAYERS)
def test_gru_backward_matches_centred_differences(name, shape):
    check_backward_against_centred_differences(GRU_LAYERS[name], shape)


# ----------------------------------------------------------------------------- all: dtype, inputs


ALL_LAYERS = [*RNN_LAYERS.values(), *LM_LAYERS.values(), *LSTM_LAYERS.values(), *GRU_LAYERS.values()]
F32 = np.float32


def _forward_case(layer, rng):
    args = layer.inputs(rng, 2, 3, 4, 5, dtype=F32)
    return layer.forward, args, lambda result: result[:-1]


def _backward_case(layer, rng):
    args = layer.inputs(rng, 2, 3, 4, 5, dtype=F32)
    *outs, cache = layer.forward(*args)
    return layer.backward, (*upstream(rng, outs, dtype=F32), cache), as_tuple


def _softmax_loss_case(rng):
    scores, y, m = softmax_loss_inputs(rng)
    return R.temporal_softmax_loss, (scores.astype(F32), y, m), lambda res: [res[1]]


FLOAT32_CASES = {
    "sigmoid": lambda rng: (R.sigmoid, (randn(rng, 3, 4, dtype=F32),), lambda y: [y]),
    "softmax": lambda rng: (R.softmax, (randn(rng, 2, 3, 4, dtype=F32),), lambda p: [p]),
    "numerical_gradient": lambda rng: (
        R.numerical_gradient, (np.tanh, randn(rng, 2, 3, dtype=F32), randn(rng, 2, 3, dtype=F32)),
        lambda g: [g]),
    "clip_grad_norm": lambda rng: (R.clip_grad_norm, (clip_inputs(rng, dtype=F32), 1.0),
                                   lambda res: list(res[0].values())),
    "temporal_softmax_loss": _softmax_loss_case,
    "adam_step": lambda rng: (
        R.adam_step, (*(randn(rng, 3, 4, dtype=F32) for _ in range(3)), np.abs(randn(rng, 3, 4, dtype=F32)), 3),
        lambda res: list(res)),
    "sample_with_temperature": lambda rng: (
        R.sample_with_temperature, (randn(rng, 4, 6, dtype=F32), 0.7, make_rng(1)), lambda idx: []),
    "gradient_norm_by_lag": lambda rng: (  # notebook 03: the steps are arguments
        R.gradient_norm_by_lag, (randn(rng, 2, 3, 4, dtype=F32), randn(rng, 2, 5, dtype=F32),
                                 randn(rng, 4, 5, dtype=F32), randn(rng, 5, 5, dtype=F32), randn(rng, 5, dtype=F32),
                                 randn(rng, 2, 5, dtype=F32), R.rnn_step_forward, R.rnn_step_backward),
        lambda norms: [norms]),
}


def _lm_case(name, rng):
    """Notebook 04's language model on float32 parameters (the inputs of its check)."""
    from course_utils.lessons.nb04_char_rnn_numpy.checks import _lm_case as lm_inputs, _train_case

    if name == "lm_train_step":
        a = _train_case("float32", int(rng.integers(2**31)), 2, 3, 6, 3, 4, 0.05, 0.5, F32).args
        args = (a["params"], a["adam"], a["xs"][0], a["ys"][0], a["h0"], a["lr"], a["max_norm"])
        return R.lm_train_step, args, lambda res: [*res[0].values(), res[3]]
    a = lm_inputs("float32", int(rng.integers(2**31)), 2, 3, 6, 4, 5, F32).args
    if name == "lm_forward":
        return R.lm_forward, (a["params"], a["x"], a["h0"]), lambda res: [res[0], res[1]]
    return R.lm_loss_and_grads, tuple(a.values()), lambda res: [*res[1].values(), res[2]]


for _name in ("lm_forward", "lm_loss_and_grads", "lm_train_step"):  # notebook 04
    FLOAT32_CASES[_name] = lambda rng, name=_name: _lm_case(name, rng)
for _layer in ALL_LAYERS:
    FLOAT32_CASES[_layer.forward.__name__] = lambda rng, layer=_layer: _forward_case(layer, rng)
    FLOAT32_CASES[_layer.backward.__name__] = lambda rng, layer=_layer: _backward_case(layer, rng)


def test_every_exercise_is_in_the_float32_table():
    numpy_part = {name for name in R.__all__ if R._WHERE[name] < "course_utils.lessons.nb07"}  # notebooks 00-06
    assert set(FLOAT32_CASES) == numpy_part


@pytest.mark.parametrize("name", sorted(FLOAT32_CASES))
def test_keeps_float32_and_does_not_modify_inputs(name):
    fn, args, float_outputs = FLOAT32_CASES[name](make_rng(17))
    before = snapshot(args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = fn(*args)
    outs = float_outputs(result)
    for k, out in enumerate(outs):
        assert isinstance(out, np.ndarray) and out.dtype == np.float32, (
            f"{name}: output {k} has dtype {getattr(out, 'dtype', type(out))}, expected float32")
    assert_unchanged(args, before, name)  # for a backward: the upstream gradient and the cache
    if name == "temporal_softmax_loss":
        assert isinstance(result[0], float)
    if name == "clip_grad_norm":
        assert isinstance(result[1], float)
    if name == "sample_with_temperature":
        assert np.issubdtype(result.dtype, np.integer) and result.shape == (4,)
