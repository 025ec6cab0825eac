"""Distance to the nearest kink, so that difference stencils never straddle one.

ReLU and max pooling are piecewise linear: a difference quotient whose
stencil crosses a ReLU sign change or a change of a pooling window's argmax
measures a jump, not a derivative. Along a line t ↦ x + t ẋ (or θ + t d)
a kinked layer keeps its pattern while

    |t| < min over entries of (distance to the kink) / (rate of approach),

ReLU: |x_i| / |ẋ_i|; max pooling: (x_max − x_j) / |ẋ_max − ẋ_j| for each
window (:func:`layer_radius`). The bound is exact when everything before the kinked layer is affine
along the line (an input move, or a first layer's parameters), and a
first-order estimate otherwise; :func:`same_pattern` then confirms it at
the stencil's points. The checks choose their steps as a fraction
``1 / SAFETY`` of this radius (our choice: 10, a margin "much larger than
the stencil").
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..layers import MaxPool2d, ReLU
from ..layers.pooling import windows
from ..tree import as_stack
from .checkers import axpy

SAFETY = 10.0


def _ratio_min(distance: np.ndarray, rate: np.ndarray) -> float:
    """min over entries of distance / rate, entries that do not move (rate 0) excluded."""
    moving = rate > 0
    return float(np.min(distance[moving] / rate[moving])) if np.any(moving) else float("inf")


def layer_radius(layer, x: np.ndarray, x_dot: np.ndarray) -> float:
    """Largest |t| for which the layer's pattern at x + t ẋ is the one at x (inf if smooth).

    ReLU: entry i keeps its sign while |t| < |x_i| / |ẋ_i|. Max pooling: a
    window's maximum x_m stays the maximum while |t| < (x_m − x_j) / |ẋ_m − ẋ_j|
    for every other entry j; entries that move together (ẋ_j = ẋ_m, e.g. two
    ReLU zeros) never swap, so their ties are harmless.
    """
    if isinstance(layer, ReLU):
        return _ratio_min(np.abs(x).ravel(), np.abs(x_dot).ravel())
    if isinstance(layer, MaxPool2d):
        win, win_dot = windows(x, layer.kernel_size), windows(x_dot, layer.kernel_size)
        top = np.argmax(win, axis=-1)[..., None]
        gap = np.take_along_axis(win, top, axis=-1) - win
        rate = np.abs(np.take_along_axis(win_dot, top, axis=-1) - win_dot)
        return _ratio_min(gap.ravel(), rate.ravel())
    return float("inf")


def network_radius(net, params, x, direction) -> float:
    """Smallest :func:`layer_radius` over the network's layers along θ + t·direction.

    Each layer's input tangent comes from the layers' ``tangent`` rules (which
    ``check_layer`` verifies independently).
    """
    radius, a, a_dot = float("inf"), x, None
    for layer, p, d in zip(net.layers, params, direction):
        if a_dot is not None:
            radius = min(radius, layer_radius(layer, a, a_dot))
        a_next, cache = layer.forward(p, a)
        a_dot = layer.tangent(p, cache, None if a_dot is None else a_dot[None], as_stack(d) or None)
        a_dot = None if a_dot is None else a_dot[0]
        a = a_next
    return radius


def patterns(net, params, x) -> List[np.ndarray]:
    """The discrete state of every kinked layer: ReLU signs, max-pool argmaxes."""
    out, a = [], x
    for layer, p in zip(net.layers, params):
        if isinstance(layer, ReLU):
            out.append(a > 0)
        elif isinstance(layer, MaxPool2d):
            out.append(np.argmax(windows(a, layer.kernel_size), axis=-1))
        a = layer.forward(p, a)[0]
    return out


def same_pattern(net, params, x, direction, steps) -> bool:
    """True when the kink pattern at θ + t·direction equals that at θ for every t in ``steps``."""
    base = patterns(net, params, x)
    return all(all(np.array_equal(a, b) for a, b in zip(base, patterns(net, axpy(t, direction, params), x)))
               for t in steps)


def kink_margin(net, params, x) -> float:
    """Smallest distance of a kinked layer's input to its kinks at θ (inf if smooth).

    ReLU: min |x_i|. Max pooling: min over windows of x_max − x_j for the
    other entries j, exact ties excluded (they come from ReLU zeros, which
    move together).
    """
    margin, a = float("inf"), x
    for layer, p in zip(net.layers, params):
        if isinstance(layer, ReLU):
            margin = min(margin, float(np.min(np.abs(a))))
        elif isinstance(layer, MaxPool2d):
            win = windows(a, layer.kernel_size)
            gap = win.max(axis=-1, keepdims=True) - win
            gap = gap[gap > 0]
            margin = min(margin, float(gap.min()) if gap.size else float("inf"))
        a = layer.forward(p, a)[0]
    return margin
