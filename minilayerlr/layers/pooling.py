"""Pooling over non-overlapping k×k windows (stride k) and Flatten.

Rows and columns that do not fill a whole window are dropped, as in PyTorch
(floor mode). MaxPool2d is piecewise linear: its Jacobian is the 0/1 selection
of the window maximum (the first one on ties), fixed by the primal input, so
tangents and the R-operator reuse the selection found in ``forward``.

Shapes: x (N, C, H, W) -> y (N, C, H // k, W // k).
"""
from __future__ import annotations

import functools

import numpy as np

from ..validation import check_int
from .base import Layer, ratio_min


def windows(x, k):
    """(B, C, H, W) -> (B, C, H//k, W//k, k·k), a copy of the cropped windows."""
    B, C, H, W = x.shape
    h, w = H // k, W // k
    x = x[:, :, :h * k, :w * k].reshape(B, C, h, k, w, k)
    return x.transpose(0, 1, 2, 4, 3, 5).reshape(B, C, h, w, k * k)


def window_entries(x, k):
    """The k·k strided views x[:, :, u::k, v::k] (cropped to whole windows), u-major: entry j = u·k + v."""
    h, w = x.shape[2] // k, x.shape[3] // k
    return [x[:, :, u:h * k:k, v:w * k:k] for u in range(k) for v in range(k)]


def unwindows(win, input_shape, k):
    """Adjoint of :func:`windows`: (B, C, h, w, k·k) -> (B, C, H, W), zeros in the crop."""
    B, C, H, W = input_shape
    _, _, h, w, _ = win.shape
    grid = win.reshape(B, C, h, w, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(B, C, h * k, w * k)
    if (h * k, w * k) == (H, W):
        return grid
    out = np.zeros(input_shape, dtype=win.dtype)
    out[:, :, :h * k, :w * k] = grid
    return out


class _Pool2d(Layer):
    def __init__(self, kernel_size: int):
        self.kernel_size = check_int("kernel_size", kernel_size)

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__}: expected inputs of shape (N, C, H, W), got (N, *{input_shape})")
        C, H, W = input_shape
        k = self.kernel_size
        if H < k or W < k:
            raise ValueError(f"{type(self).__name__}: kernel_size {k} is larger than the input {H}x{W}")
        return (C, H // k, W // k)

    def _select(self, win):  # pragma: no cover - interface
        """Fixed weights of each window entry in the output, shape of ``win``."""
        raise NotImplementedError

    def forward(self, p, x):
        win = windows(x, self.kernel_size)
        weights = self._select(win)
        return np.einsum("bchwj,bchwj->bchw", win, weights), (x.shape, weights)

    def backward(self, p, cache, g_y, *, input_grad=True):
        shape, weights = cache
        return unwindows(weights * g_y[..., None], shape, self.kernel_size), {}

    def tangent(self, p, cache, x_dot, p_dot):
        if x_dot is None:
            return None
        shape, weights = cache
        win = windows(x_dot.reshape((-1,) + shape[1:]), self.kernel_size)
        win = win.reshape(x_dot.shape[:2] + win.shape[1:])
        return np.einsum("kbchwj,bchwj->kbchw", win, weights)

    def backward_tangent(self, p, cache, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        # Linear in x once the selection is fixed: the R-op is backward of ġ_y.
        shape, weights = cache
        K = g_y_dot.shape[0]
        win = weights * g_y_dot[..., None]
        g_x_dot = unwindows(win.reshape((-1,) + win.shape[2:]), (K * shape[0],) + shape[1:], self.kernel_size)
        return g_x_dot.reshape((K,) + shape), {}


class MaxPool2d(_Pool2d):
    """y = max over each k×k window (stride k).

    Kinks: a window's maximum x_m stays the maximum along x + tẋ while
    |t| < (x_m − x_j) / |ẋ_m − ẋ_j| for every other entry j; entries that move
    together (ẋ_j = ẋ_m, e.g. two ReLU zeros) never swap, so their ties are harmless.
    """

    smooth = False

    def kink_pattern(self, x):
        return np.argmax(windows(x, self.kernel_size), axis=-1)

    def kink_radius(self, x, x_dot):
        win, win_dot = windows(x, self.kernel_size), windows(x_dot, self.kernel_size)
        top = np.argmax(win, axis=-1)[..., None]
        gap = np.take_along_axis(win, top, axis=-1) - win
        rate = np.abs(np.take_along_axis(win_dot, top, axis=-1) - win_dot)
        return ratio_min(gap.ravel(), rate.ravel())

    def kink_margin(self, x):
        """min over windows of x_max − x_j for the other entries j, exact ties excluded
        (they come from ReLU zeros, which move together)."""
        win = windows(x, self.kernel_size)
        gap = win.max(axis=-1, keepdims=True) - win
        gap = gap[gap > 0]
        return float(gap.min()) if gap.size else float("inf")

    def _select(self, win):
        first_max = win.argmax(axis=-1)
        return (np.arange(win.shape[-1]) == first_max[..., None]).astype(win.dtype)

    def forward(self, p, x):
        # the same y and 0/1 selection as the generic rule (first maximum on ties), from the
        # k² strided views instead of a transposed copy of the windows and an argmax over it
        entries = window_entries(x, self.kernel_size)
        y = functools.reduce(np.maximum, entries)
        weights = np.empty(y.shape + (len(entries),), dtype=x.dtype)
        taken = np.zeros(y.shape, dtype=bool)
        for j, entry in enumerate(entries):
            first = (entry == y) & ~taken
            weights[..., j] = first
            taken |= first
        return y, (x.shape, weights)

    def output(self, p, x):
        return functools.reduce(np.maximum, window_entries(x, self.kernel_size))


class AvgPool2d(_Pool2d):
    """y = mean over each k×k window (stride k)."""

    def _select(self, win):
        return np.full(win.shape, 1.0 / win.shape[-1], dtype=win.dtype)


class Flatten(Layer):
    """(N, d_1, ..., d_m) -> (N, d_1·…·d_m), C order."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, p, x):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, p, shape, g_y, *, input_grad=True):
        return g_y.reshape(shape), {}

    def tangent(self, p, shape, x_dot, p_dot):
        return None if x_dot is None else x_dot.reshape(x_dot.shape[:2] + (-1,))

    def backward_tangent(self, p, shape, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        return g_y_dot.reshape((g_y_dot.shape[0],) + shape), {}
