"""Constants and rate bounds of the idealized layer-wise method (docs/theory.md).

Notation (docs/theory.md): f(x) = ½ xᵀAx − bᵀx with A ≻ 0 split into L blocks,
μ = λ_min(A), M = max_l λ_max(A_ll), B = blockdiag(A_11, …, A_LL) and
c = λ_max(B^{-1/2} A B^{-1/2}) ∈ [1, L]. The idealized step is
x_l⁺ = x_l − α_l g_l with α_l = η‖g_l‖²/g_lᵀA_ll g_l.

Functions validate their inputs and raise ValueError naming the argument.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import scipy.linalg

from minilayerlr.validation import as_real_array, check_memory, check_real, is_real_number  # noqa: F401 (re-exported)


def check_spd(A, name: str = "A") -> np.ndarray:
    """Return A as a float64 copy, or raise unless it is finite, symmetric, positive definite."""
    A = as_real_array(A, name)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty square matrix, got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name}: contains NaN or Inf")
    if not np.allclose(A, A.T, rtol=1e-10, atol=1e-12 * np.abs(A).max()):
        raise ValueError(f"{name}: expected a symmetric matrix")
    try:
        np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name}: expected a positive definite matrix") from None
    return (A + A.T) / 2  # exact symmetry, so eigvalsh and the theory agree bit for bit


def check_block_sizes(block_sizes: Sequence[int], dim: int) -> Tuple[int, ...]:
    """Return block sizes as a tuple, or raise unless they are positive ints summing to ``dim``.

    The message names the first bad entry: ``True`` is refused although it equals 1
    (a bool is a flag, not a size), and so is 1.5; 2.0 is accepted as 2.
    """
    if isinstance(block_sizes, (str, bytes)) or not hasattr(block_sizes, "__iter__"):
        raise ValueError(f"block_sizes: expected a sequence of positive ints, got {block_sizes!r}")
    items = list(block_sizes)
    for i, s in enumerate(items):
        if isinstance(s, (bool, np.bool_)):
            raise ValueError(f"block_sizes[{i}]: expected a positive int, got {s!r} (a bool is not a size)")
        if not (is_real_number(s) and float(s).is_integer() and s > 0):
            raise ValueError(f"block_sizes[{i}]: expected a positive int, got {s!r}")
    sizes = tuple(int(s) for s in items)
    if not sizes or sum(sizes) != dim:
        raise ValueError(f"block_sizes: expected positive ints summing to {dim}, got {sizes}")
    return sizes


def block_slices(block_sizes: Sequence[int]):
    """Slices of the blocks in a flat vector."""
    ends = np.cumsum(block_sizes)
    return [slice(int(e - s), int(e)) for s, e in zip(block_sizes, ends)]


def block_diagonal(A, block_sizes: Sequence[int]) -> np.ndarray:
    """B = blockdiag(A_11, …, A_LL), shape (n, n)."""
    A = check_spd(A)
    check_block_sizes(block_sizes, A.shape[0])
    B = np.zeros_like(A)
    for s in block_slices(block_sizes):
        B[s, s] = A[s, s]
    return B


def strong_convexity(A) -> float:
    """μ = λ_min(A)."""
    return float(np.linalg.eigvalsh(check_spd(A))[0])


def smoothness(A) -> float:
    """Λ = λ_max(A), the global smoothness constant (not the block constant M, not the number L of blocks)."""
    return float(np.linalg.eigvalsh(check_spd(A))[-1])


def block_smoothness(A, block_sizes: Sequence[int]) -> float:
    """M = max_l λ_max(A_ll)."""
    A = check_spd(A)
    check_block_sizes(block_sizes, A.shape[0])
    return float(max(np.linalg.eigvalsh(A[s, s])[-1] for s in block_slices(block_sizes)))


def coupling_constant(A, block_sizes: Sequence[int]) -> float:
    """c = λ_max(B^{-1/2} A B^{-1/2}) = largest eigenvalue of the pencil A v = λ B v.

    Lemma 1 (docs/theory.md): 1 ≤ c ≤ L, and c = 1 iff A is block diagonal.
    """
    B = block_diagonal(A, block_sizes)
    return float(scipy.linalg.eigh(check_spd(A), B, eigvals_only=True)[-1])


def contraction_bound(A, block_sizes: Sequence[int], scale: float) -> float:
    """Theorem 1: f(x⁺) − f* ≤ ρ(η)(f(x) − f*) with ρ(η) = 1 − 2η(1 − ηc/2) μ/M.

    Args:
        A: SPD matrix, shape (n, n).
        block_sizes: positive ints summing to n.
        scale: η, must satisfy 0 < η < 2/c.

    Returns:
        ρ(η) ∈ [1 − μ/(cM), 1).
    """
    scale = check_real(scale, "scale")
    c = coupling_constant(A, block_sizes)
    if not (np.isfinite(scale) and 0 < scale < 2 / c):
        raise ValueError(f"scale: Theorem 1 needs 0 < scale < 2/c = {2 / c:.6g}, got {scale!r}")
    mu, M = strong_convexity(A), block_smoothness(A, block_sizes)
    return float(1 - 2 * scale * (1 - scale * c / 2) * mu / M)


def strongly_convex_bound(mu: float, smoothness: float, scale: float) -> float:
    """Theorem 4: ρ(η) = 1 − 2η(1 − ηκ/2)/κ with κ = Λ/μ, for 0 < η < 2/κ.

    Valid for any μ-strongly convex f whose Hessian satisfies ∇²f ⪯ Λ·I
    everywhere, with α_l from the exact local block Hessian (the plain step, no
    line search). Λ must be the *global* smoothness constant: with the block
    constant M the claim is false (docs/theory.md, Remark 4.2). Theorem 4′
    (``improved_strongly_convex_bound``) is never larger.

    Args:
        mu: μ > 0.
        smoothness: Λ ≥ μ.
        scale: η in (0, 2/κ).
    """
    mu, smoothness = check_real(mu, "mu"), check_real(smoothness, "smoothness")
    scale = check_real(scale, "scale")
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"mu: expected a finite number > 0, got {mu!r}")
    if not (np.isfinite(smoothness) and smoothness >= mu):
        raise ValueError(f"smoothness: expected a finite number >= mu = {mu}, got {smoothness!r}")
    kappa = smoothness / mu
    if not (np.isfinite(scale) and 0 < scale < 2 / kappa):
        raise ValueError(f"scale: Theorem 4 needs 0 < scale < 2/kappa = {2 / kappa:.6g}, "
                         f"got {scale!r}")
    return float(1 - 2 * scale * (1 - scale * kappa / 2) / kappa)


def kantorovich_rate(A_block) -> float:
    """Theorem 2: ((κ − 1)/(κ + 1))² with κ = λ_max/λ_min of an SPD block."""
    eig = np.linalg.eigvalsh(check_spd(A_block, "A_block"))
    kappa = eig[-1] / eig[0]
    return float(((kappa - 1) / (kappa + 1)) ** 2)


def jacobi_matrix(n: int, a: float) -> np.ndarray:
    """A = (1 − a) I + a 11ᵀ, shape (n, n); SPD iff −1/(n−1) < a < 1 (Proposition 3).

    With n scalar blocks, B = I and c = 1 + (n − 1)a for a ≥ 0.
    """
    if isinstance(n, bool) or not (isinstance(n, (int, np.integer)) and n >= 2):
        raise ValueError(f"n: expected an int >= 2, got {n!r}")
    if not (-1 / (n - 1) < check_real(a, "a") < 1):
        raise ValueError(f"a: expected -1/(n-1) < a < 1 for a positive definite matrix, got {a!r}")
    check_memory("n", f"a dense {n}x{n} matrix", 3 * 8 * float(n) ** 2)  # I, 11ᵀ and the sum
    return (1 - a) * np.eye(n) + a * np.ones((n, n))
