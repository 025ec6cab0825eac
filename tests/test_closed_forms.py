"""Closed-form Hessians: least squares, deep linear networks, logistic regression."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minilayerlr as mll

from strategies import seeds


@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 8), seeds)
def test_least_squares_block_is_kron_of_augmented_gram(d, c, n, seed):
    """One Dense + MSE: H = X̃ᵀX̃/N ⊗ I_C with X̃ = [X, 1] (W row-major, then b)."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d, c)], mll.MeanSquaredError())
    X = rng.standard_normal((n, d))
    ev = net.evaluate(net.init(seed), X, rng.standard_normal((n, c)))
    X_aug = np.hstack([X, np.ones((n, 1))])
    expected = np.kron(X_aug.T @ X_aug / n, np.eye(c))
    np.testing.assert_allclose(ev.block_hessian(0), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ev.block_hessian(0, "ggn"), expected, rtol=1e-12, atol=1e-14)


@given(st.lists(st.integers(1, 4), min_size=3, max_size=5), st.integers(1, 6), seeds)
def test_deep_linear_network_weight_blocks(widths, n, seed):
    """y = x W_1 … W_L (+ biases), MSE: H_{W_l W_l} = (P_lᵀP_l) ⊗ (Q_l Q_lᵀ) / N.

    P_l is layer l's input (N × d_in) and Q_l = W_{l+1} ⋯ W_L; row-major index (i, a) of W_l.
    """
    rng = np.random.default_rng(seed)
    layers = [mll.Dense(a, b) for a, b in zip(widths[:-1], widths[1:])]
    net = mll.Sequential(layers, mll.MeanSquaredError())
    params = net.init(seed)
    for p in params:
        p["b"] = rng.standard_normal(p["b"].shape)
    X = rng.standard_normal((n, widths[0]))
    ev = net.evaluate(params, X, rng.standard_normal((n, widths[-1])))
    P = X
    for l, p in enumerate(params):
        Q = np.eye(p["W"].shape[1])
        for later in params[l + 1:]:
            Q = Q @ later["W"]
        expected = np.kron(P.T @ P, Q @ Q.T) / n
        size = p["W"].size
        np.testing.assert_allclose(ev.block_hessian(l)[:size, :size], expected, rtol=1e-10, atol=1e-12)
        P = P @ p["W"] + p["b"]


@given(st.integers(1, 5), st.integers(2, 10), seeds)
def test_binary_logistic_regression_hessian(d, n, seed):
    """Dense(d, 1) + sigmoid CE: H = X̃ᵀ diag(σ(1 − σ)) X̃ / N."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d, 1)], mll.SigmoidCrossEntropy())
    params = net.init(seed)
    X = rng.standard_normal((n, d))
    ev = net.evaluate(params, X, (rng.random((n, 1)) < 0.5).astype(float))
    X_aug = np.hstack([X, np.ones((n, 1))])
    s = 1 / (1 + np.exp(-(X @ params[0]["W"][:, 0])))
    np.testing.assert_allclose(ev.hessian(), X_aug.T @ (X_aug * (s * (1 - s))[:, None]) / n, rtol=1e-11, atol=1e-14)


@given(st.integers(1, 4), st.integers(2, 4), st.integers(2, 8), seeds)
def test_multinomial_logistic_regression_hessian(d, c, n, seed):
    """Dense(d, C) + softmax CE: H = (1/N) Σ_n x̃_n x̃_nᵀ ⊗ (diag p_n − p_n p_nᵀ)."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d, c)], mll.SoftmaxCrossEntropy())
    params = net.init(seed)
    X = rng.standard_normal((n, d))
    ev = net.evaluate(params, X, rng.integers(0, c, n))
    X_aug = np.hstack([X, np.ones((n, 1))])
    logits = X @ params[0]["W"]
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = sum(np.kron(np.outer(xa, xa), np.diag(pn) - np.outer(pn, pn)) for xa, pn in zip(X_aug, p)) / n
    np.testing.assert_allclose(ev.hessian(), expected, rtol=1e-11, atol=1e-14)
