"""A one-dimensional strongly convex f whose curvature jumps to Λ in a narrow bump (or dips to μ).

    f''(x) = μ + (Λ − μ)·exp(−(x − x₀)²/(2s²)),        f(x*) = f* = 0, f'(x*) = 0

(``dip=True``: f''(x) = Λ − (Λ − μ)·exp(−(x − x₀)²/(2s²)), the Λ-quadratic with a narrow
dip of curvature μ at x₀; GD-LS started at x₀ then takes the long step η/μ with the
gradient of the Λ-quadratic and multiplies the error by ≈ 1 − ηκ, docs/theory.md §3.)

so μ ≤ f'' ≤ Λ everywhere (κ = Λ/μ) and f'' = Λ at x₀. Started at x₀ far from x*
(relative to s), GD-LS takes the step η/Λ from a gradient that is that of the
μ-quadratic: the decrease is a fraction ≈ (2η/κ)(1 − η/2) of the gap, the
first term of Theorem 4′ (docs/theory.md), so the 1/κ² order of Theorem 4 is
tight. Closed forms with G(t) = ∫_{−∞}^t b = s√(π/2)(1 + erf((t − x₀)/(s√2)))
and H(t) = ∫ G = (t − x₀)G(t) + s²b(t), b the Gaussian bump:

    f'(x) = μ(x − x*) + (Λ − μ)(G(x) − G(x*))
    f(x)  = ½μ(x − x*)² + (Λ − μ)(H(x) − H(x*) − G(x*)(x − x*))

(for the dip, swap μ and Λ in these two lines).
"""
from __future__ import annotations

import numpy as np
import scipy.special

from minilayerlr.theory.bounds import check_real
from minilayerlr.theory.problems import BlockProblem, Params


class BumpFunction(BlockProblem):
    """f'' = μ + (Λ − μ)·bump, one block of size 1, minimiser x* (docs/theory.md, Theorem 4′).

    Args:
        mu: μ > 0.
        smoothness: Λ ≥ μ, the global smoothness constant.
        center: x₀, where f'' = Λ.
        width: s > 0.
        minimizer: x*.
        dip: False for the bump f'' = μ + (Λ − μ)·b, True for the dip f'' = Λ − (Λ − μ)·b.
    """

    def __init__(self, mu: float, smoothness: float, center: float, width: float,
                 minimizer: float = 0.0, dip: bool = False):
        values = {n: check_real(v, n) for n, v in (("mu", mu), ("smoothness", smoothness),
                                                     ("center", center), ("width", width),
                                                     ("minimizer", minimizer))}
        if not all(np.isfinite(v) for v in values.values()):
            raise ValueError("mu: every argument of BumpFunction must be finite")
        if not values["mu"] > 0:
            raise ValueError(f"mu: expected a number > 0, got {mu!r}")
        if not values["smoothness"] >= values["mu"]:
            raise ValueError(f"smoothness: expected a number >= mu, got {smoothness!r}")
        if not values["width"] > 0:
            raise ValueError(f"width: expected a number > 0, got {width!r}")
        self.mu, self.big, self.x0 = values["mu"], values["smoothness"], values["center"]
        self.s, self.x_star = values["width"], values["minimizer"]
        if not isinstance(dip, (bool, np.bool_)):
            raise ValueError(f"dip: expected True or False, got {dip!r}")
        # f'' = base + amplitude·bump
        self.base, self.amplitude = (self.big, self.mu - self.big) if dip else (self.mu, self.big - self.mu)
        self._set_blocks([1], 1)

    def _bump(self, t):
        return np.exp(-0.5 * ((t - self.x0) / self.s) ** 2)

    def _G(self, t):
        return self.s * np.sqrt(np.pi / 2) * (1 + scipy.special.erf((t - self.x0) / (self.s * np.sqrt(2))))

    def _H(self, t):
        return (t - self.x0) * self._G(t) + self.s ** 2 * self._bump(t)

    def loss(self, x: np.ndarray) -> float:
        t, d = float(x[0]), float(x[0]) - self.x_star
        extra = self._H(t) - self._H(self.x_star) - self._G(self.x_star) * d
        return float(0.5 * self.base * d * d + self.amplitude * extra)

    def gradient(self, x: np.ndarray) -> np.ndarray:
        t = float(x[0])
        return np.array([self.base * (t - self.x_star) + self.amplitude * (self._G(t) - self._G(self.x_star))])

    def hessian_at(self, x: np.ndarray) -> np.ndarray:
        return np.array([[self.base + self.amplitude * self._bump(float(x[0]))]])

    def strong_convexity(self) -> float:
        """μ."""
        return self.mu

    def smoothness(self) -> float:
        """Λ = sup f''."""
        return self.big

    def minimizer(self) -> Params:
        """x*, as params."""
        return self.split(np.array([self.x_star]))
