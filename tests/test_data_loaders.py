"""Tests for the local-file loaders and load_dataset.

Each test writes small files in the exact on-disk formats (with writers
written here from the format descriptions, independent of the library),
then checks the loaded values and the errors on corrupt files.
"""
import gzip
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilayerlr.data import (DATASET_NAMES, GraphDataset, ImageDataset, load_cifar10,
                              load_cora, load_dataset, load_mnist, read_idx)

# ------------------------------------------------------------------ writers


def idx_bytes(array, type_code=0x08, big_endian_dtype=">u1"):
    array = np.asarray(array)
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(big_endian_dtype).tobytes()


def write(path, data, gz=False):
    path = Path(str(path) + ".gz") if gz else Path(path)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mnist(root, n_train, n_test, rows, cols, rng, gz=False):
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write(Path(root) / f"{prefix}-images-idx3-ubyte", idx_bytes(images), gz)
        write(Path(root) / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels), gz)
        out[prefix] = (images, labels)
    return out


def write_cifar(root, counts, rng):
    """counts: records per file, data_batch_1..5 then test_batch."""
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
    out = {}
    for name, n in zip(names, counts):
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        pixels = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        records = np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1)
        (Path(root) / name).write_bytes(records.tobytes())
        out[name] = (pixels, labels)
    return out


# -------------------------------------------------------------------- IDX


@given(n=st.integers(0, 12), rows=st.integers(1, 9), cols=st.integers(1, 9),
       seed=st.integers(0, 2**32 - 1), gz=st.booleans())
