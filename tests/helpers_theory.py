"""Shared helpers of the theory tests: the plain idealized method and its runs.

The theorems are about GD-LS exactly as written (no line search): ``plain_gdls``
builds it as ``LayerwiseStepSize`` around SGD with ρ = 0, λ = 0, no cap.
"""
import functools

import numpy as np

from minilayerlr.optim import SGD, LayerwiseStepSize, apply_updates
from minilayerlr.theory import BlockQuadratic


def plain_gdls(scale=None):
    """GD-LS as the theorems state it: α_l = η‖g_l‖²/g_lᵀH_ll g_l, no safeguard."""
    return LayerwiseStepSize(SGD(lr=1.0), scale="blocks" if scale is None else scale, damping=0.0,
                             ema=0.0, curvature_kind="hessian", denominator="signed")


def run_gaps(problem, opt, x0, steps, gap):
    """Run ``opt`` on ``problem`` from flat x0; return [gap(x_0), …, gap(x_steps)]."""
    params = problem.split(x0)
    state = opt.init(params)
    gaps = [gap(x0)]
    for _ in range(steps):
        ev = problem.evaluate(params)
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = apply_updates(params, updates)
        gaps.append(gap(problem.join(params)))
    return gaps


def quadratic_gap(quad):
    """f(x) − f* = ½ (x − x*)ᵀA(x − x*), computed without cancellation."""
    x_star = quad.join(quad.minimizer())
    return lambda x: 0.5 * (x - x_star) @ quad.A @ (x - x_star)


def one_step_ratio_of_optimizer(A, sizes, scale, e):
    """One step of the plain GD-LS optimizer from error e (x* = 0): (f(x⁺) − f*)/(f(x) − f*)."""
    quad = BlockQuadratic(A, np.zeros(len(A)), sizes)
    x1 = run_gaps(quad, plain_gdls(scale), e, 1, lambda x: x)[-1]
    return (x1 @ A @ x1) / (e @ A @ e)


def adversarial_max(objective, starts, bounds, maxiter=60):
    """Maximise ``objective(θ)`` over the box ``bounds`` (list of (lo, hi)) by Nelder–Mead from each
    start, θ clipped into the box; returns (value, θ) of the best point found (attained, so a valid
    bound must lie above it). Deterministic: the starts are given."""
    import scipy.optimize
    lo, hi = np.array(bounds, dtype=float).T
    best_value, best_theta = -np.inf, None
    for x0 in starts:
        x0 = np.clip(np.asarray(x0, dtype=float), lo, hi)
        res = scipy.optimize.minimize(lambda th: -objective(np.clip(th, lo, hi)), x0, method="Nelder-Mead",
                                      options={"maxiter": maxiter, "xatol": 1e-7, "fatol": 1e-14})
        for theta in (x0, np.clip(res.x, lo, hi)):
            value = objective(theta)
            if value > best_value:
                best_value, best_theta = value, theta
    return float(best_value), best_theta


def gdls_armijo_ratio(problem, x0, scale, nu, tau, gap, max_shrinks=30):
    """One GD-LS step with Armijo backtracking (the pure rule ``armijo_factor`` with ν, τ), plain
    α_l = η‖g_l‖²/g_lᵀH_ll g_l: returns gap(x⁺)/gap(x0) (Theorem 10)."""
    from minilayerlr.optim.safeguards import armijo_factor
    ev = problem.evaluate(x0)
    g = ev.gradient
    u = np.zeros_like(g)
    for i in range(problem.num_blocks):
        s = problem.block_slice(i)
        curv = g[s] @ ev.block_hessian(i) @ g[s]
        if curv > 0:
            u[s] = -scale * (g[s] @ g[s]) / curv * g[s]
    t, _ = armijo_factor(lambda t: problem.loss(x0 + t * u), ev.loss, float(-g @ u),
                         sufficient_decrease=nu, shrink=tau, max_shrinks=max_shrinks)
    return gap(x0 + t * u) / gap(x0)


@functools.lru_cache(maxsize=None)
def measured_floor():
    """Prop. 9(c)'s experiment, run once per session: 3000 noisy SGD-LS steps on scalar blocks started
    from the stationary law; returns (A, sizes, η, noise covariance, mean gap, its standard error)."""
    from minilayerlr import theory
    from minilayerlr.optim import SGD, LayerwiseStepSize, apply_updates
    from test_theory_sharp import scalar_block_matrix
    sizes = (1, 2, 1)
    A = scalar_block_matrix(list(sizes), 7, 1.0)
    quad = BlockQuadratic(A, np.zeros(4), list(sizes))
    scale, n = 0.5 / theory.coupling_constant(A, list(sizes)), 3000
    rng = np.random.default_rng(11)
    root = rng.standard_normal((4, 4)) * 0.1
    cov = root @ root.T
    P = theory.block_jacobi_noise_covariance(A, list(sizes), scale, cov)
    sd = theory.block_jacobi_floor_standard_error(A, list(sizes), scale, cov, n)
    opt = LayerwiseStepSize(SGD(), scale=scale, ema=0.0)
    params = quad.split(rng.multivariate_normal(np.zeros(4), P))
    state, gaps = opt.init(params), []
    for _ in range(n):
        ev = quad.evaluate(params)
        gaps.append(ev.loss)
        noisy = quad.split(quad.join(ev.grads) + rng.multivariate_normal(np.zeros(4), cov))
        updates, state = opt.update(noisy, state, params, curvature=ev.layer_curvature)
        params = apply_updates(params, updates)
    return A, sizes, scale, cov, float(np.mean(gaps)), sd


def rule_v01(base, **options):
    """The 0.1 default SGD-m-LS/SGD-LS rule (η = 1/L, the signed average q̄_l, ρ = 0.9 unless given):
    ``minilayerlr.optim.rule_v01`` where the package has it, else ``LayerwiseStepSize`` with its
    0.1 defaults. The theory of docs/theory.md §5 is about this rule; pinning it keeps the tests
    about the same rule whatever ``LayerwiseStepSize``'s defaults become."""
    import minilayerlr.optim
    factory = getattr(minilayerlr.optim, "rule_v01", None)
    return factory(base, **options) if factory is not None else LayerwiseStepSize(base, **options)


def assert_claim_holds_and_mutants_fail(check, claim, *mutants):
    """``check(claim)`` passes and ``check(m)`` raises AssertionError for every mutant m
    (a weakened and a strengthened version of the claim)."""
    import pytest
    check(claim)
    for mutant in mutants:
        with pytest.raises(AssertionError):
            check(mutant)
