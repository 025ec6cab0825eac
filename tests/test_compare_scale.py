"""The comparison spread over processes (--jobs) and machines (--shard, --merge) gives the same results."""
import json
import multiprocessing
import os

import pytest

from minilayerlr import cli
from minilayerlr.experiments import compare as compare_mod
from minilayerlr.experiments import run_compare, shards, workers
from minilayerlr.experiments.cost import fixed_prices

TINY = dict(tasks=["gcn"], methods=["sgd", "sgd-ls", "gd-ls"], seeds=[0, 1], epochs=2,
            size=60, prices=fixed_prices(1.0), plots=False, command="test")
#: what differs between two runs of the same comparison: times, and the call that made them
TIMES = {"wall_time", "time", "total_time", "reach_time", "run_seconds", "elapsed_seconds",
         "reused_runs", "command"}


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _results(folder):
    """results.json without times, and results.md up to its first cost table (which holds times)."""
    saved = json.loads((folder / "results.json").read_text())
    saved.pop("versions")
    return _without_times(saved), (folder / "results.md").read_text().split("Cost on")[0]


def test_jobs_2_gives_every_result_of_jobs_1(tmp_path):
    one = run_compare(out=tmp_path / "one", jobs=1, **TINY)
    two = run_compare(out=tmp_path / "two", jobs=2, **TINY)
    assert _without_times(two["records"]) == _without_times(one["records"])
    assert _results(tmp_path / "two") == _results(tmp_path / "one")
    for path in (tmp_path / "one" / "runs").iterdir():  # the records on disk too
        other = json.loads((tmp_path / "two" / "runs" / path.name).read_text())
        assert _without_times(other) == _without_times(json.loads(path.read_text()))
    assert multiprocessing.active_children() == []  # no worker outlives the comparison


