"""The K-FAC / KFC factors of ``minilayerlr.kronecker``: expectation, definition, damping split."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.kronecker import conv_factors, dense_factors
from minilayerlr.optim.kfac import damped_inverses
from minilayerlr.testing.instances import random_graph

from strategies import conv_cases, seeds
from strategies_optim import spd_matrix

EPS = np.finfo(float).eps


def _one_dense_layer(n, d_in, d_out, seed):
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d_in, d_out)], mll.MeanSquaredError())
    x, y = rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))
    return net, net.init(seed), x, y


def _with_ones(a):
    return np.hstack([a, np.ones((a.shape[0], 1))])


def _within_standard_errors(samples, target, floor):
    """|mean − target| ≤ 5 standard errors (+ a rounding floor), entry by entry."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / math.sqrt(len(samples))
    return np.abs(mean - target) <= 5 * se + floor


@given(n=st.integers(2, 6), d_in=st.integers(1, 3), d_out=st.integers(1, 3), seed=seeds)
@settings(max_examples=5)
def test_expected_kronecker_product_is_the_gauss_newton_block(n, d_in, d_out, seed):
    """One Dense layer with squared error: E[A ⊗ G] = X̃ᵀX̃/N ⊗ I, the exact Gauss-Newton block."""
    net, params, x, y = _one_dense_layer(n, d_in, d_out, seed)
    ev = net.evaluate(params, x, y)
    xt = _with_ones(x)
    exact = np.kron(xt.T @ xt / n, np.eye(d_out))
    # the engine's dense block is that closed form (sums of n products: n·eps relative)
    np.testing.assert_allclose(ev.block_hessian(0, kind="ggn"), exact, rtol=0, atol=4 * n * EPS * np.abs(exact).max())
    samples = np.array([np.kron(f["A"], f["G"]) for f in
                        (ev.kronecker_factors(seed=s)[0] for s in range(400))])
    # Each entry is a mean of 400 independent draws; 5 standard errors leave a chance of
    # about 1e-6 per entry to fail by bad luck. The floor is rounding (n-term sums).
    floor = 8 * n * EPS * np.abs(exact).max()
    assert np.all(_within_standard_errors(samples, exact, floor))
    # the same check has the power to reject a factor of the wrong scale (A summed over
    # the examples instead of averaged: off by the factor n ≥ 2)
    assert not np.all(_within_standard_errors(n * samples, exact, floor))
    # and the input factor is exact, not sampled
    assert np.array_equal(ev.kronecker_factors(seed=0)[0]["A"], ev.kronecker_factors(seed=1)[0]["A"])


def _patch_loops(x, delta, k, stride, padding):
    """A = (1/N) Σ_{n,t} p̃ p̃ᵀ, G = (1/|T|) Σ_{n,t} δ δᵀ by explicit loops over examples and locations."""
    N = x.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h, w = delta.shape[2:]
    dim = x.shape[1] * k * k + 1
    A, A_abs = np.zeros((dim, dim)), np.zeros((dim, dim))
    G, G_abs = np.zeros((delta.shape[1],) * 2), np.zeros((delta.shape[1],) * 2)
    for n in range(N):
        for i in range(h):
            for j in range(w):
                patch = np.append(xp[n, :, stride * i:stride * i + k, stride * j:stride * j + k].ravel(), 1.0)
                A += np.outer(patch, patch) / N
                A_abs += np.abs(np.outer(patch, patch)) / N
                G += np.outer(delta[n, :, i, j], delta[n, :, i, j]) / (h * w)
                G_abs += np.abs(np.outer(delta[n, :, i, j], delta[n, :, i, j])) / (h * w)
    # a sum of M terms is exact to M·eps·Σ|terms| (both the loop and the matrix product)
    M = N * h * w
    return A, G, 2 * M * EPS * A_abs + 1e-300, 2 * M * EPS * G_abs + 1e-300


@given(conv_cases())
@settings(max_examples=10)
def test_kfc_factors_of_a_conv_layer_equal_their_definition(case):
    layer, x, rng = case
    params = layer.init(rng)
    y, cache = layer.forward(params, x)
    delta = rng.standard_normal(y.shape)
    got = conv_factors(cache[1], delta)
    A, G, tol_a, tol_g = _patch_loops(x, delta, layer.kernel_size, layer.stride, layer.padding)
    assert np.all(np.abs(got["A"] - A) <= tol_a)
    assert np.all(np.abs(got["G"] - G) <= tol_g)


@given(seed=seeds, stride=st.integers(1, 2), padding=st.integers(0, 1))
@settings(max_examples=5)
def test_engine_conv_factors_use_the_sampled_output_gradient(seed, stride, padding):
    """Conv2d → Flatten with squared error: δ is the sampled s ~ N(0, I/N), reshaped to the image."""
    rng = np.random.default_rng(seed)
    conv = mll.Conv2d(2, 3, 3, stride=stride, padding=padding)
    x = rng.standard_normal((3, 2, 5, 5))
    out = conv.output_shape((2, 5, 5))
    net = mll.Sequential([conv, mll.Flatten()], mll.MeanSquaredError())
    y = rng.standard_normal((3, int(np.prod(out))))
    ev = net.evaluate(net.init(seed), x, y)
    s = np.random.default_rng(seed).standard_normal(y.shape) / math.sqrt(3)  # t̂ ~ N(F(x), I)
    A, G, tol_a, tol_g = _patch_loops(x, s.reshape((3,) + out), 3, stride, padding)
    got = ev.kronecker_factors(seed=seed)[0]
    assert np.all(np.abs(got["A"] - A) <= tol_a) and np.all(np.abs(got["G"] - G) <= tol_g)


