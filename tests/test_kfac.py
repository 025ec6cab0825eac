"""K-FAC (minilayerlr.optim.KFAC): the paper's equations unrolled, the Newton step, purity, seeds, networks."""
import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim import KFAC, KFACState, SGD
from minilayerlr.optim.oracles import supply_oracles
from minilayerlr.training.checkpoint import encode_tree

from strategies import seeds
from strategies_validation import expect_error
from test_optim_networks import cnn_task, gcn_task, mlp_task

EPS = np.finfo(float).eps


def _conv_dense_net():
    """Both Kronecker layouts in one network: a Conv2d block and a Dense block."""
    rng = np.random.default_rng(11)
    net = mll.Sequential([mll.Conv2d(1, 2, 3, padding=1), mll.Tanh(), mll.Flatten(), mll.Dense(32, 3)],
                         mll.SoftmaxCrossEntropy())
    return net, rng.standard_normal((6, 1, 4, 4)), np.array([0, 1, 2, 2, 1, 0])


def _step_seed(seed, t):
    return int(np.random.SeedSequence([seed, t]).generate_state(1)[0])


def _kfac_reference(net, params, x, y, steps, lr, lam, eps, T, mu, seed):
    """K-FAC from the equations (M&G 2015 §3, §6.3; KFC 2016 §3), with Kronecker products built in full.

    Ā_t = Σ_{s≤t} (1−ε) ε^{t−s} A_s / (1 − ε^t)    (zero-start average, zero-debiased)
    π = sqrt((tr Ā/dim)/(tr Ḡ/dim)),  vec Δ = [(Ā + π√λI) ⊗ (Ḡ + √λ/π I)]⁻¹ vec ∇W̃  (Dense rows of [W; b])
    (Conv2d: [(Ḡ + √λ/π I) ⊗ (Ā + π√λ I)]⁻¹ on rows of [W | b]),  v ← μv + Δ,  θ ← θ − lr v.
    """
    history, damped, velocity = [], None, None
    for t in range(1, steps + 1):
        ev = net.evaluate(params, x, y)
        history.append(ev.kronecker_factors(seed=_step_seed(seed, t)))
        weights = [(1 - eps) * eps ** (t - s) / (1 - eps ** t) for s in range(1, t + 1)]
        if (t - 1) % T == 0:
            damped = []
            for i in range(len(net.blocks)):
                A = sum(w * h[i]["A"] for w, h in zip(weights, history))
                G = sum(w * h[i]["G"] for w, h in zip(weights, history))
                pi = math.sqrt((np.trace(A) / len(A)) / (np.trace(G) / len(G)))
                damped.append((A + pi * math.sqrt(lam) * np.eye(len(A)),
                               G + math.sqrt(lam) / pi * np.eye(len(G))))
        new = [dict(p) for p in params]
        velocity = velocity or [{n: np.zeros_like(a) for n, a in p.items()} for p in params]
        for i, k in enumerate(net.blocks):
            W, b = ev.grads[k]["W"], ev.grads[k]["b"]
            Ad, Gd = damped[i]
            if W.ndim == 2:
                matrix = np.vstack([W, b])
                vec = np.linalg.solve(np.kron(Ad, Gd), matrix.ravel()).reshape(matrix.shape)
                delta = {"W": vec[:-1], "b": vec[-1]}
            else:
                matrix = np.hstack([W.reshape(W.shape[0], -1), b[:, None]])
                vec = np.linalg.solve(np.kron(Gd, Ad), matrix.ravel()).reshape(matrix.shape)
                delta = {"W": vec[:, :-1].reshape(W.shape), "b": vec[:, -1]}
            velocity[k] = {n: mu * velocity[k][n] + delta[n] for n in delta}
            new[k] = {n: params[k][n] - lr * velocity[k][n] for n in delta}
        params = new
    return params


def _run(opt, net, params, x, y, steps):
    state = opt.init(params)
    for _ in range(steps):
        ev = net.evaluate(params, x, y)
        updates, state = opt.update(ev.grads, state, params, **supply_oracles(opt, ev))
        params = mll.apply_updates(params, updates)
    return params, state


def test_three_steps_equal_the_equations_unrolled():
    net, x, y = _conv_dense_net()
    params0 = net.init(2)
    hyper = dict(lr=0.3, damping=0.05, factor_decay=0.8, inverse_every=2, momentum=0.7, seed=5)
    params, state = _run(KFAC(**hyper), net, params0, x, y, 3)
    expected = _kfac_reference(net, params0, x, y, 3, hyper["lr"], hyper["damping"], hyper["factor_decay"],
                               hyper["inverse_every"], hyper["momentum"], hyper["seed"])
    assert state.count == 3 and state.factor_seed == _step_seed(5, 3)
    for e, f in zip(params, expected):
        for n in e:
            # The reference solves the full Kronecker system, the code two small inverses:
            # they agree to rounding, well inside 1e-12 on parameters of size ~1.
            np.testing.assert_allclose(e[n], f[n], rtol=0, atol=1e-12)
    moved = max(np.abs(e[n] - f[n]).max() for e, f in zip(params, params0) for n in e)
    assert moved > 1e-2  # the steps were not negligible


