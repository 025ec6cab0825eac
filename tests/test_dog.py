"""DoG and LDoG (Ivgi, Hinder & Carmon 2023): equations, invariance, first step, 1-D bound."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim.dog import DoG, DoGState, LDoG
from minilayerlr.theory import BlockQuadratic
from minilayerlr.tree import unflatten
from strategies import seeds
from strategies_optim import block_quadratics
from strategies_peers import (assert_pure, assert_trees_equal, block_slices, flat, grad_at,
                              run_network, tiny_network)

#: float64 unit roundoff
U = np.finfo(float).eps / 2


def dog_reference(net, x, y, params, steps, reps_rel, lr, wd, eps, layerwise, gamma=None):
    """The paper's equations on flat vectors, groups = all coordinates (DoG) or each block (LDoG)."""
    x0 = flat(params)
    groups = block_slices(params) if layerwise else [slice(0, x0.size)]
    r_bar = np.array([reps_rel * (1 + np.linalg.norm(x0[s])) for s in groups])
    G = np.full(len(groups), eps)
    xt, avg, sizes = x0.copy(), x0.copy(), None
    for t in range(1, steps + 1):
        g = grad_at(net, x, y, params, xt) + wd * xt
        step = np.zeros_like(xt)
        eta = np.zeros(len(groups))
        for j, s in enumerate(groups):
            r_bar[j] = max(r_bar[j], np.linalg.norm(xt[s] - x0[s]))
            G[j] += g[s] @ g[s]
            eta[j] = lr * r_bar[j] / np.sqrt(G[j])
            step[s] = -eta[j] * g[s]
        xt = xt + step
        if gamma is not None:
            w = (1 + gamma) / (t + gamma)
            avg = (1 - w) * avg + w * xt
        sizes = eta if layerwise else np.full(len(block_slices(params)), eta[0])
    return xt, avg, r_bar, G, sizes


@pytest.mark.parametrize("cls", [DoG, LDoG])
@pytest.mark.parametrize("wd, gamma", [(0.0, None), (0.05, 8.0)])
def test_three_steps_equal_the_hand_unrolled_equations(cls, wd, gamma):
    net, x, y, params = tiny_network(seed=1)
    reps_rel = 1e-2  # large enough that three steps move the point visibly
    opt = cls(reps_rel=reps_rel, weight_decay=wd, averaging=gamma)
    out, state, _ = run_network(opt, net, params, x, y, 3)
    xt, avg, r_bar, G, sizes = dog_reference(net, x, y, params, 3, reps_rel, 1.0, wd, 1e-8,
                                             cls is LDoG, gamma)
    # Both make the same few roundings per step in another order: ~10 ulps of each
    # quantity. r̄ = ‖x_t − x_0‖ cancels: the moves are ~reps_rel = 1e-2 of |x|, so its
    # relative error is ~100× larger, ≈ 10·100·u ≈ 2e-13; 1e-12 covers both.
    np.testing.assert_allclose(flat(out), xt, rtol=1e-12, atol=1e-12 * np.abs(xt).max())
    np.testing.assert_allclose(state.max_distance, r_bar, rtol=1e-12)
    np.testing.assert_allclose(state.grad_sq_sum, G, rtol=1e-12)
    np.testing.assert_allclose(state.step_sizes, sizes, rtol=1e-12)
    assert state.count == 3 and state.step_sizes.shape == (2,)
    if gamma is None:
        assert state.average is None
    else:
        np.testing.assert_allclose(flat(state.average), avg, rtol=1e-12, atol=1e-12)
    assert not np.allclose(flat(out), flat(params))  # it did move


@pytest.mark.parametrize("cls", [DoG, LDoG])
def test_first_step_size_is_r_eps_over_the_gradient_norm(cls):
    """η_0 = c·r_ε/√(‖g_0‖² + eps) with r_ε = reps_rel·(1 + ‖x_0‖), per group."""
    net, x, y, params = tiny_network(seed=2)
    opt = cls(reps_rel=1e-3, lr=0.5)
    g0 = flat(net.evaluate(params, x, y).grads)
    x0 = flat(params)
    groups = block_slices(params) if cls is LDoG else [slice(0, x0.size)] * 2
    expected = [0.5 * 1e-3 * (1 + np.linalg.norm(x0[s])) / np.sqrt(g0[s] @ g0[s] + 1e-8)
                for s in groups]
    out, state, _ = run_network(opt, net, params, x, y, 1)
    np.testing.assert_allclose(state.step_sizes, expected, rtol=1e-14)
    # so each group moves by c·r_ε·‖g_0‖/√(‖g_0‖² + eps), just under c·r_ε
    for s, eta in zip(groups, expected):
        moved = np.linalg.norm(flat(out)[s] - x0[s])
        assert moved == pytest.approx(eta * np.linalg.norm(g0[s]), rel=1e-13)


