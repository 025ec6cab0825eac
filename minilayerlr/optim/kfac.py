"""K-FAC: Kronecker-factored approximate curvature (Martens & Grosse 2015; KFC for conv, Grosse & Martens 2016).

Per block l (Dense, GraphConv or Conv2d) the Fisher block is approximated by
Ā_l ⊗ Ḡ_l, exponential averages of the factors of ``kronecker.kronecker_factors``.
With W̃ the block's weights and bias as one matrix (see ``kronecker`` for the
layout) and ∇W̃ its gradient::

    Ā ← ε Ā + (1 − ε) A_t,   Ḡ ← ε Ḡ + (1 − ε) G_t          (zero start, zero-debiased)
    π = sqrt( (tr Ā / dim Ā) / (tr Ḡ / dim Ḡ) )               (M&G section 6.3)
    Δ = (Ā + π√λ I)⁻¹ ∇W̃ (Ḡ + (√λ/π) I)⁻¹     (Dense/GraphConv; Conv2d: Ḡ⁻¹ on the left)

By default (``momentum_type="qmodel"``, M&G §7) the step and its momentum come
from the exact quadratic model (``kfac_qmodel``): (α, μ) minimise
gᵀw + ½wᵀ(F + λI)w over w = −(αΔ + μv), F the exact Fisher (= the
Gauss-Newton matrix for our losses, two ``hvp(·, kind="ggn")`` products per
step), then::

    v ← μ v + α Δ,   θ ← θ − lr · v           (lr = 1: the model's minimiser)

and (``adapt_damping=True``, M&G §6.5) every ``damping_interval`` = 5 steps λ
follows the Levenberg-Marquardt rule on ρ = (f(θ_new) − f(θ)) / (model change),
f on the same mini-batch (two ``loss`` calls), λ ← λω or λ/ω, ω = 0.95⁵.
With ``momentum_type="regular"`` and a fixed λ it is the plain K-FAC step
v ← μ v + Δ, θ ← θ − lr · v with the given μ = ``momentum``.

The damped inverses are recomputed every ``inverse_every`` steps (at steps
1, 1 + T, 1 + 2T, …) with the λ in force and reused in between; the factors
are refreshed at every step; λ is adapted after the step (steps T_λ, 2T_λ, …),
so with ``inverse_every`` = ``damping_interval`` = 5 each refresh uses the newest λ.

Official implementation followed: the authors' TensorFlow package ``kfac``
(github.com/tensorflow/kfac, PyPI ``kfac`` 0.2.4, ``PeriodicInvCovUpdateKfacOpt``)
with ``momentum_type="qmodel"`` and ``adapt_damping=True`` as its MNIST
autoencoder example runs it: covariances start at zero and are zero-debiased
(``INIT_COVARIANCES_AT_ZERO = ZERO_DEBIAS = True``), ``cov_ema_decay = 0.95``,
``cov_update_every = 1``, ``invert_every = 5`` (the example's; the class
default 10 makes the package warn that the adaptation interval 5 is not a
multiple of it), ``damping_adaptation_interval = 5``,
``damping_adaptation_decay = 0.95``, thresholds 0.75 / 0.25,
``min_damping = 1e-8``, ``update_damping_immediately = True``, ``l2_reg = 0``,
``qmodel_update_rescale = None`` (our ``lr`` = 1), the model change without
its damping term (``_INCLUDE_DAMPING_IN_QMODEL_CHANGE = False``), π by the
trace norm (``PI_TYPE = "tracenorm"``), one sampled target per example
(``estimation_mode = "gradients"``). For Conv2d it scales the damping by 1/|T|
on factors averaged over locations; with KFC's spatial sum in A that is the
same damped product, so nothing changes.

Departures, and why:

* The initial λ has no default in the package (it is required; its example
  starts the adaptation at 150, "probably far too high" for other losses, it
  says). Ours, ``damping = 1.0``, is our choice; the comparison tunes it (see
  ``experiments.methods``).
* ``momentum_type="regular"`` with ``adapt_damping=True`` (the package then
  compares with a model built from the approximate Fisher) is not offered,
  nor the "adam" momentum type or the KL norm constraint (``norm_constraint``,
  off by default in the package).
* A 2×2 model that is singular in floating point (v parallel to Δ) takes the
  1-D model (μ = 0), and g = 0 gives α = 0, where the package divides by zero.
* F v is the engine's exact Gauss-Newton product (the package multiplies by
  the Fisher's factor transpose: the same matrix for our losses).
* Inverses by ``numpy.linalg.inv`` of the damped factors, as the package's
  non-eigen path; when tr Ḡ = 0 (a block whose sampled δ all vanish) π is
  taken as 1 instead of dividing by zero (our choice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import check_params, check_state
from minilayerlr.optim.kfac_qmodel import adapt_damping, quadratic_model
from minilayerlr.optim.oracles import check_oracle
from minilayerlr.optim.state_checks import (check_block_arrays, check_kfac_state, check_scalar,
                                           check_square_matrices, check_state_tree)
from minilayerlr.tree import (Params, apply_updates, block_indices, check_same_structure, check_tree,
                              zeros_like)
from minilayerlr.validation import (check_int, check_nonnegative, check_positive, check_unit_interval,
                                    is_real_number)

#: how the step and its momentum are chosen: the exact quadratic model (M&G §7) or fixed lr, μ
MOMENTUM_TYPES = ("qmodel", "regular")


def as_matrix(entry) -> np.ndarray:
    """W̃ of one block: Dense (d_in + 1, d_out) = [W; b]; Conv2d (O, C·k·k + 1) = [W, b]."""
    W, b = entry["W"], entry["b"]
    if W.ndim == 2:
        return np.concatenate([W, b[None, :]], axis=0)
    return np.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)


def from_matrix(matrix: np.ndarray, like) -> dict:
    """Inverse of :func:`as_matrix`: cut W̃ back into {"W", "b"} shaped like ``like``."""
    W = like["W"]
    if W.ndim == 2:
        return {"W": matrix[:-1], "b": matrix[-1]}
    return {"W": matrix[:, :-1].reshape(W.shape), "b": matrix[:, -1]}


def factor_shapes(entry) -> Tuple[int, int]:
    """(dim A, dim G) of a block's factors."""
    W = entry["W"]
    if W.ndim == 2:
        return W.shape[0] + 1, W.shape[1]
    return int(np.prod(W.shape[1:])) + 1, W.shape[0]


