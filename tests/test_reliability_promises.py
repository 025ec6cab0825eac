"""Hostile pass, third round: states by value, the API's promises, resumed records (issue 20, 7-9).

A wrong optimizer state field is named as that field (not as ``grads``, the
oracle or ``params``), shapes must be equal rather than broadcastable, K-FAC's
factors and inverses must be symmetric positive semi-definite; the API keeps
the promises its messages and docstrings make; and a resumed ``train --out``
writes the record and figures the uninterrupted run writes.
"""
import dataclasses
import json

import numpy as np
import pytest

import minilayerlr as mll
from minilayerlr import cli
from minilayerlr.optim import (KFAC, SGD, AdaHessian, AdamW, DoG, LDoG, Prodigy, Shampoo)
from minilayerlr.optim.oracles import supply_oracles


@pytest.fixture(scope="module")
def setting():
    net = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)],
                         loss=mll.SoftmaxCrossEntropy())
    params = net.init(0)
    x = np.random.default_rng(0).standard_normal((6, 3))
    y = np.array([0, 1, 1, 0, 1, 0])
    ev = net.evaluate(params, x, y)
    return net, params, ev, lambda p: net.loss_value(p, x, y)


def _replace_leaf(tree, k, key, value):
    out = [dict(e) for e in tree]
    out[k][key] = value
    return out


def _replace_item(items, i, value):
    out = list(items)
    out[i] = value
    return out


def _take_step(opt, state, setting):
    net, params, ev, loss = setting
    return opt.update(ev.grads, state, params, **supply_oracles(opt, ev, loss=loss))


# -- class 7: optimizer states checked by value, naming the right field -----------------

def _leaf(field, k, key, shape):
    return lambda state: dataclasses.replace(
        state, **{field: _replace_leaf(getattr(state, field), k, key, np.zeros(shape))})


def _matrix(field, i, matrix):
    return lambda state: dataclasses.replace(
        state, **{field: _replace_item(getattr(state, field), i, np.asarray(matrix, dtype=float))})


def _kfac_warm(state, setting):
    """A K-FAC state after one step (factors and inverses no longer zero)."""
    return _take_step(KFAC(), state, setting)[1]


STATE_DAMAGE = {
    "SGD momentum transposed": (SGD(lr=0.1, momentum=0.9), _leaf("momentum", 0, "W", (4, 3)),
                                "state.momentum[0]['W']"),
    "SGD momentum bias as a column": (SGD(lr=0.1, momentum=0.9), _leaf("momentum", 0, "b", (4, 1)),
                                      "state.momentum[0]['b']"),
    "AdamW mu transposed": (AdamW(lr=0.1), _leaf("mu", 0, "W", (4, 3)), "state.mu[0]['W']"),
    "AdamW nu transposed": (AdamW(lr=0.1), _leaf("nu", 2, "W", (2, 4)), "state.nu[2]['W']"),
    "AdamW nu bias as a column": (AdamW(lr=0.1), _leaf("nu", 0, "b", (4, 1)), "state.nu[0]['b']"),
    "AdaHessian nu bias as a column": (AdaHessian(), _leaf("nu", 0, "b", (4, 1)),
                                       "state.nu[0]['b']"),
    "AdaHessian mu transposed": (AdaHessian(), _leaf("mu", 0, "W", (4, 3)), "state.mu[0]['W']"),
    "Shampoo left as a column": (Shampoo(), _leaf("left", 0, "W", (3, 1)), "state.left[0]['W']"),
    "Shampoo left root of another size": (Shampoo(), _leaf("left_roots", 0, "W", (2, 2)),
                                          "state.left_roots[0]['W']"),
    "Shampoo full left as a diagonal": (Shampoo(), _leaf("left", 0, "W", (3,)),
                                        "state.left[0]['W']"),
    "Shampoo full right as a diagonal": (Shampoo(), _leaf("right", 2, "W", (2,)),
                                         "state.right[2]['W']"),
    "DoG x_0 transposed": (DoG(), _leaf("initial_params", 0, "W", (4, 3)),
                           "state.initial_params[0]['W']"),
    "LDoG x_0 bias as a column": (LDoG(), _leaf("initial_params", 0, "b", (4, 1)),
                                  "state.initial_params[0]['b']"),
    "Prodigy x_0 transposed": (Prodigy(), _leaf("initial_params", 0, "W", (4, 3)),
                               "state.initial_params[0]['W']"),
    "K-FAC factor A of another size": (KFAC(), _matrix("factors_a", 0, np.eye(3)),
                                       "state.factors_a[0]"),
    "K-FAC inverse G of another size": (KFAC(), _matrix("inverse_g", 1, np.eye(3)),
                                        "state.inverse_g[1]"),
    "K-FAC velocity transposed": (KFAC(), _leaf("velocity", 0, "W", (4, 3)),
                                  "state.velocity[0]['W']"),
    "K-FAC negative-definite inverse A": (KFAC(), _matrix("inverse_a", 0, -np.eye(4)),
                                          "state.inverse_a[0]"),
    "K-FAC indefinite inverse G": (KFAC(), _matrix("inverse_g", 1, [[1.0, 2.0], [2.0, 1.0]]),
                                   "state.inverse_g[1]"),
    "K-FAC non-symmetric factor G": (KFAC(), _matrix("factors_g", 0, np.triu(np.ones((4, 4)))),
                                     "state.factors_g[0]"),
    "K-FAC non-symmetric inverse A": (KFAC(), _matrix("inverse_a", 1, np.eye(5) + np.eye(5, k=1)),
                                      "state.inverse_a[1]"),
}


