"""Every remaining statement of docs/theory.md against a weakened and a strengthened mutant.

Each entry of ``CLAIMS`` is (name, check, claimed, weakened, strengthened). ``check(claimed)``
has a *valid* half (on adversarial instances, some found by ``scipy.optimize`` over the
instance's parameters, the observed value is on the right side of the claim) and a *sharp*
half (where docs/theory.md says the claim is attained, it is, within a tolerance derived from
the problem). The test runs the check on the claim, which must pass, and on both mutants, which
must fail: a strengthened claim fails the valid half, a weakened one the sharp half. Identities
(Propositions 3, 5, 6, 8′(a), 9(a)) are both valid and sharp; their mutants are ±1 %.

How to run a mutant by hand: replace the claim in ``CLAIMS`` (or in ``minilayerlr.theory``) by
the mutant and run ``python -m pytest tests/test_theory_mutants_practical.py -k <name>``.
"""
import numpy as np
import pytest

from minilayerlr import theory
from minilayerlr.optim import SGD, AdamW, LayerwiseStepSize, apply_updates
from minilayerlr.theory import BlockQuadratic, LogisticRegression
from helpers_theory import (adversarial_max, assert_claim_holds_and_mutants_fail, gdls_armijo_ratio,
                            measured_floor, plain_gdls, quadratic_gap, rule_v01, run_gaps)
from strategies_optim import random_partition, spd_matrix

EPS = np.finfo(float).eps


def random_instances(count=3, log10_cond=1.5):
    return [(spd_matrix(4 + k, 300 + k, log10_cond), random_partition(4 + k, 400 + k)) for k in range(count)]


def scaled(claim, factor):
    """The mutant claiming ``factor`` times the decrease 1 − claim (or the value, for identities)."""
    return lambda *args, **kw: 1 - factor * (1 - claim(*args, **kw))


def loosened(claim, fraction):
    """A ratio bound made weaker (fraction > 0) or stronger (< 0) by fraction·|1 − claim|: for a
    claim above 1 (Prop. 7 past 2/c_λ) scaling the decrease would turn the wrong way."""
    return lambda *args, **kw: claim(*args, **kw) + fraction * abs(1 - claim(*args, **kw))


def times(claim, factor):
    return lambda *args, **kw: factor * claim(*args, **kw)


# --------------------------------------------------------------------------- Lemma 1: c ≤ L

def check_lemma1(upper):
    """c ≤ upper(L) on random instances and on Jacobi a → 1, where c = 1 + (L − 1)a is within 0.003 of L."""
    for A, sizes in random_instances():
        assert theory.coupling_constant(A, sizes) <= upper(len(sizes)) * (1 + 1e-12)
    for n in (2, 3, 5):
        c = theory.coupling_constant(theory.jacobi_matrix(n, 0.999), [1] * n)
        assert c <= upper(n) * (1 + 1e-12)                       # valid
        assert upper(n) - c <= 0.001 * (n - 1) + 1e-9             # sharp


# ------------------------------------------------------------------ Lemma 2: α ∈ [η/Λ_l, η/λ_l]

def check_lemma2(interval):
    """GD-LS's α_l lies in interval(A_ll, η) for random g, and reaches both ends at eigenvectors."""
    A = spd_matrix(4, 5, 1.5)
    quad = BlockQuadratic(A, np.zeros(4), [4])
    lo, hi = interval(A, 0.7)
    lam, V = np.linalg.eigh(A)
    alphas = []
    for g in list(np.random.default_rng(0).standard_normal((20, 4))) + [V[:, 0], V[:, -1]]:
        opt = plain_gdls(0.7)
        params = quad.split(np.zeros(4))
        _, state = opt.update(quad.split(g), opt.init(params), params,
                              curvature=quad.evaluate(params).layer_curvature)
        alphas.append(state.step_sizes[0])
    assert lo * (1 - 1e-12) <= min(alphas) and max(alphas) <= hi * (1 + 1e-12)
    assert alphas[-1] == pytest.approx(lo, rel=1e-12) and alphas[-2] == pytest.approx(hi, rel=1e-12)


# ----------------------------------------------------------------- Corollary 1: ρ_T(1/c) = 1 − μ/(cM)

