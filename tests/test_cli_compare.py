"""End-to-end tests of ``minilayerlr compare`` and ``minilayerlr train``."""
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from minilayerlr import cli


def test_compare_quick_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["compare", "--quick", "--size", "60", "--epochs", "1", "--out", str(out),
                     "--no-progress"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert {"config", "versions", "tasks"} <= set(results)
    assert results["versions"]["numpy"] == np.__version__
    for task in results["tasks"]:
        keys = {r["optimizer"] for r in task["runs"]}
        expected = {"sgd", "adamw", "sgd-ls", "adamw-ls"} | ({"gd-ls"} if task["task"] == "gcn" else set())
        assert keys == expected, task["task"]
        grid = [r for r in task["runs"] if r["optimizer"] == "sgd"]
        assert len(grid) == len(task["lr_grid"]["sgd"]) == 3
        for run in task["runs"]:
            assert run["history"]["epoch"] == [0, 1] and run["steps"] >= 1
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(len(t["runs"]) for t in results["tasks"])
    for name in ("autoencoder", "cnn", "gcn"):
        for kind in ("curves", "step_sizes"):
            png = out / f"{name}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert printed.count("| SGD-m-LS |") == 3 and "| GD-LS |" in printed


def test_train_checkpoint_and_resume(tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    base = ["train", "--task", "cnn", "--optimizer", "sgd-ls", "--size", "40", "--no-progress"]
    assert cli.main(base + ["--epochs", "1", "--checkpoint", str(ck)]) == 0
    assert cli.main(base + ["--epochs", "2", "--resume", str(ck), "--out", str(tmp_path / "o")]) == 0
    resumed = json.loads((tmp_path / "o" / "run.json").read_text())
    assert cli.main(base + ["--epochs", "2", "--out", str(tmp_path / "p")]) == 0
    straight = json.loads((tmp_path / "p" / "run.json").read_text())
    assert resumed["history"]["train_loss"] == straight["history"]["train_loss"]
    assert resumed["history"]["step_sizes"] == straight["history"]["step_sizes"]
    assert (tmp_path / "o" / "cnn_step_sizes.png").exists()


ERRORS = [
    (["compare", "--epochs", "0"], "--epochs"),
    (["compare", "--task", "resnet"], "--task"),
    (["compare", "--data", "cora", "--task", "cnn", "--data-dir", "."], "does not fit"),
    (["compare", "--data", "mnist", "--task", "cnn"], "--data-dir"),
    (["train", "--task", "cnn", "--optimizer", "sgd"], "--lr"),
    (["train", "--task", "gcn", "--optimizer", "gd-ls", "--lr", "0.1"], "--lr"),
    (["train", "--task", "gcn", "--optimizer", "sgd-ls", "--batch-size", "5"], "--batch-size"),
    (["train", "--task", "gcn", "--optimizer", "sgd", "--lr", "0.1", "--ls-scale", "0.5"],
     "--ls-scale"),
    (["compare", "--ls-scale", "0"], "--ls-scale"),
    (["compare", "--ls-ema", "1"], "--ls-ema"),
]


def _check_one_line(stderr, command, word):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert word in lines[0] and "Traceback" not in stderr
    assert lines[0].startswith(f"minilayerlr {command}: error:")


@pytest.mark.parametrize("args, word", ERRORS)
def test_cli_errors_are_one_line(args, word, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(cli.main(args))
    assert exit_info.value.code == 2
    _check_one_line(capsys.readouterr().err, args[0], word)


@pytest.mark.parametrize("args, word", [ERRORS[1], ERRORS[4]])
def test_cli_errors_from_a_real_process(args, word):
    # a syntax error (argparse) and a semantic one (UserError), through ``python -m``
    proc = subprocess.run([sys.executable, "-m", "minilayerlr.cli"] + args,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    _check_one_line(proc.stderr, args[0], word)
