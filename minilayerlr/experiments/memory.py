"""Memory estimated before any work: a huge ``--size`` or ``--batch-size`` is refused in one line.

The estimates are upper-bound orders of magnitude (our choice of constants:
the data in float64 plus the copies generation and training make), enough
to tell "fits easily" from "cannot fit": a request above the memory this
machine has available is refused before anything is allocated.
"""
from __future__ import annotations

from ..validation import check_memory

#: bytes per pixel per image while generating and training (float64, ~4 live copies)
_IMAGE_BYTES_PER_PIXEL = 8 * 4
#: contextual SBM defaults: expected edges ≈ N² · (p_in/C + p_out·(C−1)/C) / 2
_SBM_EDGE_FRACTION = (0.02 / 4 + 0.002 * 3 / 4) / 2
#: bytes per edge: int64 pairs, the sort, and both directions of the sparse adjacency
_BYTES_PER_EDGE = 64
#: bytes per node: 32 features, 16 hidden units, their gradients and tangents, float64
_BYTES_PER_NODE = 8 * 200


def image_task_bytes(data: str, size: int) -> float:
    """Estimated peak bytes of building and training an image task on ``size`` training images."""
    side = 16 if data == "synthetic" else 28
    return 1.2 * float(size) * side * side * _IMAGE_BYTES_PER_PIXEL


def graph_task_bytes(data: str, size: int) -> float:
    """Estimated peak bytes of building and training the gcn on a ``size``-node contextual SBM."""
    return _SBM_EDGE_FRACTION * float(size) ** 2 * _BYTES_PER_EDGE + size * _BYTES_PER_NODE


def check_batch(flag: str, batch: int, bytes_per_example: float, what: str) -> None:
    """Refuse a batch whose activations cannot fit."""
    check_memory(flag, f"{what} with a batch of {batch}", float(batch) * bytes_per_example)
