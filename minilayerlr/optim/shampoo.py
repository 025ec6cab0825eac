"""Shampoo: one preconditioner per dimension of each weight matrix (Gupta, Koren & Singer 2018).

As released in TensorFlow 1.15 (``tf.contrib.opt.ShampooOptimizer``,
tensorflow/contrib/opt/python/training/shampoo.py; the same in 1.11–1.15).
For each parameter array, with G_t its gradient at step t viewed as a
(d_0, d_1) matrix (Dense W as (d_in, d_out); Conv2d W reshaped to (O, C·k·k))::

    L_t = Σ_{s ≤ t} G_s G_sᵀ           R_t = Σ_{s ≤ t} G_sᵀ G_s
    P_t = (L_t/d_0 + ε I)^{-1/4} G_t (R_t/d_1 + ε I)^{-1/4}
    θ ← θ − lr · P_t

each statistic divided by its own dimension before the root (the released
code's normalisation), and for a vector g of length d (the biases), the
order-1 case (full-matrix AdaGrad with the same normalisation)::

    H_t = Σ_{s ≤ t} g_s g_sᵀ           P_t = (H_t/d + ε I)^{-1/2} g_t

Roots by eigendecomposition with eigenvalues clipped below at ε. A dimension
d_i > ``max_matrix_size`` gets a diagonal statistic instead: the row sums
D = Σ_s Σ_{j} (G_s)_{·j}² / d_i (a vector keeps Σ g², not divided), power
D^{-1/(2·rank)} elementwise where D > 0 and 0 where D = 0 (no ε on this path,
as released). Dense roots are recomputed every ``update_every`` = T steps, at
steps T, 2T, … (the released schedule: step mod T = 0), start as the identity
(so with T > 1 the first T − 1 steps are plain gradient steps) and are reused
in between; the sums and the diagonal powers are updated at every step, as
released.

Learning-rate grafting (Agarwal et al. 2020, "Disentangling adaptive
gradient methods from learning rates", arXiv 2002.11803; as Distributed
Shampoo, Shi et al. 2023, arXiv 2309.06497, offers it), ``graft`` = "sgd" or
"adagrad": per block l (a layer's W and b together) Shampoo gives the
direction and a first-order method the size::

    A_t = A_{t−1} + g_t ⊙ g_t                  (adagrad only, A_0 = 0)
    u_l = g_l (sgd)   or   g_l / (√A_l + ε_graft)   (adagrad)
    θ_l ← θ_l − lr · (‖u_l‖ / ‖P_l‖) · P_l     (0 when P_l = 0)

Released defaults: ``learning_rate = 1.0``, ``epsilon = 1e-4``,
``alpha = 0.5`` (power −α/rank), ``max_matrix_size = 768`` (kept dense when
d ≤ 768), ``svd_interval = 1``, ``gbar_decay = 0`` (no momentum),
``mat_gbar_decay = mat_gbar_weight = 1`` (plain sums). Grafting is not in the
released code; off by default.

Departures, and why:

* Conv2d kernels (order 4) are reshaped to (O, C·k·k) matrices, as later
  Shampoo implementations do ("merged dimensions"); the released code
  preconditions each of the four axes with power −1/8.
* Roots by ``numpy.linalg.eigh`` of the symmetric statistic (the released code
  takes an SVD: the same numbers for a symmetric PSD matrix). The older,
  unreleased state of the TensorFlow code (no division by the dimension,
  ε = 0.1, diagonal from d ≥ max_matrix_size, powers reused between refreshes,
  roots first computed at step 1) is not offered. The released code refreshes
  on its ``global_step`` argument, which the caller must pass (left at its
  default 0 it never refreshes when T > 1); we count the steps ourselves.
* Grafting is per block (layer); Distributed Shampoo grafts per parameter
  tensor (or per its sub-blocks). ε_graft = 1e-10 is our choice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import check_params, check_state
from minilayerlr.optim.state_checks import check_shampoo_statistics, check_state_tree
from minilayerlr.tree import Params, block_indices, check_tree, num_blocks, zeros_like
from minilayerlr.validation import check_int, check_positive

#: the first-order methods whose step size Shampoo's direction can take (``graft``)
GRAFTS = ("none", "sgd", "adagrad")


def as_matrix(array: np.ndarray) -> np.ndarray:
    """The array Shampoo preconditions: vectors stay vectors, order 4 becomes (O, C·k·k)."""
    return array if array.ndim <= 2 else array.reshape(array.shape[0], -1)


def statistic(matrix: np.ndarray, axis: int, diagonal: bool) -> np.ndarray:
    """G Gᵀ (axis 0) or Gᵀ G (axis 1) of a matrix, g gᵀ of a vector; only its diagonal if ``diagonal``."""
    m = matrix if axis == 0 else matrix.T
    if m.ndim == 1:
        return m * m if diagonal else np.outer(m, m)
    return (m * m).sum(axis=1) if diagonal else m @ m.T


def finite(stat: np.ndarray) -> np.ndarray:
    """``stat``, or NonFiniteError if the accumulated sum overflowed (a diverging run)."""
    if not np.all(np.isfinite(stat)):
        raise NonFiniteError("grads: Shampoo's accumulated statistics overflowed; the run has diverged")
    return stat


def inverse_root(stat: np.ndarray, eps: float, p: int, normalizer: float) -> np.ndarray:
    """The released power of one statistic S of a dimension of size d = ``normalizer``.

    Dense S: (S/d + ε I)^{-1/p}, eigenvalues clipped below at ε. Diagonal S (1-D):
    (S/d)^{-1/p} where S > 0, 0 where S = 0 (no ε, as released; d = 1 for a vector).
    """
    scaled = stat / normalizer
    if stat.ndim == 1:
        positive = scaled > 0
        return np.where(positive, np.where(positive, scaled, 1.0) ** (-1.0 / p), 0.0)
    values, vectors = np.linalg.eigh(scaled + eps * np.eye(stat.shape[0]))
    return (vectors * np.maximum(values, eps) ** (-1.0 / p)) @ vectors.T


def _identity_like(stat: np.ndarray) -> np.ndarray:
    """The released code's initial root: I for a dense statistic (a diagonal one is recomputed anyway)."""
    return np.eye(stat.shape[0]) if stat.ndim == 2 else np.zeros_like(stat)


