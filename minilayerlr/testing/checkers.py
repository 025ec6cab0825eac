"""Derivative checkers shared by the tests, the tutorials and ``minilayerlr check``.

Every check compares an exact derivative from the engine with an independent
numerical one, along random directions (HIPS autograd's trick: one directional
difference checks a whole Jacobian-vector product at the cost of two function
calls). Each returns a :class:`CheckResult` with a relative error and the
tolerance it is held to, so a caller can tabulate, assert, or teach with it.

Central differences have error O(ε²) from truncation and O(u/ε) from rounding
(u the unit round-off); ε ≈ u^{1/3} balances them, so in float64 relative
errors near 1e-9 are expected and 1e-6 is a safe tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..tree import flatten, tree_map


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: ``error`` (relative) must not exceed ``tolerance``."""

    name: str
    error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.tolerance)

    def __str__(self) -> str:
        status = "pass" if self.passed else "FAIL"
        return f"{self.name}: error {self.error:.2e} (tolerance {self.tolerance:.0e}) {status}"


def gamma(n: int, dtype=np.float64) -> float:
    """γ_n = n·u / (1 − n·u), u the unit round-off of ``dtype``.

    The relative rounding error of a sum or dot product of n terms, measured
    against the sum of their absolute values (Higham, *Accuracy and Stability
    of Numerical Algorithms*, 2nd ed., Lemma 3.1 and §3.1). Two evaluation
    orders of the same exact quantity (another BLAS kernel, another blocking,
    a stack of tangents instead of one) differ by at most about twice this.
    """
    nu = n * float(np.finfo(dtype).eps)
    return nu / (1 - nu)


def default_eps(dtype) -> float:
    """Step for central differences: about the cube root of the unit round-off."""
    return float(np.finfo(dtype).eps ** (1 / 3))


def relative_error(a, b, floor: float = 0.0) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖, floor, tiny), on flattened arrays."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b), floor, np.finfo(np.float64).tiny)
    return float(np.linalg.norm(a - b) / scale)


def random_like(tree, rng: np.random.Generator):
    """Standard normal arrays with the structure, shapes and dtypes of ``tree``."""
    return tree_map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), tree)


def axpy(alpha: float, x, y):
    """α x + y, leaf-wise."""
    return tree_map(lambda a, b: (alpha * a + b).astype(b.dtype), x, y)


def tree_vdot(a, b) -> float:
    return float(np.vdot(flatten(a), flatten(b)))


def check_gradient(loss: Callable, grad, params, direction, *, eps=None, tol=1e-6,
                   name="gradient") -> CheckResult:
    """⟨∇f(θ), u⟩ against (f(θ + εu) − f(θ − εu)) / 2ε."""
    eps = eps or default_eps(flatten(params).dtype)
    f_plus, f_minus = loss(axpy(eps, direction, params)), loss(axpy(-eps, direction, params))
    numeric = (f_plus - f_minus) / (2 * eps)
    # below 100 round-offs of f per step a difference quotient says nothing
    floor = 100 * np.finfo(flatten(params).dtype).eps * max(abs(f_plus), abs(f_minus)) / eps
    return CheckResult(name, relative_error(tree_vdot(grad, direction), numeric, floor / tol), tol)


def check_hvp(gradient: Callable, hv, params, direction, *, eps=None, tol=1e-6,
              name="hvp") -> CheckResult:
    """H u against (∇f(θ + εu) − ∇f(θ − εu)) / 2ε."""
    eps = eps or default_eps(flatten(params).dtype)
    g_plus, g_minus = flatten(gradient(axpy(eps, direction, params))), flatten(gradient(axpy(-eps, direction, params)))
    numeric = (g_plus - g_minus) / (2 * eps)
    floor = 100 * np.finfo(g_plus.dtype).eps * max(np.linalg.norm(g_plus), np.linalg.norm(g_minus)) / eps
    return CheckResult(name, relative_error(flatten(hv), numeric, floor / tol), tol)


def check_symmetry(hvp: Callable, a, b, *, tol=1e-10, name="symmetry") -> CheckResult:
    """⟨a, H b⟩ = ⟨H a, b⟩, relative to ‖a‖‖Hb‖ + ‖Ha‖‖b‖."""
    ha, hb = flatten(hvp(a)), flatten(hvp(b))
    fa, fb = flatten(a), flatten(b)
    scale = np.linalg.norm(fa) * np.linalg.norm(hb) + np.linalg.norm(ha) * np.linalg.norm(fb)
    return CheckResult(name, abs(float(fa @ hb - ha @ fb)) / max(scale, np.finfo(float).tiny), tol)


