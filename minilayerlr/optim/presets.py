"""Named configurations of :class:`LayerwiseStepSize`: the idealized method and the 0.1 rule.

Factories, as optax's ``alias.py`` builds ``adamw`` from its parts: each returns a
configured ``LayerwiseStepSize``; nothing here adds behaviour.
"""
from __future__ import annotations

from typing import Any, Optional

from minilayerlr.optim.base import SGD
from minilayerlr.optim.layerwise import LayerwiseStepSize


def rule_v01(base: Any = SGD(), **options) -> LayerwiseStepSize:
    """The 0.1 rule, bit for bit: the signed average of q_l and η = 1/L.

        α_l = (1/L) · n̄_l / (q̄_l + λ s̄_l)        (n̄, q̄, s̄: EMAs with ρ = 0.9)

    Its denominator q̄_l passes through 0 when q_l changes sign between
    mini-batches (tanh networks), and α_l through a pole; the default
    ``LayerwiseStepSize`` averages |q_l| instead, with the same η = 1/L
    (docs/measurements.md). Kept so that results of 0.1 reproduce.

    Args:
        base: SGD, Adam or AdamW.
        **options: any other ``LayerwiseStepSize`` argument (``ema``, ``damping``, ...);
            ``scale`` and ``denominator`` may be given to depart from the 0.1 rule.

    Returns:
        The configured :class:`LayerwiseStepSize`.
    """
    options.setdefault("scale", "blocks")
    options.setdefault("denominator", "signed")
    return LayerwiseStepSize(base, **options)


def GDLS(scale: Optional[float] = None, curvature_kind: Optional[str] = "hessian",
         line_search: bool = True) -> LayerwiseStepSize:
    """The idealized method: full-batch gradient descent with exact block curvature.

        α_l = η ‖g_l‖² / g_lᵀH_ll g_l,      θ_l ← θ_l − α_l g_l

    A factory (as optax's ``alias.py`` builds ``adamw``): LayerwiseStepSize around SGD
    (d = g), λ = 0, ρ = 0, no cap; blocks with g_l = 0 do not move (the "ascent" fallback).
    The caller supplies full-batch gradients, the exact oracle and (by default) ``loss``.

    docs/theory.md: Theorems 1, 1′, 2, 3 (quadratics, η < 2/c) and 4, 4′ (strongly convex,
    η < 2/κ) for the plain step; the default Armijo line search (our choice) never increases
    f, keeps the full step on quadratics for η ≤ 2(1 − ν)/c and has Theorem 10's rate.

    Args:
        scale: η > 0, or None (default) for η = 1/L, L the number of blocks.
        curvature_kind: passed to the oracle (default "hessian"; None: plain oracles of d).
        line_search: Armijo backtracking with the ``loss`` oracle (default True; False: plain).

    Returns:
        The configured :class:`LayerwiseStepSize`.
    """
    return LayerwiseStepSize(SGD(lr=1.0), scale="blocks" if scale is None else scale,
                             denominator="signed", damping=0.0, ema=0.0, full_batch=True,
                             curvature_kind=curvature_kind, line_search=line_search)
