"""K-FAC: Kronecker-factored approximate curvature (Martens & Grosse 2015; KFC for conv, Grosse & Martens 2016).

Per block l (Dense, GraphConv or Conv2d) the Fisher block is approximated by
Ā_l ⊗ Ḡ_l, exponential averages of the factors of ``kronecker.kronecker_factors``.
With W̃ the block's weights and bias as one matrix (see ``kronecker`` for the
layout) and ∇W̃ its gradient::

    Ā ← ε Ā + (1 − ε) A_t,   Ḡ ← ε Ḡ + (1 − ε) G_t          (zero start, zero-debiased)
    π = sqrt( (tr Ā / dim Ā) / (tr Ḡ / dim Ḡ) )               (M&G section 6.3)
    Δ = (Ā + π√λ I)⁻¹ ∇W̃ (Ḡ + (√λ/π) I)⁻¹     (Dense/GraphConv; Conv2d: Ḡ⁻¹ on the left)
    v ← μ v + Δ,   θ ← θ − lr · v

The damped inverses are recomputed every ``inverse_every`` steps (at steps
1, 1 + T, 1 + 2T, …) and reused in between; the factors are refreshed at
every step.

Official implementation followed: the authors' TensorFlow package ``kfac``
(github.com/tensorflow/kfac, PyPI ``kfac`` 0.2; ``PeriodicInvCovUpdateKfacOpt``
with ``momentum_type="regular"``): covariances start at zero and are
zero-debiased (``INIT_COVARIANCES_AT_ZERO = ZERO_DEBIAS = True``),
``invert_every = 10``, ``cov_update_every = 1`` (its defaults),
``cov_ema_decay = 0.95`` and ``momentum = 0.9`` (the values in its
examples), π by the trace norm (``PI_TYPE = "tracenorm"``), one sampled target
per example (``estimation_mode = "gradients"``). For Conv2d it scales the
damping by 1/|T| on factors averaged over locations; with KFC's spatial sum
in A that is the same damped product, so nothing changes.

Departures, and why:

* ``lr`` and ``damping`` have no defaults in the official package (both are
  required; its examples use lr = 1e-4, λ = 1e-3). Ours, lr = 0.01 and
  λ = 0.1, are our choice: at lr = 0.01, λ = 0.01 diverged on the quick
  autoencoder task and λ = 1e-3 on the tests' CNN. Tune lr over a grid.
* No "qmodel" momentum, no Levenberg-Marquardt damping adaptation and no
  KL norm constraint (off by default in the package too: ``norm_constraint=None``).
* Inverses by ``numpy.linalg.inv`` of the damped factors, as the package's
  non-eigen path; when tr Ḡ = 0 (a block whose sampled δ all vanish) π is
  taken as 1 instead of dividing by zero (our choice).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, List, Optional, Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import check_params, check_state
from minilayerlr.optim.oracles import check_oracle
from minilayerlr.optim.state_checks import (check_block_arrays, check_kfac_state, check_scalar,
                                           check_state_tree)
from minilayerlr.tree import Params, block_indices, check_same_structure, check_tree, zeros_like
from minilayerlr.validation import check_int, check_nonnegative, check_positive, check_unit_interval


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
        step_sizes: the learning rate per block at the last step, shape (L,).
        factors_a: zero-debiased averages Ā (dim A × dim A).
        factors_g: zero-debiased averages Ḡ (dim G × dim G).
        inverse_a: (Ā + π√λ I)⁻¹ from the last inverse step (zeros before the first).
        inverse_g: (Ḡ + (√λ/π) I)⁻¹ from the last inverse step.
        pis: π per block at the last inverse step, shape (L,).
        velocity: the momentum buffer v, same structure as params.
        factor_seed: the seed passed to the factor oracle at the last step.
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

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless every factor, inverse, π and v is finite (π > 0)."""
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


