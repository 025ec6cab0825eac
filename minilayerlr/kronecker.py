"""Kronecker factors of the Fisher (Gauss-Newton) blocks: K-FAC for Dense and GraphConv, KFC for Conv2d.

For a layer y = W̃ᵀ ã with ã = (a, 1) (the bias as a last input of 1), the
Gauss-Newton block of W̃ is Σ_n (ã_n ã_nᵀ) ⊗ E[δ_n δ_nᵀ], δ_n the
back-propagated output gradient for targets drawn from the model's own
predictive distribution (``losses.sample_gradient``, E[s sᵀ] = ∇²_y L).
K-FAC assumes activations and output gradients independent and keeps

    A = (1/N) Σ_n ã_n ã_nᵀ             (input factor,  (d_in + 1) × (d_in + 1))
    G = Σ_n δ_n δ_nᵀ                    (output factor, d_out × d_out)

so that A ⊗ G ≈ the block (Martens & Grosse 2015, section 3, eq. 1–3). The δ
already carry the loss's 1/√N (or 1/√|M| for a masked loss), so G is the
per-example E[g gᵀ] of the paper and A ⊗ G has the scale of the block itself.

Conv2d (Grosse & Martens 2016, KFC, section 3.1): the parameters are shared
over the |T| = H_out·W_out output locations t, so

    A = (1/N) Σ_n Σ_t p̃_{n,t} p̃_{n,t}ᵀ      (patches p of size C·k·k, plus 1; spatial sum)
    G = (1/|T|) Σ_n Σ_t δ_{n,t} δ_{n,t}ᵀ    (spatial mean)

(KFC's Ω and Γ, eq. 18–19). GraphConv is a Dense layer on the propagated
features ÂX (its cache), with N the number of nodes (our choice: the paper
has no graph layers).

Index convention. Dense and GraphConv: W is (d_in, d_out), W̃ = [W; b] is
(d_in + 1, d_out) and flatten order (W, then b, C order) is vec of W̃ by rows,
so the block is kron(A, G). Conv2d: W is (O, C, k, k); W̃ = [W.reshape(O, −1), b]
is (O, C·k·k + 1) and the block is kron(G, A) on vec of W̃ by rows.

Cost: A is one matrix product on the cached inputs (patches for Conv2d);
G needs one extra backward pass of sampled gradients through the input
gradients only (no parameter gradients), about one gradient in all.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from .layers.conv import Conv2d
from .layers.dense import Dense
from .validation import as_generator


def sampled_output_grads(ev, rng) -> list:
    """δ_k at every layer's output for one sampled s (E[s sᵀ] = ∇²_y L), as ``mc_fisher`` draws it.

    Returns a list with one array per layer (None below the first block).
    """
    n_layers = len(ev.layers)
    deltas = [None] * n_layers
    g = ev.loss_fn.sample_gradient(ev.loss_cache, rng)
    for k in reversed(range(n_layers)):
        deltas[k] = g
        if k > min(ev.blocks):  # only input gradients: no parameter gradient is needed
            g = ev.layers[k].backward_input(ev.params[k], ev.caches[k], g)
    return deltas


def with_ones(a: np.ndarray) -> np.ndarray:
    """ã = (a, 1) row by row: (M, d) -> (M, d + 1)."""
    return np.concatenate([a, np.ones((a.shape[0], 1), dtype=a.dtype)], axis=1)


def dense_factors(inputs: np.ndarray, delta: np.ndarray) -> Dict[str, np.ndarray]:
    """A = ãᵀã / N and G = δᵀδ for a Dense (or GraphConv, inputs = ÂX) layer.

    Args:
        inputs: a (N, d_in), the layer's input (ÂX for GraphConv).
        delta: δ (N, d_out), sampled output gradients.
    """
    a = with_ones(inputs)
    return {"A": a.T @ a / inputs.shape[0], "G": delta.T @ delta}


def conv_factors(cols: np.ndarray, delta: np.ndarray) -> Dict[str, np.ndarray]:
    """KFC's A = (1/N) Σ_{n,t} p̃ p̃ᵀ and G = (1/|T|) Σ_{n,t} δ δᵀ for a Conv2d layer.

    Args:
        cols: patches (N, H_out, W_out, C, k, k), the layer's cached im2col.
        delta: δ (N, O, H_out, W_out), sampled output gradients.
    """
    n, h, w = cols.shape[:3]
    p = with_ones(cols.reshape(n * h * w, -1))
    d = np.moveaxis(delta, 1, -1).reshape(n * h * w, -1)
    return {"A": p.T @ p / n, "G": d.T @ d / (h * w)}


def kronecker_factors(ev, seed=None) -> List[Dict[str, np.ndarray]]:
    """The K-FAC / KFC factors (A, G) of every block of an ``Evaluation``, in ``ev.blocks`` order.

    Args:
        ev: an ``Evaluation`` (its caches and loss supply the inputs; one
            sampled backward pass supplies δ).
        seed: int, numpy Generator or None (fresh entropy) for the targets
            sampled from the model's predictive distribution.
    Returns:
        list with one dict per block: ``"A"`` (input factor) and ``"G"``
        (output factor), square float arrays; see the module docstring for
        their shapes and the Kronecker order.
    Raises:
        ValueError: a block whose layer has no Kronecker factorisation here.
    """
    rng = as_generator("seed", seed, allow_none=True)
    deltas = sampled_output_grads(ev, rng)
    factors = []
    for k in ev.blocks:
        layer, cache = ev.layers[k], ev.caches[k]
        if isinstance(layer, Conv2d):
            factors.append(conv_factors(cache[1], deltas[k]))
        elif isinstance(layer, Dense):  # GraphConv is a Dense layer and caches ÂX
            factors.append(dense_factors(cache, deltas[k]))
        else:
            raise ValueError(f"kronecker_factors: no Kronecker factorisation for layer {k} "
                             f"({type(layer).__name__}); Dense, GraphConv and Conv2d have one")
    return factors
