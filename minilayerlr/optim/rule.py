"""The layer-wise rule as pure functions on per-block arrays of shape (L,).

The rule is stated once, in the docstring of ``minilayerlr.optim.layerwise``.
``LayerwiseStepSize.update`` calls these functions in its order: ``curvature_statistic``
(what is averaged) → ``moving_average`` → ``curvature_magnitude`` (the denominator's
curvature term) → ``layerwise_step_sizes`` (or ``coupled_step_sizes`` when η comes from
the blocks' coupling) → ``fallback_codes`` → ``apply_fallbacks``.

Denominators (our choices; docs/measurements.md measures each):

* ``"signed"``: κ = q, D̄ = q̄ + λs̄ — the 0.1 rule. q_l changes sign between
  mini-batches on tanh networks; q̄ then drifts through 0 while n̄ stays
  positive, and α̂ = n̄/D̄ passes through a pole.
* ``"abs"``: κ = |q|, D̄ = mean |q| + λs̄ ≥ |q̄| + λs̄: the curvature's magnitude
  (as saddle-free Newton uses |λ|): no pole, and on a convex problem, where
  q ≥ 0, exactly the signed rule.
* ``"rms"``: κ = q², D̄ = √(mean q²) + λs̄ ≥ mean |q| (AdaHessian's choice).

Reference: Bahamou & Goldfarb, arXiv 2305.13664 (the per-layer step from the
diagonal Hessian blocks); the denominators, multipliers and fallbacks are ours.
"""
from __future__ import annotations

import math

import numpy as np

#: Codes stored in ``state.fallbacks`` (one int per block and step).
NO_FALLBACK, ASCENT, NONPOSITIVE_CURVATURE, CAPPED = 0, 1, 2, 3
#: ``FALLBACK_NAMES[code]`` is a readable name for a code in ``state.fallbacks``.
FALLBACK_NAMES = ("none", "ascent", "nonpositive_curvature", "capped")
#: What a fallback may do: move nowhere, reuse the last formula step, take α_max.
FALLBACK_RULES = ("skip", "previous", "max_step")
#: How q_l enters the averaged denominator.
DENOMINATORS = ("signed", "abs", "rms")
#: Named multipliers η: 1/L (the worst-case coupling) or the coupling along the step.
MULTIPLIERS = ("blocks", "coupling")


