"""The ablation of the paper's idea: the same step-size rule with ONE block for the whole network.

:class:`LayerwiseStepSize` gives every layer its own α_l from its diagonal
Hessian block. :class:`GlobalStepSize` gives the whole network one α, from the
whole Hessian, with the same rule, moving average, cap and fallbacks (the
functions of ``minilayerlr.optim.layerwise`` are called, not copied)::

    n = g̃ᵀd,   q = dᵀH d  (one exact Hessian-vector product),   s = ‖d‖²
    n̄, q̄, s̄ ← the zero-start, bias-corrected EMAs with factor ρ
    α = min(η · n̄ / (q̄ + (wd_c + λ) s̄), α_max)         (the fallbacks aside)
    θ ← (θ − α d)/(1 + α·wd_d)          (AdamW's decay, implicit as in the layer-wise rule)

so "layer-wise vs global" is the only difference between the two. With one
block, η = 1/L (the layer-wise default) is η = 1: ``scale=None`` means η = 1
here. With d = g, η = 1, λ = 0 and ρ = 0 on a quadratic, α = gᵀg / gᵀAg is the
exact line-search step along −g. It is the exact counterpart of what GeN
(Xu et al. 2025) estimates with a parabola fit of the loss along d.

References:
    Bahamou & Goldfarb, arXiv 2305.13664 (the layer-wise rule; its global
    version is the ablation). Safeguards and defaults: those of
    :class:`~minilayerlr.optim.LayerwiseStepSize` (ours).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Tuple, Union

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import SGD, check_state_type, objective_gradient
from minilayerlr.optim.layerwise import DEFAULT_DENOMINATOR, LayerwiseStepSize
from minilayerlr.optim.rule import (FALLBACK_NAMES, apply_fallbacks, curvature_magnitude,
                                    curvature_statistic, fallback_codes, layerwise_step_sizes,
                                    moving_average)
from minilayerlr.optim.oracles import check_oracle
from minilayerlr.optim.safeguards import implicit_decay_step_sizes
from minilayerlr.optim.state_checks import rule_state_checks
from minilayerlr.tree import Params, block_dot, check_tree, num_blocks, tree_map


@dataclass(frozen=True)
class GlobalStepSizeState:
    """State of :class:`GlobalStepSize`; the global quantities have shape (1,).

    Attributes:
        count: number of steps taken.
        base_state: the wrapped method's state.
        step_sizes: the one α, repeated per block, shape (L,) (plots like the layer-wise α_l).
        numerators: n = g̃ᵀd at the last step, shape (1,).
        curvatures: q = dᵀHd at the last step, shape (1,).
        denominators: q + (wd_c + λ)‖d‖², shape (1,).
        avg_numerators, avg_denominators, avg_curvatures, avg_sq_norms: the
            bias-corrected EMAs n̄, D̄, q̄, s̄, shape (1,).
        fallbacks: the code of the one block, shape (1,) (``FALLBACK_NAMES``).
        reference_step_sizes: the last α given by the formula, shape (1,).
    """

    count: int
    base_state: Any
    step_sizes: np.ndarray
    numerators: np.ndarray
    curvatures: np.ndarray
    denominators: np.ndarray
    avg_numerators: np.ndarray
    avg_denominators: np.ndarray
    avg_curvatures: np.ndarray
    avg_sq_norms: np.ndarray
    fallbacks: np.ndarray
    reference_step_sizes: np.ndarray

    @property
    def fallback_names(self) -> Tuple[str, ...]:
        """``state.fallbacks`` as names, e.g. ``("none",)``."""
        return tuple(FALLBACK_NAMES[c] for c in self.fallbacks)

    def diagnostics(self) -> dict:
        """What the training loop records per step: α and the fallback code, per block (L,)."""
        return {"step_sizes": self.step_sizes,
                "fallbacks": np.full(len(self.step_sizes), self.fallbacks[0], dtype=np.int64)}

    check_values = rule_state_checks(per_block=False, n_codes=len(FALLBACK_NAMES))


@dataclass(frozen=True)
class GlobalStepSize:
    """One step size for the whole network from one exact HVP, with the layer-wise safeguards.

    Args: as :class:`~minilayerlr.optim.LayerwiseStepSize` (same defaults: ρ = 0.9,
    λ = 0, α_max = inf, "skip" on ascent, "previous" on nonpositive curvature),
    except ``scale``: η > 0, or None (default) for η = 1: with one block both 1/L and
    the coupling's η are 1 ("blocks" and "coupling" give 1 too). There is no
    ``curvature_kind``: q = dᵀ(Hd) is exact. ``denominator`` is the layer-wise one
    (default: the EMA of |q|).
    """

    oracles: ClassVar[Tuple[str, ...]] = ("hvp",)

    base: Any = SGD()
    scale: Union[float, str, None] = None
    damping: float = 0.0
    ema: float = 0.9
    max_step: float = math.inf
    on_ascent: str = "skip"
    on_nonpositive_curvature: str = "previous"
    denominator: str = DEFAULT_DENOMINATOR

    def __post_init__(self):
        self.layerwise  # the same checks of every argument, with the same messages

    @property
    def layerwise(self) -> LayerwiseStepSize:
        """The :class:`LayerwiseStepSize` with these settings (what this ablation is compared with)."""
        return LayerwiseStepSize(self.base, scale=self.scale, damping=self.damping, ema=self.ema,
                                 max_step=self.max_step, on_ascent=self.on_ascent,
                                 on_nonpositive_curvature=self.on_nonpositive_curvature,
                                 denominator=self.denominator)

    def init(self, params: Params) -> GlobalStepSizeState:
        """Return the initial state: the base state and zeros."""
        base_state = self.base.init(params)  # checks params
        one = np.zeros(1)
        return GlobalStepSizeState(
            count=0, base_state=base_state, step_sizes=np.zeros(num_blocks(params)),
            numerators=one, curvatures=one, denominators=one, avg_numerators=one,
            avg_denominators=one, avg_curvatures=one, avg_sq_norms=one,
            fallbacks=np.zeros(1, dtype=np.int64), reference_step_sizes=one)

    def update(self, grads: Params, state: GlobalStepSizeState, params: Optional[Params] = None,
               *, hvp: Optional[Callable[[Params], Params]] = None
               ) -> Tuple[Params, GlobalStepSizeState]:
        """One global step: α from n̄/D̄ of the whole network, then θ ← θ − α(d + wd_d θ).

        Args:
            grads: g, same structure as params.
            state: from ``init`` or the previous ``update``.
            params: θ; needed when the base method has weight decay.
            hvp: the oracle v ↦ Hv (params structure), e.g. ``ev.hvp``.

        Returns:
            ``(updates, new_state)``.
        """
        check_oracle("hvp", hvp, "GlobalStepSize")
        check_state_type(state, GlobalStepSizeState, "GlobalStepSize")
        wd_c = float(self.base.coupled_weight_decay)
        wd_d = float(self.base.decoupled_weight_decay)
        t = state.count + 1
        d, base_state = self.base.direction(grads, state.base_state, params)  # checks its inputs
        numer = np.array([block_dot(objective_gradient(grads, params, wd_c), d).sum()])
        q = np.array([_quadratic_form(hvp, d)])
        sq = np.array([block_dot(d, d).sum()])
        damping = wd_c + self.damping
        denom = q + damping * sq
        if not (np.isfinite(numer[0]) and np.isfinite(denom[0])):
            raise NonFiniteError("params: gᵀd or ‖d‖² overflowed (non-finite); the run has diverged")
        previous = np.stack([state.avg_numerators, state.avg_curvatures, state.avg_sq_norms])
        values = np.stack([numer, curvature_statistic(q, self.denominator), sq])
        avg_n, avg_q, avg_s = moving_average(previous, values, self.ema, t)
        magnitude = curvature_magnitude(avg_q, self.denominator)
        eta = 1.0 if self.scale is None or isinstance(self.scale, str) else float(self.scale)
        raw = layerwise_step_sizes(avg_n, magnitude, avg_s, scale=eta, damping=damping)
        avg_d = magnitude + damping * avg_s
        codes = fallback_codes(numer, avg_n, avg_d, raw, self.max_step)
        alpha, reference = apply_fallbacks(
            raw, codes, state.reference_step_sizes, on_ascent=self.on_ascent,
            on_nonpositive_curvature=self.on_nonpositive_curvature, max_step=self.max_step)
        a = float(implicit_decay_step_sizes(alpha, wd_d)[0])  # = alpha[0] when wd_d = 0
        if wd_d > 0:
            updates = tree_map(lambda d_, p_: -a * (d_ + wd_d * p_), d, params)
        else:
            updates = tree_map(lambda d_: -a * d_, d)
        return updates, GlobalStepSizeState(
            count=t, base_state=base_state, step_sizes=np.full(num_blocks(d), a),
            numerators=numer, curvatures=q, denominators=denom, avg_numerators=avg_n,
            avg_denominators=avg_d, avg_curvatures=avg_q, avg_sq_norms=avg_s,
            fallbacks=codes, reference_step_sizes=reference)


def _quadratic_form(hvp: Callable[[Params], Params], d: Params) -> float:
    """dᵀ(Hd) from one call of the oracle; its answer is checked (structure, finite)."""
    hd = hvp(d)
    try:
        check_tree(hd, "hvp", like=d)
    except NonFiniteError:
        raise NonFiniteError("hvp: the oracle returned non-finite values") from None
    except TypeError as error:  # complex, integer or object arrays: never cast silently
        raise TypeError(f"hvp: the oracle must return real floating-point arrays ({error})") from None
    except ValueError as error:
        raise ValueError(f"hvp: the oracle must return H v in the structure of params ({error})") from None
    return float(block_dot(d, hd).sum())
