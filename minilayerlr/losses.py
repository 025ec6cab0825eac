"""Losses ℓ(y, t) averaged over examples, with exact first and second derivatives.

Each loss gives, on the network output y of shape (N, ...):

* ``forward(y, t) -> (value, cache)``; ``value(y, t)`` the value alone;
* ``backward(cache) -> ∇_y L`` (shape of y);
* ``hvp(cache, y_dot) -> ∇²_y L · ẏ`` for a stack of K tangents (K, *y.shape);
* ``sample_gradient(cache, rng) -> s`` with E[s sᵀ] = ∇²_y L, block diagonal
  over examples: the gradient for targets drawn from the model's own
  predictive distribution, scaled so that no 1/N is left to apply. This is
  what the Monte-Carlo Fisher estimator back-propagates (Martens & Grosse,
  "Optimizing neural networks with Kronecker-factored approximate curvature",
  ICML 2015, section 5).

All three are convex in y, so the Gauss-Newton matrix Jᵀ ∇²L J is positive
semi-definite.
"""
from __future__ import annotations

import numpy as np


def _as_output_dtype(t, y):
    """Real targets ``t`` in the dtype of the outputs ``y``: integer 0/1 labels are exact in
    float32, and int64 or float64 targets would otherwise promote a float32 run to float64."""
    return t.astype(y.dtype, copy=False)


def _softmax(y):
    z = np.exp(y - y.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Loss:
    """Base class: hyper-parameters only. A loss implements the rules below (the module
    docstring gives their math); ``quadratic`` and ``quadratic_gram`` follow from ``hvp``."""

    def check_targets(self, y_shape, t):  # pragma: no cover - interface
        """The targets ``t`` checked against the output shape (ValueError naming ``y``)."""
        raise NotImplementedError

    def forward(self, y, t):  # pragma: no cover - interface
        """(L, cache): the mean loss of the outputs y (N, ...) and what the rules below reuse."""
        raise NotImplementedError

    def value(self, y, t) -> float:
        """L alone: ``forward(y, t)[0]`` without the cache (evaluation, line searches)."""
        return self.forward(y, t)[0]

    def backward(self, cache):  # pragma: no cover - interface
        """∇_y L, shape of y."""
        raise NotImplementedError

    def hvp(self, cache, y_dot):  # pragma: no cover - interface
        """∇²_y L · ẏ for a stack of K tangents (K, *y.shape)."""
        raise NotImplementedError

    def sample_gradient(self, cache, rng):  # pragma: no cover - interface
        """s of the shape of y with E[s sᵀ] = ∇²_y L: the gradient for targets drawn from the
        model's predictive distribution (the Monte-Carlo Fisher's and K-FAC's backward pass)."""
        raise NotImplementedError

    def quadratic(self, cache, y_dot):
        """ẏᵀ ∇²L ẏ for each of the K stacked tangents, shape (K,)."""
        k = y_dot.shape[0]
        return np.einsum("kj,kj->k", y_dot.reshape(k, -1), self.hvp(cache, y_dot).reshape(k, -1))

    def quadratic_gram(self, cache, y_dot):
        """G_lk = ẏ_lᵀ ∇²L ẏ_k for every pair of the K stacked tangents, shape (K, K).

        Its diagonal is ``quadratic``; positive semi-definite since L is convex in y.
        """
        k = y_dot.shape[0]
        return y_dot.reshape(k, -1) @ self.hvp(cache, y_dot).reshape(k, -1).T

    def __repr__(self):
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """L = (1 / 2N) Σ_n ‖y_n − t_n‖²;  ∇L = (y − t)/N;  ∇²L = I/N.

    Shapes: y and t (N, ...), the same.
    """

    def check_targets(self, y_shape, t):
        t = np.asarray(t)
        if t.shape != y_shape:
            raise ValueError(f"y: MeanSquaredError needs targets of the output's shape {y_shape}, got {t.shape}")
        if t.dtype.kind not in "iuf" or not np.all(np.isfinite(t)):
            raise ValueError(f"y: MeanSquaredError targets must be finite real numbers, got dtype {t.dtype}")
        return t

    def forward(self, y, t):
        r = y - _as_output_dtype(t, y)
        n = y.shape[0]
        return float(np.vdot(r, r)) / (2 * n), (r, n)

    def backward(self, cache):
        r, n = cache
        return r / n

    def hvp(self, cache, y_dot):
        r, n = cache
        return y_dot / n

    def sample_gradient(self, cache, rng):
        # Targets t̂ ~ N(y, I): the gradient (y − t̂)/√N has covariance I/N.
        r, n = cache
        return rng.standard_normal(r.shape).astype(r.dtype) / np.sqrt(n)


class SoftmaxCrossEntropy(Loss):
    """L = (1/|M|) Σ_{n∈M} −log softmax(y_n)[t_n] over the examples in the mask M.

    ∇_{y_n} L = w_n (p_n − e_{t_n}),  ∇²_{y_n} L = w_n (diag p_n − p_n p_nᵀ),
    with p_n = softmax(y_n) and w_n = 1[n∈M]/|M|.

    Shapes: y (N, C) logits, t (N,) integer classes in [0, C), mask (N,) bool
    or None (all examples), as in semi-supervised node classification.
    """

    def __init__(self, mask=None):
        if mask is not None:
            mask = np.array(mask)  # a copy: the caller may reuse their array (the loss keeps it)
            if mask.ndim != 1 or mask.dtype != bool:
                raise ValueError(f"mask: expected a 1-D boolean array, got {mask.dtype} {mask.shape}")
            if not mask.any():
                raise ValueError("mask: selects no example")
        self.mask = mask

    def __repr__(self):
        return "SoftmaxCrossEntropy()" if self.mask is None else f"SoftmaxCrossEntropy(mask=<{int(self.mask.sum())} of {self.mask.size}>)"

    def check_targets(self, y_shape, t):
        t = np.asarray(t)
        if len(y_shape) != 2:
            raise ValueError(f"SoftmaxCrossEntropy: expected logits of shape (N, C), got {y_shape}")
        if t.shape != (y_shape[0],) or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"y: expected integer class labels of shape ({y_shape[0]},), got {t.dtype} {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= y_shape[1]):
            raise ValueError(f"y: class labels must lie in [0, {y_shape[1]}), got [{t.min()}, {t.max()}]")
        if self.mask is not None and self.mask.shape != (y_shape[0],):
            raise ValueError(f"mask: has {self.mask.size} entries but the batch has {y_shape[0]} examples")
        return t

    def forward(self, y, t):
        n = y.shape[0]
        if self.mask is None:
            weights = np.full(n, 1.0 / n, dtype=y.dtype)
        else:
            weights = self.mask.astype(y.dtype) / int(self.mask.sum())
        shifted = y - y.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=1))
        nll = log_z - shifted[np.arange(n), t]
        p = np.exp(shifted - log_z[:, None])
        return float(weights @ nll), (p, t, weights)

    def backward(self, cache):
        p, t, weights = cache
        g = p.copy()
        g[np.arange(len(t)), t] -= 1
        return g * weights[:, None]

    def hvp(self, cache, y_dot):
        p, t, weights = cache
        py = np.einsum("nc,knc->kn", p, y_dot)
        return weights[:, None] * p * (y_dot - py[..., None])

    def sample_gradient(self, cache, rng):
        # t̂_n ~ softmax(y_n): E[(p − e_t̂)(p − e_t̂)ᵀ] = diag p − p pᵀ, weight √w_n.
        p, t, weights = cache
        u = rng.random(len(t))
        drawn = np.minimum((u[:, None] > np.cumsum(p, axis=1)).sum(axis=1), p.shape[1] - 1)
        g = p.copy()
        g[np.arange(len(t)), drawn] -= 1
        return g * np.sqrt(weights)[:, None]


