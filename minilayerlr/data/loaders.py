"""Loaders for real data sets from files the user already has (no download).

MNIST (IDX format, LeCun et al., 1998), CIFAR-10 binary version (Krizhevsky,
2009) and Cora (McCallum et al., 2000; Sen et al., 2008). Every byte is read
with ``np.frombuffer`` or plain text parsing; nothing is unpickled. A missing
file raises FileNotFoundError and a malformed one ValueError, both naming the
path.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import MissingFileError
from ..validation import check_int
from .containers import GraphDataset, ImageDataset
from .graphs import split_nodes

# IDX type codes (http://yann.lecun.com/exdb/mnist/, bottom of the page).
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")
_CIFAR_RECORD = 1 + 3 * 32 * 32


def _find(data_dir, names: Sequence[str]) -> Path:
    """Return the first existing ``data_dir/name``; else FileNotFoundError naming names[0]."""
    root = Path(data_dir)
    if not root.is_dir():
        raise MissingFileError(f"data_dir: {root} is not a folder" if root.exists()
                               else f"data_dir: missing data folder {root}")
    for name in names:
        if (root / name).is_file():
            return root / name
    tried = ", ".join(str(root / name) for name in names[1:])
    raise MissingFileError(f"data_dir: missing data file {root / names[0]}"
                            + (f" (also tried: {tried})" if tried else ""))


def _read_bytes(path: Path) -> bytes:
    """File contents, gunzipped when the name ends in .gz."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: corrupt gzip stream ({err})") from err