@pytest.mark.parametrize("damage", list(STATE_DAMAGE))
def test_c7_a_wrong_state_field_is_named_as_that_field(setting, damage):
    opt, change, field = STATE_DAMAGE[damage]
    state = opt.init(setting[1])
    if isinstance(opt, KFAC) and "size" not in damage and "velocity" not in damage:
        state = _kfac_warm(state, setting)  # a warm state: only the damaged matrix is wrong
    with pytest.raises(ValueError) as info:
        _take_step(opt, change(state), setting)
    assert str(info.value).startswith(field), str(info.value)


@pytest.mark.parametrize("opt", [SGD(lr=0.1, momentum=0.9), AdamW(lr=0.1), AdaHessian(), Shampoo(),
                                 DoG(), Prodigy(), KFAC()], ids=lambda o: type(o).__name__)
def test_c7_intact_states_still_step_for_many_steps(setting, opt):
    net, params, ev, loss = setting
    state = opt.init(params)
    for _ in range(12):  # K-FAC recomputes its inverses at step 11: they stay symmetric PSD
        updates, state = opt.update(ev.grads, state, params, **supply_oracles(opt, ev, loss=loss))
        params = mll.optim.apply_updates(params, updates)
        ev = net.evaluate(params, *_batch())


def _batch():
    return np.random.default_rng(0).standard_normal((6, 3)), np.array([0, 1, 1, 0, 1, 0])


# -- class 8: the API's own promises ----------------------------------------------------

class _Bare:
    """An evaluation that offers the gradient only (no curvature oracles)."""

    def __init__(self, ev):
        self.grads, self.loss = ev.grads, ev.loss


@pytest.mark.parametrize("opt, oracle", [(KFAC(), "kronecker_factors"), (AdaHessian(), "hvp"),
                                         (mll.optim.SLS(), "loss"),
                                         (mll.optim.LayerwiseStepSize(SGD(lr=1.0)), "curvature")])
def test_c8_supply_oracles_names_the_missing_oracle(setting, opt, oracle):
    with pytest.raises(ValueError, match=f"^{oracle}: "):
        supply_oracles(opt, _Bare(setting[2]), loss=None)