def pi_split(A: np.ndarray, G: np.ndarray) -> float:
    """π = sqrt((tr A / dim A) / (tr G / dim G)), M&G 2015 section 6.3 (1 if tr G = 0, our choice)."""
    trace_g = np.trace(G) / G.shape[0]
    if not trace_g > 0:
        return 1.0
    return float(math.sqrt(max(np.trace(A) / A.shape[0], 0.0) / trace_g)) or 1.0


def damped_inverses(A: np.ndarray, G: np.ndarray, damping: float):
    """((A + π√λ I)⁻¹, (G + (√λ/π) I)⁻¹, π): factored Tikhonov damping, M&G 2015 section 6.3."""
    pi = pi_split(A, G)
    gamma = math.sqrt(damping)
    try:
        inv_a = np.linalg.inv(A + pi * gamma * np.eye(A.shape[0]))
        inv_g = np.linalg.inv(G + gamma / pi * np.eye(G.shape[0]))
    except np.linalg.LinAlgError:
        inv_a = inv_g = None
    if inv_a is None or not (np.all(np.isfinite(inv_a)) and np.all(np.isfinite(inv_g))):
        raise NonFiniteError("damping: a damped Kronecker factor is singular; use damping > 0")
    try:  # an inverse that rounding left indefinite would send the step uphill: a divergence
        check_square_matrices([inv_a, inv_g], [A.shape[0], G.shape[0]], "inverse", 1e-3)
    except ValueError:
        raise NonFiniteError(f"damping: λ = {damping:.3g} leaves a Kronecker factor too "
                             "ill-conditioned to invert in float64 (its inverse is not "
                             "positive semi-definite); use a larger damping") from None
    return inv_a, inv_g, pi


def precondition(grad_entry, inv_a: np.ndarray, inv_g: np.ndarray) -> dict:
    """Δ = A⁻¹ ∇W̃ G⁻¹ (Dense layout) or G⁻¹ ∇W̃ A⁻¹ (Conv2d layout), cut back into {"W", "b"}."""
    matrix = as_matrix(grad_entry)
    if grad_entry["W"].ndim == 2:
        return from_matrix(inv_a @ matrix @ inv_g, grad_entry)
    return from_matrix(inv_g @ matrix @ inv_a, grad_entry)