def check_corollary1(best):
    """At η = 1/c every step contracts by best(A, sizes); on A = a·I (c = 1, μ = M) the ratio is 0 = best."""
    for A, sizes in random_instances(1):
        c = theory.coupling_constant(A, sizes)
        assert theory.worst_one_step_ratio(A, sizes, 1 / c, restarts=0, max_iter=30)[0] <= best(A, sizes) + 1e-12
    A = 2.5 * np.eye(3)
    gaps = run_gaps(BlockQuadratic(A, np.zeros(3), [1, 2]), plain_gdls(1.0), np.ones(3), 1, lambda x: x @ A @ x)
    assert gaps[1] / gaps[0] <= best(A, [1, 2]) + 1e-15                      # valid
    assert 1 - gaps[1] / gaps[0] <= (1 - best(A, [1, 2])) + 1e-15            # sharp


# --------------------------------------------------------- Proposition 3: the error along 1 times 1 − ηc

def check_proposition3(factor):
    for n, a, eta in ((3, 0.6, 1.0), (5, 0.4, 1.0), (4, 0.3, 0.5)):
        A = theory.jacobi_matrix(n, a)
        c = theory.coupling_constant(A, [1] * n)
        x1 = run_gaps(BlockQuadratic(A, np.zeros(n), [1] * n), plain_gdls(eta), np.ones(n), 1, lambda x: x)[-1]
        np.testing.assert_allclose(x1, factor(eta, c) * np.ones(n), rtol=1e-12, atol=1e-14)


# -------------------------------------------------- Proposition 4.3: spike and dip reach their limits

def check_proposition43(lower):
    """The spike and the dip (width s) reach max((1 − η/κ)², (1 − ηκ)²) within O(κs) (here s = 1e-8,
    tolerance 10·κ·s·√(2π)) at a few (κ, η), so the supremum is at least the claim and the claim is
    where the two families go."""
    for kappa, eta_kappa in ((4.0, 1.95), (10.0, 0.5), (100.0, 1.0), (2.0, 1.5)):
        eta = eta_kappa / kappa
        spike = theory.BumpFunction(1.0, kappa, 1.0, 1e-8)
        dip = theory.BumpFunction(1.0, kappa, 1.0, 1e-8, dip=True)
        worst = max(run_gaps(f, plain_gdls(eta), np.array([1.0]), 1, f.loss)[1] / f.loss(np.array([1.0]))
                    for f in (spike, dip))
        assert abs(worst - lower(kappa, eta)) <= 10 * kappa * 1e-8 * np.sqrt(2 * np.pi)


# --------------------------------------- Proposition 4.4: max((1 − η/κ)², (1 − ηκ)²) is exact in 1-D

def check_proposition44(rate):
    """Valid: one plain GD-LS step on one-feature logistic regressions (η·κ ∈ {0.5, 1.5, 3}, three
    starts), on spikes and dips of widths 1e-2 and 1e-4, and on the worst piecewise-constant
    curvature found by optimisation (test_theory_sharp's search). Sharp: the spike and the dip of
    width 1e-8 reach it within 10κs√(2π)."""
    from test_theory_sharp import _one_dimensional_worst
    rng = np.random.default_rng(4)
    for seed in range(3):
        X = rng.standard_normal((15, 1)) * 2
        prob = LogisticRegression(X, np.where(X[:, 0] + rng.standard_normal(15) > 0, 1.0, -1.0), 0.05, [1])
        mu, big = prob.strong_convexity(), prob.smoothness()
        f_star = prob.optimal_value()
        for eta_kappa in (0.5, 1.5, 3.0):
            eta = eta_kappa * mu / big
            for x0 in (-3.0, 0.5, 4.0):
                gaps = run_gaps(prob, plain_gdls(eta), np.array([x0]), 1, lambda x: prob.loss(x) - f_star)
                if gaps[0] > 1e-10:  # the gap is a difference of O(1) losses: ~1e-15 rounding
                    assert gaps[1] <= rate(mu, big, eta) * gaps[0] + 1e-13
    for kappa, eta_kappa in ((4.0, 1.95), (10.0, 0.5), (2.0, 1.5), (4.0, 2.5)):
        eta = eta_kappa / kappa
        for dip in (False, True):
            for width in (1e-2, 1e-4):
                f = theory.BumpFunction(1.0, kappa, 1.0, width, dip=dip)
                ratio = run_gaps(f, plain_gdls(eta), np.array([1.0]), 1, f.loss)
                assert ratio[1] / ratio[0] <= rate(1.0, kappa, eta) * (1 + 1e-9)
        if eta_kappa < 2:
            assert _one_dimensional_worst(kappa, eta, starts=4) <= rate(1.0, kappa, eta) + 1e-9
        worst = max(run_gaps(f, plain_gdls(eta), np.array([1.0]), 1, f.loss)[1] / f.loss(np.array([1.0]))
                    for f in (theory.BumpFunction(1.0, kappa, 1.0, 1e-8, dip=d) for d in (False, True)))
        assert abs(worst - rate(1.0, kappa, eta)) <= 10 * kappa * 1e-8 * np.sqrt(2 * np.pi)