def apply_root(root: np.ndarray, m: np.ndarray, side: str) -> np.ndarray:
    """root · m (side "left") or m · root ("right"); a 1-D root stands for a diagonal matrix."""
    if root.ndim == 2:
        return root @ m if side == "left" else m @ root
    if m.ndim == 1:
        return root * m
    return root[:, None] * m if side == "left" else m * root[None, :]


@dataclass(frozen=True)
class ShampooState:
    """State of :class:`Shampoo`; trees have the params' structure.

    Attributes:
        count: number of steps taken.
        step_sizes: the multiplier of Shampoo's direction per block at the last
            step, shape (L,): lr, or lr·‖u_l‖/‖P_l‖ with grafting.
        left: Σ G Gᵀ per array (Σ g gᵀ for vectors; the diagonal when > max_matrix_size).
        right: Σ Gᵀ G per matrix-shaped array (absent for vectors).
        left_roots: the power of ``left`` used at the last step (dense: from the last refresh,
            the identity before the first).
        right_roots: the power of ``right`` used at the last step.
        graft_sums: AdaGrad's Σ g ⊙ g (like params) when ``graft="adagrad"``, else None.
    """

    count: int
    step_sizes: np.ndarray
    left: Params
    right: Params
    left_roots: Params
    right_roots: Params
    graft_sums: Optional[Params] = None

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless the sums and their roots are finite."""
        for name in ("left", "right", "left_roots", "right_roots"):
            check_state_tree(getattr(self, name), f"{where}.{name}")
        check_shampoo_statistics(self, where)
        if self.graft_sums is not None:
            check_state_tree(self.graft_sums, f"{where}.graft_sums", nonnegative=True)


@dataclass(frozen=True)
class Shampoo:
    """Shampoo (Algorithms 1 and 2) as released in TensorFlow 1.15 (equations in the module docstring).

    Args:
        lr: learning rate > 0 (released default 1.0); with grafting, the
            learning rate of the grafted method.
        eps: ε > 0 added to each normalised dense statistic (released default 1e-4).
        update_every: T ≥ 1, the dense roots are recomputed at steps T, 2T, …
            (released ``svd_interval``, 1).
        max_matrix_size: dimensions larger than this get a diagonal statistic
            (released 768; a dimension equal to it stays dense).
        graft: "none" (released), "sgd" or "adagrad": whose per-block step size
            Shampoo's direction takes (Agarwal et al. 2020).
        graft_eps: ε_graft > 0 of AdaGrad grafting (1e-10, our choice).

    References:
        Gupta, Koren & Singer, "Shampoo: Preconditioned stochastic tensor
        optimization", ICML 2018 (Algorithm 1, matrices; Algorithm 2, tensors);
        ``tf.contrib.opt.ShampooOptimizer`` (TensorFlow 1.15); Agarwal, Anil,
        Hazan, Koren & Zhang, arXiv 2002.11803 (grafting); Shi et al.,
        arXiv 2309.06497 (Distributed Shampoo, §3 grafting).
    """

    oracles: ClassVar[Tuple[str, ...]] = ()

    lr: float = 1.0
    eps: float = 1e-4
    update_every: int = 1
    max_matrix_size: int = 768
    graft: str = "none"
    graft_eps: float = 1e-10

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_positive("eps", self.eps)
        check_int("update_every", self.update_every)
        check_int("max_matrix_size", self.max_matrix_size)
        if self.graft not in GRAFTS:
            raise ValueError(f"graft: expected one of {', '.join(GRAFTS)}, got {self.graft!r}")
        check_positive("graft_eps", self.graft_eps)

    def _diagonal(self, size: int) -> bool:
        return size > self.max_matrix_size

    def _zeros(self, m: np.ndarray, axis: int) -> np.ndarray:
        size = m.shape[axis]
        return np.zeros(size) if self._diagonal(size) else np.zeros((size, size))

    @staticmethod
    def _check_fits(grads: Params, state: ShampooState) -> None:
        """ValueError naming grads unless each array fits the statistics made by ``init``."""
        if len(grads) != len(state.left):
            raise ValueError(f"grads: expected {len(state.left)} layers, got {len(grads)}")
        for k, entry in enumerate(grads):
            if set(entry) != set(state.left[k]):
                raise ValueError(f"grads[{k}]: expected keys {sorted(state.left[k])}, got {sorted(entry)}")
            for name, g in entry.items():
                m = as_matrix(g)
                sizes = (state.left[k][name].shape[0],) + tuple(
                    state.right[k][name].shape[:1] if name in state.right[k] else ())
                if m.shape != sizes:
                    raise ValueError(f"grads[{k}][{name!r}]: shape {g.shape} does not fit the "
                                     f"state made by init (expected {sizes} as a matrix)")

    def init(self, params: Params) -> ShampooState:
        """Zero sums (ε I enters at the root), identity roots, zero AdaGrad sums when grafting from AdaGrad."""
        check_tree(params, "params")
        left = [{n: self._zeros(as_matrix(a), 0) for n, a in e.items()} for e in params]
        right = [{n: self._zeros(as_matrix(a), 1) for n, a in e.items() if as_matrix(a).ndim == 2}
                 for e in params]
        return ShampooState(0, np.zeros(num_blocks(params)), left, right,
                            [{n: _identity_like(s) for n, s in e.items()} for e in left],
                            [{n: _identity_like(s) for n, s in e.items()} for e in right],
                            zeros_like(params) if self.graft == "adagrad" else None)

    def _power(self, stat, old_root, m, axis, p, refresh):
        """The power of one statistic: a dense root only on refresh steps, a diagonal one always."""
        size = m.shape[axis]
        if stat.ndim == 2 and not refresh:
            return old_root
        normalizer = 1.0 if (stat.ndim == 1 and m.ndim == 1) else float(size)
        return inverse_root(stat, self.eps, p, normalizer)

    def update(self, grads: Params, state: ShampooState, params: Optional[Params] = None, *,
               curvature=None) -> Tuple[Params, ShampooState]:
        """One Shampoo step; returns ``(updates, new_state)`` with updates = −lr · (graft scale) · P.

        ``params`` and ``curvature`` are accepted and ignored, as by every plain method.
        """
        check_state(state, ShampooState, "Shampoo", grads)
        self._check_fits(grads, state)
        check_shampoo_statistics(state, "state", self._diagonal)  # diagonal exactly where init made one
        check_params(params, grads, False, "Shampoo")
        if (state.graft_sums is None) != (self.graft != "adagrad"):
            raise ValueError(f"state: made by a Shampoo with another graft; call init of this one "
                             f"(graft={self.graft!r})")
        t = state.count + 1
        refresh = t % self.update_every == 0  # released: step mod T = 0
        left, right, left_roots, right_roots, directions = ([{} for _ in grads] for _ in range(5))
        for k, entry in enumerate(grads):
            for name, g in entry.items():
                m = as_matrix(g)
                p = 2 if m.ndim == 1 else 4
                left[k][name] = finite(state.left[k][name] + statistic(m, 0, self._diagonal(m.shape[0])))
                left_roots[k][name] = self._power(left[k][name], state.left_roots[k][name], m, 0, p,
                                                  refresh)
                step = apply_root(left_roots[k][name], m, "left")
                if m.ndim == 2:
                    right[k][name] = finite(state.right[k][name]
                                            + statistic(m, 1, self._diagonal(m.shape[1])))
                    right_roots[k][name] = self._power(right[k][name], state.right_roots[k][name],
                                                       m, 1, p, refresh)
                    step = apply_root(right_roots[k][name], step, "right")
                # the roots are float64; the direction takes the parameters' dtype
                directions[k][name] = step.reshape(g.shape).astype(g.dtype, copy=False)
        scales, graft_sums = self._graft_scales(grads, directions, state.graft_sums)
        blocks = block_indices(grads)
        updates = [{n: -float(self.lr * scales[k]) * d for n, d in e.items()}
                   for k, e in enumerate(directions)]
        sizes = np.array([float(self.lr * scales[k]) for k in blocks])
        return updates, ShampooState(t, sizes, left, right, left_roots, right_roots, graft_sums)

    def _graft_scales(self, grads: Params, directions: Params, graft_sums: Optional[Params]):
        """Per layer: 1 without grafting, else ‖u_l‖ / ‖P_l‖ (0 if P_l = 0); and the new AdaGrad sums."""
        if self.graft == "none":
            return [1.0] * len(grads), None
        if self.graft == "adagrad":
            graft_sums = [{n: graft_sums[k][n] + g * g for n, g in e.items()} for k, e in enumerate(grads)]
            steps = [{n: g / (np.sqrt(graft_sums[k][n]) + self.graft_eps) for n, g in e.items()}
                     for k, e in enumerate(grads)]
        else:
            steps = grads
        scales = []
        for u, d in zip(steps, directions):
            norm_u = np.sqrt(sum(float(np.sum(a * a)) for a in u.values()))
            norm_d = np.sqrt(sum(float(np.sum(a * a)) for a in d.values()))
            scales.append(norm_u / norm_d if norm_d > 0 else 0.0)
        return scales, graft_sums
