"""Elementwise activations y = σ(x), each with σ, σ' and σ''.

Shapes: any; y has the shape of x. The second derivative enters the exact
Hessian through the R-operator (g_y ⊙ σ''(x) ⊙ ẋ) and the layer-wise
curvature through ⟨g_y, σ''(x) ⊙ ẋ²⟩; the Gauss-Newton matrix drops both.
"""
from __future__ import annotations

import numpy as np

from .base import Layer, ratio_min


def sigmoid(x):
    """1 / (1 + e^{−x}) without overflow: exp is only taken of −|x|."""
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


class Activation(Layer):
    """Base for elementwise activations; subclasses give σ, σ', σ''."""

    def value(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def first(self, x, y):
        """σ'(x), given also y = σ(x) (cheaper for tanh and sigmoid)."""
        raise NotImplementedError  # pragma: no cover

    def second(self, x, y):
        """σ''(x), given also y = σ(x)."""
        raise NotImplementedError  # pragma: no cover

    def forward(self, p, x):
        y = self.value(x)
        # σ'(x) is needed by backward, every tangent and the R-op: compute it once here
        return y, (x, y, self.first(x, y))

    def output(self, p, x):
        return self.value(x)

    def backward(self, p, cache, g_y, *, input_grad=True):
        x, y, slope = cache
        return g_y * slope, {}

    def tangent(self, p, cache, x_dot, p_dot):
        if x_dot is None:
            return None
        x, y, slope = cache
        return x_dot * slope

    def backward_tangent(self, p, cache, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        x, y, slope = cache
        # d/dt [g_y σ'(x)] = ġ_y σ'(x) + g_y σ''(x) ẋ
        g_x_dot = g_y_dot * slope
        if x_dot is not None:
            g_x_dot = g_x_dot + g_y * self.second(x, y) * x_dot
        return g_x_dot, {}

    def curvature_term(self, p, cache, x_dot, g_y):
        x, y, _ = cache
        weighted = g_y * self.second(x, y)
        return (x_dot * x_dot).reshape(x_dot.shape[0], -1) @ weighted.ravel()


class ReLU(Activation):
    """σ(x) = max(x, 0); σ' = 1[x > 0] (0 at the kink), σ'' = 0 almost everywhere.

    Kinks: entry i keeps its sign along x + tẋ while |t| < |x_i| / |ẋ_i|.
    """

    smooth = False

    def kink_pattern(self, x):
        return x > 0

    def kink_radius(self, x, x_dot):
        return ratio_min(np.abs(x).ravel(), np.abs(x_dot).ravel())

    def kink_margin(self, x):
        return float(np.min(np.abs(x)))

    def value(self, x):
        return np.maximum(x, 0)

    def first(self, x, y):
        return (x > 0).astype(x.dtype)

    def second(self, x, y):
        return np.zeros_like(x)

    def curvature_term(self, p, cache, x_dot, g_y):
        return np.zeros(x_dot.shape[0], dtype=x_dot.dtype)

    def backward_tangent(self, p, cache, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        x, _, slope = cache
        return g_y_dot * slope, {}


class Tanh(Activation):
    """σ = tanh; σ' = 1 − y², σ'' = −2 y (1 − y²)."""

    def value(self, x):
        return np.tanh(x)

    def first(self, x, y):
        return 1 - y * y

    def second(self, x, y):
        return -2 * y * (1 - y * y)


class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e^{−x}); σ' = y (1 − y), σ'' = y (1 − y)(1 − 2y)."""

    def value(self, x):
        return sigmoid(x)

    def first(self, x, y):
        return y * (1 - y)

    def second(self, x, y):
        return y * (1 - y) * (1 - 2 * y)


class Softplus(Activation):
    """σ(x) = log(1 + eˣ); σ' = sigmoid(x), σ'' = sigmoid(x)(1 − sigmoid(x))."""

    def value(self, x):
        return np.logaddexp(0, x)

    def first(self, x, y):
        return sigmoid(x)

    def second(self, x, y):
        s = sigmoid(x)
        return s * (1 - s)