def test_idx_round_trip_uint8(n, rows, cols, seed, gz):
    data = np.random.default_rng(seed).integers(0, 256, (n, rows, cols), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as root:
        path = write(Path(root) / "x-idx3-ubyte", idx_bytes(data), gz)
        out = read_idx(path)
    assert out.dtype == np.uint8 and np.array_equal(out, data)


@pytest.mark.parametrize("code, dtype", [(0x0B, ">i2"), (0x0C, ">i4"),
                                         (0x0D, ">f4"), (0x0E, ">f8"), (0x09, "i1")])
def test_idx_other_types_are_big_endian(tmp_path, code, dtype):
    data = np.arange(-6, 6).reshape(3, 4)
    out = read_idx(write(tmp_path / "x", idx_bytes(data, code, dtype)))
    assert out.dtype.isnative and np.array_equal(out, data)


@pytest.mark.parametrize("raw, message", [
    (b"", "magic"), (b"\x00\x01\x08\x01", "magic"), (b"\x00\x00\x07\x01", "magic"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "header"),
    (idx_bytes(np.zeros((2, 3)))[:-1], "size"),
    (idx_bytes(np.zeros((2, 3))) + b"\x00", "size"),
])
def test_idx_corrupt(tmp_path, raw, message):
    path = write(tmp_path / "bad-idx", raw)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((4, 4))))[:-6])
    with pytest.raises(ValueError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_idx_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        read_idx(tmp_path / "nope")


# ------------------------------------------------------------------ MNIST


@given(n_train=st.integers(1, 9), n_test=st.integers(1, 5), rows=st.integers(1, 30),
       cols=st.integers(1, 30), seed=st.integers(0, 2**32 - 1), gz=st.booleans())
def test_mnist_round_trip(n_train, n_test, rows, cols, seed, gz):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as root:
        raw = write_mnist(root, n_train, n_test, rows, cols, rng, gz)
        ds = load_mnist(root)
    assert isinstance(ds, ImageDataset)
    for x, y, (images, labels) in ((ds.x_train, ds.y_train, raw["train"]),
                                   (ds.x_test, ds.y_test, raw["t10k"])):
        assert x.shape == (len(images), 1, rows, cols) and x.dtype == np.float64
        assert y.dtype == np.int64 and np.array_equal(y, labels)
        assert np.allclose(x[:, 0] * 255, images) and x.min() >= 0 and x.max() <= 1


def test_mnist_28x28_limits_and_dotted_names(tmp_path):
    raw = write_mnist(tmp_path, 6, 4, 28, 28, np.random.default_rng(0))
    # Some mirrors ship "train-images.idx3-ubyte": accept that spelling too.
    for prefix in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            p = tmp_path / f"{prefix}-{kind}-ubyte"
            p.rename(tmp_path / f"{prefix}-{kind.replace('-', '.')}-ubyte")
    ds = load_mnist(tmp_path, num_train=5, num_test=2)
    assert ds.x_train.shape == (5, 1, 28, 28) and ds.x_test.shape == (2, 1, 28, 28)
    assert np.array_equal(ds.y_train, raw["train"][1][:5])


def test_mnist_missing_file_names_path(tmp_path):
    write_mnist(tmp_path, 3, 2, 4, 4, np.random.default_rng(0))
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("fault, message", [
    ("truncated", "size"), ("magic", "magic"), ("count", "labels but"),
    ("label", "unknown label"), ("rank", "expected uint8 images"),
])
def test_mnist_corrupt(tmp_path, fault, message):
    write_mnist(tmp_path, 3, 2, 4, 4, np.random.default_rng(0))
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    bad = {"truncated": images, "magic": images, "count": labels,
           "label": labels, "rank": images}[fault]
    if fault == "truncated":
        bad.write_bytes(bad.read_bytes()[:-5])
    elif fault == "magic":
        bad.write_bytes(b"\x00\x00\x99\x03" + bad.read_bytes()[4:])
    elif fault == "count":
        bad.write_bytes(idx_bytes(np.array([1, 2], dtype=np.uint8)))
    elif fault == "label":
        bad.write_bytes(idx_bytes(np.array([1, 2, 10], dtype=np.uint8)))
    else:
        bad.write_bytes(idx_bytes(np.zeros((3, 16), dtype=np.uint8)))
    with pytest.raises(ValueError, match=message) as info:
        load_mnist(tmp_path)
    assert str(bad) in str(info.value)


# --------------------------------------------------------------- CIFAR-10


def test_cifar_round_trip(tmp_path):
    raw = write_cifar(tmp_path, [3, 2, 1, 2, 4, 5], np.random.default_rng(1))
    ds = load_cifar10(tmp_path)
    pixels = np.concatenate([raw[f"data_batch_{k}.bin"][0] for k in range(1, 6)])
    labels = np.concatenate([raw[f"data_batch_{k}.bin"][1] for k in range(1, 6)])
    assert ds.x_train.shape == (12, 3, 32, 32) and ds.x_test.shape == (5, 3, 32, 32)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    assert np.allclose(ds.x_train * 255, pixels) and np.array_equal(ds.y_train, labels)
    assert np.allclose(ds.x_test * 255, raw["test_batch.bin"][0])
    assert np.array_equal(ds.y_test, raw["test_batch.bin"][1])
    assert ds.classes[0] == "airplane" and ds.num_classes == 10
    limited = load_cifar10(tmp_path, num_train=4, num_test=1)
    assert np.array_equal(limited.x_train, ds.x_train[:4]) and len(limited.y_test) == 1


def test_cifar_channel_layout(tmp_path):
    # First 1024 pixel bytes are the red plane, row-major: pixel (0, 0, 1) is byte 2.
    write_cifar(tmp_path, [1] * 6, np.random.default_rng(0))
    record = bytearray([4]) + bytes(3072)
    record[1 + 1] = 255                       # red, row 0, column 1
    record[1 + 1024 + 32] = 255               # green, row 1, column 0
    (tmp_path / "test_batch.bin").write_bytes(bytes(record))
    x = load_cifar10(tmp_path).x_test[0]
    assert x[0, 0, 1] == 1.0 and x[1, 1, 0] == 1.0 and x.sum() == 2.0


def test_cifar_subdirectory(tmp_path):
    sub = tmp_path / "cifar-10-batches-bin"
    sub.mkdir()
    write_cifar(sub, [1] * 6, np.random.default_rng(0))
    assert load_cifar10(tmp_path).x_train.shape == (5, 3, 32, 32)


@pytest.mark.parametrize("fault, exc, message", [
    ("missing", FileNotFoundError, "data_batch_3.bin"),
    ("truncated", ValueError, "record size"),
    ("empty", ValueError, "record size"),
    ("label", ValueError, "unknown label"),
])
def test_cifar_corrupt(tmp_path, fault, exc, message):
    write_cifar(tmp_path, [2] * 6, np.random.default_rng(0))
    bad = tmp_path / "data_batch_3.bin"
    if fault == "missing":
        bad.unlink()
    elif fault == "truncated":
        bad.write_bytes(bad.read_bytes()[:-1])
    elif fault == "empty":
        bad.write_bytes(b"")
    else:
        raw = bytearray(bad.read_bytes())
        raw[3073] = 10                       # label byte of the second record
        bad.write_bytes(bytes(raw))
    with pytest.raises(exc, match=message) as info:
        load_cifar10(tmp_path)
    assert str(bad) in str(info.value)


# ------------------------------------------------------------------- Cora


CORA_CLASSES = ["Theory", "Neural_Networks", "Rule_Learning"]


def write_cora(root, n=60, f=7, seed=0, extra_cites=()):
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**6, size=n, replace=False)
    feats = rng.integers(0, 2, size=(n, f))
    labels = np.arange(n) % len(CORA_CLASSES)
    lines = ["\t".join([str(i), *map(str, row), CORA_CLASSES[c]])
             for i, row, c in zip(ids, feats, labels)]
    (Path(root) / "cora.content").write_text("\n".join(lines) + "\n")
    pairs = rng.integers(0, n, size=(3 * n, 2))
    cites = [f"{ids[a]}\t{ids[b]}" for a, b in pairs] + list(extra_cites)
    (Path(root) / "cora.cites").write_text("\n".join(cites) + "\n")
    return ids, feats, labels, pairs


