"""Theorem 1′ and Theorem 3 (docs/theory.md §2): ρ_observed ≤ ρ′ ≤ ρ_T, invariance, exactness.

The observed worst one-step ratio comes from ``worst_one_step_ratio`` (BFGS over the
start): it is attained by a start, so it is a lower bound on the true worst case and
every valid bound must lie above it. Rounding of a ratio eᵀAe/e'ᵀAe' computed from one
GD-LS step is a few ulps times cond(A) (the step solves nothing, but A's rows of size
‖A‖ act on errors of size ‖e‖/cond): we allow 1e-12·cond(A), far below every gap tested.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilayerlr import theory
import scipy.linalg
import scipy.special

from minilayerlr.theory.bounds import block_slices
from helpers_theory import one_step_ratio_of_optimizer
from strategies_optim import block_quadratics, fractions, random_partition, spd_matrix


def rounding(A):
    """Rounding allowance of a one-step ratio on A (see the module docstring)."""
    return 1e-12 * np.linalg.cond(A)


def scalar_block_matrix(sizes, seed, log10_cond):
    """A with every A_ll = a_l·I: C = B^{-1/2} M B^{-1/2} (unit diagonal blocks) rescaled by a_l."""
    n = sum(sizes)
    M = spd_matrix(n, seed, log10_cond)
    slices = block_slices(sizes)
    T = np.zeros((n, n))
    for s in slices:
        lam, V = np.linalg.eigh(M[s, s])
        T[s, s] = (V / np.sqrt(lam)) @ V.T                 # M_ll^{-1/2}
    C = T @ M @ T
    for s in slices:
        C[s, s] = np.eye(s.stop - s.start)                 # exactly I (rounding removed)
    a = 10.0 ** np.random.default_rng(seed + 5).uniform(-1, 1, len(sizes))
    S = np.diag(np.repeat(np.sqrt(a), sizes))
    A = S @ C @ S
    return (A + A.T) / 2


# ---------------------------------------------------------------------------- Theorem 1′

@settings(max_examples=30)  # each example runs ~12 BFGS searches on n ≤ 8
@given(block_quadratics(), fractions)
def test_theorem1prime_observed_below_rho_prime_below_theorem1(problem, fraction):
    """Theorem 1′ (docs/theory.md): worst observed ratio ≤ ρ′(η) ≤ ρ_T(η) for 0 < η < 2/c."""
    A, _, sizes, seed = problem
    scale = fraction * 2 / theory.coupling_constant(A, sizes)
    rho_t = theory.contraction_bound(A, sizes, scale)
    rho_p = theory.invariant_contraction_bound(A, sizes, scale)
    observed, e = theory.worst_one_step_ratio(A, sizes, scale, restarts=3, seed=seed)
    assert observed <= rho_p + rounding(A) and rho_p <= rho_t + 1e-15
    # the optimiser's start really gives that ratio when the optimizer itself runs
    assert one_step_ratio_of_optimizer(A, sizes, scale, e) == pytest.approx(observed, rel=rounding(A), abs=rounding(A))


@given(block_quadratics(), st.integers(0, 2**31 - 1))
def test_theorem1prime_is_invariant_and_mu_d_is_the_best_rescaled_mu_over_m(problem, seed):
    """Theorem 1′(ii): ρ′ is unchanged by x_l → s_l x_l; μ_D = max over rescalings of μ/M."""
    A, _, sizes, _ = problem
    rng = np.random.default_rng(seed)
    S = np.diag(np.repeat(10.0 ** rng.uniform(-1.5, 1.5, len(sizes)), sizes))
    SAS = S @ A @ S
    scale = 1 / theory.coupling_constant(A, sizes)
    tol = 1e-10 * np.linalg.cond(SAS)  # eigen-solvers on the rescaled pencil: cond·eps
    assert theory.invariant_contraction_bound(SAS, sizes, scale) == pytest.approx(
        theory.invariant_contraction_bound(A, sizes, scale), abs=tol)
    mu_d = theory.rescaled_strong_convexity(A, sizes)
    mu_over_m = lambda X: theory.strong_convexity(X) / theory.block_smoothness(X, sizes)  # noqa: E731
    assert mu_over_m(A) <= mu_d * (1 + tol) and mu_over_m(SAS) <= mu_d * (1 + tol)
    best = np.diag(np.concatenate([np.full(s.stop - s.start, np.linalg.eigvalsh(A[s, s])[-1] ** -0.5)
                                   for s in block_slices(sizes)]))
    assert mu_over_m(best @ A @ best) == pytest.approx(mu_d, rel=tol)


@given(st.integers(1, 6), st.integers(0, 2**31 - 1), st.floats(0.0, 3.0), st.floats(0.02, 0.98))
def test_theorem1prime_one_block_is_attained(n, seed, log10_cond, fraction):
    """Theorem 1′(iii): with one block, ρ′(η) = 1 − η(2 − η)·4κ/(1 + κ)² is the exact worst ratio."""
    A = spd_matrix(n, seed, log10_cond)
    scale = 2 * fraction
    rho_p = theory.invariant_contraction_bound(A, [n], scale)
    lam, V = np.linalg.eigh(A)
    kantorovich_start = np.linalg.solve(A, V[:, 0] + V[:, -1])  # g on the two extreme eigenvectors
    assert one_step_ratio_of_optimizer(A, [n], scale, kantorovich_start) == pytest.approx(rho_p, abs=rounding(A))
    assert theory.worst_one_step_ratio(A, [n], scale, restarts=2, seed=seed)[0] <= rho_p + rounding(A)


@given(st.integers(1, 4), st.integers(0, 2**31 - 1), st.floats(0.0, 3.0))
def test_theorem1prime_block_diagonal_at_eta_one_gives_theorem2(n_blocks, seed, log10_cond):
    """Theorem 1′(iv): A = B, η = 1: ρ′(1) = max_l ((κ_l − 1)/(κ_l + 1))² (Theorem 2's worst block)."""
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(1, 4, n_blocks)]
    A = np.zeros((sum(sizes), sum(sizes)))
    rates = []
    for i, s in enumerate(block_slices(sizes)):
        A[s, s] = spd_matrix(s.stop - s.start, seed + i, log10_cond * rng.uniform())
        rates.append(theory.kantorovich_rate(A[s, s]))
    assert theory.invariant_contraction_bound(A, sizes, 1.0) == pytest.approx(max(rates), abs=1e-13)


