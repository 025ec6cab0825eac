"""Hostile pass, third round: sizes, damaged comparison folders, empty values (issue 20, classes 4-6).

Sizes that cannot fit or finish are refused up front with the estimate;
``compare --resume`` reads its folder against a schema and names the file
and the field; empty values and line-ups with nothing to run are refused.
Every command-line probe must end with exit 2 and one line naming what to fix.
"""
import gzip
import json
import os
import shutil
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from minilayerlr import cli
from minilayerlr.errors import UserError

TRAIN = ["train", "--task", "gcn", "--optimizer", "sgd-ls", "--quick", "--size", "60",
         "--no-progress"]
COMPARE = ["compare", "--task", "gcn", "--size", "60", "--optimizers", "sgd-ls", "--no-progress",
           "--no-stability"]


from helpers_probes import _deadline, _refused  # noqa: F401 (_deadline: autouse fixture)


@pytest.fixture
def no_work(monkeypatch):
    """Any run or bench that starts fails the probe: refusals come first.

    A run of ``train`` starts at its optimizer's ``init``, after ``train`` has checked
    its arguments (it is the boundary that refuses epochs whose history cannot fit).
    """
    from minilayerlr.experiments import bench, compare
    from minilayerlr.experiments.cost import CountingOptimizer

    def started(*args, **kwargs):
        raise AssertionError("work started before the refusal")
    for module, name in ((compare, "run_one"), (CountingOptimizer, "init"), (bench, "run_bench")):
        monkeypatch.setattr(module, name, started)


# -- class 4: resource bounds -----------------------------------------------------------

@pytest.mark.parametrize("argv, flag", [
    (COMPARE + ["--seeds", "100000000000"], "--seeds"),
    (COMPARE + ["--seeds", "10000000"], "--seeds"),
    (COMPARE + ["--seeds", "2", "--epochs", str(10 ** 20)], "--epochs"),
    (COMPARE + ["--epochs", str(10 ** 12)], "--epochs"),
    (TRAIN + ["--epochs", str(10 ** 15)], "--epochs"),
    (TRAIN + ["--epochs", str(10 ** 20)], "--epochs"),
    (["bench", "--task", "gcn", "--repeat", str(10 ** 14)], "--repeat"),
    (["bench", "--task", "gcn", "--repeat", str(10 ** 9)], "--repeat"),
])
def test_c4_sizes_that_cannot_finish_or_fit_are_refused_up_front(capsys, no_work, argv, flag):
    err = _refused(capsys, argv, flag)
    assert "GB" in err or "days" in err, err  # the estimate is shown


def test_c4_library_compare_and_train_refuse_before_any_work(tmp_path, no_work):
    import minilayerlr as mll
    from minilayerlr.experiments import run_compare
    with pytest.raises(UserError, match="^seeds: .*(days|GB)"):
        run_compare(["gcn"], out=tmp_path, methods=["sgd-ls"], seeds=range(10 ** 11), size=60)
    net = mll.Sequential([mll.Dense(3, 2)], loss=mll.MeanSquaredError())
    with pytest.raises(UserError, match="^epochs: .*GB"):
        mll.train(net, net.init(0), mll.optim.SGD(lr=0.1), np.ones((4, 3)), np.zeros((4, 2)),
                  epochs=10 ** 15, batch_size=1)


def _idx_header(shape, code=0x08):
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(">" + "I" * len(shape), *shape)


def test_c4_idx_gz_declaring_millions_of_images_is_refused_before_inflating(tmp_path):
    from minilayerlr.data.loaders import read_idx
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_header((8_000_000, 28, 28)) + b"\0" * 1000))
    with pytest.raises(UserError, match=rf"^{path}: .*GB"):
        read_idx(path)


def test_c4_sparse_idx_file_of_millions_of_images_is_refused_before_reading(tmp_path):
    from minilayerlr.data.loaders import read_idx
    path = tmp_path / "train-images-idx3-ubyte"
    header = _idx_header((8_000_000, 28, 28))
    path.write_bytes(header)
    os.truncate(path, len(header) + 8_000_000 * 28 * 28)  # sparse: no disk used
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match=rf"^{path}: .*GB"):
            read_idx(path)
        assert tracemalloc.get_traced_memory()[1] < 50e6
    finally:
        tracemalloc.stop()


def test_c4_sparse_cifar_file_is_refused_before_reading(tmp_path):
    from minilayerlr.data import load_cifar10
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(b"")
    os.truncate(path, 2_000_000 * 3073)
    with pytest.raises(UserError, match="data_batch_1.bin: .*GB"):
        load_cifar10(tmp_path)