@pytest.mark.parametrize("i", [-1, -2, 2, True, 1.0, "0"])
def test_c8_block_hessian_takes_positions_in_0_to_L(setting, i):
    with pytest.raises(ValueError, match=r"^i: expected a block position in \[0, 2\)"):
        setting[2].block_hessian(i)


@pytest.mark.parametrize("kind", ["hessian", "ggn", "naive_hvp", "sign_hvp", "mc_fisher"])
@pytest.mark.parametrize("seed", [-5, "x", 1.5, True, [1]])
def test_c8_layer_curvature_checks_its_seed_for_every_kind(setting, kind, seed):
    ev = setting[2]
    with pytest.raises(ValueError, match="^seed: "):
        ev.layer_curvature(ev.grads, kind, seed=seed)


@pytest.mark.parametrize("sizes", [{2: 1, 3: 1}, {1: 7, 2: 7}, {1, 2}, frozenset({3})])
def test_c8_block_quadratic_refuses_unordered_block_sizes(sizes):
    from minilayerlr.theory import BlockQuadratic
    with pytest.raises(ValueError, match="^block_sizes: "):
        BlockQuadratic(np.eye(3), np.ones(3), block_sizes=sizes)


@pytest.mark.parametrize("layers, bad", [
    (lambda: [mll.Dense(3, 4), mll.Dense(5, 2)], "layers[1]"),
    (lambda: [mll.Dense(3, 4), mll.Tanh(), mll.Dense(5, 2)], "layers[2]"),
    (lambda: [mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 6), mll.Tanh(), mll.Dense(4, 2)],
     "layers[4]"),
])
def test_c8_layers_that_do_not_chain_are_refused_at_construction(layers, bad):
    with pytest.raises(ValueError) as info:
        mll.Sequential(layers(), loss=mll.MeanSquaredError())
    assert str(info.value).startswith(bad), str(info.value)


def test_c8_layers_that_chain_still_build():
    mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)], loss=mll.MeanSquaredError())


