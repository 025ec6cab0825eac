"""Contextual stochastic block model graphs and node splits.

The contextual SBM (Deshpande et al., "Contextual Stochastic Block Models",
NeurIPS 2018) couples a stochastic block model (edges more likely inside a
class) with Gaussian node features whose mean depends on the class. It is the
embedded stand-in for Cora in the GCN experiment of Bahamou & Goldfarb (arXiv
2305.13664, section 5).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..validation import check_int, check_memory
from .containers import GraphDataset, balanced_labels, check_float


def unrank_pairs(k: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Map ranks of pairs ``i < j < n`` (row-major order) back to ``(i, j)``.

    Row ``i`` starts at rank ``r(i) = i (2n - i - 1) / 2``; ``i`` is the
    largest row with ``r(i) <= k``, found by solving a quadratic (counted
    from the last pair, which keeps it well conditioned) and correcting
    float rounding by one step either way.

    Args:
        k: int64 ranks, shape (K,), each in ``[0, n (n - 1) / 2)``.
        n: number of items (up to about 3e9, where i (2n - i) nears the
            int64 limit).

    Returns:
        Arrays i and j, shape (K,), with ``0 <= i < j < n``.
    """
    k = np.asarray(k, dtype=np.int64)

    def start(row):
        return row * (2 * n - row - 1) // 2

    # Count from the end: the last m rows hold m (m + 1) / 2 pairs, so the
    # row m (from the end) of the t-th pair from the end solves a quadratic
    # with no cancellation, unlike the forward formula's b² − 8k near k ≈ n²/2.
    t = (n * (n - 1) // 2 - 1 - k).astype(np.float64)
    m = np.floor((np.sqrt(8.0 * t + 1.0) - 1.0) / 2).astype(np.int64)
    i = np.clip(n - 2 - m, 0, max(n - 2, 0))
    i -= start(i) > k                       # went one row too far
    i += start(i + 1) <= k                  # stopped one row short
    j = k - start(i) + i + 1
    return i, j


def _sample_block(rng: np.random.Generator, num_pairs: int, p: float) -> np.ndarray:
    """Distinct ranks (K,) of the pairs kept when each of num_pairs is kept w.p. p."""
    count = rng.binomial(num_pairs, p)
    # Generator.choice without replacement samples ``count`` ranks in
    # O(count) memory, so no dense N x N matrix is ever built.
    return np.sort(rng.choice(num_pairs, size=count, replace=False)).astype(np.int64)


def _sbm_bytes(n: int, c: int, f: int, p_in: float, p_out: float) -> float:
    """Peak bytes of :func:`contextual_sbm`, an upper-bound order of magnitude.

    Expected edges E ≈ n²/2 · (p_in/c + p_out(c−1)/c) for balanced classes; each costs
    its int64 pair, the sort's index and the pair ranks drawn for it (~64 bytes, our
    constant). Features are float64 (n, f) plus the noise drawn for them.
    """
    n = float(n)
    edges = n * n / 2 * (p_in / c + p_out * (c - 1) / c)
    return 64 * edges + 2 * 8 * n * f + 8 * 8 * n


def sample_sbm_edges(labels: np.ndarray, p_in: float, p_out: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Sample undirected SBM edges: each pair is an edge independently.

    Args:
        labels: int64 (N,) class of each node.
        p_in: edge probability for two nodes of the same class.
        p_out: edge probability for two nodes of different classes.
        rng: random generator.

    Returns:
        int64 (E, 2), rows ``(i, j)`` with ``i < j``, sorted, without duplicates.
    """
    members = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
    parts: List[np.ndarray] = []
    for a, nodes_a in enumerate(members):
        n_a = nodes_a.size
        ranks = _sample_block(rng, n_a * (n_a - 1) // 2, p_in)
        i, j = unrank_pairs(ranks, n_a)
        parts.append(np.stack([nodes_a[i], nodes_a[j]], axis=1))
        for nodes_b in members[a + 1:]:
            ranks = _sample_block(rng, n_a * nodes_b.size, p_out)
            u, v = nodes_a[ranks // nodes_b.size], nodes_b[ranks % nodes_b.size]
            parts.append(np.stack([np.minimum(u, v), np.maximum(u, v)], axis=1))
    edges = np.concatenate(parts).astype(np.int64).reshape(-1, 2)
    return edges[np.lexsort((edges[:, 1], edges[:, 0]))]


def split_nodes(labels: np.ndarray, train_per_class: int, num_val: int,
                num_test: Optional[int], rng: np.random.Generator
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planetoid-style split: a few labelled nodes per class, then val and test.

    ``train_per_class`` random nodes of every class form the training set;
    ``num_val`` and then ``num_test`` nodes are drawn at random from the rest
    (``num_test=None`` takes all remaining nodes). This follows the sizes of
    Yang et al. (2016) / Kipf & Welling (2017) but is our own seeded draw,
    not their fixed index lists.

    Returns:
        Disjoint bool masks (train, val, test), each (N,).

    Raises:
        ValueError: if a class is too small or too few nodes remain.
    """
    n = labels.shape[0]
    train = []
    for c in range(int(labels.max()) + 1):
        nodes = np.flatnonzero(labels == c)
        if nodes.size < train_per_class:
            raise ValueError(f"train_per_class={train_per_class} but class {c} "
                             f"has only {nodes.size} nodes")
        train.append(rng.choice(nodes, size=train_per_class, replace=False))
    train_idx = np.concatenate(train)
    rest = rng.permutation(np.setdiff1d(np.arange(n), train_idx))
    if num_test is None:
        num_test = rest.size - num_val
    if num_val + num_test > rest.size or num_test < 0:
        raise ValueError(f"num_val={num_val} and num_test={num_test} need "
                         f"{num_val + max(num_test, 0)} nodes beyond the training "
                         f"set, only {rest.size} remain")
    masks = np.zeros((3, n), dtype=bool)
    masks[0, train_idx] = True
    masks[1, rest[:num_val]] = True
    masks[2, rest[num_val:num_val + num_test]] = True
    return masks[0], masks[1], masks[2]


def contextual_sbm(num_nodes: int = 1200, num_classes: int = 4, num_features: int = 32,
                   p_in: float = 0.02, p_out: float = 0.002, feature_signal: float = 1.0,
                   train_per_class: int = 20, num_val: int = 200,
                   num_test: Optional[int] = None, seed: int = 0) -> GraphDataset:
    """Generate a contextual stochastic block model graph.

    Labels are balanced (counts differ by at most one). Class ``c`` has a
    mean ``m_c`` drawn uniformly on the sphere of radius ``feature_signal``
    in R^F, and node features are ``x_i = m_{y_i} + z_i`` with
    ``z_i ~ N(0, I_F)``. Each pair ``i < j`` is an edge independently with
    probability ``p_in`` if ``y_i = y_j`` and ``p_out`` otherwise, so the
    expected edge homophily is
    ``h = p_in W / (p_in W + p_out B)`` with W (B) the number of within-
    (between-) class pairs.

    Args:
        num_nodes: N (>= 2).
        num_classes: C (>= 2, <= N).
        num_features: F (>= 1).
        p_in, p_out: edge probabilities in [0, 1].
        feature_signal: norm of each class mean (>= 0); 0 makes features
            uninformative.
        train_per_class: labelled training nodes per class (>= 1).
        num_val: validation nodes (>= 0).
        num_test: test nodes (>= 0); None uses all remaining nodes.
        seed: seed for ``numpy.random.default_rng``.

    Returns:
        GraphDataset with features (N, F) float64, labels (N,) int64,
        edges (E, 2) int64 and disjoint train/val/test masks (N,).

    Raises:
        ValueError: naming the offending argument.
    """
    num_nodes = check_int("num_nodes", num_nodes, minimum=2)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    if num_classes > num_nodes:
        raise ValueError(f"num_classes={num_classes} exceeds num_nodes={num_nodes}")
    num_features = check_int("num_features", num_features)
    p_in = check_float("p_in", p_in, 0.0, 1.0)
    p_out = check_float("p_out", p_out, 0.0, 1.0)
    feature_signal = check_float("feature_signal", feature_signal)
    train_per_class = check_int("train_per_class", train_per_class)
    num_val = check_int("num_val", num_val, minimum=0)
    if num_test is not None:
        num_test = check_int("num_test", num_test, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    check_memory("num_nodes", f"a graph of {num_nodes} nodes",
                 _sbm_bytes(num_nodes, num_classes, num_features, p_in, p_out))

    rng = np.random.default_rng(seed)
    labels = balanced_labels(num_nodes, num_classes, rng)
    directions = rng.standard_normal((num_classes, num_features))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    features = feature_signal * directions[labels] + rng.standard_normal(
        (num_nodes, num_features))
    edges = sample_sbm_edges(labels, p_in, p_out, rng)
    train, val, test = split_nodes(labels, train_per_class, num_val, num_test, rng)
    return GraphDataset(features, labels, edges, num_nodes, train, val, test,
                        tuple(str(c) for c in range(num_classes)))