def layerwise_step_sizes(numerators, curvatures, sq_norms, *, scale, damping):
    """The rule α_l = η · n_l / (q_l + λ‖d_l‖²), one step size per block.

    Args:
        numerators: n_l = g_lᵀd_l, shape (L,).
        curvatures: q_l = d_lᵀH_ll d_l (or its magnitude), shape (L,).
        sq_norms: ‖d_l‖², shape (L,).
        scale: η > 0.
        damping: λ ≥ 0 (``LayerwiseStepSize`` passes λ + SGD's coupled decay).

    Returns:
        α, shape (L,). A zero or negative denominator gives ±inf or NaN here,
        for :func:`fallback_codes` to catch.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return scale * numerators / (curvatures + damping * sq_norms)


def moving_average(averages, values, rho: float, t: int):
    """Bias-corrected zero-start EMA at step t: (ρ a (1−ρᵗ⁻¹) + (1−ρ) v) / (1−ρᵗ).

    ``averages`` are the corrected averages of step t − 1 (any shape, e.g. (3, L));
    ρ = 0 returns ``values`` exactly. Zero start (our choice) puts the same
    factor (1 − ρᵗ) in every average, so it cancels in any ratio of them.
    """
    return (rho * averages * (1 - rho ** (t - 1)) + (1 - rho) * values) / (1 - rho ** t)


def curvature_statistic(q, denominator: str):
    """What is averaged over steps: q ("signed"), |q| ("abs") or q² ("rms"), shape (L,)."""
    if denominator == "abs":
        return np.abs(q)
    return q * q if denominator == "rms" else q


def curvature_magnitude(average, denominator: str):
    """The curvature term of D̄ from the averaged statistic: √ for "rms", as is otherwise."""
    return np.sqrt(average) if denominator == "rms" else average


def coupling_multiplier(steps, gram, num_blocks: int) -> float:
    """η = min(1, Σ_l α̂_l² C_ll / α̂ᵀCα̂): the blocks' steps as they add up in the output.

    Args:
        steps: α̂, each block's own model step (0 for blocks that do not move), shape (L,).
        gram: C_lk = (J d_l)ᵀ ∇²ℓ (J d_k), the Gauss-Newton Gram of the blocks'
            directions, positive semi-definite, shape (L, L).
        num_blocks: L, for the worst case η = 1/L when nothing can be measured.

    Returns:
        η in [1/L, 1]. With u = Σ α̂_l d_l and C ⪰ 0, α̂ᵀCα̂ = ‖Σ α̂_l t_l‖² ≤ L Σ α̂_l² C_ll
        (Cauchy–Schwarz), so 1/c_u ≥ 1/L. On a quadratic with ρ = 0, where C holds
        the blocks of A and Σ α̂_l² C_ll = gᵀu, η·u is the exact line search along u
        (capped at the blocks' own steps).
    """
    u = np.where(np.isfinite(steps), steps, 0.0)
    diagonal = float(np.sum(u * u * np.diag(gram)))
    whole = float(u @ gram @ u)
    if not (diagonal > 0 and whole > 0 and math.isfinite(diagonal) and math.isfinite(whole)):
        return 1.0 / num_blocks
    return max(1.0 / num_blocks, min(1.0, diagonal / whole))


def coupled_step_sizes(numerators, avg_numerators, magnitudes, avg_sq_norms, gram, sq_norms, *,
                       damping):
    """(η, η·α̂): each block's own model step α̂_l (η = 1), then η from how the moving blocks'
    steps add up (:func:`coupling_multiplier`), on the Gram damped as D is, C + diag(λ s).

    λ‖d‖² is block diagonal (d_lᵀd_k = 0 for l ≠ k); arguments as in ``LayerwiseStepSize.update``,
    shape (L,) each, ``gram`` (L, L).
    """
    unit = layerwise_step_sizes(avg_numerators, magnitudes, avg_sq_norms, scale=1.0, damping=damping)
    avg_denominators = magnitudes + damping * avg_sq_norms
    moving = fallback_codes(numerators, avg_numerators, avg_denominators, unit, math.inf) == NO_FALLBACK
    eta = coupling_multiplier(np.where(moving, unit, 0.0), gram + np.diag(damping * sq_norms),
                              len(numerators))
    return eta, eta * unit


def fallback_codes(numerators, avg_numerators, avg_denominators, raw, max_step):
    """One code per block: ASCENT if n_l ≤ 0 or n̄_l ≤ 0; else NONPOSITIVE_CURVATURE if
    D̄_l ≤ 0 (or α overflows with no cap); else CAPPED if α_l > α_max; else NO_FALLBACK."""
    ascent = (numerators <= 0) | (avg_numerators <= 0)
    no_minimiser = ~(avg_denominators > 0) | (np.isinf(raw) & math.isinf(max_step))
    return np.select([ascent, no_minimiser, raw > max_step],
                     [ASCENT, NONPOSITIVE_CURVATURE, CAPPED], NO_FALLBACK).astype(np.int64)


def apply_fallbacks(raw, codes, previous, *, on_ascent: str, on_nonpositive_curvature: str,
                    max_step: float):
    """α_l = min(raw_l, α_max) where the formula holds, else the block's rule; shape (L,) each.

    A rule is "skip" (0), "previous" (``previous``, the last formula α_l; 0 before the
    first) or "max_step" (α_max). Returns (alpha, reference): reference is α_l where the
    formula held (codes 0 and 3), ``previous`` elsewhere.
    """
    options = {"skip": 0.0, "previous": previous, "max_step": max_step}
    with np.errstate(invalid="ignore"):
        formula = np.minimum(raw, max_step)
    alpha = np.where(codes == ASCENT, options[on_ascent],
                     np.where(codes == NONPOSITIVE_CURVATURE, options[on_nonpositive_curvature],
                              formula))
    held = (codes == NO_FALLBACK) | (codes == CAPPED)
    return alpha, np.where(held, alpha, previous)
