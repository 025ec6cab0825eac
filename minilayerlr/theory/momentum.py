"""Momentum and the second-edition denominator under the rule (docs/theory.md, Propositions 8′(c)(iv), 6.3).

* ``momentum_horizon_bounds``: SGD-m-LS with ρ = 0, one block, η = 1 on a quadratic does an exact
  line search along m_t = βm_{t−1} + g_t; step t decreases Δ_t = f(x_t) − f* by a fraction between
  c_t/κ and κc_t (c_t = ‖g_t‖²/‖m_t‖²), and over steps t₀, …, t − 1 the total fraction
  1 − Δ_t/Δ_{t₀} lies between 1 − Π(1 − c_s/κ) and 1 − Π max(0, 1 − κc_s); both ends are approached
  for every horizon.
* ``abs_rule_step_bounds``: with the |q| average (the default ``denominator="abs"``), λ = 0, no
  decay, the step η·n̄/κ̄ lies between η·min_s n_s/|q_s| and η·max_s n_s⁺/|q_s| over the averaged
  steps (a ratio of weighted sums lies between its termwise ratios): no pole, whatever the signs of q.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from minilayerlr.validation import as_real_array


def momentum_horizon_bounds(cosines: Sequence[float], kappa: float) -> Tuple[float, float]:
    """Proposition 8′(c)(iv): the bounds on 1 − Δ_t/Δ_{t₀} from the steps' c_s, s = t₀, …, t − 1.

    Args:
        cosines: c_s = ‖g_s‖²/‖m_s‖² ∈ (0, 1] of the steps in the horizon, shape (k,), k ≥ 0.
        kappa: κ = λ_max(A)/λ_min(A) ≥ 1.

    Returns:
        (lower, upper) = (1 − Π_s(1 − c_s/κ), 1 − Π_s max(0, 1 − κc_s)), each in [0, 1]; (0, 0)
        for an empty horizon.
    """
    c = as_real_array(cosines, "cosines").ravel()
    if not np.all(np.isfinite(c) & (c > 0) & (c <= 1)):
        raise ValueError(f"cosines: expected numbers in (0, 1], got {c!r}")
    kappa = float(kappa)
    if not (np.isfinite(kappa) and kappa >= 1):
        raise ValueError(f"kappa: expected a finite number >= 1, got {kappa!r}")
    lower = 1 - float(np.prod(1 - c / kappa))
    upper = 1 - float(np.prod(np.maximum(0.0, 1 - kappa * c)))
    return lower, upper


def abs_rule_step_bounds(numerators: Sequence[float], curvatures: Sequence[float],
                         scale: float) -> Tuple[float, float]:
    """Proposition 6.3: η·min_s n_s/|q_s| ≤ η·n̄/κ̄ ≤ η·max_s n_s⁺/|q_s| (κ̄ the average of |q_s|).

    Args:
        numerators: n_s = g̃_sᵀd_s of the averaged steps, shape (k,), k ≥ 1.
        curvatures: q_s of the same steps (any sign), shape (k,); every step with n_s > 0 needs q_s ≠ 0.
        scale: η > 0.

    Returns:
        (low, high): the lower end is η·min_s n_s/|q_s| (meaningful when every n_s > 0), the upper
        η·max_s max(n_s, 0)/|q_s| over the steps with q_s ≠ 0.
    """
    n = as_real_array(numerators, "numerators").ravel()
    q = np.abs(as_real_array(curvatures, "curvatures").ravel())
    if n.shape != q.shape or n.size == 0:
        raise ValueError(f"curvatures: expected the shape of numerators {n.shape}, got {q.shape}")
    if np.any((n > 0) & (q == 0)):
        raise ValueError("curvatures: a step with n_s > 0 has q_s = 0 (its ratio is infinite)")
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: expected a finite number > 0, got {scale!r}")
    moving = q > 0
    ratios = np.maximum(n[moving], 0.0) / q[moving]
    low = float(np.min(n[moving] / q[moving])) if np.any(moving) else 0.0
    return scale * low, scale * float(np.max(ratios, initial=0.0))


def momentum_run_gaps(eigenvalues, start, momentum: float, steps: int) -> np.ndarray:
    """Δ_0, …, Δ_steps of SGD-m-LS (ρ = 0, one block, η = 1: the exact line search along m_t) on
    ½xᵀdiag(eigenvalues)x from x₀ = start; the rule written out in NumPy, for searches (shape (steps + 1,))."""
    lam, x = np.asarray(eigenvalues, dtype=float), np.array(start, dtype=float)
    m, gaps = np.zeros_like(x), [0.5 * x @ (lam * x)]
    for _ in range(steps):
        g = lam * x
        m = momentum * m + g
        curvature = m @ (lam * m)
        if not curvature > 0:
            gaps.extend([gaps[-1]] * (steps + 1 - len(gaps)))
            break
        x = x - (g @ m) / curvature * m
        gaps.append(0.5 * x @ (lam * x))
    return np.array(gaps)


def momentum_horizon_worst(kappa: float, momentum: float, steps: int, starts: int = 20,
                           seed: int = 0) -> float:
    """A lower bound on sup Δ_steps/Δ_0 over instances (Proposition 8′(c)(iv), measured, no formula):
    Nelder–Mead over the start on diag(1, κ) and over the start and the middle eigenvalue on
    diag(1, λ, κ), from ``starts`` random points each (seeded). Attained values, so lower bounds."""
    import scipy.optimize
    rng = np.random.default_rng(seed)
    best = 0.0
    for dim in (2, 3):
        def ratio(theta):
            mid = [1 + (kappa - 1) / (1 + np.exp(-theta[dim]))] if dim == 3 else []
            x = theta[:dim]
            if not x @ x > 0:
                return 0.0
            gaps = momentum_run_gaps([1.0] + mid + [kappa], x, momentum, steps)
            return gaps[-1] / gaps[0]
        for _ in range(starts):
            res = scipy.optimize.minimize(lambda th: -ratio(th), rng.standard_normal(dim + (dim == 3)),
                                          method="Nelder-Mead", options={"maxiter": 2000, "xatol": 1e-10,
                                                                         "fatol": 1e-14})
            best = max(best, ratio(res.x))
    return float(best)
