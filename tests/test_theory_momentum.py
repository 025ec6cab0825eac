"""Proposition 8′ (SGD-m-LS: what momentum does under the rule), Remark 6.1 (the |q| rule) and
the measured behaviour of the default SGD-m-LS (docs/theory.md §4–5)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilayerlr.optim import SGD, LayerwiseStepSize, apply_updates
from minilayerlr.theory import BlockQuadratic, LogisticRegression
from helpers_theory import plain_gdls, quadratic_gap, rule_v01, run_gaps
from strategies_optim import block_quadratics, random_partition, spd_matrix


def heavy_ball_recursion(A, p, beta):
    """The 2n×2n matrix of (e_{t+1}, e_t) = T (e_t, e_{t−1}) for heavy ball with frozen steps P = diag(p)."""
    n = len(A)
    T = np.zeros((2 * n, 2 * n))
    T[:n, :n] = (1 + beta) * np.eye(n) - np.diag(p) @ A
    T[:n, n:] = -beta * np.eye(n)
    T[n:, :n] = np.eye(n)
    return T


def frozen_heavy_ball_radius(A, p, beta):
    """Spectral radius of the frozen-step heavy-ball iteration (Proposition 8′(b))."""
    return float(np.max(np.abs(np.linalg.eigvals(heavy_ball_recursion(A, p, beta)))))


def sharp_heavy_ball_radius(A, theta, beta):
    """Radius of heavy ball with the frozen (not block-diagonal) P = θA⁻¹, PA = θI: √β for θ in the band."""
    n = len(A)
    T = np.zeros((2 * n, 2 * n))
    T[:n, :n] = (1 + beta - theta) * np.eye(n)
    T[:n, n:] = -beta * np.eye(n)
    T[n:, :n] = np.eye(n)
    return float(np.max(np.abs(np.linalg.eigvals(T))))


@given(block_quadratics(), st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.5, 0.9]))
def test_proposition8prime_momentum_along_the_gradient_is_the_gdls_step(problem, seed, beta):
    """Prop. 8′(a): with ρ = 0, a second call at the same point (m = (1 + β)g, parallel to g) gives
    exactly GD-LS's update; scaling d_l by any s > 0 leaves α_l d_l unchanged."""
    A, b, sizes, _ = problem
    quad = BlockQuadratic(A, b, sizes)
    params = quad.init(seed)
    ev = quad.evaluate(params)
    opt = LayerwiseStepSize(SGD(momentum=beta), scale=0.7, ema=0.0)
    _, state = opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature)
    updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
    gdls = plain_gdls(0.7)
    reference, _ = gdls.update(ev.grads, gdls.init(params), params, curvature=ev.layer_curvature)
    np.testing.assert_allclose(quad.join(updates), quad.join(reference), rtol=1e-12,
                               atol=1e-14 * np.abs(quad.join(reference)).max())


@settings(max_examples=30)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1), st.floats(0.0, 2.0), st.sampled_from([0.5, 0.9, 0.99]))
def test_proposition8prime_frozen_heavy_ball_never_beats_sqrt_beta(n, seed, log10_cond, beta):
    """Prop. 8′(b): any frozen P ≻ 0 (here: random, spanning the whole box of the rule's steps)
    gives spectral radius ≥ √β; P with every eigenvalue of PA in [(1 − √β)², (1 + √β)²] gives √β."""
    A = spd_matrix(n, seed, log10_cond)
    rng = np.random.default_rng(seed)
    lam = np.linalg.eigvalsh(A)
    p = 10.0 ** rng.uniform(-1, 1, n) / lam[-1]
    # eigenvalues of a real 2n×2n matrix: backward error ~ eps·‖T‖, so a root moves by ≤ √(eps‖T‖)
    tol = np.sqrt(1e-15 * (2 + beta + np.abs(p[:, None] * A).sum()))
    assert frozen_heavy_ball_radius(A, p, beta) >= np.sqrt(beta) - tol
    # the sharp instance: P = θ A⁻¹ -> PA = θI with θ inside the complex-root band
    theta = (1 + beta) * rng.uniform(0.9, 1.1)
    assert sharp_heavy_ball_radius(A, theta, beta) == pytest.approx(np.sqrt(beta), abs=tol * np.linalg.cond(A))


