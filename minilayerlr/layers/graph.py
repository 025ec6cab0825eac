"""Graph convolution Y = Â X W + b (Kipf & Welling, ICLR 2017, eq. 2).

Â is the symmetric-normalised adjacency with self loops,
Â = D^{-1/2} (A + I) D^{-1/2}, D the degree matrix of A + I, stored as a
scipy.sparse CSR matrix. Nodes are the examples: row n of Y depends on the
neighbours of n, so per-example gradients do not separate (``mixes_examples``).

Shapes: X (N, in_features), Â (N, N), W (in_features, out_features),
b (out_features,), Y (N, out_features).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..validation import check_int, check_memory
from .base import add
from .dense import Dense


def normalized_adjacency(edges, num_nodes: int) -> sp.csr_matrix:
    """D^{-1/2} (A + I) D^{-1/2} from an undirected edge list.

    Args:
        edges: (E, 2) integer array of node pairs; each pair is an undirected
            edge (both directions are added; repeats count once; self loops are
            absorbed into the identity).
        num_nodes: N.
    Returns:
        Â as an (N, N) CSR matrix, symmetric, with ‖Â‖₂ ≤ 1.
    """
    num_nodes = check_int("num_nodes", num_nodes)
    # the self-loops alone: rows, columns and values of N entries, and the CSR copy
    check_memory("num_nodes", f"an adjacency of {num_nodes} nodes", 6 * 8 * float(num_nodes))
    edges = np.asarray(edges)
    if edges.size == 0 and edges.ndim <= 2 and (edges.ndim < 2 or edges.shape[1] in (0, 2)):
        # no edges at all ([] is a float array to NumPy): N isolated nodes, Â = I
        edges = np.zeros((0, 2), dtype=np.int64)
    if edges.ndim != 2 or edges.shape[1] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise ValueError(f"edges: expected an integer array of shape (E, 2), got {edges.dtype} {edges.shape}")
    if edges.size and (edges.min() < 0 or edges.max() >= num_nodes):
        raise ValueError(f"edges: node indices must lie in [0, {num_nodes}), got [{edges.min()}, {edges.max()}]")
    rows = np.concatenate([edges[:, 0], edges[:, 1], np.arange(num_nodes)])
    cols = np.concatenate([edges[:, 1], edges[:, 0], np.arange(num_nodes)])
    adjacency = sp.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(num_nodes, num_nodes)).tocsr()
    adjacency.data[:] = 1.0  # repeated pairs and self loops count once
    inv_sqrt_degree = 1.0 / np.sqrt(np.asarray(adjacency.sum(axis=1)).ravel())
    scale = sp.diags(inv_sqrt_degree)
    return (scale @ adjacency @ scale).tocsr()


def propagate(adjacency, z):
    """Â z along the node axis: z (..., N, F) -> (..., N, F)."""
    n = z.shape[-2]
    moved = np.moveaxis(z, -2, 0)
    out = np.asarray(adjacency @ moved.reshape(n, -1), dtype=z.dtype)  # keep float32 float32
    return np.moveaxis(out.reshape(moved.shape), 0, -2)


class GraphConv(Dense):
    """Y = Â X W + b: a Dense layer applied to the propagated features ÂX.

    Parameters, their shapes and initialisation (Glorot uniform, as Kipf &
    Welling; b = 0) are Dense's; the rules below add Â (and Âᵀ in reverse).
    """

    mixes_examples = True

    def __init__(self, in_features: int, out_features: int, adjacency, init: str = "glorot"):
        super().__init__(in_features, out_features, init)
        if not sp.issparse(adjacency) or adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError("adjacency: expected a square scipy.sparse matrix "
                             "(see normalized_adjacency)")
        if adjacency.dtype.kind not in "iuf":
            raise ValueError(f"adjacency: expected real entries, got dtype {adjacency.dtype}")
        if not np.all(np.isfinite(adjacency.data)):
            raise ValueError("adjacency: contains NaN or Inf")
        self.adjacency = adjacency.tocsr(copy=True)  # a copy: the caller may edit their matrix
        self.adjacency_T = self.adjacency.T.tocsr()

    def __repr__(self):
        return (f"GraphConv(in_features={self.in_features}, out_features={self.out_features}, "
                f"adjacency=<{self.adjacency.shape[0]} nodes, {self.adjacency.nnz} nonzeros>)")

    def block_label(self, index):  # the factors are Dense's on the cached ÂX (our choice)
        return f"gcn{index} {self.in_features}→{self.out_features}"

    def check_batch(self, num_rows: int) -> None:
        if num_rows != self.adjacency.shape[0]:
            raise ValueError(f"x: GraphConv needs one row per node ({self.adjacency.shape[0]}), got {num_rows}")

    def forward(self, p, x):
        ax = propagate(self.adjacency, x)
        return ax @ p["W"] + p["b"], ax

    def backward(self, p, ax, g_y, *, input_grad=True):
        grads = {"W": ax.T @ g_y, "b": g_y.sum(axis=0)}
        g_x = propagate(self.adjacency_T, g_y @ p["W"].T) if input_grad else None
        return g_x, grads

    def backward_input(self, p, ax, g_y):
        return propagate(self.adjacency_T, g_y @ p["W"].T)

    def tangent(self, p, ax, x_dot, p_dot):
        y_dot = None if x_dot is None else propagate(self.adjacency, x_dot) @ p["W"]
        if p_dot is not None:
            y_dot = add(y_dot, ax @ p_dot["W"] + p_dot["b"][:, None, :])
        return y_dot

    def extend_tangent_stack(self, p, ax, stack, direction):
        # Dense's, with the input tangents propagated first: ẏ = (Â ẋ) W for the stack.
        propagated = None if stack is None else propagate(self.adjacency, stack)
        return super().extend_tangent_stack(p, ax, propagated, direction)

    def backward_tangent(self, p, ax, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        # As Dense with input ÂX: product rule on g_W = (ÂX)ᵀ g_y and g_X = Âᵀ g_y Wᵀ.
        g_W_dot = ax.T @ g_y_dot
        if x_dot is not None:
            g_W_dot = g_W_dot + np.swapaxes(propagate(self.adjacency, x_dot), -1, -2) @ g_y
        g_x_dot = None
        if input_grad:
            inner = g_y_dot @ p["W"].T
            if p_dot is not None:
                inner = inner + g_y @ np.swapaxes(p_dot["W"], -1, -2)
            g_x_dot = propagate(self.adjacency_T, inner)
        return g_x_dot, {"W": g_W_dot, "b": g_y_dot.sum(axis=1)}
