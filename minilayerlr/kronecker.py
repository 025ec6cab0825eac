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

from .curvature import sampled_output_grads
from .layers.conv import conv_factors
from .layers.dense import dense_factors
from .validation import as_generator

__all__ = ["sampled_output_grads", "dense_factors", "conv_factors", "kronecker_factors"]


def kronecker_factors(ev, seed=None) -> List[Dict[str, np.ndarray]]:
    """The K-FAC / KFC factors (A, G) of every block of an ``Evaluation``, in ``ev.blocks`` order.

    Each block's layer computes its own (``Layer.kronecker_factors``: Dense, GraphConv
    and Conv2d have them) from its cache and one sampled backward pass δ.

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
        ValueError: a block whose layer has no Kronecker factorisation.
    """
    rng = as_generator("seed", seed, allow_none=True)
    deltas = sampled_output_grads(ev, rng)
    factors = []
    for k in ev.blocks:
        layer = ev.layers[k]
        entry = layer.kronecker_factors(ev.params[k], ev.caches[k], deltas[k])
        if entry is None:
            raise ValueError(f"kronecker_factors: no Kronecker factorisation for layer {k} "
                             f"({type(layer).__name__}); Dense, GraphConv and Conv2d have one")
        factors.append(entry)
    return factors
