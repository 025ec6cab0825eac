"""Layer-wise adaptive step sizes (Bahamou & Goldfarb, arXiv 2305.13664).

A base method (SGD, SGD with momentum, Adam, AdamW) proposes a direction
d = (d_1, …, d_L). Each block l then gets the step that minimises the local
quadratic model of the loss along its own direction, every other block held
fixed, m_l(α) = f(θ) − α g_lᵀd_l + ½ α² d_lᵀH_ll d_l. The rule as the code runs
it (``LayerwiseStepSize.update``; the defaults in brackets)::

    d = base.direction(g),   g̃ = g + wd_c θ          (wd_c: SGD's coupled L2 decay)
    n_l = g̃_lᵀd_l,   q_l = d_lᵀH_ll d_l (the oracle),   s_l = ‖d_l‖²
    n̄_l, κ̄_l, s̄_l = zero-start EMAs of n_l, |q_l|, s_l, factor ρ [0.9],
                     each bias-corrected by the same 1/(1 − ρᵗ), so it cancels in α
    α_l = min(η · n̄_l / (κ̄_l + (wd_c + λ) s̄_l), α_max)     [η = 1/L, λ = 0, α_max = ∞]
    θ_l ← (θ_l − α_l d_l) / (1 + α_l wd_d)                  (wd_d: AdamW's decoupled decay)

and a fallback replaces α_l when n_l ≤ 0 or n̄_l ≤ 0 (ascent: α_l = 0) or the
denominator is ≤ 0 (the last formula α_l). With ρ = 0, λ = 0 and no decay it is
the paper's α_l = η g_lᵀd_l / d_lᵀH_ll d_l. κ = |q| is the second edition's
choice (``denominator="abs"``); ``rule_v01`` averages the signed q. With
``one_block`` (``GlobalStepSize``) the whole network is one block: n, q = dᵀ(Hd)
and s are sums over the network, η = 1, and every block takes the one α.

The formula reads the paper's abstract (its full text is not available to us);
the denominator, multiplier, averages, fallbacks and defaults are *our* choices, each
a parameter. ``update`` checks its inputs once and calls the pure functions of
``minilayerlr.optim.rule`` in that order. It never sees a network, only the gradients
and an oracle ``curvature(d) -> q`` of shape (L,) (``ev.layer_curvature``, or any lambda).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Optional, Tuple, Union

import numpy as np

from minilayerlr.curvature import EXACT_KINDS, KINDS, SEEDED_KINDS
from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import SGD, check_state_type, objective_gradient
from minilayerlr.optim.oracles import (check_oracle, checked_curvature, quadratic_form,
                                       takes_keyword)
from minilayerlr.optim.rule import (DENOMINATORS, FALLBACK_NAMES, FALLBACK_RULES, MULTIPLIERS,
                                    apply_fallbacks, coupled_step_sizes, curvature_magnitude,
                                    curvature_statistic, fallback_codes, layerwise_step_sizes,
                                    moving_average)
from minilayerlr.optim.safeguards import backtrack_updates, implicit_decay_step_sizes
from minilayerlr.optim.state_checks import rule_state_checks
from minilayerlr.tree import Params, block_dot, block_indices, block_sq_norm
from minilayerlr.validation import (check_int, check_nonnegative, check_positive,
                                    check_unit_interval, is_real_number)

#: Curvature kinds (the table is ``minilayerlr.curvature.KINDS``); SEEDED_KINDS get a seed per step.
CURVATURE_KINDS = tuple(KINDS)
#: Kinds whose oracle can also return the Gauss-Newton Gram (``scale="coupling"``).
COUPLING_KINDS = (None,) + EXACT_KINDS
#: The second-edition defaults (docs/measurements.md: chosen by a rule written before measuring).
DEFAULT_DENOMINATOR = "abs"
DEFAULT_MULTIPLIER = "blocks"


@dataclass(frozen=True)
class LayerwiseStepSizeState:
    """State of :class:`LayerwiseStepSize`; every array has shape (L,) (with ``one_block``,
    all but ``step_sizes`` have shape (1,)).

    Attributes:
        count: number of steps taken.
        base_state: the wrapped method's state (momentum, Adam moments).
        step_sizes: α_l actually used at the last step (public API; plot it).
        numerators: g_lᵀd_l at the last step (g includes coupled L2 decay).
        curvatures: q_l = d_lᵀH_ll d_l returned by the oracle at the last step.
        denominators: q_l + (wd + λ)‖d_l‖² at the last step.
        avg_numerators: bias-corrected EMA of ``numerators`` (equal to it when ρ = 0).
        avg_denominators: the same average of ``denominators``, q̄_l + (wd + λ)·s̄_l.
        avg_curvatures: bias-corrected EMA of q_l, |q_l| or q_l² (``denominator``).
        avg_sq_norms: bias-corrected EMA s̄ of ‖d_l‖².
        fallbacks: int codes, ``FALLBACK_NAMES[code]``: 0 none, 1 ascent
            (n_l ≤ 0 or n̄_l ≤ 0), 2 nonpositive_curvature (D̄_l ≤ 0, or α
            overflows with no cap), 3 capped (α clipped to max_step).
        reference_step_sizes: the last α_l given by the formula (codes 0 and 3),
            used by the "previous" fallback; 0 before the first one.
        curvature_seed: the seed passed to an estimator oracle at the last step
            (None for exact kinds and plain oracles).
        line_search_factor: the Armijo factor t applied to the step (1 without line search).
        multiplier: the η used at the last step (1/L, the fixed ``scale``, or the coupling's).
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
    line_search_factor: float = 1.0
    multiplier: float = 0.0

    @property
    def fallback_names(self) -> Tuple[str, ...]:
        """``state.fallbacks`` as names, e.g. ``("none", "ascent")``."""
        return tuple(FALLBACK_NAMES[c] for c in self.fallbacks)

    def diagnostics(self) -> dict:
        """What the training loop records per step: ``step_sizes`` and ``fallbacks``, per block (L,)."""
        fallbacks = self.fallbacks
        if len(fallbacks) != len(self.step_sizes):  # one block for the network: its code, per block
            fallbacks = np.full(len(self.step_sizes), fallbacks[0], dtype=np.int64)
        return {"step_sizes": self.step_sizes, "fallbacks": fallbacks}

    check_values = rule_state_checks(n_codes=len(FALLBACK_NAMES))


@dataclass(frozen=True)
class LayerwiseStepSize:
    """Replace a base method's learning rate by one step size per block.

    The rule is the one stated in this module's docstring, with its averages.
    Its default is the second edition (docs/measurements.md says how it was
    chosen among the candidates of ``minilayerlr.optim.rule``): the average of the
    curvature's magnitude |q_l| has no pole where q_l changes sign between batches,
    and on a convex problem (q_l ≥ 0) it is the 0.1 rule exactly. ``rule_v01`` builds
    the 0.1 rule (κ = q signed) bit for bit. The EMA is linear, so
    κ̄_l + (wd_c + λ)s̄_l is the average D̄_l of the denominators: α is a ratio of
    averages. ``scale="coupling"`` replaces 1/L by min(1, 1/c_u), the coupling of the
    blocks along this step from the Gauss-Newton Gram C of their directions (one
    sweep: ``ev.layer_curvature(d, coupling=True)``); measured, it lost to 1/L.
    Fallbacks (our choices; the state records which fired, per block):

    * ascent — n_l ≤ 0 or n̄_l ≤ 0: a positive step along d_l does not
      decrease the model, so the default ``on_ascent="skip"`` sets α_l = 0 for
      this step (the base state still advances).
    * nonpositive_curvature — D̄_l ≤ 0 (or η n̄/D̄ overflows with no cap): the
      model has no minimiser along d_l; the default "previous" reuses the
      block's last formula α_l (0 if none yet). With κ = |q| it needs q_l = 0
      on every batch so far (and λ = 0).
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
        scale: η: None (default) for ``DEFAULT_MULTIPLIER`` ("blocks"; an estimator kind,
            which gives no Gram, always gets 1/L); "coupling" for η = min(1, 1/c_u) from
            the oracle's Gauss-Newton Gram (exact kinds only);
            "blocks" for η = 1/L, L the number of blocks (on a quadratic with ρ = 0,
            f never increases for η < 2/c, c ∈ [1, L]: docs/theory.md, Prop. 8; with ρ > 0 and
            d = g, for η < 2/c_λ under every history: Prop. 7);
            or a number > 0, fixed.
        denominator: how q_l enters D̄_l: "abs" (default: the EMA of |q_l|), "signed"
            (the EMA of q_l, the 0.1 rule) or "rms" (√ of the EMA of q_l²); see
            ``minilayerlr.optim.rule``.
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
        line_search: Armijo backtracking on the step with the ``loss`` oracle (default
            False; GDLS turns it on): f never increases (docs/theory.md, Theorem 10).
        full_batch: the method assumes exact gradients (GDLS): ``train`` refuses mini-batches.
        one_block: the whole network as one block (``GlobalStepSize``, the ablation): q = dᵀ(Hd)
            from the ``hvp`` oracle, n and s summed over the blocks, η = 1 unless a number is
            given, and every block takes the one α (default False).

    AdamW's decay is implicit (our choice; docs/theory.md, Prop. 11): AdamW's update with
    lr α̃_l = α_l/(1 + α_l wd), recorded in ``step_sizes``; it never reverses θ.

    References:
        Bahamou & Goldfarb, arXiv 2305.13664 (abstract: per-layer step sizes
        from the diagonal Hessian blocks). Denominator, multiplier and safeguards:
        ours; the measurements behind the defaults: docs/measurements.md.
    """

    base: Any = SGD()
    scale: Union[float, str, None] = None
    damping: float = 0.0
    ema: float = 0.9
    max_step: float = math.inf
    on_ascent: str = "skip"
    on_nonpositive_curvature: str = "previous"
    curvature_kind: Optional[str] = None
    seed: int = 0
    line_search: bool = False
    denominator: str = DEFAULT_DENOMINATOR
    full_batch: bool = False
    one_block: bool = False

    #: the class of the state ``init`` returns
    state_class: ClassVar[type] = LayerwiseStepSizeState

    @property
    def oracles(self) -> Tuple[str, ...]:
        """The oracles ``update`` needs: curvature (hvp with ``one_block``), and loss with ``line_search``."""
        curvature = "hvp" if self.one_block else "curvature"
        return (curvature, "loss") if self.line_search else (curvature,)

    def __post_init__(self):
        for attr in ("init", "direction"):
            if isinstance(self.base, type) or not callable(getattr(self.base, attr, None)):
                raise ValueError(f"base: expected an optimizer with init() and direction(), "
                                 f"got {type(self.base).__name__}")
        if isinstance(self.scale, str):
            if self.scale not in MULTIPLIERS:
                raise ValueError(f"scale: expected a number > 0, None or one of {MULTIPLIERS}, "
                                 f"got {self.scale!r}")
        elif self.scale is not None:
            check_positive("scale", self.scale)
        if self.denominator not in DENOMINATORS:
            raise ValueError(f"denominator: expected one of {DENOMINATORS}, got {self.denominator!r}")
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
        if self.coupled and self.curvature_kind not in COUPLING_KINDS:
            raise ValueError(f"curvature_kind: the coupling multiplier needs an exact kind "
                             f"{COUPLING_KINDS[1:]}, got {self.curvature_kind!r}; pass a number "
                             f"or 'blocks' as scale")
        if self.one_block and self.curvature_kind is not None:
            raise ValueError("curvature_kind: with one_block, q = dᵀ(Hd) is exact; expected None")
        check_int("seed", self.seed, minimum=0)
        for name in ("line_search", "full_batch", "one_block"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")

    @property
    def coupled(self) -> bool:
        """True when η comes from the blocks' coupling (``scale="coupling"``, or None if that were the default)."""
        if self.scale is None:  # an estimator gives no Gram: its default is η = 1/L
            return DEFAULT_MULTIPLIER == "coupling" and self.curvature_kind in COUPLING_KINDS
        return self.scale == "coupling"

    def init(self, params: Params) -> LayerwiseStepSizeState:
        """Return the initial state: the base state and zeros for every per-block array."""
        base_state = self.base.init(params)  # checks params
        n = len(block_indices(params))
        zeros = np.zeros(1 if self.one_block else n)
        return self.state_class(
            count=0, base_state=base_state, step_sizes=np.zeros(n),
            numerators=zeros, curvatures=zeros, denominators=zeros,
            avg_numerators=zeros, avg_denominators=zeros, avg_curvatures=zeros,
            avg_sq_norms=zeros, fallbacks=np.zeros(len(zeros), dtype=np.int64),
            reference_step_sizes=zeros)

    def multiplier(self, num_blocks: int) -> float:
        """The fixed η: ``scale``, or 1/L for "blocks"; the coupling's η is in ``state.multiplier``."""
        if self.coupled and num_blocks == 1:  # one block: c_u = 1
            return 1.0
        if self.coupled:
            raise ValueError("scale: the coupling multiplier changes every step; read "
                             "state.multiplier")
        return 1.0 / num_blocks if self.scale in (None, "blocks") else float(self.scale)

    def update(self, grads: Params, state: LayerwiseStepSizeState,
               params: Optional[Params] = None, *,
               curvature: Optional[Callable[..., np.ndarray]] = None,
               loss: Optional[Callable[[Params], float]] = None,
               hvp: Optional[Callable[[Params], Params]] = None,
               ) -> Tuple[Params, LayerwiseStepSizeState]:
        """Compute one layer-wise step.

        Args:
            grads: g, same structure as params (L blocks).
            state: from ``init`` or the previous ``update``.
            params: θ; needed when the base method has weight decay.
            curvature: the oracle ``d -> q`` of shape (L,), e.g. ``ev.layer_curvature``;
                with the coupling multiplier it is called with ``coupling=True`` and
                returns ``(q, C)``, C of shape (L, L).
            loss: θ ↦ f(θ) on the same batch; needed (and only used) with ``line_search``.
            hvp: v ↦ Hv (params structure), e.g. ``ev.hvp``; needed (and only used) with
                ``one_block``, which asks it for q = dᵀ(Hd) instead of ``curvature``.

        Returns:
            ``(updates, new_state)``, updates_l = −α_l(d_l + wd_d θ_l) with α_l = ``step_sizes``
            (after the decay rule and the line search); add them with ``apply_updates``.

        Raises:
            ValueError: a missing or malformed ``curvature`` (or ``loss``) oracle or oracle
                result, NaN/Inf in ``grads``, mismatched structures.
        """
        oracle = check_oracle(self.oracles[0], hvp if self.one_block else curvature,
                              type(self).__name__)
        if self.line_search:
            check_oracle("loss", loss, f"{type(self).__name__}(line_search=True)")
            if params is None:
                raise ValueError("params: the line search needs the current parameters")
        check_state_type(state, self.state_class, type(self).__name__)
        wd_c = float(self.base.coupled_weight_decay)
        wd_d = float(self.base.decoupled_weight_decay)
        t = state.count + 1
        # base.direction checks grads, params and the base state: the one check of each
        d, base_state = self.base.direction(grads, state.base_state, params)
        numer, q, sq, gram, seed = self._measure(oracle, objective_gradient(grads, params, wd_c),
                                                 d, t, state.avg_numerators.shape)
        damping = wd_c + self.damping
        denom = q + damping * sq
        if not (np.all(np.isfinite(numer)) and np.all(np.isfinite(denom))):
            raise NonFiniteError("params: g_lᵀd_l or ‖d_l‖² overflowed (non-finite); "
                                 "the run has diverged")
        previous = np.stack([state.avg_numerators, state.avg_curvatures, state.avg_sq_norms])
        values = np.stack([numer, curvature_statistic(q, self.denominator), sq])
        avg_n, avg_k, avg_s = moving_average(previous, values, self.ema, t)
        magnitude = curvature_magnitude(avg_k, self.denominator)
        avg_d = magnitude + damping * avg_s
        if gram is None:
            eta = self.multiplier(len(numer))
            raw = layerwise_step_sizes(avg_n, magnitude, avg_s, scale=eta, damping=damping)
        else:  # each block's own model step, then η from how those steps add up
            eta, raw = coupled_step_sizes(numer, avg_n, magnitude, avg_s, gram, sq, damping=damping)
        codes = fallback_codes(numer, avg_n, avg_d, raw, self.max_step)
        alpha, reference = apply_fallbacks(
            raw, codes, state.reference_step_sizes, on_ascent=self.on_ascent,
            on_nonpositive_curvature=self.on_nonpositive_curvature, max_step=self.max_step)
        if wd_d > 0:  # Proposition 11: implicit decay, never reverses θ
            alpha = implicit_decay_step_sizes(alpha, wd_d)
        if self.one_block:
            alpha = np.full(len(state.step_sizes), alpha[0])
        updates, factor = _updates(d, params, alpha, wd_d), 1.0
        if self.line_search:  # Theorem 10: f(θ + updates) ≤ f(θ), bit for bit
            updates, factor = backtrack_updates(updates, params, grads, loss)
        return updates, self.state_class(
            count=t, base_state=base_state, step_sizes=factor * alpha, numerators=numer,
            curvatures=q, denominators=denom, avg_numerators=avg_n,
            avg_denominators=avg_d, avg_curvatures=avg_k, avg_sq_norms=avg_s,
            fallbacks=codes, reference_step_sizes=reference, curvature_seed=seed,
            line_search_factor=factor, multiplier=float(eta))

    def _measure(self, oracle, objective_grads: Params, d: Params, t: int, kept: tuple):
        """(n, q, s, C or None, seed) of the rule, per block or (``one_block``) summed; ``kept``
        is the shape of the state's averages, which must be that of n."""
        numer, sq = block_dot(objective_grads, d), block_sq_norm(d)
        if self.one_block:  # the network as one block: q = dᵀ(Hd), n and s summed
            numer, sq = np.array([numer.sum()]), np.array([sq.sum()])
            q, gram, seed = np.array([quadratic_form(oracle, d)]), None, None
        else:
            q, gram, seed = self._curvature(oracle, d, t, len(numer))
        if kept != numer.shape:
            raise ValueError(f"state: holds averages of shape {kept}, this optimizer keeps "
                             f"{numer.shape}; call its init with these parameters")
        return numer, q, sq, gram, seed

    def _curvature(self, curvature, d: Params, t: int, n_blocks: int):
        """(q, C or None, seed): q = curvature(d) with the kind, seed and Gram configured, checked."""
        kind, seed = self.curvature_kind, None
        extra = {"coupling": True} if self.coupled else {}
        if extra and not takes_keyword(curvature, "coupling"):
            raise ValueError("curvature: the coupling multiplier (scale='coupling') "
                             "calls the oracle with coupling=True for (q, C); this oracle takes "
                             "no coupling argument: pass scale='blocks' or a number")
        if kind is None:
            result = curvature(d, **extra)
        elif kind in SEEDED_KINDS:
            # One reproducible seed per (optimizer seed, step): same seed, same run.
            seed = int(np.random.SeedSequence([int(self.seed), t]).generate_state(1)[0])
            result = curvature(d, kind=kind, seed=seed)
        else:
            result = curvature(d, kind=kind, **extra)
        q, gram = checked_curvature(result, n_blocks, self.coupled)
        return q, gram, seed


def _updates(d: Params, params: Optional[Params], alpha: np.ndarray, wd_d: float) -> Params:
    """updates_l = −α_l d_l − α_l·wd_d·θ_l (α_l plays AdamW's lr, decay included)."""
    out: Params = [{} for _ in d]
    for l, k in enumerate(block_indices(d)):
        a = float(alpha[l])  # a Python float keeps the direction's dtype (NEP 50)
        if wd_d > 0:
            out[k] = {name: -a * (v + wd_d * params[k][name]) for name, v in d[k].items()}
        else:
            out[k] = {name: -a * v for name, v in d[k].items()}
    return out
