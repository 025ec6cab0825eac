"""Network-level exactness: gradients, HVPs, layer curvature and Gauss-Newton forms."""
import numpy as np
import pytest
from hypothesis import assume, given, settings

import minilayerlr as mll
from minilayerlr.testing import check_float32, check_network, mask_to_block, random_like, tree_vdot
from minilayerlr.testing.instances import network_instances
from minilayerlr.tree import flatten

from strategies import cnn_networks, gcn_networks, kink_margin, mlp_networks


def assert_all_pass(results):
    failed = [str(r) for r in results if not r.passed]
    assert not failed, failed


@given(mlp_networks())
def test_mlp_networks_pass_every_check(case):
    net, params, x, y, rng = case
    assume(kink_margin(net, params, x) > 2e-2)  # well beyond the difference steps
    assert_all_pass(check_network(net, params, x, y, rng))


@given(cnn_networks())
@settings(max_examples=8)
def test_cnn_with_stride_padding_and_pooling_passes_every_check(case):
    net, params, x, y, rng = case
    assume(kink_margin(net, params, x) > 2e-2)  # well beyond the difference steps
    assert_all_pass(check_network(net, params, x, y, rng))


@given(gcn_networks())
def test_gcn_with_node_mask_passes_every_check(case):
    net, params, x, y, rng = case
    assume(kink_margin(net, params, x) > 2e-2)  # well beyond the difference steps
    assert_all_pass(check_network(net, params, x, y, rng))


@pytest.mark.parametrize("case", list(network_instances(np.random.default_rng(11))), ids=lambda c: c[0])
def test_named_instances_pass_every_check(case):
    """The issue's three: GCN with mask, CNN stride 2 / padding 1 / max pool, sigmoid-CE autoencoder."""
    name, net, params, x, y = case
    assert_all_pass(check_network(net, params, x, y, np.random.default_rng(0)))


@pytest.mark.parametrize("case", list(network_instances(np.random.default_rng(12))), ids=lambda c: c[0])
def test_float32_agrees_with_float64(case):
    name, net, params, x, y = case
    assert_all_pass(check_float32(net, params, x, y, np.random.default_rng(0)))


