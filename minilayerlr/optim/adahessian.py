"""AdaHessian: Adam with the Hessian diagonal in place of the squared gradient (Yao et al. 2021).

At step t, with one Rademacher z (entries ±1) and one Hessian-vector product::

    D = |z ⊙ H z|          (Hutchinson: E[z ⊙ H z] = diag H)
    D ← mean of D over each k×k kernel (Conv2d weights only; spatial averaging, broadcast back)
    m ← β1 m + (1 − β1) g             v ← β2 v + (1 − β2) D²
    θ ← θ − lr · ( (m / (1 − β1ᵗ)) / ((√v / √(1 − β2ᵗ))^k + eps) + wd · θ )

with k the ``hessian_power``. The paper's Algorithm 1 writes D = z ⊙ Hz and
its spatial average (eq. 9); the absolute value is the official code's.

Official implementation followed: github.com/amirgholami/adahessian
(PyTorch, ``image_classification/optim_adahessian.py`` at commit 23eeab0; the
authors publish no package release):
``lr = 0.15``, ``betas = (0.9, 0.999)``, ``eps = 1e-4``, ``weight_decay = 0``,
``hessian_power = 1``, one z per step; 4-D kernels average |Hz| over the two
spatial axes, arrays of order ≤ 2 use |Hz| elementwise (|z ⊙ Hz| = |Hz| since
|z| = 1).

Departures, and why: z is drawn from numpy's Generator seeded per step,
``SeedSequence([seed, t])``, as the layer-wise estimators are, so runs
reproduce bit for bit (the official code draws from torch's global
generator). The Hessian-vector product is the engine's exact one instead of
double back-propagation (the same numbers, up to rounding).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import check_params, check_state
from minilayerlr.optim.checks import require_params
from minilayerlr.optim.oracles import check_oracle
from minilayerlr.optim.state_checks import check_buffers, check_scalar, check_state_tree
from minilayerlr.tree import (Params, block_indices, check_same_structure, check_tree, tree_map,
                              zeros_like)
from minilayerlr.validation import check_int, check_nonnegative, check_positive, check_unit_interval


def rademacher(like: Params, rng: np.random.Generator) -> Params:
    """z with independent ±1 entries, shaped like ``like`` (drawn layer by layer, W before b)."""
    return tree_map(lambda a: rng.integers(0, 2, size=a.shape).astype(a.dtype) * 2 - 1, like)


def hutchinson_diagonal(z: Params, hz: Params) -> Params:
    """z ⊙ H z, an unbiased estimate of diag H (Hutchinson 1989): E[z_i (Hz)_i] = H_ii."""
    return tree_map(lambda z_, h_: z_ * h_, z, hz)


def spatial_average(d: np.ndarray) -> np.ndarray:
    """|d| averaged over the k×k kernel axes of a 4-D (O, C, k, k) array and broadcast back; |d| otherwise."""
    d = np.abs(d)
    if d.ndim == 4:
        return np.broadcast_to(d.mean(axis=(2, 3), keepdims=True), d.shape).copy()
    return d


@dataclass(frozen=True)
class AdaHessianState:
    """State of :class:`AdaHessian`.

    Attributes:
        count: number of steps taken t.
        step_sizes: the learning rate per block at the last step, shape (L,).
        mu: first moment m (params structure).
        nu: second moment v of the spatially averaged Hessian diagonal D.
        hessian_seed: the seed that drew z at the last step.
    """

    count: int
    step_sizes: np.ndarray
    mu: Params
    nu: Params
    hessian_seed: Optional[int] = None

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless m is finite and v finite and ≥ 0 (it averages D²)."""
        check_state_tree(self.mu, f"{where}.mu")
        check_state_tree(self.nu, f"{where}.nu", nonnegative=True)
        if self.hessian_seed is not None:
            check_scalar(self.hessian_seed, f"{where}.hessian_seed", minimum=0, integer=True)


