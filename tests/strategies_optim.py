"""Shared hypothesis strategies for the optimizer and theory tests.

Matrices are never drawn as raw floats: we draw a dimension, a seed and a
conditioning scale, and build the matrix from them with numpy.
"""
import numpy as np
from hypothesis import strategies as st


def spd_matrix(n, seed, log10_cond):
    """Random SPD matrix Q diag(λ) Qᵀ with eigenvalues spread over 10**log10_cond."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eigs = 10.0 ** (log10_cond * rng.uniform(0, 1, n))
    eigs[0], eigs[-1] = 1.0, 10.0 ** log10_cond  # pin the extremes: the drawn scale is the condition number
    A = (Q * eigs) @ Q.T
    return (A + A.T) / 2


def random_partition(n, seed, max_blocks=None):
    """Random block sizes (positive ints) summing to n."""
    rng = np.random.default_rng(seed)
    L = int(rng.integers(1, (max_blocks or n) + 1))
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(L - 1, n - 1), replace=False))
    return [int(s) for s in np.diff(np.concatenate([[0], cuts, [n]]))]


@st.composite
def block_quadratics(draw, min_dim=2, max_dim=8, min_log10_cond=0.0, max_log10_cond=3.0):
    """(A, b, block_sizes, seed): SPD A, random b and a random block partition."""
    n = draw(st.integers(min_dim, max_dim))
    seed = draw(st.integers(0, 2**31 - 1))
    log10_cond = draw(st.floats(min_log10_cond, max_log10_cond))
    A = spd_matrix(n, seed, log10_cond)
    b = np.random.default_rng(seed + 1).standard_normal(n)
    return A, b, random_partition(n, seed + 2), seed


fractions = st.floats(0.02, 0.98)  # η = fraction · (2/c): strictly inside (0, 2/c)
