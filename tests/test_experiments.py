"""Tests of the experiment tasks and the comparison (small sizes, seconds)."""
import numpy as np
import pytest

from minilayerlr.experiments import TASK_NAMES, build_task, compare_task, make_optimizer
from minilayerlr.experiments.compare import _best, markdown_table
from minilayerlr.optim import GDLS, SGD, AdamW, LayerwiseStepSize


@pytest.mark.parametrize("name", TASK_NAMES)
def test_tasks_build_and_evaluate(name):
    task = build_task(name, size=60)
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
    assert not np.array_equal(a.x_train, build_task("cnn", size=40, seed=4).x_train)


@pytest.mark.parametrize("kwargs, word", [
    ({"name": "mlp"}, "task"),
    ({"name": "cnn", "data": "imagenet"}, "data"),
    ({"name": "gcn", "data": "mnist", "data_dir": "."}, "does not fit"),
    ({"name": "cnn", "data": "cifar10"}, "data_dir"),
    ({"name": "cnn", "data_dir": "."}, "data_dir"),
    ({"name": "cnn", "size": 3}, "size"),
])
def test_task_errors_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        build_task(**kwargs)


def test_real_data_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        build_task("cnn", data="mnist", data_dir=tmp_path)


def test_make_optimizer():
    assert make_optimizer("sgd", 0.1) == SGD(lr=0.1, momentum=0.9)
    assert isinstance(make_optimizer("adamw", 1e-3), AdamW)
    assert make_optimizer("sgd-ls") == LayerwiseStepSize(SGD(momentum=0.9))
    assert make_optimizer("adamw-ls").base == AdamW()
    assert make_optimizer("gd-ls") == GDLS()  # GDLS is a factory of a configured LayerwiseStepSize
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("sgd")
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("sgd-ls", 0.1)
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("lbfgs", 0.1)
    tuned = make_optimizer("adamw-ls", ls_options={"scale": 0.5, "ema": 0.0})
    assert (tuned.scale, tuned.ema, tuned.base) == (0.5, 0.0, AdamW())
    assert make_optimizer("gd-ls", ls_options={"scale": 0.25}).scale == 0.25


def test_compare_task_on_a_small_graph():
    task = build_task("gcn", size=60)
    task.lr_grid = {"sgd": [0.1, 1e9], "adamw": [0.01, 0.03]}
    result = compare_task(task, epochs=3, seed=0)
    keys = [r["optimizer"] for r in result["runs"]]
    assert keys == ["sgd", "sgd", "adamw", "adamw", "sgd-ls", "adamw-ls", "gd-ls"]
    for key in ("sgd", "adamw"):
        grid = [r for r in result["runs"] if r["optimizer"] == key]
        chosen = [r for r in grid if r["selected"]]
        assert len(chosen) == 1
        finished = [r for r in grid if r["stop_reason"] is None]
        assert chosen[0]["final_train_loss"] == min(r["final_train_loss"] for r in finished)
    # every run starts from the same parameters: same initial loss
    assert len({r["history"]["train_loss"][0] for r in result["runs"]}) == 1
    table = markdown_table(result)
    assert table.count("\n| ") == 6  # header + 5 selected runs
    assert "GD-LS" in table and "best of 2" in table


def test_best_ignores_diverged_runs():
    runs = [{"stop_reason": "diverged", "final_train_loss": 0.0},
            {"stop_reason": None, "final_train_loss": 2.0},
            {"stop_reason": None, "final_train_loss": 1.0}]
    assert _best(runs) is runs[2]
    assert _best(runs[:1]) is None
