"""Every bad argument and missing or corrupt file of ``check``, ``compare``, ``train`` and
``bench``, through a real ``python -m minilayerlr.cli`` process: a non-zero exit, exactly
one line on stderr naming the fault, and no traceback (docs/design.md, "Checks at the boundary").

Every case runs in-process through ``cli.main`` (cheap), and a sample of each
command also through a real process (each costs an interpreter start, about a
second of CPU); those start at once and are awaited together.
"""
import subprocess
import sys

import pytest

from minilayerlr import cli

#: the cases that also run as a real process: at least one per command and kind of fault
IN_A_PROCESS = ["top-level unknown command", "check bad seed", "check negative seed",
                "compare missing mnist", "compare unwritable out", "train inf lr",
                "train junk resume", "train missing cora", "bench zero repeat", "bench unwritable json"]


def _cases(tmp):
    empty = tmp / "empty"
    empty.mkdir()
    junk = tmp / "junk.npz"
    junk.write_bytes(b"definitely not a zip archive")
    truncated = tmp / "truncated.npz"
    truncated.write_bytes(b"PK\x03\x04" + b"\0" * 20)
    quick_cnn = ["train", "--task", "cnn", "--optimizer", "sgd-ls", "--quick", "--no-progress"]
    notes = tmp / "notes.npz"
    notes.write_text("my notes")
    return {
        # command line -> a word the one line must contain
        "top-level nothing": ([], "COMMAND"),
        "top-level unknown command": (["bogus"], "bogus"),
        "check bad seed": (["check", "--seed", "abc"], "--seed"),
        "check negative seed": (["check", "--seed", "-1"], "--seed"),
        "check unknown flag": (["check", "--nope"], "--nope"),
        "compare unknown task": (["compare", "--task", "resnet"], "--task"),
        "compare zero epochs": (["compare", "--epochs", "0"], "--epochs"),
        "compare non-int epochs": (["compare", "--epochs", "2.5"], "--epochs"),
        "compare nan ema": (["compare", "--ls-ema", "nan"], "--ls-ema"),
        "compare inf scale": (["compare", "--ls-scale", "inf"], "--ls-scale"),
        "compare small size": (["compare", "--size", "3"], "--size"),
        "compare gd-ls denominator": (["compare", "--task", "gcn", "--optimizers", "gd-ls",
                                       "--ls-denominator", "abs", "--out", str(tmp / "gd")],
                                      "--ls-denominator"),
        "train gd-ls denominator": (["train", "--task", "gcn", "--optimizer", "gd-ls", "--quick",
                                     "--ls-denominator", "abs"], "--ls-denominator"),
        "compare missing mnist": (["compare", "--data", "mnist", "--task", "cnn", "--data-dir", str(empty)],
                                  "missing data file"),
        "compare data-dir not a folder": (["compare", "--data", "cifar10", "--task", "cnn", "--data-dir",
                                           str(junk)], "--data-dir"),
        "compare unwritable out": (["compare", "--task", "gcn", "--out", "/proc/no/such"], "--out"),
        "train no optimizer": (["train", "--task", "cnn"], "--optimizer"),
        "train unknown optimizer": (["train", "--task", "cnn", "--optimizer", "lbfgs"], "--optimizer"),
        "train inf lr": (["train", "--task", "cnn", "--optimizer", "sgd", "--lr", "inf"], "--lr"),
        "train missing lr": (["train", "--task", "cnn", "--optimizer", "adamw"], "--lr"),
        "train negative seed": (quick_cnn + ["--seed", "-4"], "--seed"),
        "train zero batch": (quick_cnn + ["--batch-size", "0"], "--batch-size"),
        "train missing cora": (["train", "--task", "gcn", "--optimizer", "sgd-ls", "--data", "cora",
                                "--data-dir", str(empty)], "missing data file"),
        "train missing resume": (quick_cnn + ["--resume", str(tmp / "nope.npz")], "--resume"),
        "train junk resume": (quick_cnn + ["--resume", str(junk)], "not a readable"),
        "train truncated resume": (quick_cnn + ["--resume", str(truncated)], "not a readable"),
        "train checkpoint is a folder": (quick_cnn + ["--checkpoint", str(empty)], "--checkpoint"),
        "train unwritable out": (quick_cnn + ["--out", "/proc/no/such"], "--out"),
        "train checkpoint over a file": (quick_cnn + ["--checkpoint", str(notes)], "--overwrite"),
        "train overwrite alone": (quick_cnn + ["--overwrite"], "--overwrite"),
        "bench unknown task": (["bench", "--task", "nope"], "--task"),
        "bench zero repeat": (["bench", "--repeat", "0"], "--repeat"),
        "bench bad batch": (["bench", "--batch-size", "x"], "--batch-size"),
        "bench negative seed": (["bench", "--seed", "-1"], "--seed"),
        "bench unwritable json": (["bench", "--json", "/proc/no/such/b.json"], "--json"),
    }


