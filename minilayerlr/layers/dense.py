"""Fully connected layer y = x W + b."""
from __future__ import annotations

import numpy as np

from ..validation import check_int
from .base import Layer, add, check_init, draw_weights, with_ones


def dense_factors(inputs, delta):
    """K-FAC's A = ãᵀã / N and G = δᵀδ (``minilayerlr.kronecker``).

    Args:
        inputs: a (N, d_in), the layer's input (ÂX for GraphConv).
        delta: δ (N, d_out), sampled output gradients.
    """
    a = with_ones(inputs)
    return {"A": a.T @ a / inputs.shape[0], "G": delta.T @ delta}


class Dense(Layer):
    """Affine map y = x W + b.

    Shapes: x (N, in_features), W (in_features, out_features), b (out_features,),
    y (N, out_features). Initialisation: Glorot uniform by default (``init="he"``
    for He normal); b = 0.
    """

    param_names = ("W", "b")

    def __init__(self, in_features: int, out_features: int, init: str = "glorot"):
        self.in_features = check_int("in_features", in_features)
        self.out_features = check_int("out_features", out_features)
        self.init_scheme = check_init(init)

    def param_shapes(self):
        return {"W": (self.in_features, self.out_features), "b": (self.out_features,)}

    def init(self, rng, dtype=np.float64):
        W = draw_weights(rng, (self.in_features, self.out_features),
                         self.in_features, self.out_features, self.init_scheme, dtype)
        return {"W": W, "b": np.zeros(self.out_features, dtype=dtype)}

    def output_shape(self, input_shape):
        if input_shape != (self.in_features,):
            raise ValueError(f"{type(self).__name__}: expected inputs of shape "
                             f"(N, {self.in_features}), got (N, *{input_shape})")
        return (self.out_features,)

    def block_label(self, index):
        return f"dense{index} {self.in_features}→{self.out_features}"

    def kronecker_factors(self, p, x, delta):
        return dense_factors(x, delta)

    def forward(self, p, x):
        return x @ p["W"] + p["b"], x

    def backward(self, p, x, g_y, *, input_grad=True):
        # g_W = xᵀ g_y, g_b = Σ_n g_y[n], g_x = g_y Wᵀ
        grads = {"W": x.T @ g_y, "b": g_y.sum(axis=0)}
        return (g_y @ p["W"].T if input_grad else None), grads

    def backward_input(self, p, x, g_y):
        return g_y @ p["W"].T

    def tangent(self, p, x, x_dot, p_dot):
        y_dot = None
        if x_dot is not None:
            # ẋ W for K stacked tangents as one (K·N, in) @ (in, out) matrix product
            y_dot = (x_dot.reshape(-1, x_dot.shape[-1]) @ p["W"]).reshape(x_dot.shape[:-1] + (-1,))
        if p_dot is not None:
            # x (N, in) @ Ẇ (K, in, out) broadcasts to (K, N, out)
            y_dot = add(y_dot, x @ p_dot["W"] + p_dot["b"][:, None, :])
        return y_dot

    def extend_tangent_stack(self, p, x, stack, direction):
        # Both products write straight into one (K+1, N, out) array: no concatenation copy.
        k = 0 if stack is None else stack.shape[0]
        out = np.empty((k + 1, x.shape[0], self.out_features), dtype=x.dtype)
        if stack is not None:
            np.matmul(stack.reshape(-1, stack.shape[-1]), p["W"], out=out[:k].reshape(-1, self.out_features))
        np.matmul(x, direction["W"], out=out[k])
        out[k] += direction["b"]
        return out

    def backward_tangent(self, p, x, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        # Differentiate g_x = g_y Wᵀ and g_W = xᵀ g_y with the product rule.
        g_W_dot = np.swapaxes(x, -1, -2) @ g_y_dot
        if x_dot is not None:
            g_W_dot = g_W_dot + np.swapaxes(x_dot, -1, -2) @ g_y
        g_x_dot = None
        if input_grad:
            g_x_dot = g_y_dot @ p["W"].T
            if p_dot is not None:
                g_x_dot = g_x_dot + g_y @ np.swapaxes(p_dot["W"], -1, -2)
        return g_x_dot, {"W": g_W_dot, "b": g_y_dot.sum(axis=1)}
