"""Small random instances of every layer, loss and model type, for the checks.

Inputs are drawn from a seeded generator and built away from kinks: the
inputs of the ReLU and MaxPool2d layer instances keep a margin of
``LAYER_MARGIN`` (|x_i| ≥ 0.25, each window's maximum 0.25 above the rest),
and the max-pooling CNN's input is redrawn until every ReLU pre-activation
and every pooling gap is at least ``NETWORK_MARGIN`` (pre-activations have
a standard deviation near 1.4; about one draw in three passes). The checks
then choose their difference steps from the measured kink-free radius
(``testing.kinks``), so a stencil never reaches a kink; these margins keep
the steps from shrinking into the rounding floor. Both values are our choice.
"""
from __future__ import annotations

from typing import Iterator, Tuple

import numpy as np

from ..layers import (AvgPool2d, Conv2d, Dense, Flatten, GraphConv, MaxPool2d, ReLU, Sigmoid,
                      Softplus, Tanh, normalized_adjacency)
from ..losses import MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy
from ..model import Sequential
from ..layers.pooling import unwindows, windows
from .kinks import kink_margin

LAYER_MARGIN = 0.25
NETWORK_MARGIN = 0.01
MAX_DRAWS = 100  # P(no draw passes) ≈ 0.65^100 ≈ 1e-19


def away_from_zero(z: np.ndarray, margin: float) -> np.ndarray:
    """sign(z)·(margin + |z|): every entry at least ``margin`` from the ReLU kink."""
    return np.where(z >= 0, 1.0, -1.0).astype(z.dtype) * (margin + np.abs(z))


def clear_window_maxima(z: np.ndarray, k: int, margin: float) -> np.ndarray:
    """``z`` with each k×k window's largest entry raised ``margin`` above the window's others."""
    win = windows(z, k)
    top = np.argmax(win, axis=-1)[..., None]
    lifted = np.take_along_axis(win, top, axis=-1) + margin
    np.put_along_axis(win, top, lifted, axis=-1)
    out = z.copy()
    H, W = (z.shape[2] // k) * k, (z.shape[3] // k) * k
    out[:, :, :H, :W] = unwindows(win, (z.shape[0], z.shape[1], H, W), k)
    return out


def draw_away_from_kinks(draw, net, params, margin: float):
    """Call ``draw()`` until the network's kink margin at its result is ≥ ``margin``."""
    for _ in range(MAX_DRAWS):
        x = draw()
        if kink_margin(net, params, x) >= margin:
            return x
    raise RuntimeError(f"no input with a kink margin >= {margin} in {MAX_DRAWS} draws")


def random_graph(num_nodes: int, num_edges: int, rng: np.random.Generator):
    """Â of a random undirected graph on ``num_nodes`` nodes."""
    edges = rng.integers(0, num_nodes, size=(num_edges, 2))
    return normalized_adjacency(edges[edges[:, 0] != edges[:, 1]], num_nodes)


def layer_instances(rng: np.random.Generator, dtype=np.float64) -> Iterator[Tuple[str, object, np.ndarray]]:
    """(name, layer, input batch) for every layer type."""
    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)
    yield "Dense", Dense(5, 3), normal(4, 5)
    yield "Conv2d k3 s1 p0", Conv2d(2, 3, 3), normal(2, 2, 6, 5)
    yield "Conv2d k3 s2 p1", Conv2d(2, 3, 3, stride=2, padding=1), normal(2, 2, 7, 6)
    yield "MaxPool2d k2", MaxPool2d(2), clear_window_maxima(normal(2, 2, 5, 4), 2, LAYER_MARGIN)
    yield "AvgPool2d k2", AvgPool2d(2), normal(2, 2, 4, 5)
    yield "Flatten", Flatten(), normal(3, 2, 2, 2)
    yield "ReLU", ReLU(), away_from_zero(normal(3, 4), LAYER_MARGIN)
    for act in (Tanh(), Sigmoid(), Softplus()):
        yield type(act).__name__, act, normal(3, 4)
    yield "GraphConv", GraphConv(4, 3, random_graph(7, 10, rng)), normal(7, 4)


def network_instances(rng: np.random.Generator, dtype=np.float64):
    """(name, net, params, x, y) for every loss and model family."""
    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)
    mlp = Sequential([Dense(5, 6), Tanh(), Dense(6, 4), Softplus(), Dense(4, 3)], SoftmaxCrossEntropy())
    yield "MLP tanh/softplus, softmax CE", mlp, mlp.init(1, dtype), normal(6, 5), rng.integers(0, 3, 6)
    cnn = Sequential([Conv2d(1, 2, 3, stride=2, padding=1), ReLU(), MaxPool2d(2), Flatten(), Dense(8, 3)],
                     SoftmaxCrossEntropy())
    cnn_params = cnn.init(2, dtype)
    cnn_x = draw_away_from_kinks(lambda: normal(3, 1, 8, 8), cnn, cnn_params, NETWORK_MARGIN)
    yield "CNN s2 p1 + maxpool, softmax CE", cnn, cnn_params, cnn_x, rng.integers(0, 3, 3)
    cnn2 = Sequential([Conv2d(2, 2, 3, padding=1), Tanh(), AvgPool2d(2), Flatten(), Dense(8, 2)],
                      MeanSquaredError())
    yield "CNN avgpool, MSE", cnn2, cnn2.init(3, dtype), normal(2, 2, 4, 4), normal(2, 2)
    adjacency = random_graph(8, 12, rng)
    mask = np.zeros(8, dtype=bool)
    mask[[0, 2, 3, 6]] = True
    gcn = Sequential([GraphConv(3, 4, adjacency), Tanh(), GraphConv(4, 3, adjacency)], SoftmaxCrossEntropy(mask))
    yield "GCN masked softmax CE", gcn, gcn.init(4, dtype), normal(8, 3), rng.integers(0, 3, 8)
    auto = Sequential([Dense(6, 3), Sigmoid(), Dense(3, 6)], SigmoidCrossEntropy())
    yield "autoencoder sigmoid CE", auto, auto.init(5, dtype), rng.random((4, 6)).astype(dtype), rng.random((4, 6)).astype(dtype)