# ------------------------------------------------- Proposition 5(a): d_l → s_l d_l leaves α_l d_l unchanged

class ScaledDirections:
    """A base method whose directions are SGD-m's times fixed per-block factors s_l (Prop. 5(a))."""

    def __init__(self, factors):
        self.inner, self.factors = SGD(momentum=0.9), factors
        self.coupled_weight_decay, self.decoupled_weight_decay = 0.0, 0.0

    def init(self, params):
        return self.inner.init(params)

    def direction(self, grads, state, params=None):
        d, state = self.inner.direction(grads, state, params)
        return [{"x": s * block["x"]} for s, block in zip(self.factors, d)], state


def check_proposition5a(update_scaling):
    """Directions scaled by s_l (fixed across steps, ρ = 0.9, λ = 0.1): the updates are
    update_scaling(s_l) times the unscaled ones, block by block, for 4 steps."""
    A, sizes = random_instances(1)[0]
    quad = BlockQuadratic(A, np.ones(len(A)), sizes)
    factors = 10.0 ** np.linspace(-1.5, 1.5, len(sizes))
    runs = []
    for base in (ScaledDirections(np.ones(len(sizes))), ScaledDirections(factors)):
        opt = LayerwiseStepSize(base, scale=0.5 / len(sizes), ema=0.9, damping=0.1)
        params = quad.split(np.ones(len(A)))
        state, updates_seen = opt.init(params), []
        for _ in range(4):
            ev = quad.evaluate(params)
            updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
            params = apply_updates(params, updates)
            updates_seen.append([u["x"] for u in updates])
        runs.append(updates_seen)
    for plain_step, scaled_step in zip(*runs):
        for s, u, v in zip(factors, plain_step, scaled_step):
            np.testing.assert_allclose(v, update_scaling(s) * u, rtol=1e-10, atol=1e-15)


# ------------------------------------------------------- Proposition 5(b): α_l divided by the loss scale ω

def check_proposition5b(alpha_scaling):
    A, sizes = random_instances(1)[0]
    x0 = np.random.default_rng(1).standard_normal(len(A))
    for omega in (0.01, 7.0):
        alphas = []
        for w in (1.0, omega):
            quad = BlockQuadratic(w * A, np.zeros(len(A)), sizes)
            opt = rule_v01(SGD(momentum=0.9), ema=0.9)
            params = quad.split(x0)
            state = opt.init(params)
            for _ in range(3):
                ev = quad.evaluate(params)
                updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
                params = apply_updates(params, updates)
            alphas.append(state.step_sizes)
        np.testing.assert_allclose(alphas[1], alpha_scaling(omega) * alphas[0], rtol=1e-9)


# ---------------------------------------------------------- Proposition 6: α = gᵀd/dᵀA_ll d minimises

def check_proposition6(step):
    """One block, η = 1, ρ = 0: the rule's α equals step(g, d, A) and f(θ − α d) is the minimum along d."""
    A = spd_matrix(4, 9, 1.0)
    quad = BlockQuadratic(A, np.ones(4), [4])
    for seed in range(3):
        params = quad.init(seed)
        ev = quad.evaluate(params)
        g = quad.join(ev.grads)
        opt = LayerwiseStepSize(SGD(), scale=1.0, ema=0.0)
        _, state = opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature)
        np.testing.assert_allclose(state.step_sizes[0], step(g, g, A), rtol=1e-12)


# ---------------------------------------------------------------------- Proposition 7: R(η), exact

