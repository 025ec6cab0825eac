"""2-D convolution (cross-correlation, the PyTorch convention), NCHW.

y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x̃[n, c, s·i + u, s·j + v]

with x̃ the input zero-padded by ``padding`` on each side and s the stride.
The patches x̃[n, :, s·i:s·i+k, s·j:s·j+k] are a strided *view* of x̃
(``sliding_window_view``); ``im2col`` copies them once into a contiguous
(N, H_out, W_out, C, k, k) array. ``forward`` keeps that copy in its cache, so
``backward``, ``tangent`` and ``backward_tangent`` contract it with ``tensordot``
(a single matrix product, no further copy) instead of re-gathering the patches
each time. The transpose (col2im) loops over the k² kernel offsets only, never
over pixels or examples.

Shapes: x (N, C, H, W), W (O, C, k, k), b (O,), y (N, O, H_out, W_out) with
H_out = (H + 2·padding − k) // stride + 1.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..validation import check_int
from .base import Layer, add, check_init, draw_weights, with_ones


def patches(x, k, stride, padding):
    """Strided view of the k×k patches, shape (B, C, H_out, W_out, k, k)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]


def im2col(x, k, stride, padding):
    """The patches as a contiguous array, shape (B, H_out, W_out, C, k, k).

    Patch axes last, so that ``tensordot`` over (C, k, k) or over (B, H_out,
    W_out) reshapes it to a matrix for free (a view, not a copy).
    """
    return np.ascontiguousarray(np.moveaxis(patches(x, k, stride, padding), 1, 3))


def col2im(cols, input_shape, k, stride, padding):
    """Adjoint of :func:`patches`: add patch values back onto the input grid.

    Args:
        cols: (B, H_out, W_out, C, k, k) values per patch entry.
        input_shape: (B, C, H, W) of the unpadded input.
    Returns:
        (B, C, H, W) array.
    """
    B, C, H, W = input_shape
    _, h_out, w_out = cols.shape[:3]
    out = np.zeros((B, C, H + 2 * padding, W + 2 * padding), dtype=cols.dtype)
    cols = np.moveaxis(cols, 3, 1)  # (B, C, H_out, W_out, k, k)
    for u in range(k):
        for v in range(k):
            out[:, :, u:u + stride * (h_out - 1) + 1:stride,
                v:v + stride * (w_out - 1) + 1:stride] += cols[..., u, v]
    return out[:, :, padding:padding + H, padding:padding + W]


def conv_factors(cols, delta):
    """KFC's A = (1/N) Σ_{n,t} p̃ p̃ᵀ and G = (1/|T|) Σ_{n,t} δ δᵀ (``minilayerlr.kronecker``).

    Args:
        cols: patches (N, H_out, W_out, C, k, k), the layer's cached im2col.
        delta: δ (N, O, H_out, W_out), sampled output gradients.
    """
    n, h, w = cols.shape[:3]
    p = with_ones(cols.reshape(n * h * w, -1))
    d = np.moveaxis(delta, 1, -1).reshape(n * h * w, -1)
    return {"A": p.T @ p / n, "G": d.T @ d / (h * w)}


