"""AdaHessian (minilayerlr.optim.AdaHessian): Hutchinson's diagonal, spatial averaging, the update unrolled."""
import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim import SGD, AdaHessian, AdaHessianState
from minilayerlr.optim.adahessian import hutchinson_diagonal, rademacher, spatial_average
from minilayerlr.optim.oracles import supply_oracles
from minilayerlr.training.checkpoint import encode_tree

from strategies import seeds
from strategies_validation import expect_error
from test_kfac import _conv_dense_net, _step_seed
from test_optim_networks import cnn_task, gcn_task, mlp_task

EPS = np.finfo(float).eps


def _run(opt, net, params, x, y, steps):
    state = opt.init(params)
    for _ in range(steps):
        ev = net.evaluate(params, x, y)
        updates, state = opt.update(ev.grads, state, params, **supply_oracles(opt, ev))
        params = mll.apply_updates(params, updates)
    return params, state


def _hutchinson_draws(seed, width, draws=400):
    """(mean, standard error) of z ⊙ Hz over ``draws`` Rademacher z, the dense H, a rounding floor."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(3, width), mll.Tanh(), mll.Dense(width, 2)], mll.SoftmaxCrossEntropy())
    params = net.init(seed)
    ev = net.evaluate(params, rng.standard_normal((6, 3)), rng.integers(0, 2, 6))
    H = ev.hessian()
    samples = np.array([mll.tree.flatten(hutchinson_diagonal(z, ev.hvp(z)))
                        for z in (rademacher(params, np.random.default_rng(s)) for s in range(draws))])
    se = samples.std(axis=0, ddof=1) / math.sqrt(draws)
    return samples.mean(axis=0), se, H, 100 * len(H) * EPS * np.abs(H).max()


@given(seed=seeds, width=st.integers(2, 4))
@settings(max_examples=4)
def test_hutchinson_estimate_is_unbiased_for_the_dense_hessian_diagonal(seed, width):
    """E[z ⊙ Hz] = diag H for Rademacher z (Hutchinson 1989), H the engine's dense Hessian."""
    mean, se, H, floor = _hutchinson_draws(seed, width)
    # z_i (Hz)_i = H_ii + Σ_{j≠i} z_i z_j H_ij: the noise has variance Σ_{j≠i} H_ij², so 5
    # standard errors fail by bad luck with probability ~1e-6 per entry; rounding is the floor.
    assert np.all(np.abs(mean - np.diag(H)) <= 5 * se + floor)


def test_the_unbiasedness_check_has_power():
    """The same check rejects a diagonal that is 50% off wherever some |H_ii|/2 exceeds 10
    standard errors. Not every drawn instance has such an entry (a 50% bias of a small
    H_ii hides in the noise), so the instance is one that does, and the test says so."""
    mean, se, H, floor = _hutchinson_draws(3, 2)
    assert np.any(0.5 * np.abs(np.diag(H)) > 10 * se + floor)  # the signal is strong here
    assert np.all(np.abs(mean - np.diag(H)) <= 5 * se + floor)
    assert not np.all(np.abs(mean - 1.5 * np.diag(H)) <= 5 * se + floor)


@given(seed=seeds, shape=st.sampled_from([(2, 3, 3, 3), (1, 2, 2, 2), (3, 1, 1, 1), (4,), (3, 2)]))
def test_spatial_average_equals_its_definition(seed, shape):
    """Conv kernels: D[o, c, u, v] = (1/k²) Σ_{u', v'} |d[o, c, u', v']|; other arrays: |d|."""
    d = np.random.default_rng(seed).standard_normal(shape)
    got = spatial_average(d)
    expected = np.abs(d).copy()
    if d.ndim == 4:
        O, C, k, _ = shape
        for o in range(O):
            for c in range(C):
                expected[o, c] = sum(abs(d[o, c, u, v]) for u in range(k) for v in range(k)) / (k * k)
    np.testing.assert_allclose(got, expected, rtol=4 * EPS * max(shape), atol=0)
    assert got.shape == d.shape


