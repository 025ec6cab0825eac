"""Whole-layer and whole-network derivative checks built from the checkers.

``check_layer`` tests one layer's five rules against central differences of
its own ``forward`` (and ``backward``); ``check_network`` tests an evaluation's
gradient, Hessian-vector products, layer-wise curvature and Gauss-Newton
forms against differences of the loss and against dense references built
without the engine's tangent code.
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..tree import as_stack, block_dot, flatten, unflatten
from .kinks import SAFETY, layer_radius, network_radius, same_pattern
from .checkers import (CheckResult, axpy, check_gradient, check_hvp, check_symmetry,
                       check_second_difference, check_taylor_order, default_eps, five_point_second_derivative, mask_to_block, random_like,
                       relative_error, tree_vdot)


def check_layer(layer, params, x, rng, *, tol=1e-6, prefix="") -> List[CheckResult]:
    """VJP adjoint test, JVP, R-operator and curvature term of one layer.

    Tolerances: a central difference with step ε has truncation error
    ε²|φ‴|/6 and rounding error about u|φ|/ε (u the unit round-off). With
    ε = u^{1/3} (6e-6 in float64) the truncation is 6e-12 relative to the
    third derivative; ``tol`` = 1e-6 leaves a factor 1.6e5 for third
    derivatives larger than first ones, which O(1)-scaled instances (unit
    normal inputs, Glorot weights) never approach. The rounding part is not
    left to ``tol``: each check carries an explicit floor of 100 round-offs of
    the values per step, so a check is never failed by rounding alone.

    Args:
        layer: a Layer; params: its dict of arrays (may be empty); x: an input batch.
        rng: numpy Generator for the random directions.
    """
    y, cache = layer.forward(params, x)
    g_y, g_y_dot = rng.standard_normal(y.shape).astype(x.dtype), rng.standard_normal(y.shape).astype(x.dtype)
    x_dot = rng.standard_normal(x.shape).astype(x.dtype)
    p_dot = random_like([params], rng)[0]
    # Steps shrink so that each stencil stays a factor SAFETY inside the
    # kink-free radius along x_dot (kinked layers have no parameters): the
    # central differences reach ±eps, the five-point one ±2h.
    radius = layer_radius(layer, x, x_dot)
    eps = min(default_eps(x.dtype), radius / SAFETY)

    def moved(t):
        return axpy(t, [p_dot], [params])[0], x + t * x_dot

    def forward_at(t):
        p_t, x_t = moved(t)
        return layer.forward(p_t, x_t)[0]

    y_plus, y_minus = forward_at(eps), forward_at(-eps)
    numeric_jvp = (y_plus - y_minus) / (2 * eps)
    jvp = layer.tangent(params, cache, x_dot[None], as_stack(p_dot) or None)[0]
    # rounding floor of a central difference: 100 round-offs of the values per step
    unit = np.finfo(x.dtype).eps
    floor = 100 * unit * max(np.linalg.norm(y_plus), np.linalg.norm(y_minus)) / eps
    results = [CheckResult(prefix + "jvp", relative_error(jvp, numeric_jvp, floor / tol), tol)]

    g_x, g_p = layer.backward(params, cache, g_y)
    adjoint = float(np.vdot(g_x, x_dot)) + tree_vdot([g_p], [p_dot])
    results.append(CheckResult(prefix + "vjp adjoint", relative_error(adjoint, np.vdot(g_y, numeric_jvp)), tol))

    def backward_at(t):
        p_t, x_t = moved(t)
        g_x_t, g_p_t = layer.backward(p_t, layer.forward(p_t, x_t)[1], g_y + t * g_y_dot)
        return np.concatenate([g_x_t.ravel(), flatten([g_p_t])])

    b_plus, b_minus = backward_at(eps), backward_at(-eps)
    numeric_rop = (b_plus - b_minus) / (2 * eps)
    floor = 100 * unit * max(np.linalg.norm(b_plus), np.linalg.norm(b_minus)) / eps
    g_x_dot, g_p_dot = layer.backward_tangent(params, cache, x_dot[None], as_stack(p_dot) or None, g_y, g_y_dot[None])
    rop = np.concatenate([g_x_dot[0].ravel(), flatten([{n: a[0] for n, a in g_p_dot.items()}])])
    results.append(CheckResult(prefix + "R-op", relative_error(rop, numeric_rop, floor / tol), tol))

    results.append(check_curvature_term(layer, params, cache, x, x_dot, g_y, radius, tol, prefix))
    return results


def check_curvature_term(layer, params, cache, x, x_dot, g_y, radius, tol, prefix="") -> CheckResult:
    """⟨g_y, ∂²y/∂x²[ẋ, ẋ]⟩ against a five-point second difference of t ↦ ⟨g_y, y(x + t ẋ)⟩.

    ``radius`` is the kink-free radius along ẋ (``testing.kinks``): the
    stencil reaches ±2h with 2h at most radius / SAFETY.
    """
    # the five-point rule's O(h⁴) truncation and 64u/12h² rounding balance at
    # h ≈ u^{1/6} (2.5e-3 in float64, 7e-2 in float32); we stay a little below
    h = min(1e-3 if x.dtype == np.float64 else 3e-2, radius / (2 * SAFETY))
    along = {}

    def inner(t):
        along[t] = float(np.vdot(g_y, layer.forward(params, x + t * x_dot)[0]))
        return along[t]

    numeric_term = five_point_second_derivative(inner, h)
    term = layer.curvature_term(params, cache, x_dot[None], g_y)[0]
    # five-point truncation h⁴|φ⁽⁶⁾|/90 ≈ 1e-14|φ⁽⁶⁾| at h = 1e-3; the rounding
    # 64u·Σ|g_y||y|/12h² is bounded explicitly below, so 100·tol only has to
    # absorb the truncation with room for φ⁽⁶⁾ up to 1e10 times φ''
    curvature_tol = 1e2 * tol
    # the inner product cancels: its rounding error scales with Σ|g_y||y|, not |⟨g_y, y⟩|
    magnitude = max(float(np.vdot(np.abs(g_y), np.abs(layer.forward(params, x + t * x_dot)[0]))) for t in along)
    rounding = 64 / 12 * np.finfo(x.dtype).eps * magnitude / h ** 2
    scale = max(abs(numeric_term), abs(term), 100 * rounding / curvature_tol, np.finfo(float).tiny)
    return CheckResult(prefix + "curvature term", abs(term - numeric_term) / scale, curvature_tol)


def gauss_newton_reference(net, params, x, y) -> np.ndarray:
    """Dense Jᵀ ∇²L J from central differences of ``net.forward`` and of the loss gradient.

    Independent of the engine's tangent and R-operator code: J column j is
    (F(θ + ε e_j) − F(θ − ε e_j)) / 2ε and ∇²L is differenced from
    ``loss.backward`` on the output.
    """
    theta = flatten(params)
    out = net.forward(params, x)
    columns = []
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = 1.0
        eps = default_eps(theta.dtype)
        if not is_smooth(net):  # keep ±ε e_j SAFETY times inside the kink-free radius
            eps = min(eps, network_radius(net, params, x, unflatten(e, params)) / SAFETY)
        e[j] = eps
        plus = net.forward(unflatten(theta + e, params), x)
        minus = net.forward(unflatten(theta - e, params), x)
        columns.append(((plus - minus) / (2 * eps)).ravel())
    J = np.stack(columns, axis=1)
    targets = net.loss_fn.check_targets(out.shape, y)

    def output_grad(o):
        return net.loss_fn.backward(net.loss_fn.forward(o.reshape(out.shape), targets)[1]).ravel()

    o = out.ravel()
    H_out = np.empty((o.size, o.size))
    eps = default_eps(theta.dtype)  # the losses are smooth in the output
    for j in range(o.size):
        e = np.zeros_like(o)
        e[j] = eps
        H_out[:, j] = (output_grad(o + e) - output_grad(o - e)) / (2 * eps)
    return J.T @ (0.5 * (H_out + H_out.T)) @ J


def is_smooth(net) -> bool:
    """False when the network has kinks (ReLU, max pooling): Taylor orders need C³."""
    return all(layer.smooth for layer in net.layers)


def check_float32(net, params, x, y, rng, *, tol=1e-4, prefix="") -> List[CheckResult]:
    """The engine in float32 against itself in float64 (which the other checks verify).

    Finite differences in float32 are too coarse to test anything (ε ≈ 5e-3
    crosses ReLU kinks), so float32 is held to agreement with float64.
    Tolerance: each quantity is a chain of at most a few layers of sums of at
    most ~100 terms, so its float32 rounding is about γ_100 = 100·u₃₂ = 6e-6
    per layer relative to the size of the terms (Higham, *Accuracy and
    Stability of Numerical Algorithms*, §3.1); 1e-4 ≈ 1700 u₃₂ covers five
    layers and a factor 3 of cancellation in a norm-wise relative error.
    """
    p32 = [{n: a.astype(np.float32) for n, a in e.items()} for e in params]
    x32 = x.astype(np.float32)
    y32 = y.astype(np.float32) if y.dtype.kind == "f" else y
    ev64, ev32 = net.evaluate(params, x, y), net.evaluate(p32, x32, y32)
    d = random_like(params, rng)
    d32 = [{n: a.astype(np.float32) for n, a in e.items()} for e in d]
    pairs = [("loss", ev64.loss, ev32.loss),
             ("gradient", flatten(ev64.grads), flatten(ev32.grads)),
             ("hvp", flatten(ev64.hvp(d)), flatten(ev32.hvp(d32))),
             ("layer curvature", ev64.layer_curvature(d), ev32.layer_curvature(d32)),
             ("ggn curvature", ev64.layer_curvature(d, "ggn"), ev32.layer_curvature(d32, "ggn"))]
    results = [CheckResult(f"{prefix}float32 {name} vs float64", relative_error(a, b), tol) for name, a, b in pairs]
    dtypes_ok = all(a.dtype == np.float32 for e in ev32.grads for a in e.values())
    results.append(CheckResult(prefix + "float32 gradient dtype", 0.0 if dtypes_ok else np.inf, 0.0))
    return results


def check_network(net, params, x, y, rng, *, tol=1e-6, dense=True, prefix="") -> List[CheckResult]:
    """Gradient, HVP, symmetry, Taylor order, layer curvature and Gauss-Newton checks."""
    ev = net.evaluate(params, x, y)

    def loss(p):
        return net.loss_value(p, x, y)

    def gradient(p):
        return net.evaluate(p, x, y).grads

    def step(direction, requested, reach):
        """``requested``, shrunk so that a stencil reaching ±reach·step stays SAFETY times inside the kink-free radius."""
        if is_smooth(net):
            return requested
        return min(requested, network_radius(net, params, x, direction) / (SAFETY * reach))

    u, a, b = (random_like(params, rng) for _ in range(3))
    hu = ev.hvp(u)
    eps = step(u, default_eps(x.dtype), 1)
    results = [
        check_gradient(loss, ev.grads, params, u, eps=eps, tol=tol, name=prefix + "gradient"),
        check_hvp(gradient, hu, params, u, eps=eps, tol=tol, name=prefix + "hvp"),
        # ⟨a, Hb⟩ − ⟨Ha, b⟩ is two dot products over P parameters: γ_P = P·u of ‖a‖‖Hb‖ each,
        # times 10 for the rounding inside Hv itself (at least 100 parameters' worth)
        check_symmetry(ev.hvp, a, b, tol=10 * max(flatten(params).size, 100) * np.finfo(x.dtype).eps,
                       name=prefix + "symmetry"),
    ]
    if x.dtype == np.float64 and is_smooth(net):
        results.append(check_taylor_order(loss, ev.grads, hu, params, u, name=prefix + "taylor order"))

    d = random_like(params, rng)
    q = ev.layer_curvature(d, "hessian")
    masked = np.array([tree_vdot(mask_to_block(d, k), ev.hvp(mask_to_block(d, k))) for k in ev.blocks])
    # engine against engine-free sums (masked HVPs, dense blocks): both exact, so only
    # rounding separates them, far below tol (γ_P ≈ 1e-14 for P ≤ 100)
    results.append(CheckResult(prefix + "layer curvature vs masked hvp", relative_error(q, masked), tol))
    stencils = [(u, (-eps, eps))]
    if x.dtype == np.float64:
        masks = [mask_to_block(d, k) for k in ev.blocks]
        h = min(step(m, 1e-3, 2) for m in masks)  # 1e-3: see check_second_difference
        stencils += [(m, (-2 * h, -h, h, 2 * h)) for m in masks]
        results.append(check_second_difference(loss, params, masks, q, eps=h,
                                               name=prefix + "layer curvature vs 2nd difference"))
    if not is_smooth(net):  # the radius is exact up to the first curved layer; confirm it
        clear = all(same_pattern(net, params, x, direction, ts) for direction, ts in stencils)
        results.append(CheckResult(prefix + "stencils clear of kinks", 0.0 if clear else np.inf, 0.0))
    q_ggn = ev.layer_curvature(d, "ggn")
    ggn_masked = np.array([tree_vdot(mask_to_block(d, k), ev.hvp(mask_to_block(d, k), "ggn")) for k in ev.blocks])
    results.append(CheckResult(prefix + "ggn curvature vs masked ggn-vp", relative_error(q_ggn, ggn_masked), tol))
    if dense:
        results += _dense_checks(net, params, x, y, ev, d, q, q_ggn, tol, prefix)
    return results


def _dense_checks(net, params, x, y, ev, d, q, q_ggn, tol, prefix) -> List[CheckResult]:
    """q and q_ggn against the dense blocks, and the Gauss-Newton forms against JᵀHJ from differences."""
    results = []
    blocks = np.array([flatten([d[k]]) @ ev.block_hessian(i) @ flatten([d[k]]) for i, k in enumerate(ev.blocks)])
    results.append(CheckResult(prefix + "layer curvature vs dense block", relative_error(q, blocks), tol))
    if x.dtype == np.float64:
        G = gauss_newton_reference(net, params, x, y)
        dd = flatten(d)
        offsets = np.cumsum([0] + [flatten([params[k]]).size for k in ev.blocks])
        reference = np.array([dd[s:e] @ G[s:e, s:e] @ dd[s:e] for s, e in zip(offsets[:-1], offsets[1:])])
        # J and ∇²L each carry a central difference's error (≤ tol, as above); their
        # product JᵀHJ up to about twice that relative to its terms; 10·tol leaves a
        # factor 5 for the cancellation in the product
        results.append(CheckResult(prefix + "ggn curvature vs JᵀHJ (differences)",
                                   relative_error(q_ggn, reference), 10 * tol))
        results.append(CheckResult(prefix + "dense ggn vs JᵀHJ (differences)",
                                   relative_error(ev.hessian("ggn"), G), 10 * tol))
    return results


def curvature_blocks(ev, d):
    """Per-block ⟨d_l, d_l⟩, handy for scale-free comparisons (shape (L,))."""
    return block_dot(d, d)
