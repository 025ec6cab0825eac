"""The layer protocol: hyper-parameters in the object, parameters as plain data.

The contract: every layer implements five math rules of its parameters ``p``
(a dict of arrays), all exact and written by hand:

* ``forward(p, x) -> (y, cache)``: the map y = φ(x; p) and what later calls need.
* ``backward(p, cache, g_y) -> (g_x, g_p)``: the vector-Jacobian product
  (reverse mode) g_x = (∂y/∂x)ᵀ g_y, g_p = (∂y/∂p)ᵀ g_y.
* ``tangent(p, cache, x_dot, p_dot) -> y_dot``: the Jacobian-vector product
  ẏ = (∂y/∂x) ẋ + (∂y/∂p) ṗ (forward mode).
* ``backward_tangent(p, cache, x_dot, p_dot, g_y, g_y_dot) -> (g_x_dot, g_p_dot)``:
  the derivative of ``backward`` along the tangent (ẋ, ṗ, ġ_y) — Pearlmutter's
  R-operator. Run through every layer it turns a gradient into a
  Hessian-vector product.
* ``curvature_term(p, cache, x_dot, g_y) -> (K,)``: ⟨g_y, ∂²y/∂x²[ẋ, ẋ]⟩, the
  second-order term of the layer along an input tangent. Zero (the default)
  for layers that are linear in their input (Dense, Conv2d, GraphConv,
  pooling, Flatten).

plus its description: ``param_names``, ``param_shapes()``, ``init(rng)``,
``output_shape(shape)``, ``mixes_examples`` and ``check_batch(n)`` (a no-op
unless the layer needs a particular batch, as a graph layer does).

**Assumption of the one-sweep curvature**: a layer is *linear in its own
parameters* (∂²y/∂p² = 0; Dense, Conv2d and GraphConv are). Along block l's
direction alone the tangent enters layer l through ṗ only (ẋ = 0) and every later
layer through ẋ only (ṗ = 0), so no layer meets the mixed term ∂²y/∂x∂p, layer l
adds no term of its own, and q_l is the later layers' ``curvature_term`` plus the
loss's ẏᵀ∇²Lẏ (``minilayerlr.curvature``). A layer curved in its parameters would
need a term the sweep does not add.

Optional members, with defaults for a smooth layer that has no factorisation
(callers ask the layer instead of testing its class):

* ``block_label(index)``: a readable name of the block for legends ("layer3").
* ``kronecker_factors(p, cache, delta)``: K-FAC's {"A", "G"} from the cache and
  the sampled output gradients δ (``minilayerlr.kronecker``), or None.
* ``smooth``, ``kink_pattern(x)``, ``kink_radius(x, x_dot)``, ``kink_margin(x)``:
  a piecewise-linear layer (ReLU, max pooling) sets ``smooth = False`` and says
  where its kinks are, so that derivative checks keep their stencils off them
  (``minilayerlr.testing.kinks``).

Optional fast paths (defaults here are written with the rules above; a layer
overrides them only to skip work, and tests check both against the rules):

* ``output(p, x)``: ``forward(p, x)[0]`` alone, without the cache: what
  ``Sequential.forward`` and ``loss_value`` (evaluation, line searches) run.
* ``backward_input(p, cache, g_y)``: ``backward(...)[0]`` alone.
* ``extend_tangent_stack(p, cache, stack, direction)``: the stack of input
  tangents carried through the layer, with the tangent along the layer's own
  parameter direction appended as a last row (the one-sweep curvature).

Index convention (written once, as BackPACK does): tangents carry a leading
axis of K directions, so ``x_dot`` has shape (K, *x.shape) and each entry of
``p_dot`` has shape (K, *p[name].shape). ``None`` stands for a zero tangent
and is returned for one; this is what lets a tangent start at layer l without
touching layers before it. See docs/design.md.

Reference: B. A. Pearlmutter, "Fast exact multiplication by the Hessian",
Neural Computation 6(1), 1994 (the R-operator, section 3).
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np

from ..tree import as_stack

Array = np.ndarray


def add(a: Optional[Array], b: Optional[Array]) -> Optional[Array]:
    """a + b where ``None`` is a zero tangent."""
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def ratio_min(distance: Array, rate: Array) -> float:
    """min over entries of distance / rate, entries that do not move (rate 0) excluded."""
    moving = rate > 0
    return float(np.min(distance[moving] / rate[moving])) if np.any(moving) else math.inf


def with_ones(a: Array) -> Array:
    """ã = (a, 1) row by row: (M, d) -> (M, d + 1) (the bias as a last input of 1)."""
    return np.concatenate([a, np.ones((a.shape[0], 1), dtype=a.dtype)], axis=1)


def check_init(init: str, allowed=("glorot", "he")) -> str:
    if init not in allowed:
        raise ValueError(f"init: expected one of {list(allowed)}, got {init!r}")
    return init


def draw_weights(rng: np.random.Generator, shape, fan_in: int, fan_out: int, init: str, dtype) -> Array:
    """Seeded standard initialisation.

    ``glorot``: uniform on ±sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010, eq. 16).
    ``he``: normal with std sqrt(2 / fan_in) (He et al., 2015, section 2.2).
    """
    if init == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(dtype)
    return (rng.standard_normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


class Layer:
    """Base class. Subclasses hold hyper-parameters only."""

    #: names of the parameters, in the order flat vectors use
    param_names: Tuple[str, ...] = ()
    #: True when output row n depends on input rows other than n (graph layers)
    mixes_examples: bool = False
    #: False when the layer has kinks (ReLU, max pooling): it is then C⁰ but not C¹ there
    smooth: bool = True

    def param_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """Shape of each parameter, in ``param_names`` order (empty when there are none)."""
        return {}

    def init(self, rng: np.random.Generator, dtype=np.float64) -> Dict[str, Array]:
        """Parameters of a fresh layer (an empty dict when there are none)."""
        return {}

    def check_batch(self, num_rows: int) -> None:
        """Raise ValueError naming ``x`` unless the layer accepts a batch of ``num_rows``; no-op here."""

    def forward(self, p, x):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, p, cache, g_y, *, input_grad: bool = True):  # pragma: no cover
        raise NotImplementedError

    def output(self, p, x):
        """y = φ(x; p) alone: ``forward(p, x)[0]`` without building the cache backward needs.

        Layers whose cache costs work (Conv2d's patches, max pooling's selection,
        an activation's slope) override it with the same map computed directly.
        """
        return self.forward(p, x)[0]

    def backward_input(self, p, cache, g_y):
        """g_x = (∂y/∂x)ᵀ g_y alone, for sweeps that discard parameter gradients.

        Same as ``backward(...)[0]``; layers whose parameter gradient costs a
        matrix product (Dense, Conv2d, GraphConv) override it to skip that product.
        """
        return self.backward(p, cache, g_y)[0]

    def tangent(self, p, cache, x_dot, p_dot):  # pragma: no cover
        raise NotImplementedError

    def backward_tangent(self, p, cache, x_dot, p_dot, g_y, g_y_dot, *, input_grad: bool = True):  # pragma: no cover
        raise NotImplementedError

    def extend_tangent_stack(self, p, cache, stack, direction) -> Array:
        """Carry a stack of input tangents through the layer and append the one along ``direction``.

        Returns the stack (K+1, *y.shape): rows 0..K-1 are ``tangent(stack)``
        (the blocks met so far), row K is ``tangent(ṗ = direction)``. ``stack``
        may be None (K = 0). Optional fast path: layers may override it to skip the copy.
        """
        new = self.tangent(p, cache, None, as_stack(direction))
        if stack is None:
            return new
        return np.concatenate([self.tangent(p, cache, stack, None), new])

    def curvature_term(self, p, cache, x_dot, g_y) -> Array:
        """⟨g_y, ∂²y/∂x²[ẋ, ẋ]⟩ per tangent, shape (K,); zero for input-linear layers."""
        return np.zeros(x_dot.shape[0], dtype=x_dot.dtype)

    def block_label(self, index: int) -> str:
        """A readable name for the block at ``net.layers[index]``, e.g. in plot legends."""
        return f"layer{index}"

    def kronecker_factors(self, p, cache, delta) -> Optional[Dict[str, Array]]:
        """K-FAC's factors {"A", "G"} from the cache and sampled output gradients δ, or None."""
        return None

    def kink_pattern(self, x) -> Optional[Array]:
        """The discrete state of the layer at input x (signs, argmaxes); None when smooth."""
        return None

    def kink_radius(self, x, x_dot) -> float:
        """Largest |t| for which ``kink_pattern(x + t ẋ)`` is that at x (inf when smooth)."""
        return math.inf

    def kink_margin(self, x) -> float:
        """Smallest distance of x to the layer's kinks (inf when smooth)."""
        return math.inf

    def output_shape(self, input_shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """Shape of one example's output given one example's input shape."""
        return input_shape

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"
