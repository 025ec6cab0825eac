"""Shared helpers of the theory tests: the plain idealized method and its runs.

The theorems are about GD-LS exactly as written (no line search): ``plain_gdls``
builds it as ``LayerwiseStepSize`` around SGD with ρ = 0, λ = 0, no cap.
"""
import numpy as np

from minilayerlr.optim import SGD, LayerwiseStepSize, apply_updates
from minilayerlr.theory import BlockQuadratic


def plain_gdls(scale=None):
    """GD-LS as the theorems state it: α_l = η‖g_l‖²/g_lᵀH_ll g_l, no safeguard."""
    return LayerwiseStepSize(SGD(lr=1.0), scale="blocks" if scale is None else scale, damping=0.0,
                             ema=0.0, curvature_kind="hessian", denominator="signed")


def run_gaps(problem, opt, x0, steps, gap):
    """Run ``opt`` on ``problem`` from flat x0; return [gap(x_0), …, gap(x_steps)]."""
    params = problem.split(x0)
    state = opt.init(params)
    gaps = [gap(x0)]
    for _ in range(steps):
        ev = problem.evaluate(params)
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = apply_updates(params, updates)
        gaps.append(gap(problem.join(params)))
    return gaps


def quadratic_gap(quad):
    """f(x) − f* = ½ (x − x*)ᵀA(x − x*), computed without cancellation."""
    x_star = quad.join(quad.minimizer())
    return lambda x: 0.5 * (x - x_star) @ quad.A @ (x - x_star)


def one_step_ratio_of_optimizer(A, sizes, scale, e):
    """One step of the plain GD-LS optimizer from error e (x* = 0): (f(x⁺) − f*)/(f(x) − f*)."""
    quad = BlockQuadratic(A, np.zeros(len(A)), sizes)
    x1 = run_gaps(quad, plain_gdls(scale), e, 1, lambda x: x)[-1]
    return (x1 @ A @ x1) / (e @ A @ e)
