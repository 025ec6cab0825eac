"""Theorem 10 (GDLS with Armijo backtracking) and Proposition 11 (AdamW-LS implicit decay)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilayerlr import theory
from minilayerlr.optim import GDLS, SGD, AdamW, LayerwiseStepSize, apply_updates
from minilayerlr.optim.oracles import supply_oracles
from minilayerlr.theory import BlockQuadratic, LogisticRegression
from helpers_theory import plain_gdls
from strategies_optim import block_quadratics, random_partition


def run(problem, opt, x0, steps):
    """Run ``opt`` with exactly its declared oracles; return the losses and the states."""
    params = problem.split(x0)
    state, losses, states = opt.init(params), [], []
    for _ in range(steps):
        ev = problem.evaluate(params)
        losses.append(ev.loss)
        oracles = supply_oracles(opt, ev, loss=lambda p: problem.evaluate(p).loss)
        updates, state = opt.update(ev.grads, state, params, **oracles)
        params = apply_updates(params, updates)
        states.append(state)
    losses.append(problem.evaluate(params).loss)
    return np.array(losses), states


def logistic(n_samples, dim, seed, log10_reg, log10_feature_scale):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, dim)) * 10.0 ** log10_feature_scale
    y = np.where(X @ rng.standard_normal(dim) + 0.3 * rng.standard_normal(n_samples) > 0, 1.0, -1.0)
    return LogisticRegression(X, y, 10.0 ** log10_reg, random_partition(dim, seed + 1))


@settings(max_examples=40)
@given(st.integers(2, 30), st.integers(1, 5), st.integers(0, 2**31 - 1), st.floats(-4, 0),
       st.floats(-1, 1), st.sampled_from([None, 1.0, 4.0]), st.floats(0, 3))
def test_theorem10_default_gdls_never_increases_f_on_logistic_regression(
        n_samples, dim, seed, log10_reg, log10_scale, scale, start):
    """Theorem 10(i): with defaults (and even η = 1, 4) GDLS never increases f, bit for bit."""
    prob = logistic(n_samples, dim, seed, log10_reg, log10_scale)
    x0 = start * np.random.default_rng(seed + 2).standard_normal(dim)
    losses, _ = run(prob, GDLS(scale=scale), x0, 12)
    assert np.all(np.diff(losses) <= 0)


def test_theorem10_repairs_the_cycling_one_feature_example():
    """One feature (one block, η = 1, γ = 1e-3): plain GD-LS is Newton's method and cycles between
    two gaps (40.2 and 1813); the default GDLS decreases f every step and converges."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 1)) * 3
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(20) > 0, 1.0, -1.0)
    prob = LogisticRegression(X, y, 1e-3, [1])
    f_star = prob.optimal_value()
    plain, _ = run(prob, plain_gdls(), np.array([-4.0]), 8)
    assert plain[3] - f_star > 1000 and plain[4] - f_star > 40 and plain[5] - f_star > 1000
    safe, states = run(prob, GDLS(), np.array([-4.0]), 8)
    assert np.all(np.diff(safe) <= 0) and safe[-1] - f_star < 1e-6
    assert min(s.line_search_factor for s in states) < 1  # the safeguard acted


@settings(max_examples=30)
@given(st.integers(5, 30), st.integers(1, 4), st.integers(0, 2**31 - 1), st.floats(-2, 0),
       st.sampled_from([0.5, 1.0, 3.0]))
def test_theorem10_linear_rate_for_any_scale(n_samples, dim, seed, log10_reg, scale_kappa):
    """Theorem 10(iii): (f(x⁺) − f*) ≤ (1 − min{2νη/κ, 4ντ(1 − ν)/κ²})(f(x) − f*), η = scale_kappa·(2/κ)
    up to η = 6/κ, past Theorem 4's range."""
    prob = logistic(n_samples, dim, seed, log10_reg, 0.0)
    mu, big = prob.strong_convexity(), prob.smoothness()
    scale = scale_kappa * 2 * mu / big
    bound = theory.line_search_bound(mu, big, scale)
    f_star = prob.optimal_value()
    losses, _ = run(prob, GDLS(scale=scale), 2 * np.random.default_rng(seed).standard_normal(dim), 5)
    gaps = losses - f_star
    for before, after in zip(gaps, gaps[1:]):
        if before < 1e-12:  # a difference of O(1) losses: stop at rounding level
            break
        assert after <= bound * before + 1e-13


