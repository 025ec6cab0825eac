"""Shampoo: one preconditioner per dimension of each weight matrix (Gupta, Koren & Singer 2018).

For each parameter array, with G_t its gradient at step t viewed as a matrix
(Dense W as (d_in, d_out); Conv2d W reshaped to (O, C·k·k)), Algorithm 1::

    L_t = ε I + Σ_{s ≤ t} G_s G_sᵀ        R_t = ε I + Σ_{s ≤ t} G_sᵀ G_s
    θ ← θ − lr · L_t^{-1/4} G_t R_t^{-1/4}

and for a vector g (the biases) the order-1 case of Algorithm 2, which is
full-matrix AdaGrad::

    H_t = ε I + Σ_{s ≤ t} g_s g_sᵀ          θ ← θ − lr · H_t^{-1/2} g_t

The roots are recomputed every ``update_every`` steps (at steps 1, 1 + T, …)
and reused in between; the sums are accumulated at every step. A dimension
of size ≥ ``max_matrix_size`` gets a diagonal statistic instead
(diag of the sum, elementwise power), as the official code does.

Official implementation followed: ``tf.contrib.opt.ShampooOptimizer``
(tensorflow/contrib/opt/python/training/shampoo.py, TensorFlow 1.x contrib,
removed in 2.0), by the paper's authors: ``learning_rate = 1.0``,
``epsilon = 0.1`` (ε I added to each statistic before its root, the same as
starting the sums at ε I), ``alpha = 0.5`` (power −α/rank: −1/4 for a matrix,
−1/2 for a vector), ``max_matrix_size = 768``, ``gbar_decay = 0`` (no
momentum), ``mat_gbar_decay = mat_gbar_weight = 1`` (plain sums),
roots by SVD with eigenvalues clipped below at ε.

Departures, and why:

* Conv2d kernels (order 4) are reshaped to (O, C·k·k) matrices, as the issue
  asks and later Shampoo implementations do ("merged dimensions"); the
  official code preconditions each of the four axes with power −1/8.
* With ``update_every`` = T > 1 the official code uses the identity as the
  root until step T (its root slots start at I), i.e. plain SGD steps; we
  compute the roots at step 1, so the first steps are Shampoo steps.
* Roots by ``numpy.linalg.eigh`` of the symmetric statistic (the same
  numbers as the SVD of a symmetric PSD matrix). No grafting (Agarwal et
  al. 2020): the official lr = 1.0 trains the tests' MLP, CNN and GCN without
  it, and the comparison tunes lr over a grid, which is what grafting would
  otherwise supply.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import check_params, check_state
from minilayerlr.optim.state_checks import check_shampoo_statistics, check_state_tree
from minilayerlr.tree import Params, block_indices, check_tree, num_blocks
from minilayerlr.validation import check_int, check_positive


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


def inverse_root(stat: np.ndarray, eps: float, p: int) -> np.ndarray:
    """(S + ε I)^{-1/p} by eigendecomposition, eigenvalues clipped below at ε (diagonal S: elementwise)."""
    if stat.ndim == 1:
        return np.maximum(stat + eps, eps) ** (-1.0 / p)
    values, vectors = np.linalg.eigh(stat + eps * np.eye(stat.shape[0]))
    return (vectors * np.maximum(values, eps) ** (-1.0 / p)) @ vectors.T


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
        step_sizes: the learning rate per block at the last step, shape (L,).
        left: Σ G Gᵀ per array (Σ g gᵀ for vectors; a vector when diagonal).
        right: Σ Gᵀ G per matrix-shaped array (absent for vectors).
        left_roots: (left + ε I)^{-1/4} (vectors: ^{-1/2}) from the last root step.
        right_roots: (right + ε I)^{-1/4} from the last root step.
    """

    count: int
    step_sizes: np.ndarray
    left: Params
    right: Params
    left_roots: Params
    right_roots: Params

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless the sums and their roots are finite."""
        for name in ("left", "right", "left_roots", "right_roots"):
            check_state_tree(getattr(self, name), f"{where}.{name}")
        check_shampoo_statistics(self, where)


@dataclass(frozen=True)
class Shampoo:
    """Shampoo (Algorithms 1 and 2) with the official code's defaults (see the module docstring).

    Args:
        lr: learning rate > 0 (official default 1.0).
        eps: ε > 0 of the initial ε I (official default 0.1).
        update_every: T ≥ 1, steps between recomputations of the roots (official ``svd_interval``, 1).
        max_matrix_size: dimensions of this size or more get a diagonal statistic (official 768).

    References:
        Gupta, Koren & Singer, "Shampoo: Preconditioned stochastic tensor
        optimization", ICML 2018 (Algorithm 1, matrices; Algorithm 2, tensors);
        official code ``tf.contrib.opt.ShampooOptimizer`` (TensorFlow 1.x).
    """

    oracles: ClassVar[Tuple[str, ...]] = ()

    lr: float = 1.0
    eps: float = 0.1
    update_every: int = 1
    max_matrix_size: int = 768

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_positive("eps", self.eps)
        check_int("update_every", self.update_every)
        check_int("max_matrix_size", self.max_matrix_size)

    def _diagonal(self, size: int) -> bool:
        return size >= self.max_matrix_size

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
        """Zero sums (ε I enters at the root) and zero roots."""
        check_tree(params, "params")
        left = [{n: self._zeros(as_matrix(a), 0) for n, a in e.items()} for e in params]
        right = [{n: self._zeros(as_matrix(a), 1) for n, a in e.items() if as_matrix(a).ndim == 2}
                 for e in params]
        return ShampooState(0, np.zeros(num_blocks(params)), left, right,
                            [{n: np.zeros_like(s) for n, s in e.items()} for e in left],
                            [{n: np.zeros_like(s) for n, s in e.items()} for e in right])

    def update(self, grads: Params, state: ShampooState, params: Optional[Params] = None, *,
               curvature=None) -> Tuple[Params, ShampooState]:
        """One Shampoo step; returns ``(updates, new_state)`` with updates = −lr · preconditioned G.

        ``params`` and ``curvature`` are accepted and ignored, as by every plain method.
        """
        check_state(state, ShampooState, "Shampoo", grads)
        self._check_fits(grads, state)
        check_shampoo_statistics(state, "state", self._diagonal)  # diagonal exactly where init made one
        check_params(params, grads, False, "Shampoo")
        t = state.count + 1
        refresh = (t - 1) % self.update_every == 0
        left, right, left_roots, right_roots, updates = ([{} for _ in grads] for _ in range(5))
        for k, entry in enumerate(grads):
            for name, g in entry.items():
                m = as_matrix(g)
                left[k][name] = finite(state.left[k][name] + statistic(m, 0, self._diagonal(m.shape[0])))
                p = 2 if m.ndim == 1 else 4
                left_roots[k][name] = (inverse_root(left[k][name], self.eps, p) if refresh
                                       else state.left_roots[k][name])
                step = apply_root(left_roots[k][name], m, "left")
                if m.ndim == 2:
                    right[k][name] = finite(state.right[k][name] + statistic(m, 1, self._diagonal(m.shape[1])))
                    right_roots[k][name] = (inverse_root(right[k][name], self.eps, 4) if refresh
                                            else state.right_roots[k][name])
                    step = apply_root(right_roots[k][name], step, "right")
                updates[k][name] = -self.lr * step.reshape(g.shape)
        sizes = np.full(len(block_indices(grads)), float(self.lr))
        return updates, ShampooState(t, sizes, left, right, left_roots, right_roots)
