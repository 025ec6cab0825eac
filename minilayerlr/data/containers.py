"""Dataset containers and the argument checks shared by generators and loaders.

Both containers are frozen dataclasses holding read-only NumPy arrays, so a
dataset handed to several experiments cannot be changed by one of them
(index it, e.g. ``x_train[idx]``, to get a writable copy).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Tuple

import numpy as np


def _freeze(array: np.ndarray) -> np.ndarray:
    """Mark ``array`` read-only in place and return it."""
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with integer class labels, split into train and test.

    Attributes:
        x_train: float64 array (N_train, C, H, W), values in [0, 1].
        y_train: int64 array (N_train,), values in ``range(len(classes))``.
        x_test: float64 array (N_test, C, H, W), values in [0, 1].
        y_test: int64 array (N_test,).
        classes: class names; label ``k`` means ``classes[k]``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: Tuple[str, ...]

    def __post_init__(self) -> None:
        for x, y, split in ((self.x_train, self.y_train, "train"),
                            (self.x_test, self.y_test, "test")):
            if x.ndim != 4 or y.shape != (x.shape[0],):
                raise ValueError(
                    f"{split} split: expected images (N, C, H, W) and labels (N,), "
                    f"got {x.shape} and {y.shape}")
            _freeze(x)
            _freeze(y)
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """Shape (C, H, W) of one image."""
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True, eq=False)
class GraphDataset:
    """One graph for semi-supervised node classification.

    Attributes:
        features: float64 array (N, F) of node features.
        labels: int64 array (N,), values in ``range(len(classes))``.
        edges: int64 array (E, 2) of undirected edges, each stored once as
            ``(i, j)`` with ``i < j``; no self loops, no duplicates, rows
            sorted lexicographically.
        num_nodes: N.
        train_mask, val_mask, test_mask: bool arrays (N,), pairwise disjoint.
        classes: class names; label ``k`` means ``classes[k]``.
    """

    features: np.ndarray
    labels: np.ndarray
    edges: np.ndarray
    num_nodes: int
    train_mask: np.ndarray
    val_mask: np.ndarray
    test_mask: np.ndarray
    classes: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.num_nodes
        if self.features.ndim != 2 or self.features.shape[0] != n:
            raise ValueError(f"features must be (num_nodes, F), got {self.features.shape}")
        if self.edges.ndim != 2 or self.edges.shape[1] != 2:
            raise ValueError(f"edges must be (E, 2), got {self.edges.shape}")
        for name in ("labels", "train_mask", "val_mask", "test_mask"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},)")
        for name in ("features", "labels", "edges", "train_mask", "val_mask", "test_mask"):
            _freeze(getattr(self, name))
        if not self.classes:
            num = int(self.labels.max()) + 1 if n else 0
            object.__setattr__(self, "classes", tuple(str(k) for k in range(num)))
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def num_edges(self) -> int:
        """Number of undirected edges E."""
        return int(self.edges.shape[0])


# ----------------------------------------------------------------------------
# Argument checks: every public entry point validates at the boundary and names
# the offending argument (docs/design.md, "Checks at the boundary").
# ----------------------------------------------------------------------------

def check_float(name: str, value, low: float = 0.0, high: float = np.inf) -> float:
    """Return ``value`` as float, or raise ValueError unless low <= value <= high."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not (low <= value <= high) or value == np.inf:  # also rejects NaN
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value}")
    return value


def balanced_labels(num: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffled int64 labels (num,) whose class counts differ by at most one."""
    return rng.permutation(np.arange(num, dtype=np.int64) % num_classes)
