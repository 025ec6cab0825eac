"""Prodigy (Mishchenko & Defazio 2023, prodigyopt 1.1): equations, first step, d ≤ D in 1-D."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim.prodigy import Prodigy
from minilayerlr.theory import BlockQuadratic
from strategies import seeds
from strategies_peers import (assert_pure, assert_trees_equal, block_slices, flat, grad_at,
                              run_network, tiny_network)


def prodigy_reference(net, x, y, params, steps, lr=1.0, b1=0.9, b2=0.999, eps=1e-8, wd=0.0,
                      bias_correction=False, safeguard=False, d0=1e-6, d_coef=1.0, growth=math.inf):
    """The update of prodigyopt 1.1 written out on flat vectors (decoupled decay)."""
    x0 = flat(params)
    xk, m, v, s = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), np.zeros_like(x0)
    r, d, d_max, b3 = 0.0, d0, d0, math.sqrt(b2)
    r_abs = 0.0  # the scale of r's rounding error (see the test)
    history = []
    for k in range(steps):
        g = grad_at(net, x, y, params, xk)
        gamma = lr * (math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1)) if bias_correction else 1.0)
        r = b3 * r + (d / d0) * d * gamma * (g @ (x0 - xk))
        r_abs = b3 * r_abs + (d / d0) * d * gamma * (np.abs(g) @ (np.abs(x0) + np.abs(xk)))
        s = b3 * s + (d / d0) * d * (1.0 if safeguard else gamma) * g
        m = b1 * m + (1 - b1) * d * g
        v = b2 * v + (1 - b2) * d ** 2 * g ** 2
        d_hat = d_coef * r / np.abs(s).sum()
        d_new = max(d, d_hat) if d == d0 else d
        d_max = max(d_max, d_hat)
        d_new = min(d_max, d_new * growth)
        xk = xk - gamma * d * m / (np.sqrt(v) + d_new * eps) - gamma * d * wd * xk
        history.append((gamma * d, d_hat, r_abs / np.abs(s).sum()))
        d = d_new
    return xk, d, d_max, r, r_abs, history


VARIANTS = {
    "defaults": {},
    "wd-bias-growth": dict(weight_decay=0.1, use_bias_correction=True, growth_rate=1.5),
    "safeguard-coef": dict(safeguard_warmup=True, d_coef=0.5, lr=0.7, d0=1e-3),
}
REFERENCE_NAMES = {"weight_decay": "wd", "use_bias_correction": "bias_correction",
                   "growth_rate": "growth", "safeguard_warmup": "safeguard"}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_three_steps_equal_the_hand_unrolled_equations(name):
    kwargs = VARIANTS[name]
    net, x, y, params = tiny_network(seed=1)
    steps = 3 if name != "defaults" else 6  # enough steps for d to move off d_0
    out, state, states = run_network(Prodigy(**kwargs), net, params, x, y, steps)
    ref = {REFERENCE_NAMES.get(k, k): v for k, v in kwargs.items()}
    xk, d, d_max, r, r_abs, history = prodigy_reference(net, x, y, params, steps, **ref)
    # a few roundings per quantity and step, in a different order: ~10 ulps; 1e-12 leaves room
    np.testing.assert_allclose(flat(out), xk, rtol=1e-12, atol=1e-12 * np.abs(xk).max())
    assert state.d == pytest.approx(d, rel=1e-12)
    assert state.d_max == pytest.approx(d_max, rel=1e-12)
    # r = Σ w⟨g, x_0 − x_k⟩ with x_k − x_0 tiny (steps ~ d_0): the two runs' x_k differ by
    # ~k·u·|x|, so r's error is ≲ (P + k)·u·Σ w|g|ᵀ(|x_0| + |x_k|) = (P + k)·u·r_abs, not a
    # small multiple of |r| (P = 26 parameters, k ≤ 6 steps; a factor 4 of margin)
    P, u = flat(params).size + steps, np.finfo(float).eps / 2
    assert abs(state.numerator - r) <= 4 * P * u * r_abs
    for st_, (rate, d_hat, d_hat_abs) in zip(states, history):
        np.testing.assert_allclose(st_.step_sizes, [rate, rate], rtol=1e-12)
        assert abs(st_.d_hat - d_hat) <= 4 * P * u * d_hat_abs
    assert state.count == steps


def test_d_grows_in_the_defaults_run():
    """The reference test above means something only if d left d_0."""
    net, x, y, params = tiny_network(seed=1)
    _, state, _ = run_network(Prodigy(), net, params, x, y, 6)
    assert state.d > 1e-6


def test_first_step_is_d0_times_a_sign_like_adam_step():
    """r_1 = 0, so d stays d_0 and x_1 = x_0 − γ d_0 (1 − β1) g / (√(1 − β2)|g| + eps)."""
    net, x, y, params = tiny_network(seed=2)
    g = flat(net.evaluate(params, x, y).grads)
    opt = Prodigy(lr=0.3, d0=1e-4)
    out, state, _ = run_network(opt, net, params, x, y, 1)
    # with d_0 inside both moments: m = 0.1 d_0 g, √v = √0.001 d_0 |g|, eps multiplied by d_0
    expected = flat(params) - 0.3 * 1e-4 * 0.1 * g / (math.sqrt(0.001) * np.abs(g) + 1e-8)
    np.testing.assert_allclose(flat(out), expected, rtol=1e-14, atol=1e-16)
    np.testing.assert_array_equal(state.step_sizes, [0.3 * 1e-4] * 2)
    assert state.d == 1e-4 and state.d_hat == 0.0


def _one_dim_estimates(a, x0, x_star, steps, d0):
    quad = BlockQuadratic(np.array([[a]]), np.array([a * x_star]), [1])
    opt = Prodigy(d0=d0)
    params = quad.split(np.array([x0]))
    state, ds = opt.init(params), []
    for _ in range(steps):
        updates, state = opt.update(quad.evaluate(params).grads, state, params)
        params = mll.apply_updates(params, updates)
        ds.append(state.d)
    return np.array(ds)


@settings(max_examples=25)
@given(st.floats(-2, 2), seeds, st.floats(-4, 1), st.floats(-8, -5))
def test_the_estimate_never_exceeds_the_distance_to_the_solution(log10_a, seed, log10_dist, log10_d0):
    """The paper's key property: d_k ≤ D = ‖x_0 − x*‖ for convex f and exact gradients.

    For the Adam version with ‖s‖_1: r_k = Σ_i w_i⟨g_i, x_0 − x_i⟩ and s_k = Σ_i w_i g_i with
    weights w_i ≥ 0; convexity gives ⟨g_i, x_i − x*⟩ ≥ f(x_i) − f* ≥ 0, hence
    r_k ≤ ⟨s_k, x_0 − x*⟩ ≤ ‖s_k‖_1 ‖x_0 − x*‖_∞ and d̂ ≤ ‖x_0 − x*‖_∞ (= D in one
    dimension); d = max(d_0, d̂_1, …) ≤ D when d_0 ≤ D. Checked on f = ½a(x − x*)² over 300 steps.
    """
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal()
    D = 10.0 ** log10_dist
    x_star = x0 + rng.choice([-1, 1]) * D
    ds = _one_dim_estimates(10.0 ** log10_a, x0, x_star, 300, 10.0 ** log10_d0 * D)
    # the exact d_k are ≤ D; rounding moves d̂ by ≲ 300 steps · u · Σ|terms|/‖s‖_1 ≤ 1e-13 D,
    # and a cancelling r makes d̂ small, never close to D
    assert np.all(ds <= D * (1 + 1e-12)), (ds.max() / D)


def test_the_distance_bound_is_nearly_attained():
    """A strengthened bound fails: d_k ≤ D/2 is violated on some 1-D quadratic.

    d grows in geometric jumps, so how close max_k d_k gets to D depends on log(D/d_0)
    (and not on a: the iterates are invariant to the loss scale up to eps); a sweep of
    D/d_0 over two decades finds a ratio above ½.
    """
    ratios = [_one_dim_estimates(1.0, 0.0, 1.0, 300, 10.0 ** -e).max() for e in np.linspace(5, 7, 9)]
    assert 0.5 < max(ratios) <= 1, ratios


def test_update_is_pure():
    net, x, y, _ = tiny_network(seed=4)
    assert_pure(Prodigy(weight_decay=0.01), net, x, y, steps=3)


def test_same_inputs_same_bits():
    net, x, y, params = tiny_network(seed=5)
    a, sa, _ = run_network(Prodigy(), net, params, x, y, 4)
    b, sb, _ = run_network(Prodigy(), net, net.init(5), x, y, 4)
    assert_trees_equal(a, b)
    assert sa.d == sb.d and sa.numerator == sb.numerator


def test_zero_gradients_take_no_step():
    """‖s‖_1 = 0: the official step returns without moving; so do we (and no NaN)."""
    params = [{"x": np.array([1.0, -2.0])}]
    opt = Prodigy()
    updates, state = opt.update([{"x": np.zeros(2)}], opt.init(params), params)
    assert np.all(updates[0]["x"] == 0) and state.d == 1e-6 and np.all(state.step_sizes == 0)
    assert state.count == 0  # the official step returns before counting it


def test_an_exactly_zero_first_gradient_is_not_counted_with_bias_correction():
    """use_bias_correction=True, g_0 = 0 then g_1 = g: the official code returns before k += 1, and
    m, v, s advance by zero, so the second step is a fresh first step, bit for bit (bias
    correction √(1 − β2)/(1 − β1), not √(1 − β2²)/(1 − β1²))."""
    params = [{"x": np.array([1.0, -2.0])}]
    g = [{"x": np.array([0.5, -0.25])}]
    opt = Prodigy(use_bias_correction=True)
    _, state = opt.update([{"x": np.zeros(2)}], opt.init(params), params)
    after_zero, state = opt.update(g, state, params)
    fresh, fresh_state = opt.update(g, opt.init(params), params)
    np.testing.assert_array_equal(after_zero[0]["x"], fresh[0]["x"])
    assert state.count == fresh_state.count == 1
    np.testing.assert_array_equal(state.step_sizes, fresh_state.step_sizes)
    assert fresh_state.step_sizes[0] == pytest.approx(1e-6 * np.sqrt(1 - 0.999) / (1 - 0.9), rel=1e-15)


def test_coupled_weight_decay_enters_the_gradient():
    """decouple=False: g ← g + wd·x (an L2 penalty) instead of the decoupled shrink."""
    params = [{"x": np.array([1.0, -2.0])}]
    grads = [{"x": np.array([0.5, 0.25])}]
    coupled = Prodigy(weight_decay=0.1, decouple=False)
    plain = Prodigy()
    u_c, _ = coupled.update(grads, coupled.init(params), params)
    u_p, _ = plain.update([{"x": grads[0]["x"] + 0.1 * params[0]["x"]}], plain.init(params), params)
    np.testing.assert_array_equal(u_c[0]["x"], u_p[0]["x"])