@given(n=st.integers(4, 9), d_in=st.integers(1, 3), d_out=st.integers(1, 3), seed=seeds)
@settings(max_examples=8)
def test_exact_factors_and_zero_damping_give_the_newton_step(n, d_in, d_out, seed):
    """One Dense layer, squared error: A = X̃ᵀX̃/N, G = I is the exact Gauss-Newton (= Hessian)
    block, so a K-FAC step with λ = 0, lr = 1, μ = 0 is −H⁻¹g, and lands on the minimiser."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d_in, d_out)], mll.MeanSquaredError())
    params = net.init(seed)
    x, y = rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))
    ev = net.evaluate(params, x, y)
    xt = np.hstack([x, np.ones((n, 1))])
    exact = lambda seed: [{"A": xt.T @ xt / n, "G": np.eye(d_out)}]  # noqa: E731
    opt = KFAC(lr=1.0, damping=0.0, momentum=0.0, inverse_every=1)
    updates, _ = opt.update(ev.grads, opt.init(params), params, kronecker_factors=exact)
    H = ev.hessian()
    newton = -np.linalg.solve(H, mll.tree.flatten(ev.grads))
    # the two solves differ by rounding amplified by cond(H)
    tol = 10 * n * np.linalg.cond(H) * EPS * (np.abs(newton).max() + 1)
    np.testing.assert_allclose(mll.tree.flatten(updates), newton, rtol=0, atol=tol)
    after = net.evaluate(mll.apply_updates(params, updates), x, y)
    assert np.abs(mll.tree.flatten(after.grads)).max() <= tol * np.abs(H).max()


def test_update_is_pure():
    net, x, y = _conv_dense_net()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = KFAC(inverse_every=2)
    state = opt.update(ev.grads, opt.init(params), params, kronecker_factors=ev.kronecker_factors)[1]
    before = _arrays(copy.deepcopy((ev.grads, state, params)))
    opt.update(ev.grads, state, params, kronecker_factors=ev.kronecker_factors)
    after = _arrays((ev.grads, state, params))
    assert before[0] == after[0] and before[1].keys() == after[1].keys() and before[1]
    assert all(np.array_equal(before[1][key], after[1][key]) for key in before[1])


def _arrays(obj):
    """(structure, {key: array}) of nested states, trees and tuples, for bit-for-bit comparisons."""
    arrays = {}
    return encode_tree(obj, "x", arrays), arrays


def test_seeded_runs_reproduce_bit_for_bit():
    net, x, y = mlp_task()
    runs = [_run(KFAC(seed=s), net, net.init(1), x, y, 4) for s in (3, 3, 4)]
    flat = [mll.tree.flatten(p) for p, _ in runs]
    assert np.array_equal(flat[0], flat[1]) and not np.array_equal(flat[0], flat[2])
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1].factors_g, runs[1][1].factors_g))


@pytest.mark.parametrize("task", [mlp_task, cnn_task, gcn_task], ids=["mlp", "cnn", "gcn"])
def test_defaults_reduce_the_training_loss(task):
    """30 full-batch steps of ``minilayerlr.train``, which passes exactly the declared oracles."""
    net, x, y = task()
    result = mll.train(net, net.init(3), KFAC(), x, y, epochs=30, batch_size=None, progress=False)
    first, last = result.history.train_loss[0], result.history.train_loss[-1]
    assert result.history.stop_reason is None and np.isfinite(last) and last < 0.7 * first, (first, last)
    assert isinstance(result.state, KFACState) and np.all(result.state.step_sizes == KFAC().lr)


def test_missing_or_bad_oracles_and_inputs_are_named():
    net, x, y = mlp_task()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = KFAC()
    state = opt.init(params)
    expect_error(lambda: opt.update(ev.grads, state, params), "kronecker_factors")
    expect_error(lambda: opt.update(ev.grads, state, params, kronecker_factors=3), "kronecker_factors")
    expect_error(lambda: opt.update(ev.grads, state, params, kronecker_factors=lambda seed: []),
                 "kronecker_factors")
    wrong = lambda seed: [{"A": np.eye(2), "G": np.eye(2)}] * 2  # noqa: E731
    expect_error(lambda: opt.update(ev.grads, state, params, kronecker_factors=wrong), "kronecker_factors")
    nan = [dict(e, W=np.full_like(e["W"], np.nan)) if e else e for e in ev.grads]
    expect_error(lambda: opt.update(nan, state, params, kronecker_factors=ev.kronecker_factors), "grads")
    expect_error(lambda: opt.update(ev.grads, SGD().init(params), params,
                                    kronecker_factors=ev.kronecker_factors), "state")


def test_an_undamped_singular_factor_stops_with_a_named_error():
    # 2 examples, 3 inputs: X̃ᵀX̃ has rank 2 < 4, so λ = 0 leaves A singular
    net = mll.Sequential([mll.Dense(3, 2)], mll.MeanSquaredError())
    x, y = np.ones((2, 3)), np.zeros((2, 2))
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = KFAC(damping=0.0)
    error = expect_error(lambda: opt.update(ev.grads, opt.init(params), params,
                                            kronecker_factors=ev.kronecker_factors), "damping")
    assert isinstance(error, mll.errors.NonFiniteError)