def test_ggn_equals_hessian_blocks_for_relu_and_differs_for_tanh():
    """Within a block the only second-order terms come from σ'': zero for ReLU, not for tanh."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    for act, same in ((mll.ReLU, True), (mll.Tanh, False)):
        net = mll.Sequential([mll.Dense(4, 5), act(), mll.Dense(5, 5), act(), mll.Dense(5, 3)],
                             mll.SoftmaxCrossEntropy())
        params = net.init(1)
        ev = net.evaluate(params, x, y)
        d = random_like(params, rng)
        q, g = ev.layer_curvature(d, "hessian"), ev.layer_curvature(d, "ggn")
        if same:
            np.testing.assert_allclose(q, g, rtol=1e-12)
            # the full matrices still differ: Dense layers couple through bilinear cross terms
            assert np.abs(ev.hessian() - ev.hessian("ggn")).max() > 1e-3
        else:
            assert np.abs(q[:-1] - g[:-1]).max() > 1e-4 * np.abs(q).max()
            np.testing.assert_allclose(q[-1], g[-1], rtol=1e-12)  # last block: no activation after it


def test_dense_hessian_is_symmetric_and_contains_the_blocks():
    name, net, params, x, y = next(network_instances(np.random.default_rng(2)))
    ev = net.evaluate(params, x, y)
    H = ev.hessian()
    np.testing.assert_allclose(H, H.T, atol=1e-14)
    start = 0
    for i, k in enumerate(ev.blocks):
        size = flatten([params[k]]).size
        np.testing.assert_allclose(ev.block_hessian(i), H[start:start + size, start:start + size], atol=1e-15)
        start += size
    v = random_like(params, np.random.default_rng(3))
    np.testing.assert_allclose(flatten(ev.hvp(v)), H @ flatten(v), atol=1e-13)
    np.testing.assert_allclose(flatten(ev.hvp(v, "ggn")), ev.gauss_newton() @ flatten(v), atol=1e-13)


def test_gauss_newton_is_positive_semidefinite():
    for name, net, params, x, y in network_instances(np.random.default_rng(4)):
        G = net.evaluate(params, x, y).hessian("ggn")
        assert np.linalg.eigvalsh(G).min() > -1e-12 * max(1.0, np.abs(G).max()), name


def test_dense_matrices_refuse_above_max_size():
    net = mll.Sequential([mll.Dense(30, 30), mll.Tanh(), mll.Dense(30, 2)], mll.MeanSquaredError())
    params = net.init(0)
    ev = net.evaluate(params, np.ones((2, 30)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="max_size"):
        ev.hessian(max_size=100)
    assert ev.block_hessian(1).shape == (62, 62)
    assert ev.block_hessian(0, max_size=None).shape == (930, 930)
    with pytest.raises(ValueError, match="i:"):
        ev.block_hessian(2)


def test_bad_kind_and_structure_are_rejected():
    name, net, params, x, y = next(network_instances(np.random.default_rng(5)))
    ev = net.evaluate(params, x, y)
    with pytest.raises(ValueError, match="kind"):
        ev.layer_curvature(params, kind="fisher")
    with pytest.raises(ValueError, match="d"):
        ev.layer_curvature(params[:-1])
    with pytest.raises(ValueError, match="v"):
        ev.hvp([{} for _ in params])


# --- estimators (docs/design.md §5) -------------------------------------------------------------

def coupled_network():
    rng = np.random.default_rng(6)
    net = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 4), mll.Tanh(), mll.Dense(4, 3)],
                         mll.SoftmaxCrossEntropy())
    params = net.init(7)
    ev = net.evaluate(params, 2 * rng.standard_normal((10, 3)), rng.integers(0, 3, 10))
    return ev, random_like(params, rng)


def assert_unbiased(samples, exact, z=5.0):
    """Sample mean within z standard errors of the exact value, per block."""
    samples = np.asarray(samples)
    standard_error = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    assert np.all(np.abs(samples.mean(axis=0) - exact) <= z * standard_error + 1e-12), \
        (samples.mean(axis=0), exact, standard_error)


def test_sign_hvp_estimator_is_unbiased_and_naive_is_biased():
    ev, d = coupled_network()
    exact = ev.layer_curvature(d, "hessian")
    assert_unbiased([ev.layer_curvature(d, "sign_hvp", seed=s) for s in range(400)], exact)
    naive = ev.layer_curvature(d, "naive_hvp")
    # naive = exact + Σ_{m≠l} d_lᵀ H_lm d_m: the cross-layer blocks
    cross = np.array([tree_vdot(mask_to_block(d, k), ev.hvp(d)) - tree_vdot(mask_to_block(d, k), ev.hvp(mask_to_block(d, k)))
                      for k in ev.blocks])
    np.testing.assert_allclose(naive - exact, cross, rtol=1e-10, atol=1e-12)
    assert np.abs(cross).max() > 0.05 * np.abs(exact).max()


@pytest.mark.parametrize("which", ["mlp", "gcn", "autoencoder", "mse"])
def test_monte_carlo_fisher_is_unbiased_for_the_gauss_newton_form(which):
    if which == "mlp":
        ev, d = coupled_network()
    else:
        instances = {n.split()[0]: rest for n, *rest in network_instances(np.random.default_rng(8))}
        key = {"gcn": "GCN", "autoencoder": "autoencoder", "mse": "CNN"}[which]
        if which == "mse":
            net, params, x, y = [v for n, *v in network_instances(np.random.default_rng(8)) if "MSE" in n][0]
        else:
            net, params, x, y = instances[key]
        ev = net.evaluate(params, x, y)
        d = random_like(params, np.random.default_rng(9))
    exact = ev.layer_curvature(d, "ggn")
    samples = [ev.layer_curvature(d, "mc_fisher", seed=s) for s in range(1500)]
    assert np.all(np.asarray(samples) >= 0)
    assert_unbiased(samples, exact)


def test_estimators_are_reproducible_from_a_seed():
    ev, d = coupled_network()
    for kind in ("sign_hvp", "mc_fisher"):
        np.testing.assert_array_equal(ev.layer_curvature(d, kind, seed=3), ev.layer_curvature(d, kind, seed=3))
    with pytest.raises(ValueError, match="seed"):
        ev.layer_curvature(d, "mc_fisher", seed=-1)
