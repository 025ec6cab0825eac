"""Layer-wise curvature q_l = d_lᵀ H_ll d_l for every block in one sweep, and estimators.

Exact sweep (kinds ``"hessian"`` and ``"ggn"``). Along d_l alone,
q_l = d²/dt² f(θ + t d_l) at t = 0. Write the network as y_{k+1} = φ_k(y_k) and
start a tangent at layer l (parameter tangent d_l, input tangent 0). By the
chain rule the second derivative of ℓ(y_L(t)) is

    q_l = ẏ_Lᵀ ∇²ℓ ẏ_L + Σ_{k ≥ l} ⟨∂f/∂y_{k+1}, φ_k''[ẏ_k, ẏ_k]⟩ ,

because the term ∇ℓᵀ ÿ_L unrolls, layer by layer, into the backward gradient
at each layer's output contracted with that layer's second derivative. Dense,
Conv2d and GraphConv are linear in their parameters and, once those are fixed,
linear in their input; the tangent enters each through only one of the two, so
their φ'' term vanishes, as it does for pooling and Flatten. Only activations
contribute ⟨g_y, σ''(x) ⊙ ẋ²⟩. The Gauss-Newton form drops these terms and is
≥ 0 for our convex losses. Tangents of all blocks travel together as one
stack: a new row joins at each block, so block l pays for the layers after l.

Estimators (kinds ``"sign_hvp"``, ``"naive_hvp"``, ``"mc_fisher"``):

* random signs ε_l ∈ {±1}: v = Σ ε_l d_l, q̂_l = ε_l d_lᵀ (H v)_l. Unbiased,
  since E[ε_l ε_m] = δ_lm removes the cross-layer blocks H_lm; costs one HVP.
* naive: d_lᵀ (H d)_l = Σ_m d_lᵀ H_lm d_m, biased by the off-diagonal blocks
  (kept to show that bias).
* Monte-Carlo Fisher: back-propagate s with E[s sᵀ] = ∇²_y L (targets drawn
  from the model, see ``losses``) and form r_n = ⟨δ_n, ẏ_n⟩, with δ the
  back-propagated s at block l's output and ẏ the block's output tangent along
  d_l. Then r_n = s_nᵀ J_n d_l and E[Σ_n r_n²] = Σ_n (J_n d_l)ᵀ ∇²_{y_n}L (J_n d_l),
  the Gauss-Newton form. When a later layer mixes examples (a GraphConv after
  block l) δ_n collects the s of neighbours, the per-example split is lost and
  Σ_n r_n² is biased; (Σ_n r_n)² = (sᵀ J d_l)² stays unbiased because the s_n
  are independent with mean zero, so the cross terms vanish in expectation.
  That is what we use there, at a higher variance. Costs about one gradient.

References: Bahamou & Goldfarb, arXiv 2305.13664 (the per-layer quantities);
Pearlmutter 1994 (R-operator); Martens & Grosse 2015 (Monte-Carlo Fisher);
Hutchinson 1989 (random-sign estimators).
"""
from __future__ import annotations

import numpy as np

from typing import NamedTuple

from .tree import as_stack, block_dot


class Kind(NamedTuple):
    """One curvature kind: exact (a block of H or of the Gauss-Newton matrix, and the
    blocks' Gram on request), seeded (a random estimate: a seed per call), biased."""

    exact: bool
    seeded: bool
    biased: bool


#: The one table of curvature kinds (``ev.layer_curvature(d, kind)``), in the docstring's order.
KINDS = {
    "hessian": Kind(exact=True, seeded=False, biased=False),
    "ggn": Kind(exact=True, seeded=False, biased=False),
    "sign_hvp": Kind(exact=False, seeded=True, biased=False),
    "naive_hvp": Kind(exact=False, seeded=False, biased=True),
    "mc_fisher": Kind(exact=False, seeded=True, biased=False),
}
#: Views of the table: the exact kinds, the estimators, those that take a seed, the unbiased ones.
EXACT_KINDS = tuple(name for name, k in KINDS.items() if k.exact)
ESTIMATOR_KINDS = tuple(name for name, k in KINDS.items() if not k.exact)
SEEDED_KINDS = tuple(name for name, k in KINDS.items() if k.seeded)
UNBIASED_KINDS = tuple(name for name, k in KINDS.items() if not k.biased)