def test_graph_conv_factors_are_dense_factors_on_the_propagated_features():
    rng = np.random.default_rng(4)
    n = 7
    adjacency = random_graph(n, 10, rng)
    net = mll.Sequential([mll.GraphConv(3, 2, adjacency)], mll.MeanSquaredError())
    x, y = rng.standard_normal((n, 3)), rng.standard_normal((n, 2))
    ev = net.evaluate(net.init(0), x, y)
    ax = _with_ones(adjacency @ x)
    s = np.random.default_rng(9).standard_normal((n, 2)) / math.sqrt(n)
    got = ev.kronecker_factors(seed=9)[0]
    np.testing.assert_allclose(got["A"], ax.T @ ax / n, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got["G"], s.T @ s, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dense_factors(adjacency @ x, s)["A"], got["A"], rtol=1e-14, atol=0)


def test_factors_are_seeded_and_one_per_block():
    rng = np.random.default_rng(0)
    net = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)], mll.SoftmaxCrossEntropy())
    ev = net.evaluate(net.init(0), rng.standard_normal((5, 3)), np.array([0, 1, 1, 0, 1]))
    first, again, other = (ev.kronecker_factors(seed=s) for s in (3, 3, 4))
    assert [f["A"].shape for f in first] == [(4, 4), (5, 5)] and [f["G"].shape for f in first] == [(4, 4), (2, 2)]
    assert all(np.array_equal(a["G"], b["G"]) for a, b in zip(first, again))
    assert not np.array_equal(first[1]["G"], other[1]["G"])
    with pytest.raises(ValueError, match="^seed"):
        ev.kronecker_factors(seed=-1)


@given(n=st.integers(1, 5), m=st.integers(1, 5), seed=seeds, log10_scale=st.sampled_from([-3, 0, 2]),
       damping=st.sampled_from([1e-4, 1e-2, 1.0]))
@settings(max_examples=10)
def test_damping_split_matches_its_formula(n, m, seed, log10_scale, damping):
    """π = sqrt((tr A/n)/(tr G/m)) and (A + π√λ I)⁻¹, (G + (√λ/π) I)⁻¹ (Martens & Grosse 2015, §6.3)."""
    A = spd_matrix(n, seed, 2.0)
    G = spd_matrix(m, seed + 1, 2.0) * 10.0 ** log10_scale
    inv_a, inv_g, pi = damped_inverses(A, G, damping)
    assert pi == pytest.approx(math.sqrt((np.trace(A) / n) / (np.trace(G) / m)), rel=1e-14)
    gamma = math.sqrt(damping)
    Ad, Gd = A + pi * gamma * np.eye(n), G + gamma / pi * np.eye(m)
    # an inverse is exact to about cond·eps
    np.testing.assert_allclose(inv_a @ Ad, np.eye(n), atol=10 * n * np.linalg.cond(Ad) * EPS)
    np.testing.assert_allclose(inv_g @ Gd, np.eye(m), atol=10 * m * np.linalg.cond(Gd) * EPS)
    # π makes the two damping terms of the product equally large in trace norm
    assert pi * gamma * np.trace(np.kron(np.eye(n), G)) == pytest.approx(
        gamma / pi * np.trace(np.kron(A, np.eye(m))), rel=1e-13)
    # and so the damped product is unchanged when the scale moves between the factors
    c = 7.0
    inv_a2, inv_g2, _ = damped_inverses(c * A, G / c, damping)
    np.testing.assert_allclose(np.kron(inv_a2, inv_g2), np.kron(inv_a, inv_g),
                               rtol=0, atol=100 * (n + m) * np.linalg.cond(Ad) * np.linalg.cond(Gd) * EPS
                               * np.abs(np.kron(inv_a, inv_g)).max())


@given(n=st.integers(2, 5), c=st.integers(1, 2), o=st.integers(1, 3), k=st.integers(1, 3), seed=seeds)
@settings(max_examples=5)
def test_conv_layout_one_location_is_the_gauss_newton_block(n, c, o, k, seed):
    """A k×k kernel on a k×k image has one location (|T| = 1): the layer is Dense on the
    flattened patch, so with squared error E[G] = I and kron(I, A) on the rows of [W | b]
    is the exact Gauss-Newton block, and E[kron(G, A)] matches it within standard errors."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Conv2d(c, o, k), mll.Flatten()], mll.MeanSquaredError())
    x, y = rng.standard_normal((n, c, k, k)), rng.standard_normal((n, o))
    ev = net.evaluate(net.init(seed), x, y)
    exact = ev.block_hessian(0, kind="ggn")
    # row o of [W | b] holds W[o].ravel() and then b[o]; flatten order is all of W, then b
    per_row = c * k * k
    order = np.array([[r * per_row + j for j in range(per_row)] + [o * per_row + r] for r in range(o)]).ravel()
    A = ev.kronecker_factors(seed=0)[0]["A"]
    reordered = np.empty_like(exact)
    reordered[np.ix_(order, order)] = np.kron(np.eye(o), A)
    np.testing.assert_allclose(reordered, exact, rtol=0, atol=8 * n * EPS * np.abs(exact).max())
    samples = []
    for s in range(400):
        f = ev.kronecker_factors(seed=s)[0]
        block = np.empty_like(exact)
        block[np.ix_(order, order)] = np.kron(f["G"], f["A"])
        samples.append(block)
    assert np.all(_within_standard_errors(np.array(samples), exact, 8 * n * EPS * np.abs(exact).max()))
