"""GlobalStepSize: the layer-wise rule with one block for the whole network (the ablation)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

import minilayerlr as mll
from minilayerlr.optim import SGD, AdamW, LayerwiseStepSize
from minilayerlr.optim.global_step import GlobalStepSize
from minilayerlr.theory import BlockQuadratic
from strategies_optim import block_quadratics
from strategies_peers import assert_pure, assert_trees_equal, flat, run_network, tiny_network


def _run_quadratic(opt, quad, x0, steps):
    params, state, states = quad.split(x0), None, []
    state = opt.init(params)
    for _ in range(steps):
        ev = quad.evaluate(params)
        oracle = {"hvp": ev.hvp} if opt.oracles == ("hvp",) else {"curvature": ev.layer_curvature}
        updates, state = opt.update(ev.grads, state, params, **oracle)
        params = mll.apply_updates(params, updates)
        states.append(state)
    return params, states


@settings(max_examples=15)
@given(block_quadratics(max_log10_cond=2.0))
def test_one_step_on_a_multi_block_quadratic_is_the_exact_line_search(problem):
    """d = g, η = 1 (the default with one block), λ = 0: α minimises f(x − αg) exactly."""
    A, b, sizes, seed = problem
    quad = BlockQuadratic(A, b, sizes)
    x0 = np.random.default_rng(seed).standard_normal(len(b))
    g = A @ x0 - b
    (params, [state]) = _run_quadratic(GlobalStepSize(SGD()), quad, x0, 1)
    best = minimize_scalar(lambda a: quad.loss(x0 - a * g), bracket=(0.0, 1.0 / np.linalg.norm(A, 2)),
                           tol=1e-12)
    # minimize_scalar locates a 1-D minimum to ~√u·(scale) in α; the closed form is
    # gᵀg/gᵀAg; both agree to the line search's 1e-6 relative (κ ≤ 100)
    assert state.step_sizes[0] == pytest.approx(best.x, rel=1e-6)
    assert state.step_sizes[0] == pytest.approx(g @ g / (g @ A @ g), rel=1e-13)
    # and the new gradient is orthogonal to the step (the first-order condition), to
    # rounding: |gᵀ(A x1 − b)| ≤ κ·n·u·‖g‖²-ish; 1e-10 ‖g‖² covers κ ≤ 100, n ≤ 8
    x1 = quad.join(params)
    assert abs(g @ (A @ x1 - b)) <= 1e-10 * (g @ g)
    assert np.all(state.step_sizes == state.step_sizes[0]) and len(state.step_sizes) == len(sizes)


def _global_reference(A, b, x0, steps, beta, rho, eta=1.0):
    """The global rule on flat vectors: heavy-ball d, n = gᵀd, q = dᵀAd, EMAs, α = η n̄/q̄."""
    x, m = x0.copy(), np.zeros_like(x0)
    avg = np.zeros(3)
    alphas = []
    for t in range(1, steps + 1):
        g = A @ x - b
        m = beta * m + g
        values = np.array([g @ m, m @ A @ m, m @ m])
        avg = (rho * avg * (1 - rho ** (t - 1)) + (1 - rho) * values) / (1 - rho ** t)
        alpha = eta * avg[0] / avg[1] if values[0] > 0 and avg[0] > 0 else 0.0
        x = x - alpha * m
        alphas.append(alpha)
    return x, alphas


@settings(max_examples=10)
@given(block_quadratics(min_log10_cond=1.0, max_log10_cond=2.0), st.sampled_from([0.0, 0.9]))
def test_three_steps_equal_the_hand_unrolled_rule(problem, rho):
    A, b, sizes, seed = problem
    x0 = np.random.default_rng(seed).standard_normal(len(b))
    params, states = _run_quadratic(GlobalStepSize(SGD(momentum=0.5), ema=rho),
                                    BlockQuadratic(A, b, sizes), x0, 3)
    x3, alphas = _global_reference(A, b, x0, 3, 0.5, rho)
    # n = gᵀd and q = dᵀAd are sums of n ≤ 8 products formed in another order: relative
    # error ≲ n·u·|d|ᵀ|A||d|/dᵀAd ≤ n·u·κ ≈ 2e-13 for κ ≤ 100; α inherits it, x only
    # through α·d, a step small against |x|
    np.testing.assert_allclose(flat(params), x3, rtol=0, atol=1e-12 * max(1, np.abs(x3).max()))
    np.testing.assert_allclose([s.step_sizes[0] for s in states], alphas, rtol=1e-12)


@settings(max_examples=10)
@given(block_quadratics(min_log10_cond=1.0, max_log10_cond=2.0), st.sampled_from([0.0, 0.9]))
def test_with_one_block_it_is_the_layerwise_method(problem, rho):
    """One block: the only block's q_l = dᵀHd, so the two methods coincide (to rounding:
    layer_curvature forms d_lᵀH_ll d_l, the global one dᵀ(Hd), in another order)."""
    A, b, _, seed = problem
    quad = BlockQuadratic(A, b, [len(b)])
    x0 = np.random.default_rng(seed).standard_normal(len(b))
    for base in (SGD(momentum=0.9), AdamW(weight_decay=0.1)):
        ours, s_ours = _run_quadratic(GlobalStepSize(base, ema=rho), quad, x0, 4)
        theirs, s_theirs = _run_quadratic(LayerwiseStepSize(base, ema=rho), quad, x0, 4)
        # dᵀAd in two orders differs by ≤ n·u·|d|ᵀ|A||d| ≤ n·u·κ·dᵀAd; 4 steps, κ ≤ 100, n ≤ 8
        np.testing.assert_allclose(flat(ours), flat(theirs), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose([s.step_sizes for s in s_ours], [s.step_sizes for s in s_theirs],
                                   rtol=1e-10)
        assert [tuple(s.fallbacks) for s in s_ours] == [tuple(s.fallbacks) for s in s_theirs]


def test_with_one_block_on_a_network_it_is_the_layerwise_method():
    rng = np.random.default_rng(0)
    net = mll.Sequential([mll.Dense(3, 2)], mll.MeanSquaredError())
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    params = net.init(0)
    a, sa, _ = run_network(GlobalStepSize(SGD(momentum=0.9)), net, params, x, y, 4)
    b, sb, _ = run_network(LayerwiseStepSize(SGD(momentum=0.9)), net, params, x, y, 4)
    # squared error on one Dense layer: H = GGN is PSD and well scaled; rounding only
    np.testing.assert_allclose(flat(a), flat(b), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(sa.step_sizes, sb.step_sizes, rtol=1e-11)


def test_on_coupled_blocks_it_differs_from_the_layerwise_method():
    """The ablation is not a no-op: with cross-block curvature the two steps differ."""
    A = np.array([[2.0, 1.5], [1.5, 2.0]])
    quad = BlockQuadratic(A, np.array([1.0, -1.0]), [1, 1])
    x0 = np.array([1.0, 0.5])
    glob, _ = _run_quadratic(GlobalStepSize(SGD(), ema=0.0), quad, x0, 1)
    lw, _ = _run_quadratic(LayerwiseStepSize(SGD(), ema=0.0, scale=1.0), quad, x0, 1)
    assert not np.allclose(flat(glob), flat(lw), rtol=1e-3)


def test_fallbacks_are_the_layerwise_ones():
    """Nonpositive curvature with no history: "previous" means α = 0, as layer-wise."""
    params = [{"x": np.array([1.0, 2.0])}, {"x": np.array([0.5])}]
    grads = [{"x": np.array([1.0, 0.0])}, {"x": np.array([1.0])}]
    opt = GlobalStepSize(SGD(), denominator="signed")  # |q| has no nonpositive curvature
    negative = lambda v: [{"x": -e["x"]} for e in v]
    updates, state = opt.update(grads, opt.init(params), params, hvp=negative)
    assert state.fallback_names == ("nonpositive_curvature",)
    assert np.all(state.step_sizes == 0) and all(np.all(u["x"] == 0) for u in updates)
    assert state.diagnostics()["fallbacks"].tolist() == [2, 2]


def test_the_default_scale_is_one():
    assert GlobalStepSize().layerwise.multiplier(1) == 1.0
    params = [{"x": np.array([1.0])}, {"x": np.array([1.0])}]
    opt = GlobalStepSize(SGD(), ema=0.0)
    _, state = opt.update([{"x": np.array([1.0])}, {"x": np.array([1.0])}], opt.init(params), params,
                          hvp=lambda v: [{"x": 4.0 * e["x"]} for e in v])
    assert state.step_sizes.tolist() == [0.25, 0.25]  # gᵀg / gᵀHg = 2/8, times η = 1


def test_hvp_oracle_is_required_and_checked():
    params = [{"x": np.array([1.0])}]
    opt = GlobalStepSize()
    with pytest.raises(ValueError, match="^hvp:"):
        opt.update([{"x": np.array([1.0])}], opt.init(params), params)
    with pytest.raises(ValueError, match="^hvp:"):
        opt.update([{"x": np.array([1.0])}], opt.init(params), params, hvp=lambda v: [{"y": v[0]["x"]}])
    with pytest.raises(ValueError, match="^hvp:"):
        opt.update([{"x": np.array([1.0])}], opt.init(params), params, hvp=lambda v: [{"x": np.array([np.nan])}])


def test_update_is_pure():
    net, x, y, _ = tiny_network(seed=4)
    assert_pure(GlobalStepSize(AdamW()), net, x, y, steps=3)


def test_same_inputs_same_bits():
    net, x, y, params = tiny_network(seed=5)
    a, sa, _ = run_network(GlobalStepSize(SGD(momentum=0.9)), net, params, x, y, 4)
    b, sb, _ = run_network(GlobalStepSize(SGD(momentum=0.9)), net, net.init(5), x, y, 4)
    assert_trees_equal(a, b)
    np.testing.assert_array_equal(sa.avg_denominators, sb.avg_denominators)
