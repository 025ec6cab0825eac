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
       eps=st.sampled_from([1e-4, 1e-3, 0.1, 1.0]))
@settings(max_examples=8)
def test_statistics_are_accumulated_sums_and_the_step_is_the_released_root_step(n, d_in, d_out, seed, eps):
    """Matrix least squares: L = Σ G Gᵀ, R = Σ GᵀG, H = Σ g gᵀ, and the third step is
    −lr (L/d_in + εI)^{-1/4} G (R/d_out + εI)^{-1/4} (W) and −lr (H/d_out + εI)^{-1/2} g (b):
    each statistic divided by its own dimension, as TensorFlow 1.15 releases it."""
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
    step_W = (_eig_power(L / d_in + eps * eye(d_in), -0.25) @ GW[-1]
              @ _eig_power(R / d_out + eps * eye(d_out), -0.25))
    step_b = _eig_power(H / d_out + eps * eye(d_out), -0.5) @ gb[-1]
    # roots of matrices with eigenvalues ≥ ε: rounding grows like cond^(1/4)·eps ≤ (scale/ε)·eps
    tol = 100 * (1 + scale / eps) * EPS * max(np.abs(step_W).max(), np.abs(step_b).max(), 1e-300)
    np.testing.assert_allclose(updates[0]["W"], -lr * step_W, rtol=0, atol=lr * tol)
    np.testing.assert_allclose(updates[0]["b"], -lr * step_b, rtol=0, atol=lr * tol)


def test_one_step_on_a_2x3_matrix_is_the_released_one_not_the_unreleased_one():
    """The released defaults (ε = 1e-4, statistics divided by their dimension) by hand on one step.

    G = [[1, 0, 2], [0, 3, 0]]: G Gᵀ = diag(5, 9) and Gᵀ G has eigenvalues 5, 9, 0, so every
    root is explicit. The unreleased state (no division, ε = 0.1) moves W by a different amount.
    """
    G = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    opt = Shampoo()
    assert (opt.lr, opt.eps, opt.max_matrix_size) == (1.0, 1e-4, 768)
    params = [{"W": np.zeros((2, 3)), "b": np.zeros(3)}]
    grads = [{"W": G, "b": np.zeros(3)}]
    updates, _ = opt.update(grads, opt.init(params), params)
    eps = 1e-4
    left = np.diag([(5 / 2 + eps) ** -0.25, (9 / 2 + eps) ** -0.25])
    # Gᵀ G = 5 u uᵀ + 9 v vᵀ with u = (1, 0, 2)/√5, v = (0, 1, 0); the third eigenvalue is 0
    u, v = np.array([1.0, 0, 2]) / np.sqrt(5), np.array([0.0, 1, 0])
    w = np.cross(u, v)
    right = ((5 / 3 + eps) ** -0.25 * np.outer(u, u) + (9 / 3 + eps) ** -0.25 * np.outer(v, v)
             + eps ** -0.25 * np.outer(w, w))
    want = -(left @ G @ right)
    # entries O(1); the eigendecomposition of a 3×3 with eigenvalue ratio 3/1e-4: rounding ~1e-12
    np.testing.assert_allclose(updates[0]["W"], want, rtol=0, atol=3e4 * EPS)
    np.testing.assert_array_equal(updates[0]["b"], 0.0)  # a zero vector statistic: power 0 · 0
    unreleased = -(np.diag([(5 + 0.1) ** -0.25, (9 + 0.1) ** -0.25]) @ G
                   @ ((5.1) ** -0.25 * np.outer(u, u) + 9.1 ** -0.25 * np.outer(v, v)
                      + 0.1 ** -0.25 * np.outer(w, w)))
    assert np.abs(updates[0]["W"] - unreleased).max() > 0.1 * np.abs(unreleased).max()


@pytest.mark.parametrize("size", [3, 2])
def test_a_dimension_equal_to_max_matrix_size_stays_dense(size):
    """Released: dense when d ≤ max_matrix_size (inclusive), diagonal only when d > max."""
    params = [{"W": np.zeros((3, 2)), "b": np.zeros(2)}]
    state = Shampoo(max_matrix_size=size).init(params)
    assert state.left[0]["W"].shape == ((3, 3) if size == 3 else (3,))
    assert state.right[0]["W"].shape == (2, 2) and state.left[0]["b"].shape == (2, 2)