def _failure(name, word, code, err):
    lines = err.strip().splitlines()
    ok = (code not in (0, None) and len(lines) == 1 and "Traceback" not in err
          and word in lines[0] and lines[0].startswith("minilayerlr"))
    return None if ok else f"{name}: exit {code}, stderr {err!r}"


def test_every_bad_command_line_in_process(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    failures = []
    for name, (args, word) in sorted(_cases(tmp_path).items()):
        try:
            code = cli.main(args)
        except SystemExit as stop:  # argparse's syntax errors
            code = stop.code
        failures.append(_failure(name, word, code, capsys.readouterr().err))
    assert not any(failures), "\n".join(f for f in failures if f)
    assert not (tmp_path / "gd").exists()  # a refused value leaves no folder behind


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    cases = {name: case for name, case in _cases(tmp).items() if name in IN_A_PROCESS}
    procs = {name: subprocess.Popen([sys.executable, "-m", "minilayerlr.cli"] + args, cwd=tmp,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (args, _) in cases.items()}
    results = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hang is a failure
            proc.kill()
            out, err = proc.communicate()
        results[name] = (cases[name], proc.returncode, err)
    return results


def test_bad_command_lines_in_a_real_process(outcomes):
    assert len(outcomes) == len(IN_A_PROCESS)
    failures = [_failure(name, word, code, err)
                for name, ((args, word), code, err) in sorted(outcomes.items())]
    assert not any(failures), "\n".join(f for f in failures if f)


def test_train_overwrite_replaces_only_when_asked(tmp_path, capsys):
    """--checkpoint refuses an unrelated file (untouched) and --overwrite lets it be replaced."""
    from minilayerlr.training.checkpoint import load_checkpoint
    notes = tmp_path / "notes.npz"
    notes.write_text("my notes")
    args = ["train", "--task", "gcn", "--optimizer", "sgd-ls", "--quick", "--epochs", "1",
            "--no-progress", "--checkpoint", str(notes)]
    assert cli.main(args) == 2 and notes.read_text() == "my notes"
    assert "pass --overwrite" in capsys.readouterr().err
    assert cli.main(args + ["--overwrite"]) == 0
    assert load_checkpoint(notes)["epoch"] == 1
    assert cli.main(args) == 2  # now this run's own checkpoint: refused again when starting afresh
    assert "resume from it" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--lr", "-1"], ["--epochs", "0"], ["--size", "3"]])
def test_train_refusing_a_value_leaves_no_folder_behind(tmp_path, capsys, bad):
    """The folder --out made for the run goes when the library refuses a value; one that
    existed before stays."""
    new, old = tmp_path / "new", tmp_path / "old"
    old.mkdir()
    for out in (new, old):
        args = ["train", "--task", "cnn", "--optimizer", "sgd", "--lr", "0.1", "--quick",
                "--no-progress", "--out", str(out)] + bad
        assert cli.main(args) == 2
        assert bad[0] in capsys.readouterr().err
    assert not new.exists() and old.is_dir()
