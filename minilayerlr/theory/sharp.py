"""Sharper rate bounds (docs/theory.md, Theorems 1′, 3, 4′, 4″ and 10, Lemma 4.5, Proposition 7).

Notation: f(x) = ½ xᵀAx − bᵀx, A ≻ 0 split into L blocks (L is the number of
blocks, never a smoothness constant); A_ll the diagonal blocks with extreme
eigenvalues λ_l ≤ Λ_l, κ_l = Λ_l/λ_l; B = blockdiag(A_ll); c the coupling
constant (``coupling_constant``). The three block "preconditioners" below
give three relative strong-convexity constants, each the smallest eigenvalue
of a pencil A v = θ P v (θ_min = λ_min(P^{-1/2} A P^{-1/2})):

* μ_D, P = D = blockdiag(Λ_l I): the best μ/M over block rescalings;
* μ_W, P = W⁻¹ = blockdiag(A_ll / K_l), K_l = 4κ_l/(1 + κ_l)² (Kantorovich);
* μ_B, P = B.

and two coupling constants, largest eigenvalues of such pencils: c (P = B) and c_λ
(P = E = blockdiag(λ_l I), the blocks scaled by their smallest eigenvalue).

Every function is invariant under x_l → s_l x_l (A → SAS), as GD-LS is.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.linalg

from minilayerlr.theory.bounds import (block_slices, check_block_sizes, check_real, check_spd,
                                       coupling_constant)


def _blocks(A, block_sizes):
    A = check_spd(A)
    sizes = check_block_sizes(block_sizes, A.shape[0])
    return A, [A[s, s] for s in block_slices(sizes)], block_slices(sizes)


def _pencil_min(A, P) -> float:
    """λ_min of the pencil A v = θ P v (P ≻ 0), i.e. λ_min(P^{-1/2} A P^{-1/2})."""
    return float(scipy.linalg.eigh(A, P, eigvals_only=True)[0])


def kantorovich_constant(A_block) -> float:
    """K = 4κ/(1 + κ)² = 4λΛ/(λ + Λ)² ∈ (0, 1] of an SPD block (K = 1 iff the block is a·I).

    Kantorovich: (gᵀg)² ≥ K·(gᵀA_ll g)(gᵀA_ll⁻¹ g) for every g (docs/theory.md, Theorem 2).
    """
    eig = np.linalg.eigvalsh(check_spd(A_block, "A_block"))
    return float(4 * eig[0] * eig[-1] / (eig[0] + eig[-1]) ** 2)


def rescaled_strong_convexity(A, block_sizes: Sequence[int]) -> float:
    """μ_D = λ_min(D^{-1/2} A D^{-1/2}), D = blockdiag(λ_max(A_ll)·I_l); μ_D ≥ μ/M.

    It is the largest μ/M over all block rescalings x_l → s_l x_l (Theorem 1′(ii)).
    """
    A, blocks, slices = _blocks(A, block_sizes)
    D = np.zeros_like(A)
    for s, Al in zip(slices, blocks):
        D[s, s] = np.linalg.eigvalsh(Al)[-1] * np.eye(Al.shape[0])
    return _pencil_min(A, D)


def kantorovich_strong_convexity(A, block_sizes: Sequence[int]) -> float:
    """μ_W = λ_min(W^{1/2} A W^{1/2}), W = blockdiag(K_l·A_ll⁻¹) (Theorem 1′)."""
    A, blocks, slices = _blocks(A, block_sizes)
    W_inv = np.zeros_like(A)
    for s, Al in zip(slices, blocks):
        W_inv[s, s] = Al / kantorovich_constant(Al)
    return _pencil_min(A, W_inv)


def relative_strong_convexity(A, block_sizes: Sequence[int]) -> float:
    """μ_B = λ_min(B^{-1/2} A B^{-1/2}), B = blockdiag(A_ll); 0 < μ_B ≤ 1 ≤ c."""
    A, blocks, slices = _blocks(A, block_sizes)
    B = np.zeros_like(A)
    for s, Al in zip(slices, blocks):
        B[s, s] = Al
    return _pencil_min(A, B)


def check_scale(scale, upper: float, what: str) -> float:
    """η as a float, or ValueError naming ``scale`` unless 0 < η < upper (``what`` needs it)."""
    scale = check_real(scale, "scale")
    if not (np.isfinite(scale) and 0 < scale < upper):
        raise ValueError(f"scale: {what} needs 0 < scale < {upper:.6g}, got {scale!r}")
    return scale


def invariant_contraction_bound(A, block_sizes: Sequence[int], scale: float) -> float:
    """Theorem 1′: ρ′(η) = 1 − 2η(1 − ηc/2)·max(μ_D, μ_W), for 0 < η < 2/c.

    Args:
        A: SPD matrix, shape (n, n).
        block_sizes: positive ints summing to n.
        scale: η in (0, 2/c).

    Returns:
        ρ′(η) ≤ ρ(η) of Theorem 1; attained with one block; invariant under block rescaling.
    """
    c = coupling_constant(A, block_sizes)
    scale = check_scale(scale, 2 / c, "Theorem 1′")
    mu = max(rescaled_strong_convexity(A, block_sizes), kantorovich_strong_convexity(A, block_sizes))
    return float(1 - 2 * scale * (1 - scale * c / 2) * mu)


def check_scalar_blocks(A, block_sizes: Sequence[int]) -> np.ndarray:
    """Return A, or ValueError naming ``A`` unless every diagonal block is a_l·I."""
    A, blocks, _ = _blocks(A, block_sizes)
    for l, Al in enumerate(blocks):
        # a block assembled in floating point may carry rounding off the diagonal
        if not np.allclose(Al, Al[0, 0] * np.eye(len(Al)), rtol=0, atol=1e-12 * abs(Al[0, 0])):
            raise ValueError(f"A: Theorem 3 needs scalar diagonal blocks A_ll = a_l·I; block {l} is not")
    return A


def block_jacobi_rate(A, block_sizes: Sequence[int], scale: float) -> float:
    """Theorem 3: with A_ll = a_l·I, the worst one-step ratio is max((1 − ημ_B)², (1 − ηc)²).

    GD-LS is then damped block Jacobi, e⁺ = (I − ηB⁻¹A)e; the ratio is exact (attained
    at an eigenvector of the pencil) for every η > 0, and is < 1 iff η < 2/c.
    """
    check_scalar_blocks(A, block_sizes)
    scale = check_scale(scale, np.inf, "Theorem 3")
    mu_b, c = relative_strong_convexity(A, block_sizes), coupling_constant(A, block_sizes)
    return float(max((1 - scale * mu_b) ** 2, (1 - scale * c) ** 2))


def block_jacobi_best_scale(A, block_sizes: Sequence[int]) -> float:
    """Theorem 3: η* = 2/(c + μ_B) minimises the exact rate, giving ((c − μ_B)/(c + μ_B))²."""
    check_scalar_blocks(A, block_sizes)
    return float(2 / (coupling_constant(A, block_sizes) + relative_strong_convexity(A, block_sizes)))


def _check_curvature_range(mu, smoothness):
    """(μ, Λ) as floats, or ValueError naming the argument unless 0 < μ ≤ Λ < ∞."""
    mu, smoothness = check_real(mu, "mu"), check_real(smoothness, "smoothness")
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"mu: expected a finite number > 0, got {mu!r}")
    if not (np.isfinite(smoothness) and smoothness >= mu):
        raise ValueError(f"smoothness: expected a finite number >= mu = {mu}, got {smoothness!r}")
    return mu, smoothness


def improved_strongly_convex_bound(mu: float, smoothness: float, scale: float) -> float:
    """Theorem 4′: ρ(η) = 1 − min{(2η/κ)(1 − η/2), 2η(1 − ηκ/2)}, κ = Λ/μ, 0 < η < 2/κ.

    Same hypotheses as Theorem 4 (``strongly_convex_bound``, Λ = ``smoothness`` the global
    constant); never larger than it; best at η = 2/(κ + 1) with 1 − 4/(κ + 1)². The exact worst
    case is Theorem 4″ (``exact_strongly_convex_rate``): the second term here is loose by κ.
    """
    mu, smoothness = _check_curvature_range(mu, smoothness)
    kappa = smoothness / mu
    scale = check_scale(scale, 2 / kappa, "Theorem 4′")
    return float(1 - min(2 * scale / kappa * (1 - scale / 2), 2 * scale * (1 - scale * kappa / 2)))


def fixed_step_rate(mu: float, smoothness: float, step: float) -> float:
    """Lemma 4.5: max((1 − γμ)², (1 − γΛ)²), the exact one-step ratio of x⁺ = x − γ∇f(x).

    For every f on ℝⁿ with μI ⪯ ∇²f ⪯ ΛI and every γ > 0, f(x⁺) − f* ≤ this·(f(x) − f*)
    (docs/theory.md §3, proved by an interpolation certificate); attained by ½(μx₁² + Λx₂²)
    started on an axis.
    """
    mu, smoothness = _check_curvature_range(mu, smoothness)
    step = check_real(step, "step")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step: Lemma 4.5 needs a finite step > 0, got {step!r}")
    return float(max((1 - step * mu) ** 2, (1 - step * smoothness) ** 2))


def exact_strongly_convex_rate(mu: float, smoothness: float, scale: float) -> float:
    """Theorem 4″: max((1 − η/κ)², (1 − ηκ)²), κ = Λ/μ, any η > 0, any dimension, any blocks.

    The exact worst one-step ratio (f(x⁺) − f*)/(f(x) − f*) of the plain GD-LS step (and of
    SGD-LS with d = g and any EMA history) over C² functions with μI ⪯ ∇²f ⪯ ΛI: every
    α_l ∈ [η/Λ, η/μ], and the block step is a unit gradient step in rescaled coordinates
    (Lemma 4.5). Attained in the limit by the spike and the dip of ``BumpFunction``
    (Proposition 4.3). < 1 iff η < 2/κ; never above Theorem 4′; best at η = 2κ/(κ² + 1).
    """
    mu, smoothness = _check_curvature_range(mu, smoothness)
    scale = check_scale(scale, np.inf, "Theorem 4″")
    kappa = smoothness / mu
    return float(max((1 - scale / kappa) ** 2, (1 - scale * kappa) ** 2))


def one_dimensional_rate(mu: float, smoothness: float, scale: float) -> float:
    """Proposition 4.4: max((1 − η/κ)², (1 − ηκ)²), the one-dimensional case of Theorem 4″.

    Kept under its first name; equal to ``exact_strongly_convex_rate`` (which holds in every
    dimension and with any blocks).
    """
    return exact_strongly_convex_rate(mu, smoothness, scale)


def min_scaled_coupling_constant(A, block_sizes: Sequence[int]) -> float:
    """c_λ = λ_max(E^{-1/2} A E^{-1/2}), E = blockdiag(λ_min(A_ll)·I_l) (Proposition 7).

    The coupling constant after scaling each block by its smallest eigenvalue:
    max(c, κ_max) ≤ c_λ ≤ c·κ_max (κ_max = max_l κ_l), and c_λ = c when every A_ll = a_l·I.
    """
    A, blocks, slices = _blocks(A, block_sizes)
    E = np.zeros_like(A)
    for s, Al in zip(slices, blocks):
        E[s, s] = np.linalg.eigvalsh(Al)[0] * np.eye(Al.shape[0])
    return float(scipy.linalg.eigh(A, E, eigvals_only=True)[-1])


def ema_contraction_bound(A, block_sizes: Sequence[int], scale: float) -> float:
    """Proposition 7: R(η) = max((1 − ημ_D)², (1 − ηc_λ)²), any η > 0.

    The exact supremum of (f(x⁺) − f*)/(f(x) − f*) over all points and all histories of
    SGD-LS with d = g, any EMA factor ρ ∈ [0, 1) (ρ = 0 included: then R bounds GD-LS
    too, and min(ρ′, R) sharpens Theorem 1′), λ = 0, cap not reached, on the quadratic.
    Every α_l lies in [η/Λ_l, η/λ_l] and R is the worst ratio over that box. R < 1 iff
    η < 2/c_λ (``min_scaled_coupling_constant``); for scalar blocks R is Theorem 3's rate.
    """
    scale = check_scale(scale, np.inf, "Proposition 7")
    mu_d = rescaled_strong_convexity(A, block_sizes)
    c_low = min_scaled_coupling_constant(A, block_sizes)
    return float(max((1 - scale * mu_d) ** 2, (1 - scale * c_low) ** 2))


def line_search_bound(mu: float, smoothness: float, scale: float, sufficient_decrease: float = 1e-4,
                      shrink: float = 0.5, one_block: bool = False) -> float:
    """Theorem 10: GD-LS with Armijo backtracking, ρ = 1 − min{2νη/κ, 4ντ(1 − ν)/κ²}, any η > 0.

    With one block (``one_block=True``) the second term improves to 4ντ(1 − ν)/κ.

    For μ-strongly convex f with ∇²f ⪯ Λ·I (κ = Λ/μ), α_l from the exact local block
    Hessian, backtracking t ∈ {1, τ, τ², …} with sufficient decrease ν, as long as the last
    trial τ^{k_max} ≤ 2(1 − ν)/(ηκ) (k_max = 30, τ = ½: any ηκ ≤ 2·10⁹).

    Args:
        mu: μ > 0.
        smoothness: Λ ≥ μ.
        scale: η > 0.
        sufficient_decrease: ν in (0, 1) (default as ``minilayerlr.optim.safeguards``).
        shrink: τ in (0, 1).
        one_block: True when the parameters form a single block (then α⁻ = α⁺).
    """
    mu, smoothness = check_real(mu, "mu"), check_real(smoothness, "smoothness")
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"mu: expected a finite number > 0, got {mu!r}")
    if not (np.isfinite(smoothness) and smoothness >= mu):
        raise ValueError(f"smoothness: expected a finite number >= mu = {mu}, got {smoothness!r}")
    if not isinstance(one_block, (bool, np.bool_)):
        raise ValueError(f"one_block: expected True or False, got {one_block!r}")
    scale = check_scale(scale, np.inf, "Theorem 10")
    nu, tau = check_real(sufficient_decrease, "sufficient_decrease"), check_real(shrink, "shrink")
    if not 0 < nu < 1:
        raise ValueError(f"sufficient_decrease: expected a number in (0, 1), got {sufficient_decrease!r}")
    if not 0 < tau < 1:
        raise ValueError(f"shrink: expected a number in (0, 1), got {shrink!r}")
    kappa = smoothness / mu
    spread = 1.0 if one_block else 1 / kappa   # a lower bound on α⁻/α⁺ (Theorem 10(iii))
    return float(1 - min(2 * nu * scale / kappa, 4 * nu * tau * (1 - nu) * spread / kappa))
