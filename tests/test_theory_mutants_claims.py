"""The parts of docs/theory.md that had only direct tests, against weakened and strengthened mutants.

Theorem 1′(i)–(iv) one by one, Proposition 8′(c)(iv) (the horizon statement that replaced the
second edition's O(1/t) bound) and Remarks 4.1 and 6.2 (Propositions 11 and 6.3, Corollary 6.4 and
Theorem 10's second terms are in ``test_theory_mutants_default.py``). As in the other mutant files a
check has a *valid* half (adversarial instances, some found by Nelder–Mead over the instance's
parameters) and a *sharp* half (where the claim is attained or approached, within a tolerance
derived from the instance); a strengthened mutant fails the first, a weakened one the second.
Identities (Theorem 1′(ii)'s invariance, Remark 6.2(ii)) get ±1 % mutants.
"""
import numpy as np
import pytest

from minilayerlr import theory
from minilayerlr.optim import SGD, LayerwiseStepSize, apply_updates
from minilayerlr.theory import BlockQuadratic
from helpers_theory import adversarial_max, assert_claim_holds_and_mutants_fail
from strategies_optim import random_partition, spd_matrix

# eigen-solves and one step on matrices with cond ≤ 1e3: relative rounding ≲ 1e-12, far below 1 %
ROUND = 1e-9


def loosened(claim, fraction):
    return lambda *a: claim(*a) + fraction * abs(1 - claim(*a))


def times(claim, factor):
    return lambda *a: factor * claim(*a)


def cholesky_matrix(theta, n):
    """A = LLᵀ + 0.05 I from the n(n + 1)/2 entries of a lower-triangular L (search parameters)."""
    L = np.zeros((n, n))
    L[np.tril_indices(n)] = theta
    A = L @ L.T + 0.05 * np.eye(n)
    return (A + A.T) / 2


def random_instances():
    return [(spd_matrix(4 + k, 500 + k, 1.5), random_partition(4 + k, 600 + k)) for k in range(3)]


def mu_max(A, s):
    return max(theory.rescaled_strong_convexity(A, s), theory.kantorovich_strong_convexity(A, s))


def mu_over_m(A, s):
    return theory.strong_convexity(A) / theory.block_smoothness(A, s)


def kantorovich_start(Al):
    lam, V = np.linalg.eigh(Al)
    return np.linalg.solve(Al, V[:, 0] + V[:, -1])


def one_step_ratio(A, sizes, eta, e):
    from helpers_theory import one_step_ratio_of_optimizer
    return one_step_ratio_of_optimizer(A, sizes, eta, e)


# ------------------------------------------------------------------------- Theorem 1′(i)–(iv)

def check_theorem1prime_i(lower):
    """(i) lower(A) ≤ max(μ_D, μ_W) (i.e. ρ′ ≤ ρ_T with lower = μ/M). Sharp (and valid): scalar blocks
    with equal diagonals (D = MI, K_l = 1), where μ/M = μ_D = μ_W. Valid: random instances and 4×4
    matrices with blocks [2, 2] searched by Nelder–Mead maximising lower/max(μ_D, μ_W)."""
    for A, s in ((np.array([[1.0, -0.6], [-0.6, 1.0]]), [1, 1]), (theory.jacobi_matrix(4, 0.3), [1] * 4)):
        assert lower(A, s) <= mu_max(A, s) * (1 + ROUND)
        assert lower(A, s) >= mu_max(A, s) * (1 - ROUND)
    for A, s in random_instances():
        assert lower(A, s) <= mu_max(A, s) * (1 + ROUND)
    worst, _ = adversarial_max(lambda th: lower(cholesky_matrix(th, 4), [2, 2]) / mu_max(cholesky_matrix(th, 4), [2, 2]),
                               [np.arange(10) / 10 + 0.3], [(-3, 3)] * 10, maxiter=80)
    assert worst <= 1 + ROUND


def best_rescaled_mu(A, s, theta):
    S = np.repeat(10.0 ** np.asarray(theta), s)
    return mu_over_m(S[:, None] * A * S[None, :], s)


def check_theorem1prime_ii(value):
    """(ii) max over rescalings of μ(SAS)/M(SAS) = value(A). Valid: Nelder–Mead over log10 s_l.
    Sharp: s_l = Λ_l^{−1/2} attains it."""
    for A, s in random_instances():
        top = [-0.5 * np.log10(np.linalg.eigvalsh(A[k:k + n, k:k + n])[-1]) for k, n in zip(np.cumsum([0] + s[:-1]), s)]
        assert value(A, s) * (1 - ROUND) <= best_rescaled_mu(A, s, top) <= value(A, s) * (1 + ROUND)
        found, _ = adversarial_max(lambda th: best_rescaled_mu(A, s, th) / value(A, s),
                                   [np.linspace(-1, 1, len(s))], [(-3, 3)] * len(s), maxiter=120)
        assert found <= 1 + ROUND


