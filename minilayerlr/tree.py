"""Helpers for the parameter structure shared by the whole package.

Parameters (and gradients, directions, updates) are plain data: a ``list`` with
one entry per layer, each entry a ``dict`` mapping a parameter name to an
array. Layers without parameters hold an empty dict. A *block* is a non-empty
entry; blocks are numbered in list order and are the unit the layer-wise step
sizes act on.

Flat vectors order the entries layer by layer, inside a layer by the order the
dict holds its keys (the order the layer declares them, e.g. ``W`` then ``b``),
and each array in C order.
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np

from .errors import NonFiniteError

Params = List[Dict[str, np.ndarray]]


def _layout(tree):
    """The keys of each entry of ``tree``, or None if it is not a list of dicts."""
    if not isinstance(tree, (list, tuple)) or not all(isinstance(e, dict) for e in tree):
        return None
    return [list(e) for e in tree]


def _check_alike(trees, names) -> None:
    """ValueError naming the first of ``trees`` that is not a list of dicts laid out like the first."""
    first = _layout(trees[0])
    for tree, name in zip(trees, names):
        layout = _layout(tree)
        if layout is None or layout != first:
            what = ("a list of per-layer dicts" if layout is None or first is None
                    else f"{len(first)} entries with the keys {first}")
            raise ValueError(f"{name}: expected {what}, got "
                             f"{type(tree).__name__ if layout is None else layout}")


def tree_map(fn: Callable[..., np.ndarray], tree: Params, *rest: Params) -> Params:
    """Apply ``fn`` leaf-wise to one or more trees of the same structure."""
    if not callable(fn):
        raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
    try:
        return [
            {name: fn(entry[name], *(other[k][name] for other in rest)) for name in entry}
            for k, entry in enumerate(tree)
        ]
    except (IndexError, KeyError, TypeError, AttributeError):
        # a structure mismatch shows up as one of these; if the trees agree, fn raised it
        _check_alike((tree,) + rest, ["tree"] + [f"rest[{i}]" for i in range(len(rest))])
        raise


def as_stack(entry: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """One layer's direction as a stack of K = 1 tangents: each array gets a leading axis."""
    return {name: np.asarray(value)[None] for name, value in entry.items()}


def block_indices(tree: Params) -> List[int]:
    """Positions of the non-empty entries (the blocks) of ``tree``."""
    return [k for k, entry in enumerate(tree) if entry]


def num_blocks(tree: Params) -> int:
    """Number L of blocks (non-empty entries)."""
    return len(block_indices(tree))


def block_dot(a: Params, b: Params) -> np.ndarray:
    """Per-block inner products ⟨a_l, b_l⟩, shape (L,)."""
    _check_alike((a, b), ("a", "b"))
    return np.array(
        [sum(float(np.vdot(a[k][n], b[k][n])) for n in a[k]) for k in block_indices(a)]
    )


def block_sq_norm(a: Params) -> np.ndarray:
    """Per-block squared Euclidean norms ‖a_l‖², shape (L,)."""
    return block_dot(a, a)


def tree_size(tree: Params) -> int:
    """Total number of scalars in the tree."""
    return sum(int(v.size) for entry in tree for v in entry.values())


def flatten(tree: Params) -> np.ndarray:
    """Concatenate every array of ``tree`` into one vector, shape (P,)."""
    _check_alike((tree,), ("tree",))
    pieces = [v.ravel() for entry in tree for v in entry.values()]
    if not pieces:
        return np.zeros(0)
    return np.concatenate(pieces)


def unflatten(vector: np.ndarray, like: Params) -> Params:
    """Inverse of :func:`flatten`: cut ``vector`` into the shapes of ``like``.

    Raises:
        ValueError: if ``vector`` is not 1-D of length ``tree_size(like)``.
    """
    vector = np.asarray(vector)
    if vector.dtype.kind not in "iuf":
        raise ValueError(f"vector: expected real numbers, got dtype {vector.dtype}")
    size = tree_size(like)
    if vector.ndim != 1 or vector.shape[0] != size:
        raise ValueError(
            f"vector: expected shape ({size},) to match the parameters, got {vector.shape}"
        )
    out: Params = []
    start = 0
    for entry in like:
        new = {}
        for name, ref in entry.items():
            new[name] = vector[start:start + ref.size].reshape(ref.shape).astype(ref.dtype, copy=True)
            start += ref.size
        out.append(new)
    return out


