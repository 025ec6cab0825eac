"""The engine's shortcuts (added for speed, see ``minilayerlr bench``) equal the plain rules.

* ``backward_input`` (used by the Monte-Carlo Fisher sweep) = ``backward(...)[0]``;
* ``SigmoidCrossEntropy.quadratic`` (diagonal ∇²L) = the generic ⟨ẏ, ∇²L ẏ⟩;
* its forward (softplus and σ from one exp) = ``logaddexp`` and the plain sigmoid,
  also far out in the tails;
* activations reuse the σ'(x) cached by ``forward``: backward equals g_y σ'(x);
* ``output`` (what ``Sequential.forward`` and ``loss_value`` run) = ``forward(...)[0]``;
* max pooling's forward (k² strided views) = the generic rule (a copy of the windows
  and the first argmax), selection included, ties too.
"""
import numpy as np
import pytest

import minilayerlr as mll
from minilayerlr.layers.pooling import _Pool2d
from minilayerlr.losses import Loss
from minilayerlr.testing import gamma


def _conv_case(rng):
    return mll.Conv2d(2, 3, 3, stride=2, padding=1), rng.standard_normal((4, 2, 7, 7))


def _dense_case(rng):
    return mll.Dense(5, 3), rng.standard_normal((6, 5))


def _graph_case(rng):
    adjacency = mll.normalized_adjacency(np.array([[0, 1], [1, 2], [3, 4], [0, 4]]), 5)
    return mll.GraphConv(4, 3, adjacency), rng.standard_normal((5, 4))


@pytest.mark.parametrize("case", [_dense_case, _conv_case, _graph_case])
def test_backward_input_equals_backward(case):
    rng = np.random.default_rng(0)
    layer, x = case(rng)
    p = layer.init(rng)
    y, cache = layer.forward(p, x)
    g_y = rng.standard_normal(y.shape)
    # the same products g_y Wᵀ (Â ...) in another order: an entry sums at most n = (output
    # size per example) × N products of |g_y| ≤ max|g_y| and |W| ≤ max|W| (Â's entries ≤ 1),
    # so two orders agree within 2γ_n·n·max|g_y|·max|W| (Higham, Lemma 3.1)
    n = y[0].size * len(x)
    atol = 2 * gamma(n) * n * np.abs(g_y).max() * np.abs(p["W"]).max()
    np.testing.assert_allclose(layer.backward_input(p, cache, g_y), layer.backward(p, cache, g_y)[0],
                               rtol=0, atol=atol)


@pytest.mark.parametrize("layer", [mll.Tanh(), mll.ReLU(), mll.MaxPool2d(2), mll.Flatten()])
def test_default_backward_input_falls_back_to_backward(layer):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 4))
    y, cache = layer.forward({}, x)
    g_y = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(layer.backward_input({}, cache, g_y), layer.backward({}, cache, g_y)[0])


def test_sigmoid_cross_entropy_shortcuts_match_the_plain_formulas():
    rng = np.random.default_rng(2)
    loss = mll.SigmoidCrossEntropy()
    for scale in (1.0, 40.0, 800.0):  # the tails: e^{±y} overflows for the naive formula
        y = rng.standard_normal((7, 9)) * scale
        t = rng.random((7, 9))
        value, cache = loss.forward(y, t)
        # a sum of 63 terms of a few operations each (log1p, exp, a product): 2γ_70 of Σ|terms|
        terms = (np.logaddexp(0, y) + np.abs(t * y)).sum() / 7
        assert abs(value - (np.logaddexp(0, y) - t * y).sum() / 7) <= 2 * gamma(70) * terms
        plain_sigmoid = np.where(y >= 0, 1 / (1 + np.exp(-np.abs(y))), np.exp(-np.abs(y)) / (1 + np.exp(-np.abs(y))))
        np.testing.assert_allclose(cache[0], plain_sigmoid, rtol=2 * gamma(3), atol=0)  # exp, +, ÷
        y_dot = rng.standard_normal((3, 7, 9))
        # Σ over 63 entries of σ(1 − σ)ẏ² ≥ 0 (no cancellation): 2γ_70 relative
        np.testing.assert_allclose(loss.quadratic(cache, y_dot), Loss.quadratic(loss, cache, y_dot), rtol=2 * gamma(70))


@pytest.mark.parametrize("act", [mll.Tanh(), mll.Sigmoid(), mll.Softplus(), mll.ReLU()])
def test_activation_backward_uses_the_derivative_at_x(act):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4))
    y, cache = act.forward({}, x)
    g_y = rng.standard_normal(y.shape)
    # elementwise: σ' from a few operations, one product
    np.testing.assert_allclose(act.backward({}, cache, g_y)[0], g_y * act.first(x, act.value(x)), rtol=2 * gamma(4))


def _activation_cases():
    return [(act, (3, 2, 5, 4)) for act in (mll.Tanh(), mll.Sigmoid(), mll.Softplus(), mll.ReLU())]


@pytest.mark.parametrize("layer,shape", _activation_cases() + [
    (mll.MaxPool2d(2), (3, 2, 7, 6)), (mll.MaxPool2d(3), (2, 3, 9, 10)), (mll.AvgPool2d(2), (3, 2, 6, 5)),
    (mll.Flatten(), (3, 2, 4, 4))])
def test_output_of_parameter_free_layers_is_forward_bit_for_bit(layer, shape):
    x = np.random.default_rng(4).standard_normal(shape)
    np.testing.assert_array_equal(layer.output({}, x), layer.forward({}, x)[0])


@pytest.mark.parametrize("case", [_dense_case, _conv_case, _graph_case,
                                  lambda rng: (mll.Conv2d(3, 4, 2, stride=1, padding=0),
                                               rng.standard_normal((5, 3, 6, 5)))])
def test_output_equals_forward(case):
    rng = np.random.default_rng(5)
    layer, x = case(rng)
    p = layer.init(rng)
    p["b"] = rng.standard_normal(p["b"].shape)
    y = layer.forward(p, x)[0]
    # each output is b + a sum of n products w·x, possibly in another order: two orders agree
    # within 2γ_n Σ|w||x| ≤ 2γ_n·n·max|W|·max|x̃| (x̃ = x, or Âx with Â's rows summing to ≤ 1·deg)
    n = p["W"].size // p["b"].size * (len(x) if layer.mixes_examples else 1)
    atol = 2 * gamma(n + 1) * (n * np.abs(p["W"]).max() * np.abs(x).max() + np.abs(p["b"]).max())
    out = layer.output(p, x)
    assert out.shape == y.shape
    np.testing.assert_allclose(out, y, rtol=0, atol=atol)


@pytest.mark.parametrize("k,shape,levels", [(2, (4, 3, 8, 7), 2), (2, (3, 2, 6, 6), 0), (3, (2, 2, 10, 9), 3)])
def test_max_pooling_forward_equals_the_generic_rule_ties_included(k, shape, levels):
    rng = np.random.default_rng(6)
    # few levels make ties common (as ReLU zeros do); levels = 0 draws continuous values
    x = rng.integers(0, levels, size=shape).astype(float) if levels else rng.standard_normal(shape)
    layer = mll.MaxPool2d(k)
    y, (shape_seen, weights) = layer.forward({}, x)
    y_ref, (_, weights_ref) = _Pool2d.forward(layer, {}, x)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(weights, weights_ref)
    assert shape_seen == x.shape and weights.sum(axis=-1).min() == weights.sum(axis=-1).max() == 1