def ema_ratio(A, sizes, scale, which, size=1e5):
    """The ratio after a dominating history (docs/theory.md, Prop. 7 proof (iv)), ρ = 0.9."""
    from test_theory_practical import box_extreme_start, dominating_history, ratio_after_history
    opt = LayerwiseStepSize(SGD(), scale=scale, ema=0.9)
    return ratio_after_history(A, sizes, opt, [dominating_history(A, sizes, which, size)],
                               box_extreme_start(A, sizes, which))


def check_proposition7(bound):
    """Valid: the largest (observed − claimed) over one block diag(1, κ) and η ∈ (0, 2) = (0, 2/c),
    found by Nelder–Mead over (log10 κ, η/2) from a grid, is ≤ 1e-6 (the history m = 1e5 is within
    O(κ/m²) of the limit); and on random 2- and 3-block instances. Sharp: there, below 2/c_λ,
    1 − observed ≤ (1 + 1e-6)(1 − claimed)."""
    def excess(theta):
        kappa, eta = 10.0 ** theta[0], 2 * theta[1]
        A = np.diag([1.0, kappa])
        observed = max(ema_ratio(A, [2], eta, 0), ema_ratio(A, [2], eta, -1))
        return observed - bound(A, [2], eta)
    starts = [(0.2, 0.3), (1.0, 0.9)]
    worst, where = adversarial_max(excess, starts, [(0.05, 2.0), (0.01, 0.999)], maxiter=20)
    assert worst <= 1e-6, (worst, where)
    for A, sizes in random_instances(2, 1.0):
        c_low = theory.min_scaled_coupling_constant(A, sizes)
        for fraction in (0.3, 0.8):
            eta = fraction * 2 / c_low
            claimed = bound(A, sizes, eta)
            observed = max(ema_ratio(A, sizes, eta, 0), ema_ratio(A, sizes, eta, -1))
            tol = 1e-6 * np.linalg.cond(A)
            assert observed <= claimed + tol                                      # valid
            assert 1 - observed <= (1 + tol) * (1 - claimed) + tol                # sharp


def margin_only(A, sizes, eta):
    """The audit's false Proposition 7: the margin 1 − ηc/2 alone, 1 − 2ημ_D(1 − ηc/2), for η < 2/c."""
    c = theory.coupling_constant(A, sizes)
    return 1 - 2 * eta * theory.rescaled_strong_convexity(A, sizes) * (1 - eta * c / 2)


# ----------------------------------------------- Proposition 8: f(x⁺) ≤ f(x) − (1 − ηc/2) Σ α_l n_l

def check_proposition8(margin):
    """Valid with heavy-ball directions on coupled blocks; sharp (equal) with one block, where
    vᵀAv = Σ α²q exactly: f(x⁺) = f − (1 − η/2)αn."""
    for A, sizes in random_instances(2) + [(spd_matrix(4, 1, 1.0), [4])]:
        c = theory.coupling_constant(A, sizes)
        quad = BlockQuadratic(A, np.ones(len(A)), sizes)
        eta = 0.7 / c
        opt = LayerwiseStepSize(SGD(momentum=0.9), scale=eta, ema=0.0)
        params = quad.init(3)
        state = opt.init(params)
        for _ in range(5):
            ev = quad.evaluate(params)
            updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
            params = apply_updates(params, updates)
            claimed_drop = margin(eta, c) * float(state.step_sizes @ state.numerators)
            drop = ev.loss - quad.evaluate(params).loss
            slack = 1e-12 * (abs(ev.loss) + 1)
            assert drop >= claimed_drop - slack
            if len(sizes) == 1:
                assert drop <= claimed_drop + slack


# ------------------------------------------------------- Proposition 8′: momentum under the rule

def check_proposition8prime_a(update_factor):
    """m = (1 + β)g (a second call at the same point, ρ = 0): the update is update_factor × GD-LS's."""
    A, sizes = random_instances(1)[0]
    quad = BlockQuadratic(A, np.ones(len(A)), sizes)
    params = quad.init(0)
    ev = quad.evaluate(params)
    opt = LayerwiseStepSize(SGD(momentum=0.9), scale=0.5, ema=0.0)
    _, state = opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature)
    updates, _ = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
    reference, _ = plain_gdls(0.5).update(ev.grads, plain_gdls(0.5).init(params), params, curvature=ev.layer_curvature)
    np.testing.assert_allclose(quad.join(updates), update_factor * quad.join(reference), rtol=1e-12)


