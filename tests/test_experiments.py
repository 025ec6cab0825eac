"""Tests of the experiment tasks and the comparison (small sizes, seconds)."""
import numpy as np
import pytest

from minilayerlr.experiments import (METHODS, TASK_NAMES, Method, build_optimizer, build_task,
                                     default_data, register)
from minilayerlr.experiments import methods as methods_mod
from minilayerlr.experiments.compare import lineup
from minilayerlr.optim import GDLS, SGD, AdamW, LayerwiseStepSize


@pytest.mark.parametrize("name", TASK_NAMES)
def test_tasks_build_and_evaluate(name):
    task = build_task(name, size=60, data="synthetic")
    params = task.net.init(0)
    metrics = task.eval_fn(params)
    assert set(metrics) == {task.metric}
    assert np.isfinite(metrics[task.metric])
    ev = task.net.evaluate(params, task.x_train[:10] if task.batch_size else task.x_train,
                           task.y_train[:10] if task.batch_size else task.y_train)
    assert np.isfinite(ev.loss)
    assert len(task.block_names) == len(task.net.blocks)
    if name == "autoencoder":
        assert task.x_train.shape == (60, 256) and task.y_train is task.x_train
    if name == "gcn":
        assert task.batch_size is None and task.sizes["num_nodes"] == 60
        assert 0 < task.sizes["num_train"] < 60


def test_tasks_are_seeded():
    a, b = build_task("cnn", size=40, seed=3), build_task("cnn", size=40, seed=3)
    assert np.array_equal(a.x_train, b.x_train)
    # the embedded MNIST split is fixed; generated data follow the seed
    assert np.array_equal(a.x_train, build_task("cnn", size=40, seed=4).x_train)
    s3, s4 = (build_task("cnn", size=40, seed=s, data="synthetic") for s in (3, 4))
    assert not np.array_equal(s3.x_train, s4.x_train)


def test_real_digits_by_default_synthetic_for_quick():
    assert [default_data(t) for t in TASK_NAMES] == ["mnist5k", "mnist5k", "synthetic", "mnist5k",
                                                     "synthetic"]
    assert {default_data(t, quick=True) for t in TASK_NAMES} == {"synthetic"}
    ae, cnn = build_task("autoencoder", size=40), build_task("cnn", size=40)
    assert ae.x_train.shape == (40, 784) and ae.data == "mnist5k"
    assert "784-256-128-64-16-64-128-256-784" in ae.description
    assert cnn.x_train.shape == (40, 1, 28, 28) and len(cnn.net.blocks) == 3
    with pytest.raises(ValueError, match="4000"):
        build_task("cnn", size=4001)


@pytest.mark.parametrize("kwargs, word", [
    ({"name": "mlp"}, "task"),
    ({"name": "cnn", "data": "imagenet"}, "data"),
    ({"name": "gcn", "data": "mnist", "data_dir": "."}, "does not fit"),
    ({"name": "cnn", "data": "cifar10"}, "data_dir"),
    ({"name": "cnn", "data_dir": "."}, "data_dir"),
    ({"name": "cnn", "data": "mnist5k", "data_dir": "."}, "data_dir"),
    ({"name": "cnn", "size": 3}, "size"),
])
def test_task_errors_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        build_task(**kwargs)


def test_real_data_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_task("cnn", data="mnist", data_dir=tmp_path)


def test_build_optimizer_from_the_registry():
    assert build_optimizer("sgd", 0.1) == SGD(lr=0.1, momentum=0.9)
    assert isinstance(build_optimizer("adamw", 1e-3), AdamW)
    assert build_optimizer("sgd-ls") == LayerwiseStepSize(SGD(momentum=0.9))
    assert build_optimizer("adamw-ls").base == AdamW()
    assert build_optimizer("gd-ls") == GDLS()  # GDLS is a factory of a configured LayerwiseStepSize
    with pytest.raises(ValueError, match="lr"):
        build_optimizer("sgd")
    with pytest.raises(ValueError, match="lr"):
        build_optimizer("sgd", -1.0)
    with pytest.raises(ValueError, match="lr"):
        build_optimizer("sgd-ls", 0.1)
    with pytest.raises(ValueError, match="optimizer"):
        build_optimizer("lbfgs", 0.1)
    with pytest.raises(ValueError, match="options"):
        build_optimizer("sgd", 0.1, {"scale": 0.5})
    with pytest.raises(ValueError, match="ema"):
        build_optimizer("gd-ls", None, {"ema": 0.5})
    tuned = build_optimizer("adamw-ls", options={"scale": 0.5, "ema": 0.0})
    assert (tuned.scale, tuned.ema, tuned.base) == (0.5, 0.0, AdamW())
    assert build_optimizer("gd-ls", options={"scale": 0.25}).scale == 0.25


def test_every_tuned_method_has_a_grid_for_every_task():
    for m in METHODS.values():
        if m.tuned:
            assert set(m.lr_grid) == set(TASK_NAMES), m.name
            for grid in m.lr_grid.values():
                assert len(grid) >= 3 and list(grid) == sorted(grid)
        assert m.grid("cnn", quick=True) == ((m.lr_grid["cnn"][len(m.lr_grid["cnn"]) // 2],)
                                             if m.tuned else (None,))


def test_adding_a_method_is_one_entry(monkeypatch):
    monkeypatch.setattr(methods_mod, "METHODS", dict(METHODS))
    import minilayerlr.experiments.compare as compare_mod
    monkeypatch.setattr(compare_mod, "get_method", methods_mod.get_method)
    from minilayerlr.experiments import tasks as tasks_mod
    for t in TASK_NAMES:  # register files the grids into the task records: restored after the test
        monkeypatch.setitem(tasks_mod.TASKS, t, tasks_mod.TASKS[t])
    register(Method("plain-sgd", "SGD", lambda lr, o, n: SGD(lr=lr), tuned=True),
             lr_grid={t: (0.01, 0.1, 1.0) for t in TASK_NAMES})
    assert build_optimizer("plain-sgd", 0.1) == SGD(lr=0.1)
    task = build_task("gcn", size=60)
    entries = lineup(task, ["sgd", "plain-sgd", "gd-ls"], quick=False, ls_options={}, ablation=False)
    assert [e["label"] for e in entries] == ["SGD-m", "SGD", "GD-LS"]
    assert entries[1]["grid"] == [0.01, 0.1, 1.0]
    # full-batch methods run only where the task is full batch
    cnn = build_task("cnn", size=40)
    assert [e["label"] for e in lineup(cnn, ["sgd", "gd-ls"], False, {}, False)] == ["SGD-m"]
    with pytest.raises(ValueError, match="already"):
        register(Method("sgd", "x", lambda lr, o, n: None, tuned=False))
