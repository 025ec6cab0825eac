"""Sequential networks: a list of layers and a loss."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .evaluation import Evaluation
from .layers.base import Layer
from .losses import Loss
from .tree import check_same_structure
from .validation import as_generator, check_memory


class Sequential:
    """y = φ_{K−1}(… φ_0(x)), loss f(θ) = L(y, targets).

    Args:
        layers: the layers, applied in order.
        loss: a Loss (MeanSquaredError, SoftmaxCrossEntropy, SigmoidCrossEntropy).

    Attributes:
        layers: the layers.
        loss_fn: the Loss (named as ``Evaluation.loss_fn``; ``ev.loss`` is a number).
        blocks: indices of the layers with parameters; the i-th entry of every
            per-block array (curvatures, step sizes) belongs to layer blocks[i].
    """

    def __init__(self, layers: Sequence[Layer], loss: Loss):
        layers = list(layers) if isinstance(layers, (list, tuple)) else layers
        if not isinstance(layers, list) or not layers:
            raise ValueError("layers: expected a non-empty list of layers")
        for k, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{k}]: expected a minilayerlr layer, got {type(layer).__name__}")
        if not isinstance(loss, Loss):
            raise TypeError(f"loss: expected a minilayerlr loss, got {type(loss).__name__}")
        _check_chain(layers)
        self.layers = layers
        self.loss_fn = loss
        self.blocks = [k for k, layer in enumerate(layers) if layer.param_names]
        # the expected keys and shapes, as zero-stride arrays (no random draw, no memory)
        self._template = [{name: np.broadcast_to(np.float64(0), shape)
                           for name, shape in layer.param_shapes().items()} for layer in layers]

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n], loss={self.loss_fn!r})"

    @property
    def mixes_examples(self) -> bool:
        return any(layer.mixes_examples for layer in self.layers)

    def init(self, seed: int = 0, dtype=np.float64):
        """Fresh parameters: one dict per layer, drawn from numpy's default_rng(seed)."""
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype: expected float64 or float32, got {dtype!r}") from None
        if dtype not in (np.float64, np.float32):
            raise ValueError(f"dtype: expected float64 or float32, got {dtype}")
        rng = as_generator("seed", seed)
        size = sum(float(np.prod(a.shape, dtype=float)) for e in self._template for a in e.values())
        # every parameter drawn in float64, then cast to dtype: two copies at most
        check_memory("layers", f"parameters of {size:.3g} entries", 2 * 8 * size)
        return [layer.init(rng, dtype) for layer in self.layers]

    def output_shape(self, input_shape):
        """Shape of one example's output given one example's input shape."""
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def check_inputs(self, params, x):
        """Validate params and the batch x (errors name params[k][key] or x); returns the output shape (N, ...)."""
        check_same_structure(params, self._template, "params")
        for k, entry in enumerate(params):
            for name, value in entry.items():
                if not isinstance(value, np.ndarray) or value.dtype not in (np.float64, np.float32):
                    raise TypeError(f"params[{k}][{name!r}]: expected a float32/float64 numpy array")
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"params[{k}][{name!r}]: contains NaN or Inf")
        dtypes = {str(v.dtype) for e in params for v in e.values()}
        if len(dtypes) > 1:  # the parameters' dtype is the run's: a mixture has none
            raise TypeError(f"params: mixes {' and '.join(sorted(dtypes))} arrays; give every "
                            "parameter one dtype, e.g. net.init(seed, dtype=np.float32)")
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            raise TypeError(f"x: expected a floating-point numpy array, got {type(x).__name__}"
                            + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))
        if x.ndim < 2 or x.shape[0] == 0:
            raise ValueError(f"x: expected a non-empty batch of shape (N, ...), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("x: contains NaN or Inf")
        shape, entries = tuple(x.shape[1:]), math.prod(x.shape[1:])
        try:
            for layer in self.layers:
                shape = layer.output_shape(shape)
                entries += math.prod(shape)
        except ValueError as error:
            raise ValueError(f"x: does not fit the network: {error}") from None
        for layer in self.layers:
            layer.check_batch(x.shape[0])
        # every layer's output is kept for the backward pass, which makes a gradient of each;
        # curvature passes add tangents: 4 copies of every activation, 8 bytes each (our bound)
        check_memory("x", f"a batch of {x.shape[0]} examples", 32.0 * x.shape[0] * entries)
        return (x.shape[0],) + tuple(shape)

    def _dtype(self, params, x):
        """The dtype computations run in: the parameters' (float32 or float64), else x's."""
        for k in self.blocks:
            return next(iter(params[k].values())).dtype
        return x.dtype

    def forward(self, params, x):
        """Network output F(θ, x), shape (N, ...)."""
        self.check_inputs(params, x)
        h = x.astype(self._dtype(params, x), copy=False)
        for layer, p in zip(self.layers, params):
            h = layer.output(p, h)
        return h

    def evaluate(self, params, x, targets=None) -> Evaluation:
        """Forward and backward once on (x, targets); returns the loss, gradient and curvature oracles.

        ``targets`` are what the loss compares the outputs with (labels, or
        images for an autoencoder).
        Raises ValueError/TypeError naming ``params[k][name]``, ``x`` or ``y`` for bad
        inputs (structure, dtype, shape, NaN/Inf). Finite inputs can still overflow
        (e.g. x ~ 1e300): then ``ev.loss`` is Inf or NaN, not an error; ``train``
        stops on it, and the optimizers and ``apply_updates`` refuse the non-finite
        gradients, so parameters never silently become NaN.
        """
        output_shape = self.check_inputs(params, x)
        dtype = self._dtype(params, x)
        x = x.astype(dtype, copy=False)
        targets = self.loss_fn.check_targets(output_shape, targets)
        if targets.dtype.kind == "f":
            targets = targets.astype(dtype, copy=False)
        return Evaluation(self.layers, self.loss_fn, params, x, targets)

    def loss_value(self, params, x, targets=None) -> float:
        """f(θ) on (x, targets) without the backward pass."""
        out = self.forward(params, x)
        targets = self.loss_fn.check_targets(out.shape, targets)
        return self.loss_fn.value(out, targets)


def _check_chain(layers) -> None:
    """Refuse layers whose sizes do not chain, naming the layer, at construction (not at ``evaluate``).

    From each layer whose output shape is known without an input (a Dense
    layer's ``out_features``) onwards, every next layer must accept the shape
    the previous one gives; shapes that depend on the input (after a Conv2d)
    are checked by ``evaluate`` against ``x``.
    """
    shape, source = None, None
    for k, layer in enumerate(layers):
        if shape is not None:
            try:
                shape = tuple(layer.output_shape(shape))
            except ValueError as error:
                raise ValueError(f"layers[{k}]: does not take what layers[{source}] gives, one "
                                 f"example of shape {shape}: {error}") from None
        elif isinstance(getattr(layer, "out_features", None), int):
            shape = (layer.out_features,)
        source = k