def check_theorem1prime_ii_invariance(factor):
    """(ii) ρ′(SAS) = factor(S)·ρ′(A) (the claim: factor 1) for random block rescalings (an identity)."""
    for A, s in random_instances():
        scales = 10.0 ** np.linspace(0.5, 1.5, len(s))     # Π s_l ≥ 10^{L/2}: a ±1 % mutant moves ρ′ by > 1e-3
        S = np.repeat(scales, s)
        eta = 1 / theory.coupling_constant(A, s)
        left = theory.invariant_contraction_bound(S[:, None] * A * S[None, :], s, eta)
        assert abs(left - factor(scales) * theory.invariant_contraction_bound(A, s, eta)) <= 1e-7


def check_theorem1prime_iii(rate):
    """(iii) one block: rate(A, η) is the exact worst ratio. Valid: BFGS over the start. Sharp: the
    Kantorovich start g = v_min + v_max attains it."""
    for seed, n in ((1, 3), (2, 4)):
        A = spd_matrix(n, seed, 1.5)
        for eta in (0.4, 1.0, 1.6):
            assert abs(one_step_ratio(A, [n], eta, kantorovich_start(A)) - rate(A, eta)) <= ROUND
            assert theory.worst_one_step_ratio(A, [n], eta, restarts=1, seed=seed)[0] <= rate(A, eta) + ROUND


def check_theorem1prime_iv(rate):
    """(iv) A = B, η = 1: the whole step's worst ratio is rate(blocks). Valid: BFGS over the start.
    Sharp: the Kantorovich start in the worst block (zero elsewhere)."""
    blocks = [spd_matrix(2, 11, 1.0), spd_matrix(3, 12, 1.8), spd_matrix(1, 13, 0.0)]
    sizes = [len(b) for b in blocks]
    A = np.zeros((6, 6))
    for k, (b, n) in enumerate(zip(blocks, sizes)):
        A[sum(sizes[:k]):sum(sizes[:k]) + n, sum(sizes[:k]):sum(sizes[:k]) + n] = b
    e = np.zeros(6)
    e[2:5] = kantorovich_start(blocks[1])
    assert abs(one_step_ratio(A, sizes, 1.0, e) - rate(blocks)) <= ROUND
    assert theory.worst_one_step_ratio(A, sizes, 1.0, restarts=2, seed=0)[0] <= rate(blocks) + ROUND


def kantorovich_one_block(A, eta):
    eig = np.linalg.eigvalsh(A)
    return 1 - eta * (2 - eta) * 4 * eig[0] * eig[-1] / (eig[0] + eig[-1]) ** 2


def worst_block(blocks):
    return max(theory.kantorovich_rate(b) for b in blocks)


THEOREM1PRIME = [
    ("i", check_theorem1prime_i, mu_over_m, times(mu_over_m, 0.99), times(mu_over_m, 1.01)),
    ("ii_best_rescaling", check_theorem1prime_ii, theory.rescaled_strong_convexity,
     times(theory.rescaled_strong_convexity, 1.01), times(theory.rescaled_strong_convexity, 0.99)),
    ("ii_invariance", check_theorem1prime_ii_invariance, lambda s: 1.0,
     lambda s: np.prod(s) ** 0.01, lambda s: np.prod(s) ** -0.01),
    ("iii", check_theorem1prime_iii, kantorovich_one_block, loosened(kantorovich_one_block, 0.01),
     lambda A, eta: theory.kantorovich_rate(A)),        # strengthened: the η = 1 value for every η
    ("iv", check_theorem1prime_iv, worst_block, loosened(worst_block, 0.01),
     lambda blocks: float(np.mean([theory.kantorovich_rate(b) for b in blocks]))),   # the mean block
]


@pytest.mark.parametrize("name, check, claim, weakened, strengthened", THEOREM1PRIME, ids=[c[0] for c in THEOREM1PRIME])
def test_theorem1prime_parts_pass_and_their_mutants_fail(name, check, claim, weakened, strengthened):
    """docs/theory.md Theorem 1′(i)–(iv), each a claim of its own: passes; a weakened and a strengthened mutant fail."""
    assert_claim_holds_and_mutants_fail(check, claim, weakened, strengthened)