def _adahessian_reference(net, params, x, y, steps, lr, b1, b2, eps, k, wd, seed):
    """Yao et al. 2021, Algorithm 1, with the official code's |·| and kernel mean (module docstring)."""
    m = v = None
    for t in range(1, steps + 1):
        ev = net.evaluate(params, x, y)
        rng = np.random.default_rng(_step_seed(seed, t))
        new = [dict(p) for p in params]
        z = [{n: rng.integers(0, 2, size=a.shape).astype(float) * 2 - 1 for n, a in p.items()} for p in params]
        hz = ev.hvp(z)
        m = m or [{n: np.zeros_like(a) for n, a in p.items()} for p in params]
        v = v or [{n: np.zeros_like(a) for n, a in p.items()} for p in params]
        for layer in net.blocks:
            for n, g in ev.grads[layer].items():
                D = np.abs(z[layer][n] * hz[layer][n])
                if D.ndim == 4:
                    D = np.repeat(np.repeat(D.mean(axis=(2, 3), keepdims=True), D.shape[2], 2), D.shape[3], 3)
                m[layer][n] = b1 * m[layer][n] + (1 - b1) * g
                v[layer][n] = b2 * v[layer][n] + (1 - b2) * D ** 2
                denom = np.sqrt(v[layer][n]) ** k / math.sqrt(1 - b2 ** t) ** k + eps
                new[layer][n] = params[layer][n] - lr * (m[layer][n] / (1 - b1 ** t) / denom
                                                         + wd * params[layer][n])
        params = new
    return params


@pytest.mark.parametrize("k, wd", [(1.0, 0.0), (0.5, 0.01)])
def test_three_steps_equal_the_equations_unrolled(k, wd):
    net, x, y = _conv_dense_net()
    params0 = net.init(6)
    hyper = dict(lr=0.05, b1=0.8, b2=0.9, eps=1e-3, hessian_power=k, weight_decay=wd, seed=7)
    params, state = _run(AdaHessian(**hyper), net, params0, x, y, 3)
    expected = _adahessian_reference(net, params0, x, y, 3, 0.05, 0.8, 0.9, 1e-3, k, wd, 7)
    assert state.count == 3 and state.hessian_seed == _step_seed(7, 3)
    for e, f in zip(params, expected):
        for n in e:
            # elementwise arithmetic on the same exact HVP: rounding only
            np.testing.assert_allclose(e[n], f[n], rtol=0, atol=1e-12)
    assert max(np.abs(e[n] - f[n]).max() for e, f in zip(params, params0) for n in e) > 1e-2


def test_update_is_pure_and_seeded():
    net, x, y = _conv_dense_net()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = AdaHessian(seed=2)
    state = opt.update(ev.grads, opt.init(params), params, hvp=ev.hvp)[1]
    before = {}
    spec = encode_tree(copy.deepcopy((ev.grads, state, params)), "x", before)
    first = opt.update(ev.grads, state, params, hvp=ev.hvp)
    after = {}
    assert encode_tree((ev.grads, state, params), "x", after) == spec and before
    assert all(np.array_equal(before[key], after[key]) for key in before)
    again = opt.update(ev.grads, state, params, hvp=ev.hvp)
    other = AdaHessian(seed=3).update(ev.grads, state, params, hvp=ev.hvp)
    assert np.array_equal(mll.tree.flatten(first[0]), mll.tree.flatten(again[0]))
    assert not np.array_equal(mll.tree.flatten(first[0]), mll.tree.flatten(other[0]))


@pytest.mark.parametrize("task", [mlp_task, cnn_task, gcn_task], ids=["mlp", "cnn", "gcn"])
def test_defaults_reduce_the_training_loss(task):
    """30 full-batch steps of ``minilayerlr.train``, which passes exactly the declared oracles."""
    net, x, y = task()
    result = mll.train(net, net.init(3), AdaHessian(), x, y, epochs=30, batch_size=None, progress=False)
    first, last = result.history.train_loss[0], result.history.train_loss[-1]
    assert result.history.stop_reason is None and np.isfinite(last) and last < 0.7 * first, (first, last)
    assert isinstance(result.state, AdaHessianState) and np.all(result.state.step_sizes == 0.15)


def test_missing_or_bad_oracles_and_inputs_are_named():
    net, x, y = mlp_task()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = AdaHessian()
    state = opt.init(params)
    expect_error(lambda: opt.update(ev.grads, state, params), "hvp")
    expect_error(lambda: opt.update(ev.grads, state, params, hvp="ev.hvp"), "hvp")
    expect_error(lambda: opt.update(ev.grads, state, params, hvp=lambda v: v[:1]), "hvp")
    nan_hvp = lambda v: mll.tree_map(lambda a: np.full_like(a, np.nan), v)  # noqa: E731
    expect_error(lambda: opt.update(ev.grads, state, params, hvp=nan_hvp), "hvp")
    nan = [dict(e, W=np.full_like(e["W"], np.nan)) if e else e for e in ev.grads]
    expect_error(lambda: opt.update(nan, state, params, hvp=ev.hvp), "grads")
    expect_error(lambda: opt.update(ev.grads, SGD().init(params), params, hvp=ev.hvp), "state")
    expect_error(lambda: AdaHessian(weight_decay=0.1).update(ev.grads, state, None, hvp=ev.hvp), "params")
