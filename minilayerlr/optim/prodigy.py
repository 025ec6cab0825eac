"""Prodigy: Adam whose learning rate is an online estimate d of the distance to the solution.

Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
Learner", ICML 2024, arXiv 2306.06101, §5 (the Adam version of Prodigy), as the
official package ``prodigyopt`` 1.1 (``prodigyopt/prodigy.py``) computes it.
Step k = 0, 1, … with γ = lr (times Adam's bias correction when enabled)::

    r_{k+1} = β3 r_k + (d_k/d_0) γ d_k ⟨g_k, x_0 − x_k⟩          (one scalar)
    s_{k+1} = β3 s_k + (d_k/d_0) γ d_k g_k                         (like params)
    m_{k+1} = β1 m_k + (1 − β1) d_k g_k
    v_{k+1} = β2 v_k + (1 − β2) d_k² g_k²
    d̂_{k+1} = d_coef · r_{k+1} / ‖s_{k+1}‖_1
    d_{k+1}  = max(d_k, d̂_{k+1})        (growth_rate = inf; see below otherwise)
    x_{k+1} = x_k − γ d_k m_{k+1} / (√v_{k+1} + d_{k+1} eps) − γ d_k wd x_k

The effective learning rate of the Adam step is γ d_k; it is what
``state.step_sizes`` reports (one value, repeated per block). The first step
has r_1 = 0 (x_0 − x_0 = 0), so d_1 = d_0 and x_1 = x_0 − γ d_0 (1 − β1) g_0 /
(√(1 − β2) |g_0| + eps) elementwise.

Where the official code differs from the paper's §5 algorithm, we follow the code:
    * r and s carry the factor (d_k/d_0) γ d_k instead of (1 − β3) γ d_k²
      (the common factor cancels in d̂ = r/‖s‖_1, but d_0 keeps the numbers O(1));
    * the eps of the Adam denominator is multiplied by the *new* d_{k+1}, not d_k;
    * no bias correction (``use_bias_correction=False``), β3 = √β2 by default,
      decoupled weight decay γ d_k wd x_k;
    * with a finite ``growth_rate`` ρ: d ← max(d, d̂) only while d = d_0, then
      d_max ← max(d_max, d̂), d_{k+1} = min(d_max, ρ d_k);
    * ``safeguard_warmup`` drops γ from s: s_{k+1} = β3 s_k + (d_k/d_0) d_k g_k.
When ‖s_{k+1}‖_1 = 0 (every gradient so far zero) the official step returns
before it stores r, d or counts the step: x does not move, m, v and s advance
(by zero), r, d and k stay, so the next step's bias correction is still that
of step k; we do the same (``count`` stays k).
Not offered (distributed-training options): ``fsdp_in_use``, ``slice_p``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.optim.base import check_state
from minilayerlr.optim.checks import require_params
from minilayerlr.optim.state_checks import (check_below, check_scalar, check_state_tree,
                                           check_trees_alike)
from minilayerlr.tree import (Params, block_dot, check_same_structure, check_tree, num_blocks,
                              tree_map, zeros_like)
from minilayerlr.validation import (check_nonnegative, check_positive, check_unit_interval,
                                    is_real_number)


@dataclass(frozen=True)
class ProdigyState:
    """State of :class:`Prodigy`.

    Attributes:
        count: number of steps taken k.
        initial_params: x_0.
        mu: m, first moment (same structure as params).
        nu: v, second moment.
        s: the weighted gradient sum s.
        numerator: r, the weighted sum of ⟨g_i, x_0 − x_i⟩.
        d: the distance estimate d_k for the next step.
        d_max: the largest estimate so far (d_0 at the start).
        d_hat: d̂ of the last step (d_0 before the first).
        step_sizes: γ d_k used at the last step, per block, shape (L,).
    """

    count: int
    initial_params: Params
    mu: Params
    nu: Params
    s: Params
    numerator: float
    d: float
    d_max: float
    d_hat: float
    step_sizes: np.ndarray

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless the buffers are finite float trees like x_0
        (v ≥ 0), r and d̂ finite, and 0 < d ≤ d_max."""
        check_state_tree(self.initial_params, f"{where}.initial_params")
        for name in ("mu", "nu", "s"):
            check_state_tree(getattr(self, name), f"{where}.{name}", nonnegative=name == "nu")
        check_trees_alike(self, ("initial_params", "mu", "nu", "s"), where)  # names the odd one
        check_scalar(self.numerator, f"{where}.numerator")
        check_scalar(self.d_hat, f"{where}.d_hat")
        check_scalar(self.d_max, f"{where}.d_max", positive=True)
        check_scalar(self.d, f"{where}.d", positive=True)
        if self.d > self.d_max:
            raise ValueError(f"{where}.d: is {self.d!r}, above d_max = {self.d_max!r}")