@dataclass(frozen=True)
class AdaHessian:
    """AdaHessian (Yao et al. 2021, Algorithm 1) with the official code's defaults.

    Args:
        lr: learning rate > 0 (official 0.15).
        b1: first-moment decay β1 in [0, 1) (official 0.9).
        b2: second-moment decay β2 in [0, 1) (official 0.999).
        eps: > 0, added to the denominator (official 1e-4).
        hessian_power: k in [0, 1] (official 1, and the official range).
        weight_decay: wd ≥ 0, θ ← θ − lr·wd·θ as in the official code (default 0).
        seed: step t draws z from ``default_rng(SeedSequence([seed, t]).generate_state(1)[0])``.

    References:
        Yao, Gholami, Shen, Mustafa, Keutzer & Mahoney, "ADAHESSIAN: An
        adaptive second order optimizer for machine learning", AAAI 2021
        (Algorithm 1, section 3.2 spatial averaging, eq. 9–10);
        official code github.com/amirgholami/adahessian.
    """

    oracles: ClassVar[Tuple[str, ...]] = ("hvp",)

    lr: float = 0.15
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-4
    hessian_power: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_unit_interval("b1", self.b1)
        check_unit_interval("b2", self.b2)
        check_positive("eps", self.eps)
        check_nonnegative("hessian_power", self.hessian_power)
        if self.hessian_power > 1:
            raise ValueError(f"hessian_power: expected a number in [0, 1], got {self.hessian_power!r}")
        check_nonnegative("weight_decay", self.weight_decay)
        check_int("seed", self.seed, minimum=0)

    def init(self, params: Params) -> AdaHessianState:
        """Zero moments, t = 0."""
        check_tree(params, "params")
        return AdaHessianState(0, np.zeros(len(block_indices(params))), zeros_like(params),
                               zeros_like(params))

    def update(self, grads: Params, state: AdaHessianState, params: Optional[Params] = None, *,
               hvp=None) -> Tuple[Params, AdaHessianState]:
        """One AdaHessian step.

        Args:
            grads: g, same structure as params.
            state: from ``init`` or the previous ``update``.
            params: θ; needed only when weight_decay > 0.
            hvp: the oracle v ↦ H v on the same mini-batch, e.g. ``ev.hvp``.
        Returns:
            ``(updates, new_state)``.
        """
        hvp = check_oracle("hvp", hvp, "AdaHessian")
        check_state(state, AdaHessianState, "AdaHessian", grads)
        if self.weight_decay > 0:
            params = require_params(params, grads, "AdaHessian", "weight decay")
        else:
            check_params(params, grads, False, "AdaHessian")
        check_buffers(state, ("mu", "nu"), grads, params)  # exact shapes, naming the field
        t = state.count + 1
        seed = int(np.random.SeedSequence([int(self.seed), t]).generate_state(1)[0])
        z = rademacher(grads, np.random.default_rng(seed))
        hz = hvp(z)
        check_same_structure(hz, grads, "hvp")
        kinds = {np.asarray(a).dtype.kind for e in hz for a in e.values()}
        if not kinds <= set("iuf"):  # a complex H z must not be cast (its imaginary part dropped)
            raise TypeError(f"hvp: the oracle must return real floating-point arrays, got dtype "
                            f"kinds {sorted(kinds)}")
        if not all(np.all(np.isfinite(a)) for e in hz for a in e.values()):
            raise NonFiniteError("hvp: the oracle returned non-finite values")
        d = tree_map(spatial_average, hutchinson_diagonal(z, hz))

        b1, b2, k = self.b1, self.b2, self.hessian_power
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = tree_map(lambda v, d_: b2 * v + (1 - b2) * d_ * d_, state.nu, d)
        step = tree_map(lambda m, v: (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) ** k + self.eps),
                        mu, nu)
        if self.weight_decay > 0:
            step = tree_map(lambda s, p: s + self.weight_decay * p, step, params)
        updates = tree_map(lambda s: -self.lr * s, step)
        sizes = np.full(len(block_indices(grads)), float(self.lr))
        return updates, AdaHessianState(t, sizes, mu, nu, seed)