class Conv2d(Layer):
    """Convolution y = W ⋆ x + b (cross-correlation), stride and zero padding.

    Initialisation: He normal (fan_in = C·k²) by default, ``init="glorot"`` for
    Glorot uniform; b = 0.
    """

    param_names = ("W", "b")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, init: str = "he"):
        self.in_channels = check_int("in_channels", in_channels)
        self.out_channels = check_int("out_channels", out_channels)
        self.kernel_size = check_int("kernel_size", kernel_size)
        self.stride = check_int("stride", stride)
        self.padding = check_int("padding", padding, minimum=0)
        self.init_scheme = check_init(init)

    def param_shapes(self):
        k, c, o = self.kernel_size, self.in_channels, self.out_channels
        return {"W": (o, c, k, k), "b": (o,)}

    def init(self, rng, dtype=np.float64):
        k, c, o = self.kernel_size, self.in_channels, self.out_channels
        W = draw_weights(rng, (o, c, k, k), c * k * k, o * k * k, self.init_scheme, dtype)
        return {"W": W, "b": np.zeros(o, dtype=dtype)}

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(
                f"Conv2d: expected inputs of shape (N, {self.in_channels}, H, W), got (N, *{input_shape})"
            )
        _, H, W = input_shape
        k, s, pad = self.kernel_size, self.stride, self.padding
        if H + 2 * pad < k or W + 2 * pad < k:
            raise ValueError(f"Conv2d: kernel_size {k} is larger than the padded input {H}x{W}")
        return (self.out_channels, (H + 2 * pad - k) // s + 1, (W + 2 * pad - k) // s + 1)

    # -- helpers on stacked inputs -------------------------------------------------
    def _patches(self, x):
        return patches(x, self.kernel_size, self.stride, self.padding)

    def _im2col(self, x):
        return im2col(x, self.kernel_size, self.stride, self.padding)

    def _correlate(self, cols, W):
        """Σ_{c,u,v} W[o,c,u,v] · patch: (B,h,w,C,k,k), (O,C,k,k) -> (B,O,h,w)."""
        return np.moveaxis(np.tensordot(cols, W, axes=([3, 4, 5], [1, 2, 3])), 3, 1)

    def _transpose(self, g_y, W, x_shape):
        """Adjoint of the correlation in x: (B,O,h,w), (O,C,k,k) -> (B,C,H,W); H, W from x_shape.

        col2im with the channels and kernel offsets in front, (C, k, k, B, h, w): each of
        the k² additions then reads and writes whole (h, w) planes. The result is a
        transposed view of a (C, B, H, W) array.
        """
        k, s, pad = self.kernel_size, self.stride, self.padding
        (B, O, h, w), (_, C, H, Wd) = g_y.shape, x_shape
        cols = np.tensordot(W, g_y, axes=([0], [1]))  # (C, k, k, B, h, w)
        out = np.zeros((C, B, H + 2 * pad, Wd + 2 * pad), dtype=cols.dtype)
        for u in range(k):
            for v in range(k):
                out[:, :, u:u + s * (h - 1) + 1:s, v:v + s * (w - 1) + 1:s] += cols[:, u, v]
        return out[:, :, pad:pad + H, pad:pad + Wd].transpose(1, 0, 2, 3)

    def _on_stack(self, fn, z, *args):
        """Apply a per-example map to a stack (K, B, ...) by folding K into B."""
        out = fn(z.reshape((-1,) + z.shape[2:]), *args)
        return out.reshape(z.shape[:2] + out.shape[1:])

    # -- the five rules --------------------------------------------------------------
    def block_label(self, index):
        return f"conv{index} {self.in_channels}→{self.out_channels}"

    def kronecker_factors(self, p, cache, delta):
        return conv_factors(cache[1], delta)

    def forward(self, p, x):
        cols = self._im2col(x)  # (N, h, w, C, k, k), kept for the other four rules
        y = np.ascontiguousarray(self._correlate(cols, p["W"]) + p["b"][:, None, None])
        return y, (x, cols)

    def output(self, p, x):
        # patch axes (C, k, k) before the pixels: one matrix product per example, W (O, C·k²)
        # times patches (C·k², h·w), with no transposes of the result
        n, o = x.shape[0], self.out_channels
        view = self._patches(x)  # (N, C, h, w, k, k)
        h, w = view.shape[2:4]
        cols = np.ascontiguousarray(view.transpose(0, 1, 4, 5, 2, 3)).reshape(n, -1, h * w)
        y = np.matmul(p["W"].reshape(o, -1), cols).reshape(n, o, h, w)
        return y + p["b"][:, None, None]

    def backward(self, p, cache, g_y, *, input_grad=True):
        x, cols = cache
        g_W = np.tensordot(g_y, cols, axes=([0, 2, 3], [0, 1, 2]))  # (O, C, k, k)
        g_x = self._transpose(g_y, p["W"], x.shape) if input_grad else None
        return g_x, {"W": g_W, "b": g_y.sum(axis=(0, 2, 3))}

    def backward_input(self, p, cache, g_y):
        return self._transpose(g_y, p["W"], cache[0].shape)

    def tangent(self, p, cache, x_dot, p_dot):
        x, cols = cache
        y_dot = None
        if x_dot is not None:
            y_dot = self._on_stack(lambda z: self._correlate(self._im2col(z), p["W"]), x_dot)
        if p_dot is not None:
            # patches (N,h,w,C,k,k) · Ẇ (K,O,C,k,k) -> (N,h,w,K,O) -> (K,N,O,h,w)
            from_params = np.tensordot(cols, p_dot["W"], axes=([3, 4, 5], [2, 3, 4]))
            from_params = from_params.transpose(3, 0, 4, 1, 2) + p_dot["b"][:, None, :, None, None]
            y_dot = add(y_dot, from_params)
        return y_dot

    def backward_tangent(self, p, cache, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        x, cols = cache
        # g_W = Σ g_y ⊗ patches(x): product rule in g_y and in x
        g_W_dot = np.tensordot(g_y_dot, cols, axes=([1, 3, 4], [0, 1, 2]))  # (K,O,C,k,k)
        if x_dot is not None:
            dot_patches = self._on_stack(self._patches, x_dot)  # (K,N,C,h,w,k,k)
            g_W_dot = g_W_dot + np.einsum("nohw,knchwuv->kocuv", g_y, dot_patches, optimize=True)
        g_x_dot = None
        if input_grad:
            g_x_dot = self._on_stack(self._transpose, g_y_dot, p["W"], x.shape)
            if p_dot is not None:
                cols = np.tensordot(g_y, p_dot["W"], axes=([1], [1]))  # (N,h,w,K,C,k,k)
                cols = np.moveaxis(cols, 3, 0)
                K = cols.shape[0]
                folded = col2im(cols.reshape((-1,) + cols.shape[2:]), (K * x.shape[0],) + x.shape[1:],
                                self.kernel_size, self.stride, self.padding)
                g_x_dot = g_x_dot + folded.reshape((K,) + x.shape)
        return g_x_dot, {"W": g_W_dot, "b": g_y_dot.sum(axis=(1, 3, 4))}
