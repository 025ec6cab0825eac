"""SLS (Vaswani et al. 2019, SGD + stochastic Armijo line search): equations, Armijo, counts."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.sls import SLS
from minilayerlr.tree import unflatten
from strategies import seeds
from strategies_peers import (assert_pure, assert_trees_equal, flat, grad_at, run_network,
                              tiny_network)


def sls_reference(net, x, y, params, steps, c=0.1, beta=0.9, gamma=2.0, eta_max=10.0, eta0=1.0,
                  n_batches=500):
    """SGD-Armijo written out on flat vectors: reset, then backtrack until Armijo holds."""
    xk, eta, record = flat(params), eta0, []
    f = lambda v: net.loss_value(unflatten(v, params), x, y)
    for _ in range(steps):
        g = grad_at(net, x, y, params, xk)
        eta = min(eta * gamma ** (1 / n_batches), eta_max)
        backtracks = 0
        while f(xk - eta * g) > f(xk) - c * eta * (g @ g):
            eta, backtracks = beta * eta, backtracks + 1
        xk = xk - eta * g
        record.append((eta, backtracks))
    return xk, record


@pytest.mark.parametrize("kwargs", [{}, dict(batches_per_epoch=1, c=0.3, beta=0.5, max_step=3.0)],
                         ids=["defaults", "fast-reset"])
def test_three_steps_equal_the_hand_unrolled_equations(kwargs):
    net, x, y, params = tiny_network(seed=1)
    ref_kwargs = {"batches_per_epoch": "n_batches", "max_step": "eta_max"}
    xk, record = sls_reference(net, x, y, params, 3, **{ref_kwargs.get(k, k): v for k, v in kwargs.items()})
    out, state, states = run_network(SLS(**kwargs), net, params, x, y, 3)
    # the same trial points are formed (x − ηg) and compared: the same bits, up to the
    # order of the sum in ‖g‖² (a few ulps of the threshold), far from deciding a comparison
    np.testing.assert_allclose(flat(out), xk, rtol=1e-12, atol=1e-14)
    for s, (eta, backtracks) in zip(states, record):
        assert s.step_size == pytest.approx(eta, rel=1e-14)
        assert s.backtracks == backtracks and s.armijo_satisfied
        assert s.loss_evaluations == backtracks + 2
        np.testing.assert_array_equal(s.step_sizes, [s.step_size] * 2)
    if kwargs:  # η grows ×2 per step up to 3: the search really backtracks in this run
        assert sum(b for _, b in record) > 0
    assert state.total_loss_evaluations == sum(s.loss_evaluations for s in states)


def _counting(fn):
    calls = []

    def oracle(p):
        calls.append(1)
        return fn(p)
    return oracle, calls


@settings(max_examples=10)
@given(seeds, st.integers(1, 4), st.sampled_from([0.1, 0.5]))
def test_every_accepted_step_satisfies_armijo_on_its_batch(seed, batches, c):
    """f_B(x_{k+1}) ≤ f_B(x_k) − c η_k ‖g_B‖² on the batch B of step k, η_k the first η that
    passes (η_k/β failed), and the recorded counts are the oracle calls made."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(3, 5), mll.Tanh(), mll.Dense(5, 2)], mll.SoftmaxCrossEntropy())
    x, y = rng.standard_normal((24, 3)), rng.integers(0, 2, 24)
    params = net.init(seed)
    opt = SLS(c=c, batches_per_epoch=batches)
    state = opt.init(params)
    for k in range(6):
        idx = rng.choice(24, 8, replace=False)
        xb, yb = x[idx], y[idx]
        ev = net.evaluate(params, xb, yb)
        oracle, calls = _counting(lambda p: net.loss_value(p, xb, yb))
        updates, state = opt.update(ev.grads, state, params, loss=oracle)
        new = mll.apply_updates(params, updates)
        eta, grad_sq = state.step_size, float(np.sum(flat(ev.grads) ** 2))
        assert state.armijo_satisfied
        assert net.loss_value(new, xb, yb) <= ev.loss - c * eta * grad_sq
        if state.backtracks > 0:  # the η tried just before was rejected
            before = mll.apply_updates(params, [{n: -eta / opt.beta * g for n, g in e.items()}
                                                for e in ev.grads])
            assert net.loss_value(before, xb, yb) > ev.loss - c * (eta / opt.beta) * grad_sq
        assert len(calls) == state.loss_evaluations == state.backtracks + 2
        params = new
    assert state.count == 6


def test_a_search_that_never_succeeds_takes_the_official_tiny_step():
    params = [{"x": np.array([1.0, -1.0])}]
    grads = [{"x": np.array([0.5, 0.5])}]
    oracle, calls = _counting(lambda p: 0.0 if p is params else np.inf)
    opt = SLS(max_trials=7)
    updates, state = opt.update(grads, opt.init(params), params, loss=oracle)
    np.testing.assert_array_equal(updates[0]["x"], -1e-6 * grads[0]["x"])
    assert not state.armijo_satisfied and state.backtracks == 7 and len(calls) == 8
    assert state.step_size == pytest.approx(2 ** (1 / 500) * 0.9 ** 7, rel=1e-15)
    assert np.all(state.step_sizes == 1e-6)


def test_a_tiny_gradient_takes_no_step_and_no_loss_call():
    params = [{"x": np.array([1.0])}]
    oracle, calls = _counting(lambda p: 1.0)
    opt = SLS()
    updates, state = opt.update([{"x": np.array([1e-9])}], opt.init(params), params, loss=oracle)
    assert updates[0]["x"][0] == 0 and not calls and state.loss_evaluations == 0


def test_the_reset_grows_and_is_capped():
    """η ← min(η γ^{1/n_b}, η_max): on a flat-enough problem every first trial is accepted."""
    params = [{"x": np.array([0.0])}]
    grads = [{"x": np.array([1e-3])}]
    opt = SLS(batches_per_epoch=1, max_step=5.0)
    state = opt.init(params)
    sizes = []
    for _ in range(4):
        _, state = opt.update(grads, state, params, loss=lambda p: float(p[0]["x"][0]) * 1e-3)
        sizes.append(state.step_size)
    assert sizes == [2.0, 4.0, 5.0, 5.0]


def test_missing_or_bad_loss_oracle_is_named():
    params = [{"x": np.array([1.0])}]
    with pytest.raises(ValueError, match="^loss:"):
        SLS().update([{"x": np.array([1.0])}], SLS().init(params), params)
    with pytest.raises(ValueError, match="^loss:"):
        SLS().update([{"x": np.array([1.0])}], SLS().init(params), params, loss=3.0)
    with pytest.raises(NonFiniteError, match="^loss:"):
        SLS().update([{"x": np.array([1.0])}], SLS().init(params), params, loss=lambda p: np.nan)
    with pytest.raises(ValueError, match="^params:"):
        SLS().update([{"x": np.array([1.0])}], SLS().init(params), loss=lambda p: 0.0)


def test_update_is_pure():
    net, x, y, _ = tiny_network(seed=4)
    assert_pure(SLS(batches_per_epoch=1), net, x, y, steps=3)


def test_same_inputs_same_bits():
    net, x, y, params = tiny_network(seed=5)
    a, sa, _ = run_network(SLS(), net, params, x, y, 4)
    b, sb, _ = run_network(SLS(), net, net.init(5), x, y, 4)
    assert_trees_equal(a, b)
    assert sa.step_size == sb.step_size and sa.total_loss_evaluations == sb.total_loss_evaluations
