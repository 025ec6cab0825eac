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


def default_eps(dtype) -> float:
    """Step for central differences: about the cube root of the unit round-off."""
    return float(np.finfo(dtype).eps ** (1 / 3))


def relative_error(a, b) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖, tiny), on flattened arrays."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(b), np.finfo(np.float64).tiny)
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
    numeric = (loss(axpy(eps, direction, params)) - loss(axpy(-eps, direction, params))) / (2 * eps)
    return CheckResult(name, relative_error(tree_vdot(grad, direction), numeric), tol)


def check_hvp(gradient: Callable, hv, params, direction, *, eps=None, tol=1e-6,
              name="hvp") -> CheckResult:
    """H u against (∇f(θ + εu) − ∇f(θ − εu)) / 2ε."""
    eps = eps or default_eps(flatten(params).dtype)
    numeric = (flatten(gradient(axpy(eps, direction, params)))
               - flatten(gradient(axpy(-eps, direction, params)))) / (2 * eps)
    return CheckResult(name, relative_error(flatten(hv), numeric), tol)


def check_symmetry(hvp: Callable, a, b, *, tol=1e-10, name="symmetry") -> CheckResult:
    """⟨a, H b⟩ = ⟨H a, b⟩, relative to ‖a‖‖Hb‖ + ‖Ha‖‖b‖."""
    ha, hb = flatten(hvp(a)), flatten(hvp(b))
    fa, fb = flatten(a), flatten(b)
    scale = np.linalg.norm(fa) * np.linalg.norm(hb) + np.linalg.norm(ha) * np.linalg.norm(fb)
    return CheckResult(name, abs(float(fa @ hb - ha @ fb)) / max(scale, np.finfo(float).tiny), tol)


def taylor_remainder_order(loss: Callable, grad, hv, params, direction,
                           steps=(1e-2, 5e-3, 2.5e-3, 1.25e-3)) -> float:
    """Slope of log |f(θ+εu) − f(θ) − ε gᵀu − ½ε² uᵀHu| against log ε.

    A correct gradient and Hessian leave an O(ε³) remainder: slope ≈ 3. A
    wrong Hessian leaves O(ε²), a wrong gradient O(ε) (pymanopt's check).
    """
    f0 = loss(params)
    gu = tree_vdot(grad, direction)
    uhu = tree_vdot(direction, hv)
    remainders = [abs(loss(axpy(e, direction, params)) - f0 - e * gu - 0.5 * e * e * uhu) for e in steps]
    remainders = np.maximum(remainders, np.finfo(float).tiny)
    slope = np.polyfit(np.log(steps), np.log(remainders), 1)[0]
    return float(slope)


def check_taylor_order(loss, grad, hv, params, direction, *, min_order=2.7,
                       name="taylor order") -> CheckResult:
    """Pass when the remainder shrinks at order ≥ ``min_order`` (error = min_order − slope ≤ 0)."""
    slope = taylor_remainder_order(loss, grad, hv, params, direction)
    return CheckResult(f"{name} (slope {slope:.2f})", max(min_order - slope, 0.0) if np.isfinite(slope) else np.inf, 0.0)


def second_difference(loss: Callable, params, direction, eps=1e-4) -> float:
    """(f(θ + εu) − 2 f(θ) + f(θ − εu)) / ε², an O(ε²) estimate of uᵀ∇²f u."""
    return (loss(axpy(eps, direction, params)) - 2 * loss(params) + loss(axpy(-eps, direction, params))) / eps ** 2


def mask_to_block(tree, k):
    """Copy of ``tree`` with every entry but ``k`` zeroed."""
    return [{n: (a if j == k else np.zeros_like(a)) for n, a in entry.items()} for j, entry in enumerate(tree)]
