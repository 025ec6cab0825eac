"""Per-layer stability: λ_max(H_ll) of every block by power iteration on block-masked HVPs.

On the quadratic model of block l alone, a step α_l along the top eigenvector
of H_ll is stable iff α_l·λ_max(H_ll) < 2 (gradient descent's edge of
stability). Plotting α_l·λ_max(H_ll) against the line 2 shows whether the
step the layer-wise rule chose rides below each layer's edge.

λ_max is estimated without forming H_ll: block l's iterate v_l lives in block
l only (the other blocks are zero), so (H v)_l = H_ll v_l. All L masked
directions travel in one stacked HVP (``Evaluation.hvp_stacked`` with K = L
tangents, tangent k non-zero in block k only), so one iteration costs one
stacked sweep, not L HVPs. After ``iterations`` steps of v ← H_ll v / ‖H_ll v‖
the Rayleigh quotient vᵀH_ll v is reported: it converges to the eigenvalue of
largest magnitude (for an indefinite block it may be a negative one; our
choice is to report it as it is).
"""
from __future__ import annotations

from typing import List

import numpy as np


def block_lambda_max(ev, params, iterations: int = 6, seed: int = 0) -> np.ndarray:
    """Rayleigh-quotient estimate of λ_max(H_ll) for every block, shape (L,).

    Args:
        ev: an ``Evaluation`` of the network at ``params`` on the probe batch.
        params: the parameters (one dict per layer; ``{}`` for layers without).
        iterations: power iterations (>= 1).
        seed: seeds the random start vectors.
    """
    blocks = [k for k, entry in enumerate(params) if entry]
    L = len(blocks)
    rng = np.random.default_rng(seed)
    vs = [{} for _ in params]
    for i, k in enumerate(blocks):
        vs[k] = {name: np.zeros((L,) + a.shape) for name, a in params[k].items()}
        for name, a in params[k].items():
            vs[k][name][i] = rng.standard_normal(a.shape)
    rayleigh = np.zeros(L)
    for _ in range(iterations):
        norms = np.sqrt([sum(np.sum(vs[k][n][i] ** 2) for n in vs[k]) for i, k in enumerate(blocks)])
        for i, k in enumerate(blocks):
            for name in vs[k]:
                vs[k][name][i] /= norms[i]
        hv = ev.hvp_stacked(vs)
        rayleigh = np.array([sum(np.sum(vs[k][n][i] * hv[k][n][i]) for n in vs[k])
                             for i, k in enumerate(blocks)])
        for i, k in enumerate(blocks):
            for name in vs[k]:
                vs[k][name][i] = hv[k][name][i]
    return rayleigh


def stability_epochs(epochs: int, count: int = 3) -> List[int]:
    """The epochs (1..epochs) at which λ_max is measured: ``count`` of them, evenly spread, last included."""
    if epochs <= count:
        return list(range(1, epochs + 1))
    return sorted({int(round(epochs * (i + 1) / count)) for i in range(count)})


def stability_products(step_sizes: List[List[float]], steps: List[int], measured: List[dict]):
    """α_l·λ_max(H_ll) per measurement: α_l is the block's mean step over the epoch just ended.

    Args:
        step_sizes: the run's per-step step sizes, (S, L).
        steps: cumulative steps at each evaluation (history.steps).
        measured: ``[{"epoch": e, "lambda_max": [...]}, ...]``.

    Returns:
        the same list with "alpha" and "product" (each a list of L floats) added.
    """
    sizes = np.asarray(step_sizes, dtype=float)
    out = []
    for entry in measured:
        e = entry["epoch"]
        a, b = steps[e - 1], steps[e]
        alpha = sizes[a:b].mean(axis=0) if b > a else np.full(len(entry["lambda_max"]), np.nan)
        lam = np.asarray(entry["lambda_max"], dtype=float)
        out.append({**entry, "alpha": alpha.tolist(), "product": (alpha * lam).tolist()})
    return out
