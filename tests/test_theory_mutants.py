"""Each theorem's check, and companions showing that a weakened and a strengthened bound fail it.

A check has two halves. *Valid*: on adversarial instances (exact worst cases, starts found
by optimisation, the 2×2 family, the bump function) the observed ratio is at most the
bound. *Sharp*: on the family where docs/theory.md says the bound is attained (or nearly,
with a stated factor), the observed decrease 1 − ratio is at least the bound's guarantee
1 − ρ up to that factor. A strengthened bound (claims more) fails the first half, a
weakened one (claims less) fails the second: both are kept here as tests.
"""
import numpy as np
import pytest

from minilayerlr import theory
from helpers_theory import adversarial_max, one_step_ratio_of_optimizer, plain_gdls, run_gaps
from strategies_optim import random_partition, spd_matrix

# rounding of one step's ratio on matrices with cond ≤ 1e3 (test_theory_sharp's allowance)
ROUND = 1e-9


def two_by_two(a):
    return np.array([[1.0, a], [a, 1.0]])


def random_instances():
    """A few coupled block quadratics (fixed seeds; hypothesis covers the rest)."""
    out = []
    for seed in range(3):
        n = 4 + seed
        out.append((spd_matrix(n, 100 + seed, 1.5), random_partition(n, 200 + seed)))
    return out


# ------------------------------------------------------------------ Theorem 1 and 1′

def check_quadratic_bound(bound, sharp_instances):
    """Valid on the 2×2 family (exact worst, Theorem 3), random instances (BFGS worst) and
    ``sharp_instances``; sharp there: 1 − worst ≤ (1 + 1e-9)(1 − bound)."""
    for a in (-0.99, -0.5, 0.5, 0.9):
        A = two_by_two(a)
        c = theory.coupling_constant(A, [1, 1])
        for f in (0.25, 0.5, 0.9):
            worst = theory.block_jacobi_rate(A, [1, 1], f * 2 / c)
            assert worst <= bound(A, [1, 1], f * 2 / c) + ROUND, (a, f)
    for A, sizes in random_instances():
        scale = 1 / theory.coupling_constant(A, sizes)
        assert theory.worst_one_step_ratio(A, sizes, scale, restarts=2)[0] <= bound(A, sizes, scale) + ROUND
    for A, sizes, scale, e in sharp_instances:
        worst, rho = one_step_ratio_of_optimizer(A, sizes, scale, e), bound(A, sizes, scale)
        assert worst <= rho + ROUND and 1 - worst <= (1 + 1e-9) * (1 - rho) + ROUND


def identity_instances():
    """A = a·I: c = 1, μ = M, every start gives (1 − η)² = ρ_T = ρ′ (Theorem 1 attained)."""
    return [(2.5 * np.eye(4), [1, 3], eta, np.arange(1.0, 5.0)) for eta in (0.3, 1.0, 1.7)]


def one_block_instances():
    """One block, Kantorovich start: ρ′ attained for every η (Theorem 1′(iii))."""
    out = []
    for seed, eta in ((0, 0.4), (1, 1.0), (2, 1.6)):
        A = spd_matrix(4, seed, 2.0)
        lam, V = np.linalg.eigh(A)
        out.append((A, [4], eta, np.linalg.solve(A, V[:, 0] + V[:, -1])))
    return out


def test_theorem1_check_passes_and_its_mutants_fail():
    """Theorem 1: ρ_T passes; (μ/M)^0.8 (the audit's mutant) and 1.05× the decrease fail; 0.95× fails."""
    check_quadratic_bound(theory.contraction_bound, identity_instances())
    mu_over_m = lambda A, s: theory.strong_convexity(A) / theory.block_smoothness(A, s)  # noqa: E731
    power = lambda A, s, eta: 1 - 2 * eta * (1 - eta * theory.coupling_constant(A, s) / 2) * mu_over_m(A, s) ** 0.8
    # on A = [[1, −0.99], [−0.99, 1]], η = 0.5 the true worst is 0.995² = 0.990025 > 0.98738
    assert theory.block_jacobi_rate(two_by_two(-0.99), [1, 1], 0.5) == pytest.approx(0.990025, abs=1e-12)
    assert power(two_by_two(-0.99), [1, 1], 0.5) == pytest.approx(0.98738, abs=1e-5)
    for mutant in (power, lambda A, s, eta: 1 - 1.05 * (1 - theory.contraction_bound(A, s, eta)),
                   lambda A, s, eta: 1 - 0.95 * (1 - theory.contraction_bound(A, s, eta))):
        with pytest.raises(AssertionError):
            check_quadratic_bound(mutant, identity_instances())