# -------------------------------------------- Proposition 8′(c)(iv): SGD-m-LS over a horizon (ρ = 0, one block)

def momentum_run(A, x0, beta, steps):
    """SGD-m-LS (heavy ball β, ρ = 0, η = 1, one block) on ½xᵀAx: (Δ_0, …, Δ_steps), (c_0, …, c_{steps−1})."""
    quad = BlockQuadratic(A, np.zeros(len(A)), [len(A)])
    opt = LayerwiseStepSize(SGD(momentum=beta), scale=1.0, ema=0.0)
    params, gaps, cos = quad.split(x0), [0.5 * x0 @ A @ x0], []
    state = opt.init(params)
    for _ in range(steps):
        ev = quad.evaluate(params)
        g = quad.join(ev.grads)
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = apply_updates(params, updates)
        m, x = quad.join(state.base_state.momentum), quad.join(params)
        cos.append((g @ g) / (m @ m))
        gaps.append(0.5 * x @ A @ x)
    return np.array(gaps), np.array(cos)


HORIZON = 4


def families(kappa, beta):
    """The two families of the proof on diag(1, κ), with ε small enough that the tolerances
    τ_lo = 4(t(2 + √κ)ε/β^t)², τ_up = 18t²κ⁴ε²/β^{2t} (t = HORIZON) are ≤ 1e-3:
    g₀ = (ε, 1) (every step near c_s/κ) and g₀ = (1, ε) (every step near κc_s)."""
    A, t = np.diag([1.0, kappa]), HORIZON
    eps_lo, eps_up = 1e-5, 1e-6
    tau_lo = 4 * (t * (2 + np.sqrt(kappa)) * eps_lo / beta ** t) ** 2
    tau_up = 18 * t * t * kappa ** 4 * eps_up ** 2 / beta ** (2 * t)
    assert max(tau_lo, tau_up) <= 1e-3
    lo = momentum_run(A, np.linalg.solve(A, [eps_lo, 1.0]), beta, t)
    up = momentum_run(A, np.linalg.solve(A, [1.0, eps_up]), beta, t)
    return lo, tau_lo, up, tau_up, eps_lo


def check_proposition8prime_civ(bounds):
    """(iv)(α) over steps t₀..t − 1, lower ≤ 1 − Δ_t/Δ_{t₀} ≤ upper with (lower, upper) = bounds(c, κ).
    Sharp and valid first: the two families (horizon 1..4) reach each end within τ. Valid: every horizon
    of runs on random quadratics, and 3-D instances searched by Nelder–Mead maximising lower − decrease
    and decrease − upper (horizon 1..4). Rounding: the decreases are ≥ 1e-10 here and Δ carries relative
    rounding ~1e-15: 1e-13 absolute."""
    for kappa in (4.0, 10.0):
        for beta in (0.5, 0.9):
            (gaps, cos), tau_lo, (gaps2, cos2), tau_up, _ = families(kappa, beta)
            low, _ = bounds(cos[1:HORIZON], kappa)
            decrease = 1 - gaps[HORIZON] / gaps[1]
            assert low - 1e-13 <= decrease <= (1 + tau_lo) * low + 1e-13
            _, high = bounds(cos2[1:HORIZON], kappa)
            decrease = 1 - gaps2[HORIZON] / gaps2[1]
            assert (1 - tau_up) * high - 1e-13 <= decrease <= high + 1e-13
    for n, seed in ((3, 31), (5, 32)):
        A = spd_matrix(n, seed, 1.0)
        lam = np.linalg.eigvalsh(A)
        for beta in (0.5, 0.9):
            gaps, cos = momentum_run(A, np.random.default_rng(seed).standard_normal(n), beta, 8)
            for t0 in range(1, 8):
                for t in range(t0 + 1, 9):
                    low, high = bounds(cos[t0:t], lam[-1] / lam[0])
                    assert low - 1e-12 <= 1 - gaps[t] / gaps[t0] <= high + 1e-12

    def excess(theta):
        lam = np.array([1.0, 1.0 + 9.0 / (1 + np.exp(-theta[3])), 10.0])
        gaps, cos = momentum_run(np.diag(lam), theta[:3], 0.5 + 0.4 / (1 + np.exp(-theta[4])), HORIZON)
        low, high = bounds(cos[1:HORIZON], 10.0)
        decrease = 1 - gaps[HORIZON] / gaps[1]
        return max(low - decrease, decrease - high)
    worst, where = adversarial_max(excess, [(1.0, 0.5, 0.2, 0.0, 0.0), (0.1, 0.1, 1.0, 1.0, -1.0)],
                                   [(-3, 3)] * 5, maxiter=80)
    assert worst <= 1e-12, (worst, where)