def _quadratic_run(opt, quad, x0, steps):
    params, state = quad.split(x0), opt.init(quad.split(x0))
    for _ in range(steps):
        updates, state = opt.update(quad.evaluate(params).grads, state, params)
        params = mll.apply_updates(params, updates)
    return params, state


@settings(max_examples=15)
@given(block_quadratics(), st.integers(-20, 20), st.sampled_from([DoG, LDoG]))
def test_scaling_the_loss_by_a_power_of_two_leaves_the_iterates_bit_identical(problem, k, cls):
    """DoG's scale invariance: multiplying the loss by c > 0 leaves the iterates unchanged
    (η_t → η_t/c while g_t → c g_t; exact when eps = 0).

    With c = 2^k every product by c is exact, √(c²G) = c√G exactly, and so
    η_c g_c = (η/c)(c g) rounds to the same bits as η g: the runs are identical.
    """
    A, b, sizes, seed = problem
    x0 = np.random.default_rng(seed).standard_normal(len(b))
    opt = cls(reps_rel=1e-2, eps=0.0)
    c = 2.0 ** k
    base, s_base = _quadratic_run(opt, BlockQuadratic(A, b, sizes), x0, 5)
    scaled, s_scaled = _quadratic_run(opt, BlockQuadratic(c * A, c * b, sizes), x0, 5)
    assert_trees_equal(base, scaled)
    np.testing.assert_array_equal(s_scaled.step_sizes, s_base.step_sizes / c)


@settings(max_examples=10)
@given(block_quadratics(max_log10_cond=2.0), st.floats(-3, 3), st.sampled_from([DoG, LDoG]))
def test_scaling_the_loss_by_any_constant_changes_the_iterates_only_by_rounding(problem, log10_c, cls):
    A, b, sizes, seed = problem
    x0 = np.random.default_rng(seed).standard_normal(len(b))
    c, T = 10.0 ** log10_c, 5
    opt = cls(reps_rel=1e-2, eps=0.0)
    base, _ = _quadratic_run(opt, BlockQuadratic(A, b, sizes), x0, T)
    scaled, _ = _quadratic_run(opt, BlockQuadratic(c * A, c * b, sizes), x0, T)
    # Each step makes ~10 relative roundings of its move; an error in x_t reaches x_{t+1}
    # through I − ηA with ‖I − ηA‖ ≤ 1 + ηλ_max ≤ 2 here (small steps on a quadratic), so
    # after T steps the difference is below 10·T·2^T·u·max|x| (≈ 4e-13 relative for T = 5).
    scale = max(np.abs(flat(base)).max(), np.abs(x0).max())
    np.testing.assert_allclose(flat(scaled), flat(base), rtol=0, atol=10 * T * 2 ** T * U * scale)


def test_scale_invariance_needs_eps_zero():
    """The test above can fail: a large eps breaks the invariance."""
    A, b = np.diag([1.0, 4.0]), np.array([1.0, -1.0])
    x0 = np.zeros(2)
    opt = DoG(reps_rel=1e-1, eps=1.0)
    base, _ = _quadratic_run(opt, BlockQuadratic(A, b, [1, 1]), x0, 3)
    scaled, _ = _quadratic_run(opt, BlockQuadratic(4 * A, 4 * b, [1, 1]), x0, 3)
    assert not np.allclose(flat(base), flat(scaled), rtol=1e-3)


def _one_dim_run(a, x0, x_star, reps_rel, steps):
    """DoG on f(x) = ½a(x − x*)² with exact gradients; returns x_0..x_T, g_0..g_{T−1}, r̄_0..r̄_{T−1}."""
    quad = BlockQuadratic(np.array([[a]]), np.array([a * x_star]), [1])
    opt = DoG(reps_rel=reps_rel)
    params, state = quad.split(np.array([x0])), None
    state = opt.init(params)
    xs, gs, rs = [x0], [], []
    for _ in range(steps):
        g = quad.evaluate(params).grads
        updates, state = opt.update(g, state, params)
        params = mll.apply_updates(params, updates)
        xs.append(float(params[0]["x"][0]))
        gs.append(float(g[0]["x"][0]))
        rs.append(float(state.max_distance[0]))
    return np.array(xs), np.array(gs), np.array(rs)


def _regret_ratios(a, x0, x_star, reps_rel, steps, eps=1e-8):
    xs, gs, rs = _one_dim_run(a, x0, x_star, reps_rel, steps)
    weighted = np.cumsum(rs * gs * (xs[:-1] - x_star))
    ratios = []
    for T in range(1, steps + 1):
        r_T = max(rs[T - 1], abs(xs[T] - x0))
        d_T = np.abs(xs[:T + 1] - x_star).max()
        ratios.append(weighted[T - 1] / (r_T * (2 * d_T + r_T) * np.sqrt(eps + np.sum(gs[:T] ** 2))))
    return np.array(ratios)


