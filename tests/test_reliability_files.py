"""Hostile pass, third round: what the commands write (issue 20, classes 1, 2, 3 and 10).

Special files are never replaced, two runs never write the same file or folder
at once, every output path is checked before the first run, a failing write
names its file, and every file written follows the umask. FIFOs, sockets and
locks are made inside each test's own temporary folder; device nodes only when
the tests run as root (skipped otherwise).
"""
import errno
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from minilayerlr import cli
from minilayerlr.errors import UserError

TRAIN = ["train", "--task", "gcn", "--optimizer", "sgd-ls", "--quick", "--size", "60",
         "--epochs", "1", "--no-progress"]
COMPARE = ["compare", "--task", "gcn", "--size", "60", "--epochs", "1", "--optimizers", "sgd-ls",
           "--no-progress", "--no-stability"]


from helpers_probes import _deadline, _refused  # noqa: F401 (_deadline: autouse fixture)


def _no_work(monkeypatch):
    """Make any training fail loudly: a refusal must come before the first run."""
    from minilayerlr.experiments import compare, runs

    def started(*args, **kwargs):
        raise AssertionError("a run started before the refusal")
    monkeypatch.setattr(compare, "run_one", started)
    monkeypatch.setattr(runs, "train", started)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(folder: Path) -> Path:
    # AF_UNIX paths are short: bind in a short temporary folder of our own
    short = Path(tempfile.mkdtemp(prefix="mll"))
    path = short / "s"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    return path


def _special(kind: str, folder: Path, name: str) -> Path:
    """A FIFO, a socket, or a symlink to one, at folder/name."""
    if kind == "fifo":
        return _fifo(folder / name)
    if kind == "socket":
        target = _socket(folder)
        (folder / name).symlink_to(target)  # the link lives in the folder; the socket beside it
        return folder / name
    if kind == "link-to-fifo":
        target = _fifo(folder / f"{name}.fifo")
        (folder / name).symlink_to(target)
        return folder / name
    raise ValueError(kind)


def _is_fifo_or_socket(path: Path) -> bool:
    mode = os.stat(path).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


# -- class 1: special files are never replaced ------------------------------------------