@given(block_quadratics(), st.floats(0.05, 0.95))
def test_theorem10_keeps_the_quadratic_iterates_for_eta_below_2_over_c(problem, fraction):
    """Theorem 10(ii): on a quadratic with η ≤ 2(1 − ν)/c the full step always passes: the default
    GDLS gives the plain GD-LS iterates bit for bit (Theorems 1, 1′, 3 apply unchanged).

    The claim is in exact arithmetic. With η ≤ 0.95·2(1 − ν)/c the Armijo margin is
    (1 − ηc/2 − ν)·s ≥ 0.05·s, and s ≥ the decrease; we compare while the plain decrease
    exceeds 1e-10(1 + |f|), far above the ~1e-15 rounding of the computed losses (at
    fraction 1 the margin is 0 and rounding decides; near convergence too)."""
    A, b, sizes, seed = problem
    quad = BlockQuadratic(A, b, sizes)
    scale = fraction * 2 * (1 - 1e-4) / theory.coupling_constant(A, sizes)
    x0 = np.random.default_rng(seed).standard_normal(len(b))
    for s in (scale, None):  # None: the default 1/L ≤ 1/c
        safe, states = run(quad, GDLS(scale=s), x0, 6)
        plain, _ = run(quad, plain_gdls(s), x0, 6)
        informative = np.cumprod(plain[:-1] - plain[1:] > 1e-10 * (1 + np.abs(plain[:-1]))).astype(bool)
        steps = int(informative.sum())
        np.testing.assert_array_equal(safe[:steps + 1], plain[:steps + 1])
        assert all(st_.line_search_factor == 1.0 for st_ in states[:steps])


def test_gdls_declares_and_needs_the_loss_oracle():
    assert GDLS().oracles == ("curvature", "loss") and GDLS(line_search=False).oracles == ("curvature",)
    assert LayerwiseStepSize(SGD(momentum=0.9)).oracles == ("curvature",)  # SGD-m-LS: unchanged
    params = [{"x": np.ones(2)}]
    with pytest.raises(ValueError, match="^loss"):
        GDLS().update(params, GDLS().init(params), params, curvature=lambda d: np.ones(1))
    with pytest.raises(ValueError, match="^line_search"):
        LayerwiseStepSize(line_search=1)


# ---------------------------------------------------------------------- Proposition 11

def adamw_ls_1d(x0, wd, scale, a, b1, steps, ema=0.0):
    quad = BlockQuadratic(np.array([[a]]), np.zeros(1), [1])
    opt = LayerwiseStepSize(AdamW(weight_decay=wd, b1=b1), scale=scale, ema=ema)
    losses, states = run(quad, opt, np.array([x0]), steps)
    return np.sqrt(2 * losses / a), states  # |x_t|


def test_proposition11_the_audit_counterexample_converges():
    """f = x²/2, AdamW(wd = 0.1), η = 1, ρ = 0, x₀ = 20: the explicit decay α·wd·x sent x to −40,
    then ~1e2, …; the implicit rule lands on x* = 0 in one step and stays."""
    x0, wd = 20.0, 0.1
    alpha = x0 / 1.0                         # first Adam direction d ≈ 1: α = η g d/(d A d) ≈ x₀
    assert x0 - alpha * 1.0 - alpha * wd * x0 == pytest.approx(-40.0, rel=1e-6)  # the old rule
    x, _ = adamw_ls_1d(x0, wd, 1.0, 1.0, 0.9, 10)
    assert x[1] <= 1e-12 * x0 and np.all(x[1:] <= 1e-12 * x0)


@given(st.floats(-2, 3), st.booleans(), st.floats(0.0, 1.0), st.floats(0.05, 1.95), st.floats(-2, 2),
       st.sampled_from([0.0, 0.9, 0.99]))
def test_proposition11_one_dimensional_family_converges(log10_x0, negative, wd, scale, log10_a, b1):
    """Prop. 11: f = a x²/2, any wd ≥ 0, η ∈ (0, 2), ρ = 0: |x⁺| ≤ |1 − η|·|x| on every step that
    moves, skipped steps (gᵀd ≤ 0, momentum) leave x unchanged, and |x_t| → 0."""
    x0 = (-1 if negative else 1) * 10.0 ** log10_x0
    x, states = adamw_ls_1d(x0, wd, scale, 10.0 ** log10_a, b1, 40)
    # rounding: x − αd = (1 − η)x is computed with error ~ eps·|x|
    for before, after, state in zip(x, x[1:], states):
        if state.step_sizes[0] > 0:
            assert after <= abs(1 - scale) * before + 1e-15 * before
        else:
            assert after == before
    assert x[-1] <= max(abs(1 - scale), 0.9) ** 10 * abs(x0)


@settings(max_examples=20)
@given(st.integers(5, 30), st.integers(1, 4), st.integers(0, 2**31 - 1), st.floats(-2, 0),
       st.sampled_from([0.5, 3.0, 1e3]))
def test_theorem10_one_block_rate(n_samples, dim, seed, log10_reg, scale_kappa):
    """Theorem 10(iv): one block, any η: f − f* contracts by 1 − min{2νη/κ, 4ντ(1 − ν)/κ}."""
    prob = logistic(n_samples, dim, seed, log10_reg, 0.0)
    prob = LogisticRegression(prob.X, prob.y, prob.reg, [dim])
    mu, big = prob.strong_convexity(), prob.smoothness()
    scale = scale_kappa * 2 * mu / big
    bound = theory.line_search_bound(mu, big, scale, one_block=True)
    assert bound <= theory.line_search_bound(mu, big, scale)
    f_star = prob.optimal_value()
    losses, _ = run(prob, GDLS(scale=scale), 2 * np.random.default_rng(seed).standard_normal(dim), 5)
    gaps = losses - f_star
    for before, after in zip(gaps, gaps[1:]):
        if before < 1e-12:  # a difference of O(1) losses: stop at rounding level
            break
        assert after <= bound * before + 1e-13