def check_proposition8prime_civ_apriori(factor):
    """(iv)(β) Δ_t ≤ factor(t, κ, β)·Δ_1 (claim: 1) and no smaller factor: on the first family Δ_t/Δ_1 ≥
    1 − κ²ε²Σ_{s<t}β^{−2s} (c_s ≤ κε²/β^{2s}); valid on random runs too (Δ never increases)."""
    for kappa in (4.0, 10.0):
        for beta in (0.5, 0.9):
            (gaps, _), _, _, _, eps = families(kappa, beta)
            for t in range(2, HORIZON + 1):
                ratio, phi = gaps[t] / gaps[1], factor(t, kappa, beta)
                assert ratio <= phi * (1 + 1e-13)                                                   # valid
                assert ratio >= phi * (1 - kappa ** 2 * eps ** 2 * sum(beta ** (-2 * s) for s in range(1, t)))
    A = spd_matrix(4, 33, 1.0)
    lam = np.linalg.eigvalsh(A)
    gaps, _ = momentum_run(A, np.ones(4), 0.9, 8)
    for t in range(2, 9):
        assert gaps[t] <= factor(t, lam[-1] / lam[0], 0.9) * gaps[1] * (1 + 1e-13)


def horizon_mutant(lower_factor, upper_factor):
    def bounds(c, k):
        low, high = theory.momentum_horizon_bounds(c, k)
        return lower_factor * low, upper_factor * high
    return bounds


def test_proposition8prime_civ_horizon_passes_and_its_mutants_fail():
    """docs/theory.md Proposition 8′(c)(iv)(α): 1 − Π(1 − c_s/κ) ≤ 1 − Δ_t/Δ_{t₀} ≤ 1 − Π(1 − κc_s)⁺ over any
    horizon, both ends approached; either end moved by 1 % either way fails (the lower end ×0.99 and the
    upper ×1.01 are weakened and fail the sharp half, the others the valid half)."""
    check_proposition8prime_civ(theory.momentum_horizon_bounds)
    for factors in ((0.99, 1.0), (1.01, 1.0), (1.0, 1.01), (1.0, 0.99)):
        with pytest.raises(AssertionError):
            check_proposition8prime_civ(horizon_mutant(*factors))


@pytest.mark.parametrize("mutant", [lambda t, k, b: 1.01, lambda t, k, b: (1 - (1 - b * b) / k ** 2) ** (t - 1)],
                         ids=["weakened_1.01", "strengthened_linear_rate"])
def test_proposition8prime_civ_no_rate_after_the_first_step(mutant):
    """docs/theory.md Proposition 8′(c)(iv)(β): sup Δ_t/Δ_1 = 1 for every t ≥ 2; 1.01 fails the sharp half and
    the linear rate (1 − (1 − β²)/κ²)^{t−1} (what the second edition's (iv) suggests) the valid half."""
    check_proposition8prime_civ_apriori(lambda t, k, b: 1.0)
    with pytest.raises(AssertionError):
        check_proposition8prime_civ_apriori(mutant)


# ------------------------------------------------------------------- Remark 4.1: R(η) ≤ R₄(η) on a quadratic

def r4_of(A, sizes, eta):
    eig = np.linalg.eigvalsh(A)
    return theory.exact_strongly_convex_rate(eig[0], eig[-1], eta)


def check_remark41(bound):
    """R(η) ≤ bound(A, η) (claim: R₄ with κ = cond(A)). Sharp and valid: one block, where R = R₄. Valid:
    random instances and 4×4 matrices with blocks [2, 2] and [1, 1, 2] searched over (L, η·κ)."""
    for seed in (1, 2):
        A = spd_matrix(3, seed, 1.2)
        kappa = np.linalg.cond(A)
        for eta_kappa in (0.5, 1.5, 2.5):
            R = theory.ema_contraction_bound(A, [3], eta_kappa / kappa)
            assert abs(R - bound(A, [3], eta_kappa / kappa)) <= ROUND * max(1.0, R)
    for A, s in random_instances():
        eta = 1.0 / np.linalg.cond(A)
        assert theory.ema_contraction_bound(A, s, eta) <= bound(A, s, eta) + ROUND
    for sizes in ([2, 2], [1, 1, 2]):
        def ratio(theta):
            A, eta = cholesky_matrix(theta[:10], 4), theta[10]
            return theory.ema_contraction_bound(A, sizes, eta / np.linalg.cond(A)) / bound(A, sizes, eta / np.linalg.cond(A))
        worst, _ = adversarial_max(ratio, [list(np.arange(10) / 10 + 0.3) + [1.0]], [(-3, 3)] * 10 + [(0.05, 3.0)], maxiter=60)
        assert worst <= 1 + ROUND