def check_proposition8prime_b(floor):
    """Frozen steps: spectral radius ≥ floor(β) for P drawn over the rule's box; = floor(β) when PA = θI."""
    from test_theory_momentum import frozen_heavy_ball_radius, sharp_heavy_ball_radius
    for beta in (0.5, 0.9):
        A = spd_matrix(4, 2, 1.5)
        lam = np.linalg.eigvalsh(A)
        for seed in range(10):
            p = 10.0 ** np.random.default_rng(seed).uniform(-1, 1, 4) / lam[-1]
            assert frozen_heavy_ball_radius(A, p, beta) >= floor(beta) - 1e-6
        assert abs(sharp_heavy_ball_radius(np.diag([1.0, 3.0]), 1 + beta, beta) - floor(beta)) <= 1e-6


def check_proposition8prime_c(momentum_norm):
    """ρ = 0, one block, η = 1: ‖m_t‖² = momentum_norm(β, [‖g_s‖²]) exactly (Pythagoras)."""
    beta, A = 0.9, spd_matrix(3, 4, 1.0)
    quad = BlockQuadratic(A, np.zeros(3), [3])
    opt = LayerwiseStepSize(SGD(momentum=beta), scale=1.0, ema=0.0)
    params = quad.split(np.ones(3))
    state, sq = opt.init(params), []
    for _ in range(6):
        ev = quad.evaluate(params)
        sq.append(quad.join(ev.grads) @ quad.join(ev.grads))
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = apply_updates(params, updates)
        m = quad.join(state.base_state.momentum)
        assert m @ m == pytest.approx(momentum_norm(beta, sq), rel=1e-9)


# ------------------------------------------------------------------ Proposition 9: mini-batches

def check_proposition9a(variance_term):
    """E‖g_S‖² = ‖g‖² + variance_term(tr Σ, |S|), all 4² batches of size 2 enumerated."""
    import itertools
    rng = np.random.default_rng(0)
    X, y, x = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal(3)
    per_sample = X * (X @ x - y)[:, None]
    g = per_sample.mean(axis=0)
    sigma = (per_sample - g).T @ (per_sample - g) / 4
    batches = [per_sample[list(S)].mean(axis=0) for S in itertools.product(range(4), repeat=2)]
    assert np.mean([b @ b for b in batches]) == pytest.approx(g @ g + variance_term(np.trace(sigma), 2), rel=1e-13)


def check_proposition9b(escape):
    """Valid pathwise on coupled blocks; sharp (equal) on uncoupled scalar blocks A = diag(a_l I)."""
    coupled = [(A, sizes) for A, sizes in random_instances(2)]
    scalar = [(np.diag([2.0, 2.0, 5.0]), [2, 1])]
    for A, sizes in coupled + scalar:
        quad = BlockQuadratic(A, np.zeros(len(A)), sizes)
        params = quad.minimizer()
        for seed in range(4):
            xi = np.random.default_rng(seed).standard_normal(len(A))
            opt = LayerwiseStepSize(SGD(), scale=0.6, ema=0.0)
            ev = quad.evaluate(params)
            updates, _ = opt.update(quad.split(xi), opt.init(params), params, curvature=ev.layer_curvature)
            gap = quadratic_gap(quad)(quad.join(apply_updates(params, updates)))
            claimed = escape(A, sizes, 0.6, np.outer(xi, xi))
            assert gap >= claimed * (1 - 1e-9)
            if A is scalar[0][0]:
                assert gap <= claimed * (1 + 1e-9)


def check_proposition9c(floor):
    """The measured mean gap is within 5 standard errors (exact autocovariance) of floor(...). In 3000
    steps 5 standard errors are 18 % of the floor, so the mutants are ±25 %."""
    A, sizes, scale, cov, mean, sd = measured_floor()
    assert abs(mean - floor(A, list(sizes), scale, cov)) <= 5 * sd


# ---------------------------------------------------------------------- Theorem 10: Armijo

def logistic_instance():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    return LogisticRegression(X, np.where(X @ np.ones(3) + 0.3 * rng.standard_normal(20) > 0, 1.0, -1.0), 0.05, [1, 2])