def test_cora_round_trip(tmp_path):
    ids, feats, labels, pairs = write_cora(tmp_path)
    g = load_cora(tmp_path, train_per_class=5, num_val=10, num_test=20)
    assert isinstance(g, GraphDataset) and g.num_nodes == 60
    assert g.features.dtype == np.float64 and np.array_equal(g.features, feats)
    assert g.classes == tuple(sorted(CORA_CLASSES))
    names = np.array(CORA_CLASSES)[labels]
    assert np.array_equal(np.array(g.classes)[g.labels], names)
    expected = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
    assert set(map(tuple, g.edges.tolist())) == expected and g.num_edges == len(expected)
    assert g.edges.dtype == np.int64 and np.all(g.edges[:, 0] < g.edges[:, 1])
    assert np.array_equal(g.edges, np.unique(g.edges, axis=0))
    assert np.array_equal(np.bincount(g.labels[g.train_mask]), [5, 5, 5])
    assert g.val_mask.sum() == 10 and g.test_mask.sum() == 20
    assert (g.train_mask.astype(int) + g.val_mask + g.test_mask).max() == 1


def test_cora_split_seeded(tmp_path):
    write_cora(tmp_path)
    kw = dict(train_per_class=5, num_val=10, num_test=20)
    a, b, c = (load_cora(tmp_path, seed=s, **kw) for s in (0, 0, 1))
    assert np.array_equal(a.train_mask, b.train_mask)
    assert np.array_equal(a.test_mask, b.test_mask)
    assert not np.array_equal(a.train_mask, c.train_mask)


@pytest.mark.parametrize("fault, message", [
    ("unknown_cite", "unknown paper"), ("cite_fields", "fields"),
    ("ragged", "fields"), ("feature", "0 or 1"), ("duplicate", "duplicate"),
])
def test_cora_corrupt(tmp_path, fault, message):
    ids, *_ = write_cora(tmp_path)
    cites = tmp_path / "cora.cites"
    if fault == "unknown_cite":     # ids are below 10**6, so this one is unknown
        cites.write_text(cites.read_text() + f"{ids[0]}\t4242424242\n")
    elif fault == "cite_fields":
        cites.write_text(cites.read_text() + f"{ids[0]}\t{ids[1]}\t{ids[2]}\n")
    content = tmp_path / "cora.content"
    lines = content.read_text().splitlines()
    if fault == "ragged":
        lines[5] = lines[5].replace("\t", "\t0\t", 1)
    elif fault == "feature":
        lines[5] = lines[5].split("\t", 1)[0] + "\t2\t" + lines[5].split("\t", 2)[2]
    elif fault == "duplicate":
        lines.append(lines[0])
    content.write_text("\n".join(lines))
    bad = tmp_path / ("cora.cites" if "cite" in fault else "cora.content")
    with pytest.raises(ValueError, match=message) as info:
        load_cora(tmp_path, train_per_class=5, num_val=10, num_test=20)
    assert str(bad) in str(info.value)


def test_cora_missing(tmp_path):
    write_cora(tmp_path)
    (tmp_path / "cora.cites").unlink()
    with pytest.raises(FileNotFoundError, match="cora.cites") as info:
        load_cora(tmp_path)
    assert str(tmp_path) in str(info.value)


# ----------------------------------------------------------- load_dataset


def test_load_dataset_generated():
    ds = load_dataset("digits", num_train=20, num_test=10, seed=4)
    assert ds.x_train.shape == (20, 1, 16, 16)
    from minilayerlr.data import synthetic_digits
    assert np.array_equal(ds.x_train, synthetic_digits(20, 10, seed=4).x_train)
    g = load_dataset("CSBM", num_nodes=100, num_val=10)
    assert isinstance(g, GraphDataset) and g.num_nodes == 100


def test_load_dataset_files(tmp_path):
    write_mnist(tmp_path, 3, 2, 5, 5, np.random.default_rng(0))
    write_cifar(tmp_path, [1] * 6, np.random.default_rng(0))
    write_cora(tmp_path)
    assert load_dataset("mnist", tmp_path).x_train.shape == (3, 1, 5, 5)
    assert load_dataset("cifar10", str(tmp_path), num_train=2).x_train.shape[0] == 2
    g = load_dataset("cora", tmp_path, seed=1, train_per_class=2, num_val=3, num_test=4)
    assert g.train_mask.sum() == 6


def test_load_dataset_errors(tmp_path):
    with pytest.raises(ValueError) as info:
        load_dataset("imagenet")
    assert all(name in str(info.value) for name in DATASET_NAMES)
    with pytest.raises(ValueError, match="data_dir"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="data_dir"):
        load_dataset("digits", data_dir=tmp_path)
    with pytest.raises(ValueError, match="num_nodes"):
        load_dataset("digits", num_nodes=5)
    with pytest.raises(ValueError, match="num_train"):
        load_dataset("digits", num_train=0)
    with pytest.raises(FileNotFoundError):
        load_dataset("cora", tmp_path)
