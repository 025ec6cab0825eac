"""The ablation of the paper's idea: the layer-wise rule with ONE block for the whole network.

``GlobalStepSize(base, ...)`` is ``LayerwiseStepSize(base, ..., one_block=True)``
under its own name: the rule of ``minilayerlr.optim.layerwise`` (stated once, in
that module's docstring) with n = g̃ᵀd, q = dᵀ(Hd) (one exact Hessian-vector
product) and s = ‖d‖² summed over the network, the same averages, cap and
fallbacks, and one α for every block. "Layer-wise vs global" is the only
difference between the two. With one block, η = 1/L (the layer-wise default) is
η = 1. With d = g, η = 1, λ = 0 and ρ = 0 on a quadratic, α = gᵀg / gᵀAg is the
exact line-search step along −g: the exact counterpart of what GeN (Xu et al.
2025) estimates with a parabola fit of the loss along d.

References:
    Bahamou & Goldfarb, arXiv 2305.13664 (the layer-wise rule; its global
    version is the ablation). Safeguards and defaults: those of
    :class:`~minilayerlr.optim.LayerwiseStepSize` (ours).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Optional

from minilayerlr.optim.layerwise import LayerwiseStepSize, LayerwiseStepSizeState


@dataclass(frozen=True)
class GlobalStepSizeState(LayerwiseStepSizeState):
    """State of :class:`GlobalStepSize`: a layer-wise state whose rule arrays (numerators,
    curvatures, averages, fallbacks, reference step sizes) have shape (1,); ``step_sizes``
    holds the one α per block, shape (L,), so it plots like the layer-wise α_l."""


@dataclass(frozen=True)
class GlobalStepSize(LayerwiseStepSize):
    """One step size for the whole network from one exact HVP, with the layer-wise safeguards.

    Args: as :class:`~minilayerlr.optim.LayerwiseStepSize` (same defaults: ρ = 0.9,
    λ = 0, α_max = inf, "skip" on ascent, "previous" on nonpositive curvature, the
    EMA of |q|), except ``scale``: η > 0, or None (default) for η = 1: with one block
    both 1/L and the coupling's η are 1 ("blocks" and "coupling" give 1 too). There is
    no ``curvature_kind``: q = dᵀ(Hd) is exact, from the ``hvp`` oracle.
    """

    curvature_kind: Optional[str] = field(default=None, init=False, repr=False)
    seed: int = field(default=0, init=False, repr=False)
    line_search: bool = field(default=False, init=False, repr=False)
    full_batch: bool = field(default=False, init=False, repr=False)
    one_block: bool = field(default=True, init=False, repr=False)

    state_class: ClassVar[type] = GlobalStepSizeState

    @property
    def layerwise(self) -> LayerwiseStepSize:
        """The :class:`LayerwiseStepSize` with these settings (what this ablation is compared with)."""
        return LayerwiseStepSize(self.base, scale=self.scale, damping=self.damping, ema=self.ema,
                                 max_step=self.max_step, on_ascent=self.on_ascent,
                                 on_nonpositive_curvature=self.on_nonpositive_curvature,
                                 denominator=self.denominator)