# ----------------------------------------------------------------------------- Theorem 3

@settings(max_examples=30)
@given(st.integers(2, 7), st.integers(0, 2**31 - 1), st.floats(0.0, 2.5), st.floats(0.05, 1.25))
def test_theorem3_scalar_blocks_worst_ratio_is_the_jacobi_formula(n, seed, log10_cond, fraction):
    """Theorem 3 (docs/theory.md): A_ll = a_l·I: worst ratio = max((1 − ημ_B)², (1 − ηc)²), for any η.

    η ranges past 2/c (fraction up to 1.25), where the formula exceeds 1: still exact.
    """
    sizes = random_partition(n, seed, max_blocks=n)
    A = scalar_block_matrix(sizes, seed, log10_cond)
    c = theory.coupling_constant(A, sizes)
    scale = fraction * 2 / c
    exact = theory.block_jacobi_rate(A, sizes, scale)
    # Proposition 7(d): for scalar blocks E = D = B, so R(η) is this exact rate
    assert theory.ema_contraction_bound(A, sizes, scale) == pytest.approx(exact, rel=rounding(A), abs=rounding(A))
    B = theory.block_diagonal(A, sizes)
    pencil = scipy.linalg.eigh(A, B)[1]
    attained = max(one_step_ratio_of_optimizer(A, sizes, scale, pencil[:, 0]), one_step_ratio_of_optimizer(A, sizes, scale, pencil[:, -1]))
    assert attained == pytest.approx(exact, rel=rounding(A), abs=rounding(A))
    observed = theory.worst_one_step_ratio(A, sizes, scale, restarts=2, seed=seed)[0]
    assert observed <= exact * (1 + rounding(A)) + rounding(A)
    if scale < 2 / c:  # Theorem 1′ covers it too, and must not be below the exact value
        assert exact <= theory.invariant_contraction_bound(A, sizes, scale) + rounding(A)
    best = theory.block_jacobi_best_scale(A, sizes)
    mu_b = theory.relative_strong_convexity(A, sizes)
    assert theory.block_jacobi_rate(A, sizes, best) == pytest.approx(((c - mu_b) / (c + mu_b)) ** 2, rel=1e-12)
    for other in (0.9 * best, 1.1 * best):
        assert theory.block_jacobi_rate(A, sizes, other) > theory.block_jacobi_rate(A, sizes, best)