def read_idx(path) -> np.ndarray:
    """Parse one IDX file (plain, or gzip when the name ends in .gz).

    Layout: two zero bytes, a type code byte, the number of dimensions d, then
    d big-endian uint32 sizes, then the data in C order, big-endian.

    Args:
        path: file path.

    Returns:
        Array of the stored shape; dtype converted to native byte order.

    Raises:
        FileNotFoundError: if path does not exist.
        ValueError: on a bad magic number, unknown type code or wrong size.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"path: missing data file {path}")
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic number {raw[:4].hex() or '(empty)'}")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: 2^32-sized dims cannot overflow
    if len(raw) != expected:
        raise ValueError(f"{path}: wrong size, {len(raw)} bytes but header "
                         f"{shape} needs {expected} (truncated or trailing bytes)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def _check_labels(labels: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"{path}: unknown label {bad} (expected 0..{num_classes - 1})")
    return labels.astype(np.int64)


def _limit(name: str, value: Optional[int]) -> Optional[int]:
    return None if value is None else check_int(name, value)


def _mnist_split(root, prefix: str, limit: Optional[int]):
    def find(kind: str, idx: str) -> Path:
        base = f"{prefix}-{kind}-{idx}-ubyte"
        dotted = f"{prefix}-{kind}.{idx}-ubyte"        # e.g. train-images.idx3-ubyte
        return _find(root, [base, base + ".gz", dotted, dotted + ".gz"])

    images_path, labels_path = find("images", "idx3"), find("labels", "idx1")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected uint8 images (N, H, W), "
                         f"got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected uint8 labels (N,), "
                         f"got {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels_path}: {labels.shape[0]} labels but "
                         f"{images_path} has {images.shape[0]} images")
    if images.shape[0] == 0:
        raise ValueError(f"{images_path}: holds no images (each of the train and test splits needs at least one)")
    labels = _check_labels(labels, 10, labels_path)
    images, labels = images[:limit], labels[:limit]
    return images[:, None].astype(np.float64) / 255.0, labels


def load_mnist(data_dir, num_train: Optional[int] = None,
               num_test: Optional[int] = None) -> ImageDataset:
    """Load MNIST from the four IDX files in ``data_dir``.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or
    ``.gz`` (the ``train-images.idx3-ubyte`` spelling is accepted too).

    Args:
        data_dir: directory holding the files.
        num_train, num_test: keep only the first this many images (None: all).

    Returns:
        ImageDataset with x (N, 1, 28, 28) float64 in [0, 1] (pixel / 255)
        and int64 labels 0-9.

    Raises:
        FileNotFoundError: a file is missing (message names the path).
        ValueError: a file is malformed (message names the path and the fault).
    """
    num_train, num_test = _limit("num_train", num_train), _limit("num_test", num_test)
    x_train, y_train = _mnist_split(data_dir, "train", num_train)
    x_test, y_test = _mnist_split(data_dir, "t10k", num_test)
    return ImageDataset(x_train, y_train, x_test, y_test, tuple(str(d) for d in range(10)))


def _cifar_file(path: Path):
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise ValueError(f"{path}: wrong size, {len(raw)} bytes is not a positive "
                         f"multiple of the record size {_CIFAR_RECORD} (truncated?)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = _check_labels(records[:, 0], 10, path)
    # Each record stores the red, green and blue 32x32 planes, row-major.
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _cifar_split(root: Path, names, limit: Optional[int]):
    images, labels, have = [], [], 0
    for name in names:
        if limit is not None and have >= limit:
            break   # skip reading batches we would throw away
        x, y = _cifar_file(_find(root, [name]))
        images.append(x)
        labels.append(y)
        have += y.size
    x = np.concatenate(images)[:limit].astype(np.float64) / 255.0
    return x, np.concatenate(labels)[:limit]


def load_cifar10(data_dir, num_train: Optional[int] = None,
                 num_test: Optional[int] = None) -> ImageDataset:
    """Load the CIFAR-10 *binary* version (never the pickled Python version).

    Looks in ``data_dir`` or ``data_dir/cifar-10-batches-bin`` for
    ``data_batch_1.bin`` ... ``data_batch_5.bin`` and ``test_batch.bin``.
    Each record is 1 label byte followed by 3072 pixel bytes (R, G, B planes).

    Args:
        data_dir: directory holding the files.
        num_train, num_test: keep only the first this many images (None: all).
            Note that all 60000 images as float64 take 1.5 GB.

    Returns:
        ImageDataset with x (N, 3, 32, 32) float64 in [0, 1] and int64 labels.

    Raises:
        FileNotFoundError: a file is missing (message names the path).
        ValueError: a file is malformed (message names the path and the fault).
    """
    num_train, num_test = _limit("num_train", num_train), _limit("num_test", num_test)
    root = Path(data_dir)
    if not (root / "test_batch.bin").is_file() and (root / "cifar-10-batches-bin").is_dir():
        root = root / "cifar-10-batches-bin"
    x_train, y_train = _cifar_split(
        root, [f"data_batch_{k}.bin" for k in range(1, 6)], num_train)
    x_test, y_test = _cifar_split(root, ["test_batch.bin"], num_test)
    return ImageDataset(x_train, y_train, x_test, y_test, CIFAR10_CLASSES)


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: a byte-order mark (as some Windows editors write) is dropped, not read
        # into the first paper id
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from err


def load_cora(data_dir, seed: int = 0, train_per_class: int = 20, num_val: int = 500,
              num_test: int = 1000) -> GraphDataset:
    """Load the Cora citation graph from ``cora.content`` and ``cora.cites``.

    ``cora.content`` has one paper per line: id, binary word features
    (1433 in the real file; any number, the same on every line, is accepted),
    class name. ``cora.cites`` has lines ``cited_id citing_id``. Citations
    become undirected edges, with duplicates and self citations dropped.
    Nodes keep the order of ``cora.content``; class ``k`` is the k-th class
    name in sorted order.

    The split has Planetoid's sizes (Yang et al., 2016; Kipf & Welling,
    2017: 20 per class, 500 val, 1000 test) but is **our own** seeded random
    draw, not Planetoid's fixed index lists, so numbers are comparable in
    spirit, not node for node.

    Args:
        data_dir: directory holding (possibly ``cora/``) the two files.
        seed: seed of the split.
        train_per_class, num_val, num_test: split sizes.

    Returns:
        GraphDataset; features (2708, 1433) float64 in {0, 1} for real Cora.

    Raises:
        FileNotFoundError: a file is missing (message names the path).
        ValueError: a file is malformed (message names the path and the fault).
    """
    seed = check_int("seed", seed, minimum=0)
    train_per_class = check_int("train_per_class", train_per_class)
    num_val = check_int("num_val", num_val, minimum=0)
    num_test = check_int("num_test", num_test, minimum=0)
    root = Path(data_dir)
    if not (root / "cora.content").is_file() and (root / "cora").is_dir():
        root = root / "cora"
    content_path = _find(root, ["cora.content"])
    cites_path = _find(root, ["cora.cites"])

    rows = [line.split() for line in _read_text(content_path).splitlines() if line.strip()]
    if not rows or len(rows[0]) < 3:
        raise ValueError(f"{content_path}: expected lines 'id features... label'")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise ValueError(f"{content_path}: line {number} has {len(row)} fields, "
                             f"line 1 has {width}")
    ids = [row[0] for row in rows]
    index = {paper: k for k, paper in enumerate(ids)}
    if len(index) != len(ids):
        raise ValueError(f"{content_path}: duplicate paper id")
    try:
        features = np.array([row[1:-1] for row in rows], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{content_path}: non-numeric feature ({err})") from err
    if not np.all((features == 0) | (features == 1)):
        raise ValueError(f"{content_path}: features must be 0 or 1")
    classes = tuple(sorted({row[-1] for row in rows}))
    class_index = {name: k for k, name in enumerate(classes)}
    labels = np.array([class_index[row[-1]] for row in rows], dtype=np.int64)

    pairs = []
    for number, line in enumerate(_read_text(cites_path).splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"{cites_path}: line {number} has {len(fields)} fields, expected 2")
        for paper in fields:
            if paper not in index:
                raise ValueError(f"{cites_path}: line {number} cites unknown paper {paper!r}")
        pairs.append((index[fields[0]], index[fields[1]]))
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    edges = np.sort(edges, axis=1)                          # undirected: i < j
    edges = np.unique(edges[edges[:, 0] != edges[:, 1]], axis=0)   # sorted, deduplicated

    rng = np.random.default_rng(seed)
    train, val, test = split_nodes(labels, train_per_class, num_val, num_test, rng)
    return GraphDataset(features, labels, edges.reshape(-1, 2), len(ids), train, val,
                        test, classes)
