"""Shared hypothesis strategies for the engine tests: shapes, seeds and scales, never raw floats."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.testing.instances import random_graph

seeds = st.integers(min_value=0, max_value=2**31 - 1)
small = st.integers(min_value=1, max_value=5)
scales = st.sampled_from([0.3, 1.0, 3.0])
smooth_activations = st.sampled_from([mll.Tanh, mll.Sigmoid, mll.Softplus])
activations = st.sampled_from([mll.Tanh, mll.Sigmoid, mll.Softplus, mll.ReLU])


@st.composite
def conv_cases(draw):
    """(layer, input) for Conv2d with drawn kernel, stride, padding and image size."""
    k = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, 2))
    c_in, c_out = draw(small), draw(small)
    h = draw(st.integers(max(1, k - 2 * padding), 7))
    w = draw(st.integers(max(1, k - 2 * padding), 7))
    n = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(seeds))
    return mll.Conv2d(c_in, c_out, k, stride=stride, padding=padding), rng.standard_normal((n, c_in, h, w)), rng


@st.composite
def pool_cases(draw):
    k = draw(st.integers(1, 3))
    h, w = draw(st.integers(k, 7)), draw(st.integers(k, 7))
    n, c = draw(st.integers(1, 3)), draw(small)
    rng = np.random.default_rng(draw(seeds))
    layer = draw(st.sampled_from([mll.MaxPool2d, mll.AvgPool2d]))(k)
    return layer, away_from_kinks((n, c, h, w), rng), rng


@st.composite
def graph_cases(draw):
    n = draw(st.integers(2, 9))
    rng = np.random.default_rng(draw(seeds))
    adjacency = random_graph(n, draw(st.integers(0, 2 * n)), rng)
    f_in, f_out = draw(small), draw(small)
    return mll.GraphConv(f_in, f_out, adjacency), rng.standard_normal((n, f_in)), rng


@st.composite
def mlp_networks(draw, activation=activations):
    """(net, params, x, y, rng): an MLP with drawn depth, widths, activations and loss."""
    depth = draw(st.integers(1, 4))
    widths = [draw(st.integers(1, 5)) for _ in range(depth + 1)]
    layers = []
    for i in range(depth):
        layers.append(mll.Dense(widths[i], widths[i + 1]))
        if i < depth - 1:
            layers.append(draw(activation)())
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(seeds))
    scale = draw(scales)
    x = scale * rng.standard_normal((n, widths[0]))
    loss_name = draw(st.sampled_from(["mse", "softmax", "sigmoid"]))
    if loss_name == "mse":
        loss, y = mll.MeanSquaredError(), rng.standard_normal((n, widths[-1]))
    elif loss_name == "softmax":
        loss, y = mll.SoftmaxCrossEntropy(), rng.integers(0, widths[-1], n)
    else:
        loss, y = mll.SigmoidCrossEntropy(), rng.random((n, widths[-1]))
    net = mll.Sequential(layers, loss)
    return net, net.init(draw(seeds)), x, y, rng


@st.composite
def cnn_networks(draw):
    """A CNN conv(stride, padding) → activation → pool → flatten → dense, softmax CE."""
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    size = draw(st.integers(5, 8))
    c_in, c_mid = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    conv = mll.Conv2d(c_in, c_mid, 3, stride=stride, padding=padding)
    pool = draw(st.sampled_from([mll.MaxPool2d, mll.AvgPool2d]))(2)
    act = draw(activations)()
    flat = int(np.prod(pool.output_shape(conv.output_shape((c_in, size, size)))))
    classes = draw(st.integers(2, 3))
    net = mll.Sequential([conv, act, pool, mll.Flatten(), mll.Dense(flat, classes)], mll.SoftmaxCrossEntropy())
    n = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(seeds))
    return net, net.init(draw(seeds)), rng.standard_normal((n, c_in, size, size)), rng.integers(0, classes, n), rng


@st.composite
def gcn_networks(draw):
    """A 2-layer GCN with a drawn graph and a drawn non-empty node mask."""
    n = draw(st.integers(3, 9))
    rng = np.random.default_rng(draw(seeds))
    adjacency = random_graph(n, draw(st.integers(1, 2 * n)), rng)
    mask = rng.random(n) < draw(st.sampled_from([0.3, 0.6, 1.0]))
    mask[rng.integers(n)] = True
    f, h, c = draw(small), draw(small), draw(st.integers(2, 4))
    net = mll.Sequential([mll.GraphConv(f, h, adjacency), draw(activations)(), mll.GraphConv(h, c, adjacency)],
                         mll.SoftmaxCrossEntropy(mask=mask))
    return net, net.init(draw(seeds)), rng.standard_normal((n, f)), rng.integers(0, c, n), rng


def kink_margin(net, params, x) -> float:
    """Distance of the forward pass from the non-smooth points of ReLU and max pooling.

    The smallest |pre-activation| at a ReLU and the smallest gap between the
    two largest entries of a max-pool window; finite differences need steps
    well below it (a stencil that straddles a kink measures a jump, not a derivative).
    """
    from minilayerlr.layers.pooling import windows
    margin = np.inf
    h = x
    for layer, p in zip(net.layers, params):
        if isinstance(layer, mll.ReLU):
            margin = min(margin, float(np.abs(h).min()))
        if isinstance(layer, mll.MaxPool2d):
            win = np.sort(windows(h, layer.kernel_size), axis=-1)
            if win.shape[-1] > 1:
                margin = min(margin, float((win[..., -1] - win[..., -2]).min()))
        h, _ = layer.forward(p, h)
    return margin


def away_from_kinks(shape, rng, spacing=0.05):
    """Distinct values at least spacing/4 from 0 and spacing from each other (ReLU, max pool)."""
    size = int(np.prod(shape))
    return ((2 * rng.permutation(size) - size + 1.5) * (spacing / 2)).reshape(shape)
