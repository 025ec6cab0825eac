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
from ..validation import check_int, check_memory
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


def _read_bytes(path: Path, limit: Optional[int] = None) -> bytes:
    """File contents, gunzipped when the name ends in .gz; at most ``limit`` bytes (None: all).

    A gzip stream is inflated only up to ``limit`` (+1, to tell "longer" from
    "exactly"), so a small file that inflates to gigabytes is never inflated whole.
    """
    try:
        if path.suffix != ".gz":
            with open(path, "rb") as f:
                return f.read() if limit is None else f.read(limit + 1)
        with gzip.open(path, "rb") as f:
            return f.read() if limit is None else f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as err:
        if path.suffix != ".gz":
            raise
        raise ValueError(f"{path}: corrupt gzip stream ({err})") from err


#: bytes a loaded image's pixel costs per stored byte: the raw bytes, the float64 copy
#: and the scaled copy (1 + 8 + 8), our bound
_LOAD_BYTES_PER_STORED_BYTE = 17


def _idx_header(path: Path):
    """(dtype, shape, header bytes) of the IDX file at ``path``, read from its first bytes only."""
    head = _read_bytes(path, 4)[:4]
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic number {head.hex() or '(empty)'}")
    dtype, ndim = _IDX_DTYPES[head[2]], head[3]
    header = 4 + 4 * ndim
    raw = _read_bytes(path, header)[:header]
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    return dtype, shape, header


def read_idx(path) -> np.ndarray:
    """Parse one IDX file (plain, or gzip when the name ends in .gz).

    Layout: two zero bytes, a type code byte, the number of dimensions d, then
    d big-endian uint32 sizes, then the data in C order, big-endian. The
    header is read first: a file declaring more data than memory can hold is
    refused with the estimate before its data are read (or a gzip stream
    inflated), and no more bytes than it declares (+1) are ever read.

    Args:
        path: file path.

    Returns:
        Array of the stored shape; dtype converted to native byte order.

    Raises:
        FileNotFoundError: if path does not exist.
        ValueError: on a bad magic number, unknown type code, wrong size, or a
            size that cannot fit in memory (a UserError naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"path: missing data file {path}")
    dtype, shape, header = _idx_header(path)
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: 2^32-sized dims cannot overflow
    on_disk = path.stat().st_size
    if path.suffix != ".gz" and on_disk != expected:  # a plain file's size is known without reading
        raise ValueError(f"{path}: wrong size, {on_disk} bytes but header "
                         f"{shape} needs {expected} (truncated or trailing bytes)")
    check_memory(str(path), f"data of shape {shape} ({dtype.name}) once loaded as float64",
                 float(expected) * _LOAD_BYTES_PER_STORED_BYTE)
    raw = _read_bytes(path, expected)
    if len(raw) != expected:
        found = f"{len(raw)} bytes" if len(raw) <= expected else "more bytes"
        raise ValueError(f"{path}: wrong size, {found} but header "
                         f"{shape} needs {expected} (truncated or trailing bytes)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def _check_labels(labels: np.ndarray, num_classes: int, path: Path) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"{path}: unknown label {bad} (expected 0..{num_classes - 1})")
    return labels.astype(np.int64)


def _check_classes(labels: np.ndarray, path, min_classes: int) -> None:
    """Refuse a training set with fewer than ``min_classes`` classes (naming its file).

    The readers accept any file (``min_classes=1``); ``load_dataset``, which
    builds training sets, asks for two: one class leaves nothing to tell apart.
    """
    present = np.unique(labels)
    if len(present) < min_classes:
        raise ValueError(f"{path}: every training label is {present[0] if len(present) else '?'}; "
                         "a classifier needs examples of at least two classes")


def _limit(name: str, value: Optional[int]) -> Optional[int]:
    return None if value is None else check_int(name, value)


def _mnist_split(root, prefix: str, limit: Optional[int], min_classes: int = 1):
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
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"{images_path}: images of {images.shape[1]}x{images.shape[2]} pixels "
                         "hold nothing to learn from")
    labels = _check_labels(labels, 10, labels_path)
    if prefix == "train":
        _check_classes(labels[:limit], labels_path, min_classes)
    images, labels = images[:limit], labels[:limit]
    return images[:, None].astype(np.float64) / 255.0, labels


def load_mnist(data_dir, num_train: Optional[int] = None,
               num_test: Optional[int] = None, min_classes: int = 1) -> ImageDataset:
    """Load MNIST from the four IDX files in ``data_dir``.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or
    ``.gz`` (the ``train-images.idx3-ubyte`` spelling is accepted too).

    Args:
        data_dir: directory holding the files.
        num_train, num_test: keep only the first this many images (None: all).
        min_classes: refuse a training split with fewer classes (naming its file).

    Returns:
        ImageDataset with x (N, 1, 28, 28) float64 in [0, 1] (pixel / 255)
        and int64 labels 0-9.

    Raises:
        FileNotFoundError: a file is missing (message names the path).
        ValueError: a file is malformed (message names the path and the fault).
    """
    num_train, num_test = _limit("num_train", num_train), _limit("num_test", num_test)
    x_train, y_train = _mnist_split(data_dir, "train", num_train, min_classes)
    x_test, y_test = _mnist_split(data_dir, "t10k", num_test)
    return ImageDataset(x_train, y_train, x_test, y_test, tuple(str(d) for d in range(10)))


def _cifar_file(path: Path):
    check_memory(str(path), "its images once loaded as float64",
                 float(path.stat().st_size) * _LOAD_BYTES_PER_STORED_BYTE)
    raw = _read_bytes(path)
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise ValueError(f"{path}: wrong size, {len(raw)} bytes is not a positive "
                         f"multiple of the record size {_CIFAR_RECORD} (truncated?)")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = _check_labels(records[:, 0], 10, path)
    # Each record stores the red, green and blue 32x32 planes, row-major.
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _cifar_split(root: Path, names, limit: Optional[int], min_classes: int = 1):
    images, labels, have = [], [], 0
    for name in names:
        if limit is not None and have >= limit:
            break   # skip reading batches we would throw away
        x, y = _cifar_file(_find(root, [name]))
        images.append(x)
        labels.append(y)
        have += y.size
    x = np.concatenate(images)[:limit].astype(np.float64) / 255.0
    y = np.concatenate(labels)[:limit]
    _check_classes(y, root / names[0], min_classes)
    return x, y


def load_cifar10(data_dir, num_train: Optional[int] = None,
                 num_test: Optional[int] = None, min_classes: int = 1) -> ImageDataset:
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
        root, [f"data_batch_{k}.bin" for k in range(1, 6)], num_train, min_classes)
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
              num_test: int = 1000, min_classes: int = 1) -> GraphDataset:
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
        min_classes: refuse a file with fewer classes.

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
    if len(classes) < min_classes:
        raise ValueError(f"{content_path}: every paper has the class {classes[0]!r}; a classifier "
                         "needs at least two classes")
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