KINDS = ["fifo", "socket", "link-to-fifo"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("overwrite", [False, True])
def test_c1_train_checkpoint_special_file_refused(tmp_path, capsys, monkeypatch, kind, overwrite):
    target = _special(kind, tmp_path, "ck.npz")
    _no_work(monkeypatch)
    _refused(capsys, TRAIN + ["--checkpoint", str(target)] + (["--overwrite"] if overwrite else []),
             "--checkpoint")
    assert _is_fifo_or_socket(target)


@pytest.mark.parametrize("kind", KINDS)
def test_c1_bench_json_special_file_refused_before_work(tmp_path, capsys, monkeypatch, kind):
    from minilayerlr.experiments import bench

    def started(*args, **kwargs):
        raise AssertionError("bench started before the refusal")
    monkeypatch.setattr(bench, "run_bench", started)
    target = _special(kind, tmp_path, "bench.json")
    _refused(capsys, ["bench", "--task", "gcn", "--repeat", "1", "--json", str(target)], "--json")
    assert _is_fifo_or_socket(target)


@pytest.mark.parametrize("name", ["run.json", "gcn_curves.png", "gcn_step_sizes.png",
                                  "gcn_stability.png"])
def test_c1_train_out_special_file_refused_before_work(tmp_path, capsys, monkeypatch, name):
    out = tmp_path / "out"
    out.mkdir()
    target = _fifo(out / name)
    _no_work(monkeypatch)
    _refused(capsys, TRAIN + ["--out", str(out)], "--out", name)
    assert _is_fifo_or_socket(target)


@pytest.mark.parametrize("name", ["config.json", "prices.json", "results.md", "results.csv",
                                  "results.json", "gcn_curves.png", "gcn_step_sizes.png"])
def test_c1_compare_out_special_file_refused_before_work(tmp_path, capsys, monkeypatch, name):
    out = tmp_path / "out"
    out.mkdir()
    target = _fifo(out / name)
    _no_work(monkeypatch)
    err = _refused(capsys, COMPARE + ["--out", str(out), "--overwrite"], "--out", name)
    assert "FIFO" in err
    assert _is_fifo_or_socket(target)


@pytest.mark.parametrize("kind", KINDS)
def test_c1_library_writers_refuse_special_files(tmp_path, kind):
    from minilayerlr.experiments.runs import write_json
    from minilayerlr.paths import atomic_write_bytes
    target = _special(kind, tmp_path, "x.json")
    for write in (lambda: write_json(target, {"a": 1}), lambda: atomic_write_bytes(target, b"x")):
        with pytest.raises(UserError, match="not a regular file"):
            write()
        assert _is_fifo_or_socket(target)


def test_c1_library_train_checkpoint_fifo_refused_with_overwrite(tmp_path):
    import numpy as np

    import minilayerlr as mll
    net = mll.Sequential([mll.Dense(3, 2)], loss=mll.MeanSquaredError())
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    target = _fifo(tmp_path / "ck.npz")
    with pytest.raises(UserError, match="^checkpoint: .*FIFO"):
        mll.train(net, net.init(0), mll.optim.SGD(lr=0.1), x, y, epochs=1, checkpoint=target,
                  overwrite=True)
    assert _is_fifo_or_socket(target)


def test_c1_symlink_to_a_regular_file_is_written_through(tmp_path, capsys):
    real = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    real.write_bytes(b"old")
    link.symlink_to(real)
    assert cli.main(TRAIN + ["--checkpoint", str(link), "--overwrite"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes()[:4] == b"PK\x03\x04"  # the target holds the checkpoint


def test_c1_device_node_refused_when_root(tmp_path, capsys, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    _no_work(monkeypatch)
    _refused(capsys, TRAIN + ["--checkpoint", str(node), "--overwrite"], "--checkpoint",
             "character device")
    assert stat.S_ISCHR(os.stat(node).st_mode)


# -- class 2: two runs never write the same thing at once -------------------------------

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def hold():
    """hold(lock_file): another process holds that lock until the test ends."""
    procs = []

    def start(lock_file: Path):
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_c2_train_checkpoint_held_by_another_run_is_refused(tmp_path, capsys, hold):
    ck = tmp_path / "ck.npz"
    proc = hold(tmp_path / ".ck.npz.lock")
    err = _refused(capsys, TRAIN + ["--checkpoint", str(ck)], "--checkpoint", "another")
    assert str(proc.pid) in err and not ck.exists()


def test_c2_train_out_held_by_another_run_is_refused(tmp_path, capsys, hold):
    out = tmp_path / "out"
    out.mkdir()
    hold(out / ".minilayerlr.lock")
    _refused(capsys, TRAIN + ["--out", str(out)], "--out", "another")
    assert not (out / "run.json").exists()


def test_c2_compare_out_held_by_another_run_is_refused(tmp_path, capsys, monkeypatch, hold):
    out = tmp_path / "out"
    out.mkdir()
    hold(out / ".minilayerlr.lock")
    _no_work(monkeypatch)
    _refused(capsys, COMPARE + ["--out", str(out)], "--out", "another")
    assert not (out / "config.json").exists()


def test_c2_library_run_compare_and_train_respect_the_lock(tmp_path, hold):
    import numpy as np

    import minilayerlr as mll
    from minilayerlr.experiments import run_compare
    out = tmp_path / "out"
    out.mkdir()
    hold(out / ".minilayerlr.lock")
    with pytest.raises(UserError, match="^out: .*another"):
        run_compare(["gcn"], out=out, methods=["sgd-ls"], size=60, epochs=1, plots=False)
    hold(tmp_path / ".ck.npz.lock")
    net = mll.Sequential([mll.Dense(3, 2)], loss=mll.MeanSquaredError())
    with pytest.raises(UserError, match="^checkpoint: .*another"):
        mll.train(net, net.init(0), mll.optim.SGD(lr=0.1), np.ones((4, 3)), np.zeros((4, 2)),
                  epochs=1, checkpoint=tmp_path / "ck.npz")


def test_c2_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    (tmp_path / ".ck.npz.lock").write_text("999999\n")  # no process holds it
    out = tmp_path / "out"
    out.mkdir()
    (out / ".minilayerlr.lock").write_text("999999\n")
    assert cli.main(TRAIN + ["--checkpoint", str(ck), "--out", str(out)]) == 0
    assert ck.is_file() and (out / "run.json").is_file()
    # released on exit: nothing of the locks is left behind
    assert not (tmp_path / ".ck.npz.lock").exists() and not (out / ".minilayerlr.lock").exists()


def test_c2_locks_are_released_when_a_run_fails(tmp_path, capsys, monkeypatch):
    from minilayerlr.experiments import runs
    ck = tmp_path / "ck.npz"

    def broken(*args, **kwargs):
        raise ValueError("resume: something went wrong")
    monkeypatch.setattr(runs, "train", broken)
    assert cli.main(TRAIN + ["--checkpoint", str(ck), "--out", str(tmp_path)]) == 2
    monkeypatch.undo()
    assert cli.main(TRAIN + ["--checkpoint", str(ck), "--out", str(tmp_path)]) == 0


def test_c2_two_concurrent_trains_on_one_checkpoint(tmp_path):
    """Two real processes: the second is refused while the first trains."""
    ck = tmp_path / "ck.npz"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    argv = [sys.executable, "-m", "minilayerlr"] + TRAIN[:-3] + ["--epochs", "4000",
                                                                 "--checkpoint", str(ck)]
    first = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                             cwd=Path(__file__).parent.parent, env=env)
    try:
        lock = tmp_path / ".ck.npz.lock"
        for _ in range(600):
            if lock.exists() and lock.read_text().strip():
                break
            time.sleep(0.05)
        second = subprocess.run(argv, capture_output=True, text=True, env=env,
                                cwd=Path(__file__).parent.parent)
        assert second.returncode == 2, second.stderr
        assert "another minilayerlr run" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()


def _comparison(tmp_path) -> Path:
    out = tmp_path / "cmp"
    out.mkdir()
    for name in ("config.json", "prices.json"):
        (out / name).write_text("{}")
    return out


@pytest.mark.parametrize("existing", ["config.json", "results.md", "runs"])
def test_c2_compare_out_into_an_existing_comparison_is_refused(tmp_path, capsys, monkeypatch,
                                                               existing):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / existing).mkdir() if existing == "runs" else (out / existing).write_text("x")
    _no_work(monkeypatch)
    _refused(capsys, COMPARE + ["--out", str(out)], "--out", "--resume", "--overwrite")
    assert (out / existing).exists()


def test_c2_compare_overwrite_replaces_and_resume_conflicts(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert cli.main(COMPARE + ["--out", str(out)]) == 0
    assert cli.main(COMPARE + ["--out", str(out), "--overwrite"]) == 0
    capsys.readouterr()
    _refused(capsys, ["compare", "--resume", str(out), "--overwrite"], "--overwrite")


# -- class 3: no late failures ----------------------------------------------------------

@pytest.mark.parametrize("name", ["results.md", "results.csv", "results.json", "config.json",
                                  "prices.json", "gcn_curves.png", "gcn_step_sizes.png"])
def test_c3_compare_output_folder_in_the_way_refused_before_any_run(tmp_path, capsys, monkeypatch,
                                                                    name):
    out = tmp_path / "out"
    (out / name).mkdir(parents=True)
    _no_work(monkeypatch)
    _refused(capsys, COMPARE + ["--out", str(out), "--overwrite"], "--out", name)


def test_c3_compare_runs_folder_that_is_a_file_refused_before_any_run(tmp_path, capsys,
                                                                      monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs").write_text("x")
    _no_work(monkeypatch)
    _refused(capsys, COMPARE + ["--out", str(out), "--overwrite"], "--out", "runs")


@pytest.mark.parametrize("name", ["run.json", "gcn_curves.png", "gcn_stability.png"])
def test_c3_train_output_folder_in_the_way_refused_before_training(tmp_path, capsys, monkeypatch,
                                                                   name):
    out = tmp_path / "out"
    (out / name).mkdir(parents=True)
    _no_work(monkeypatch)
    _refused(capsys, TRAIN + ["--out", str(out)], "--out", name)


def test_c3_a_full_disk_while_plotting_leaves_no_empty_png_and_names_it(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from minilayerlr.experiments import plots
    path = tmp_path / "fig.png"
    path.write_bytes(b"old figure")

    def full(self, fname, *args, **kwargs):
        if hasattr(fname, "write"):
            fname.write(b"\x89PNG partial")
        else:
            Path(fname).write_bytes(b"")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Figure, "savefig", full)
    with pytest.raises(OSError, match=str(path)):
        plots._save(Figure(), path)
    assert path.read_bytes() == b"old figure"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


@pytest.mark.parametrize("writer", ["json", "checkpoint", "report"])
def test_c3_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, writer):
    from minilayerlr import paths
    target = tmp_path / {"json": "r.json", "checkpoint": "ck.npz", "report": "results.csv"}[writer]
    target.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(paths.os, "fsync", full)
    with pytest.raises(OSError) as info:
        if writer == "json":
            from minilayerlr.experiments.runs import write_json
            write_json(target, {"a": 1})
        elif writer == "checkpoint":
            import numpy as np

            from minilayerlr.training.checkpoint import save_checkpoint
            save_checkpoint(target, params=[{"W": np.ones(2)}], opt_state=None, rng_state={},
                            history={}, epoch=1, meta={})
        else:
            from minilayerlr.experiments.report import write_reports
            monkeypatch.setattr("minilayerlr.experiments.report.results_markdown",
                                lambda config, blocks: "x")
            monkeypatch.setattr("minilayerlr.experiments.report.write_json", lambda *a: None)
            write_reports(tmp_path, {}, [], [])
    assert str(target.name) in str(info.value) and "No space left" in str(info.value)
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_c3_cli_full_disk_is_one_line_naming_the_checkpoint(tmp_path, capsys, monkeypatch):
    from minilayerlr import paths

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(paths.os, "fsync", full)
    _refused(capsys, TRAIN + ["--checkpoint", str(tmp_path / "ck.npz")], "ck.npz",
             "No space left")


# -- class 10: file modes follow the umask ----------------------------------------------

@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o002, 0o077])
def test_c10_everything_train_and_compare_write_follows_the_umask(tmp_path, capsys, umask, mask):
    umask(mask)
    want = 0o666 & ~mask
    assert cli.main(TRAIN + ["--checkpoint", str(tmp_path / "ck.npz"),
                             "--out", str(tmp_path / "t")]) == 0
    assert cli.main(COMPARE + ["--out", str(tmp_path / "c")]) == 0
    files = [tmp_path / "ck.npz", *(tmp_path / "t").iterdir(), *(tmp_path / "c").iterdir(),
             *(tmp_path / "c" / "runs").iterdir()]
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files if p.is_file()}
    assert len(modes) >= 10 and set(modes.values()) == {oct(want)}, modes


def test_c10_replacing_a_checkpoint_keeps_the_umask_mode(tmp_path, capsys, umask):
    ck = tmp_path / "ck.npz"
    ck.write_bytes(b"x")
    os.chmod(ck, 0o644)
    assert cli.main(TRAIN + ["--checkpoint", str(ck), "--overwrite"]) == 0
    assert stat.S_IMODE(ck.stat().st_mode) == 0o644


def test_c10_library_writers_follow_the_umask(tmp_path, umask):
    from minilayerlr.experiments.runs import write_json
    from minilayerlr.paths import atomic_write_bytes
    umask(0o027)
    write_json(tmp_path / "a.json", {"a": 1})
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640


def test_c2_train_out_into_a_comparison_folder_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "gcn_curves.png").write_bytes(b"the comparison's figure")
    _no_work(monkeypatch)
    _refused(capsys, TRAIN + ["--out", str(out)], "--out", "comparison")
    assert (out / "gcn_curves.png").read_bytes() == b"the comparison's figure"
