"""float32 stays float32 (issue 14, item 4): the dtype of the parameters is the dtype of the run.

Gradients, updates, the optimizer buffers that mirror the parameters (momentum,
moments, x_0, averages) and the returned parameters are all in the parameters'
dtype, for every optimizer and for integer targets; the per-layer statistics
(step sizes, EMAs, histories) stay float64. float64 runs compute exactly what
they computed before: the last tests rebuild float64 updates from their
formulas, in the code's order of operations, and compare bit for bit.
"""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim import SGD, AdamW, LayerwiseStepSize, apply_updates
from minilayerlr.optim.oracles import supply_oracles
from minilayerlr.training import train
from optimizer_list import FLOAT32_NAMES, batch_size, make

#: loss -> targets for 8 examples and 2 outputs (integer targets for all three losses)
LOSSES = {
    "softmax": (mll.SoftmaxCrossEntropy, lambda rng: rng.integers(0, 2, 8)),
    "mse-int": (mll.MeanSquaredError, lambda rng: rng.integers(-2, 3, (8, 2))),
    "bce-int": (mll.SigmoidCrossEntropy, lambda rng: rng.integers(0, 2, (8, 2))),
    "mse-float64": (mll.MeanSquaredError, lambda rng: rng.standard_normal((8, 2))),
}


def problem(loss_name, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    loss, targets = LOSSES[loss_name]
    net = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)], loss=loss())
    x = rng.standard_normal((8, 3)).astype(dtype)
    return net, net.init(seed, dtype=dtype), x, targets(rng)


def tree_dtypes(tree):
    return {a.dtype for entry in tree for a in entry.values()}


#: state fields that hold preconditioner statistics, not buffers that mirror the parameters:
#: Shampoo's per-parameter matrices and their roots stay float64 (as K-FAC's factors, kept in
#: lists of matrices), only the step they produce takes the parameters' dtype
STATISTICS = {"left", "right", "left_roots", "right_roots"}


def buffer_dtypes(state):
    """dtypes of every params-like tree inside a (nested) state (statistics aside)."""
    found = set()
    for f in dataclasses.fields(state):
        if f.name in STATISTICS:
            continue
        value = getattr(state, f.name)
        if dataclasses.is_dataclass(value):
            found |= buffer_dtypes(value)
        elif isinstance(value, list) and all(isinstance(e, dict) for e in value):  # params-like
            found |= tree_dtypes(value)
    return found


@pytest.mark.parametrize("name", FLOAT32_NAMES)
@settings(max_examples=4)
@given(st.sampled_from(sorted(LOSSES)), st.integers(0, 2**16))
def test_one_update_is_in_the_parameters_dtype(name, loss_name, seed):
    net, params, x, y = problem(loss_name, seed)
    opt = make(name)
    state = opt.init(params)
    assert buffer_dtypes(state) <= {np.dtype(np.float32)}
    for _ in range(2):
        ev = net.evaluate(params, x, y)
        assert tree_dtypes(ev.grads) == {np.dtype(np.float32)}, "gradients promoted"
        oracles = supply_oracles(opt, ev, loss=lambda p: net.loss_value(p, x, y))
        updates, state = opt.update(ev.grads, state, params, **oracles)
        assert tree_dtypes(updates) == {np.dtype(np.float32)}, f"{name}: updates promoted"
        assert buffer_dtypes(state) <= {np.dtype(np.float32)}, f"{name}: state promoted"
        params = apply_updates(params, updates)
        assert tree_dtypes(params) == {np.dtype(np.float32)}
    # statistics stay float64 (they are not parameters)
    assert np.asarray(state.step_sizes).dtype == np.float64


@pytest.mark.parametrize("name", FLOAT32_NAMES)
def test_train_returns_float32_parameters(name):
    net, params, x, y = problem("mse-int", 0)
    opt = make(name)
    result = train(net, params, opt, x, y, epochs=2, batch_size=batch_size(opt, 4))
    assert result.history.stop_reason is None
    assert tree_dtypes(result.params) == {np.dtype(np.float32)}
    assert buffer_dtypes(result.state) <= {np.dtype(np.float32)}