@dataclass(frozen=True)
class KFACState:
    """State of :class:`KFAC`; lists have one entry per block.

    Attributes:
        count: number of steps taken.
        step_sizes: the multiplier of Δ in the last update per block, shape (L,):
            lr (regular momentum) or lr·α (qmodel).
        factors_a: zero-debiased averages Ā (dim A × dim A).
        factors_g: zero-debiased averages Ḡ (dim G × dim G).
        inverse_a: (Ā + π√λ I)⁻¹ from the last inverse step (zeros before the first).
        inverse_g: (Ḡ + (√λ/π) I)⁻¹ from the last inverse step.
        pis: π per block at the last inverse step, shape (L,).
        velocity: the momentum buffer v, same structure as params.
        factor_seed: the seed passed to the factor oracle at the last step.
        damping: λ in force for the next step (after this step's adaptation, if any).
        step_damping: λ of the last step's quadratic model.
        inverse_damping: λ of the inverses in use.
        alpha: α of the last step (qmodel; 1 with regular momentum).
        mu: μ of the last step (qmodel; ``momentum`` with regular momentum).
        model_change: the undamped model change at the last step taken (0 if not computed).
        rho: the reduction ratio of the last adaptation (nan before the first).
    """

    count: int
    step_sizes: np.ndarray
    factors_a: List[np.ndarray]
    factors_g: List[np.ndarray]
    inverse_a: List[np.ndarray]
    inverse_g: List[np.ndarray]
    pis: np.ndarray
    velocity: Params
    factor_seed: Optional[int] = None
    damping: float = 0.0
    step_damping: float = 0.0
    inverse_damping: float = 0.0
    alpha: float = 0.0
    mu: float = 0.0
    model_change: float = 0.0
    rho: float = math.nan

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless every factor, inverse, π, v and scalar is finite (π > 0)."""
        n = check_block_arrays(self, ("step_sizes",), None, where)
        for name in ("factors_a", "factors_g", "inverse_a", "inverse_g"):
            arrays = getattr(self, name)
            if not isinstance(arrays, (list, tuple)) or len(arrays) != n:
                raise ValueError(f"{where}.{name}: expected one matrix per block ({n}), "
                                 f"got {type(arrays).__name__}")
            for i, a in enumerate(arrays):
                if not isinstance(a, np.ndarray) or a.dtype.kind != "f" or a.ndim != 2:
                    raise TypeError(f"{where}.{name}[{i}]: expected a floating-point matrix")
                if not np.all(np.isfinite(a)):
                    raise NonFiniteError(f"{where}.{name}[{i}]: contains NaN or Inf")
        check_block_arrays(self, ("pis",), n, where)
        if len(self.pis) and self.pis.min() <= 0:
            raise ValueError(f"{where}.pis: expected values > 0 (π splits the damping), got {self.pis}")
        check_state_tree(self.velocity, f"{where}.velocity")
        if self.factor_seed is not None:
            check_scalar(self.factor_seed, f"{where}.factor_seed", minimum=0, integer=True)
        for name in ("damping", "step_damping", "inverse_damping"):
            check_scalar(getattr(self, name), f"{where}.{name}", minimum=0)
        for name in ("alpha", "mu", "model_change"):
            check_scalar(getattr(self, name), f"{where}.{name}")
        if not is_real_number(self.rho):  # nan until the first adaptation; ±inf as in floating point
            raise TypeError(f"{where}.rho: expected a real number, got {self.rho!r}")


@dataclass(frozen=True)
class KFAC:
    """K-FAC with KFC for convolutions, the quadratic-model step and adaptive damping (module docstring).

    Args:
        lr: > 0. With ``momentum_type="qmodel"`` the multiplier of the model's
            step (1 = its minimiser; the package's ``qmodel_update_rescale``);
            with "regular" the learning rate.
        damping: λ ≥ 0, Tikhonov damping split over the factors by π; the
            initial λ when ``adapt_damping`` (default 1.0, our choice; the
            package requires it). 0 with regular momentum: the undamped step.
        factor_decay: ε in [0, 1), the factors' moving average (package: 0.95).
        inverse_every: T ≥ 1, steps between inverse recomputations (5, the package's example).
        momentum: μ in [0, 1) of "regular" momentum (ignored by "qmodel", which chooses μ).
        seed: step t calls the factor oracle with
            ``seed = SeedSequence([seed, t]).generate_state(1)[0]``.
        momentum_type: "qmodel" (M&G §7, default) or "regular".
        adapt_damping: the Levenberg-Marquardt rule of M&G §6.5 (needs "qmodel").
        damping_interval: T_λ ≥ 1, steps between adaptations (package: 5).
        damping_decay: ω^{1/T_λ} in (0, 1) (package: 0.95).
        min_damping: lower bound of the adapted λ (package: 1e-8).

    References:
        Martens & Grosse, "Optimizing neural networks with Kronecker-factored
        approximate curvature", ICML 2015 (sections 3, 6.3–6.5, 7); Grosse &
        Martens, "A Kronecker-factored approximate Fisher matrix for
        convolution layers", ICML 2016 (section 3); official package ``kfac``
        0.2.4 (github.com/tensorflow/kfac).
    """

    lr: float = 1.0
    damping: float = 1.0
    factor_decay: float = 0.95
    inverse_every: int = 5
    momentum: float = 0.9
    seed: int = 0
    momentum_type: str = "qmodel"
    adapt_damping: bool = True
    damping_interval: int = 5
    damping_decay: float = 0.95
    min_damping: float = 1e-8

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_nonnegative("damping", self.damping)
        check_unit_interval("factor_decay", self.factor_decay)
        check_int("inverse_every", self.inverse_every)
        check_unit_interval("momentum", self.momentum)
        check_int("seed", self.seed, minimum=0)
        if self.momentum_type not in MOMENTUM_TYPES:
            raise ValueError(f"momentum_type: expected one of {', '.join(MOMENTUM_TYPES)}, "
                             f"got {self.momentum_type!r}")
        if not isinstance(self.adapt_damping, (bool, np.bool_)):
            raise ValueError(f"adapt_damping: expected True or False, got {self.adapt_damping!r}")
        if self.adapt_damping and self.momentum_type != "qmodel":
            raise ValueError("adapt_damping: the damping adaptation needs momentum_type='qmodel' "
                             "(the package's variant for 'regular' momentum is not offered)")
        check_int("damping_interval", self.damping_interval)
        if not (is_real_number(self.damping_decay) and 0 < self.damping_decay < 1):
            raise ValueError(f"damping_decay: expected a number in (0, 1), got {self.damping_decay!r}")
        check_nonnegative("min_damping", self.min_damping)
        if self.adapt_damping and not self.damping > 0:
            raise ValueError("damping: the adapted damping starts from a number > 0")

    @property
    def oracles(self) -> Tuple[str, ...]:
        """The factors always; F v products for the quadratic model; the loss to adapt λ."""
        return (("kronecker_factors",) + (("hvp",) if self.momentum_type == "qmodel" else ())
                + (("loss",) if self.adapt_damping else ()))

    def init(self, params: Params) -> KFACState:
        """Zero factors, zero inverses (the package's initialisers), zero velocity, the initial λ."""
        check_tree(params, "params")
        shapes = [factor_shapes(params[k]) for k in block_indices(params)]
        lam = float(self.damping)
        return KFACState(
            count=0, step_sizes=np.zeros(len(shapes)),
            factors_a=[np.zeros((a, a)) for a, _ in shapes],
            factors_g=[np.zeros((g, g)) for _, g in shapes],
            inverse_a=[np.zeros((a, a)) for a, _ in shapes],
            inverse_g=[np.zeros((g, g)) for _, g in shapes],
            pis=np.ones(len(shapes)), velocity=zeros_like(params),
            damping=lam, step_damping=lam, inverse_damping=lam)

    def update(self, grads: Params, state: KFACState, params: Optional[Params] = None, *,
               kronecker_factors=None, hvp=None, loss=None) -> Tuple[Params, KFACState]:
        """One K-FAC step.

        Args:
            grads: ∇f, same structure as params.
            state: from ``init`` or the previous ``update``.
            params: θ (needed to adapt λ: f is evaluated at θ and θ + update).
            kronecker_factors: the oracle ``(seed=...) -> [{"A", "G"}, ...]``,
                e.g. ``ev.kronecker_factors``.
            hvp: ``(v, kind="ggn") -> F v`` for the quadratic model, e.g. ``ev.hvp``.
            loss: θ ↦ f(θ) on the same mini-batch, to adapt λ.
        Returns:
            ``(updates, new_state)``, updates = −lr · v.
        """
        oracle = check_oracle("kronecker_factors", kronecker_factors, "KFAC")
        qmodel = self.momentum_type == "qmodel"
        if qmodel:
            hvp = check_oracle("hvp", hvp, "KFAC")
        if self.adapt_damping:
            loss = check_oracle("loss", loss, "KFAC")
        check_state(state, KFACState, "KFAC", grads)
        check_params(params, grads, self.adapt_damping, "KFAC")
        check_kfac_state(state, grads, params, factor_shapes)  # sizes, symmetric PSD, velocity
        t = state.count + 1
        seed = int(np.random.SeedSequence([int(self.seed), t]).generate_state(1)[0])
        fresh = self._checked(oracle(seed=seed), state)

        eps = self.factor_decay
        keep, total = eps * (1 - eps ** (t - 1)), 1 - eps ** t  # zero-debiased EMA
        factors_a = [(keep * old + (1 - eps) * new["A"]) / total for old, new in zip(state.factors_a, fresh)]
        factors_g = [(keep * old + (1 - eps) * new["G"]) / total for old, new in zip(state.factors_g, fresh)]
        lam = float(state.damping)
        inverse_a, inverse_g, pis = state.inverse_a, state.inverse_g, state.pis
        inverse_damping = state.inverse_damping
        if (t - 1) % self.inverse_every == 0:
            triples = [damped_inverses(a, g, lam) for a, g in zip(factors_a, factors_g)]
            inverse_a, inverse_g = [x[0] for x in triples], [x[1] for x in triples]
            pis, inverse_damping = np.array([x[2] for x in triples]), lam

        blocks = block_indices(grads)
        delta: Params = [{} for _ in grads]
        for i, k in enumerate(blocks):
            delta[k] = precondition(grads[k], inverse_a[i], inverse_g[i])
        if qmodel:
            alpha, mu, change = quadratic_model(grads, delta, state.velocity, lam, hvp, float(self.lr))
        else:
            alpha, mu, change = 1.0, float(self.momentum), 0.0
        # Δ is computed in float64 (the factors' dtype); v and the update keep the parameters'
        velocity = [{n: (mu * state.velocity[k][n] + alpha * d).astype(grads[k][n].dtype, copy=False)
                     for n, d in e.items()} for k, e in enumerate(delta)]
        lr = float(self.lr)
        updates = [{n: -lr * v for n, v in e.items()} for e in velocity]
        new_lam, rho = lam, state.rho
        if self.adapt_damping and t % self.damping_interval == 0:
            before = self._loss_value(loss, params)
            after = self._loss_value(loss, apply_updates(params, updates))
            new_lam, rho = adapt_damping(lam, after - before, change,
                                         float(self.damping_decay) ** self.damping_interval,
                                         float(self.min_damping))
        sizes = np.full(len(blocks), lr * alpha)
        return updates, KFACState(t, sizes, factors_a, factors_g, inverse_a, inverse_g, pis, velocity,
                                  seed, float(new_lam), lam, float(inverse_damping), float(alpha),
                                  float(mu), float(change), float(rho))

    @staticmethod
    def _loss_value(loss, params) -> float:
        value = loss(params)
        if not (is_real_number(value) and math.isfinite(value)):
            raise NonFiniteError(f"loss: the oracle returned {value!r}; the damping rule needs a finite loss")
        return float(value)

    @staticmethod
    def _checked(fresh, state: KFACState):
        """The oracle's answer, or ValueError naming it if it does not fit the blocks."""
        if not isinstance(fresh, (list, tuple)) or len(fresh) != len(state.factors_a):
            raise ValueError(f"kronecker_factors: the oracle must return one {{'A', 'G'}} dict per "
                             f"block ({len(state.factors_a)}), got {type(fresh).__name__}")
        for i, (entry, a, g) in enumerate(zip(fresh, state.factors_a, state.factors_g)):
            if not isinstance(entry, dict) or not {"A", "G"} <= set(entry) \
                    or np.shape(entry["A"]) != a.shape or np.shape(entry["G"]) != g.shape:
                raise ValueError(f"kronecker_factors: block {i} needs A {a.shape} and G {g.shape}")
            if not (np.all(np.isfinite(entry["A"])) and np.all(np.isfinite(entry["G"]))):
                raise NonFiniteError(f"kronecker_factors: block {i} has non-finite factors")
        return fresh
