"""Every layer's five rules against central differences (minilayerlr.testing.check_layer)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.testing import check_layer
from minilayerlr.testing.instances import layer_instances

from strategies import activations, away_from_kinks, conv_cases, graph_cases, pool_cases, scales, seeds


def assert_all_pass(results):
    failed = [str(r) for r in results if not r.passed]
    assert not failed, failed


@given(conv_cases())
def test_conv2d_rules(case):
    layer, x, rng = case
    assert_all_pass(check_layer(layer, layer.init(rng), x, rng))


@given(pool_cases())
def test_pooling_rules(case):
    layer, x, rng = case
    assert_all_pass(check_layer(layer, {}, x, rng))


@given(graph_cases())
def test_graphconv_rules(case):
    layer, x, rng = case
    assert_all_pass(check_layer(layer, layer.init(rng), x, rng))


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), seeds, scales)
def test_dense_rules(n_in, n_out, batch, seed, scale):
    rng = np.random.default_rng(seed)
    layer = mll.Dense(n_in, n_out)
    assert_all_pass(check_layer(layer, layer.init(rng), scale * rng.standard_normal((batch, n_in)), rng))


@given(activations, st.lists(st.integers(1, 4), min_size=1, max_size=3), seeds, scales)
def test_activation_rules(activation, shape, seed, scale):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal([2] + shape)
    if activation is mll.ReLU:
        x = away_from_kinks(x.shape, rng)
    assert_all_pass(check_layer(activation(), {}, x, rng))


@pytest.mark.parametrize("case", [c for c in layer_instances(np.random.default_rng(8)) if c[1].param_names],
                         ids=lambda c: c[0])
def test_extend_tangent_stack_equals_tangent_of_stack_then_new_row(case):
    """The curvature sweep's shortcut must equal its definition: [tangent(stack); tangent(ṗ = d)]."""
    _, layer, x = case
    rng = np.random.default_rng(2)
    p = layer.init(rng)
    _, cache = layer.forward(p, x)
    d = {n: rng.standard_normal(a.shape) for n, a in p.items()}
    stack = rng.standard_normal((3,) + x.shape)
    expected = np.concatenate([layer.tangent(p, cache, stack, None),
                               layer.tangent(p, cache, None, {n: a[None] for n, a in d.items()})])
    np.testing.assert_allclose(layer.extend_tangent_stack(p, cache, stack, d), expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.extend_tangent_stack(p, cache, None, d), expected[3:], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("case", list(layer_instances(np.random.default_rng(7))), ids=lambda c: c[0])
def test_stacked_tangents_equal_one_at_a_time(case):
    """Tangent rules are linear maps of a stack of K directions: K = 2 equals two K = 1 calls."""
    _, layer, x = case
    rng = np.random.default_rng(1)
    p = layer.init(rng)
    y, cache = layer.forward(p, x)
    g_y = rng.standard_normal(y.shape)
    x_dot = rng.standard_normal((2,) + x.shape)
    g_y_dot = rng.standard_normal((2,) + y.shape)
    p_dot = {n: rng.standard_normal((2,) + a.shape) for n, a in p.items()} or None
    both = layer.tangent(p, cache, x_dot, p_dot)
    both_rop = layer.backward_tangent(p, cache, x_dot, p_dot, g_y, g_y_dot)
    for k in range(2):
        one_p = {n: a[k:k + 1] for n, a in p_dot.items()} if p_dot else None
        one = layer.tangent(p, cache, x_dot[k:k + 1], one_p)
        np.testing.assert_allclose(both[k], one[0], rtol=1e-12, atol=1e-12)
        one_rop = layer.backward_tangent(p, cache, x_dot[k:k + 1], one_p, g_y, g_y_dot[k:k + 1])
        np.testing.assert_allclose(both_rop[0][k], one_rop[0][0], rtol=1e-12, atol=1e-12)
        for name in both_rop[1]:
            np.testing.assert_allclose(both_rop[1][name][k], one_rop[1][name][0], rtol=1e-12, atol=1e-12)


def test_conv2d_matches_direct_loop_definition():
    """Cross-correlation (PyTorch convention), checked against the defining sum written as loops."""
    rng = np.random.default_rng(3)
    layer = mll.Conv2d(2, 3, 3, stride=2, padding=1)
    p = layer.init(rng)
    p["b"] = rng.standard_normal(3)
    x = rng.standard_normal((2, 2, 5, 6))
    y, _ = layer.forward(p, x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 3, 3, 3))
    for n in range(2):
        for o in range(3):
            for i in range(3):
                for j in range(3):
                    expected[n, o, i, j] = p["b"][o] + np.sum(p["W"][o] * xp[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3])
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    assert layer.output_shape((2, 5, 6)) == (3, 3, 3)


def test_maxpool_crops_and_picks_window_maximum():
    x = np.arange(2 * 5 * 5, dtype=float).reshape(1, 2, 5, 5)
    y, _ = mll.MaxPool2d(2).forward({}, x)
    np.testing.assert_array_equal(y, x[:, :, 1:4:2, 1:4:2])
    y, _ = mll.AvgPool2d(2).forward({}, x)
    np.testing.assert_allclose(y[0, 0, 0, 0], (0 + 1 + 5 + 6) / 4)


def test_normalized_adjacency_matches_dense_formula():
    edges = np.array([[0, 1], [1, 2], [1, 2], [3, 3]])
    A_hat = mll.normalized_adjacency(edges, 4).toarray()
    A = np.zeros((4, 4))
    A[0, 1] = A[1, 0] = A[1, 2] = A[2, 1] = 1
    A += np.eye(4)
    D = np.diag(1 / np.sqrt(A.sum(1)))
    np.testing.assert_allclose(A_hat, D @ A @ D, rtol=1e-14)


@pytest.mark.parametrize("make, message", [
    (lambda: mll.Dense(0, 3), "in_features"),
    (lambda: mll.Dense(2, -1), "out_features"),
    (lambda: mll.Dense(2, 2, init="xavier"), "init"),
    (lambda: mll.Conv2d(1, 1, 3, stride=0), "stride"),
    (lambda: mll.Conv2d(1, 1, 3, padding=-1), "padding"),
    (lambda: mll.MaxPool2d(0), "kernel_size"),
    (lambda: mll.GraphConv(2, 2, np.eye(3)), "adjacency"),
    (lambda: mll.normalized_adjacency(np.array([[0, 5]]), 3), "edges"),
    (lambda: mll.SoftmaxCrossEntropy(mask=np.zeros(3, bool)), "mask"),
])
def test_constructors_reject_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("layer", [mll.Dense(3, 2), mll.Conv2d(2, 3, 3), mll.Tanh(), mll.Flatten(),
                                   mll.MaxPool2d(2)], ids=lambda layer: type(layer).__name__)
def test_param_shapes_are_the_shapes_init_draws(layer):
    """Sequential learns the expected parameter structure from param_shapes, not from a draw."""
    p = layer.init(np.random.default_rng(0))
    assert list(layer.param_shapes()) == list(p) == list(layer.param_names)
    assert {name: a.shape for name, a in p.items()} == layer.param_shapes()
