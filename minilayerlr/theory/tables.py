"""The bound tables printed by ``print_bound_table()``: §2's quadratics and §3's strongly convex rows.

Kept apart from ``worst_case`` because the §3 rows need ``bump`` (the spike and the dip of
Proposition 4.3), which imports ``problems``, which imports ``worst_case``.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from minilayerlr.theory.bounds import strongly_convex_bound
from minilayerlr.theory.bump import BumpFunction
from minilayerlr.theory.sharp import exact_strongly_convex_rate, improved_strongly_convex_bound
from minilayerlr.theory.worst_case import bound_table


def spike_and_dip_ratio(kappa: float, scale: float, width: float = 1e-8) -> float:
    """The larger one-step ratio of plain GD-LS from x₀ = 1 on the spike and the dip of
    ``BumpFunction(1, κ, 1, width)`` (Proposition 4.3): attained, so a lower bound on the worst case,
    within O(κ·width) of Theorem 4″'s max((1 − η/κ)², (1 − ηκ)²)."""
    ratios = []
    for dip in (False, True):
        f = BumpFunction(1.0, kappa, center=1.0, width=width, dip=dip)
        x = np.array([1.0])
        x1 = x - scale * f.gradient(x)[0] / f.hessian_at(x)[0, 0]
        ratios.append(f.loss(x1) / f.loss(x))
    return float(max(ratios))


def strongly_convex_table() -> List[dict]:
    """Rows {kappa, eta, theorem4, theorem4prime, theorem4second, observed} (§3; μ = 1, Λ = κ).

    Theorems 4 and 4′ need η < 2/κ (None past it); Theorem 4″ is exact for every η, and
    ``observed`` (the spike or the dip, width 1e-8) reaches it within O(κ·1e-8).
    """
    rows = []
    for kappa, eta_kappa in ((4.0, 0.5), (4.0, 1.0), (4.0, 1.95), (100.0, 1.0), (100.0, 1.99), (4.0, 3.0)):
        eta = eta_kappa / kappa
        inside = eta_kappa < 2
        rows.append({"kappa": kappa, "eta": eta,
                     "theorem4": strongly_convex_bound(1.0, kappa, eta) if inside else None,
                     "theorem4prime": improved_strongly_convex_bound(1.0, kappa, eta) if inside else None,
                     "theorem4second": exact_strongly_convex_rate(1.0, kappa, eta),
                     "observed": spike_and_dip_ratio(kappa, eta)})
    return rows


def print_bound_table(rows: Optional[List[dict]] = None) -> None:
    """Print ``bound_table()`` (or ``rows`` from it): c, c_λ, Theorem 1 (ρ_T), Theorem 1′ (ρ′),
    Proposition 7 (R), and the observed worst one-step ratio of GD-LS (≤ min(ρ′, R))."""
    if rows is None:
        print("Quadratics (§2):")
    print(f"{'instance':34s} {'c':>6s} {'c_lam':>7s} {'mu/M':>8s} {'rho_T':>8s} {'rho_prime':>9s} "
          f"{'R':>9s} {'observed':>8s}")
    for r in bound_table() if rows is None else rows:
        print(f"{r['name']:34s} {r['c']:6.3f} {r['c_lambda']:7.3f} {r['mu_over_M']:8.5f} {r['rho_T']:8.5f} "
              f"{r['rho_prime']:9.5f} {r['R']:9.5g} {r['observed']:8.5f}")
    if rows is None:
        print("\nSmooth strongly convex f, mu = 1, Lambda = kappa (§3; '-' where eta >= 2/kappa):")
        print(f"{'kappa':>6s} {'eta*kappa':>9s} {'Thm 4':>9s} {'Thm 4prime':>10s} {'Thm 4second':>11s} {'observed':>9s}")
        fmt = lambda v, w: f"{'-':>{w}s}" if v is None else f"{v:{w}.6f}"  # noqa: E731
        for r in strongly_convex_table():
            print(f"{r['kappa']:6g} {r['eta'] * r['kappa']:9.3g} {fmt(r['theorem4'], 9)} "
                  f"{fmt(r['theorem4prime'], 10)} {fmt(r['theorem4second'], 11)} {r['observed']:9.6f}")