def test_c4_gzip_bomb_is_never_inflated_beyond_what_the_header_declares(tmp_path):
    from minilayerlr.data.loaders import read_idx
    path = tmp_path / "train-images-idx3-ubyte.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    chunk = b"\0" * 2 ** 20
    with open(path, "wb") as f:
        f.write(compressor.compress(_idx_header((10, 28, 28))))
        for _ in range(80):  # 80 MB of zeros in ~80 KB
            f.write(compressor.compress(chunk))
        f.write(compressor.flush())
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="trailing bytes"):
            read_idx(path)
        assert tracemalloc.get_traced_memory()[1] < 50e6
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def big():
    import minilayerlr as mll
    net = mll.Sequential([mll.Dense(1000, 2000), mll.Tanh(), mll.Dense(2000, 2)],
                         loss=mll.SoftmaxCrossEntropy())
    params = net.init(0)
    x = np.random.default_rng(0).standard_normal((2, 1000))
    return net, params, net.evaluate(params, x, np.array([0, 1]))


@pytest.mark.parametrize("call", ["hessian", "gauss_newton", "block_hessian"])
def test_c4_dense_hessians_without_max_size_are_refused_with_the_estimate(big, call):
    _, _, ev = big
    with pytest.raises(UserError, match=r"^max_size: .*\d+x\d+.*GB"):
        if call == "block_hessian":
            ev.block_hessian(0, max_size=None)
        else:
            getattr(ev, call)(max_size=None)


@pytest.mark.parametrize("call", ["evaluate", "loss_value", "forward"])
def test_c4_a_batch_that_cannot_fit_is_refused_naming_x(call):
    import minilayerlr as mll
    net = mll.Sequential([mll.Dense(10, 1_000_000)], loss=mll.MeanSquaredError())
    params = [{"W": np.zeros((10, 1_000_000)), "b": np.zeros(1_000_000)}]
    x = np.zeros((100_000, 10))
    with pytest.raises(UserError, match=r"^x: .*100000 examples.*GB"):
        if call == "forward":
            net.forward(params, x)
        else:
            getattr(net, call)(params, x, np.zeros((100_000, 1_000_000), dtype=np.float32)[:0]
                               if False else np.broadcast_to(np.float64(0), (100_000, 1_000_000)))


@pytest.mark.parametrize("command", ["train", "compare"])
def test_c4_any_remaining_memory_error_is_one_line(capsys, monkeypatch, tmp_path, command):
    from minilayerlr.experiments import compare, runs

    def exhausted(*args, **kwargs):
        raise MemoryError()
    monkeypatch.setattr(runs, "train", exhausted)
    monkeypatch.setattr(compare, "run_one", exhausted)
    argv = (TRAIN + ["--epochs", "1"]) if command == "train" else (
        COMPARE + ["--epochs", "1", "--out", str(tmp_path / "c")])
    _refused(capsys, argv, "out of memory")