def test_theorem3_rejects_non_scalar_blocks():
    with pytest.raises(ValueError, match="^A: Theorem 3"):
        theory.block_jacobi_rate(spd_matrix(3, 0, 1.0), [2, 1], 0.5)


# ------------------------------------------------------- Proposition 4.4: the one-dimensional search

def _one_dimensional_worst(kappa, eta, pieces=24, starts=10):
    """Largest ratio found by L-BFGS-B over 1-D f with f'' piecewise constant in [1, κ] on [−1, 1]
    (``pieces`` pieces) and f''(x₀) = h ∈ [1, κ] at the start x₀ = 1 (a narrow spike or dip, whose
    effect on f and f' vanishes with its width); x* = 0. Attained up to that limit."""
    import scipy.optimize
    edges = np.linspace(-1.0, 1.0, pieces + 1)

    def gap(y, k):
        lo = np.clip(edges[:-1], min(0.0, y), max(0.0, y))
        hi = np.clip(edges[1:], min(0.0, y), max(0.0, y))
        return float(np.sign(y) * k @ ((y - lo) ** 2 - (y - hi) ** 2) / 2)

    def ratio(theta):
        k = 1 + (kappa - 1) * scipy.special.expit(theta[:pieces])
        h = 1 + (kappa - 1) * scipy.special.expit(theta[pieces])
        g = k @ (np.clip(edges[1:], 0, 1) - np.clip(edges[:-1], 0, 1))   # f'(1) = ∫₀¹ f''
        return gap(1 - eta * g / h, k) / gap(1.0, k)

    rng = np.random.default_rng(0)
    return max(-scipy.optimize.minimize(lambda t: -ratio(t), rng.normal(0, 3, pieces + 1), method="L-BFGS-B",
                                        options={"maxiter": 200}).fun for _ in range(starts))


@pytest.mark.parametrize("kappa, eta_kappa", [(4.0, 0.5), (4.0, 1.6), (2.0, 1.9), (10.0, 1.0)])
def test_proposition44_one_dimensional_search_never_exceeds_the_exact_rate(kappa, eta_kappa):
    """Proposition 4.4: over piecewise-constant curvatures in [μ, Λ] the worst one-dimensional ratio
    found by optimisation reaches max((1 − η/κ)², (1 − ηκ)²) (to 1e-3, the search's reach) and never
    exceeds it (to 1e-9), while Theorem 4′ is larger."""
    import scipy.special  # noqa: F401 (used inside the search)
    eta = eta_kappa / kappa
    exact = theory.one_dimensional_rate(1.0, kappa, eta)
    found = _one_dimensional_worst(kappa, eta)
    assert exact - 1e-3 <= found <= exact + 1e-9
    assert found < theory.improved_strongly_convex_bound(1.0, kappa, eta)


def test_bound_table_shows_c_lambda_and_r_and_they_bound_the_observed_ratio(capsys):
    """print_bound_table (docs/theory.md §2): c ≤ c_λ, and GD-LS's observed worst ratio is ≤ min(ρ′, R)
    (Theorem 1′ and Proposition 7(c)), with equality to R on the scalar-block rows (Theorem 3)."""
    rows = theory.bound_table()
    for r in rows:
        assert r["c"] <= r["c_lambda"] * (1 + 1e-12)
        assert r["observed"] <= min(r["rho_prime"], r["R"]) + 1e-12
    for r in (rows[0], rows[2]):                         # 2×2 and Jacobi: scalar blocks
        assert r["observed"] == pytest.approx(r["R"], abs=1e-9)
    theory.print_bound_table(rows)
    out = capsys.readouterr().out
    assert "c_lam" in out and " R " in out and len(out.splitlines()) == len(rows) + 1