def test_theorem1prime_check_passes_and_its_mutants_fail():
    """Theorem 1′: ρ′ passes; 1.02× and 0.98× its decrease fail, and so does dropping the coupling c."""
    check_quadratic_bound(theory.invariant_contraction_bound, one_block_instances())
    rho_p = theory.invariant_contraction_bound
    mu_max = lambda A, s: max(theory.rescaled_strong_convexity(A, s), theory.kantorovich_strong_convexity(A, s))  # noqa: E731
    for mutant in (lambda A, s, eta: 1 - 1.02 * (1 - rho_p(A, s, eta)),
                   lambda A, s, eta: 1 - 0.98 * (1 - rho_p(A, s, eta)),
                   lambda A, s, eta: 1 - 2 * eta * (1 - eta / 2) * mu_max(A, s)):  # "c = 1"
        with pytest.raises(AssertionError):
            check_quadratic_bound(mutant, one_block_instances())


# ----------------------------------------------------------------------- Theorem 2

def check_block_rate(rate):
    """Block-diagonal A, η = 1: every block ratio ≤ rate(A_ll) (random starts); the Kantorovich
    start attains it to rounding."""
    for seed in range(3):
        Al = spd_matrix(3, seed, 1.0 + seed)
        lam, V = np.linalg.eigh(Al)
        for e in list(np.random.default_rng(seed).standard_normal((4, 3))) + [V[:, 0] / lam[0] + V[:, -1] / lam[-1]]:
            r = one_step_ratio_of_optimizer(Al, [3], 1.0, e)
            assert r <= rate(Al) + ROUND
        assert r >= rate(Al) - ROUND  # the last start is Kantorovich's


def test_theorem2_check_passes_and_its_mutants_fail():
    check_block_rate(theory.kantorovich_rate)
    for mutant in (lambda Al: 0.99 * theory.kantorovich_rate(Al), lambda Al: 1.01 * theory.kantorovich_rate(Al)):
        with pytest.raises(AssertionError):
            check_block_rate(mutant)


# ----------------------------------------------------------------------- Theorem 3

def check_jacobi(rate):
    """Scalar blocks: the exact rate is attained at a pencil eigenvector and never exceeded."""
    import scipy.linalg
    for a, eta in ((-0.99, 0.5), (0.5, 0.4), (0.5, 1.2), (0.9, 0.2)):
        A = two_by_two(a)
        V = scipy.linalg.eigh(A, np.eye(2))[1]
        attained = max(one_step_ratio_of_optimizer(A, [1, 1], eta, V[:, k]) for k in (0, 1))
        assert abs(attained - rate(A, [1, 1], eta)) <= ROUND * max(1.0, attained)


def test_theorem3_check_passes_and_its_mutants_fail():
    check_jacobi(theory.block_jacobi_rate)
    mu_b = theory.relative_strong_convexity
    for mutant in (lambda A, s, eta: (1 - eta * mu_b(A, s)) ** 2,          # forgets the coupled mode
                   lambda A, s, eta: theory.block_jacobi_rate(A, s, eta) * 1.001):
        with pytest.raises(AssertionError):
            check_jacobi(mutant)


# -------------------------------------------------------------------- Theorem 4 / 4′

KAPPA = 1000.0
WIDTH = 1e-5  # bump width s, start at distance d = 1 from x*
# The bump adds ε = (Λ − μ)·s·√(2π)/(μ d) ≈ 0.025 to f′ relative to the μ-quadratic, so the
# observed decrease exceeds (2η/κ)(1 − η/2) by a factor ≈ 1 + ε; the sharp half allows 1 + 2ε.
EPS = (KAPPA - 1) * WIDTH * np.sqrt(2 * np.pi)


def bump_ratio(eta):
    bump = theory.BumpFunction(1.0, KAPPA, center=1.0, width=WIDTH)
    gaps = run_gaps(bump, plain_gdls(eta), np.array([1.0]), 1, lambda x: bump.loss(x))
    return gaps[1] / gaps[0]


