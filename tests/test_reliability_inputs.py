"""Clean errors (or correct results) for inputs that used to give tracebacks or wrong answers."""
import struct

import numpy as np
import pytest

import minilayerlr as mll
from minilayerlr.data import load_cora, load_mnist, read_idx


def _idx(shape, data=b""):
    return struct.pack(">BBBB", 0, 0, 0x08, len(shape)) + struct.pack(">" + "I" * len(shape), *shape) + data


def _mnist(root, n_train, n_test):
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(_idx((n, 4, 4), bytes(16 * n)))
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx((n,), bytes(n)))


@pytest.mark.parametrize("n_train, n_test, name", [(3, 0, "t10k-images"), (0, 2, "train-images")])
def test_mnist_with_an_empty_split_names_the_file(tmp_path, n_train, n_test, name):
    _mnist(tmp_path, n_train, n_test)
    with pytest.raises(ValueError, match=f"{name}-idx3-ubyte: holds no images"):
        load_mnist(tmp_path)


def test_idx_dims_whose_product_overflows_int64_are_a_size_error(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(_idx((2**32 - 1, 2**32 - 1, 2**32 - 1), b"\0" * 8))
    with pytest.raises(ValueError) as info:
        read_idx(path)
    message = str(info.value)
    # the exact size the header asks for, (2^32 - 1)^3 + 16 bytes, not a wrapped-around int64
    assert str(path) in message and f"needs {(2**32 - 1) ** 3 + 16}" in message, message


@pytest.mark.parametrize("bom_in", ["cora.content", "cora.cites"])
def test_cora_with_a_utf8_byte_order_mark_loads(tmp_path, bom_in):
    """A BOM used to become part of the first paper id: 'cites unknown paper'."""
    ids = [11, 22, 33, 44, 55, 66]
    lines = [f"{i}\t{k % 2}\t{(k + 1) % 2}\t{'AB'[k % 2]}" for k, i in enumerate(ids)]
    texts = {"cora.content": "\n".join(lines) + "\n", "cora.cites": "11\t22\n33\t44\n"}
    for name, text in texts.items():
        (tmp_path / name).write_text(("\ufeff" if name == bom_in else "") + text, encoding="utf-8")
    g = load_cora(tmp_path, train_per_class=1, num_val=1, num_test=1)
    assert g.num_nodes == 6 and g.edges.tolist() == [[0, 1], [2, 3]]


def test_normalized_adjacency_of_no_edges_is_the_identity():
    for empty in ([], np.zeros((0, 2), dtype=np.int64), ()):
        assert np.array_equal(mll.normalized_adjacency(empty, 3).toarray(), np.eye(3))
    with pytest.raises(ValueError, match="^edges:"):
        mll.normalized_adjacency([0.5, 1.5], 3)


def test_a_loss_mask_and_a_graph_are_copied_not_kept_by_reference():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    m = np.ones(5, bool)
    net = mll.Sequential([mll.Dense(3, 2)], mll.SoftmaxCrossEntropy(mask=m))
    before = net.evaluate(net.init(0), x, y).loss
    m[:] = False
    assert net.evaluate(net.init(0), x, y).loss == before and np.isfinite(before)
    A = mll.normalized_adjacency([[0, 1], [1, 2]], 3)
    layer = mll.GraphConv(3, 2, A)
    A.data[:] = np.nan
    assert np.all(np.isfinite(layer.adjacency.data))


def _least_squares():
    net = mll.Sequential([mll.Dense(6, 1)], loss=mll.MeanSquaredError())
    x = np.random.default_rng(0).standard_normal((20, 6))
    return net, x, x[:, :1].copy()


def test_train_with_a_0d_target_array_names_y():
    net, x, _ = _least_squares()
    with pytest.raises(ValueError, match="^y: expected 20 targets .*0-d array"):
        mll.training.train(net, net.init(0), mll.optim.SGD(lr=0.1), x, np.array(3), epochs=1, progress=False)


@pytest.mark.parametrize("returned, word", [
    (0.5, "expected a dict"), ("abc", "expected a dict"), ([("a", 1.0)], "expected a dict"),
    ({"a": "x"}, "must be a real number"), ({"a": [1.0]}, "must be a real number"), ({1: 2.0}, "names must be strings"),
    ({"a": True}, "must be a real number"),
])
def test_eval_fn_returning_something_else_than_named_numbers_names_eval_fn(returned, word):
    net, x, y = _least_squares()
    with pytest.raises(ValueError, match="^eval_fn: .*" + word):
        mll.training.train(net, net.init(0), mll.optim.SGD(lr=0.1), x, y, epochs=1, progress=False,
                           eval_fn=lambda p: returned)


def test_eval_fn_that_changes_its_metrics_midway_names_eval_fn():
    net, x, y = _least_squares()
    calls = []

    def eval_fn(p):
        calls.append(1)
        return {"a": 1.0} if len(calls) == 1 else {"b": 1.0}

    with pytest.raises(ValueError, match=r"^eval_fn: returned the metrics \['b'\] after epoch 1"):
        mll.training.train(net, net.init(0), mll.optim.SGD(lr=0.1), x, y, epochs=2, progress=False, eval_fn=eval_fn)


def test_eval_fn_numbers_of_numpy_kinds_and_nan_are_kept():
    net, x, y = _least_squares()
    r = mll.training.train(net, net.init(0), mll.optim.SGD(lr=0.1), x, y, epochs=1, progress=False,
                           eval_fn=lambda p: {"a": np.float32(0.5), "b": np.int64(2), "c": np.array(1.5), "d": np.nan})
    assert r.history.metrics["a"] == [0.5, 0.5] and r.history.metrics["c"] == [1.5, 1.5]
    assert np.isnan(r.history.metrics["d"]).all()


def test_a_diverging_run_stops_without_runtime_warnings():
    import warnings
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6))
    net = mll.Sequential([mll.Dense(6, 8), mll.Tanh(), mll.Dense(8, 3)], loss=mll.SoftmaxCrossEntropy())
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a printed warning would be an error here
        r = mll.training.train(net, net.init(0), mll.optim.AdamW(lr=1e8), x, (x[:, 0] > 0).astype(int),
                               epochs=30, batch_size=16, progress=False)
    assert r.history.diverged and "non-finite loss" in r.history.stop_reason
