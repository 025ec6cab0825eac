"""Mini-batch SGD-LS on a noisy quadratic: the noise floor (docs/theory.md, Proposition 9).

Model: f(x) = ½ xᵀAx − bᵀx and a mini-batch gradient g_S = ∇f(x) + ξ, with ξ
independent across steps, E ξ = 0, E ξξᵀ = Σ_S (for a batch of |S| samples drawn
with replacement, Σ_S = Σ/|S|, Σ the per-sample covariance). SGD-LS uses the
same batch for the numerator and the curvature, d = g_S, ρ = 0, exact A_ll.

* From the optimum, the step leaves: f(x⁺) − f* ≥ ½ μ_D η² Σ_l ‖ξ_l‖²/Λ_l for
  every draw (``optimum_escape_bound`` is its expectation).
* With scalar blocks A_ll = a_l·I the step is α_l = η/a_l whatever the noise, so
  e⁺ = T e − ηB⁻¹ξ with T = I − ηB⁻¹A: a linear recursion whose stationary
  covariance P = T P Tᵀ + η² B⁻¹Σ_S B⁻¹ gives the floor E[f − f*] = ½ tr(AP)
  (``block_jacobi_noise_floor``), which is O(η·tr Σ_S) as η → 0.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.linalg

from minilayerlr.theory.bounds import (as_real_array, block_diagonal, block_slices, check_block_sizes,
                                       check_spd, coupling_constant)
from minilayerlr.theory.sharp import check_scalar_blocks, check_scale
from minilayerlr.validation import check_int


def _check_cov(noise_cov, n: int) -> np.ndarray:
    cov = as_real_array(noise_cov, "noise_cov")
    if cov.shape != (n, n) or not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T) or \
            np.linalg.eigvalsh((cov + cov.T) / 2)[0] < -1e-12 * max(1.0, np.abs(cov).max()):
        raise ValueError(f"noise_cov: expected a symmetric positive semidefinite ({n}, {n}) matrix")
    return (cov + cov.T) / 2


def block_jacobi_noise_covariance(A, block_sizes: Sequence[int], scale: float, noise_cov) -> np.ndarray:
    """P = Cov(x − x*) in the stationary regime, scalar blocks, 0 < η < 2/c; shape (n, n)."""
    A = check_scalar_blocks(A, block_sizes)
    scale = check_scale(scale, 2 / coupling_constant(A, block_sizes), "a stationary regime (Theorem 3)")
    B_inv = np.linalg.inv(block_diagonal(A, block_sizes))
    T = np.eye(len(A)) - scale * B_inv @ A
    Q = scale ** 2 * B_inv @ _check_cov(noise_cov, len(A)) @ B_inv
    P = scipy.linalg.solve_discrete_lyapunov(T, Q)  # P = T P Tᵀ + Q
    return (P + P.T) / 2


def block_jacobi_noise_floor(A, block_sizes: Sequence[int], scale: float, noise_cov) -> float:
    """Stationary E[f(x) − f*] = ½ tr(A P) of mini-batch SGD-LS with scalar blocks (Prop. 9(c))."""
    P = block_jacobi_noise_covariance(A, block_sizes, scale, noise_cov)
    return float(0.5 * np.trace(check_spd(A) @ P))


def optimum_escape_bound(A, block_sizes: Sequence[int], scale: float, noise_cov,
                         batch_hessian=None) -> float:
    """Prop. 9(b): from x = x*, E[f(x⁺) − f*] ≥ ½ μ_D η² Σ_l tr(Σ_S,ll)/Λ_l, any blocks.

    With ``batch_hessian`` A_S (the steps use the batch's curvature, the gap uses A), Λ_l are
    A_S's block maxima and μ_D = λ_min(D_S^{-1/2} A D_S^{-1/2}), D_S = blockdiag(Λ_l I).
    """
    A = check_spd(A)
    sizes = check_block_sizes(block_sizes, A.shape[0])
    cov = _check_cov(noise_cov, len(A))
    scale = check_scale(scale, np.inf, "Proposition 9")
    steps_from = A if batch_hessian is None else check_spd(batch_hessian, "batch_hessian")
    if steps_from.shape != A.shape:
        raise ValueError(f"batch_hessian: expected shape {A.shape}, got {steps_from.shape}")
    D = np.zeros_like(A)
    for s in block_slices(sizes):
        D[s, s] = np.linalg.eigvalsh(steps_from[s, s])[-1] * np.eye(s.stop - s.start)
    mu_d = float(scipy.linalg.eigh(A, D, eigvals_only=True)[0])
    total = sum(np.trace(cov[s, s]) / D[s.start, s.start] for s in block_slices(sizes))
    return float(0.5 * mu_d * scale ** 2 * total)


def block_jacobi_floor_standard_error(A, block_sizes: Sequence[int], scale: float, noise_cov,
                                      steps: int) -> float:
    """Standard deviation of the mean of ``steps`` stationary gaps, Gaussian noise, scalar blocks.

    The stationary errors are Gaussian with Cov(e_{t+k}, e_t) = T^k P, so the gaps
    G_t = ½ e_tᵀAe_t have autocovariance γ_k = ½ tr(A T^kP A (T^kP)ᵀ) and the mean of n
    of them has variance (n γ_0 + 2 Σ_{k≥1} (n − k) γ_k)/n² (a tolerance from the problem).
    """
    A = check_scalar_blocks(A, block_sizes)
    steps = check_int("steps", steps, 1)
    P = block_jacobi_noise_covariance(A, block_sizes, scale, noise_cov)
    T = np.eye(len(A)) - scale * np.linalg.inv(block_diagonal(A, block_sizes)) @ A
    gammas, C = [], P
    while len(gammas) < steps and (not gammas or gammas[-1] > 1e-18 * gammas[0]):
        gammas.append(0.5 * np.trace(A @ C @ A @ C.T))
        C = T @ C
    k = np.arange(1, len(gammas))
    var = (steps * gammas[0] + 2 * np.sum((steps - k) * np.array(gammas[1:]))) / steps ** 2
    return float(np.sqrt(var))