@settings(max_examples=30)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1), st.floats(0.0, 2.0), st.sampled_from([0.0, 0.5, 0.9]))
def test_proposition8prime_one_block_zoutendijk(n, seed, log10_cond, beta):
    """Prop. 8′(c): ρ = 0, one block, η = 1: n_{t+1} = ‖g_{t+1}‖² (no fallback), ‖m_t‖² is the
    Pythagorean sum, and the step of the proof of (iv)(γ), Δ_t ≤ Δ_0/(1 + t(1 − β²)/κ²) (so Δ_t → 0)."""
    A = spd_matrix(n, seed, log10_cond)
    quad = BlockQuadratic(A, np.zeros(n), [n])
    kappa = np.linalg.cond(A)
    opt = LayerwiseStepSize(SGD(momentum=beta), scale=1.0, ema=0.0)
    params = quad.split(np.random.default_rng(seed).standard_normal(n))
    state = opt.init(params)
    gap0 = quad.evaluate(params).loss
    sq_m = 0.0
    for t in range(25):
        ev = quad.evaluate(params)
        g = quad.join(ev.grads)
        if ev.loss <= 1e-20 * gap0:  # converged to rounding
            break
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        sq_m = beta ** 2 * sq_m + g @ g
        m = g if beta == 0 else quad.join(state.base_state.momentum)  # β = 0 keeps no buffer
        # g_{t+1} ⟂ m_t holds to rounding: the identities hold to cond(A)·eps relative
        assert state.fallbacks[0] == 0
        assert state.numerators[0] == pytest.approx(g @ g, rel=1e-9 * kappa)
        assert m @ m == pytest.approx(sq_m, rel=1e-9 * kappa)
        params = apply_updates(params, updates)
        assert quad.evaluate(params).loss <= gap0 / (1 + (t + 1) * (1 - beta ** 2) / kappa ** 2) * (1 + 1e-12) + 1e-300


def test_remark61_absolute_curvature_changes_nothing_on_convex_problems():
    """Remark 6.1: with the exact curvature of a convex f, the rule with |q_l| gives the same iterates
    bit for bit (quadratic, logistic regression; the default SGD-m-LS); the sign estimator can be
    negative on a convex quadratic, where the rules would differ."""
    rng = np.random.default_rng(0)
    A = spd_matrix(5, 1, 1.5)
    X = rng.standard_normal((20, 4))
    problems = [BlockQuadratic(A, rng.standard_normal(5), [2, 3]),
                LogisticRegression(X, np.where(X[:, 0] > 0, 1.0, -1.0), 0.1, [1, 3])]
    for prob in problems:
        for absolute in (False, True):
            opt = rule_v01(SGD(momentum=0.9))
            params = prob.split(np.ones(prob.dim))
            state, trace = opt.init(params), []
            for _ in range(15):
                ev = prob.evaluate(params)
                oracle = (lambda d, ev=ev: np.abs(ev.layer_curvature(d))) if absolute else ev.layer_curvature
                updates, state = opt.update(ev.grads, state, params, curvature=oracle)
                params = apply_updates(params, updates)
                trace.append(prob.join(params))
            if absolute:
                np.testing.assert_array_equal(np.array(trace), reference)
            reference = np.array(trace)
    quad = problems[0]
    ev = quad.evaluate(np.ones(5))
    estimates = [ev.layer_curvature(quad.split(rng.standard_normal(5)), kind="sign_hvp", seed=s) for s in range(200)]
    assert np.min(estimates) < 0


@pytest.mark.parametrize("seed", [1, 4, 10, 11])
def test_default_sgd_m_ls_measured_on_quadratics(seed):
    """Measured, not proved (docs/theory.md after Prop. 8′): the default SGD-m-LS (β = 0.9, ρ = 0.9,
    η = 1/L) converges on these quadratics, some single step increases f, its late rate of f − f*
    (steps 100–200) is not below ≈ β = 0.9 (the frozen-step floor of Prop. 8′(b); 0.895 allows
    for the finite window) and at most 0.015 above GD-LS's at the same η."""
    A, sizes = spd_matrix(6, seed, 2.0), random_partition(6, seed)
    quad = BlockQuadratic(A, np.zeros(6), sizes)
    x0 = np.random.default_rng(seed).standard_normal(6)
    gaps = np.array(run_gaps(quad, rule_v01(SGD(momentum=0.9)), x0, 200, quadratic_gap(quad)))
    plain = np.array(run_gaps(quad, plain_gdls(None), x0, 200, quadratic_gap(quad)))
    assert np.any(gaps[1:] > gaps[:-1] * (1 + 1e-9))                 # f rose on a single step
    late, late_plain = (gaps[200] / gaps[100]) ** (1 / 100), (plain[200] / plain[100]) ** (1 / 100)
    assert 0.895 <= late <= late_plain + 0.015 and gaps[200] < 1e-2 * gaps[0]