@given(st.sampled_from(["float32", "float64"]), st.sampled_from(["float32", "float64"]),
       st.integers(0, 2**16))
def test_apply_updates_keeps_the_parameters_dtype(p_dtype, u_dtype, seed):
    rng = np.random.default_rng(seed)
    params = [{"W": rng.standard_normal((3, 2)).astype(p_dtype)}, {}]
    updates = [{"W": rng.standard_normal((3, 2)).astype(u_dtype)}, {}]
    new = apply_updates(params, updates)
    assert new[0]["W"].dtype == np.dtype(p_dtype)
    if p_dtype == "float64":  # exactly p + u, as before
        np.testing.assert_array_equal(new[0]["W"], params[0]["W"] + updates[0]["W"])
    elif u_dtype == "float32":
        np.testing.assert_array_equal(new[0]["W"], params[0]["W"] + updates[0]["W"])


def test_apply_updates_refuses_a_float32_overflow():
    # finite in float64, Inf once it is a float32 parameter: the overflow is reported
    params = [{"W": np.ones(2, np.float32)}]
    with pytest.raises(ValueError, match="updates"):
        apply_updates(params, [{"W": np.full(2, 1e39)}])


@given(st.sampled_from(["mse-int", "bce-int"]), st.integers(0, 2**16))
def test_integer_targets_give_the_loss_of_their_float_values(loss_name, seed):
    # the cast is exact (small integers), so the loss and the gradient are those of float targets
    for dtype in (np.float32, np.float64):
        net, params, x, y = problem(loss_name, seed, dtype)
        ev_int, ev_float = net.evaluate(params, x, y), net.evaluate(params, x, y.astype(dtype))
        assert ev_int.loss == ev_float.loss
        for a, b in zip(ev_int.grads, ev_float.grads):
            for key in a:
                assert a[key].dtype == dtype
                np.testing.assert_array_equal(a[key], b[key])


# -- float64 runs are unchanged: the updates, bit for bit, from their formulas ---------------

def _grads(rng):
    return [{"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}, {}]


@given(st.integers(0, 2**16))
def test_float64_sgd_momentum_and_adamw_updates_are_their_formulas_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    params = _grads(rng)
    lr, beta, wd = 0.1, 0.9, 0.01
    sgd, adamw = SGD(lr=lr, momentum=beta, weight_decay=wd), AdamW(lr=lr, weight_decay=wd)
    s_sgd, s_adam = sgd.init(params), adamw.init(params)
    m = {k: np.zeros_like(a) for k, a in params[0].items()}
    mu, nu = dict(m), dict(m)
    for t in range(1, 4):
        g = _grads(rng)
        u_sgd, s_sgd = sgd.update(g, s_sgd, params)
        u_adam, s_adam = adamw.update(g, s_adam, params)
        for key, g_ in g[0].items():
            p_ = params[0][key]
            m[key] = beta * m[key] + (g_ + wd * p_)
            np.testing.assert_array_equal(u_sgd[0][key], -lr * m[key])
            mu[key] = 0.9 * mu[key] + (1 - 0.9) * g_
            nu[key] = 0.999 * nu[key] + (1 - 0.999) * g_ * g_
            d = (mu[key] / (1 - 0.9 ** t)) / (np.sqrt(nu[key] / (1 - 0.999 ** t)) + 1e-8)
            np.testing.assert_array_equal(u_adam[0][key], -lr * (d + wd * p_))
        params = apply_updates(params, u_sgd)


@given(st.integers(0, 2**16))
def test_float64_layerwise_update_is_its_formula_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    params, g = _grads(rng), _grads(rng)
    q = np.abs(rng.standard_normal(1)) + 0.5
    opt = LayerwiseStepSize(SGD(), scale=1.0, ema=0.0)
    updates, state = opt.update(g, opt.init(params), params, curvature=lambda d: q)
    n = sum(float(np.vdot(g[0][k], g[0][k])) for k in g[0])
    alpha = 1.0 * np.array([n]) / (q + 0.0 * np.array([n]))
    assert state.step_sizes[0] == alpha[0]
    for key in g[0]:
        np.testing.assert_array_equal(updates[0][key], -alpha[0] * g[0][key])
