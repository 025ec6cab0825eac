"""Corrupt optimizer states, oracle results of the wrong type, and the clean errors of issue 14
(items 3 and 5): each is refused once, at the public boundary, with a message naming the
argument (``state.<field>``, ``curvature``, ``params``, ``y``, ``eval_fn``, ``d``).
"""
import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.errors import NonFiniteError
from minilayerlr.optim import SGD, Adam, AdamW, GlobalStepSize, LayerwiseStepSize, rule_v01
from minilayerlr.optim.oracles import supply_oracles
from minilayerlr.optim.state_checks import check_nested_state_values
from minilayerlr.training import train
from optimizer_list import OPTIMIZERS as OPTIMIZER_LIST
from strategies_validation import expect_error

NET = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)], loss=mll.SoftmaxCrossEntropy())
X = np.random.default_rng(0).standard_normal((6, 3))
Y = np.array([0, 1, 1, 0, 1, 0])
PARAMS = NET.init(0)
EV = NET.evaluate(PARAMS, X, Y)

#: optimizer -> the state fields (dotted for a wrapper's base state) whose values feed the next
#: step, and those of them that are never negative in a state the optimizer wrote: the entries
#: of the one list (tests/optimizer_list.py) that name them
OPTIMIZERS = {name: (entry.make, list(entry.feeds), list(entry.nonnegative))
              for name, entry in OPTIMIZER_LIST.items() if entry.feeds}
ORACLES = {"curvature": EV.layer_curvature, "hvp": EV.hvp, "loss": lambda p: NET.loss_value(p, X, Y),
           "kronecker_factors": EV.kronecker_factors}


def oracles(opt):
    return {name: ORACLES[name] for name in opt.oracles}


def stepped(opt, steps=2):
    """The state after ``steps`` real updates (every field holds a value the optimizer wrote)."""
    state = opt.init(PARAMS)
    for _ in range(steps):
        _, state = opt.update(EV.grads, state, PARAMS, **oracles(opt))
    return state


def replaced(state, path, value, index):
    """``state`` with entry ``index`` of field ``path`` (dotted) set to ``value``."""
    head, _, rest = path.partition(".")
    field = getattr(state, head)
    if rest:
        return dataclasses.replace(state, **{head: replaced(field, rest, value, index)})
    if isinstance(field, list):  # a buffer shaped like params: corrupt one entry of one array
        leaves = [(k, name) for k, entry in enumerate(field) for name in entry]
        k, name = leaves[index % len(leaves)]
        new = [dict(entry) for entry in field]
        array = new[k][name].copy()
        array.flat[index % array.size] = value
        new[k][name] = array
        return dataclasses.replace(state, **{head: new})
    if isinstance(field, np.ndarray):
        array = field.copy()
        array.flat[index % array.size] = value
        return dataclasses.replace(state, **{head: array})
    return dataclasses.replace(state, **{head: value})