def exact_layer_curvature(ev, direction, gauss_newton: bool, coupling: bool = False):
    """q_l = d_lᵀ H_ll d_l (or the Gauss-Newton form) for every block, shape (L,).

    With ``coupling``, also the Gauss-Newton Gram of the blocks' output tangents
    t_l = J d_l, C_lk = t_lᵀ ∇²ℓ t_k, shape (L, L): the stack already holds every
    t_l at the loss, so the pairs cost one (L, L) product and no extra pass.
    Returns (q, C) then.
    """
    q = np.zeros(len(ev.blocks))
    stack = None  # (K, N, ...) tangents of the blocks met so far, in block order
    for k, (layer, p, cache) in enumerate(zip(ev.layers, ev.params, ev.caches)):
        if stack is not None and not gauss_newton:
            q[:stack.shape[0]] += layer.curvature_term(p, cache, stack, ev.output_grads[k])
        if p:  # a block: carry the stack through and start block k's own tangent
            stack = layer.extend_tangent_stack(p, cache, stack, direction[k])
        elif stack is not None:
            stack = layer.tangent(p, cache, stack, None)
    if coupling:
        gram = ev.loss_fn.quadratic_gram(ev.loss_cache, stack)
        return q + np.diag(gram), gram
    q += ev.loss_fn.quadratic(ev.loss_cache, stack)
    return q


def sign_hvp_curvature(ev, direction, rng) -> np.ndarray:
    """Unbiased random-sign estimate ε_l d_lᵀ (H Σ_m ε_m d_m)_l, shape (L,)."""
    signs = rng.choice([-1.0, 1.0], size=len(ev.blocks))
    sign_of = dict(zip(ev.blocks, signs))
    v = [{n: a * sign_of[k] for n, a in entry.items()} for k, entry in enumerate(direction)]
    return signs * block_dot(direction, ev.hvp(v))


def naive_hvp_curvature(ev, direction) -> np.ndarray:
    """Biased d_lᵀ (H d)_l, shape (L,): includes the cross-layer terms d_lᵀ H_lm d_m."""
    return block_dot(direction, ev.hvp(direction))


def sampled_output_grads(ev, rng) -> list:
    """δ_k at every layer's output for one sampled s (E[s sᵀ] = ∇²_y L), back-propagated.

    The one backward pass of the Monte-Carlo Fisher (``mc_fisher_curvature``) and of the
    Kronecker factors (``minilayerlr.kronecker``). Returns one array per layer (the layers
    below the first block repeat its δ; no caller reads them).
    """
    n_layers = len(ev.layers)
    deltas = [None] * n_layers
    g = ev.loss_fn.sample_gradient(ev.loss_cache, rng)
    for k in reversed(range(n_layers)):
        deltas[k] = g
        if k > min(ev.blocks):  # only input gradients: no parameter gradient is needed
            g = ev.layers[k].backward_input(ev.params[k], ev.caches[k], g)
    return deltas


def mc_fisher_curvature(ev, direction, rng) -> np.ndarray:
    """Monte-Carlo Fisher estimate of the Gauss-Newton form, shape (L,)."""
    n_layers = len(ev.layers)
    deltas = sampled_output_grads(ev, rng)
    # mixes_after[k]: some layer after k lets example n's output depend on others
    mixes_after = [any(layer.mixes_examples for layer in ev.layers[k + 1:]) for k in range(n_layers)]
    q = np.zeros(len(ev.blocks))
    for i, k in enumerate(ev.blocks):
        y_dot = ev.layers[k].tangent(ev.params[k], ev.caches[k], None, as_stack(direction[k]))[0]
        r = (y_dot * deltas[k]).reshape(y_dot.shape[0], -1).sum(axis=1)
        q[i] = r.sum() ** 2 if mixes_after[k] else r @ r
    return q
