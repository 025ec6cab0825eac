"""The layer-wise optimizers on real networks (the engine's oracle), docs/design.md §1."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

import minilayerlr as mll
from minilayerlr.optim import SGD, AdamW, LayerwiseStepSize
from minilayerlr.testing.instances import random_graph

from strategies import seeds


@given(st.lists(st.integers(1, 4), min_size=3, max_size=4), st.integers(2, 8), seeds)
@settings(max_examples=10)
def test_deep_linear_network_step_is_the_exact_block_minimiser(widths, n, seed):
    """f restricted to one layer of a deep linear net with MSE is quadratic, so
    α_l = g_lᵀd_l / d_lᵀH_ll d_l (η = 1, λ = 0) minimises f(θ − α d_l) exactly (docs/design.md §1)."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(a, b) for a, b in zip(widths[:-1], widths[1:])], mll.MeanSquaredError())
    params = net.init(seed)
    x, y = rng.standard_normal((n, widths[0])), rng.standard_normal((n, widths[-1]))
    ev = net.evaluate(params, x, y)
    opt = LayerwiseStepSize(SGD(momentum=0.0), scale=1.0, ema=0.0)
    _, state = opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature)
    assert (state.fallbacks == 0).any()
    for i, k in enumerate(net.blocks):
        if state.fallbacks[i] != 0:
            continue  # a block with zero gradient: nothing to minimise

        def along(alpha):
            moved = [dict(p) for p in params]
            moved[k] = {name: params[k][name] - alpha * ev.grads[k][name] for name in params[k]}
            return net.loss_value(moved, x, y)

        best = minimize_scalar(along, bracket=(0.0, state.step_sizes[i]), tol=1e-12)
        assert state.step_sizes[i] == pytest.approx(best.x, rel=1e-5, abs=1e-9)
        # and it is a minimum: moving a little either way does not help
        assert along(state.step_sizes[i]) <= min(along(0.9 * state.step_sizes[i]), along(1.1 * state.step_sizes[i]))


def mlp_task():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8))
    y = (x[:, :3].sum(axis=1) > 0).astype(int) + (x[:, 3] > 0.5)
    net = mll.Sequential([mll.Dense(8, 16), mll.Tanh(), mll.Dense(16, 3)], mll.SoftmaxCrossEntropy())
    return net, x, y


def cnn_task():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 1, 8, 8))
    y = (x[:, 0, :4].mean(axis=(1, 2)) > 0).astype(int)
    net = mll.Sequential([mll.Conv2d(1, 4, 3, padding=1), mll.ReLU(), mll.MaxPool2d(2), mll.Flatten(),
                          mll.Dense(64, 2)], mll.SoftmaxCrossEntropy())
    return net, x, y


def gcn_task():
    rng = np.random.default_rng(2)
    n = 40
    labels = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 5)) + labels[:, None]
    adjacency = random_graph(n, 80, rng)
    mask = np.zeros(n, bool)
    mask[:20] = True
    net = mll.Sequential([mll.GraphConv(5, 8, adjacency), mll.ReLU(), mll.GraphConv(8, 2, adjacency)],
                         mll.SoftmaxCrossEntropy(mask=mask))
    return net, x, labels


def run_steps(net, params, opt, x, y, steps):
    """``steps`` LS steps on the full batch; returns the final params and state."""
    state = opt.init(params)
    for _ in range(steps):
        ev = net.evaluate(params, x, y)
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = mll.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("task", [mlp_task, cnn_task, gcn_task], ids=["mlp", "cnn", "gcn"])
@pytest.mark.parametrize("make", [
    lambda: LayerwiseStepSize(SGD(momentum=0.9)),
    lambda: LayerwiseStepSize(AdamW()),
], ids=["sgd-m-ls", "adamw-ls"])
def test_ls_methods_reduce_training_loss_from_defaults(task, make):
    """No learning rate given: the defaults alone must make progress on all three model families."""
    net, x, y = task()
    params = net.init(3)
    first = net.evaluate(params, x, y).loss
    params, state = run_steps(net, params, make(), x, y, 30)
    last = net.evaluate(params, x, y).loss
    assert np.isfinite(last) and last < 0.7 * first, (first, last)
    assert np.all(state.step_sizes >= 0) and state.step_sizes.shape == (len(net.blocks),)


@pytest.mark.parametrize("kind", ["ggn", "mc_fisher", "sign_hvp"])
def test_ls_runs_with_every_curvature_kind(kind):
    net, x, y = mlp_task()
    params = net.init(4)
    first = net.evaluate(params, x, y).loss
    opt = LayerwiseStepSize(SGD(momentum=0.9), curvature_kind=kind, seed=5)
    params, _ = run_steps(net, params, opt, x, y, 20)
    assert net.evaluate(params, x, y).loss < first