@given(st.data())
def test_update_refuses_a_non_finite_or_negative_state_value(data):
    name = data.draw(st.sampled_from(sorted(OPTIMIZERS)), label="optimizer")
    make, fields, nonnegative = OPTIMIZERS[name]
    field = data.draw(st.sampled_from(fields), label="field")
    bad = [np.nan, np.inf, -np.inf] + ([-1.0, -1e-300] if field in nonnegative else [])
    value = data.draw(st.sampled_from(bad), label="value")
    index = data.draw(st.integers(0, 50), label="index")
    opt = make()
    state = replaced(stepped(opt), field, value, index)
    leaf = field.rsplit(".", 1)[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused before any arithmetic: no RuntimeWarning
        error = expect_error(lambda: opt.update(EV.grads, state, PARAMS, **oracles(opt)),
                             f"state.{leaf}")
    assert isinstance(error, ValueError)
    # resume runs the same checks on a loaded state, base states included
    expect_error(lambda: check_nested_state_values(state), f"state.{field}" if "." in field else f"state.{leaf}")


@pytest.mark.parametrize("name", ["sgd-m-ls", "global-sgd-m"])
@pytest.mark.parametrize("code", [-1, 4, 99])
def test_update_refuses_an_unknown_fallback_code(name, code):
    opt = OPTIMIZERS[name][0]()
    state = replaced(stepped(opt), "fallbacks", code, 0)
    expect_error(lambda: opt.update(EV.grads, state, PARAMS, **oracles(opt)), "state.fallbacks")


@pytest.mark.parametrize("field, value", [("fallbacks", np.zeros(2)), ("avg_numerators", np.zeros(3)),
                                          ("avg_denominators", "x"), ("reference_step_sizes", None),
                                          ("step_sizes", np.zeros(3)), ("curvature_seed", -1)])
def test_layerwise_update_refuses_per_block_arrays_of_the_wrong_kind(field, value):
    opt = LayerwiseStepSize(SGD(momentum=0.9))
    state = dataclasses.replace(opt.init(PARAMS), **{field: value})
    expect_error(lambda: opt.update(EV.grads, state, PARAMS, curvature=EV.layer_curvature),
                 f"state.{field}")


@pytest.mark.parametrize("name", ["sgd-m-ls", "global-sgd-m"])
def test_a_wrapper_count_that_disagrees_with_its_base_count_is_refused(name):
    opt = OPTIMIZERS[name][0]()
    state = stepped(opt)
    state = dataclasses.replace(state, base_state=dataclasses.replace(state.base_state, count=5))
    expect_error(lambda: opt.update(EV.grads, state, PARAMS, **oracles(opt)), "state.count")


def test_the_checks_accept_every_value_a_run_writes():
    # negative numerators, curvatures and denominators are legitimate (ascent, nonconvex
    # blocks under the 0.1 rule's signed average): the checks must not refuse them
    opt = rule_v01(SGD(momentum=0.9), ema=0.5)
    state = opt.init(PARAMS)
    for q in ([-1.0, 2.0], [3.0, -4.0], [-1.0, -1.0]):
        _, state = opt.update(EV.grads, state, PARAMS, curvature=lambda d, q=q: np.array(q))
    assert np.any(state.avg_denominators < 0) and np.any(state.curvatures < 0)
    check_nested_state_values(state)
    _, state = opt.update(EV.grads, state, PARAMS, curvature=EV.layer_curvature)
    for entry in OPTIMIZER_LIST.values():
        check_nested_state_values(stepped(entry.make(), steps=3))


@pytest.mark.parametrize("name, field, value", [
    ("sgd-m", "momentum", "x"), ("adam", "nu", None), ("adam", "mu", "ints"),
    ("prodigy", "d", "1"), ("sls", "total_loss_evaluations", -1), ("sls", "backtracks", 1.5),
    ("dog", "grad_sq_sum", np.ones((2, 2)))])
def test_update_refuses_state_values_of_the_wrong_type(name, field, value):
    opt = OPTIMIZERS[name][0]()
    state = stepped(opt)
    if isinstance(value, str) and value == "ints":
        value = [{k: a.astype(np.int64) for k, a in entry.items()} for entry in getattr(state, field)]
    state = dataclasses.replace(state, **{field: value})
    expect_error(lambda: opt.update(EV.grads, state, PARAMS, **oracles(opt)), f"state.{field}")


def test_a_state_that_overflowed_stops_as_a_divergence():
    # Adam's ν = g² can overflow while the step m̂/√ν̂ stays finite: the next update stops
    # with a NonFiniteError (what train reports as divergence), not NaN updates
    opt = Adam()
    grads = [{k: np.full_like(a, 1e200) for k, a in entry.items()} for entry in EV.grads]
    with np.errstate(over="ignore"):
        _, state = opt.update(grads, opt.init(PARAMS), PARAMS)
    assert not np.all(np.isfinite(state.nu[0]["W"]))
    with pytest.raises(NonFiniteError, match=r"state\.nu"):
        opt.update(EV.grads, state, PARAMS)


# -- oracle results of the wrong type -------------------------------------------------------

@pytest.mark.parametrize("result", [np.array([1 + 1j, 2.0]), np.array([1 + 0j, 2 + 0j]),
                                    np.array([True, False]), np.array([None, 1.0], dtype=object),
                                    [[1.0], [2.0, 3.0]], "ab"])
def test_a_curvature_result_that_is_not_real_is_a_type_error(result):
    opt = LayerwiseStepSize(SGD(momentum=0.9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: nothing is cast
        expect_error(lambda: opt.update(EV.grads, opt.init(PARAMS), PARAMS, curvature=lambda d: result),
                     "curvature", errors=TypeError)


def test_a_complex_hvp_is_a_type_error():
    opt = GlobalStepSize()
    complex_hvp = lambda v: [{k: a.astype(complex) for k, a in e.items()} for e in EV.hvp(v)]  # noqa: E731
    expect_error(lambda: opt.update(EV.grads, opt.init(PARAMS), PARAMS, hvp=complex_hvp), "hvp",
                 errors=TypeError)


# -- item 5: messages ---------------------------------------------------------------------------

def test_sgd_with_momentum_refuses_a_state_without_a_buffer():
    error = expect_error(lambda: SGD(momentum=0.9).update(EV.grads, SGD().init(PARAMS), PARAMS), "state")
    assert "momentum" in str(error)


@pytest.mark.parametrize("opt", [SGD(), SGD(momentum=0.9), Adam(), AdamW(), LayerwiseStepSize(Adam())])
@pytest.mark.parametrize("params", ["garbage", PARAMS[:2], 3])
def test_params_that_are_not_a_tree_name_params(opt, params):
    expect_error(lambda: opt.update(EV.grads, opt.init(PARAMS), params, **oracles(opt)), "params")


@pytest.mark.parametrize("y", [np.array(3), np.array(3.0)])
def test_train_names_y_when_it_is_a_scalar_array(y):
    expect_error(lambda: train(NET, PARAMS, SGD(), X, y, epochs=1), "y")


@pytest.mark.parametrize("result", [0.5, "acc", [1, 2], None, {"acc": "high"}, {1: 0.5},
                                    {"acc": np.ones(3)}, {"acc": 1j}])
def test_train_names_eval_fn_when_it_returns_no_dict_of_numbers(result):
    expect_error(lambda: train(NET, PARAMS, SGD(), X, Y, epochs=1, eval_fn=lambda p: result), "eval_fn")


def test_eval_fn_must_keep_its_metric_names_and_may_return_nan():
    calls = []

    def changing(p):
        calls.append(1)
        return {"acc": 0.5} if len(calls) == 1 else {"accuracy": 0.5}

    expect_error(lambda: train(NET, PARAMS, SGD(), X, Y, epochs=2, eval_fn=changing), "eval_fn")
    # NaN and Inf are numbers (a diverged model's test loss): recorded as they are
    result = train(NET, PARAMS, SGD(), X, Y, epochs=1,
                   eval_fn=lambda p: {"test_loss": np.float32(np.nan), "n": np.array(3)})
    assert np.isnan(result.history.metrics["test_loss"]).all()
    assert result.history.metrics["n"] == [3.0, 3.0]


NO_PARAMS = mll.Sequential([mll.Tanh(), mll.Flatten()], loss=mll.MeanSquaredError())


@pytest.mark.parametrize("kind", ["hessian", "ggn", "sign_hvp", "naive_hvp", "mc_fisher"])
def test_layer_curvature_of_a_network_without_parameters_names_d(kind):
    x = np.random.default_rng(1).standard_normal((4, 3))
    ev = NO_PARAMS.evaluate([{}, {}], x, np.zeros((4, 3)))
    expect_error(lambda: ev.layer_curvature([{}, {}], kind=kind, seed=0), "d")
    assert ev.hessian().shape == (0, 0)  # the dense matrix of no parameters is 0 x 0


# -- training: divergence without warnings, corrupt checkpoints refused at resume ---------------

def _diverging_run(**kwargs):
    net = mll.Sequential([mll.Dense(3, 8), mll.Tanh(), mll.Dense(8, 2)], loss=mll.MeanSquaredError())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    opt = LayerwiseStepSize(SGD(momentum=0.9), scale=1e30, ema=0.0)  # η far above 2/c: diverges
    return train(net, net.init(0), opt, x, y, epochs=30, batch_size=4, **kwargs)


def test_a_divergence_stops_with_one_line_and_no_runtime_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = _diverging_run()
    assert result.history.stop_reason is not None and "diverged" in result.history.stop_reason
    assert "\n" not in result.history.stop_reason


def _rewrite_member(path, key, fn):
    """Rewrite one array of the checkpoint ``path`` in place with ``fn(array)``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays[key] = fn(arrays[key])
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("opt, key, fn, field", [
    (SGD(lr=0.1, momentum=0.9), "opt/momentum/0/W", lambda a: np.full_like(a, np.nan), "momentum"),
    (LayerwiseStepSize(SGD(momentum=0.9)), "opt/base_state/momentum/2/b",
     lambda a: np.full_like(a, np.nan), "momentum"),
    (Adam(), "opt/nu/0/W", lambda a: -np.ones_like(a), "nu"),
    (LayerwiseStepSize(AdamW()), "opt/reference_step_sizes", lambda a: -np.ones_like(a),
     "reference_step_sizes"),
])
def test_resume_refuses_a_corrupt_state_instead_of_reporting_a_divergence(tmp_path, opt, key, fn, field):
    path = tmp_path / "run.npz"
    train(NET, PARAMS, opt, X, Y, epochs=1, checkpoint=path)
    _rewrite_member(path, key, fn)
    with pytest.raises(ValueError) as info:
        train(NET, PARAMS, opt, X, Y, epochs=2, resume=path)
    message = str(info.value)
    assert message.startswith("resume:") and "corrupt" in message and field in message, message
