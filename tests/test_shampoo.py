"""Shampoo (minilayerlr.optim.Shampoo): accumulated statistics, the root step, three steps unrolled."""
import copy

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim import SGD, Shampoo, ShampooState
from minilayerlr.training.checkpoint import encode_tree

from strategies import seeds
from strategies_validation import expect_error
from test_kfac import _conv_dense_net
from test_optim_networks import cnn_task, gcn_task, mlp_task

EPS = np.finfo(float).eps


def _run(opt, net, params, x, y, steps):
    state, grads = opt.init(params), []
    for _ in range(steps):
        ev = net.evaluate(params, x, y)
        grads.append(ev.grads)
        updates, state = opt.update(ev.grads, state, params)
        params = mll.apply_updates(params, updates)
    return params, state, grads, updates


def _eig_power(S, power):
    """S^power of a symmetric positive definite S by eigendecomposition."""
    values, vectors = np.linalg.eigh(S)
    return (vectors * values ** power) @ vectors.T


@given(n=st.integers(2, 6), d_in=st.integers(1, 4), d_out=st.integers(1, 4), seed=seeds,
       eps=st.sampled_from([1e-3, 0.1, 1.0]))
@settings(max_examples=8)
def test_statistics_are_accumulated_sums_and_the_step_is_the_root_step(n, d_in, d_out, seed, eps):
    """Matrix least squares: L = Σ G Gᵀ, R = Σ GᵀG, H = Σ g gᵀ, and the third step is
    −lr (εI + L)^{-1/4} G (εI + R)^{-1/4} (W) and −lr (εI + H)^{-1/2} g (b) (Algorithms 1 and 2)."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d_in, d_out)], mll.MeanSquaredError())
    x, y = rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))
    lr = 0.1
    _, state, grads, updates = _run(Shampoo(lr=lr, eps=eps), net, net.init(seed), x, y, 3)
    GW, gb = [g[0]["W"] for g in grads], [g[0]["b"] for g in grads]
    L, R, H = sum(G @ G.T for G in GW), sum(G.T @ G for G in GW), sum(np.outer(g, g) for g in gb)
    scale = max(np.abs(L).max(), np.abs(H).max())
    for got, want in ((state.left[0]["W"], L), (state.right[0]["W"], R), (state.left[0]["b"], H)):
        np.testing.assert_allclose(got, want, rtol=0, atol=8 * n * EPS * scale)  # sums of 3n products
    eye = np.eye
    step_W = _eig_power(L + eps * eye(d_in), -0.25) @ GW[-1] @ _eig_power(R + eps * eye(d_out), -0.25)
    step_b = _eig_power(H + eps * eye(d_out), -0.5) @ gb[-1]
    # roots of matrices with eigenvalues ≥ ε: rounding grows like cond^(1/4)·eps ≤ (scale/ε)·eps
    tol = 100 * (1 + scale / eps) * EPS * max(np.abs(step_W).max(), np.abs(step_b).max(), 1e-300)
    np.testing.assert_allclose(updates[0]["W"], -lr * step_W, rtol=0, atol=lr * tol)
    np.testing.assert_allclose(updates[0]["b"], -lr * step_b, rtol=0, atol=lr * tol)


def _shampoo_reference(net, params, x, y, steps, lr, eps, T, max_size):
    """Gupta et al. 2018, Algorithms 1/2, from the equations, roots by scipy's fractional_matrix_power.

    Conv2d W as (O, C·k·k); a dimension of size ≥ max_size keeps only diag Σ G Gᵀ (official code).
    """
    sums, roots = {}, {}
    for t in range(1, steps + 1):
        ev = net.evaluate(params, x, y)
        new = [dict(p) for p in params]
        for k in net.blocks:
            for name, g in ev.grads[k].items():
                m = g.reshape(g.shape[0], -1) if g.ndim == 4 else g
                sides = [(0, m @ m.T, (m * m).sum(axis=1)) if m.ndim == 2 else (0, np.outer(m, m), m * m)]
                if m.ndim == 2:
                    sides.append((1, m.T @ m, (m * m).sum(axis=0)))
                p = 4 if m.ndim == 2 else 2
                for side, full, diag in sides:
                    key = (k, name, side)
                    stat = diag if m.shape[side] >= max_size else full
                    sums[key] = sums.get(key, 0) + stat
                    if (t - 1) % T == 0:
                        S = sums[key]
                        roots[key] = ((S + eps) ** (-1 / p) if S.ndim == 1 else
                                      np.real(scipy.linalg.fractional_matrix_power(S + eps * np.eye(len(S)), -1 / p)))
                left, right = roots[(k, name, 0)], roots.get((k, name, 1))
                step = (left[:, None] * m if m.ndim == 2 else left * m) if left.ndim == 1 else left @ m
                if right is not None:
                    step = step * right[None, :] if right.ndim == 1 else step @ right
                new[k][name] = params[k][name] - lr * step.reshape(g.shape)
        params = new
    return params


@pytest.mark.parametrize("max_size", [768, 3], ids=["full", "some-diagonal"])
def test_three_steps_equal_the_equations_unrolled(max_size):
    net, x, y = _conv_dense_net()
    params0 = net.init(4)
    opt = Shampoo(lr=0.2, eps=0.05, update_every=2, max_matrix_size=max_size)
    params, state, _, _ = _run(opt, net, params0, x, y, 3)
    expected = _shampoo_reference(net, params0, x, y, 3, 0.2, 0.05, 2, max_size)
    assert state.count == 3
    for e, f in zip(params, expected):
        for n in e:
            # eps = 0.05 bounds every eigenvalue below, so both roots are well conditioned
            np.testing.assert_allclose(e[n], f[n], rtol=0, atol=1e-12)
    assert max(np.abs(e[n] - f[n]).max() for e, f in zip(params, params0) for n in e) > 1e-2


def test_update_is_pure_and_deterministic():
    net, x, y = _conv_dense_net()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = Shampoo(update_every=2)
    state = opt.update(ev.grads, opt.init(params), params)[1]
    before = {}
    spec = encode_tree(copy.deepcopy((ev.grads, state, params)), "x", before)
    first = opt.update(ev.grads, state, params)
    after = {}
    assert encode_tree((ev.grads, state, params), "x", after) == spec and before
    assert all(np.array_equal(before[key], after[key]) for key in before)
    again = opt.update(ev.grads, state, params)
    assert np.array_equal(mll.tree.flatten(first[0]), mll.tree.flatten(again[0]))


@pytest.mark.parametrize("task", [mlp_task, cnn_task, gcn_task], ids=["mlp", "cnn", "gcn"])
def test_defaults_reduce_the_training_loss(task):
    """30 full-batch steps of ``minilayerlr.train``, which passes exactly the declared oracles."""
    net, x, y = task()
    result = mll.train(net, net.init(3), Shampoo(), x, y, epochs=30, batch_size=None, progress=False)
    first, last = result.history.train_loss[0], result.history.train_loss[-1]
    assert result.history.stop_reason is None and np.isfinite(last) and last < 0.7 * first, (first, last)
    assert isinstance(result.state, ShampooState) and np.all(result.state.step_sizes == 1.0)


def test_bad_inputs_are_named():
    net, x, y = mlp_task()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = Shampoo()
    state = opt.init(params)
    nan = [dict(e, W=np.full_like(e["W"], np.nan)) if e else e for e in ev.grads]
    expect_error(lambda: opt.update(nan, state, params), "grads")
    expect_error(lambda: opt.update([dict(e, W=e["W"][:1]) if e else e for e in ev.grads], state, params),
                 "grads")
    expect_error(lambda: opt.update(ev.grads, SGD().init(params), params), "state")


def test_overflowing_statistics_stop_with_a_named_error():
    net, x, y = mlp_task()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    huge = mll.tree_map(lambda g: np.full_like(g, 1e200), ev.grads)  # G Gᵀ overflows to inf
    opt = Shampoo()
    with np.errstate(over="ignore"):  # the overflow is the point
        error = expect_error(lambda: opt.update(huge, opt.init(params), params), "grads")
    assert isinstance(error, mll.errors.NonFiniteError)