# -- class 5: damaged --resume folders --------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny comparison (with a stability measurement) to damage copies of."""
    out = tmp_path_factory.mktemp("finished") / "cmp"
    assert cli.main(["compare", "--task", "gcn", "--size", "60", "--optimizers", "sgd-ls",
                     "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.fixture
def folder(finished, tmp_path):
    copy = tmp_path / "cmp"
    shutil.copytree(finished, copy)
    return copy


def _edit(path: Path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(key, value):
    return lambda d: d.__setitem__(key, value)


def _drop(key):
    return lambda d: d.pop(key)


CONFIG_DAMAGE = {
    "tasks a string": (_set("tasks", "gcn"), "tasks"),
    "tasks empty": (_set("tasks", []), "tasks"),
    "task unknown": (_set("tasks", ["mnist"]), "tasks[0]"),
    "seed a fraction": (_set("seeds", [0.5]), "seeds[0]"),
    "seed a string": (_set("seeds", ["0"]), "seeds[0]"),
    "seed a bool": (_set("seeds", [True]), "seeds[0]"),
    "seed negative": (_set("seeds", [-1]), "seeds[0]"),
    "seeds empty": (_set("seeds", []), "seeds"),
    "seeds missing": (_drop("seeds"), "seeds"),
    "quick a string": (_set("quick", "no"), "quick"),
    "epochs zero": (_set("epochs", 0), "epochs"),
    "epochs a string": (_set("epochs", "1"), "epochs"),
    "size too small": (_set("size", 5), "size"),
    "methods a string": (_set("methods", "sgd-ls"), "methods"),
    "method unknown": (_set("methods", ["nope"]), "methods[0]"),
    "data unknown": (_set("data", "imagenet"), "data"),
    "ls_options a list": (_set("ls_options", []), "ls_options"),
    "ls_option a string": (_set("ls_options", {"scale": "big"}), "ls_options.scale"),
    "stability a string": (_set("stability", "yes"), "stability"),
    "ablation a number": (_set("ablation", 1), "ablation"),
}


@pytest.mark.parametrize("damage", list(CONFIG_DAMAGE))
def test_c5_damaged_config_names_file_and_field(folder, capsys, no_work, damage):
    change, field = CONFIG_DAMAGE[damage]
    _edit(folder / "config.json", change)
    _refused(capsys, ["compare", "--resume", str(folder)], "--resume", "config.json", field)


@pytest.mark.parametrize("text, needle", [
    ('{"tasks": ["gcn"], "seeds": [0', "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    ("[1, 2]", "expected an object"),
    ("", "not valid JSON"),
    (b"\xff\xfe\x00", "cannot read"),
])
def test_c5_unreadable_config_names_the_file(folder, capsys, no_work, text, needle):
    path = folder / "config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    _refused(capsys, ["compare", "--resume", str(folder)], "--resume", "config.json", needle)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_c5_config_that_is_not_a_file_is_refused(folder, capsys, no_work, kind):
    path = folder / "config.json"
    path.unlink()
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    _refused(capsys, ["compare", "--resume", str(folder)], "--resume", "config.json")


@pytest.mark.parametrize("text, needle", [
    ('{"gcn": {"evaluate": 1.0', "not valid JSON"),
    ('{"gcn": {"hvp": "x"}}', "gcn.hvp"),
    ('{"gcn": {"hvp": -1}}', "gcn.hvp"),
    ('{"gcn": []}', "gcn"),
    ("[]", "expected an object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
])
def test_c5_damaged_prices_name_the_file(folder, capsys, no_work, text, needle):
    (folder / "prices.json").write_text(text)
    _refused(capsys, ["compare", "--resume", str(folder)], "prices.json", needle)


def _record(folder: Path) -> Path:
    (path,) = (folder / "runs").glob("*.json")
    return path


def _stability_without_product(d):
    d["stability"][0].pop("product")


RECORD_DAMAGE = {
    "no history": (_drop("history"), "history: missing"),
    "stability without product": (_stability_without_product, "stability[0].product"),
    "stability a dict": (_set("stability", {}), "stability"),
    "train_loss a string": (lambda d: d["history"].__setitem__("train_loss", "x"),
                            "history.train_loss"),
    "history without step_sizes": (lambda d: d["history"].pop("step_sizes"),
                                   "history.step_sizes"),
    "steps a string": (_set("steps", "3"), "steps"),
    "final loss a string": (_set("final_train_loss", "nan"), "final_train_loss"),
    "oracle calls a string": (_set("oracle_calls", "x"), "oracle_calls"),
    "stop_reason a number": (_set("stop_reason", 3), "stop_reason"),
    "per-epoch lists of two lengths": (lambda d: d["history"]["time"].append(1.0), "history"),
}


@pytest.mark.parametrize("damage", list(RECORD_DAMAGE))
def test_c5_damaged_run_record_names_file_and_field(folder, capsys, no_work, damage):
    change, field = RECORD_DAMAGE[damage]
    path = _record(folder)
    _edit(path, change)
    _refused(capsys, ["compare", "--resume", str(folder)], path.name, field)


@pytest.mark.parametrize("flags", [["--seed", "5"], ["--seeds", "2"], ["--epochs", "3"],
                                   ["--quick"], ["--size", "80"], ["--task", "gcn"],
                                   ["--optimizers", "sgd"], ["--ablation"], ["--ls-scale", "0.5"],
                                   ["--no-stability"], ["--overwrite"], ["--data", "synthetic"]])
def test_c5_flags_that_would_change_a_resumed_comparison_are_refused(folder, capsys, no_work,
                                                                     flags):
    _refused(capsys, ["compare", "--resume", str(folder)] + flags, "--resume", flags[0])


def test_c5_an_intact_folder_resumes_without_running_anything(folder, capsys, no_work):
    assert cli.main(["compare", "--resume", str(folder), "--no-progress"]) == 0


# -- class 6: empty and degenerate values -----------------------------------------------

@pytest.mark.parametrize("argv, flag", [
    (COMPARE + ["--out", ""], "--out"),
    (COMPARE + ["--out", "  "], "--out"),
    (["compare", "--resume", ""], "--resume"),
    (COMPARE + ["--data-dir", ""], "--data-dir"),
    (["compare", "--task", "gcn", "--optimizers", ""], "--optimizers"),
    (TRAIN + ["--out", ""], "--out"),
    (TRAIN + ["--checkpoint", ""], "--checkpoint"),
    (TRAIN + ["--resume", ""], "--resume"),
    (["bench", "--task", "gcn", "--json", ""], "--json"),
])
def test_c6_empty_values_are_refused(tmp_path, monkeypatch, capsys, no_work, argv, flag):
    monkeypatch.chdir(tmp_path)  # an empty path must never mean "here"
    _refused(capsys, argv, flag, "empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("task", ["cnn", "autoencoder"])
def test_c6_a_line_up_with_nothing_to_run_is_refused(tmp_path, capsys, no_work, task):
    _refused(capsys, ["compare", "--task", task, "--optimizers", "gd-ls", "--quick",
                      "--out", str(tmp_path / "c")], "--optimizers", "nothing to run")
    from minilayerlr.experiments import run_compare
    with pytest.raises(UserError, match="^methods: .*nothing to run"):
        run_compare([task], out=tmp_path / "d", methods=["gd-ls"], quick=True)


def test_c6_empty_paths_in_the_library(tmp_path, monkeypatch):
    from minilayerlr.paths import check_output_dir, check_output_file
    monkeypatch.chdir(tmp_path)
    for check in (check_output_file, check_output_dir):
        with pytest.raises(UserError, match="^out: an empty path"):
            check("out", "")


def _mnist(root: Path, labels, shape=(28, 28)):
    n = len(labels)
    for prefix in ("train", "t10k"):
        images = np.zeros((n,) + shape, dtype=np.uint8)
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(_idx_header(images.shape) + images.tobytes())
        lab = np.asarray(labels, dtype=np.uint8)
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx_header(lab.shape) + lab.tobytes())


def test_c6_a_training_file_of_one_class_is_refused_naming_it(tmp_path, capsys):
    from minilayerlr.data import load_dataset
    _mnist(tmp_path, [3] * 40)
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte: every training label is 3"):
        load_dataset("mnist", data_dir=tmp_path)
    _refused(capsys, ["train", "--task", "cnn", "--optimizer", "sgd-ls", "--data", "mnist",
                      "--data-dir", str(tmp_path), "--epochs", "1", "--no-progress"],
             "train-labels-idx1-ubyte")


def test_c6_zero_by_zero_images_are_refused_naming_the_file(tmp_path):
    from minilayerlr.data import load_mnist
    _mnist(tmp_path, [0, 1, 2], shape=(0, 0))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: images of 0x0 pixels"):
        load_mnist(tmp_path)


def test_c6_cifar_and_cora_of_one_class_are_refused_naming_the_file(tmp_path):
    from minilayerlr.data import load_dataset
    records = np.zeros((5, 3073), dtype=np.uint8)  # label byte 0 everywhere
    for name in [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]:
        (tmp_path / name).write_bytes(records.tobytes())
    with pytest.raises(ValueError, match="data_batch_1.bin: every training label is 0"):
        load_dataset("cifar10", data_dir=tmp_path)
    cora = tmp_path / "cora"
    cora.mkdir()
    (cora / "cora.content").write_text("".join(f"p{i} 0 1 Theory\n" for i in range(30)))
    (cora / "cora.cites").write_text("p0 p1\n")
    with pytest.raises(ValueError, match="cora.content: every paper has the class 'Theory'"):
        load_dataset("cora", data_dir=cora)


MORE_CONFIG_DAMAGE = {
    "an unknown layer-wise option": (_set("ls_options", {"bogus": 1}), "ls_options.bogus"),
    "a negative scale": (_set("ls_options", {"scale": -1}), "scale"),
    "a seed twice": (_set("seeds", [0, 0]), "seeds"),
    "a task twice": (_set("tasks", ["gcn", "gcn"]), "tasks"),
    "a method twice": (_set("methods", ["sgd-ls", "sgd-ls"]), "methods"),
    "data that does not fit the task": (_set("data", "mnist"), "data"),
    "a size that cannot fit": (_set("size", 10 ** 10), "GB"),
    "epochs that cannot fit": (_set("epochs", 10 ** 14), "epochs"),
}


@pytest.mark.parametrize("damage", list(MORE_CONFIG_DAMAGE))
def test_c5_config_values_the_library_refuses_name_the_config(folder, capsys, no_work, damage):
    change, field = MORE_CONFIG_DAMAGE[damage]
    _edit(folder / "config.json", change)
    _refused(capsys, ["compare", "--resume", str(folder)], "--resume", "config.json", field)