def taylor_remainder_order(loss: Callable, grad, hv, params, direction,
                           steps=tuple(np.logspace(-1, -4, 7))) -> float:
    """Slope of log |f(θ+εu) − f(θ) − ε gᵀu − ½ε² uᵀHu| against log ε, as ε → 0.

    A correct gradient and Hessian leave an O(ε³) remainder: slope ≈ 3. A
    wrong Hessian leaves O(ε²), a wrong gradient O(ε) (pymanopt's check).
    Remainders below 100 round-offs of f are noise and dropped; the order is
    the larger slope of the last two pairs of steps left, where the
    asymptotic order shows.
    Returns inf when nothing is left (f is quadratic along u to rounding).
    """
    f0 = loss(params)
    gu = tree_vdot(grad, direction)
    uhu = tree_vdot(direction, hv)
    remainders = np.array([abs(loss(axpy(e, direction, params)) - f0 - e * gu - 0.5 * e * e * uhu) for e in steps])
    rounding = 1e2 * np.finfo(flatten(params).dtype).eps * max(abs(f0), abs(steps[0] * gu), abs(steps[0] ** 2 * uhu))
    informative = remainders > rounding
    if informative.sum() < 2:
        return float("inf")
    logs, log_r = np.log(np.asarray(steps)[informative]), np.log(remainders[informative])
    pair_slopes = np.diff(log_r) / np.diff(logs)
    # The third- and fourth-order terms can cancel near one step and bend a
    # single pair's slope; a wrong Hessian bends every small-step pair to 2.
    return float(pair_slopes[-2:].max())


def check_taylor_order(loss, grad, hv, params, direction, *, min_order=2.5,
                       name="taylor order") -> CheckResult:
    """Pass when the remainder shrinks at order ≥ ``min_order`` (error = min_order − slope ≤ 0)."""
    slope = taylor_remainder_order(loss, grad, hv, params, direction)
    error = 0.0 if slope == np.inf else (max(min_order - slope, 0.0) if np.isfinite(slope) else np.inf)
    return CheckResult(f"{name} (slope {slope:.2f})", error, 0.0)


def check_second_difference(loss: Callable, params, directions, values, *, eps=1e-3, tol=1e-6,
                            name="vs 2nd difference") -> CheckResult:
    """Quadratic forms uᵀ∇²f u (one per direction) against second differences of f.

    The difference carries a rounding error of about 64u|f|/12ε² (u the unit
    round-off): an absolute error up to 100 × that always passes.
    """
    f0 = loss(params)
    numeric = np.array([second_difference(loss, params, u, eps) for u in directions])
    values = np.asarray(values, dtype=float)
    floor = 100 * 64 / 12 * np.finfo(flatten(params).dtype).eps * abs(f0) / eps ** 2
    scale = np.maximum(np.maximum(np.abs(values), np.abs(numeric)), max(floor / tol, np.finfo(float).tiny))
    return CheckResult(name, float(np.max(np.abs(values - numeric) / scale)), tol)


def second_difference(loss: Callable, params, direction, eps=1e-3) -> float:
    """Five-point estimate of uᵀ∇²f u, accurate to O(ε⁴):

    (−f(θ+2εu) + 16 f(θ+εu) − 30 f(θ) + 16 f(θ−εu) − f(θ−2εu)) / 12ε².
    """
    return five_point_second_derivative(lambda t: loss(axpy(t, direction, params)), eps)


def five_point_second_derivative(fn: Callable[[float], float], h: float) -> float:
    """φ''(0) from φ(±2h), φ(±h), φ(0) with O(h⁴) truncation error."""
    return (-fn(2 * h) + 16 * fn(h) - 30 * fn(0.0) + 16 * fn(-h) - fn(-2 * h)) / (12 * h * h)


def mask_to_block(tree, k):
    """Copy of ``tree`` with every entry but ``k`` zeroed."""
    return [{n: (a if j == k else np.zeros_like(a)) for n, a in entry.items()} for j, entry in enumerate(tree)]
