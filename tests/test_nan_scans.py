"""One training step scans each input for NaN/Inf at most once (docs/design.md, §7).

The scans are counted by wrapping ``np.isfinite``, the one scanning helper of the package,
during one SGD-m-LS step of the training loop (``training.loop.step``): the parameters, the
batch, the gradient, the momentum buffer, the curvature and the new parameters are each
scanned once. An array is identified by its contents (dtype, shape, bytes), so a copy made
on the way (the curvature cast to float64) counts as the same input; two fields of the
state that hold the same values (α_l and the reference α_l when no fallback fired) are two
inputs. λ > 0 keeps the denominators apart from the curvatures.
"""
import collections
import dataclasses

import numpy as np

import minilayerlr as mll
from minilayerlr.optim import SGD, LayerwiseStepSize
from minilayerlr.training import loop


def _scans_of_one_step(monkeypatch, opt, steps_before=2):
    rng = np.random.default_rng(0)
    net = mll.Sequential([mll.Dense(6, 5), mll.Tanh(), mll.Dense(5, 4), mll.Tanh(), mll.Dense(4, 2)],
                         mll.SoftmaxCrossEntropy())
    params = net.init(0)
    x, y = rng.standard_normal((8, 6)), rng.integers(0, 2, 8)
    state = opt.init(params)
    for _ in range(steps_before):  # a state with non-trivial momentum and averages
        _, params, state = loop.step(net, opt, params, state, x, y)
    scans, real = collections.Counter(), np.isfinite

    def counting(a, *args, **kwargs):
        a_ = np.asarray(a)
        scans[(a_.dtype.str, a_.shape, a_.tobytes())] += 1
        return real(a, *args, **kwargs)

    inputs = collections.Counter(_key(a) for a in _state_arrays(state))
    monkeypatch.setattr(np, "isfinite", counting)
    _, new_params, _ = loop.step(net, opt, params, state, x, y)
    monkeypatch.setattr(np, "isfinite", real)
    return scans, inputs, params, new_params, x


def _state_arrays(state):
    """Every array of a (nested) optimizer state."""
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if dataclasses.is_dataclass(value):
            yield from _state_arrays(value)
        elif isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, list):
            yield from (a for entry in value for a in entry.values())


def _key(a):
    return (a.dtype.str, a.shape, a.tobytes())


def test_one_sgd_m_ls_step_scans_each_input_at_most_once(monkeypatch):
    opt = LayerwiseStepSize(SGD(momentum=0.9), damping=1e-3)
    scans, inputs, params, new_params, x = _scans_of_one_step(monkeypatch, opt)
    # θ + u equals θ in a block whose step was skipped (α_l = 0): two inputs, same values
    inputs.update(_key(a) for tree in (params, new_params) for entry in tree for a in entry.values())
    twice = {key[:2]: n for key, n in scans.items() if n > max(1, inputs[key])}
    assert not twice, f"arrays scanned more than once (dtype, shape): {twice}"
    # and the inputs really are scanned: θ (by evaluate), the batch, θ + u (the new parameters)
    for tree in (params, new_params):
        assert all(scans[_key(a)] >= 1 for entry in tree for a in entry.values())
    assert scans[_key(x)] == 1
    # in all at most five parameter-sized scans: θ, g, the momentum buffer, the direction d
    # (the curvature oracle's argument) and θ + u (the per-block statistics have shape (3,),
    # which no parameter has here); the loop of version 0.2 made seven (θ twice, and u)
    shapes = {a.shape for entry in params for a in entry.values()}
    size = sum(a.size for entry in params for a in entry.values())
    assert sum(np.prod(shape, dtype=int) for _, shape, _ in scans if shape in shapes) <= 5 * size


def test_the_counter_sees_a_second_scan(monkeypatch):
    """The check can fail: the old loop's second scan of the curvature is seen."""
    def twice(curvature):
        def oracle(d, **kwargs):
            q = curvature(d, **kwargs)
            np.isfinite(q)
            return q
        return oracle
    real_supply = loop.supply_oracles

    def supply(optimizer, ev, loss=None):
        oracles = real_supply(optimizer, ev, loss=loss)
        oracles["curvature"] = twice(oracles["curvature"])
        return oracles
    monkeypatch.setattr(loop, "supply_oracles", supply)
    opt = LayerwiseStepSize(SGD(momentum=0.9), damping=1e-3)
    scans, inputs, *_ = _scans_of_one_step(monkeypatch, opt)
    assert any(n > max(1, inputs[key]) for key, n in scans.items())
