"""Worst one-step ratios of GD-LS on a quadratic, found by optimisation over the start.

On f(x) = ½ xᵀAx − bᵀx the GD-LS step acts on the error e = x − x* alone:
g = Ae, α_l = η‖g_l‖²/g_lᵀA_ll g_l, e⁺ = e − (α_l g_l)_l. The one-step ratio
r(e) = e⁺ᵀAe⁺ / eᵀAe = (f(x⁺) − f*)/(f(x) − f*) is unchanged by e → t·e, so
its supremum is over directions. ``worst_one_step_ratio`` maximises r with
BFGS from random and structured starts (pencil and Kantorovich eigenvectors);
what it returns is *attained* by the returned start, hence a lower bound on
the true worst case that every valid bound must exceed (docs/theory.md §2).

``bound_table`` prints the coupling constants c and c_λ, Theorem 1's ρ_T, Theorem 1′'s
ρ′, Proposition 7's R and the observed worst case side by side on a few instances, and
``strongly_convex_table`` Theorems 4, 4′ and 4″ next to the spike and the dip (§3)::

    python -c "from minilayerlr.theory import print_bound_table; print_bound_table()"
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import scipy.linalg
import scipy.optimize

from minilayerlr.theory.bounds import (block_diagonal, block_slices, block_smoothness, check_block_sizes,
                                       check_spd, contraction_bound, coupling_constant,
                                       jacobi_matrix, strong_convexity)
from minilayerlr.theory.sharp import (ema_contraction_bound, invariant_contraction_bound,
                                      min_scaled_coupling_constant)
from minilayerlr.validation import as_generator, check_int


def gdls_error_step(A: np.ndarray, slices, scale: float, e: np.ndarray) -> np.ndarray:
    """e⁺ = e − (α_l g_l)_l with g = Ae and α_l = η‖g_l‖²/g_lᵀA_ll g_l (0 when g_l = 0)."""
    g = A @ e
    step = np.zeros_like(e)
    for s in slices:
        gl = g[s]
        curv = gl @ A[s, s] @ gl
        if curv > 0:
            step[s] = scale * (gl @ gl) / curv * gl
    return e - step


def one_step_ratio(A: np.ndarray, slices, scale: float, e: np.ndarray) -> float:
    """r(e) = e⁺ᵀAe⁺ / eᵀAe, the GD-LS contraction of f − f* from error e ≠ 0."""
    e_next = gdls_error_step(A, slices, scale, e)
    return float((e_next @ A @ e_next) / (e @ A @ e))


def _structured_starts(A: np.ndarray, slices) -> List[np.ndarray]:
    """Errors at which one of the bounds' inequalities is tight."""
    B = block_diagonal(A, [s.stop - s.start for s in slices])
    starts = list(scipy.linalg.eigh(A, B)[1][:, [0, -1]].T)          # pencil extremes
    starts += list(np.linalg.eigh(A)[1][:, [0, -1]].T)               # μ and λ_max of A
    for s in slices:                                                   # Kantorovich per block
        lam, V = np.linalg.eigh(A[s, s])
        g = np.zeros(len(A))
        g[s] = V[:, 0] + V[:, -1]
        starts.append(np.linalg.solve(A, g))
    return starts


def worst_one_step_ratio(A, block_sizes: Sequence[int], scale: float, restarts: int = 6,
                         seed: int = 0, max_iter: int = 200) -> Tuple[float, np.ndarray]:
    """max_e r(e) found by BFGS from ``restarts`` random and all structured starts.

    Args:
        A: SPD, shape (n, n).
        block_sizes: positive ints summing to n.
        scale: η > 0.
        restarts: number of random starts (≥ 0).
        seed: seed of the random starts.
        max_iter: BFGS iterations per start (fewer: faster, a smaller lower bound).

    Returns:
        (ratio, e): the largest ratio found and the error e that attains it, shape (n,).
    """
    A = check_spd(A)
    slices = block_slices(check_block_sizes(block_sizes, A.shape[0]))
    restarts, max_iter = check_int("restarts", restarts, 0), check_int("max_iter", max_iter, 0)
    rng = as_generator("seed", seed)
    starts = _structured_starts(A, slices) + list(rng.standard_normal((restarts, len(A))))
    best, best_e = -np.inf, None
    for e0 in starts:
        # r is 0-homogeneous; normalise inside so BFGS never wanders to tiny or huge e
        objective = lambda e: -one_step_ratio(A, slices, scale, e / np.linalg.norm(e))  # noqa: E731
        for e in (e0, scipy.optimize.minimize(objective, e0, method="BFGS",
                                              options={"gtol": 1e-12, "maxiter": max_iter}).x):
            r = one_step_ratio(A, slices, scale, e / np.linalg.norm(e))
            if r > best:
                best, best_e = r, e / np.linalg.norm(e)
    return float(best), best_e


def _instances():
    """(name, A, block_sizes, η) for the table: the audit's cases and one coupled problem
    (η None: 1/c; "c_lambda": 1/c_λ)."""
    two = np.array([[1.0, -0.99], [-0.99, 1.0]])
    S = np.diag([1.0, 1.0, 30.0, 30.0])           # a block rescaling x_2 → 30·x_2
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    base = Q @ np.diag([1.0, 2.0, 5.0, 20.0]) @ Q.T
    return [("2x2, a = -0.99, eta = 0.5", two, [1, 1], 0.5),
            ("one block diag(1, 100), eta = 1", np.diag([1.0, 100.0]), [2], 1.0),
            ("Jacobi n = 4, a = 0.3, eta = 1/c", jacobi_matrix(4, 0.3), [1] * 4, 1 / 1.9),
            ("coupled 2+2, eta = 1/c", base, [2, 2], None),
            ("same, eta = 1/c_lambda", base, [2, 2], "c_lambda"),
            ("same, block 2 rescaled by 30", S @ base @ S, [2, 2], None)]


def bound_table() -> List[dict]:
    """Rows {name, c, c_lambda, mu_over_M, rho_T, rho_prime, R, observed} for the instances above.

    R is Proposition 7's exact worst case over EMA histories, also a bound for GD-LS, so
    the plain method's ratio is at most min(ρ′, R).
    """
    rows = []
    for name, A, sizes, scale in _instances():
        c = coupling_constant(A, sizes)
        c_low = min_scaled_coupling_constant(A, sizes)
        scale = {None: 1 / c, "c_lambda": 1 / c_low}.get(scale, scale) if not isinstance(scale, float) else scale
        rows.append({"name": name, "c": c, "c_lambda": c_low,
                     "mu_over_M": strong_convexity(A) / block_smoothness(A, sizes),
                     "rho_T": contraction_bound(A, sizes, scale),
                     "rho_prime": invariant_contraction_bound(A, sizes, scale),
                     "R": ema_contraction_bound(A, sizes, scale),
                     "observed": worst_one_step_ratio(A, sizes, scale)[0]})
    return rows
