"""K-FAC's exact quadratic model and its Levenberg-Marquardt damping rule (Martens & Grosse 2015 §6.4–§7).

With g the mini-batch gradient, F the exact Fisher of the batch (for our
losses, whose predictive distributions match them, the Gauss-Newton matrix
Jᵀ∇²ℓJ), λ the damping, Δ = F̃⁻¹g the K-FAC direction and v the previous
velocity (the last update was −v before the ``lr`` multiplier), the damped
quadratic model of a step w is::

    M(w) = gᵀw + ½ wᵀ(F + λI)w

and w = −(α Δ + μ v) is chosen to minimise it over (α, μ) (M&G §7)::

    [ΔᵀCΔ  ΔᵀCv] [α]   [gᵀΔ]
    [vᵀCΔ  vᵀCv] [μ] = [gᵀv]           C = F + λI

(v = 0, or gᵀv = 0 exactly, as on the first step: μ = 0, α = gᵀΔ / ΔᵀCΔ, §6.4).
The change the reduction ratio compares with is the model *without* the
damping term (the ``kfac`` package's default, ``_INCLUDE_DAMPING_IN_QMODEL_CHANGE
= False``, l2_reg = 0), at the step actually taken r·w (r = ``lr``, 1 by
default; the package's ``qmodel_update_rescale``)::

    change = r (gᵀw) + ½ r² wᵀFw         (r = 1: −½ (α gᵀΔ + μ gᵀv) − ½ λ‖w‖²)

Every ``interval`` steps the damping follows the Levenberg-Marquardt rule on
ρ = (f(θ + r w) − f(θ)) / change, f on the same mini-batch (§6.5)::

    λ ← ω λ   if ρ > 3/4, or f decreased although the model predicted an increase
    λ ← λ / ω if ρ < 1/4                          ω = decay^interval (0.95⁵)
    λ ← max(λ, min_damping)

References:
    Martens & Grosse, "Optimizing neural networks with Kronecker-factored
    approximate curvature", ICML 2015, §6.4 (α), §6.5 (λ), §7 (α, μ);
    the ``kfac`` package 0.2 (github.com/tensorflow/kfac), ``KfacOptimizer``
    ``_compute_qmodel_hyperparams`` and ``_update_damping``.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.tree import Params, block_dot, check_tree


def quadratic_model(grads: Params, delta: Params, velocity: Params, damping: float, hvp,
                    rescale: float = 1.0) -> Tuple[float, float, float]:
    """(α, μ, model change) for the step −(αΔ + μv), from F Δ and F v (one product when v = 0).

    Args:
        grads: g; delta: Δ = F̃⁻¹g; velocity: v (all with the params' structure).
        damping: λ of the model.
        hvp: the oracle ``(v, kind="ggn") -> F v``, e.g. ``ev.hvp``.
        rescale: r, the multiplier of the step taken (``KFAC.lr``).
    """
    f_delta = _tree_answer(hvp(delta, kind="ggn"), grads)
    moving = any(np.any(a) for e in velocity for a in e.values())
    f_velocity = _tree_answer(hvp(velocity, kind="ggn"), grads) if moving else velocity

    def dot(a, b):
        return float(block_dot(a, b).sum())
    m = np.array([[dot(delta, f_delta), dot(velocity, f_delta)],
                  [dot(velocity, f_delta), dot(velocity, f_velocity)]])
    b = damping * np.array([[dot(delta, delta), dot(velocity, delta)],
                            [dot(velocity, delta), dot(velocity, velocity)]])
    c = np.array([dot(grads, delta), dot(grads, velocity)])
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(c))):
        raise NonFiniteError("hvp: the quadratic model of the K-FAC step is not finite")
    return solve_qmodel(m, b, c, rescale)


def _tree_answer(tree, like: Params) -> Params:
    """The hvp oracle's answer if it is a finite tree shaped like ``like``, else an error naming hvp."""
    try:
        check_tree(tree, "hvp", like=like)
    except NonFiniteError:
        raise
    except (TypeError, ValueError) as error:
        raise ValueError(f"hvp: the oracle must return a tree like the gradients ({error})") from None
    return tree


def solve_qmodel(m: np.ndarray, b: np.ndarray, c: np.ndarray, rescale: float = 1.0,
                 momentum: bool = True) -> Tuple[float, float, float]:
    """(α, μ, change) minimising the damped 2-D model, as in the module docstring.

    Args:
        m: (2, 2) [[ΔᵀFΔ, ΔᵀFv], [vᵀFΔ, vᵀFv]] (undamped).
        b: (2, 2) the damping part λ[[ΔᵀΔ, Δᵀv], [vᵀΔ, vᵀv]].
        c: (2,) [gᵀΔ, gᵀv].
        rescale: r, the multiplier of the step actually taken.
        momentum: False forces μ = 0 (the 1-D model of §6.4).
    Returns:
        α, μ, and the undamped model change at r·w (≤ 0 for r ≤ 2 when F ⪰ 0).

    A 2×2 system that is singular in floating point (v parallel to Δ, or
    Δ = 0) falls back to the 1-D model, and ΔᵀCΔ = 0 (g = 0) gives α = 0
    (both our choice: the package would divide by zero).
    """
    mc = m + b
    det = mc[0, 0] * mc[1, 1] - mc[0, 1] * mc[1, 0]
    two_d = momentum and c[1] != 0 and det > 0 and math.isfinite(det) \
        and det > 1e-14 * abs(mc[0, 0] * mc[1, 1])
    if two_d:
        alpha = (mc[1, 1] * c[0] - mc[0, 1] * c[1]) / det
        mu = (mc[0, 0] * c[1] - mc[1, 0] * c[0]) / det
    else:
        alpha = c[0] / mc[0, 0] if mc[0, 0] > 0 else 0.0
        mu = 0.0
    x = np.array([alpha, mu])
    if rescale == 1.0:  # at the minimiser, ½xᵀ(M + B)x − cᵀx = −½ cᵀx
        change = -0.5 * float(c @ x) - 0.5 * float(x @ b @ x)
    else:
        x = rescale * x
        change = 0.5 * float(x @ m @ x) - float(c @ x)
    return float(alpha), float(mu), float(change)


def reduction_ratio(loss_change: float, model_change: float) -> float:
    """ρ = Δf / Δmodel, with x/0 = ±inf and 0/0 = nan as in floating point (the package's)."""
    if model_change != 0:
        return loss_change / model_change
    return math.copysign(math.inf, loss_change) if loss_change != 0 else math.nan


def adapt_damping(damping: float, loss_change: float, model_change: float, omega: float,
                  min_damping: float, decrease_above: float = 0.75,
                  increase_below: float = 0.25) -> Tuple[float, float]:
    """(new λ, ρ) by the Levenberg-Marquardt rule of the module docstring (M&G §6.5)."""
    rho = reduction_ratio(loss_change, model_change)
    if (loss_change < 0 and model_change > 0) or rho > decrease_above:
        damping = damping * omega
    elif rho < increase_below:
        damping = damping / omega
    return max(damping, min_damping), rho
