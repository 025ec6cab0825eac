"""The learning-rate schedule (optim.Scheduled): its formula, what its state records, resume, errors."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim import (SGD, AdamW, LayerwiseStepSize, Scheduled, ScheduledState,
                               apply_updates, schedule_multiplier)
from minilayerlr.training import load_checkpoint, train
from minilayerlr.training.checkpoint import encode_tree

EPS = np.finfo(np.float64).eps
# sin²(π(T − t)/(2T)) in float64: the argument carries ≤ 3 roundings (relative), sin's
# condition number x·cot x ≤ 1 and its own rounding ≤ 1 ulp, squaring doubles the relative
# error and rounds once, the product η₀·s once more: 2·(3 + 1) + 1 + 1 = 10 eps relative
REL = 10 * EPS
# the brief's formula (1 + cos(πt/T))/2 in float64 carries an absolute error of ~1.5 eps
# (cos rounds to 1 ulp ≤ eps/2 of 1, the argument's roundings move cos by ≤ π·2 eps·|sin|/π,
# the sum and the halving round once): the reference is within 3 eps·η₀ of the truth
ABS = 3 * EPS


@given(total=st.integers(1, 10 ** 6), eta=st.floats(1e-6, 10.0), frac=st.floats(0.0, 1.0))
def test_cosine_rate_is_the_formula(total, eta, frac):
    opt = Scheduled(SGD(lr=eta), total_steps=total)
    assert opt.rate(0) == eta                       # t = 0: η₀ exactly
    assert opt.rate(total) == 0.0                   # t = T: zero exactly
    t = int(frac * total)
    assert opt.rate(t) == pytest.approx(eta * (1 + math.cos(math.pi * t / total)) / 2,
                                        rel=REL, abs=ABS * eta)
    if total % 2 == 0:                              # t = T/2: half the rate
        assert opt.rate(total // 2) == pytest.approx(eta / 2, rel=REL, abs=0)
    # t = T − 1: (1 + cos(π − π/T))/2 = sin²(π/(2T)), tiny for large T, yet to a few ulps
    # (the form (1 + cos)/2 would lose all but log10(T²) digits here to cancellation)
    assert opt.rate(total - 1) == pytest.approx(eta * math.sin(math.pi / (2 * total)) ** 2,
                                                rel=REL, abs=0)


@pytest.mark.parametrize("total, expected", [
    (1, [1, 0.1 ** 2]),                     # T = 1: both boundaries at t = 1
    (4, [1, 1, 0.1, 0.1 ** 2, 0.1 ** 2]),   # ×0.1 at t = 2 = T/2, again at t = 3 = 3T/4
    (5, [1, 1, 1, 0.1, 0.1 ** 2, 0.1 ** 2]),  # t ≥ 2.5 from t = 3, t ≥ 3.75 from t = 4
    (8, [1] * 4 + [0.1] * 2 + [0.1 ** 2] * 3),
])
def test_step_rate_is_the_formula(total, expected):
    opt = Scheduled(SGD(lr=0.3), total_steps=total, schedule="step")
    assert [opt.rate(t) for t in range(total + 1)] == [0.3 * s for s in expected]


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = [{"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)},
              {"W": rng.standard_normal((2, 1))}]
    grads = [[{k: rng.standard_normal(v.shape) for k, v in p.items()} for p in params]
             for _ in range(6)]
    return params, grads


@pytest.mark.parametrize("schedule", ["cosine", "step"])
@pytest.mark.parametrize("base", [SGD(lr=0.1, momentum=0.9), AdamW(lr=0.01, weight_decay=0.1)])
def test_updates_are_the_base_updates_scaled_and_the_state_records_the_rate(base, schedule):
    params, grads = _problem()
    opt = Scheduled(base, total_steps=len(grads), schedule=schedule)
    frozen = [{k: v.copy() for k, v in p.items()} for p in params]
    state, base_state = opt.init(params), base.init(params)
    assert (state.count, state.lr, state.multiplier) == (0, 0.0, 0.0)
    for t, g in enumerate(grads):
        updates, state = opt.update(g, state, params)
        expected, base_state = base.update(g, base_state, params)
        s = schedule_multiplier(schedule, t, len(grads))
        for u, e in zip(updates, expected):
            for k in e:  # s = 1 leaves the base's updates as they are, bit for bit
                assert np.array_equal(u[k], s * e[k] if s != 1.0 else e[k])
        assert state.count == t + 1 and state.multiplier == s and state.lr == opt.rate(t)
        assert np.array_equal(state.step_sizes, np.full(2, base.lr) * s)
        _assert_same(state.base_state, base_state)  # buffers are the base's, unscaled
        params = apply_updates(params, updates)
    assert all(np.array_equal(frozen[i][k], _problem()[0][i][k]) for i in range(2) for k in frozen[i])
    with pytest.raises(ValueError, match="total_steps: the schedule covers 6 steps"):
        opt.update(grads[0], state, params)  # a seventh step is past the schedule


def _assert_same(a, b):
    arrays_a, arrays_b = {}, {}
    assert encode_tree(a, "s", arrays_a) == encode_tree(b, "s", arrays_b)
    assert all(np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)


def test_a_layerwise_base_keeps_its_oracles_and_fallback_codes():
    net = mll.Sequential([mll.Dense(4, 5), mll.Tanh(), mll.Dense(5, 2)], loss=mll.SoftmaxCrossEntropy())
    x = np.random.default_rng(1).standard_normal((12, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    opt = Scheduled(LayerwiseStepSize(SGD(momentum=0.9)), total_steps=5)
    assert opt.oracles == opt.base.oracles == ("curvature",)
    p, state = net.init(0), opt.init(net.init(0))
    for t in range(5):
        ev = net.evaluate(p, x, y)
        updates, state = opt.update(ev.grads, state, p, curvature=ev.layer_curvature)
        p = apply_updates(p, updates)
        s = schedule_multiplier("cosine", t, 5)
        assert np.array_equal(state.step_sizes, state.base_state.step_sizes * s)
        assert state.lr == s  # no learning rate in the base: lr is the multiplier
        assert np.array_equal(state.diagnostics()["fallbacks"], state.base_state.fallbacks)


def _net():
    return mll.Sequential([mll.Dense(6, 8), mll.Tanh(), mll.Dense(8, 3)], loss=mll.SoftmaxCrossEntropy())


def _run(optimizer, epochs, **kwargs):
    net = _net()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6))
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return train(net, net.init(1), optimizer, x, y, epochs=epochs, batch_size=16, seed=0,
                 progress=False, **kwargs)


STEPS_PER_EPOCH = 4  # 50 examples in batches of 16


@pytest.mark.parametrize("base, schedule", [(SGD(lr=0.1, momentum=0.9), "cosine"),
                                            (AdamW(lr=0.01), "cosine"),
                                            (SGD(lr=0.1, momentum=0.9), "step")])
def test_a_scheduled_run_resumes_bit_for_bit_mid_schedule(tmp_path, base, schedule):
    opt = Scheduled(base, total_steps=4 * STEPS_PER_EPOCH, schedule=schedule)
    straight = _run(opt, epochs=4)
    path = tmp_path / "ck.npz"
    _run(opt, epochs=2, checkpoint=path)  # stops at t = 8 = T/2: the step decay's first boundary
    saved = load_checkpoint(path)
    assert saved["epoch"] == 2
    resumed = _run(opt, epochs=4, resume=path)
    for a, b in zip(resumed.params, straight.params):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    _assert_same(resumed.state, straight.state)
    history = [resumed.history.to_dict(), straight.history.to_dict()]
    for h in history:
        h.pop("time")
    assert history[0] == history[1]
    # the recorded step sizes are the scheduled rates, step by step
    rates = [opt.rate(t) for t in range(4 * STEPS_PER_EPOCH)]
    assert np.array_equal(straight.history.step_size_array()[:, 0], rates)
    # a checkpoint of another schedule length is another run: refused
    other = Scheduled(base, total_steps=4 * STEPS_PER_EPOCH + 1, schedule=schedule)
    with pytest.raises(ValueError, match="total_steps"):
        _run(other, epochs=4, resume=path)


@pytest.mark.parametrize("kwargs, word, kind", [
    ({"total_steps": 0}, "total_steps", ValueError),
    ({"total_steps": -5}, "total_steps", ValueError),
    ({"total_steps": 2.5}, "total_steps", ValueError),
    ({"total_steps": True}, "total_steps", ValueError),
    ({"total_steps": None}, "total_steps", ValueError),
    ({"total_steps": 10, "schedule": "linear"}, "schedule", ValueError),
    ({"total_steps": 10, "schedule": None}, "schedule", ValueError),
    ({"total_steps": 10, "base": "sgd"}, "base", TypeError),
])
def test_bad_arguments_name_themselves(kwargs, word, kind):
    kwargs = {"base": SGD(lr=0.1), **kwargs}
    with pytest.raises(kind, match=f"^{word}: "):
        Scheduled(**kwargs)


@pytest.mark.parametrize("t", [-1, 11, 2.0, None])
def test_a_step_outside_the_schedule_is_refused(t):
    with pytest.raises(ValueError, match="^t: .*0..10"):
        schedule_multiplier("cosine", t, 10)
    with pytest.raises(ValueError, match="^t: "):
        Scheduled(SGD(lr=0.1), 10).rate(t)


@pytest.mark.parametrize("field, value", [("multiplier", math.nan), ("multiplier", 1.5),
                                          ("lr", -0.1), ("lr", math.inf)])
def test_a_corrupt_state_is_refused_naming_its_field(field, value):
    params, grads = _problem()
    opt = Scheduled(SGD(lr=0.1), total_steps=6)
    state = opt.init(params)
    bad = ScheduledState(**{**state.__dict__, field: value})
    with pytest.raises(ValueError, match=f"state.{field}"):
        opt.update(grads[0], bad, params)
    with pytest.raises(TypeError, match="state"):
        opt.update(grads[0], SGD(lr=0.1).init(params), params)
