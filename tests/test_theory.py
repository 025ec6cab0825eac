"""Theorems of docs/theory.md checked on random instances (each test names its theorem)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilayerlr import theory
from minilayerlr.theory import BlockQuadratic, LogisticRegression
from helpers_theory import plain_gdls, quadratic_gap, run_gaps
from strategies_optim import block_quadratics, fractions, random_partition, spd_matrix


def gdls_gaps(problem, scale, x0, steps, gap):
    """Run plain GD-LS (the method the theorems are about) and return the gaps."""
    return run_gaps(problem, plain_gdls(scale), x0, steps, gap)


@given(block_quadratics())
def test_lemma1_coupling_constant_between_1_and_L(problem):
    """Lemma 1 (docs/theory.md): 1 ≤ c ≤ L; c = 1 for a block-diagonal A; vᵀAv ≤ c vᵀBv."""
    A, _, sizes, seed = problem
    c = theory.coupling_constant(A, sizes)
    assert 1 - 1e-10 <= c <= len(sizes) + 1e-10
    B = theory.block_diagonal(A, sizes)
    assert abs(theory.coupling_constant(B, sizes) - 1) < 1e-10
    v = np.random.default_rng(seed).standard_normal((len(sizes) and A.shape[0], 5))
    assert np.all(np.einsum("ik,ij,jk->k", v, A, v) <= c * np.einsum("ik,ij,jk->k", v, B, v) * (1 + 1e-10))


@settings(max_examples=60)  # cheap, and the heart of the theory
@given(block_quadratics(), fractions)
def test_theorem1_every_idealized_step_contracts_by_the_bound(problem, fraction):
    """Theorem 1 (docs/theory.md): f(x⁺) − f* ≤ (1 − 2η(1 − ηc/2)μ/M)(f(x) − f*), 0 < η < 2/c."""
    A, b, sizes, seed = problem
    quad = BlockQuadratic(A, b, sizes)
    scale = fraction * 2 / quad.coupling_constant()
    bound = quad.contraction_bound(scale)
    assert 0 <= bound < 1
    x_star = quad.join(quad.minimizer())
    gaps = gdls_gaps(quad, scale, np.random.default_rng(seed).standard_normal(len(b)), 6,
                     quadratic_gap(quad))
    for before, after in zip(gaps, gaps[1:]):
        if before < 1e-24:  # converged to roundoff: nothing left to contract
            break
        # roundoff of ½eᵀAe with e = x − x*: about eps·‖x‖·‖Ae‖ ≤ eps·‖x‖·√(2‖A‖ gap)
        slack = 1e-14 * (1 + np.linalg.norm(x_star)) * np.sqrt(np.abs(A).sum() * before)
        assert after <= bound * before * (1 + 1e-9) + slack


@given(block_quadratics())
def test_corollary1_scale_one_over_c_and_one_over_L(problem):
    """Corollary 1 (docs/theory.md): η = 1/c gives 1 − μ/(cM), the best bound; η = 1/L (the default,
    L = number of blocks) is in range and every step of the optimizer run with it contracts by ρ(1/L)."""
    A, b, sizes, seed = problem
    c, mu, M = (theory.coupling_constant(A, sizes), theory.strong_convexity(A),
                theory.block_smoothness(A, sizes))
    best = theory.contraction_bound(A, sizes, 1 / c)
    assert best == pytest.approx(1 - mu / (c * M), rel=1e-12, abs=1e-15)
    for f in (0.3, 0.7, 1.3, 1.9):
        assert theory.contraction_bound(A, sizes, f / c) >= best - 1e-15
    quad = BlockQuadratic(A, b, sizes)
    x_star = quad.join(quad.minimizer())
    x0 = np.random.default_rng(seed).standard_normal(len(b))
    for scale, bound in ((None, theory.contraction_bound(A, sizes, 1 / len(sizes))), (1 / c, best)):
        assert bound <= 1 - mu / (len(sizes) * M) + 1e-15
        gaps = gdls_gaps(quad, scale, x0, 6, quadratic_gap(quad))  # scale None: the default 1/L
        for before, after in zip(gaps, gaps[1:]):
            if before < 1e-24:  # converged to roundoff
                break
            # the rounding slack of Theorem 1's test (½eᵀAe computed from x − x*)
            slack = 1e-14 * (1 + np.linalg.norm(x_star)) * np.sqrt(np.abs(A).sum() * before)
            assert after <= bound * before * (1 + 1e-9) + slack


@settings(max_examples=60)  # cheap, and the heart of the theory
@given(st.integers(1, 4), st.integers(0, 2**31 - 1), st.floats(0.0, 3.0))
def test_theorem2_block_diagonal_blocks_meet_kantorovich_rate(n_blocks, seed, log10_cond):
    """Theorem 2 (docs/theory.md): block-diagonal A, η = 1: each block contracts by ((κ_l−1)/(κ_l+1))²."""
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(1, 5, n_blocks)]
    blocks = [spd_matrix(s, seed + i, log10_cond * rng.uniform()) for i, s in enumerate(sizes)]
    A = np.zeros((sum(sizes), sum(sizes)))
    for s, Al in zip(np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1]), blocks):
        A[np.ix_(s, s)] = Al
    quad = BlockQuadratic(A, rng.standard_normal(len(A)), sizes)
    x_star = quad.join(quad.minimizer())
    slices = [quad.block_slice(i) for i in range(len(sizes))]
    block_gap = lambda x: np.array([0.5 * (x - x_star)[s] @ A[s, s] @ (x - x_star)[s] for s in slices])
    gaps = gdls_gaps(quad, 1.0, rng.standard_normal(len(A)), 5, block_gap)
    rates = np.array([theory.kantorovich_rate(Al) for Al in blocks])
    for before, after in zip(gaps, gaps[1:]):
        live = before > 1e-24
        assert np.all(after[live] <= rates[live] * before[live] * (1 + 1e-9) + 1e-28)


@given(st.integers(3, 8), st.floats(0.02, 0.95), st.integers(0, 2**31 - 1))
def test_proposition3_jacobi_example_diverges_for_c_above_2(n, where, seed):
    """Proposition 3 (docs/theory.md): A = (1−a)I + a11ᵀ, scalar blocks, η = 1, c > 2 diverges.

    Along 1 the error is multiplied by 1 − c each step, so f − f* grows like (c − 1)^{2t};
    with η < 2/c the same problem converges (the threshold 2/c of Theorem 1 is sharp).
    """
    c = 2 + where * (n - 2)  # c in (2, n): a = (c − 1)/(n − 1) < 1
    a = (c - 1) / (n - 1)
    A = theory.jacobi_matrix(n, a)
    assert theory.coupling_constant(A, [1] * n) == pytest.approx(c, rel=1e-10)
    quad = BlockQuadratic(A, np.random.default_rng(seed).standard_normal(n), [1] * n)
    x_star = quad.join(quad.minimizer())
    gap = quadratic_gap(quad)
    x0 = x_star + np.ones(n) + 0.1 * np.random.default_rng(seed + 1).standard_normal(n)
    diverging = gdls_gaps(quad, 1.0, x0, 30, gap)
    assert diverging[-1] > diverging[0] and diverging[-1] > diverging[-2]
    growth = np.array(diverging[21:]) / np.array(diverging[20:-1])
    np.testing.assert_allclose(growth, (c - 1) ** 2, rtol=1e-3)  # the 1-component dominates
    converging = gdls_gaps(quad, 0.9 * 2 / c, x0, 30, gap)
    assert converging[-1] < converging[0]


def logistic_problem(n_samples, dim, seed, reg):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, dim)) * 10.0 ** rng.uniform(-0.5, 0.5, dim)
    y = np.where(X @ rng.standard_normal(dim) + 0.5 * rng.standard_normal(n_samples) > 0, 1.0, -1.0)
    return LogisticRegression(X, y, reg, random_partition(dim, seed + 3))


@settings(max_examples=60)  # cheap, and the heart of the theory
@given(st.integers(5, 30), st.integers(2, 6), st.integers(0, 2**31 - 1),
       st.floats(-1.0, 0.5), fractions)
def test_theorem4_logistic_regression_meets_general_bound(n_samples, dim, seed, log10_reg, fraction):
    """Theorem 4 (docs/theory.md): μ-strongly convex, Λ-smooth f, η < 2/κ: rate 1 − 2η(1 − ηκ/2)/κ."""
    prob = logistic_problem(n_samples, dim, seed, 10.0 ** log10_reg)
    mu, L = prob.strong_convexity(), prob.smoothness()
    # the constants really bound the Hessian spectrum at random points
    for x in np.random.default_rng(seed).standard_normal((3, dim)) * 3:
        eig = np.linalg.eigvalsh(prob.evaluate(x).hessian())
        assert mu * (1 - 1e-12) <= eig[0] and eig[-1] <= L * (1 + 1e-12)
    scale = fraction * 2 * mu / L
    bound = theory.strongly_convex_bound(mu, L, scale)
    f_star = prob.optimal_value()
    assert np.linalg.norm(prob.evaluate(prob.minimizer()).gradient) < 1e-10
    x0 = 2 * np.random.default_rng(seed + 1).standard_normal(dim)
    gaps = gdls_gaps(prob, scale, x0, 4, lambda x: prob.loss(x) - f_star)
    for before, after in zip(gaps, gaps[1:]):
        if before < 1e-12:  # the gap is a difference of O(1) losses: stop at roundoff level
            break
        assert after <= bound * before + 1e-13


def test_remark42_block_constant_in_place_of_L_is_false():
    """Remark 4.2 (docs/theory.md): Theorem 4 with the block constant M instead of L fails.

    Jacobi example, n = 5, a = 0.4: μ = 0.6, M = 1, η = 1 ≤ 2μ/M, 'bound' 0.8, but the method diverges.
    """
    A = theory.jacobi_matrix(5, 0.4)
    mu, M = theory.strong_convexity(A), theory.block_smoothness(A, [1] * 5)
    wrong = theory.strongly_convex_bound(mu, M, 1.0)
    assert wrong == pytest.approx(0.8)
    quad = BlockQuadratic(A, np.zeros(5), [1] * 5)
    gaps = gdls_gaps(quad, 1.0, np.ones(5), 3, quadratic_gap(quad))
    assert gaps[1] > wrong * gaps[0] and gaps[3] > gaps[0]
    with pytest.raises(ValueError, match="scale"):  # the correct L rejects η = 1
        theory.strongly_convex_bound(mu, theory.smoothness(A), 1.0)


def test_block_quadratic_protocol_and_closed_forms():
    rng = np.random.default_rng(0)
    A, b = spd_matrix(5, 1, 1.0), rng.standard_normal(5)
    quad = BlockQuadratic(A, b, [2, 3])
    x = rng.standard_normal(5)
    params = quad.split(x)
    assert [p["x"].shape for p in params] == [(2,), (3,)]
    np.testing.assert_array_equal(quad.join(params), x)
    ev = quad.evaluate(params)
    assert ev.loss == pytest.approx(0.5 * x @ A @ x - b @ x)
    np.testing.assert_allclose(quad.join(ev.grads), A @ x - b)
    d = rng.standard_normal(5)
    np.testing.assert_allclose(quad.join(ev.hvp(quad.split(d))), A @ d)
    np.testing.assert_allclose(ev.layer_curvature(quad.split(d)),
                               [d[:2] @ A[:2, :2] @ d[:2], d[2:] @ A[2:, 2:] @ d[2:]])
    np.testing.assert_array_equal(ev.block_hessian(1), A[2:, 2:])
    np.testing.assert_array_equal(ev.hessian(), A)
    x_star = np.linalg.solve(A, b)
    np.testing.assert_allclose(quad.join(quad.minimizer()), x_star)
    assert quad.optimal_value() == pytest.approx(-0.5 * b @ x_star)
    # the sign estimator is unbiased: average over all sign patterns = exact
    est = np.mean([ev.layer_curvature(quad.split(d), kind="sign_hvp", seed=s) for s in range(400)], axis=0)
    np.testing.assert_allclose(est, ev.layer_curvature(quad.split(d)), rtol=0.2)


@pytest.mark.parametrize("call, name", [
    (lambda: BlockQuadratic(np.array([[1.0, 2.0], [0.0, 1.0]]), np.zeros(2), [2]), "A"),
    (lambda: BlockQuadratic(np.array([[1.0, 2.0], [2.0, 1.0]]), np.zeros(2), [2]), "A"),
    (lambda: BlockQuadratic(np.eye(2), np.zeros(3), [2]), "b"),
    (lambda: BlockQuadratic(np.eye(3), np.zeros(3), [2, 2]), "block_sizes"),
    (lambda: BlockQuadratic(np.eye(3), np.zeros(3), [3, 0]), "block_sizes"),
    (lambda: BlockQuadratic(np.eye(2) * np.nan, np.zeros(2), [2]), "A"),
    (lambda: theory.contraction_bound(theory.jacobi_matrix(3, 0.6), [1, 1, 1], 1.0), "scale"),
    (lambda: theory.contraction_bound(np.eye(2), [1, 1], -0.1), "scale"),
    (lambda: theory.strongly_convex_bound(-1.0, 2.0, 0.1), "mu"),
    (lambda: theory.strongly_convex_bound(1.0, 0.5, 0.1), "smoothness"),
    (lambda: theory.jacobi_matrix(3, 1.0), "a"),
    (lambda: theory.line_search_bound(1.0, 2.0, 0.1, one_block=1), "one_block"),
    (lambda: theory.BumpFunction(1.0, 2.0, 1.0, 0.1, dip="yes"), "dip"),
    (lambda: theory.optimum_escape_bound(np.eye(2), [1, 1], 0.5, np.eye(2), batch_hessian=np.eye(3)),
     "batch_hessian"),
    (lambda: theory.min_scaled_coupling_constant(np.array([[1.0, 2.0], [2.0, 1.0]]), [1, 1]), "A"),
    (lambda: theory.ema_contraction_bound(np.eye(2), [1, 1], 0.0), "scale"),
    (lambda: LogisticRegression(np.ones((3, 2)), np.array([1.0, 0.0, 1.0]), 1.0, [2]), "y"),
    (lambda: LogisticRegression(np.ones((3, 2)), np.ones(3), 0.0, [2]), "reg"),
    (lambda: BlockQuadratic(np.eye(2), np.zeros(2), [2]).evaluate(np.zeros(3)), "params"),
    (lambda: BlockQuadratic(np.eye(2), np.zeros(2), [2]).evaluate(np.zeros(2)).layer_curvature(
        np.zeros(2), kind="mc_fisher"), "kind"),
])
def test_invalid_inputs_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
