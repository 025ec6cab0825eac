"""Closed-form Hessians: least squares, deep linear networks, logistic regression."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.testing import gamma

from strategies import seeds


def assert_rounding_close(actual, expected, terms, n_terms):
    """|actual − expected| ≤ 2γ_n·terms entrywise: ``terms`` is the formula evaluated on
    absolute values, Σ|summands| of each entry (Higham, Lemma 3.1; twice: two evaluation orders)."""
    excess = np.abs(actual - expected) - 2 * gamma(n_terms) * terms
    assert np.all(excess <= 0), float(excess.max())


@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 8), seeds)
def test_least_squares_block_is_kron_of_augmented_gram(d, c, n, seed):
    """One Dense + MSE: H = X̃ᵀX̃/N ⊗ I_C with X̃ = [X, 1] (W row-major, then b)."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d, c)], mll.MeanSquaredError())
    X = rng.standard_normal((n, d))
    ev = net.evaluate(net.init(seed), X, rng.standard_normal((n, c)))
    X_aug = np.hstack([X, np.ones((n, 1))])
    expected = np.kron(X_aug.T @ X_aug / n, np.eye(c))
    # an entry is a sum over the n examples: within γ_n of Σ|terms| = (|X̃|ᵀ|X̃|/n ⊗ I) (twice: two orders)
    terms = np.kron(np.abs(X_aug).T @ np.abs(X_aug) / n, np.eye(c))
    for kind in ("hessian", "ggn"):
        assert np.all(np.abs(ev.block_hessian(0, kind) - expected) <= 2 * gamma(n + 2) * terms), kind


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
    P, P_abs = X, np.abs(X)
    for l, p in enumerate(params):
        Q, Q_abs = np.eye(p["W"].shape[1]), np.eye(p["W"].shape[1])
        for later in params[l + 1:]:
            Q, Q_abs = Q @ later["W"], Q_abs @ np.abs(later["W"])
        expected = np.kron(P.T @ P, Q @ Q.T) / n
        terms = np.kron(P_abs.T @ P_abs, Q_abs @ Q_abs.T) / n
        size = p["W"].size
        # each entry is a chain of len(widths) products of sums over at most n + max(widths) terms
        assert_rounding_close(ev.block_hessian(l)[:size, :size], expected, terms,
                              len(widths) * (n + max(widths) + 1))
        P, P_abs = P @ p["W"] + p["b"], P_abs @ np.abs(p["W"]) + np.abs(p["b"])


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
    weights = s * (1 - s)  # ≥ 0, each to a few round-offs (exp, one division)
    terms = np.abs(X_aug).T @ (np.abs(X_aug) * weights[:, None]) / n
    assert_rounding_close(ev.hessian(), X_aug.T @ (X_aug * weights[:, None]) / n, terms, n + d + 8)


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
    terms = sum(np.kron(np.abs(np.outer(xa, xa)), np.diag(pn) + np.outer(pn, pn)) for xa, pn in zip(X_aug, p)) / n
    # softmax: exp and a sum over c classes, then sums over n examples and d + 1 inputs
    assert_rounding_close(ev.hessian(), expected, terms, n + c + d + 8)
