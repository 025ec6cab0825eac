"""Checks of the values an optimizer state holds, run once per ``update`` at the public boundary.

A state is the optimizer's own output, but it reaches ``update`` from the
caller (a loop, a checkpoint, a hand edit): a NaN momentum, a negative Adam
ν, a NaN reference step size or a fallback code 99 would otherwise flow into
NaN updates or a silently wrong step. Each state class that holds values
defines ``check_values(where)`` with the helpers below; ``check_state_type``
(``minilayerlr.optim.base``) calls it, so every update checks its state
once, and :func:`check_nested_state_values` runs it on a state and the states
nested in it (a wrapper's ``base_state``), for callers such as ``resume``.

Cost: one ``np.isfinite`` pass per array (plus one ``min`` for arrays that
must be ≥ 0); the per-block arrays have L entries. Errors name
``state.<field>``: NonFiniteError (a ValueError) for NaN/Inf, which is
also what a state that overflowed during a run holds, ValueError for
values out of range or of the wrong shape, TypeError for a wrong type.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterable, Optional

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.tree import Params, block_indices, check_same_structure, check_tree
from minilayerlr.validation import is_real_number


def check_nested_state_values(state, where: str = "state") -> None:
    """Run ``check_values`` of ``state`` and of every dataclass state nested in its fields.

    ``update`` checks its own state through ``check_state_type`` (a wrapper's
    base state is checked by the base's own ``update``/``direction``); a state
    loaded from a file has been through neither, so ``resume`` calls this.
    """
    if hasattr(type(state), "check_values"):
        state.check_values(where)
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        for f in dataclasses.fields(state):
            inner = getattr(state, f.name)
            if dataclasses.is_dataclass(inner) and not isinstance(inner, type):
                check_nested_state_values(inner, f"{where}.{f.name}")


def check_state_tree(tree: Params, name: str, nonnegative: bool = False) -> None:
    """Raise unless ``tree`` (a buffer like params) holds finite floating-point arrays (≥ 0 if asked)."""
    check_tree(tree, name)  # structure, float dtype, one isfinite pass; NonFiniteError names it
    if nonnegative:
        for k, entry in enumerate(tree):
            for key, value in entry.items():
                if value.size and value.min() < 0:
                    raise ValueError(f"{name}[{k}][{key!r}]: holds a negative value "
                                     f"{float(value.min())!r}; it is a sum of squares (>= 0)")


def check_block_arrays(state, names: Iterable[str], n: Optional[int] = None, where: str = "state",
                       nonnegative: Iterable[str] = ()) -> int:
    """Raise unless each field ``names`` of ``state`` is a finite float array of shape (n,); returns n.

    With ``n`` None, n is the length of the first field (which must be 1-D).
    Fields in ``nonnegative`` must also be ≥ 0.
    """
    nonnegative = set(nonnegative)
    for name in names:
        value = getattr(state, name)
        label = f"{where}.{name}"
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            got = f"an array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise TypeError(f"{label}: expected a floating-point array with one entry per block, got {got}")
        if n is None and value.ndim == 1:
            n = len(value)
        if value.shape != (n,):
            want = "a 1-D array" if n is None else f"shape ({n},)"
            raise ValueError(f"{label}: expected {want} (one entry per block), got shape {value.shape}")
        if not np.all(np.isfinite(value)):
            raise NonFiniteError(f"{label}: contains NaN or Inf {value}")
        if name in nonnegative and n and value.min() < 0:
            raise ValueError(f"{label}: expected values >= 0, got {value}")
    return n


def check_codes(value, n: int, count: int, label: str) -> None:
    """Raise unless ``value`` is an integer array of shape (n,) with entries in [0, count)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu":
        got = f"an array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        raise TypeError(f"{label}: expected an integer array of codes, got {got}")
    if value.shape != (n,):
        raise ValueError(f"{label}: expected shape ({n},) (one code per block), got {value.shape}")
    if n and (value.min() < 0 or value.max() >= count):
        raise ValueError(f"{label}: expected codes in 0..{count - 1}, got {value}")


def check_scalar(value, label: str, minimum: float = -math.inf, integer: bool = False,
                 positive: bool = False) -> None:
    """Raise unless ``value`` is a finite real number ≥ ``minimum`` (> 0 if ``positive``;
    an integer if ``integer``)."""
    ok = is_real_number(value) and (not integer or isinstance(value, (int, np.integer)))
    if not ok:
        what = "an integer" if integer else "a real number"
        raise TypeError(f"{label}: expected {what}, got {value!r}")
    if not math.isfinite(value):
        raise NonFiniteError(f"{label}: is {value}, expected a finite number")
    if value < minimum or (positive and value <= 0):
        bound = "> 0" if positive else f">= {minimum}"
        raise ValueError(f"{label}: is {value!r}, expected a number {bound}")


#: the float arrays of the step-size rule's states (layer-wise: (L,) each; global: (1,) but α)
RULE_ARRAYS = ("numerators", "curvatures", "denominators", "avg_numerators", "avg_denominators",
               "avg_curvatures", "avg_sq_norms", "reference_step_sizes")
#: those that are never negative: s̄ averages ‖d_l‖², the reference α is a formula step > 0 or 0
RULE_NONNEGATIVE = ("avg_sq_norms", "reference_step_sizes")


def check_rule_state(state, where: str, n_codes: int) -> None:
    """The values of a layer-wise step-size state (per block, or one block for the network).

    ``count`` equal to the base state's; ``step_sizes`` finite, ≥ 0, of shape
    (L,) with L that of the base state's ``step_sizes`` (the base state itself
    is checked by the base method's ``direction``); the arrays ``RULE_ARRAYS`` finite of shape (L,), or
    all (1,) for one block (the optimizer checks which it keeps), ``RULE_NONNEGATIVE`` ≥ 0; ``fallbacks`` codes in
    [0, n_codes); a ``curvature_seed``, if any, an integer ≥ 0.
    """
    base_count = getattr(state.base_state, "count", state.count)
    if base_count != state.count:  # both count the same updates
        raise ValueError(f"{where}.count: is {state.count!r}, but its base_state has taken "
                         f"{base_count!r} steps")
    n = check_block_arrays(state, ("step_sizes",), None, where, nonnegative=("step_sizes",))
    base_sizes = getattr(state.base_state, "step_sizes", None)
    if isinstance(base_sizes, np.ndarray) and base_sizes.shape != (n,):
        raise ValueError(f"{where}.step_sizes: {n} blocks, but its base_state has "
                         f"{base_sizes.shape}; call init with these parameters")
    size = n if np.shape(state.numerators) == (n,) else 1
    check_block_arrays(state, RULE_ARRAYS, size, where, nonnegative=RULE_NONNEGATIVE)
    check_codes(state.fallbacks, size, n_codes, f"{where}.fallbacks")
    seed = getattr(state, "curvature_seed", None)
    if seed is not None:
        check_scalar(seed, f"{where}.curvature_seed", minimum=0, integer=True)


def rule_state_checks(n_codes: int):
    """The ``check_values`` method of a layer-wise step-size state.

    In the state class: ``check_values = rule_state_checks(n_codes=4)``.
    """
    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless the values are as :func:`check_rule_state` says."""
        check_rule_state(self, where, n_codes)
    return check_values


def check_below(name: str, value: float, bound: float, why: str) -> None:
    """Raise ValueError naming ``name`` unless ``value`` < ``bound`` (a constructor's overflow guard)."""
    if not value < bound:
        raise ValueError(f"{name}: expected a number below {bound:g} ({why}), got {value!r}")


def check_buffers(state, names: Iterable[str], grads: Params, params: Optional[Params] = None,
                  where: str = "state") -> None:
    """Raise naming ``where.<field>`` unless each tree field has exactly the parameters' keys and shapes.

    The reference is ``params`` when given (already checked against ``grads``,
    so a wrong gradient is blamed on ``grads`` before this runs), else
    ``grads``. Shapes must be equal, not merely broadcastable: a buffer of
    shape (3, 1) for a (3,) bias would silently turn every update into a matrix.
    None fields (a buffer switched off) are skipped.
    """
    ref = params if params is not None else grads
    for name in names:
        value = getattr(state, name)
        if value is not None:
            check_same_structure(value, ref, f"{where}.{name}")


#: matrices up to this size are checked whole; larger ones on ``_SAMPLED_ROWS`` rows (cost O(d))
_FULL_CHECK_SIZE, _SAMPLED_ROWS = 64, 16


def check_square_matrices(arrays, shapes, label: str, symmetric_rtol: float) -> None:
    """Raise naming ``label[i]`` unless ``arrays[i]`` is a symmetric positive semi-definite (d, d) matrix.

    ``shapes[i]`` is d. Positive semi-definiteness is checked by necessary
    conditions: a diagonal ≥ 0 and |M_ij| ≤ √(M_ii M_jj) (a negative-definite or
    plainly indefinite matrix fails them; the preconditioner would otherwise send
    the update uphill). Cost, run every step: matrices up to ``_FULL_CHECK_SIZE``
    are checked whole; larger ones have their diagonal checked whole and the
    symmetry and the bound on ``_SAMPLED_ROWS`` evenly spaced rows (O(d) each,
    where the whole check would cost a third of a K-FAC step).
    """
    for i, (a, d) in enumerate(zip(arrays, shapes)):
        where = f"{label}[{i}]"
        if a.shape != (d, d):
            raise ValueError(f"{where}: expected shape ({d}, {d}) for this block, got {a.shape}")
        diag = np.diagonal(a)
        scale = float(np.abs(diag).max()) if d else 0.0
        rows = np.arange(d) if d <= _FULL_CHECK_SIZE else np.linspace(0, d - 1, _SAMPLED_ROWS).astype(int)
        some = a[rows]
        scale = max(scale, float(np.abs(some).max()) if some.size else 0.0)
        if scale == 0.0:
            continue  # the zeros of init (no statistics yet)
        tol = symmetric_rtol * scale
        if float(np.abs(some - a[:, rows].T).max()) > tol:
            raise ValueError(f"{where}: is not symmetric; it must be a covariance or its inverse")
        if diag.min() < -tol:
            raise ValueError(f"{where}: has a negative diagonal entry {float(diag.min()):.3g}; it "
                             "must be positive semi-definite")
        root = np.sqrt(np.maximum(diag, 0.0))
        if np.any(np.abs(some) > np.outer(root[rows], root) * (1 + symmetric_rtol) + tol):
            raise ValueError(f"{where}: is not positive semi-definite (|M_ij| > √(M_ii M_jj) "
                             "somewhere)")


def check_kfac_state(state, grads: Params, params: Optional[Params], factor_shapes) -> None:
    """K-FAC's state against the blocks of ``grads``: each factor and inverse square of its block's
    size, symmetric and positive semi-definite, and the velocity shaped like the parameters.

    Run by ``KFAC.update`` before the oracle is called, so a wrong state field is
    named, not blamed on the oracle's answer. ``factor_shapes(entry) -> (dim A, dim G)``
    is K-FAC's own (passed in: this module imports no optimizer).
    """
    shapes = [factor_shapes(grads[k]) for k in block_indices(grads)]
    for name, which, rtol in (("factors_a", 0, 1e-6), ("factors_g", 1, 1e-6),
                              ("inverse_a", 0, 1e-3), ("inverse_g", 1, 1e-3)):
        check_square_matrices(getattr(state, name), [s[which] for s in shapes],
                              f"state.{name}", rtol)
    check_buffers(state, ("velocity",), grads, params)


def check_shampoo_statistics(state, where: str = "state", diagonal=None) -> None:
    """Shampoo's sums are square matrices (or vectors, when diagonal) and their roots alike.

    A (n, 1) "matrix" would broadcast through the preconditioning without an
    error; it is refused here, naming the field. With ``diagonal`` (the
    optimizer's ``size -> bool``), a sum must also be a vector exactly where
    ``init`` makes one: an (n,) sum where an (n, n) one belongs would broadcast too.
    """
    for name in ("left", "right", "left_roots", "right_roots"):
        for k, entry in enumerate(getattr(state, name)):
            for key, value in entry.items():
                if not (value.ndim == 1 or (value.ndim == 2 and value.shape[0] == value.shape[1])):
                    raise ValueError(f"{where}.{name}[{k}][{key!r}]: expected a square matrix or a "
                                     f"vector (diagonal), got shape {value.shape}")
                if diagonal is not None and value.ndim != (1 if diagonal(len(value)) else 2):
                    raise ValueError(f"{where}.{name}[{k}][{key!r}]: shape {value.shape}, but this "
                                     f"Shampoo keeps a {'diagonal' if value.ndim == 2 else 'full'} "
                                     f"statistic for a dimension of {len(value)}; call its init")
    if diagonal is not None:  # each kind checked on its own first: a mismatch now is the root's size
        for name in ("left", "right"):
            check_same_structure(getattr(state, f"{name}_roots"), getattr(state, name),
                                 f"{where}.{name}_roots")


def _signature(tree):
    return tuple(tuple((key, np.shape(v)) for key, v in entry.items()) if isinstance(entry, dict)
                 else None for entry in tree) if isinstance(tree, (list, tuple)) else None


def check_trees_alike(state, names: Iterable[str], where: str = "state") -> None:
    """Raise naming the odd field out unless the tree fields ``names`` share keys and shapes.

    The structure most of them share is the reference, so one damaged field is
    named as itself rather than blamed on the field it is compared with.
    """
    names = list(names)
    signatures = [_signature(getattr(state, n)) for n in names]
    reference = max(signatures, key=signatures.count)
    ref_tree = getattr(state, names[signatures.index(reference)])
    for name, sig in zip(names, signatures):
        if sig != reference:
            check_same_structure(getattr(state, name), ref_tree, f"{where}.{name}")