class SigmoidCrossEntropy(Loss):
    """L = (1/N) Σ_n Σ_j [softplus(y_nj) − t_nj y_nj], binary cross-entropy on logits.

    Equal to −(1/N) Σ [t log σ(y) + (1 − t) log(1 − σ(y))], computed without
    overflow for any |y|. ∇L = (σ(y) − t)/N, ∇²L = diag σ(y)(1 − σ(y))/N.

    Shapes: y and t (N, ...), the same; t in [0, 1] (pixel intensities).
    """

    def check_targets(self, y_shape, t):
        t = np.asarray(t)
        if t.shape != y_shape:
            raise ValueError(f"y: SigmoidCrossEntropy needs targets of the output's shape {y_shape}, got {t.shape}")
        if t.dtype.kind not in "iuf" or not np.all(np.isfinite(t)) or t.size and (t.min() < 0 or t.max() > 1):
            raise ValueError("y: SigmoidCrossEntropy targets must be finite and lie in [0, 1]")
        return t

    def forward(self, y, t):
        n, t = y.shape[0], _as_output_dtype(t, y)
        # One exp serves both: with z = e^{−|y|}, softplus(y) = max(y, 0) + log1p(z)
        # and σ(y) = 1/(1 + z) for y ≥ 0, z/(1 + z) otherwise; neither overflows.
        # (np.logaddexp(0, y) computes the same softplus about 4x slower.)
        z = np.exp(-np.abs(y))
        return self._mean(y, t, z, n), (np.where(y >= 0, 1, z) / (1 + z), t, n)

    def value(self, y, t):
        return self._mean(y, _as_output_dtype(t, y), np.exp(-np.abs(y)), y.shape[0])

    @staticmethod
    def _mean(y, t, z, n):
        """(1/N) Σ softplus(y) − t y, given z = e^{−|y|}."""
        softplus = np.maximum(y, 0) + np.log1p(z)
        return float((softplus - t * y).sum() / n)

    def backward(self, cache):
        s, t, n = cache
        return (s - t) / n

    def hvp(self, cache, y_dot):
        s, t, n = cache
        return (s * (1 - s) / n) * y_dot

    def quadratic(self, cache, y_dot):
        # ∇²L is diagonal: ẏᵀ ∇²L ẏ = Σ_j h_j ẏ_j², one product with h = σ(1 − σ)/N
        s, t, n = cache
        k = y_dot.shape[0]
        return (y_dot * y_dot).reshape(k, -1) @ (s * (1 - s) / n).ravel()

    def sample_gradient(self, cache, rng):
        # t̂ ~ Bernoulli(σ(y)): E[(σ − t̂)²] = σ(1 − σ).
        s, t, n = cache
        drawn = (rng.random(s.shape) < s).astype(s.dtype)
        return (s - drawn) / np.sqrt(n)