@dataclass(frozen=True)
class KFAC:
    """K-FAC with KFC for convolutions (see the module docstring for the equations).

    Args:
        lr: learning rate > 0 (default 0.01, our choice; the package has none).
        damping: λ ≥ 0, Tikhonov damping split over the factors by π
            (default 0.1, our choice; 0 gives the undamped natural-gradient step).
        factor_decay: ε in [0, 1), the factors' moving average (package: 0.95).
        inverse_every: T ≥ 1, steps between inverse recomputations (package: 10).
        momentum: μ in [0, 1) (package: 0.9, "regular" momentum).
        seed: step t calls the oracle with
            ``seed = SeedSequence([seed, t]).generate_state(1)[0]``.

    References:
        Martens & Grosse, "Optimizing neural networks with Kronecker-factored
        approximate curvature", ICML 2015 (sections 3, 6.3); Grosse & Martens,
        "A Kronecker-factored approximate Fisher matrix for convolution
        layers", ICML 2016 (section 3); official package ``kfac`` 0.2
        (github.com/tensorflow/kfac).
    """

    oracles: ClassVar[Tuple[str, ...]] = ("kronecker_factors",)

    lr: float = 0.01
    damping: float = 0.1
    factor_decay: float = 0.95
    inverse_every: int = 10
    momentum: float = 0.9
    seed: int = 0

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_nonnegative("damping", self.damping)
        check_unit_interval("factor_decay", self.factor_decay)
        check_int("inverse_every", self.inverse_every)
        check_unit_interval("momentum", self.momentum)
        check_int("seed", self.seed, minimum=0)

    def init(self, params: Params) -> KFACState:
        """Zero factors, zero inverses (the package's initialisers), zero velocity."""
        check_tree(params, "params")
        shapes = [factor_shapes(params[k]) for k in block_indices(params)]
        return KFACState(
            count=0, step_sizes=np.zeros(len(shapes)),
            factors_a=[np.zeros((a, a)) for a, _ in shapes],
            factors_g=[np.zeros((g, g)) for _, g in shapes],
            inverse_a=[np.zeros((a, a)) for a, _ in shapes],
            inverse_g=[np.zeros((g, g)) for _, g in shapes],
            pis=np.ones(len(shapes)), velocity=zeros_like(params))

    def update(self, grads: Params, state: KFACState, params: Optional[Params] = None, *,
               kronecker_factors=None) -> Tuple[Params, KFACState]:
        """One K-FAC step.

        Args:
            grads: ∇f, same structure as params.
            state: from ``init`` or the previous ``update``.
            params: unused (accepted for the common protocol).
            kronecker_factors: the oracle ``(seed=...) -> [{"A", "G"}, ...]``,
                e.g. ``ev.kronecker_factors``.
        Returns:
            ``(updates, new_state)``, updates = −lr · v.
        """
        oracle = check_oracle("kronecker_factors", kronecker_factors, "KFAC")
        check_state(state, KFACState, "KFAC", grads)
        check_params(params, grads, False, "KFAC")
        check_kfac_state(state, grads, params, factor_shapes)  # sizes, symmetric PSD, velocity
        t = state.count + 1
        seed = int(np.random.SeedSequence([int(self.seed), t]).generate_state(1)[0])
        fresh = self._checked(oracle(seed=seed), state)

        eps = self.factor_decay
        keep, total = eps * (1 - eps ** (t - 1)), 1 - eps ** t  # zero-debiased EMA
        factors_a = [(keep * old + (1 - eps) * new["A"]) / total for old, new in zip(state.factors_a, fresh)]
        factors_g = [(keep * old + (1 - eps) * new["G"]) / total for old, new in zip(state.factors_g, fresh)]
        inverse_a, inverse_g, pis = state.inverse_a, state.inverse_g, state.pis
        if (t - 1) % self.inverse_every == 0:
            triples = [damped_inverses(a, g, self.damping) for a, g in zip(factors_a, factors_g)]
            inverse_a, inverse_g = [x[0] for x in triples], [x[1] for x in triples]
            pis = np.array([x[2] for x in triples])

        blocks = block_indices(grads)
        velocity: Params = [{} for _ in grads]
        updates: Params = [{} for _ in grads]
        for i, k in enumerate(blocks):
            delta = precondition(grads[k], inverse_a[i], inverse_g[i])
            velocity[k] = {n: self.momentum * state.velocity[k][n] + delta[n] for n in grads[k]}
            updates[k] = {n: -self.lr * v for n, v in velocity[k].items()}
        return updates, KFACState(t, np.full(len(blocks), float(self.lr)), factors_a, factors_g,
                                  inverse_a, inverse_g, pis, velocity, seed)

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
