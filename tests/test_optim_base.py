"""Base optimizers: purity, hand-unrolled references, AdamW decay, validation."""
import copy

import numpy as np
import pytest

from minilayerlr.optim import SGD, Adam, AdamW, LayerwiseStepSize, apply_updates
from optimizer_list import NAMES, make
from strategies_peers import assert_pure, tiny_network


def make_params():
    rng = np.random.default_rng(0)
    return [{"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}, {},
            {"W": rng.standard_normal((2, 1))}]


def grads_at(t):
    """A fixed gradient sequence g_t (independent of θ, so references stay by hand)."""
    rng = np.random.default_rng(100 + t)
    return [{"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}, {},
            {"W": rng.standard_normal((2, 1))}]


def run(opt, steps=3):
    params = make_params()
    state = opt.init(params)
    for t in range(1, steps + 1):
        updates, state = opt.update(grads_at(t), state, params)
        params = apply_updates(params, updates)
    return params, state


def leaves(tree):
    return [tree[k][n] for k in range(len(tree)) for n in tree[k]]


@pytest.mark.parametrize("name", NAMES)
def test_every_optimizer_is_pure(name):
    """Every entry of the one list: update leaves grads, params and the old state untouched
    and repeats bit for bit (two steps, so the second sees a non-trivial state)."""
    net, x, y, _ = tiny_network(seed=4)
    assert_pure(make(name), net, x, y, steps=2)


@pytest.mark.parametrize("opt", [SGD(lr=0.1), SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
                                 Adam(lr=0.01), AdamW(lr=0.01, weight_decay=0.1),
                                 LayerwiseStepSize(SGD(momentum=0.5, weight_decay=0.1), ema=0.5)])
def test_update_does_not_mutate_inputs(opt):
    params, grads = make_params(), grads_at(1)
    state = opt.init(params)
    for _ in range(2):  # second call sees a non-trivial state
        p0, g0, s0 = copy.deepcopy(params), copy.deepcopy(grads), copy.deepcopy(state)
        updates, new_state = opt.update(grads, state, params,
                                        curvature=lambda d: np.array([1.0, 2.0]))
        for a, b in zip(leaves(params) + leaves(grads), leaves(p0) + leaves(g0)):
            np.testing.assert_array_equal(a, b)
        for name in vars(state):
            before, after = getattr(s0, name), getattr(state, name)
            if isinstance(before, np.ndarray):
                np.testing.assert_array_equal(before, after)
        assert updates[1] == {} and new_state is not state
        state = new_state


def test_sgd_momentum_weight_decay_matches_hand_unrolled_reference():
    lr, beta, wd = 0.1, 0.9, 0.05
    th0 = make_params()
    g1, g2, g3 = grads_at(1), grads_at(2), grads_at(3)
    params, _ = run(SGD(lr=lr, momentum=beta, weight_decay=wd))
    for k, name in [(0, "W"), (0, "b"), (2, "W")]:
        t0 = th0[k][name]
        m1 = g1[k][name] + wd * t0
        t1 = t0 - lr * m1
        m2 = beta * m1 + g2[k][name] + wd * t1
        t2 = t1 - lr * m2
        m3 = beta * m2 + g3[k][name] + wd * t2
        t3 = t2 - lr * m3
        np.testing.assert_allclose(params[k][name], t3, rtol=1e-13, atol=1e-15)


def test_sgd_nesterov_matches_hand_unrolled_reference():
    lr, beta = 0.05, 0.8
    th0 = make_params()
    g1, g2, g3 = grads_at(1), grads_at(2), grads_at(3)
    params, _ = run(SGD(lr=lr, momentum=beta, nesterov=True))
    for k, name in [(0, "W"), (0, "b"), (2, "W")]:
        m1 = g1[k][name]
        m2 = beta * m1 + g2[k][name]
        m3 = beta * m2 + g3[k][name]
        d1, d2, d3 = g1[k][name] + beta * m1, g2[k][name] + beta * m2, g3[k][name] + beta * m3
        np.testing.assert_allclose(params[k][name], th0[k][name] - lr * (d1 + d2 + d3),
                                   rtol=1e-13, atol=1e-15)


def test_plain_sgd_is_gradient_descent():
    th0 = make_params()
    params, state = run(SGD(lr=0.3))
    for k, name in [(0, "W"), (0, "b"), (2, "W")]:
        expected = th0[k][name] - 0.3 * (grads_at(1)[k][name] + grads_at(2)[k][name]
                                         + grads_at(3)[k][name])
        np.testing.assert_allclose(params[k][name], expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(state.step_sizes, [0.3, 0.3])
    assert state.count == 3


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_and_adamw_match_hand_unrolled_reference(wd):
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-8
    opt = AdamW(lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=wd) if wd else \
        Adam(lr=lr, b1=b1, b2=b2, eps=eps)
    th0 = make_params()
    g1, g2, g3 = grads_at(1), grads_at(2), grads_at(3)
    params, state = run(opt)
    for k, name in [(0, "W"), (0, "b"), (2, "W")]:
        a, b, c = g1[k][name], g2[k][name], g3[k][name]
        m1, v1 = (1 - b1) * a, (1 - b2) * a**2
        m2, v2 = b1 * m1 + (1 - b1) * b, b2 * v1 + (1 - b2) * b**2
        m3, v3 = b1 * m2 + (1 - b1) * c, b2 * v2 + (1 - b2) * c**2
        d1 = (m1 / (1 - b1)) / (np.sqrt(v1 / (1 - b2)) + eps)
        d2 = (m2 / (1 - b1**2)) / (np.sqrt(v2 / (1 - b2**2)) + eps)
        d3 = (m3 / (1 - b1**3)) / (np.sqrt(v3 / (1 - b2**3)) + eps)
        t1 = th0[k][name] - lr * (d1 + wd * th0[k][name])
        t2 = t1 - lr * (d2 + wd * t1)
        t3 = t2 - lr * (d3 + wd * t2)
        np.testing.assert_allclose(params[k][name], t3, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(state.mu[k][name], m3, rtol=1e-13)
        np.testing.assert_allclose(state.nu[k][name], v3, rtol=1e-13)


@pytest.mark.parametrize("steps", [1, 4, 17])
def test_adamw_with_zero_gradient_decays_geometrically(steps):
    lr, wd = 0.05, 0.3
    opt = AdamW(lr=lr, weight_decay=wd)
    th0 = make_params()
    params, state = th0, opt.init(th0)
    zero = [{n: np.zeros_like(v) for n, v in e.items()} for e in th0]
    for _ in range(steps):
        updates, state = opt.update(zero, state, params)
        params = apply_updates(params, updates)
    for k, name in [(0, "W"), (0, "b"), (2, "W")]:
        np.testing.assert_allclose(params[k][name], th0[k][name] * (1 - lr * wd) ** steps,
                                   rtol=1e-12)


@pytest.mark.parametrize("make, name", [
    (lambda: SGD(lr=-0.1), "lr"), (lambda: SGD(lr=0.0), "lr"),
    (lambda: SGD(momentum=1.0), "momentum"), (lambda: SGD(momentum=-0.1), "momentum"),
    (lambda: SGD(weight_decay=-1.0), "weight_decay"), (lambda: SGD(nesterov=True), "nesterov"),
    (lambda: SGD(lr=float("nan")), "lr"),
    (lambda: Adam(b1=1.0), "b1"), (lambda: Adam(b2=-0.5), "b2"), (lambda: Adam(eps=0.0), "eps"),
    (lambda: AdamW(weight_decay=-0.01), "weight_decay"), (lambda: AdamW(lr=-1.0), "lr"),
])
def test_bad_hyperparameters_raise_value_error_naming_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_weight_decay_without_params_and_bad_grads_raise():
    params = make_params()
    opt = SGD(weight_decay=0.1)
    with pytest.raises(ValueError, match="params"):
        opt.update(grads_at(1), opt.init(params))
    adam = Adam()
    with pytest.raises(ValueError, match="grads"):
        adam.update(grads_at(1)[:2], adam.init(params), params)
