"""Provable safeguards of the layer-wise step (docs/theory.md, Theorem 10 and Proposition 11).

Two small pure rules, each with its proof in docs/theory.md:

* Armijo backtracking on the whole layer-wise step (our choice for GD-LS off the
  quadratic): take the largest t ∈ {1, τ, τ², …, τ^k} with

      f(θ + t·u) ≤ f(θ) − ν·t·s,        s = −gᵀu ≥ 0 (u the proposed update),

  or t = 0 (no move) if none passes. Accepted steps never increase f; t = 1 leaves
  the layer-wise step exactly as it was (the quadratic theorems apply unchanged);
  under μ-strong convexity and Λ-smoothness the rate is linear (Theorem 10).
  Defaults ν = 1e-4, τ = ½ (Nocedal & Wright, Numerical Optimization, Algorithm 3.1).
* Implicit decoupled decay for AdamW-LS: θ_l⁺ = (θ_l − α_l d_l)/(1 + α_l·wd), the
  proximal step of ½wd‖θ‖² after the layer-wise step, i.e. AdamW's update
  −α̃_l(d_l + wd θ_l) with α̃_l = α_l/(1 + α_l wd). The decay factor 1/(1 + α_l wd)
  lies in (0, 1] for every α_l ≥ 0, where AdamW's explicit 1 − α_l wd flips sign once
  α_l wd > 2 (Proposition 11).
"""
from __future__ import annotations

from typing import Callable, Tuple

import numpy as np

from minilayerlr.tree import Params, apply_updates, block_dot, tree_map

#: Armijo's sufficient-decrease fraction ν, shrink factor τ and number of shrinks (our defaults).
SUFFICIENT_DECREASE, SHRINK, MAX_SHRINKS = 1e-4, 0.5, 30


def armijo_factor(loss_at: Callable[[float], float], f0: float, slope: float,
                  sufficient_decrease: float = SUFFICIENT_DECREASE, shrink: float = SHRINK,
                  max_shrinks: int = MAX_SHRINKS) -> Tuple[float, float]:
    """Largest t = τ^k (k ≤ max_shrinks) with loss_at(t) ≤ f0 − ν·t·slope, else (0, f0).

    Args:
        loss_at: t ↦ f(θ + t·u).
        f0: f(θ).
        slope: s = −gᵀu ≥ 0, the decrease rate of f along u at t = 0.
        sufficient_decrease: ν in (0, 1).
        shrink: τ in (0, 1).
        max_shrinks: k_max ≥ 0.

    Returns:
        (t, f(θ + t·u)); a NaN or infinite trial loss counts as a failure.
    """
    t = 1.0
    for _ in range(max_shrinks + 1):
        f_t = loss_at(t)
        if f_t <= f0 - sufficient_decrease * t * slope:  # False for NaN
            return t, float(f_t)
        t *= shrink
    return 0.0, float(f0)


def backtrack_updates(updates: Params, params: Params, grads: Params,
                      loss: Callable[[Params], float]) -> Tuple[Params, float]:
    """Scale ``updates`` by the Armijo factor t of f along them; returns (t·updates, t).

    The accepted tree is the one whose loss was tested, so ``apply_updates(params, result)``
    reproduces the tested point bit for bit (f never increases, even by rounding).
    """
    slope = max(-float(np.sum(block_dot(grads, updates))), 0.0)
    trials = {}

    def loss_at(t: float) -> float:
        trials[t] = tree_map(lambda u: t * u, updates)
        return loss(apply_updates(params, trials[t]))

    t, _ = armijo_factor(loss_at, float(loss(params)), slope)
    return (trials[t] if t > 0 else tree_map(lambda u: 0.0 * u, updates)), t


def implicit_decay_step_sizes(step_sizes: np.ndarray, weight_decay: float) -> np.ndarray:
    """α̃_l = α_l/(1 + α_l·wd): θ_l − α̃_l(d_l + wd θ_l) = (θ_l − α_l d_l)/(1 + α_l wd).

    Args:
        step_sizes: α_l ≥ 0, shape (L,).
        weight_decay: wd ≥ 0 (AdamW's decoupled decay).

    Returns:
        α̃, shape (L,), with α̃_l ≤ α_l and α̃_l·wd < 1.
    """
    return step_sizes / (1.0 + step_sizes * weight_decay)
