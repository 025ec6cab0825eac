"""Layer-wise adaptive step sizes (Bahamou & Goldfarb, arXiv 2305.13664).

A base method (SGD, SGD with momentum, Adam, AdamW) proposes a direction
d = (d_1, …, d_L). Each block l then gets the step that minimises the local
quadratic model of the loss along its own direction, every other block held
fixed::

    m_l(α) = f(θ) − α g_lᵀd_l + ½ α² d_lᵀH_ll d_l
    α_l    = η · g_lᵀd_l / (q_l + λ‖d_l‖²),   q_l = d_lᵀH_ll d_l
    θ_l   ← θ_l − α_l d_l

The formula is the natural reading of the paper's abstract (its full text is
not available to us). The safeguards below — moving average, cap, fallbacks
and their defaults — are *our* choices; each is a documented parameter.

The three pure functions at the top are the method; ``LayerwiseStepSize.update``
checks its inputs once and calls them in order: direction → numerators →
curvature → average → rule → fallbacks → updates.

The optimizer never sees a network: ``update`` gets the gradients and a
curvature oracle, a callable ``curvature(d) -> q`` of shape (L,) (networks:
``ev.layer_curvature``; closed forms: ``BlockQuadratic.evaluate(x)
.layer_curvature``; tests: any lambda). See docs/design.md for the oracle
protocol and docs/measurements.md for the measurements behind the defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import SGD, check_state_type, objective_gradient
from minilayerlr.optim.oracles import check_oracle
from minilayerlr.tree import Params, block_dot, block_indices, block_sq_norm
from minilayerlr.validation import (check_int, check_nonnegative, check_positive,
                                    check_unit_interval, is_real_number)

#: Codes stored in ``state.fallbacks`` (one int per block and step).
NO_FALLBACK, ASCENT, NONPOSITIVE_CURVATURE, CAPPED = 0, 1, 2, 3
#: ``FALLBACK_NAMES[code]`` is a readable name for a code in ``state.fallbacks``.
FALLBACK_NAMES = ("none", "ascent", "nonpositive_curvature", "capped")
#: What a fallback may do: move nowhere, reuse the last formula step, take α_max.
FALLBACK_RULES = ("skip", "previous", "max_step")
#: Curvature kinds the network engine understands; SEEDED_KINDS get a seed per step.
CURVATURE_KINDS = ("hessian", "ggn", "sign_hvp", "naive_hvp", "mc_fisher")
SEEDED_KINDS = ("sign_hvp", "mc_fisher")
ESTIMATOR_KINDS = SEEDED_KINDS  # the former name, kept for one release


def layerwise_step_sizes(numerators, curvatures, sq_norms, *, scale, damping):
    """The rule α_l = η · n_l / (q_l + λ‖d_l‖²), one step size per block.

    Args:
        numerators: n_l = g_lᵀd_l, shape (L,).
        curvatures: q_l = d_lᵀH_ll d_l, shape (L,).
        sq_norms: ‖d_l‖², shape (L,).
        scale: η > 0.
        damping: λ ≥ 0 (``LayerwiseStepSize`` passes λ + SGD's coupled decay).

    Returns:
        α, shape (L,). A zero or negative denominator gives ±inf or NaN here,
        for :func:`fallback_codes` to catch.

    Reference: Bahamou & Goldfarb, arXiv 2305.13664 (abstract).
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

    A rule is "skip" (0), "previous" (``previous``, the last formula α_l) or
    "max_step" (α_max). Returns (alpha, reference): reference is α_l where the
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


@dataclass(frozen=True)
class LayerwiseStepSizeState:
    """State of :class:`LayerwiseStepSize`; every array has shape (L,).

    Attributes:
        count: number of steps taken.
        base_state: the wrapped method's state (momentum, Adam moments).
        step_sizes: α_l actually used at the last step (public API; plot it).
        numerators: g_lᵀd_l at the last step (g includes coupled L2 decay).
        curvatures: q_l = d_lᵀH_ll d_l returned by the oracle at the last step.
        denominators: q_l + (wd + λ)‖d_l‖² at the last step.
        avg_numerators: bias-corrected EMA of ``numerators`` (equal to it when ρ = 0).
        avg_denominators: the same average of ``denominators``, q̄_l + (wd + λ)·s̄_l.
        avg_curvatures: bias-corrected EMA q̄ of ``curvatures``.
        avg_sq_norms: bias-corrected EMA s̄ of ‖d_l‖².
        fallbacks: int codes, ``FALLBACK_NAMES[code]``: 0 none, 1 ascent
            (n_l ≤ 0 or n̄_l ≤ 0), 2 nonpositive_curvature (D̄_l ≤ 0, or α
            overflows with no cap), 3 capped (α clipped to max_step).
        reference_step_sizes: the last α_l given by the formula (codes 0 and 3),
            used by the "previous" fallback; 0 before the first one.
        curvature_seed: the seed passed to an estimator oracle at the last step
            (None for exact kinds and plain oracles).
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
    curvature_seed: Optional[int] = None

    @property
    def fallback_names(self) -> Tuple[str, ...]:
        """``state.fallbacks`` as names, e.g. ``("none", "ascent")``."""
        return tuple(FALLBACK_NAMES[c] for c in self.fallbacks)

    def diagnostics(self) -> dict:
        """What the training loop records per step: ``step_sizes`` and ``fallbacks`` (codes)."""
        return {"step_sizes": self.step_sizes, "fallbacks": self.fallbacks}


@dataclass(frozen=True)
class LayerwiseStepSize:
    """Replace a base method's learning rate by one step size per block.

    For each block l, with d from ``base.direction`` and g̃ = g + wd_c·θ (the
    gradient of the objective including SGD's coupled L2 decay wd_c)::

        n_l = g̃_lᵀd_l,  s_l = ‖d_l‖²,  q_l = curvature(d)_l
        n̄, q̄, s̄ ← zero-start EMAs with factor ρ, bias-corrected   (ρ = 0: the values)
        α_l = min(η · n̄_l / (q̄_l + (wd_c + λ) s̄_l), α_max)     (the fallbacks aside)
        θ_l ← θ_l − α_l d_l − α_l·wd_d·θ_l              (wd_d: AdamW's decoupled decay)

    The EMA is linear, so q̄_l + (wd_c + λ)s̄_l is the average D̄_l of the
    denominators D_l = q_l + (wd_c + λ)s_l: α is a ratio of averages.
    Fallbacks (our choices; the state records which fired, per block):

    * ascent — n_l ≤ 0 or n̄_l ≤ 0: a positive step along d_l does not
      decrease the model, so the default ``on_ascent="skip"`` sets α_l = 0 for
      this step (the base state still advances).
    * nonpositive_curvature — D̄_l ≤ 0 (or η n̄/D̄ overflows with no cap): the
      model has no minimiser along d_l; the default "previous" reuses the
      block's last formula α_l (0 if none yet).
    * capped — α_l > α_max: clipped. Default α_max = inf: α carries units of
      1/curvature, so a finite default would break the scale invariances.

    Example (one block, d = g = (1, 1), q = 4, η = 1, ρ = 0: α = 2/4):

    >>> import numpy as np
    >>> opt = LayerwiseStepSize(SGD(), scale=1.0, ema=0.0)
    >>> params = [{"x": np.zeros(2)}]
    >>> updates, state = opt.update([{"x": np.ones(2)}], opt.init(params), params,
    ...                             curvature=lambda d: np.array([4.0]))
    >>> state.step_sizes, updates[0]["x"]
    (array([0.5]), array([-0.5, -0.5]))

    Args:
        base: SGD, Adam or AdamW (anything with ``init``, ``direction``,
            ``coupled_weight_decay``, ``decoupled_weight_decay``); its lr is ignored.
        scale: η > 0, or None (default) for η = 1/L, L the number of blocks:
            Theorem 1 (docs/theory.md) guarantees descent for η < 2/c with the
            coupling 1 ≤ c ≤ L, so 1/L is safe whatever the coupling (our choice).
        damping: λ ≥ 0 (default 0, the undamped rule; units of curvature).
        ema: ρ in [0, 1) (default 0.9, our choice: mini-batch q_l is noisy and
            a ratio of averages is steadier; 0 gives the rule as written).
        max_step: α_max > 0 (default inf).
        on_ascent: rule when n_l ≤ 0 (default "skip").
        on_nonpositive_curvature: rule when D̄_l ≤ 0 (default "previous").
        curvature_kind: None to call ``curvature(d)``; otherwise one of
            ``CURVATURE_KINDS``, passed as ``curvature(d, kind=...)``.
        seed: for ``SEEDED_KINDS``, step t calls the oracle with
            ``seed = SeedSequence([seed, t]).generate_state(1)[0]``.

    References:
        Bahamou & Goldfarb, arXiv 2305.13664 (abstract: per-layer step sizes
        from the diagonal Hessian blocks). Safeguards: ours. Measurements
        behind the defaults η = 1/L and ρ = 0.9: docs/measurements.md.
    """

    oracles: ClassVar[Tuple[str, ...]] = ("curvature",)

    base: Any = SGD()
    scale: Optional[float] = None
    damping: float = 0.0
    ema: float = 0.9
    max_step: float = math.inf
    on_ascent: str = "skip"
    on_nonpositive_curvature: str = "previous"
    curvature_kind: Optional[str] = None
    seed: int = 0

    def __post_init__(self):
        for attr in ("init", "direction"):
            if isinstance(self.base, type) or not callable(getattr(self.base, attr, None)):
                raise ValueError(f"base: expected an optimizer with init() and direction(), "
                                 f"got {type(self.base).__name__}")
        if self.scale is not None:
            check_positive("scale", self.scale)
        check_nonnegative("damping", self.damping)
        check_unit_interval("ema", self.ema)
        if not (is_real_number(self.max_step) and self.max_step > 0):
            raise ValueError(f"max_step: expected a number > 0 (inf allowed), got {self.max_step!r}")
        for name in ("on_ascent", "on_nonpositive_curvature"):
            rule = getattr(self, name)
            if rule not in FALLBACK_RULES:
                raise ValueError(f"{name}: expected one of {FALLBACK_RULES}, got {rule!r}")
            if rule == "max_step" and math.isinf(self.max_step):
                raise ValueError(f"{name}: rule 'max_step' needs a finite max_step")
        if self.curvature_kind is not None and self.curvature_kind not in CURVATURE_KINDS:
            raise ValueError(f"curvature_kind: expected None or one of {CURVATURE_KINDS}, "
                             f"got {self.curvature_kind!r}")
        check_int("seed", self.seed, minimum=0)

    def init(self, params: Params) -> LayerwiseStepSizeState:
        """Return the initial state: the base state and zeros for every per-block array."""
        base_state = self.base.init(params)  # checks params
        n = len(block_indices(params))
        zeros = np.zeros(n)
        return LayerwiseStepSizeState(
            count=0, base_state=base_state, step_sizes=zeros,
            numerators=zeros, curvatures=zeros, denominators=zeros,
            avg_numerators=zeros, avg_denominators=zeros, avg_curvatures=zeros,
            avg_sq_norms=zeros, fallbacks=np.zeros(n, dtype=np.int64), reference_step_sizes=zeros)

    def multiplier(self, num_blocks: int) -> float:
        """The η in use: ``scale``, or 1/L when ``scale`` is None."""
        return 1.0 / num_blocks if self.scale is None else float(self.scale)

    def update(self, grads: Params, state: LayerwiseStepSizeState,
               params: Optional[Params] = None, *,
               curvature: Optional[Callable[..., np.ndarray]] = None,
               ) -> Tuple[Params, LayerwiseStepSizeState]:
        """Compute one layer-wise step.

        Args:
            grads: g, same structure as params (L blocks).
            state: from ``init`` or the previous ``update``.
            params: θ; needed when the base method has weight decay.
            curvature: the oracle ``d -> q`` of shape (L,), e.g. ``ev.layer_curvature``.

        Returns:
            ``(updates, new_state)`` with updates_l = −α_l (d_l + wd_d θ_l);
            add them with ``apply_updates``.

        Raises:
            ValueError: missing/non-callable ``curvature``, an oracle result of
                the wrong shape or non-finite, NaN/Inf in ``grads``, mismatched
                structures.
        """
        check_oracle("curvature", curvature, type(self).__name__)
        check_state_type(state, LayerwiseStepSizeState, type(self).__name__)
        wd_c = float(self.base.coupled_weight_decay)
        wd_d = float(self.base.decoupled_weight_decay)
        t = state.count + 1
        # base.direction checks grads, params and the base state: the one check of each
        d, base_state = self.base.direction(grads, state.base_state, params)
        numer = block_dot(objective_gradient(grads, params, wd_c), d)
        q, seed = self._curvature(curvature, d, t, len(numer))
        sq = block_sq_norm(d)
        damping = wd_c + self.damping
        denom = q + damping * sq
        if not (np.all(np.isfinite(numer)) and np.all(np.isfinite(denom))):
            raise NonFiniteError("params: g_lᵀd_l or ‖d_l‖² overflowed (non-finite); "
                                 "the run has diverged")
        previous = np.stack([state.avg_numerators, state.avg_curvatures, state.avg_sq_norms])
        avg_n, avg_q, avg_s = moving_average(previous, np.stack([numer, q, sq]), self.ema, t)
        raw = layerwise_step_sizes(avg_n, avg_q, avg_s, scale=self.multiplier(len(numer)),
                                   damping=damping)
        avg_d = avg_q + damping * avg_s
        codes = fallback_codes(numer, avg_n, avg_d, raw, self.max_step)
        alpha, reference = apply_fallbacks(
            raw, codes, state.reference_step_sizes, on_ascent=self.on_ascent,
            on_nonpositive_curvature=self.on_nonpositive_curvature, max_step=self.max_step)
        return _updates(d, params, alpha, wd_d), LayerwiseStepSizeState(
            count=t, base_state=base_state, step_sizes=alpha, numerators=numer,
            curvatures=q, denominators=denom, avg_numerators=avg_n,
            avg_denominators=avg_d, avg_curvatures=avg_q, avg_sq_norms=avg_s,
            fallbacks=codes, reference_step_sizes=reference, curvature_seed=seed)

    def _curvature(self, curvature, d: Params, t: int, n_blocks: int):
        """q = curvature(d) (with kind and a per-step seed as configured), checked: shape (L,), finite."""
        kind, seed = self.curvature_kind, None
        if kind is None:
            q = curvature(d)
        elif kind in SEEDED_KINDS:
            # One reproducible seed per (optimizer seed, step): same seed, same run.
            seed = int(np.random.SeedSequence([int(self.seed), t]).generate_state(1)[0])
            q = curvature(d, kind=kind, seed=seed)
        else:
            q = curvature(d, kind=kind)
        try:
            q = np.asarray(q, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"curvature: the oracle must return one real q_l per block, "
                            f"got {q!r}") from None
        if q.shape != (n_blocks,):
            raise ValueError(f"curvature: the oracle must return shape ({n_blocks},) "
                             f"(one q_l per block), got {q.shape}")
        if not np.all(np.isfinite(q)):
            raise NonFiniteError(f"curvature: the oracle returned non-finite values {q}")
        return q, seed


def _updates(d: Params, params: Optional[Params], alpha: np.ndarray, wd_d: float) -> Params:
    """updates_l = −α_l d_l − α_l·wd_d·θ_l (α_l replaces AdamW's lr in the decay too)."""
    out: Params = [{} for _ in d]
    for l, k in enumerate(block_indices(d)):
        a = alpha[l]
        if wd_d > 0:
            out[k] = {name: -a * (v + wd_d * params[k][name]) for name, v in d[k].items()}
        else:
            out[k] = {name: -a * v for name, v in d[k].items()}
    return out


def GDLS(scale: Optional[float] = None, curvature_kind: Optional[str] = "hessian"
         ) -> LayerwiseStepSize:
    """The idealized method: full-batch gradient descent with exact block curvature.

        α_l = η ‖g_l‖² / g_lᵀH_ll g_l,      θ_l ← θ_l − α_l g_l

    A factory (as optax's ``alias.py`` builds ``adamw``): :class:`LayerwiseStepSize`
    around plain ``SGD`` (d = g) with λ = 0, ρ = 0, no cap; blocks with g_l = 0
    do not move (the "ascent" fallback, as n_l = 0). The caller supplies
    full-batch gradients and the exact oracle. Its convergence is Theorems 1–4
    of docs/theory.md.

    Args:
        scale: η > 0 (Theorem 1 guarantees descent for η < 2/c), or None
            (default) for η = 1/L, safe for any coupling since c ≤ L.
        curvature_kind: passed to the oracle (default "hessian"; None for plain
            oracles that take only d).

    Returns:
        The configured :class:`LayerwiseStepSize`.
    """
    return LayerwiseStepSize(SGD(lr=1.0), scale=scale, damping=0.0, ema=0.0,
                             curvature_kind=curvature_kind)
