"""Memory estimated before any work: a huge ``--size`` or ``--batch-size`` is refused in one line.

The estimates are upper-bound orders of magnitude (our choice of constants:
the data in float64 plus the copies generation and training make), enough
to tell "fits easily" from "cannot fit": a request above the memory this
machine has available is refused before anything is allocated.
"""
from __future__ import annotations

from typing import Optional

from ..validation import check_memory

#: bytes per pixel per image while generating and training (float64, ~4 live copies)
_IMAGE_BYTES_PER_PIXEL = 8 * 4
#: contextual SBM defaults: expected edges ≈ N² · (p_in/C + p_out·(C−1)/C) / 2
_SBM_EDGE_FRACTION = (0.02 / 4 + 0.002 * 3 / 4) / 2
#: bytes per edge: int64 pairs, the sort, and both directions of the sparse adjacency
_BYTES_PER_EDGE = 64
#: bytes per node: 32 features, 16 hidden units, their gradients and tangents, float64
_BYTES_PER_NODE = 8 * 200


def task_bytes(task: str, data: str, size: int) -> float:
    """Estimated peak bytes of building and training ``task`` on ``size`` examples / nodes."""
    if task == "gcn":
        return _SBM_EDGE_FRACTION * float(size) ** 2 * _BYTES_PER_EDGE + size * _BYTES_PER_NODE
    side = 16 if data == "synthetic" else 28
    return 1.2 * float(size) * side * side * _IMAGE_BYTES_PER_PIXEL


def check_task_size(task: str, data: str, size: Optional[int]) -> None:
    """Refuse ``--size`` when the task cannot fit in memory (no-op for None)."""
    if size is not None:
        unit = "nodes" if task == "gcn" else "training images"
        check_memory("--size", f"{task} with {size} {unit}", task_bytes(task, data, size))


def check_batch(flag: str, batch: int, bytes_per_example: float, what: str) -> None:
    """Refuse a batch whose activations cannot fit."""
    check_memory(flag, f"{what} with a batch of {batch}", float(batch) * bytes_per_example)


def check_train_epochs(flag: str, epochs: int, task) -> None:
    """Refuse, before any step, ``epochs`` whose per-step history cannot fit (``train``'s own bound)."""
    from .runs import steps_per_epoch
    per_epoch = steps_per_epoch(task, task.batch_size)
    check_memory(flag, f"{epochs} epochs of {per_epoch} step(s) (the per-step history)",
                 float(epochs) * per_epoch * (200 + 48 * len(task.block_names or [0])))
