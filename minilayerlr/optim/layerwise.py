"""Layer-wise adaptive step sizes (Bahamou & Goldfarb, arXiv 2305.13664).

A base method (SGD, SGD with momentum, Adam, AdamW) proposes a direction
d = (d_1, …, d_L). Each block l then gets the step that minimises the local
quadratic model of the loss along its own direction, every other block held
fixed::

    m_l(α) = f(θ) − α g_lᵀd_l + ½ α² d_lᵀH_ll d_l
    α_l    = η · g_lᵀd_l / (q_l + λ‖d_l‖²),   q_l = d_lᵀH_ll d_l
    θ_l   ← θ_l − α_l d_l

The formula is the natural reading of the paper's abstract (its full text is
not available to us). The safeguards below — EMA, cap, fallbacks and their
defaults — are *our* choices; each is a documented parameter.

The optimizer never sees a network: ``update`` gets the gradients and a
curvature oracle, a callable ``curvature(d) -> q`` of shape (L,) (networks:
``ev.layer_curvature``; closed forms: ``BlockQuadratic.evaluate(x)
.layer_curvature``; tests: any lambda).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.optim.base import (SGD, check_nonnegative, check_positive, check_state,
                                    check_unit_interval, maybe_params, objective_gradient)
from minilayerlr.tree import (NonFiniteError, Params, block_dot, block_indices, block_sq_norm,
                              check_same_structure, check_tree)
from minilayerlr.validation import check_int

#: Codes stored in ``state.fallbacks`` (one int per block and step).
NO_FALLBACK, ASCENT, NONPOSITIVE_CURVATURE, CAPPED = 0, 1, 2, 3
#: ``FALLBACK_NAMES[code]`` is a readable name for a code in ``state.fallbacks``.
FALLBACK_NAMES = ("none", "ascent", "nonpositive_curvature", "capped")
#: What a fallback may do: move nowhere, reuse the last formula step, take α_max.
FALLBACK_RULES = ("skip", "previous", "max_step")
#: Curvature kinds the network engine understands; ESTIMATOR_KINDS are the seeded ones.
CURVATURE_KINDS = ("hessian", "ggn", "sign_hvp", "naive_hvp", "mc_fisher")
ESTIMATOR_KINDS = ("sign_hvp", "mc_fisher")


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
        avg_denominators: bias-corrected EMA of ``denominators``.
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
    fallbacks: np.ndarray
    reference_step_sizes: np.ndarray
    curvature_seed: Optional[int] = None

    @property
    def fallback_names(self) -> Tuple[str, ...]:
        """``state.fallbacks`` as names, e.g. ``("none", "ascent")``."""
        return tuple(FALLBACK_NAMES[c] for c in self.fallbacks)


@dataclass(frozen=True)
class LayerwiseStepSize:
    """Replace a base method's learning rate by one step size per block.

    For each block l, with d from ``base.direction`` and g̃ = g + wd_c·θ (the
    gradient of the objective including SGD's coupled L2 decay wd_c)::

        n_l = g̃_lᵀd_l                                  (numerator)
        D_l = q_l + (wd_c + λ)‖d_l‖²                    (denominator)
        n̄_l ← ρ n̄_l + (1−ρ) n_l,  D̄_l ← ρ D̄_l + (1−ρ) D_l   (EMA, n̄ = D̄ = 0 at start)
        α_l = min(η · n̄_l / D̄_l, α_max)
        θ_l ← θ_l − α_l d_l − α_l·wd_d·θ_l              (wd_d: AdamW's decoupled decay)

    EMA (our choice, default ρ = 0.9): both averages start at 0, so both carry the same
    factor (1 − ρᵗ); it cancels in the ratio, hence α needs no correction. The
    state reports the corrected averages n̄/(1−ρᵗ), D̄/(1−ρᵗ).

    Fallbacks (our choices; the state records which fired, per block):

    * ascent — n_l ≤ 0 or n̄_l ≤ 0: a positive step along d_l does not
      decrease the model (to first order it increases the loss), so the
      default ``on_ascent="skip"`` sets α_l = 0 for this step. The base
      state still advances (momentum keeps accumulating), so the block moves
      again once its direction turns downhill.
    * nonpositive_curvature — D̄_l ≤ 0 (or η n̄/D̄ overflows to inf with no cap):
      the model along d_l has no minimiser, the formula means nothing. The
      direction is still downhill, so the default
      ``on_nonpositive_curvature="previous"`` reuses the last α_l the formula
      gave for this block (0 if none yet, i.e. skip), the natural "keep the
      learning rate you had" of a first-order method.
    * capped — α_l > α_max: clipped. Default α_max = inf (no cap), because α
      carries units of 1/curvature: any finite default would break the
      scale invariances; set it for networks.

    Each rule is one of ``"skip"`` (α_l = 0), ``"previous"`` (last formula
    α_l) or ``"max_step"`` (α_max; needs a finite ``max_step``).

    Properties (docs/theory.md): replacing d_l by s·d_l (s > 0) leaves α_l d_l
    unchanged; with λ = 0 and α_max = inf, scaling the loss by c > 0 leaves the
    SGD-LS update unchanged; one block, d = g, η = 1, λ = 0 on a quadratic
    gives the exact line-search step (at every step if ρ = 0, at the first
    step for any ρ).

    Args:
        base: SGD, Adam or AdamW (anything with ``init``, ``direction``,
            ``coupled_weight_decay``, ``decoupled_weight_decay``); its lr is ignored.
        scale: η > 0, or None (the default) for η = 1/L with L the number of
            blocks. Why 1/L (our choice): η = 1 minimises each block's model
            with the others held fixed, but the blocks move together, and
            Theorem 1 (docs/theory.md) only guarantees descent for η < 2/c,
            with the coupling constant 1 ≤ c ≤ L; η = 1/L is the multiplier that
            is safe whatever the coupling. Measured with ``minilayerlr
            compare`` (final training loss, η = 1 → 1/L): CNN (L = 3) SGD-m-LS
            7.1e5 (diverged) → 0.0013, AdamW-LS 0.44 → 0.0021; autoencoder
            (L = 6) SGD-m-LS 99.0 → 67.4, AdamW-LS 98.8 → 67.4 (tuned AdamW:
            67.9). Pass ``scale=1.0`` for the plain per-block minimiser.
        damping: λ ≥ 0 (default 0, the undamped rule; λ has units of curvature).
        ema: ρ in [0, 1) (default 0.9; 0 gives the rule exactly as written).
            Why 0.9 (our choice): mini-batch q_l is noisy (it varied 100× between
            batches of the CNN task), and the ratio of averages is far steadier.
            Measured, 60 quick-task steps, final training loss, ρ = 0 → 0.9:
            CNN SGD-m-LS 0.80 → 0.26, AdamW-LS 2.39 → 0.20; autoencoder
            SGD-m-LS 98.05 → 96.14; spikes of the mini-batch loss vanish. The
            first step is unaffected (the corrected average equals the value).
        max_step: α_max > 0 (default inf).
        on_ascent: rule when n_l ≤ 0 (default "skip").
        on_nonpositive_curvature: rule when D̄_l ≤ 0 (default "previous").
        curvature_kind: None to call ``curvature(d)``; otherwise one of
            ``CURVATURE_KINDS``, passed as ``curvature(d, kind=...)``.
        seed: for estimator kinds, step t calls the oracle with
            ``seed = SeedSequence([seed, t]).generate_state(1)[0]``.

    References:
        Bahamou & Goldfarb, arXiv 2305.13664 (abstract: per-layer step sizes
        from the diagonal Hessian blocks). Safeguards: ours.
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
        if isinstance(self.max_step, (bool, np.bool_)) or not (
                isinstance(self.max_step, (int, float, np.integer, np.floating)) and self.max_step > 0):
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
        check_tree(params, "params")
        n = len(block_indices(params))
        zeros = np.zeros(n)
        return LayerwiseStepSizeState(
            count=0, base_state=self.base.init(params), step_sizes=zeros,
            numerators=zeros, curvatures=zeros, denominators=zeros,
            avg_numerators=zeros, avg_denominators=zeros,
            fallbacks=np.zeros(n, dtype=np.int64), reference_step_sizes=zeros)

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
        if curvature is None or not callable(curvature):
            raise ValueError(
                "curvature: LayerwiseStepSize needs a curvature oracle, e.g. "
                "opt.update(ev.grads, state, params, curvature=ev.layer_curvature)")
        check_state(state, LayerwiseStepSizeState, type(self).__name__, grads)
        wd_c = float(self.base.coupled_weight_decay)
        wd_d = float(self.base.decoupled_weight_decay)
        params = maybe_params(params, wd_c > 0 or wd_d > 0, "LayerwiseStepSize")
        t = state.count + 1

        check_tree(grads, "grads")  # NaN would slip through every fallback test below
        g = objective_gradient(grads, params, wd_c, "LayerwiseStepSize")
        d, base_state = self.base.direction(grads, state.base_state, params)
        numer = block_dot(g, d)
        q, seed = self._call_oracle(curvature, d, t, len(numer))
        denom = q + (wd_c + self.damping) * block_sq_norm(d)
        if not (np.all(np.isfinite(numer)) and np.all(np.isfinite(denom))):
            raise NonFiniteError("params: g_lᵀd_l or ‖d_l‖² overflowed (non-finite); "
                             "the run has diverged")

        # EMA with zero start: the common factor (1 − ρᵗ) cancels in n̄/D̄.
        rho = self.ema
        ema_n = rho * state.avg_numerators * (1 - rho ** (t - 1)) + (1 - rho) * numer
        ema_d = rho * state.avg_denominators * (1 - rho ** (t - 1)) + (1 - rho) * denom
        avg_n, avg_d = ema_n / (1 - rho ** t), ema_d / (1 - rho ** t)

        alpha, codes, reference = self._step_sizes(numer, avg_n, avg_d, state)
        updates = self._updates(d, params, alpha, wd_d)
        return updates, LayerwiseStepSizeState(
            count=t, base_state=base_state, step_sizes=alpha, numerators=numer,
            curvatures=q, denominators=denom, avg_numerators=avg_n,
            avg_denominators=avg_d, fallbacks=codes, reference_step_sizes=reference,
            curvature_seed=seed)

    def _call_oracle(self, curvature, d: Params, t: int, n_blocks: int):
        kind, seed = self.curvature_kind, None
        if kind is None:
            q = curvature(d)
        elif kind in ESTIMATOR_KINDS:
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

    def multiplier(self, num_blocks: int) -> float:
        """The η in use: ``scale``, or 1/L when ``scale`` is None."""
        return 1.0 / num_blocks if self.scale is None else float(self.scale)

    def _step_sizes(self, numer, avg_n, avg_d, state):
        """α_l = η n̄_l / D̄_l with the fallbacks; returns (alpha, codes, reference)."""
        n = len(numer)
        alpha = np.zeros(n)
        codes = np.zeros(n, dtype=np.int64)
        reference = state.reference_step_sizes.copy()
        for l in range(n):
            ascent = numer[l] <= 0 or avg_n[l] <= 0
            with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
                raw = self.multiplier(n) * avg_n[l] / avg_d[l] if avg_d[l] > 0 else math.nan
            if ascent:
                codes[l], rule = ASCENT, self.on_ascent
            elif not avg_d[l] > 0 or (math.isinf(raw) and math.isinf(self.max_step)):
                # no minimiser along d_l, or D̄_l so small that η n̄/D̄ overflows with no cap
                codes[l], rule = NONPOSITIVE_CURVATURE, self.on_nonpositive_curvature
            else:
                codes[l], rule = (CAPPED, None) if raw > self.max_step else (NO_FALLBACK, None)
                alpha[l] = min(raw, self.max_step)
                reference[l] = alpha[l]
                continue
            alpha[l] = {"skip": 0.0, "previous": state.reference_step_sizes[l],
                        "max_step": self.max_step}[rule]
        return alpha, codes, reference

    @staticmethod
    def _updates(d: Params, params: Optional[Params], alpha: np.ndarray, wd_d: float) -> Params:
        """updates_l = −α_l d_l − α_l·wd_d·θ_l (α_l replaces AdamW's lr in the decay too)."""
        if wd_d > 0:
            check_same_structure(params, d, "params")
        out: Params = [{} for _ in d]
        for l, k in enumerate(block_indices(d)):
            a = alpha[l]
            if wd_d > 0:
                out[k] = {name: -a * (v + wd_d * params[k][name]) for name, v in d[k].items()}
            else:
                out[k] = {name: -a * v for name, v in d[k].items()}
        return out


@dataclass(frozen=True)
class GDLS:
    """The idealized method: full-batch gradient descent with exact block curvature.

        α_l = η ‖g_l‖² / g_lᵀH_ll g_l,      θ_l ← θ_l − α_l g_l

    It is :class:`LayerwiseStepSize` around plain ``SGD`` (d = g) with λ = 0,
    ρ = 0, no cap; blocks with g_l = 0 do not move (the "ascent" fallback, as
    n_l = 0). The caller supplies full-batch gradients and the exact oracle.
    Its convergence is Theorems 1–4 of docs/theory.md.

    Args:
        scale: η > 0 (Theorem 1 guarantees descent for η < 2/c), or None
            (default) for η = 1/L, safe for any coupling since c ≤ L.
        curvature_kind: passed to the oracle (default "hessian"; None for plain
            oracles that take only d).
    """

    oracles: ClassVar[Tuple[str, ...]] = ("curvature",)

    scale: Optional[float] = None
    curvature_kind: Optional[str] = "hessian"

    @property
    def layerwise(self) -> LayerwiseStepSize:
        """The equivalent :class:`LayerwiseStepSize`."""
        return LayerwiseStepSize(SGD(lr=1.0), scale=self.scale, damping=0.0, ema=0.0,
                                 curvature_kind=self.curvature_kind)

    def __post_init__(self):
        self.layerwise  # validates scale and curvature_kind

    def init(self, params: Params) -> LayerwiseStepSizeState:
        """See :meth:`LayerwiseStepSize.init`."""
        return self.layerwise.init(params)

    def update(self, grads: Params, state: LayerwiseStepSizeState,
               params: Optional[Params] = None, *, curvature=None):
        """See :meth:`LayerwiseStepSize.update`."""
        return self.layerwise.update(grads, state, params, curvature=curvature)
