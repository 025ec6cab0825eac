"""End-to-end tests of ``minilayerlr compare`` and ``minilayerlr train``."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minilayerlr import cli
from minilayerlr.experiments.tasks import TASK_NAMES


def test_compare_quick_writes_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["compare", "--quick", "--size", "60", "--epochs", "1", "--out", str(out),
                     "--no-progress"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert {"config", "versions", "tasks", "runs"} <= set(results)
    assert results["versions"]["numpy"] == np.__version__
    assert results["config"]["quick"] and results["config"]["seeds"] == [0]
    from minilayerlr.experiments import METHODS
    for task in results["tasks"]:
        labels = {e["label"] for e in task["entries"]}
        expected = {m.label for m in METHODS.values()
                    if m.in_default and m.runs_on(task["task"] == "gcn")}  # the default line-up
        assert labels == expected and {"SGD-m", "SGD-m-LS", "AdamW-LS"} <= labels, task["task"]
    assert "GD-LS" in {e["label"] for e in results["tasks"][2]["entries"]}
    # --quick: every method once
    per_task = {t["task"]: len(t["entries"]) for t in results["tasks"]}
    assert len(results["runs"]) == sum(per_task.values())
    for run in results["runs"]:
        assert run["history"]["epoch"] == [0, 1] and run["steps"] >= 1
        assert len(run["grad_equivalents"]) == 2 and run["grad_equivalents"][1] >= 1.0
    assert len(list((out / "runs").glob("*.json"))) == len(results["runs"])
    with open(out / "results.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(results["runs"])
    for name in TASK_NAMES:
        for kind in ("curves", "step_sizes", "stability"):
            png = out / f"{name}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert printed.count("| SGD-m-LS | none |") == len(TASK_NAMES) and "| GD-LS | none |" in printed
    assert f"Command: `minilayerlr compare --quick --size 60 --epochs 1 --out {out}" in printed
    assert "better" in printed or "tie" in printed or "worse" in printed


TINY = ["compare", "--task", "gcn", "--size", "60", "--epochs", "1", "--optimizers", "sgd,sgd-ls",
        "--no-progress", "--no-stability"]


def test_compare_interrupted_keeps_finished_runs_and_resumes(tmp_path, monkeypatch, capsys):
    from minilayerlr.experiments import compare as compare_mod
    real, calls = compare_mod.run_one, []

    def interrupted_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(compare_mod, "run_one", interrupted_after_one)
    out = tmp_path / "cut"
    assert cli.main(TINY + ["--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("compare: 1/")  # the progress line, then one line
    assert err[1].startswith("minilayerlr compare: interrupted; 1 finished run(s) kept")
    assert f"--resume {out}" in err[1]
    kept = list((out / "runs").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["history"]["epoch"] == [0, 1]
    monkeypatch.undo()
    assert cli.main(["compare", "--resume", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "(1 reused)" in err and "done before" in err
    assert (out / "results.md").exists()


def test_ctrl_c_while_starting_is_one_line(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["compare", "--quick"]) == 130
    assert capsys.readouterr().err == "minilayerlr: interrupted while starting\n"


#: what ``find_spec`` raises for ``minilayerlr.model`` in the middle of ``import minilayerlr``
_INTERRUPTS = {
    # a KeyboardInterrupt raised by the import system
    "plain": "            raise KeyboardInterrupt\n",
    # Ctrl-C while a compiled module initialises (seen with scipy.optimize's HiGHS wrapper)
    # reaches the top as "ImportError: initialization failed" caused by the KeyboardInterrupt
    "inside an extension": ("            try:\n"
                            "                raise KeyboardInterrupt\n"
                            "            except KeyboardInterrupt as e:\n"
                            "                raise ImportError('initialization failed') from e\n"),
}


@pytest.mark.parametrize("how", list(_INTERRUPTS))
def test_ctrl_c_while_importing_the_package_is_one_line(how):
    code = ("import sys\n"
            "class Stop:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'minilayerlr.model':\n"
            + _INTERRUPTS[how] +
            "sys.meta_path.insert(0, Stop())\n"
            "import minilayerlr\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stderr == "minilayerlr: interrupted while starting\n"
    assert proc.returncode in (130, -2)  # exits as interrupted by SIGINT


def test_train_interrupted_is_one_line(tmp_path, monkeypatch, capsys):
    from minilayerlr.experiments import runs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(runs, "train", interrupted)
    code = cli.main(["train", "--task", "gcn", "--optimizer", "sgd-ls", "--size", "60",
                     "--epochs", "1", "--out", str(tmp_path / "o")])
    assert code == 130
    assert capsys.readouterr().err.strip() == "minilayerlr train: interrupted"


@pytest.mark.parametrize("writes", [False, True], ids=["before-epoch-1", "after-an-epoch"])
def test_train_interrupted_says_whether_the_checkpoint_holds_this_run(tmp_path, monkeypatch, capsys, writes):
    from minilayerlr.experiments import runs
    ck = tmp_path / "ck.npz"

    def interrupted(*args, checkpoint=None, **kwargs):
        if writes:
            Path(checkpoint).write_bytes(b"an epoch")
        raise KeyboardInterrupt
    monkeypatch.setattr(runs, "train", interrupted)
    code = cli.main(["train", "--task", "gcn", "--optimizer", "sgd-ls", "--size", "60",
                     "--epochs", "1", "--checkpoint", str(ck)])
    assert code == 130
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert ("the last finished epoch is in" in err) == writes
    assert ("nothing was saved" in err) == (not writes)


@pytest.mark.parametrize("args, word", [
    (["compare", "--out", "{blocker}"], "not a folder"),
    (["compare", "--out", "{blocker}/sub"], "--out"),
    (["train", "--task", "gcn", "--optimizer", "sgd-ls", "--out", "{blocker}"], "not a folder"),
    (["train", "--task", "gcn", "--optimizer", "sgd-ls", "--checkpoint", "{tmp}"], "is a folder"),
    (["train", "--task", "gcn", "--optimizer", "sgd-ls", "--checkpoint", "{blocker}/ck.npz"],
     "not a folder"),
])
def test_outputs_are_checked_before_any_work(tmp_path, monkeypatch, capsys, args, word):
    from minilayerlr.experiments import tasks
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    monkeypatch.setattr(tasks, "build_task", lambda *a, **k: pytest.fail("work started"))
    args = [a.format(blocker=blocker, tmp=tmp_path) for a in args]
    assert cli.main(args) == 2
    _check_one_line(capsys.readouterr().err, args[0], word)


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
    (["compare", "--optimizers", "sgd,lbfgs"], "lbfgs"),
    (["compare", "--seeds", "0"], "--seeds"),
    (["compare", "--ablation", "--optimizers", "sgd"], "--optimizers"),
    (["compare", "--resume", "/nonexistent/folder"], "--resume"),
    (["compare", "--resume", ".", "--seeds", "3"], "--seeds"),
    (["compare", "--task", "gcn", "--size", "1000000000000"], "memory"),
    (["compare", "--task", "gcn", "--size", "9223372036854775807"], "memory"),
    (["compare", "--task", "cnn", "--data", "synthetic", "--size", "9223372036854775807"], "memory"),
    (["compare", "--task", "cnn", "--size", "5000"], "4000"),
    (["train", "--task", "gcn", "--optimizer", "sgd-ls", "--size", "1000000000000"], "memory"),
    (["train", "--task", "cnn", "--optimizer", "sgd-ls", "--batch-size", "1000000000000"],
     "--batch-size"),
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


def test_train_writes_the_record_compare_writes(tmp_path, capsys):
    from minilayerlr.experiments import build_task, run_one
    out = tmp_path / "o"
    assert cli.main(["train", "--task", "gcn", "--optimizer", "sgd", "--lr", "1", "--size", "60",
                     "--epochs", "2", "--out", str(out), "--no-progress"]) == 0
    written = json.loads((out / "run.json").read_text())
    record = run_one(build_task("gcn", size=60), "sgd", 1.0, seed=0, epochs=2)
    record.pop("_result")
    assert set(written) == set(record)
    for key in ("key", "spec", "label", "final_train_loss", "steps", "oracle_calls", "history"):
        if key == "history":
            written[key].pop("time"), record[key].pop("time")
        assert written[key] == record[key], key
    assert (out / "gcn_curves.png").exists()
