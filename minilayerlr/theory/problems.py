"""Closed-form test problems with the same evaluate protocol as networks.

Parameters of a problem on R^n split into blocks of sizes n_1 + … + n_L = n
are a list ``[{"x": x_1}, …, {"x": x_L}]`` (every entry is a block).
``problem.split(x)`` / ``problem.join(params)`` convert from and to the flat
vector. ``problem.evaluate(params)`` returns a :class:`DenseEvaluation` with
``.loss``, ``.grads``, ``.hvp(v)``, ``.layer_curvature(d, kind=...)``,
``.block_hessian(i)`` and ``.hessian()``, exactly as a network evaluation, so
every optimizer runs unchanged on these problems.

Problems:
    BlockQuadratic:      f(x) = ½ xᵀAx − bᵀx,  A symmetric positive definite.
    LogisticRegression:  f(w) = (1/n) Σ_i log(1 + exp(−y_i x_iᵀw)) + ½γ‖w‖²,
                         μ = γ strongly convex and not quadratic.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import List, Optional, Sequence, Union

import numpy as np
import scipy.linalg
import scipy.special

from minilayerlr.curvature import EXACT_KINDS
from minilayerlr.validation import as_generator

from minilayerlr.theory.bounds import (as_real_array, block_smoothness, check_block_sizes, check_real, check_spd,
                                       contraction_bound, coupling_constant,
                                       strong_convexity)
from minilayerlr.theory.sharp import block_jacobi_rate, invariant_contraction_bound
from minilayerlr.theory.worst_case import worst_one_step_ratio

Params = List[dict]


class BlockProblem:
    """Shared block bookkeeping: split/join between flat vectors and params."""

    block_sizes: tuple
    offsets: np.ndarray

    def _set_blocks(self, block_sizes: Sequence[int], dim: int) -> None:
        if isinstance(block_sizes, (Mapping, set, frozenset)):  # its keys, or no order: not sizes
            raise ValueError(f"block_sizes: expected a sequence of positive ints (a list or "
                             f"tuple), got a {type(block_sizes).__name__}")
        self.block_sizes = check_block_sizes(block_sizes, dim)
        self.offsets = np.concatenate([[0], np.cumsum(self.block_sizes)])

    @property
    def dim(self) -> int:
        return int(self.offsets[-1])

    @property
    def num_blocks(self) -> int:
        return len(self.block_sizes)

    def block_slice(self, i: int) -> slice:
        """Coordinates of block i in the flat vector."""
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.num_blocks:
            raise ValueError(f"i: expected a block index in [0, {self.num_blocks}), got {i}")
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def split(self, x: np.ndarray, name: str = "x") -> Params:
        """Flat vector of shape (n,) → params ``[{"x": x_1}, …, {"x": x_L}]`` (copies)."""
        x = as_real_array(x, name)
        if x.shape != (self.dim,):
            raise ValueError(f"{name}: expected shape ({self.dim},), got {x.shape}")
        return [{"x": x[self.block_slice(i)].copy()} for i in range(self.num_blocks)]

    def join(self, params: Union[Params, np.ndarray], name: str = "params") -> np.ndarray:
        """Params → flat vector of shape (n,) (a flat vector is returned as a copy).

        Raises ValueError naming ``name`` for a wrong structure, shape or dtype, or NaN/Inf.
        """
        if isinstance(params, np.ndarray):
            if params.shape != (self.dim,):
                raise ValueError(f"{name}: expected shape ({self.dim},), got {params.shape}")
            flat = as_real_array(params, name)
            if not np.all(np.isfinite(flat)):
                raise ValueError(f"{name}: contains NaN or Inf")
            return flat
        if not isinstance(params, (list, tuple)) or len(params) != self.num_blocks:
            raise ValueError(f"{name}: expected a list of {self.num_blocks} dicts {{'x': x_l}}")
        parts = []
        for i, entry in enumerate(params):
            if not isinstance(entry, dict) or set(entry) != {"x"} or \
                    np.shape(entry["x"]) != (self.block_sizes[i],):
                raise ValueError(f"{name}[{i}]: expected {{'x': array of shape "
                                 f"({self.block_sizes[i]},)}}")
            parts.append(as_real_array(entry["x"], f"{name}[{i}]['x']"))
        flat = np.concatenate(parts)
        if not np.all(np.isfinite(flat)):
            raise ValueError(f"{name}: contains NaN or Inf")
        return flat

    def init(self, seed: Optional[int] = 0, scale: float = 1.0) -> Params:
        """Random starting params, x ~ N(0, scale² I) from ``default_rng(seed)``."""
        scale = check_real(scale, "scale")
        if not np.isfinite(scale):
            raise ValueError(f"scale: expected a finite number, got {scale!r}")
        rng = as_generator("seed", seed, allow_none=True)
        return self.split(scale * rng.standard_normal(self.dim))

    def evaluate(self, params: Union[Params, np.ndarray]) -> "DenseEvaluation":
        """Loss, gradient and curvature at ``params`` (params or a flat vector)."""
        x = self.join(params)
        return DenseEvaluation(self, x, self.loss(x), self.gradient(x), self.hessian_at(x))

    def optimal_value(self) -> float:
        """f* = f(x*)."""
        return float(self.loss(self.join(self.minimizer())))


class DenseEvaluation:
    """One evaluation of a closed-form problem, network-style protocol.

    Attributes:
        loss: f(x), float.
        grads: ∇f(x) as params (list of ``{"x": g_l}``).
    """

    def __init__(self, problem: BlockProblem, x, loss, gradient, hessian):
        self.problem, self.x = problem, x
        self.loss = float(loss)
        self.gradient = gradient
        self._hessian = hessian
        self.grads = problem.split(gradient)

    def hessian(self) -> np.ndarray:
        """∇²f(x), shape (n, n) (a copy)."""
        return self._hessian.copy()

    def block_hessian(self, i: int) -> np.ndarray:
        """H_ii, shape (n_i, n_i)."""
        s = self.problem.block_slice(i)
        return self._hessian[s, s].copy()

    def hvp(self, v: Union[Params, np.ndarray]) -> Params:
        """H v as params."""
        return self.problem.split(self._hessian @ self.problem.join(v, "v"))

    def layer_curvature(self, d: Union[Params, np.ndarray], kind: str = "hessian",
                        seed: Optional[int] = None, coupling: bool = False, **ignored):
        """q_l = d_lᵀ H_ll d_l for every block, shape (L,).

        Args:
            d: direction (params or flat vector).
            kind: "hessian" or "ggn" (identical here: both problems are convex
                with exact Hessian = Gauss-Newton form); "sign_hvp" gives the
                random-sign estimator q̂_l = ε_l d_lᵀ(Hv)_l with v = Σ ε_l d_l,
                ε from ``default_rng(seed)`` (unbiased: E ε_l ε_k = δ_lk).
            seed: used by "sign_hvp" only.
            coupling: exact kinds only: also return C_lk = d_lᵀ H_lk d_k, shape (L, L)
                (the Gauss-Newton Gram a network returns; here H is that matrix), as (q, C).
        """
        dv = self.problem.join(d, "d")
        blocks = [self.problem.block_slice(i) for i in range(self.problem.num_blocks)]
        if kind in EXACT_KINDS:  # here H is its own Gauss-Newton matrix
            if coupling:
                gram = np.array([[dv[s] @ self._hessian[s, r] @ dv[r] for r in blocks]
                                 for s in blocks])
                return np.diag(gram).copy(), gram
            return np.array([dv[s] @ self._hessian[s, s] @ dv[s] for s in blocks])
        if kind == "sign_hvp":
            eps = np.random.default_rng(seed).choice([-1.0, 1.0], size=len(blocks))
            v = np.concatenate([e * dv[s] for e, s in zip(eps, blocks)])
            hv = self._hessian @ v
            return np.array([e * dv[s] @ hv[s] for e, s in zip(eps, blocks)])
        if coupling:
            raise ValueError(f"coupling: only the exact kinds give the Gram, got kind {kind!r}")
        raise ValueError(f"kind: expected 'hessian', 'ggn' or 'sign_hvp' for a closed-form "
                         f"problem, got {kind!r}")


class BlockQuadratic(BlockProblem):
    """f(x) = ½ xᵀAx − bᵀx with A ≻ 0, split into blocks (docs/theory.md §1).

    Args:
        A: symmetric positive definite, shape (n, n).
        b: shape (n,).
        block_sizes: positive ints n_1, …, n_L summing to n.

    Raises:
        ValueError: naming ``A``, ``b`` or ``block_sizes`` when invalid.

    Example (blocks A_11 = 2I and A_22 = 1, uncoupled): q_l = d_lᵀA_ll d_l, and
    one GDLS step with η = 1 is an exact line search per block, which lands on
    x* = A⁻¹b here because each A_ll is a multiple of the identity:

    >>> import numpy as np
    >>> from minilayerlr.optim import GDLS, apply_updates
    >>> quad = BlockQuadratic(np.diag([2.0, 2.0, 1.0]), np.array([2.0, 4.0, 3.0]), [2, 1])
    >>> x0 = quad.split(np.zeros(3))
    >>> ev = quad.evaluate(x0)
    >>> ev.layer_curvature(quad.split(np.ones(3)))
    array([4., 1.])
    >>> opt = GDLS(scale=1.0)     # with its line search: the loss oracle too
    >>> updates, _ = opt.update(ev.grads, opt.init(x0), x0, curvature=ev.layer_curvature,
    ...                         loss=lambda p: quad.evaluate(p).loss)
    >>> quad.join(apply_updates(x0, updates))
    array([1., 2., 3.])
    """

    def __init__(self, A, b, block_sizes: Sequence[int]):
        self.A = check_spd(A, "A")
        b = as_real_array(b, "b")
        if b.shape != (self.A.shape[0],) or not np.all(np.isfinite(b)):
            raise ValueError(f"b: expected a finite vector of shape ({self.A.shape[0]},), "
                             f"got shape {b.shape}")
        self.b = b.copy()
        self._set_blocks(block_sizes, self.A.shape[0])

    def loss(self, x: np.ndarray) -> float:
        return float(0.5 * x @ self.A @ x - self.b @ x)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        return self.A @ x - self.b

    def hessian_at(self, x: np.ndarray) -> np.ndarray:
        return self.A

    def minimizer(self) -> Params:
        """x* = A⁻¹b, as params."""
        return self.split(scipy.linalg.cho_solve(scipy.linalg.cho_factor(self.A), self.b))

    def strong_convexity(self) -> float:
        """μ = λ_min(A)."""
        return strong_convexity(self.A)

    def block_smoothness(self) -> float:
        """M = max_l λ_max(A_ll)."""
        return block_smoothness(self.A, self.block_sizes)

    def coupling_constant(self) -> float:
        """c = λ_max(B^{-1/2} A B^{-1/2}), B = blockdiag(A_ll)."""
        return coupling_constant(self.A, self.block_sizes)

    def contraction_bound(self, scale: float) -> float:
        """Theorem 1: 1 − 2η(1 − ηc/2) μ/M, for 0 < η < 2/c."""
        return contraction_bound(self.A, self.block_sizes, scale)

    def invariant_contraction_bound(self, scale: float) -> float:
        """Theorem 1′: 1 − 2η(1 − ηc/2)·max(μ_D, μ_W) ≤ ``contraction_bound``, for 0 < η < 2/c."""
        return invariant_contraction_bound(self.A, self.block_sizes, scale)

    def block_jacobi_rate(self, scale: float) -> float:
        """Theorem 3 (every A_ll = a_l·I): the exact worst ratio max((1 − ημ_B)², (1 − ηc)²)."""
        return block_jacobi_rate(self.A, self.block_sizes, scale)

    def worst_one_step_ratio(self, scale: float, restarts: int = 6, seed: int = 0) -> float:
        """The largest (f(x⁺) − f*)/(f(x) − f*) found by optimising over x (attained)."""
        return worst_one_step_ratio(self.A, self.block_sizes, scale, restarts, seed)[0]


class LogisticRegression(BlockProblem):
    """L2-regularised logistic regression, a strongly convex non-quadratic f.

    f(w) = (1/n) Σ_i log(1 + exp(−y_i x_iᵀw)) + ½ γ ‖w‖²
    ∇f   = −(1/n) Xᵀ(y ⊙ σ(−y ⊙ Xw)) + γ w
    ∇²f  = (1/n) Xᵀ diag(σ(z)(1 − σ(z))) X + γ I,     z = Xw

    μ = γ and the smoothness Λ = λ_max(XᵀX)/(4n) + γ (σ(1−σ) ≤ ¼) bound the
    Hessian's spectrum everywhere (docs/theory.md, Theorem 4).

    Args:
        X: features, shape (n_samples, dim).
        y: labels in {−1, +1}, shape (n_samples,).
        reg: γ > 0.
        block_sizes: positive ints summing to dim.
    """

    def __init__(self, X, y, reg: float, block_sizes: Sequence[int]):
        X, y, reg = as_real_array(X, "X"), as_real_array(y, "y"), check_real(reg, "reg")
        if X.ndim != 2 or 0 in X.shape or not np.all(np.isfinite(X)):
            raise ValueError(f"X: expected a finite non-empty 2-D array, got shape {X.shape}")
        if y.shape != (X.shape[0],) or not np.all(np.abs(y) == 1):
            raise ValueError(f"y: expected labels in {{-1, +1}} of shape ({X.shape[0]},)")
        if not (np.isfinite(reg) and reg > 0):
            raise ValueError(f"reg: expected a finite number > 0, got {reg!r}")
        self.X, self.y, self.reg = X.copy(), y.copy(), float(reg)
        self._set_blocks(block_sizes, X.shape[1])

    def loss(self, w: np.ndarray) -> float:
        margins = self.y * (self.X @ w)
        return float(np.mean(np.logaddexp(0.0, -margins)) + 0.5 * self.reg * w @ w)

    def gradient(self, w: np.ndarray) -> np.ndarray:
        margins = self.y * (self.X @ w)
        # σ(−m) = 1/(1 + e^m), computed stably by scipy's expit.
        return -self.X.T @ (self.y * scipy.special.expit(-margins)) / len(self.y) + self.reg * w

    def hessian_at(self, w: np.ndarray) -> np.ndarray:
        p = scipy.special.expit(self.X @ w)
        weights = p * (1 - p) / len(self.y)
        return (self.X.T * weights) @ self.X + self.reg * np.eye(self.dim)

    def strong_convexity(self) -> float:
        """μ = γ."""
        return self.reg

    def smoothness(self) -> float:
        """Λ = λ_max(XᵀX)/(4 n_samples) + γ ≥ λ_max(∇²f(w)) for every w."""
        return float(np.linalg.eigvalsh(self.X.T @ self.X)[-1] / (4 * len(self.y)) + self.reg)

    def minimizer(self, tol: float = 1e-13, max_iter: int = 100) -> Params:
        """w* by Newton's method with backtracking (f is strongly convex), as params."""
        w = np.zeros(self.dim)
        for _ in range(max_iter):
            g = self.gradient(w)
            if np.linalg.norm(g) <= tol:
                break
            step = np.linalg.solve(self.hessian_at(w), g)
            t, f0, decrement = 1.0, self.loss(w), g @ step
            # Armijo backtracking far from w*; near w* the decrease gᵀH⁻¹g is below the
            # roundoff of f, where the pure Newton step is right (quadratic convergence)
            while decrement > 1e-12 * (1 + abs(f0)) and t > 1e-10 and \
                    self.loss(w - t * step) > f0 - 0.25 * t * decrement:
                t *= 0.5
            w = w - t * step
        return self.split(w)