@settings(max_examples=25)
@given(st.floats(-2, 2), seeds, st.floats(-1, 2), st.floats(-8, -1))
def test_weighted_regret_bound_on_a_one_dimensional_quadratic(log10_a, seed, log10_dist, log10_reps):
    """The worst-case bound behind the paper's DoG guarantee, on f(x) = ½a(x − x*)².

    The paper's analysis bounds the r̄-weighted regret of DoG for any gradients:

        Σ_{t<T} r̄_t ⟨g_t, x_t − x*⟩ ≤ r̄_T (2 d̄_T + r̄_T) √G_{T−1},    d̄_T = max_{t≤T} ‖x_t − x*‖

    (from ‖x_{t+1} − x*‖² = ‖x_t − x*‖² − 2η_t⟨g_t, x_t − x*⟩ + η_t²‖g_t‖², summation
    by parts with |d_t² − d_T²| ≤ 4 r̄_T d̄_T, and Σ ‖g_t‖²/√G_t ≤ 2√G_{T−1}); by
    convexity f(x̂_T) − f* ≤ r̄_T(2d̄_T + r̄_T)√G_{T−1} / Σ_{t<T} r̄_t for the r̄-weighted
    average x̂_T. We check the bound at every T ≤ 200 from the iterates of our DoG.
    """
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal()
    x_star = x0 + rng.choice([-1, 1]) * 10.0 ** log10_dist
    ratios = _regret_ratios(10.0 ** log10_a, x0, x_star, 10.0 ** log10_reps, 200)
    # the left side is a sum of ~200 terms of one sign at most; 1e-12 covers its rounding
    assert np.all(ratios <= 1 + 1e-12), ratios.max()


def test_the_regret_bound_is_attained_within_a_factor_two():
    """A strengthened bound fails: at T = 1 the ratio is a D²/((2D + r_ε)√(eps + a²D²)) → ½.

    So no constant below ½ in front of r̄_T(2d̄_T + r̄_T)√G_{T−1} holds on 1-D quadratics.
    """
    a, x0, x_star, reps_rel = 3.0, 0.5, 2.5, 1e-6
    ratios = _regret_ratios(a, x0, x_star, reps_rel, 5)
    D, r_eps = 2.0, reps_rel * 1.5
    assert ratios[0] == pytest.approx(a * D ** 2 / ((2 * D + r_eps) * np.sqrt(1e-8 + (a * D) ** 2)), rel=1e-12)
    assert ratios[0] > 0.45  # a bound 0.45·r̄(2d̄ + r̄)√G is violated


def test_ldog_on_one_block_is_dog():
    quad = BlockQuadratic(np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([1.0, 0.0]), [2])
    a, _ = _quadratic_run(DoG(reps_rel=1e-2), quad, np.array([0.3, -0.2]), 4)
    b, _ = _quadratic_run(LDoG(reps_rel=1e-2), quad, np.array([0.3, -0.2]), 4)
    assert_trees_equal(a, b)


def test_ldog_blocks_get_different_step_sizes():
    net, x, y, params = tiny_network(seed=3)
    _, state, _ = run_network(LDoG(reps_rel=1e-2), net, params, x, y, 2)
    assert state.step_sizes[0] != state.step_sizes[1]
    _, state, _ = run_network(DoG(reps_rel=1e-2), net, params, x, y, 2)
    assert state.step_sizes[0] == state.step_sizes[1]


@pytest.mark.parametrize("opt", [DoG(), LDoG(averaging=8.0)], ids=["dog", "ldog-avg"])
def test_update_is_pure(opt):
    net, x, y, _ = tiny_network(seed=4)
    assert_pure(opt, net, x, y)


def test_same_inputs_same_bits():
    net, x, y, params = tiny_network(seed=5)
    a, sa, _ = run_network(LDoG(averaging=2.0), net, params, x, y, 4)
    b, sb, _ = run_network(LDoG(averaging=2.0), net, net.init(5), x, y, 4)
    assert_trees_equal(a, b)
    assert_trees_equal(sa.average, sb.average)


def test_zero_gradient_with_eps_zero_does_not_move_or_nan():
    params = [{"x": np.array([1.0, 2.0])}]
    opt = DoG(eps=0.0)
    updates, state = opt.update([{"x": np.zeros(2)}], opt.init(params), params)
    assert np.all(updates[0]["x"] == 0) and np.all(state.step_sizes == 0)


def test_a_foreign_state_is_refused():
    params = [{"x": np.ones(2)}]
    assert isinstance(DoG().init(params), DoGState)
    with pytest.raises(TypeError, match="^state:"):
        DoG().update([{"x": np.ones(2)}], mll.optim.SGD().init(params), params)