def test_the_prices_are_measured_once_per_task_before_any_run(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(compare_mod, "calibrate",
                        lambda *a, **k: events.append("price") or fixed_prices(2.0))
    real = workers.worker_pool

    def pool(n):
        events.append("pool")
        return real(n)
    monkeypatch.setattr(workers, "worker_pool", pool)
    result = run_compare(out=tmp_path, jobs=2, **dict(TINY, tasks=["gcn", "regression"],
                                                      methods=["sgd-ls"], prices=None))
    assert events == ["price", "price", "pool"]
    stored = json.loads((tmp_path / "prices.json").read_text())
    assert set(stored) == {"gcn", "regression"}
    assert all(r["grad_equivalents"] is not None for r in result["records"])


def test_an_interrupted_jobs_2_comparison_keeps_its_runs_and_resumes_to_the_same_results(
        tmp_path, monkeypatch):
    straight = run_compare(out=tmp_path / "straight", jobs=1, **TINY)
    out, real, ran = tmp_path / "cut", compare_mod._Progress.tick, []

    def tick(self, task, what, seconds):  # Ctrl-C in the parent as the third run comes in
        real(self, task, what, seconds)
        ran.append(what)
        if len(ran) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(compare_mod._Progress, "tick", tick)
    with pytest.raises(KeyboardInterrupt):
        run_compare(out=out, jobs=2, **TINY)
    assert multiprocessing.active_children() == []  # the workers were ended
    assert len(list((out / "runs").glob("*.json"))) == 2  # both runs that came in are kept
    monkeypatch.undo()
    resumed = run_compare(out=out, jobs=2, **TINY)
    assert resumed["config"]["reused_runs"] == 2
    assert _without_times(resumed["records"]) == _without_times(straight["records"])
    assert _results(out) == _results(tmp_path / "straight")


def test_workers_get_the_blas_thread_variables_before_numpy_loads():
    cores = workers.available_cores()
    environ = {"OMP_NUM_THREADS": "7"}
    assert workers.worker_environment(2, environ) == {
        name: "7" if name == "OMP_NUM_THREADS" else str(max(1, cores // 2))
        for name in workers.THREAD_VARIABLES}
    assert set(workers.worker_environment(cores * 4, {}).values()) == {"1"}
    before = dict(os.environ)
    expected = workers.worker_environment(2)
    with workers.worker_pool(2) as pool:
        seen = {name: next(pool.imap_unordered(os.getenv, [name]))
                for name in workers.THREAD_VARIABLES}
    assert seen == expected and dict(os.environ) == before
    with pytest.raises(ValueError, match="invalid literal"):  # a job's error is raised here
        with workers.worker_pool(2) as pool:
            list(pool.imap_unordered(int, ["1", "x", "3"]))
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("n", [2, 3])
def test_shards_merged_equal_the_unsharded_comparison(tmp_path, monkeypatch, n):
    whole = run_compare(out=tmp_path / "whole", **TINY)
    prices = iter(range(1, 100))  # each shard measures prices of its own: 1.0, 2.0, ...
    monkeypatch.setattr(compare_mod, "calibrate", lambda *a, **k: fixed_prices(next(prices)))
    folders = [tmp_path / f"shard-{k}" for k in range(1, n + 1)]
    keys = []
    for k, folder in enumerate(folders, 1):
        part = run_compare(out=folder, shard=(k, n), **dict(TINY, prices=None))
        written = sorted(p.stem for p in (folder / "runs").glob("*.json"))
        # a shard writes its own runs (every n-th of the plan) and no report
        assert written == sorted(r["key"] for r in whole["records"][k - 1::n])
        assert sorted(r["key"] for r in part["records"]) == written
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "prices.json", "runs"]
        keys += written
    assert sorted(keys) == sorted(r["key"] for r in whole["records"])
    merged = run_compare(out=tmp_path / "merged", merge=folders[::-1], **dict(TINY, prices=None))
    # the merge prices every run with the lowest shard's table (1.0), as the whole run did
    assert json.loads((tmp_path / "merged" / "prices.json").read_text()) == {"gcn": fixed_prices(1.0)}
    assert merged["config"]["reused_runs"] == len(whole["records"])
    assert _without_times(merged["records"]) == _without_times(whole["records"])
    assert _results(tmp_path / "merged") == _results(tmp_path / "whole")


def test_a_merge_refuses_missing_shards_runs_and_settings(tmp_path):
    folders = [tmp_path / "s1", tmp_path / "s2"]
    for k, folder in enumerate(folders, 1):
        run_compare(out=folder, shard=(k, 2), **TINY)
    with pytest.raises(ValueError, match="shard.* 2/2 missing"):
        run_compare(out=tmp_path / "m", merge=folders[:1], **TINY)
    with pytest.raises(ValueError, match="seeds"):
        run_compare(out=tmp_path / "m", merge=folders, **dict(TINY, seeds=[0]))
    victim = sorted((folders[1] / "runs").glob("*.json"))[0]
    victim.unlink()
    with pytest.raises(ValueError, match=r"shard 2/2 .* lacks 1 of its runs.*--resume"):
        run_compare(out=tmp_path / "m", merge=folders, **TINY)
    assert not (tmp_path / "m" / "runs").exists()  # refused before writing any run


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(ValueError, match="--shard"):
        shards.parse_shard("--shard", text)


CLI = ["compare", "--task", "gcn", "--size", "60", "--epochs", "1", "--optimizers", "sgd,sgd-ls",
       "--no-progress", "--no-stability"]


def test_the_command_line_shards_resumes_a_shard_and_merges(tmp_path, capsys):
    assert cli.main(CLI + ["--out", str(tmp_path / "whole"), "--jobs", "2"]) == 0
    for k in (1, 2):
        assert cli.main(CLI + ["--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}")]) == 0
        assert f"shard {k}/2:" in capsys.readouterr().out
    assert cli.main(["compare", "--resume", str(tmp_path / "s2"), "--no-progress"]) == 0
    assert "shard 2/2:" in capsys.readouterr().out  # a resumed shard stays a shard
    assert cli.main(["compare", "--merge", str(tmp_path / "s1"), str(tmp_path / "s2"),
                     "--out", str(tmp_path / "all"), "--no-progress"]) == 0
    whole, merged = (tmp_path / "whole" / "results.md"), (tmp_path / "all" / "results.md")
    assert "SGD-m-LS vs it" in merged.read_text()
    assert (merged.read_text().split("Cost on")[0].split("Seeds:")[1]
            == whole.read_text().split("Cost on")[0].split("Seeds:")[1])


@pytest.mark.parametrize("args, word", [
    (CLI + ["--jobs", "0"], "--jobs"),
    (CLI + ["--shard", "3/2"], "--shard"),
    (["compare", "--merge", "nowhere"], "--merge: nowhere/config.json is missing"),
    (CLI + ["--merge", "nowhere"], "--merge: the configuration comes from the shards'"),
])
def test_scale_flags_errors_are_one_line(tmp_path, capsys, args, word):
    assert cli.main(args + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0]
