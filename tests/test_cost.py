"""Gradient equivalents: oracle calls counted exactly per step, priced per oracle in one table."""
from dataclasses import dataclass
from typing import ClassVar, Tuple

import numpy as np
import pytest

from minilayerlr.experiments import build_task, run_one
from minilayerlr.experiments.cost import (PRICES, CountingOptimizer, calibrate, call_key,
                                          fixed_prices, gradient_equivalents)
from minilayerlr.optim import SGD, LayerwiseStepSize


def test_gradient_equivalents_from_constructed_counts():
    prices = {"curvature[hessian]": 0.5, "loss": 0.25, "hvp": 2.0}
    snaps = [{}, {"steps": 4, "curvature[hessian]": 4},             # epoch 1: 4 LS steps
             {"steps": 8, "curvature[hessian]": 8, "loss": 6},       # epoch 2: + 6 loss calls
             {"steps": 8, "curvature[hessian]": 8, "loss": 6}]       # stopped: nothing new
    # per epoch: (steps + Σ calls·price) / steps, one pass over the data per epoch of steps
    assert gradient_equivalents(snaps, prices) == [0.0, 1.5, 1.5 + (4 + 4 * 0.5 + 6 * 0.25) / 4, 3.375]
    with pytest.raises(ValueError, match="no price"):
        gradient_equivalents([{}, {"steps": 1, "kronecker_factors": 1}], prices)


def test_curvature_calls_are_priced_per_kind():
    assert call_key("curvature", {}) == "curvature[hessian]"
    assert call_key("curvature", {"kind": "mc_fisher", "seed": 3}) == "curvature[mc_fisher]"
    assert call_key("hvp", {}) == "hvp"
    # one line per oracle of minilayerlr.optim.oracles (curvature once per kind)
    assert {k.split("[")[0] for k in PRICES} == {"curvature", "hvp", "loss", "kronecker_factors"}


@dataclass(frozen=True)
class _LineSearchLike:
    """A stand-in peer: declares loss and hvp, calls loss three times and hvp once per step."""
    oracles: ClassVar[Tuple[str, ...]] = ("loss", "hvp")

    def init(self, params):
        return 0

    def update(self, grads, state, params=None, *, loss=None, hvp=None):
        for _ in range(3):
            loss(params)
        hvp(grads)
        return grads, state + 1


def test_counting_wrapper_counts_every_call_and_keeps_the_method():
    inner = _LineSearchLike()
    opt = CountingOptimizer(inner)
    assert opt.oracles == ("loss", "hvp") and repr(opt) == repr(inner)
    seen = []
    updates, state = opt.update([1.0], opt.init(None), [2.0], loss=lambda p: seen.append(p) or 0.0,
                                hvp=lambda v: v)
    assert (updates, state, seen) == ([1.0], 1, [[2.0]] * 3)
    opt.snapshot()
    assert opt.snapshots == [{"steps": 1, "loss": 3, "hvp": 1}]
    prices = {"loss": 0.4, "hvp": 2.0}
    assert gradient_equivalents([{}] + opt.snapshots, prices) == [0.0, pytest.approx(1 + 3 * 0.4 + 2.0)]


@pytest.mark.parametrize("method, lr, options, key", [
    ("sgd", 0.1, {}, None), ("sgd-ls", None, {}, "curvature[hessian]"),
    ("sgd-ls", None, {"curvature_kind": "mc_fisher"}, "curvature[mc_fisher]"),
    # the peers: one oracle call per step, or none (their extra work is not a pass over data)
    ("sgd-global", None, {}, "hvp"), ("adahessian", 0.1, {}, "hvp"),
    ("shampoo", 0.3, {}, None),  # K-FAC makes several kinds of calls: test_kfac.py counts them
    ("dog", None, {}, None), ("ldog", None, {}, None), ("prodigy", None, {}, None),
])
def test_each_method_counts_its_oracle_calls_in_a_run(method, lr, options, key):
    task = build_task("gcn", size=60)
    prices = fixed_prices(0.75)
    record = run_one(task, method, lr, seed=0, epochs=3,
                     options=options, prices=prices, stability=False)
    steps = record["steps"]
    last = record["oracle_calls"][-1]
    assert last["steps"] == steps == 3  # full batch: one step per epoch
    if key is None:
        assert set(last) == {"steps"}
        assert record["grad_equivalents"] == [0.0, 1.0, 2.0, 3.0]
    else:
        assert last[key] == steps and set(last) == {"steps", key}
        assert record["grad_equivalents"] == [0.0, 1.75, 3.5, 5.25]


def test_gd_ls_line_search_counts_its_loss_calls():
    """GD-LS backtracks by default (docs/theory.md, Theorem 10): each trial is one forward pass."""
    task = build_task("gcn", size=60)
    record = run_one(task, "gd-ls", None, seed=0, epochs=3, prices=fixed_prices(0.75),
                     stability=False)
    last = record["oracle_calls"][-1]
    assert set(last) == {"steps", "curvature[hessian]", "loss"}
    assert last["curvature[hessian]"] == last["steps"] == 3
    assert last["loss"] >= last["steps"]  # at least one trial per step
    assert record["grad_equivalents"][-1] == pytest.approx(3 * 1.75 + 0.75 * last["loss"])


def test_calibrate_prices_every_oracle_the_engine_offers():
    task = build_task("cnn", size=40)
    params = task.net.init(0)
    prices = calibrate(task.net, params, task.x_train[:8], task.y_train[:8], repeat=1)
    ev = task.net.evaluate(params, task.x_train[:8], task.y_train[:8])
    expected = {k for k in PRICES if k != "kronecker_factors" or hasattr(ev, "kronecker_factors")}
    assert set(prices) == expected
    assert all(np.isfinite(v) and v > 0 for v in prices.values())


def test_counted_ls_run_equals_the_uncounted_one():
    # the wrapper only observes: the same numbers as training the optimizer itself
    from minilayerlr.training import train
    task = build_task("gcn", size=60)
    plain = train(task.net, task.net.init(1), LayerwiseStepSize(SGD(momentum=0.9)),
                  task.x_train, task.y_train, epochs=3, seed=1)
    counted = run_one(task, "sgd-ls", None, seed=1, epochs=3, stability=False)
    assert counted["history"]["train_loss"] == plain.history.train_loss