@dataclass(frozen=True)
class Prodigy:
    """Prodigy (Adam version), with the defaults of prodigyopt 1.1.

    Args:
        lr: γ > 0, a multiplier on the estimated rate (default 1; leave it).
        b1: β1 in [0, 1) (default 0.9).
        b2: β2 in [0, 1) (default 0.999).
        beta3: β3 in [0, 1), or None (default) for √β2.
        eps: > 0, times d_{k+1} in the Adam denominator (default 1e-8).
        weight_decay: wd ≥ 0 (default 0).
        decouple: True (default): decoupled decay γ d_k wd x_k; False: wd x_k
            is added to the gradient (an L2 penalty).
        use_bias_correction: multiply γ by √(1 − β2^{k+1}) / (1 − β1^{k+1}) (default False).
        safeguard_warmup: drop γ from s (default False).
        d0: initial estimate d_0 > 0 (default 1e-6).
        d_coef: > 0, multiplies d̂ (default 1; the advised knob to tune).
        growth_rate: ρ > 1 or inf (default inf): d_{k+1} ≤ ρ d_k.

    References: see the module docstring (arXiv 2306.06101, prodigyopt 1.1).
    """

    oracles: ClassVar[Tuple[str, ...]] = ()

    lr: float = 1.0
    b1: float = 0.9
    b2: float = 0.999
    beta3: Optional[float] = None
    eps: float = 1e-8
    weight_decay: float = 0.0
    decouple: bool = True
    use_bias_correction: bool = False
    safeguard_warmup: bool = False
    d0: float = 1e-6
    d_coef: float = 1.0
    growth_rate: float = math.inf

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_unit_interval("b1", self.b1)
        check_unit_interval("b2", self.b2)
        if self.beta3 is not None:
            check_unit_interval("beta3", self.beta3)
        check_positive("eps", self.eps)
        check_nonnegative("weight_decay", self.weight_decay)
        for name in ("decouple", "use_bias_correction", "safeguard_warmup"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")
        check_positive("d0", self.d0)
        check_below("d0", self.d0, 1e150, "d² must stay finite")  # the moments hold d²·g²
        check_positive("d_coef", self.d_coef)
        rate = self.growth_rate
        if not (is_real_number(rate) and rate > 1):
            raise ValueError(f"growth_rate: expected a number > 1 (inf allowed), got {rate!r}")

    @property
    def b3(self) -> float:
        """β3 in use: ``beta3``, or √β2 when it is None."""
        return math.sqrt(self.b2) if self.beta3 is None else float(self.beta3)

    def init(self, params: Params) -> ProdigyState:
        """Return the initial state: x_0, zero m, v, s and r, d = d_max = d_0."""
        check_tree(params, "params")
        d0 = float(self.d0)
        return ProdigyState(count=0, initial_params=tree_map(np.copy, params),
                            mu=zeros_like(params), nu=zeros_like(params), s=zeros_like(params),
                            numerator=0.0, d=d0, d_max=d0, d_hat=d0,
                            step_sizes=np.zeros(num_blocks(params)))

    def update(self, grads: Params, state: ProdigyState, params: Optional[Params] = None,
               *, curvature=None) -> Tuple[Params, ProdigyState]:
        """One Prodigy step.

        Args:
            grads: g_k, same structure as params.
            state: from ``init`` or the previous ``update``.
            params: x_k (required: r uses x_0 − x_k).
            curvature: accepted and ignored, as by every plain method (docs/design.md §6).

        Returns:
            ``(updates, new_state)``: updates = x_{k+1} − x_k as in the module docstring.
        """
        check_state(state, ProdigyState, "Prodigy", grads)
        require_params(params, grads, "Prodigy", "x_0 − x_k", state.initial_params)
        wd = float(self.weight_decay)
        g = grads if self.decouple or wd == 0 else tree_map(lambda g_, x: g_ + wd * x, grads, params)
        b1, b2, b3, k, d, d0 = self.b1, self.b2, self.b3, state.count, state.d, float(self.d0)
        correction = (math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))
                      if self.use_bias_correction else 1.0)
        dlr = d * self.lr * correction

        towards_start = tree_map(lambda x0, x: x0 - x, state.initial_params, params)
        r = b3 * state.numerator + (d / d0) * dlr * float(block_dot(g, towards_start).sum())
        s_weight = (d / d0) * (d if self.safeguard_warmup else dlr)
        s = tree_map(lambda s_, g_: b3 * s_ + s_weight * g_, state.s, g)
        mu = tree_map(lambda m, g_: b1 * m + (1 - b1) * d * g_, state.mu, g)
        nu = tree_map(lambda v, g_: b2 * v + (1 - b2) * d * d * g_ * g_, state.nu, g)
        s_norm = sum(float(np.abs(a).sum()) for entry in s for a in entry.values())
        if s_norm == 0:
            # the official step returns here, before it counts the step (k stays)
            skipped = ProdigyState(k, state.initial_params, mu, nu, s, state.numerator, d,
                                   state.d_max, state.d_hat, np.zeros(num_blocks(g)))
            return zeros_like(g), skipped

        d_hat = self.d_coef * r / s_norm
        d_new = max(d, d_hat) if d == d0 else d
        d_max = max(state.d_max, d_hat)
        d_new = min(d_max, d_new * self.growth_rate)
        decay = wd if self.decouple else 0.0
        updates = tree_map(lambda m, v, x: -dlr * m / (np.sqrt(v) + d_new * self.eps)
                           - decay * dlr * x, mu, nu, params)
        return updates, ProdigyState(k + 1, state.initial_params, mu, nu, s, float(r),
                                     float(d_new), float(d_max), float(d_hat),
                                     np.full(num_blocks(g), float(dlr)))