def check_theorem10(bound):
    """Valid: the default GDLS on logistic regression for η·κ/2 ∈ {0.5, 3} and η = 10⁵κ (where the
    1/κ² term is the only one standing; ηκ ≤ 2·10⁹ as the theorem needs); the pure rule with
    ν = 0.95 on the spike. Sharp: on the spike (κ = 10, s = 1e-8, η = 0.04/κ so that the first term is
    the minimum) the decrease is within (1 + 10ε_s)/ν of the claim, ε_s = κ s √(2π)."""
    from minilayerlr.optim import GDLS
    from minilayerlr.optim.oracles import supply_oracles
    prob = logistic_instance()
    mu, big = prob.strong_convexity(), prob.smoothness()
    kappa, f_star = big / mu, prob.optimal_value()
    assert kappa * 1e5 * kappa < 2e9
    for scale in (0.5 * 2 / kappa, 3 * 2 / kappa, 1e5 * kappa):
        params = prob.split(2 * np.ones(3))
        opt = GDLS(scale=scale)
        state = opt.init(params)
        for _ in range(3):
            ev = prob.evaluate(params)
            before = ev.loss - f_star
            updates, state = opt.update(ev.grads, state, params,
                                        **supply_oracles(opt, ev, loss=lambda p: prob.evaluate(p).loss))
            params = apply_updates(params, updates)
            after = prob.evaluate(params).loss - f_star
            if before < 1e-12:
                break
            assert after <= bound(mu, big, scale, 1e-4, 0.5, False) * before + 1e-13
    spike_kappa, width, nu = 10.0, 1e-8, 0.95
    spike = theory.BumpFunction(1.0, spike_kappa, 1.0, width)
    eps_s = spike_kappa * width * np.sqrt(2 * np.pi)
    for one_block in (False, True):
        eta = 0.04 / spike_kappa
        ratio = gdls_armijo_ratio(spike, np.array([1.0]), eta, nu, 0.5, spike.loss)
        claimed = bound(1.0, spike_kappa, eta, nu, 0.5, one_block)
        assert ratio <= claimed + 1e-12
        assert 1 - ratio <= (1 + 10 * eps_s) / nu * (1 - claimed)


def line_search(mu, big, eta, nu, tau, one_block):
    return theory.line_search_bound(mu, big, eta, sufficient_decrease=nu, shrink=tau, one_block=one_block)


def without_second_term(mu, big, eta, nu, tau, one_block):
    """The audit's false Theorem 10: 1 − 2νη/κ alone (no 1/κ² branch)."""
    return 1 - 2 * nu * eta * mu / big


# ------------------------------------------------------------- Proposition 11(e): |x⁺| ≤ |1 − η||x|

def check_proposition11e(contraction):
    """Every moving step of AdamW-LS on a x²/2 satisfies |x⁺| ≤ contraction(η)|x|; with wd = 0 equality."""
    for wd in (0.0, 0.3):
        for eta in (0.4, 1.6):
            quad = BlockQuadratic(np.array([[2.0]]), np.zeros(1), [1])
            opt = LayerwiseStepSize(AdamW(weight_decay=wd, b1=0.9), scale=eta, ema=0.0)
            params = quad.split(np.array([3.0]))
            state = opt.init(params)
            for _ in range(8):
                x = abs(quad.join(params)[0])
                ev = quad.evaluate(params)
                updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
                params = apply_updates(params, updates)
                x1 = abs(quad.join(params)[0])
                if state.step_sizes[0] > 0 and x > 1e-300:
                    assert x1 <= contraction(eta) * x * (1 + 1e-12)
                    if wd == 0:
                        assert x1 >= contraction(eta) * x * (1 - 1e-12)


# ------------------------------------------------------------------------------------ registry

