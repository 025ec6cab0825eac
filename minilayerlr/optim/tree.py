"""Helpers on the parameter structure used by the optimizers.

Params, grads, directions and updates share one structure: a ``list`` with one
entry per layer, each entry a ``dict[str, np.ndarray]`` (``{}`` for a layer
without parameters). A *block* is a non-empty entry; blocks are numbered
0..L-1 in list order, skipping the empty entries. Every per-block quantity the
optimizers compute (numerators, curvatures, step sizes) is an array of shape
(L,) in that numbering.

Nothing here mutates its inputs: every function returns new lists, dicts and
arrays (the optax convention, which keeps optimizer steps pure functions).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

Tree = List[Dict[str, np.ndarray]]


def tree_map(fn: Callable[..., np.ndarray], tree: Tree, *rest: Tree) -> Tree:
    """Apply ``fn`` array by array to one or more trees of the same structure.

    Args:
        fn: called as ``fn(a, *others)`` for the arrays sharing a position.
        tree: the tree giving the structure.
        *rest: further trees with the same layers and keys.

    Returns:
        A new tree ``[{name: fn(tree[k][name], *(r[k][name] for r in rest))}]``.
    """
    return [
        {name: fn(entry[name], *(other[k][name] for other in rest)) for name in entry}
        for k, entry in enumerate(tree)
    ]


def block_entries(tree: Tree) -> List[int]:
    """List positions of the non-empty entries (the blocks), in order.

    Returns:
        ``[k for k, entry in enumerate(tree) if entry]``; block l lives at
        list position ``block_entries(tree)[l]``.
    """
    return [k for k, entry in enumerate(tree) if entry]


def block_dot(a: Tree, b: Tree) -> np.ndarray:
    """Per-block inner products ⟨a_l, b_l⟩ = Σ_name Σ_i a_l[name]_i b_l[name]_i.

    Returns:
        Array of shape (L,), float64.
    """
    return np.array(
        [sum(float(np.vdot(a[k][n], b[k][n])) for n in a[k]) for k in block_entries(a)],
        dtype=np.float64,
    )


def block_sq_norm(a: Tree) -> np.ndarray:
    """Per-block squared Euclidean norms ‖a_l‖², shape (L,)."""
    return block_dot(a, a)


def scale_blocks(tree: Tree, factors: np.ndarray) -> Tree:
    """Multiply block l of ``tree`` by ``factors[l]``.

    Args:
        tree: a tree with L blocks.
        factors: shape (L,).

    Returns:
        New tree with entry ``k = block_entries(tree)[l]`` equal to
        ``factors[l] * tree[k]``; empty entries stay ``{}``.
    """
    factors = np.asarray(factors, dtype=np.float64)
    out: Tree = [{} for _ in tree]
    for l, k in enumerate(block_entries(tree)):
        out[k] = {name: factors[l] * value for name, value in tree[k].items()}
    return out


def zeros_like(tree: Tree) -> Tree:
    """A tree of float64 zeros with the structure and shapes of ``tree``."""
    return tree_map(lambda a: np.zeros(np.shape(a), dtype=np.float64), tree)


def apply_updates(params: Tree, updates: Tree) -> Tree:
    """Return ``params + updates`` (optax convention: updates are *added*).

    Args:
        params: the current parameters θ.
        updates: the step returned by an optimizer's ``update`` (e.g. −α_l d_l).

    Returns:
        New tree θ + u; the arguments are left unchanged.

    Raises:
        ValueError: if the structures differ (message names ``updates``).
    """
    check_structure(updates, params, "updates")
    return tree_map(lambda p, u: p + u, params, updates)


def check_structure(tree: Tree, like: Tree, name: str) -> None:
    """Raise ValueError naming ``name`` unless ``tree`` matches ``like``.

    Matching means: a list of the same length, the same keys per entry and the
    same array shapes.
    """
    if not isinstance(tree, (list, tuple)) or len(tree) != len(like):
        got = f"{type(tree).__name__}"
        if isinstance(tree, (list, tuple)):
            got += f" of length {len(tree)}"
        raise ValueError(
            f"{name}: expected a list of {len(like)} per-layer dicts, got {got}")
    for k, (entry, ref) in enumerate(zip(tree, like)):
        if not isinstance(entry, dict) or set(entry) != set(ref):
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ValueError(f"{name}[{k}]: expected keys {sorted(ref)}, got {got}")
        for key in entry:
            if np.shape(entry[key]) != np.shape(ref[key]):
                raise ValueError(
                    f"{name}[{k}][{key!r}]: expected shape {np.shape(ref[key])}, "
                    f"got {np.shape(entry[key])}")


def check_tree(tree: Tree, name: str) -> None:
    """Raise ValueError naming ``name`` unless ``tree`` is a list of dicts of finite arrays."""
    if not isinstance(tree, (list, tuple)):
        raise ValueError(f"{name}: expected a list of per-layer dicts, got {type(tree).__name__}")
    for k, entry in enumerate(tree):
        if not isinstance(entry, dict):
            raise ValueError(f"{name}[{k}]: expected a dict, got {type(entry).__name__}")
        for key, value in entry.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name}[{k}][{key!r}]: contains NaN or Inf")


def num_blocks(tree: Tree) -> int:
    """Number L of blocks (non-empty entries)."""
    return len(block_entries(tree))


def maybe_params(params: Optional[Tree], needed: bool, who: str) -> Optional[Tree]:
    """Return ``params``, raising a clear error if ``who`` needs them and they are None."""
    if needed and params is None:
        raise ValueError(f"params: {who} needs the current parameters (weight decay); "
                         "call update(grads, state, params)")
    return params