def test_diagonal_powers_are_recomputed_every_step_and_dense_roots_wait():
    """update_every = 3 with a diagonal dimension: its power follows the sums at every step
    (released), while the dense root is the identity until step 3 (released: step mod T = 0)."""
    rng = np.random.default_rng(0)
    params = [{"W": np.zeros((4, 2)), "b": np.zeros(2)}]
    opt = Shampoo(lr=1.0, eps=1e-3, update_every=3, max_matrix_size=3)  # d_in = 4 > 3: diagonal
    state = opt.init(params)
    sums_diag, sums_dense = np.zeros(4), np.zeros((2, 2))
    for t in range(1, 4):
        G = rng.standard_normal((4, 2))
        updates, state = opt.update([{"W": G, "b": np.zeros(2)}], state, params)
        sums_diag += (G * G).sum(axis=1)
        sums_dense += G.T @ G
        right = np.eye(2) if t < 3 else _eig_power(sums_dense / 2 + 1e-3 * np.eye(2), -0.25)
        left = (sums_diag / 4) ** -0.25  # diagonal: Σ_j G_ij² / d_in, no ε, every step
        np.testing.assert_allclose(state.left_roots[0]["W"], left, rtol=1e-14)
        np.testing.assert_allclose(state.right_roots[0]["W"], right, rtol=1e-13)
        # cond(R/2 + εI) ≤ (‖G‖²/2 + ε)/ε ~ 1e4: eigh rounding ~ cond·eps
        np.testing.assert_allclose(updates[0]["W"], -(left[:, None] * G) @ right, rtol=0, atol=1e5 * EPS)
    assert state.count == 3


def _shampoo_reference(net, params, x, y, steps, lr, eps, T, max_size):
    """Gupta et al. 2018, Algorithms 1/2 as TensorFlow 1.15 releases them, roots by scipy's
    fractional_matrix_power.

    Conv2d W as (O, C·k·k); each statistic divided by its dimension d; a dimension with
    d > max_size keeps only diag Σ G Gᵀ (divided by d unless the array is a vector), powered
    without ε at every step; dense roots the identity until step T, then refreshed at steps
    T, 2T, ... (the released schedule)
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
                    d = m.shape[side]
                    stat = diag if d > max_size else full
                    sums[key] = sums.get(key, 0) + stat
                    if stat.ndim == 1:
                        D = sums[key] / (1 if m.ndim == 1 else d)
                        roots[key] = np.where(D > 0, np.abs(D) + (D == 0), 0) ** (-1 / p) * (D > 0)
                    elif t % T == 0:
                        S = sums[key] / d
                        roots[key] = np.real(scipy.linalg.fractional_matrix_power(S + eps * np.eye(d), -1 / p))
                eye = lambda side: roots.get((k, name, side), np.eye(m.shape[side]))  # noqa: E731
                left, right = eye(0), (eye(1) if m.ndim == 2 else None)
                step = (left[:, None] * m if m.ndim == 2 else left * m) if left.ndim == 1 else left @ m
                if right is not None:
                    step = step * right[None, :] if right.ndim == 1 else step @ right
                new[k][name] = params[k][name] - lr * step.reshape(g.shape)
        params = new
    return params


@pytest.mark.parametrize("max_size", [768, 3, 9], ids=["full", "some-diagonal", "equal-dense"])
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


@pytest.mark.parametrize("graft", ["sgd", "adagrad"])
def test_grafting_takes_the_direction_of_shampoo_and_the_size_of_the_grafted_step(graft):
    """Per block l (W and b together): update = −lr ‖u_l‖/‖P_l‖ · P_l with P Shampoo's direction
    and u = g (sgd) or g/(√Σg² + ε_graft) (adagrad); two steps so that AdaGrad's sums matter."""
    net, x, y = _conv_dense_net()
    params = net.init(1)
    plain, grafted = Shampoo(lr=1.0, eps=0.01), Shampoo(lr=0.05, eps=0.01, graft=graft)
    s_plain, s_graft, sums = plain.init(params), grafted.init(params), None
    for _ in range(2):
        ev = net.evaluate(params, x, y)
        p_upd, s_plain = plain.update(ev.grads, s_plain, params)
        g_upd, s_graft = grafted.update(ev.grads, s_graft, params)
        g = ev.grads
        sums = [{n: a * a + (0 if sums is None else sums[k][n]) for n, a in e.items()}
                for k, e in enumerate(g)]
        for i, k in enumerate(net.blocks):
            u = g[k] if graft == "sgd" else {n: a / (np.sqrt(sums[k][n]) + 1e-10) for n, a in g[k].items()}
            norm_u = np.sqrt(sum(np.sum(a * a) for a in u.values()))
            norm_p = np.sqrt(sum(np.sum(a * a) for a in p_upd[k].values()))  # lr = 1: ‖P_l‖
            for n in g[k]:
                want = 0.05 * norm_u / norm_p * p_upd[k][n]
                np.testing.assert_allclose(g_upd[k][n], want, rtol=1e-13, atol=1e-15 * np.abs(want).max())
            assert s_graft.step_sizes[i] == pytest.approx(0.05 * norm_u / norm_p, rel=1e-13)
        params = mll.apply_updates(params, g_upd)
    assert (s_graft.graft_sums is None) == (graft == "sgd")
    expect_error(lambda: Shampoo(graft="adam"), "graft")
    expect_error(lambda: plain.update(ev.grads, s_graft, params) if graft == "adagrad"
                 else grafted.update(ev.grads, Shampoo(graft="adagrad").init(params), params), "state")