CLAIMS = [
    ("lemma1", check_lemma1, lambda L: L, lambda L: L + 0.1, lambda L: L - 0.05),
    ("lemma2", check_lemma2,
     lambda A, eta: (eta / np.linalg.eigvalsh(A)[-1], eta / np.linalg.eigvalsh(A)[0]),
     lambda A, eta: (0.99 * eta / np.linalg.eigvalsh(A)[-1], 1.01 * eta / np.linalg.eigvalsh(A)[0]),
     lambda A, eta: (1.01 * eta / np.linalg.eigvalsh(A)[-1], 0.99 * eta / np.linalg.eigvalsh(A)[0])),
    ("corollary1", check_corollary1,
     lambda A, s: 1 - theory.strong_convexity(A) / (theory.coupling_constant(A, s) * theory.block_smoothness(A, s)),
     lambda A, s: 1 - 0.95 * theory.strong_convexity(A) / (theory.coupling_constant(A, s) * theory.block_smoothness(A, s)),
     lambda A, s: 1 - 1.05 * theory.strong_convexity(A) / (theory.coupling_constant(A, s) * theory.block_smoothness(A, s))),
    ("proposition3", check_proposition3, lambda eta, c: 1 - eta * c,
     lambda eta, c: 1 - 0.99 * eta * c, lambda eta, c: 1 - 1.01 * eta * c),
    ("proposition43", check_proposition43,
     lambda k, eta: max((1 - eta / k) ** 2, (1 - eta * k) ** 2),
     lambda k, eta: 0.99 * max((1 - eta / k) ** 2, (1 - eta * k) ** 2),
     lambda k, eta: 1.01 * max((1 - eta / k) ** 2, (1 - eta * k) ** 2)),
    ("proposition44", check_proposition44, theory.one_dimensional_rate,
     loosened(theory.one_dimensional_rate, 0.01), loosened(theory.one_dimensional_rate, -0.01)),
    ("proposition5a", check_proposition5a, lambda s: 1.0, lambda s: s ** 0.01, lambda s: s ** -0.01),
    ("proposition5b", check_proposition5b, lambda w: 1 / w, lambda w: 1 / w ** 0.99, lambda w: 1 / w ** 1.01),
    ("proposition6", check_proposition6, lambda g, d, A: g @ d / (d @ A @ d),
     lambda g, d, A: 0.99 * g @ d / (d @ A @ d), lambda g, d, A: 1.01 * g @ d / (d @ A @ d)),
    ("proposition7", check_proposition7, theory.ema_contraction_bound,
     loosened(theory.ema_contraction_bound, 0.02), loosened(theory.ema_contraction_bound, -0.02)),
    ("proposition7_margin_only", check_proposition7, theory.ema_contraction_bound,
     loosened(theory.ema_contraction_bound, 0.02), margin_only),
    ("proposition8", check_proposition8, lambda eta, c: 1 - eta * c / 2,
     lambda eta, c: 0.95 * (1 - eta * c / 2), lambda eta, c: 1.05 * (1 - eta * c / 2)),
    ("proposition8prime_a", check_proposition8prime_a, 1.0, 0.99, 1.01),
    ("proposition8prime_b", check_proposition8prime_b, np.sqrt, lambda b: b ** 0.55, lambda b: b ** 0.45),
    ("proposition8prime_c", check_proposition8prime_c,
     lambda b, sq: sum(b ** (2 * (len(sq) - 1 - s)) * q for s, q in enumerate(sq)),
     lambda b, sq: 0.99 * sum(b ** (2 * (len(sq) - 1 - s)) * q for s, q in enumerate(sq)),
     lambda b, sq: 1.01 * sum(b ** (2 * (len(sq) - 1 - s)) * q for s, q in enumerate(sq))),
    ("proposition9a", check_proposition9a, lambda tr, S: tr / S, lambda tr, S: 0.99 * tr / S, lambda tr, S: 1.01 * tr / S),
    ("proposition9b", check_proposition9b, theory.optimum_escape_bound,
     times(theory.optimum_escape_bound, 0.95), times(theory.optimum_escape_bound, 1.05)),
    ("proposition9c", check_proposition9c, theory.block_jacobi_noise_floor,
     times(theory.block_jacobi_noise_floor, 0.75), times(theory.block_jacobi_noise_floor, 1.25)),
    ("theorem10", check_theorem10, line_search, scaled(line_search, 0.9), scaled(line_search, 1.1)),
    ("theorem10_without_second_term", check_theorem10, line_search, scaled(line_search, 0.9), without_second_term),
    ("proposition11e", check_proposition11e, lambda eta: abs(1 - eta),
     lambda eta: 1.01 * abs(1 - eta), lambda eta: 0.99 * abs(1 - eta)),
]


@pytest.mark.parametrize("name, check, claim, weakened, strengthened", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_claim_passes_and_its_mutants_fail(name, check, claim, weakened, strengthened):
    """docs/theory.md: the claim passes its check; a weakened and a strengthened mutant each fail it."""
    assert_claim_holds_and_mutants_fail(check, claim, weakened, strengthened)