# ------------------------------------------- Remark 6.2: the coupling multiplier's range and line search

def coupling_ratio(A, sizes, e):
    """Σ α̂_l² C_ll / α̂ᵀCα̂ (unclipped) at x = e (x* = 0), d = g, ρ = 0, from the oracle's Gram."""
    quad = BlockQuadratic(A, np.zeros(len(A)), sizes)
    ev = quad.evaluate(quad.split(e))
    q, gram = ev.layer_curvature(ev.grads, coupling=True)
    g = quad.join(ev.grads)
    n = np.array([g[quad.block_slice(i)] @ g[quad.block_slice(i)] for i in range(len(sizes))])
    steps = n / q
    return float(np.sum(steps ** 2 * np.diag(gram)) / (steps @ gram @ steps))


def check_remark62i(lower):
    """(i) the ratio ≥ lower(L) (claim 1/L). Sharp and valid: Jacobi a = 0.999, g along 1, where the ratio is
    1/c = 1/L + (L − c)/(cL). Valid: random starts, and 3×3 scalar-block matrices searched by Nelder–Mead."""
    for n in (3, 4):
        A = theory.jacobi_matrix(n, 0.999)
        c, r = theory.coupling_constant(A, [1] * n), coupling_ratio(A, [1] * n, np.ones(n))
        assert lower(n) <= r * (1 + ROUND) and r <= lower(n) + (1 / c - 1 / n) + ROUND
    for A, s in random_instances():
        for e in np.random.default_rng(9).standard_normal((3, len(A))):
            assert coupling_ratio(A, s, e) >= lower(len(s)) * (1 - ROUND)
    found, _ = adversarial_max(lambda th: lower(3) / coupling_ratio(cholesky_matrix(th[:6], 3), [1, 1, 1], th[6:]),
                               [[1.0, 0.9, 1.0, 0.8, 0.9, 1.0, 1.0, -1.0, 0.5]], [(-3, 3)] * 9, maxiter=150)
    assert found <= 1 + ROUND


def check_remark62ii(line_step):
    """(ii) on a quadratic with d = g, ρ = 0: the uncapped multiplier is line_step(g, u, A) = gᵀu/uᵀAu, the
    minimiser of f(x − ηu) (derivative 0 there), with u = Σ α̂_l g_l (an identity)."""
    for A, s in random_instances():
        quad = BlockQuadratic(A, np.zeros(len(A)), s)
        for e in np.random.default_rng(10).standard_normal((3, len(A))):
            ev = quad.evaluate(quad.split(e))
            opt = LayerwiseStepSize(SGD(), ema=0.0, scale="coupling")
            _, state = opt.update(ev.grads, opt.init(quad.split(e)), quad.split(e), curvature=ev.layer_curvature)
            g = quad.join(ev.grads)
            u = np.concatenate([np.full(k, a) for k, a in zip(s, state.step_sizes / state.multiplier)]) * g
            eta = line_step(g, u, A)
            if 1 / len(s) < g @ u / (u @ A @ u) < 1:             # not clipped
                assert state.multiplier == pytest.approx(eta, rel=1e-9)
            assert abs((g - eta * (A @ u)) @ u) <= 1e-9 * abs(g @ u)


REMARKS = [
    ("4.1", check_remark41, r4_of, loosened(r4_of, 0.01), loosened(r4_of, -0.01)),
    ("6.2i", check_remark62i, lambda L: 1 / L, lambda L: 0.99 / L, lambda L: 1.01 / L),
    ("6.2ii", check_remark62ii, lambda g, u, A: g @ u / (u @ A @ u), lambda g, u, A: 0.99 * g @ u / (u @ A @ u),
     lambda g, u, A: 1.01 * g @ u / (u @ A @ u)),
]


@pytest.mark.parametrize("name, check, claim, weakened, strengthened", REMARKS, ids=[c[0] for c in REMARKS])
def test_remark_bounds_pass_and_their_mutants_fail(name, check, claim, weakened, strengthened):
    """docs/theory.md Remarks 4.1 (R ≤ R₄, equal with one block) and 6.2 ((i) ≥ 1/L, approached; (ii) the line
    search, an identity): passes; the mutants fail."""
    assert_claim_holds_and_mutants_fail(check, claim, weakened, strengthened)