@pytest.mark.parametrize("make, name", [
    (lambda p: DoG(reps_rel=1e308).init(p), "reps_rel"),
    (lambda p: LDoG(reps_rel=1e308).init(p), "reps_rel"),
    (lambda p: Prodigy(d0=1e308), "d0"),
    (lambda p: Prodigy(d0=1e200), "d0"),
])
def test_c8_constants_that_overflow_are_refused_by_name(setting, make, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        make(setting[1])


def test_c8_a_full_batch_optimizer_refuses_mini_batches():
    @dataclasses.dataclass(frozen=True)
    class FullBatchSGD(SGD):
        full_batch: bool = True
    net = mll.Sequential([mll.Dense(3, 2)], loss=mll.MeanSquaredError())
    with pytest.raises(ValueError, match="^batch_size: FullBatchSGD is a full-batch method"):
        mll.train(net, net.init(0), FullBatchSGD(lr=0.1), np.ones((4, 3)), np.zeros((4, 2)),
                  epochs=1, batch_size=2)


# -- class 9: resumed records are complete ----------------------------------------------

TRAIN = ["train", "--task", "gcn", "--optimizer", "sgd-ls", "--quick", "--size", "60",
         "--no-progress"]


def _comparable(record):
    record = dict(record)
    for key in ("wall_time",):
        record.pop(key)
    history = dict(record.pop("history"))
    history.pop("time")
    return record, history


@pytest.mark.parametrize("optimizer", ["sgd-ls", "sls"])
def test_c9_a_resumed_train_out_writes_the_uninterrupted_record_and_figures(tmp_path, capsys,
                                                                            optimizer):
    argv = ["train", "--task", "gcn", "--optimizer", optimizer, "--quick", "--size", "60",
            "--no-progress"]
    straight, resumed, ck = tmp_path / "straight", tmp_path / "resumed", tmp_path / "ck.npz"
    assert cli.main(argv + ["--epochs", "3", "--out", str(straight)]) == 0
    assert cli.main(argv + ["--epochs", "1", "--checkpoint", str(ck)]) == 0
    assert cli.main(argv + ["--epochs", "3", "--resume", str(ck), "--checkpoint", str(ck),
                            "--out", str(resumed)]) == 0
    a = json.loads((straight / "run.json").read_text())
    b = json.loads((resumed / "run.json").read_text())
    assert b["oracle_calls"] is not None and b["oracle_calls"] == a["oracle_calls"]
    assert [s["lambda_max"] for s in b["stability"]] == [s["lambda_max"] for s in a["stability"]]
    assert _comparable(a) == _comparable(b)
    assert sorted(p.name for p in resumed.iterdir()) == sorted(p.name for p in straight.iterdir())


def test_c9_a_checkpoint_without_the_harness_state_still_resumes(tmp_path, capsys):
    """A checkpoint written by the library's train (no harness state) resumes; counts are left out."""
    from minilayerlr.experiments.tasks import build_task
    task = build_task("gcn", quick=True, size=60)
    ck = tmp_path / "ck.npz"
    mll.train(task.net, task.net.init(0), mll.optim.SGD(lr=0.1), task.x_train, task.y_train,
              epochs=1, checkpoint=ck, eval_fn=task.eval_fn)
    code = cli.main(["train", "--task", "gcn", "--optimizer", "sgd", "--lr", "0.1", "--quick",
                     "--size", "60", "--epochs", "2", "--resume", str(ck), "--no-progress",
                     "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    if code == 0:
        record = json.loads((tmp_path / "o" / "run.json").read_text())
        assert record["oracle_calls"] is None and record["stability"] == []
    else:  # a checkpoint of another optimizer wrapper may be refused, in one line
        assert code == 2 and err.count("\n") == 1 and "--resume" in err


@pytest.mark.parametrize("field, matrix, needle", [
    ("inverse_a", -np.eye(100), "negative diagonal"),
    ("factors_a", np.eye(100) + np.triu(np.ones((100, 100)), 1), "not symmetric"),
    ("inverse_a", np.ones((100, 100)) * 2 - np.eye(100), "not positive semi-definite"),
])
def test_c7_large_kfac_matrices_are_checked_too(field, matrix, needle):
    """Matrices above the whole-check size are checked on a sample of rows (and the diagonal)."""
    net = mll.Sequential([mll.Dense(99, 4), mll.Tanh(), mll.Dense(4, 2)],
                         loss=mll.SoftmaxCrossEntropy())
    params = net.init(0)
    x, y = np.random.default_rng(0).standard_normal((5, 99)), np.array([0, 1, 1, 0, 1])
    ev = net.evaluate(params, x, y)
    opt = KFAC()
    oracles = supply_oracles(opt, ev, loss=lambda p: net.loss_value(p, x, y))
    state = opt.update(ev.grads, opt.init(params), params, **oracles)[1]
    state = dataclasses.replace(state, **{field: _replace_item(getattr(state, field), 0, matrix)})
    with pytest.raises(ValueError, match=rf"^state\.{field}\[0\]: .*{needle}"):
        opt.update(ev.grads, state, params, **oracles)


def test_c8_gdls_refuses_mini_batches_and_says_so():
    """GDLS is the full-batch idealized method: train refuses a mini-batch for it (and only for it)."""
    from minilayerlr.optim import GDLS, LayerwiseStepSize
    from minilayerlr.training import train
    net = mll.Sequential([mll.Dense(3, 2)], loss=mll.SoftmaxCrossEntropy())
    x, y = np.random.default_rng(0).standard_normal((8, 3)), np.arange(8) % 2
    assert GDLS().full_batch and not LayerwiseStepSize().full_batch
    with pytest.raises(ValueError, match="^batch_size: .*full-batch"):
        train(net, net.init(0), GDLS(), x, y, epochs=1, batch_size=4, progress=False)
    train(net, net.init(0), GDLS(), x, y, epochs=1, batch_size=None, progress=False)
    with pytest.raises(ValueError, match="^full_batch"):
        LayerwiseStepSize(full_batch="yes")
