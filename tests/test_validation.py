"""Bad input at every public entry point of the engine: layers, losses, Sequential,
net.init, net.evaluate and the Evaluation oracles (docs/design.md, "Checks at the boundary").

Each test draws which argument to corrupt and how, and asserts the exception
type and that its one-line message names the argument. Anything else — an
IndexError, KeyError, AttributeError, a NumPy broadcasting error, or a quiet
NaN — fails. Optimizers, theory, data and train: ``test_validation_api.py``.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from strategies_validation import (BAD_COUNT, BAD_NAME, corrupted, expect_error,
                                   names_argument)


def _graph():
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    return mll.normalized_adjacency(edges, 5)


def _networks():
    """name -> (net, x, y): one of each model family and each loss, tiny."""
    rng = np.random.default_rng(0)
    mlp = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)], loss=mll.SoftmaxCrossEntropy())
    cnn = mll.Sequential([mll.Conv2d(1, 2, 3, padding=1), mll.ReLU(), mll.MaxPool2d(2), mll.Flatten(),
                          mll.Dense(8, 3)], loss=mll.SoftmaxCrossEntropy())
    gcn = mll.Sequential([mll.GraphConv(3, 4, _graph()), mll.Softplus(), mll.GraphConv(4, 2, _graph())],
                         loss=mll.SoftmaxCrossEntropy(mask=np.array([True, True, False, True, False])))
    ae = mll.Sequential([mll.Dense(4, 2), mll.Sigmoid(), mll.Dense(2, 4)], loss=mll.SigmoidCrossEntropy())
    mse = mll.Sequential([mll.Dense(3, 2)], loss=mll.MeanSquaredError())
    return {
        "mlp": (mlp, rng.standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])),
        "cnn": (cnn, rng.standard_normal((3, 1, 4, 4)), np.array([0, 2, 1])),
        "gcn": (gcn, rng.standard_normal((5, 3)), np.array([0, 1, 0, 1, 1])),
        "ae": (ae, rng.random((4, 4)), rng.random((4, 4))),
        "mse": (mse, rng.standard_normal((5, 3)), rng.standard_normal((5, 2))),
    }


NETS = _networks()
net_names = st.sampled_from(sorted(NETS))


def _block_entry(draw, params):
    """(k, key) of one drawn parameter array."""
    k = draw(st.sampled_from([k for k, e in enumerate(params) if e]))
    return k, draw(st.sampled_from(sorted(params[k])))


# -- layer and loss constructors -------------------------------------------------------

LAYER_ARGS = {
    # constructor -> (good keyword arguments, names that must be positive integers)
    mll.Dense: ({"in_features": 3, "out_features": 2}, ["in_features", "out_features"]),
    mll.Conv2d: ({"in_channels": 1, "out_channels": 2, "kernel_size": 3},
                 ["in_channels", "out_channels", "kernel_size", "stride"]),
    mll.MaxPool2d: ({"kernel_size": 2}, ["kernel_size"]),
    mll.AvgPool2d: ({"kernel_size": 2}, ["kernel_size"]),
    mll.GraphConv: ({"in_features": 3, "out_features": 2, "adjacency": _graph()},
                    ["in_features", "out_features"]),
}


LAYER_CASES = [(cls, name) for cls, (good, counts) in LAYER_ARGS.items()
               for name in counts + (["init"] if cls in (mll.Dense, mll.Conv2d, mll.GraphConv) else [])]


@pytest.mark.parametrize("cls, name", LAYER_CASES, ids=lambda v: getattr(v, "__name__", v))
@settings(max_examples=5)
@given(data=st.data())
def test_layer_constructors_name_the_bad_argument(cls, name, data):
    good, _ = LAYER_ARGS[cls]
    cls(**good)  # the good arguments work
    value = data.draw(BAD_NAME if name == "init" else BAD_COUNT, label="value")
    expect_error(lambda: cls(**dict(good, **{name: value})), name)


@given(st.sampled_from([-1, 1.5, "1", None, True]))
def test_conv_padding(value):
    expect_error(lambda: mll.Conv2d(1, 1, 2, padding=value), "padding")


@given(st.sampled_from(["dense", "nonsquare", "nan", "complex", "list"]))
def test_graph_conv_adjacency(kind):
    bad = {"dense": np.eye(3), "nonsquare": sp.csr_matrix(np.ones((3, 2))),
           "nan": sp.csr_matrix(np.full((3, 3), np.nan)), "complex": sp.csr_matrix(np.eye(3) * 1j),
           "list": [[1.0]]}[kind]
    expect_error(lambda: mll.GraphConv(2, 2, bad), "adjacency")


@given(st.sampled_from(["float", "1d", "negative", "too_large", "three_columns"]),
       st.sampled_from([0, -2, 1.5, "4", None]))
def test_normalized_adjacency(edge_fault, num_nodes):
    edges = {"float": np.array([[0.0, 1.0]]), "1d": np.array([0, 1]), "negative": np.array([[0, -1]]),
             "too_large": np.array([[0, 9]]), "three_columns": np.array([[0, 1, 2]])}[edge_fault]
    expect_error(lambda: mll.normalized_adjacency(edges, 4), "edges")
    expect_error(lambda: mll.normalized_adjacency(np.array([[0, 1]]), num_nodes), "num_nodes")


@given(st.sampled_from(["int", "2d", "none_selected", "float", "list_of_str"]))
def test_softmax_mask(kind):
    mask = {"int": np.array([1, 0]), "2d": np.ones((2, 2), bool), "none_selected": np.zeros(3, bool),
            "float": np.array([1.0, 0.0]), "list_of_str": ["a", "b"]}[kind]
    expect_error(lambda: mll.SoftmaxCrossEntropy(mask=mask), "mask")


@given(st.sampled_from(["empty", "none", "not_layers", "class"]), st.sampled_from(["none", "class", "str"]))
def test_sequential(layers_fault, loss_fault):
    layers = {"empty": [], "none": None, "not_layers": [mll.Dense(2, 2), np.tanh],
              "class": [mll.Dense]}[layers_fault]
    loss = {"none": None, "class": mll.MeanSquaredError, "str": "mse"}[loss_fault]
    expect_error(lambda: mll.Sequential(layers, loss=mll.MeanSquaredError()), "layers")
    expect_error(lambda: mll.Sequential([mll.Dense(2, 2)], loss=loss), "loss")


@given(net_names, st.sampled_from([-1, 1.5, "0", True, None, [0]]),
       st.sampled_from([int, np.float16, complex, "foo", object]))
def test_init_seed_and_dtype(name, seed, dtype):
    net = NETS[name][0]
    expect_error(lambda: net.init(seed), "seed")  # None too: init promises a seeded draw
    expect_error(lambda: net.init(0, dtype=dtype), "dtype")


# -- evaluate ----------------------------------------------------------------------------

@given(st.data())
def test_evaluate_rejects_bad_x(data):
    name = data.draw(net_names, label="net")
    net, x, y = NETS[name]
    params = net.init(0)
    net.evaluate(params, x, y)
    bad, kind = data.draw(corrupted(x), label="x")
    expect_error(lambda: net.evaluate(params, bad, y), ("x", "y") if kind == "shape" else "x")
    if kind != "shape":  # with one row less, x alone may still be a valid batch
        expect_error(lambda: net.forward(params, bad), "x")


@given(net_names)
def test_evaluate_rejects_empty_batch(name):
    net, x, y = NETS[name]
    expect_error(lambda: net.evaluate(net.init(0), x[:0], y[:0]), "x")


@given(st.data())
def test_evaluate_rejects_bad_params(data):
    name = data.draw(net_names, label="net")
    net, x, y = NETS[name]
    params = net.init(0)
    k, key = _block_entry(data.draw, params)
    bad, _ = data.draw(corrupted(params[k][key]), label="array")
    broken = [dict(e) for e in params]
    broken[k][key] = bad
    error = expect_error(lambda: net.evaluate(broken, x, y), "params")
    assert names_argument(str(error), f"params[{k}][{key!r}]"), str(error)


@given(net_names, st.sampled_from(["none", "dict", "short", "extra_key", "missing_key", "entry_none"]))
def test_evaluate_rejects_bad_params_structure(name, fault):
    net, x, y = NETS[name]
    params = net.init(0)
    k = net.blocks[0]
    broken = {"none": None, "dict": {}, "short": params[:-1],
              "extra_key": params[:k] + [dict(params[k], c=params[k]["W"])] + params[k + 1:],
              "missing_key": params[:k] + [{"W": params[k]["W"]}] + params[k + 1:],
              "entry_none": params[:k] + [None] + params[k + 1:]}[fault]
    expect_error(lambda: net.evaluate(broken, x, y), "params")


@given(st.data())
def test_evaluate_rejects_bad_targets(data):
    name = data.draw(net_names, label="net")
    net, x, y = NETS[name]
    params = net.init(0)
    labels = y.dtype.kind == "i"
    fault = data.draw(st.sampled_from(["shape", "none", "complex", "object", "str", "bool", "nonfinite"]
                                      + (["float", "negative", "too_large"] if labels else ["out_of_range"])),
                      label="fault")
    if fault == "nonfinite" and labels:
        fault = "float"
    bad = {"shape": y[1:], "none": None, "complex": y.astype(complex), "object": y.astype(object),
           "str": np.full(y.shape, "a"), "bool": y > 0,
           "nonfinite": np.where(np.arange(y.size).reshape(y.shape) == 0, np.nan, y) if not labels else y,
           "float": y.astype(float), "negative": y - 5, "too_large": y + 10,
           "out_of_range": y + 2}[fault]
    if name == "mse" and fault == "out_of_range":
        return  # any real target is in range for the squared error
    expect_error(lambda: net.evaluate(params, x, bad), "y")


# -- the Evaluation oracles ----------------------------------------------------------------

@given(st.data())
def test_oracles_reject_bad_directions(data):
    name = data.draw(net_names, label="net")
    net, x, y = NETS[name]
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    k, key = _block_entry(data.draw, params)
    bad, _ = data.draw(corrupted(params[k][key], kinds=("nonfinite", "dtype", "shape")), label="array")
    direction = [dict(e) for e in ev.grads]
    direction[k][key] = bad
    expect_error(lambda: ev.hvp(direction), "v")
    kind = data.draw(st.sampled_from(["hessian", "ggn", "sign_hvp", "naive_hvp", "mc_fisher"]), label="kind")
    expect_error(lambda: ev.layer_curvature(direction, kind=kind, seed=0), "d")
    expect_error(lambda: ev.hvp(None), "v")
    expect_error(lambda: ev.layer_curvature(direction[:-1]), "d")


@given(net_names, BAD_NAME, st.sampled_from([-1, 1.5, "3", True]))
def test_oracles_reject_bad_kind_and_seed(name, kind, seed):
    net, x, y = NETS[name]
    ev = net.evaluate(net.init(0), x, y)
    expect_error(lambda: ev.hvp(ev.grads, kind=kind), "kind")
    expect_error(lambda: ev.layer_curvature(ev.grads, kind=kind), "kind")
    expect_error(lambda: ev.block_hessian(0, kind=kind), "kind")
    expect_error(lambda: ev.hessian(kind=kind, max_size=None), "kind")
    expect_error(lambda: ev.layer_curvature(ev.grads, kind="sign_hvp", seed=seed), "seed")
    expect_error(lambda: ev.layer_curvature(ev.grads, kind="mc_fisher", seed=seed), "seed")


@given(net_names, st.sampled_from([-100, 99, 1.0, "0", None, True]),
       st.sampled_from([0, -1, 1.5, "64", True]), st.sampled_from([0, -5, 2.5, "a", True]))
def test_dense_matrices_reject_bad_arguments(name, i, chunk, max_size):
    net, x, y = NETS[name]
    ev = net.evaluate(net.init(0), x, y)
    expect_error(lambda: ev.block_hessian(i), "i")
    expect_error(lambda: ev.block_hessian(0, chunk=chunk), "chunk")
    expect_error(lambda: ev.hessian(chunk=chunk), "chunk")
    expect_error(lambda: ev.block_hessian(0, max_size=max_size), "max_size")
    expect_error(lambda: ev.hessian(max_size=1), "max_size")  # the size guard names it too


def test_overflowing_input_gives_a_non_finite_loss_and_no_nan_parameters():
    # Finite but huge inputs overflow inside the network: documented, not an error of
    # evaluate; the optimizers and apply_updates then refuse to produce NaN parameters.
    net, x, y = NETS["mse"]
    params = net.init(0)
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point
        ev = net.evaluate(params, x * 1e300, y)
    assert not np.isfinite(ev.loss)
    for opt in (mll.optim.SGD(lr=0.1), mll.optim.AdamW(),
                mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9))):
        with pytest.raises(ValueError, match="grads"):
            opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature)


def test_the_peers_refuse_the_overflowed_gradients_too():
    net, x, y = NETS["mse"]
    params = net.init(0)
    with np.errstate(over="ignore", invalid="ignore"):
        ev = net.evaluate(params, x * 1e300, y)
    oracles = {"loss": lambda p: net.loss_value(p, x, y), "hvp": ev.hvp}
    for opt in (mll.optim.DoG(), mll.optim.LDoG(), mll.optim.Prodigy(), mll.optim.SLS(),
                mll.optim.GlobalStepSize()):
        with pytest.raises(ValueError, match="grads"):
            opt.update(ev.grads, opt.init(params), params, **{k: oracles[k] for k in opt.oracles})
