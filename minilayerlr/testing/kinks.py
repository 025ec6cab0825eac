"""Distance to the nearest kink, so that difference stencils never straddle one.

ReLU and max pooling are piecewise linear: a difference quotient whose
stencil crosses a ReLU sign change or a change of a pooling window's argmax
measures a jump, not a derivative. Along a line t ↦ x + t ẋ (or θ + t d)
a kinked layer keeps its pattern while

    |t| < min over entries of (distance to the kink) / (rate of approach),

which each layer states itself (``Layer.kink_radius``, ``kink_pattern``,
``kink_margin``; smooth layers answer inf and None). The bound is exact when
everything before the kinked layer is affine along the line (an input move, or a
first layer's parameters), and a first-order estimate otherwise; :func:`same_pattern`
then confirms it at the stencil's points. The checks choose their steps as a
fraction ``1 / SAFETY`` of this radius (our choice: 10, a margin "much larger than
the stencil").
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..tree import as_stack
from .checkers import axpy

SAFETY = 10.0


def layer_radius(layer, x: np.ndarray, x_dot: np.ndarray) -> float:
    """Largest |t| for which the layer's pattern at x + t ẋ is the one at x (inf if smooth)."""
    return layer.kink_radius(x, x_dot)


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
        pattern = layer.kink_pattern(a)
        if pattern is not None:
            out.append(pattern)
        a = layer.forward(p, a)[0]
    return out


def same_pattern(net, params, x, direction, steps) -> bool:
    """True when the kink pattern at θ + t·direction equals that at θ for every t in ``steps``."""
    base = patterns(net, params, x)
    return all(all(np.array_equal(a, b) for a, b in zip(base, patterns(net, axpy(t, direction, params), x)))
               for t in steps)


def kink_margin(net, params, x) -> float:
    """Smallest distance of a kinked layer's input to its kinks at θ (inf if smooth)."""
    margin, a = float("inf"), x
    for layer, p in zip(net.layers, params):
        margin = min(margin, layer.kink_margin(a))
        a = layer.forward(p, a)[0]
    return margin