def one_dimensional_ratio(kappa, eta, dip, width=1e-7):
    """One plain GD-LS step from x₀ = 1 on the spike (dip=False) or the dip of Prop. 4.3 (x* = 0):
    α = η/f''(x₀), computed from the closed forms (the optimizer runs in ``bump_ratio``)."""
    f = theory.BumpFunction(1.0, kappa, center=1.0, width=width, dip=dip)
    x = np.array([1.0])
    x1 = x - eta * f.gradient(x)[0] / f.hessian_at(x)[0, 0]
    return f.loss(x1) / f.loss(x)


def worst_deficit(bound):
    """max over (log10 κ, η·κ/2) ∈ [0.01, 2] × [0.02, 0.999] of claimed / observed decrease on the
    spike and the dip (width 1e-7), by Nelder–Mead from a 3×3 grid (adversarial instances)."""
    def objective(theta):
        kappa = 10.0 ** theta[0]
        eta = theta[1] * 2 / kappa
        worst = max(one_dimensional_ratio(kappa, eta, False), one_dimensional_ratio(kappa, eta, True))
        return (1 - bound(1.0, kappa, eta)) / (1 - worst)
    starts = [(a, f) for a in (0.3, 1.0, 1.7) for f in (0.3, 0.9, 0.99)]
    return adversarial_max(objective, starts, [(0.01, 2.0), (0.02, 0.999)], maxiter=40)


def check_general_bound(bound, sharp_factor):
    """Valid on logistic regression, the bump, and on the spike and dip at the worst (κ, η) found by
    optimisation; sharp on the bump at η = 1/κ, within ``sharp_factor``."""
    for eta_kappa in (0.5, 1.0, 1.9):
        assert bump_ratio(eta_kappa / KAPPA) <= bound(1.0, KAPPA, eta_kappa / KAPPA) + ROUND
    # spike and dip of width s = 1e-7 differ from their limits by O(κ s) ≤ 3e-5 in the decrease
    deficit, where = worst_deficit(bound)
    assert deficit <= 1 + 1e-4, (deficit, where)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = np.where(X @ np.ones(3) > 0, 1.0, -1.0)
    logreg = theory.LogisticRegression(X, y, 0.05, [1, 2])
    mu, big = logreg.strong_convexity(), logreg.smoothness()
    f_star = logreg.optimal_value()
    for eta_kappa in (0.5, 1.0, 1.9):
        gaps = run_gaps(logreg, plain_gdls(eta_kappa * mu / big), 3 * rng.standard_normal(3), 3,
                        lambda x: logreg.loss(x) - f_star)
        for before, after in zip(gaps, gaps[1:]):
            assert after <= bound(mu, big, eta_kappa * mu / big) * before + 1e-13  # f* from Newton: ~1e-15
    eta = 1 / KAPPA
    assert 1 - bump_ratio(eta) <= sharp_factor * (1 - bound(1.0, KAPPA, eta))


def test_theorem4prime_check_passes_and_its_mutants_fail():
    """Theorem 4′ passes (sharp within 1 + 2ε on the bump); 1.1× and 0.9× fail, and so does the
    audit's "first term only" (1 − (2η/κ)(1 − η/2)): the search finds the dip at κ ≈ 1.5, η ≈ 2/κ."""
    new = theory.improved_strongly_convex_bound
    check_general_bound(new, 1 + 2 * EPS)
    first_term_only = lambda m, L, eta: 1 - 2 * eta / (L / m) * (1 - eta / 2)  # noqa: E731
    for mutant in (lambda m, L, eta: 1 - 1.1 * (1 - new(m, L, eta)), lambda m, L, eta: 1 - 0.9 * (1 - new(m, L, eta)),
                   first_term_only):
        with pytest.raises(AssertionError):
            check_general_bound(mutant, 1 + 2 * EPS)
    assert worst_deficit(first_term_only)[0] > 100  # the dip, not rounding, refutes it


def test_theorem4_check_passes_and_its_mutants_fail():
    """Theorem 4 is within a factor 2(1 + 2ε) of the bump; /√κ (the audit's mutant) and 0.9× fail."""
    old = theory.strongly_convex_bound
    check_general_bound(old, 2 * (1 + 2 * EPS))
    sqrt_mutant = lambda m, L, eta: 1 - 2 * eta * (1 - eta * L / m / 2) / np.sqrt(L / m)  # noqa: E731
    for mutant in (sqrt_mutant, lambda m, L, eta: 1 - 0.9 * (1 - old(m, L, eta))):
        with pytest.raises(AssertionError):
            check_general_bound(mutant, 2 * (1 + 2 * EPS))