def check_same_structure(tree: Params, like: Params, name: str) -> None:
    """Raise ValueError naming ``name`` unless ``tree`` matches ``like`` in keys and shapes."""
    if not isinstance(tree, (list, tuple)) or len(tree) != len(like):
        raise ValueError(
            f"{name}: expected a list of {len(like)} per-layer dicts like the parameters, "
            f"got {type(tree).__name__}" + (f" of length {len(tree)}" if isinstance(tree, (list, tuple)) else "")
        )
    for k, (entry, ref) in enumerate(zip(tree, like)):
        if not isinstance(entry, dict) or list(entry) != list(ref):
            got = list(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ValueError(f"{name}[{k}]: expected keys {list(ref)}, got {got}")
        for key, value in entry.items():
            shape = np.shape(value)
            if shape != ref[key].shape:
                raise ValueError(
                    f"{name}[{k}][{key!r}]: expected shape {ref[key].shape}, got {shape}"
                )


def check_tree(tree: Params, name: str, like: Params = None) -> None:
    """Raise unless ``tree`` is a list of dicts of finite floating-point arrays.

    With ``like``, the keys and shapes must also match ``like``. Raises
    ValueError (structure, shapes), TypeError (not a float array) or
    NonFiniteError (NaN/Inf), each message naming ``name[k][key]``.
    """
    if like is not None:
        check_same_structure(tree, like, name)
    if not isinstance(tree, (list, tuple)):
        raise ValueError(f"{name}: expected a list of per-layer dicts, got {type(tree).__name__}")
    for k, entry in enumerate(tree):
        if not isinstance(entry, dict):
            raise ValueError(f"{name}[{k}]: expected a dict, got {type(entry).__name__}")
        for key, value in entry.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
                got = f"array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(f"{name}[{k}][{key!r}]: expected a floating-point numpy array, got {got}")
            if not np.all(np.isfinite(value)):
                raise NonFiniteError(f"{name}[{k}][{key!r}]: contains NaN or Inf")


def scale_blocks(tree: Params, factors: np.ndarray) -> Params:
    """Multiply block l of ``tree`` by ``factors[l]``.

    Args:
        tree: a tree with L blocks.
        factors: shape (L,).

    Returns:
        New tree with entry ``k = block_indices(tree)[l]`` equal to
        ``factors[l] * tree[k]``; empty entries stay ``{}``.
    """
    _check_alike((tree,), ("tree",))
    factors = np.asarray(factors)
    blocks = block_indices(tree)
    if factors.shape != (len(blocks),) or factors.dtype.kind not in "iuf":
        raise ValueError(f"factors: expected {len(blocks)} real numbers (one per block), got "
                         f"{factors.dtype} {factors.shape}")
    if not np.all(np.isfinite(factors)):
        raise NonFiniteError(f"factors: contains NaN or Inf {factors}")
    factors = factors.astype(np.float64)
    out: Params = [{} for _ in tree]
    for l, k in enumerate(block_indices(tree)):
        out[k] = {name: factors[l] * value for name, value in tree[k].items()}
    return out


def zeros_like(tree: Params) -> Params:
    """A tree of zeros with the structure, shapes and floating dtype of ``tree`` (float64 otherwise).

    Buffers that mirror the parameters (momentum, moments) are in their dtype:
    a float32 run stays float32.
    """
    def zeros(a):
        dtype = a.dtype if isinstance(a, np.ndarray) and a.dtype.kind == "f" else np.float64
        return np.zeros(np.shape(a), dtype=dtype)
    return tree_map(zeros, tree)


def apply_updates(params: Params, updates: Params) -> Params:
    """Return ``params + updates`` (optax convention: updates are *added*).

    Args:
        params: the current parameters θ.
        updates: the step returned by an optimizer's ``update`` (e.g. −α_l d_l).

    Returns:
        New tree θ + u in the dtype of θ (a float32 run stays float32, whatever
        the updates' dtype); the arguments are left unchanged.

    Raises:
        ValueError: if the structures differ or an array is not finite
            (message names ``params`` or ``updates``); NonFiniteError (a
            ValueError) if θ + u overflows.
        TypeError: if an array is not a floating-point array.
    """
    check_tree(params, "params")
    check_tree(updates, "updates", like=params)
    return add_updates(params, updates)


def add_updates(params: Params, updates: Params) -> Params:
    """θ + u with one scan, of the result: for callers that have scanned θ already.

    The training loop's step evaluates θ (which scans it) and takes u from the
    optimizer; a NaN or Inf in u, or an overflow, shows in θ + u. Only the structure
    of ``updates`` is checked against ``params``. Raises NonFiniteError naming
    ``updates[k][key]`` if θ + u is not finite.
    """
    check_same_structure(updates, params, "updates")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
        new = tree_map(lambda p, u: np.add(p, u, dtype=p.dtype, casting="same_kind"), params, updates)
    for k, entry in enumerate(new):
        for key, value in entry.items():
            if not np.all(np.isfinite(value)):
                raise NonFiniteError(f"updates[{k}][{key!r}]: params + updates overflowed to "
                                     "Inf (or the update is NaN); the run has diverged")
    return new
