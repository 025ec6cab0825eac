"""Bad input at the optimizers, apply_updates, theory, data and train entry points,
and what happens to non-finite values produced during training (docs/design.md, "Checks at the boundary").

The engine's entry points (layers, losses, Sequential, evaluate, the
Evaluation oracles) are in ``test_validation.py``.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr import theory
from minilayerlr.optim import GDLS, SGD, Adam, AdamW, LayerwiseStepSize
from minilayerlr.optim import SLS, DoG, GlobalStepSize, LDoG, Prodigy
from minilayerlr.optim import KFAC, AdaHessian, Shampoo
from minilayerlr.training import train
from minilayerlr.errors import NonFiniteError
from optimizer_list import NAMES
from optimizer_list import OPTIMIZERS as OPTIMIZER_LIST
from strategies_validation import BAD_COUNT, BAD_NAME, BAD_POSITIVE, corrupted, expect_error
from test_data_loaders import write_cifar, write_cora, write_mnist


def _net():
    return mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)], loss=mll.SoftmaxCrossEntropy())


NET = _net()
X = np.random.default_rng(0).standard_normal((6, 3))
Y = np.array([0, 1, 1, 0, 1, 0])
PARAMS = NET.init(0)
EV = NET.evaluate(PARAMS, X, Y)
LOSS = lambda p: NET.loss_value(p, X, Y)  # noqa: E731  (the loss oracle GDLS's line search declares)

#: the optimizers: the one list of tests/optimizer_list.py; each takes exactly its declared oracles
OPTIMIZERS = {name: entry.make for name, entry in OPTIMIZER_LIST.items()}
ORACLES = {"curvature": EV.layer_curvature, "loss": LOSS, "hvp": EV.hvp,
           "kronecker_factors": EV.kronecker_factors}


def _oracles(opt):
    return {name: ORACLES[name] for name in opt.oracles}


def _flat_finite(tree):
    return all(np.all(np.isfinite(v)) for entry in tree for v in entry.values())


# -- optimizer hyper-parameters -------------------------------------------------------------

HYPER = {
    # constructor -> {argument: kind of value it needs}
    SGD: {"lr": "positive", "momentum": "unit", "weight_decay": "nonnegative", "nesterov": "bool"},
    Adam: {"lr": "positive", "b1": "unit", "b2": "unit", "eps": "positive"},
    AdamW: {"lr": "positive", "b1": "unit", "b2": "unit", "eps": "positive", "weight_decay": "nonnegative"},
    LayerwiseStepSize: {"scale": "scale", "damping": "nonnegative", "ema": "unit",
                        "max_step": "positive_or_inf", "on_ascent": "rule",
                        "on_nonpositive_curvature": "rule", "curvature_kind": "kind", "seed": "seed",
                        "base": "base"},
    GDLS: {"scale": "scale", "curvature_kind": "kind"},
    # the peers (issue 11)
    DoG: {"reps_rel": "positive", "lr": "positive", "weight_decay": "nonnegative",
          "eps": "nonnegative", "averaging": "nonnegative_or_none"},
    LDoG: {"reps_rel": "positive", "lr": "positive", "weight_decay": "nonnegative",
           "eps": "nonnegative", "averaging": "nonnegative_or_none"},
    Prodigy: {"lr": "positive", "b1": "unit", "b2": "unit", "beta3": "unit_or_none",
              "eps": "positive", "weight_decay": "nonnegative", "decouple": "bool",
              "use_bias_correction": "bool", "safeguard_warmup": "bool", "d0": "positive",
              "d_coef": "positive", "growth_rate": "above_one_or_inf"},
    SLS: {"c": "open_unit", "beta": "open_unit", "gamma": "at_least_one", "max_step": "positive",
          "init_step_size": "positive", "batches_per_epoch": "count", "max_trials": "count"},
    GlobalStepSize: {"scale": "scale", "damping": "nonnegative", "ema": "unit",
                     "max_step": "positive_or_inf", "on_ascent": "rule",
                     "on_nonpositive_curvature": "rule", "base": "base"},
    KFAC: {"lr": "positive", "damping": "nonnegative", "factor_decay": "unit",
           "inverse_every": "count", "momentum": "unit", "seed": "seed", "momentum_type": "rule",
           "adapt_damping": "bool", "damping_interval": "count", "damping_decay": "open_unit",
           "min_damping": "nonnegative"},
    Shampoo: {"lr": "positive", "eps": "positive", "update_every": "count",
              "max_matrix_size": "count", "graft": "rule", "graft_eps": "positive"},
    AdaHessian: {"lr": "positive", "b1": "unit", "b2": "unit", "eps": "positive",
                 "hessian_power": "power", "weight_decay": "nonnegative", "seed": "seed"},
}
BAD_VALUES = {
    "positive": BAD_POSITIVE,
    # η of the layer-wise methods: None may mean "the default rule", so it is not drawn
    "scale": st.sampled_from([0, -1, -0.5, np.nan, np.inf, -np.inf, "1", True, [1.0]]),
    "nonnegative": st.sampled_from([-1e-3, -1, np.nan, np.inf, "0", None, True]),
    "unit": st.sampled_from([1, 1.0, 1.5, -0.1, np.nan, np.inf, "0.9", None, True]),
    "positive_or_inf": st.sampled_from([0, -1, -np.inf, np.nan, "1", None, True]),
    "bool": st.sampled_from(["yes", 1.0, None, "False"]),
    "rule": BAD_NAME,
    "kind": st.sampled_from(["", "exact", "HESSIAN", 3]),
    "seed": st.sampled_from([-1, 1.5, "0", None, True]),
    "base": st.sampled_from([None, SGD, "sgd", 0.1, mll.Dense(2, 2)]),
    # kinds of the peers' arguments (None is a valid "off"/"default" where it is not drawn)
    "nonnegative_or_none": st.sampled_from([-1e-3, -1, np.nan, np.inf, "0", True]),
    "unit_or_none": st.sampled_from([1, 1.0, 1.5, -0.1, np.nan, np.inf, "0.9", True]),
    "above_one_or_inf": st.sampled_from([1, 0.5, 0, -1, np.nan, -np.inf, "2", None, True]),
    "open_unit": st.sampled_from([0, 0.0, 1, 1.5, -0.1, np.nan, np.inf, "0.1", None, True]),
    "at_least_one": st.sampled_from([0.5, 0, -1, np.nan, np.inf, "2", None, True]),
    "count": BAD_COUNT,
    "power": st.sampled_from([-1, 1.5, np.nan, np.inf, "1", None, True]),  # needs [0, 1]
}


@pytest.mark.parametrize("cls, name", [(cls, name) for cls in HYPER for name in sorted(HYPER[cls])],
                         ids=lambda v: getattr(v, "__name__", v))
@settings(max_examples=5)
@given(data=st.data())
def test_optimizer_hyper_parameters(cls, name, data):
    value = data.draw(BAD_VALUES[HYPER[cls][name]], label="value")
    kwargs = {name: value}
    if cls is SGD and name == "nesterov":
        kwargs["momentum"] = 0.9
    expect_error(lambda: cls(**kwargs), name)


def test_optimizer_hyper_parameter_combinations():
    expect_error(lambda: SGD(nesterov=True), "nesterov")
    expect_error(lambda: LayerwiseStepSize(on_ascent="max_step"), "on_ascent")
    LayerwiseStepSize(max_step=np.float32(2.0), seed=np.int64(3))  # numpy scalars are numbers


# -- optimizer init and update ------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=5)
@given(st.data())
def test_update_rejects_bad_grads(name, data):
    opt = OPTIMIZERS[name]()
    state, oracles = opt.init(PARAMS), _oracles(opt)
    k = data.draw(st.sampled_from(NET.blocks), label="block")
    key = data.draw(st.sampled_from(["W", "b"]), label="key")
    bad, kind = data.draw(corrupted(PARAMS[k][key]), label="array")
    grads = [dict(e) for e in EV.grads]
    grads[k][key] = bad
    expect_error(lambda: opt.update(grads, state, PARAMS, **oracles), "grads")
    expect_error(lambda: opt.update(None, state, PARAMS, **oracles), "grads")
    expect_error(lambda: opt.update(EV.grads[:-1], state, PARAMS, **oracles), ("grads", "state"))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fault", ["none", "other_optimizer", "fewer_blocks", "tuple"])
def test_update_rejects_a_foreign_state(name, fault):
    opt = OPTIMIZERS[name]()
    other = SGD() if not isinstance(opt, SGD) else Adam()
    state = {"none": None, "other_optimizer": other.init(PARAMS),
             "fewer_blocks": opt.init(PARAMS[:1]), "tuple": (0, None)}[fault]
    expect_error(lambda: opt.update(EV.grads, state, PARAMS, **_oracles(opt)), "state")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fault", ["none", "dict", "nan", "int", "entry_list"])
def test_init_rejects_bad_params(name, fault):
    bad = {"none": None, "dict": {"W": 1}, "nan": [{"W": np.full(2, np.nan)}],
           "int": [{"W": np.ones(2, dtype=int)}], "entry_list": [[1.0]]}[fault]
    expect_error(lambda: OPTIMIZERS[name]().init(bad), "params")


@given(st.sampled_from(["adamw", "sgd-m", "adamw-ls-ggn"]), st.sampled_from(["missing", "nan", "shape"]))
def test_weight_decay_needs_good_params(name, fault):
    opt = OPTIMIZERS[name]()
    state = opt.init(PARAMS)
    bad = {"missing": None,
           "nan": [dict(e, W=np.full_like(e["W"], np.nan)) if e else e for e in PARAMS],
           "shape": [dict(e, W=e["W"][:1]) if e else e for e in PARAMS]}[fault]
    expect_error(lambda: opt.update(EV.grads, state, bad, curvature=EV.layer_curvature),
                 ("params", "grads"))


@given(st.sampled_from(["sgd-ls", "adamw-ls-ggn", "gdls", "sgd-m-ls-mc-fisher"]),
       st.sampled_from(["nan", "inf", "shape", "str", "none", "complex_list", "missing"]))
def test_layerwise_refuses_bad_curvature_oracles(name, fault):
    opt = OPTIMIZERS[name]()
    state = opt.init(PARAMS)
    answer = {"nan": np.array([np.nan, 1.0]), "inf": np.array([1.0, np.inf]), "shape": np.ones(3),
              "str": "ab", "none": None, "complex_list": [1j, 2.0], "missing": None}[fault]
    oracle = None if fault == "missing" else (lambda d, **kwargs: answer)
    loss = {"loss": LOSS} if "loss" in opt.oracles else {}
    expect_error(lambda: opt.update(EV.grads, state, PARAMS, curvature=oracle, **loss), "curvature")


@given(st.sampled_from(["sgd-ls", "adamw-ls-ggn", "gdls"]), st.sampled_from([0.0, -0.0]))
def test_layerwise_with_a_zero_direction_stays_put(name, zero):
    # g = 0 gives d = 0, n_l = 0 and D_l = 0: 0/0 must not reach the parameters.
    opt = OPTIMIZERS[name]()
    grads = mll.tree_map(lambda g: np.full_like(g, zero), EV.grads)
    loss = {"loss": LOSS} if "loss" in opt.oracles else {}
    updates, state = opt.update(grads, opt.init(PARAMS), PARAMS, curvature=EV.layer_curvature, **loss)
    new = mll.apply_updates(PARAMS, updates)
    assert _flat_finite(new) and np.all(np.isfinite(state.step_sizes))
    assert state.fallback_names == ("ascent", "ascent")
    if name != "adamw-ls-ggn":  # AdamW-LS still decays the weights by α_l·wd·θ with α_l = 0
        assert all(np.array_equal(a, b) for e, f in zip(new, PARAMS) for a, b in zip(e.values(), f.values()))


# -- the peers' init and update (they take exactly their declared oracles) --------------------

@given(st.sampled_from(["dog", "ldog-averaged", "prodigy-wd", "sls", "global-adamw", "adahessian-wd"]),
       st.sampled_from(["missing", "nan", "shape"]))
def test_peers_need_good_params(name, fault):
    # DoG, Prodigy and SLS always need θ (distance from x_0, trial points); the global step
    # and AdaHessian need it here for their weight decay
    opt = OPTIMIZERS[name]()
    state = opt.init(PARAMS)
    bad = {"missing": None,
           "nan": [dict(e, W=np.full_like(e["W"], np.nan)) if e else e for e in PARAMS],
           "shape": [dict(e, W=e["W"][:1]) if e else e for e in PARAMS]}[fault]
    expect_error(lambda: opt.update(EV.grads, state, bad, **_oracles(opt)), ("params", "grads"))


@pytest.mark.parametrize("name, oracle", [("sls", "loss"), ("global-adamw", "hvp"),
                                          ("kfac", "kronecker_factors"), ("adahessian-wd", "hvp")])
@pytest.mark.parametrize("fault", ["missing", "none", "not_callable"])
def test_peers_name_a_missing_oracle(name, oracle, fault):
    opt = OPTIMIZERS[name]()
    kwargs = {} if fault == "missing" else {oracle: None if fault == "none" else 1.0}
    expect_error(lambda: opt.update(EV.grads, opt.init(PARAMS), PARAMS, **kwargs), oracle)


# -- apply_updates -------------------------------------------------------------------------------

@given(st.data())
def test_apply_updates_rejects_bad_updates(data):
    k = data.draw(st.sampled_from(NET.blocks), label="block")
    bad, _ = data.draw(corrupted(PARAMS[k]["W"]), label="array")
    updates = [dict(e) for e in EV.grads]
    updates[k]["W"] = bad
    expect_error(lambda: mll.apply_updates(PARAMS, updates), "updates")
    expect_error(lambda: mll.apply_updates(None, EV.grads), "params")
    expect_error(lambda: mll.apply_updates(PARAMS, EV.grads[:1]), "updates")


def test_apply_updates_refuses_to_overflow():
    big = mll.tree_map(lambda p: np.full_like(p, 1e308), PARAMS)
    error = expect_error(lambda: mll.apply_updates(big, big), "updates")
    assert isinstance(error, NonFiniteError)


# -- theory ----------------------------------------------------------------------------------------

A = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
# Closed-form problems take any array-like of real numbers (lists, ints: exact), so
# their corruptions are NaN/Inf, non-real dtypes and shapes.
REAL_FAULTS = dict(kinds=("nonfinite", "dtype", "shape"), dtypes=("complex", "object", "bool", "str"))
QUAD = theory.BlockQuadratic(A, np.ones(3), block_sizes=[1, 2])
QEV = QUAD.evaluate(QUAD.init(0))


@given(st.data())
def test_block_quadratic_constructor(data):
    arg = data.draw(st.sampled_from(["A", "b", "block_sizes"]), label="argument")
    if arg == "A":
        fault = data.draw(st.sampled_from(["corrupt", "nonsymmetric", "indefinite", "empty", "none"]))
        if fault == "corrupt":
            bad = data.draw(corrupted(A, **REAL_FAULTS))[0]
        else:
            bad = {"nonsymmetric": np.triu(A), "indefinite": -A, "empty": np.zeros((0, 0)),
                   "none": None}[fault]
        expect_error(lambda: theory.BlockQuadratic(bad, np.ones(3), [1, 2]), "A")
    elif arg == "b":
        bad, _ = data.draw(corrupted(np.ones(3), **REAL_FAULTS))
        expect_error(lambda: theory.BlockQuadratic(A, bad, [1, 2]), "b")
    else:
        bad = data.draw(st.sampled_from([[1, 1], [3, 1], [0, 3], [1.5, 1.5], [True, 2], None, 3, "12",
                                         [-1, 4], []]))
        expect_error(lambda: theory.BlockQuadratic(A, np.ones(3), bad), "block_sizes")


@given(st.data())
def test_dense_evaluation_oracles(data):
    bad, _ = data.draw(corrupted(np.ones(3), **REAL_FAULTS), label="vector")
    expect_error(lambda: QEV.hvp(bad), "v")
    expect_error(lambda: QEV.layer_curvature(bad), "d")
    expect_error(lambda: QUAD.evaluate(bad), "params")
    expect_error(lambda: QEV.layer_curvature(np.ones(3), kind=data.draw(BAD_NAME)), "kind")
    expect_error(lambda: QEV.block_hessian(data.draw(st.sampled_from([2, -1, 0.0, "0", None]))), "i")


THEORY_SCALARS = {
    # argument -> (call with the bad value, bad values)
    "scale": (lambda v: QUAD.contraction_bound(v), [np.nan, np.inf, -1.0, 0.0, 2.0, "0.5", None, True]),
    "mu": (lambda v: theory.strongly_convex_bound(v, 4.0, 0.1), [np.nan, np.inf, -1.0, 0.0, "1", None]),
    "smoothness": (lambda v: theory.strongly_convex_bound(1.0, v, 0.1), [np.nan, np.inf, 0.5, "4", None]),
    "a": (lambda v: theory.jacobi_matrix(3, v), [np.nan, np.inf, 1.0, -0.5, "0.1", None, True]),
}


@given(st.data())
def test_theory_functions_name_their_scalars(data):
    name = data.draw(st.sampled_from(sorted(THEORY_SCALARS)), label="argument")
    call, bad = THEORY_SCALARS[name]
    value = data.draw(st.sampled_from(bad), label="value")
    expect_error(lambda: call(value), name)
    if name == "scale":  # the same check in the functional form and in Theorem 4's bound
        expect_error(lambda: theory.contraction_bound(A, [1, 2], value), "scale")
        expect_error(lambda: theory.strongly_convex_bound(1.0, 4.0, value), "scale")


@given(st.sampled_from([np.nan, np.inf, -np.inf, "1", None, True]))
def test_quadratic_init_scale(scale):
    expect_error(lambda: QUAD.init(0, scale=scale), "scale")


@given(st.sampled_from([1, 0, -2, 2.0, "3", None, True]))
def test_jacobi_size(n):
    expect_error(lambda: theory.jacobi_matrix(n, 0.1), "n")


@given(st.data())
def test_logistic_regression_constructor(data):
    Xl, yl = np.ones((4, 2)) + np.eye(4, 2), np.array([1.0, -1.0, 1.0, -1.0])
    theory.LogisticRegression(Xl, yl, 0.1, [1, 1])
    arg = data.draw(st.sampled_from(["X", "y", "reg"]))
    if arg == "X":
        bad = data.draw(st.sampled_from([np.zeros((0, 2)), np.ones(4), np.full((4, 2), np.nan),
                                         np.full((4, 2), "a"), Xl.astype(complex)]))
        expect_error(lambda: theory.LogisticRegression(bad, yl, 0.1, [1, 1]), "X")
    elif arg == "y":
        bad = data.draw(st.sampled_from([yl[:2], np.zeros(4), np.array([1, np.nan, 1, 1]),
                                         np.full(4, "a"), yl.astype(complex)]))
        expect_error(lambda: theory.LogisticRegression(Xl, bad, 0.1, [1, 1]), "y")
    else:
        bad = data.draw(st.sampled_from([0, -1, np.nan, np.inf, "1", None, True]))
        expect_error(lambda: theory.LogisticRegression(Xl, yl, bad, [1, 1]), "reg")


@given(st.sampled_from([np.zeros((2, 3)), np.array([[1.0, 2.0], [0.0, 1.0]]), -np.eye(2),
                        np.full((2, 2), "a"), None]))
def test_theory_matrix_functions(bad):
    for fn in (theory.strong_convexity, theory.smoothness, theory.kantorovich_rate):
        with pytest.raises(ValueError):
            fn(bad)
    expect_error(lambda: theory.coupling_constant(bad, [1, 1]), "A")
    expect_error(lambda: theory.block_smoothness(bad, [1, 1]), "A")


# -- data ------------------------------------------------------------------------------------------

DATA_ARGS = {
    mll.data.synthetic_digits: {"num_train": BAD_COUNT, "num_test": BAD_COUNT,
                                "size": st.sampled_from([7, 0, 8.0, "16", None]),
                                "seed": st.sampled_from([-1, 1.5, "0", None, True]),
                                "noise": st.sampled_from([-0.1, np.nan, np.inf, "0", None, True]),
                                "blur": st.sampled_from([-1.0, np.nan, "0.5", None])},
    mll.data.contextual_sbm: {"num_nodes": st.sampled_from([1, 0, 3.0, "9", None, True]),
                              "num_classes": st.sampled_from([1, 0, 2.5, "2", None, 10_000]),
                              "num_features": BAD_COUNT,
                              "p_in": st.sampled_from([-0.1, 1.5, np.nan, "0.1", None]),
                              "p_out": st.sampled_from([-0.1, 1.5, np.nan, "0.1", None]),
                              "feature_signal": st.sampled_from([-1.0, np.nan, np.inf, None]),
                              "train_per_class": BAD_COUNT,
                              "num_val": st.sampled_from([-1, 1.5, "0", True]),
                              "seed": st.sampled_from([-1, 1.5, "0", None, True])},
}


@given(st.data())
def test_data_generators(data):
    fn = data.draw(st.sampled_from(list(DATA_ARGS)), label="generator")
    name = data.draw(st.sampled_from(sorted(DATA_ARGS[fn])), label="argument")
    value = data.draw(DATA_ARGS[fn][name], label="value")
    small = {"num_train": 5, "num_test": 5} if fn is mll.data.synthetic_digits else \
        {"num_nodes": 40, "num_val": 5, "train_per_class": 2}
    small[name] = value
    expect_error(lambda: fn(**small), ("num_classes", "num_nodes") if name == "num_classes" else name)


@given(st.sampled_from(["nope", "", "MNIST2", None, 3]))
def test_load_dataset_unknown_names(name):
    expect_error(lambda: mll.data.load_dataset(name), "dataset")


@given(st.sampled_from(["mnist", "cifar10", "cora"]))
def test_loaders_missing_files(tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="missing data file"):
        mll.data.load_dataset(name, data_dir=folder)


# -- train -------------------------------------------------------------------------------------------

TRAIN_FAULTS = {
    # fault -> (keyword overrides, argument the message must name)
    "net": ({"net": "mlp"}, "net"),
    "net_class": ({"net": mll.Sequential}, "net"),
    "optimizer": ({"optimizer": "sgd"}, "optimizer"),
    "optimizer_class": ({"optimizer": SGD}, "optimizer"),
    "params_none": ({"params": None}, "params"),
    "params_nan": ({"params": [dict(e, W=np.full_like(e["W"], np.nan)) if e else e for e in PARAMS]},
                   "params"),
    "params_other_net": ({"params": mll.Sequential([mll.Dense(3, 2)], loss=mll.MeanSquaredError()).init(0)},
                         "params"),
    "x_int": ({"x": np.ones((6, 3), dtype=int)}, "x"),
    "x_nan": ({"x": np.where(np.eye(6, 3) > 0, np.nan, X)}, "x"),
    "x_empty": ({"x": X[:0], "y": Y[:0]}, "x"),
    "x_list": ({"x": X.tolist()}, "x"),
    "y_short": ({"y": Y[:-1]}, "y"),
    "y_list": ({"y": Y.tolist()}, "y"),
    "y_float": ({"y": Y.astype(float)}, "y"),
    "epochs": ({"epochs": -1}, "epochs"),
    "epochs_float": ({"epochs": 1.5}, "epochs"),
    "batch_size": ({"batch_size": 0}, "batch_size"),
    "batch_size_big": ({"batch_size": 7}, "batch_size"),
    "seed": ({"seed": -1}, "seed"),
    "checkpoint_every": ({"checkpoint_every": 0}, "checkpoint_every"),
    "eval_fn": ({"eval_fn": "acc"}, "eval_fn"),
    "checkpoint_folder": ({"checkpoint": "."}, "checkpoint"),
}


@pytest.mark.parametrize("fault", sorted(TRAIN_FAULTS))
def test_train_names_the_bad_argument(fault):
    overrides, name = TRAIN_FAULTS[fault]
    kwargs = dict(net=NET, params=PARAMS, optimizer=SGD(lr=0.1), x=X, y=Y, epochs=1, batch_size=3,
                  progress=False)
    kwargs.update(overrides)
    expect_error(lambda: train(**kwargs), name)


def test_train_stops_on_a_nan_curvature_oracle():
    # A curvature oracle that returns NaN mid-run: a clean divergence stop, finite params.
    calls = []

    class Flaky(LayerwiseStepSize):
        def update(self, grads, state, params=None, *, curvature=None):
            calls.append(1)
            oracle = curvature if len(calls) < 3 else (lambda d, **kw: np.full(2, np.nan))
            return super().update(grads, state, params, curvature=oracle)

    result = train(NET, PARAMS, Flaky(SGD(momentum=0.9)), X, Y, epochs=5, batch_size=3, progress=False)
    h = result.history
    assert h.diverged and "non-finite" in h.stop_reason and h.steps[-1] == 2
    assert _flat_finite(result.params)


@pytest.mark.parametrize("name", ["sgd-m", "adamw", "sgd-ls", "adamw-ls-ggn", "gdls"])
def test_train_stops_when_the_loss_overflows(name):
    # Inputs near the float64 limit overflow the loss at the first step for every optimizer.
    net = mll.Sequential([mll.Dense(3, 2)], loss=mll.MeanSquaredError())
    x = X * 1e154
    y = np.zeros((6, 2))
    result = train(net, net.init(0), OPTIMIZERS[name](), x, y, epochs=3,
                   batch_size=None if name == "gdls" else 3, progress=False)
    assert result.history.diverged
    assert _flat_finite(result.params)


# -- damaged data files ------------------------------------------------------------------------------

@given(which=st.sampled_from(["mnist", "mnist-gz", "cifar10", "cora"]), cut=st.floats(0.0, 0.999),
       flips=st.lists(st.integers(0, 10**9), max_size=3), seed=st.integers(0, 2**16))
def test_a_damaged_data_file_is_refused_or_read(tmp_path_factory, which, cut, flips, seed):
    # Truncate one file or flip bytes in it: the loader raises ValueError naming that
    # file, or (a flipped pixel, a cut at a line end) returns a well-formed data set.
    root = tmp_path_factory.mktemp("damaged")
    rng = np.random.default_rng(seed)
    if which.startswith("mnist"):
        write_mnist(root, 4, 3, 5, 6, rng, gz=which.endswith("gz"))
    elif which == "cifar10":
        write_cifar(root, [2, 1, 1, 1, 1, 2], rng)
    else:
        write_cora(root, n=30, f=4, seed=seed)
    files = sorted(p for p in root.iterdir() if p.is_file())
    victim = files[seed % len(files)]
    raw = bytearray(victim.read_bytes())
    if flips:
        for position in flips:
            raw[position % len(raw)] ^= 0xFF
    else:
        raw = raw[:int(cut * len(raw))]
    victim.write_bytes(bytes(raw))
    load = {"cifar10": lambda: mll.data.load_cifar10(root), "cora": lambda: mll.data.load_cora(
        root, train_per_class=1, num_val=2, num_test=2)}.get(which, lambda: mll.data.load_mnist(root))
    try:
        ds = load()
    except ValueError as error:
        assert victim.name in str(error) and "\n" not in str(error), str(error)
    else:
        arrays = [ds.features] if which == "cora" else [ds.x_train, ds.x_test]
        assert all(np.all(np.isfinite(a)) for a in arrays)
