"""``minilayerlr bench`` runs end to end and reports every quantity.

No test here asserts on a timing (docs/cost.md: numbers are measured by the
benchmark command, never by a timed test); only on what is reported.
"""
import json
import math
import subprocess
import sys

import pytest

from minilayerlr import cli
from minilayerlr.curvature import KINDS
from minilayerlr.experiments import METHODS, bench

# every method of the registry gets its step timed: a new method joins with no change here
STEPPED = list(METHODS) + list(bench.VARIANTS)
#: methods with periodic work (K-FAC's inverses every 5 steps, 10 in the fixed-damping variant,
#: the Shampoo variant's roots)
PERIODIC = {"kfac": 5, "kfac[fixed damping]": 10, "shampoo[update_every=10]": 10}
TIMED = (["evaluate", "hvp", "block_hessian"] + [f"curvature[{kind}]" for kind in KINDS]
         + [f"step[{m}]" for m in STEPPED] + [f"step_between[{m}]" for m in PERIODIC])


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    # a process of its own: the bench tunes glibc's malloc for the rest of its process
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run([sys.executable, "-m", "minilayerlr.cli", "bench", "--task", "all",
                           "--batch-size", "4", "--repeat", "1", "--peers", "--json", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "targets of docs/cost.md" in done.stdout
    return done.returncode, json.loads(path.read_text())


def test_bench_exits_cleanly_and_covers_every_task(bench_run):
    code, result = bench_run
    assert code == 0
    assert set(result["tasks"]) == set(bench.TASKS)
    settings = result["settings"]
    assert (settings["batch_size"], settings["repeat"], settings["seed"]) == (4, 1, 0)
    assert settings["allocator"] in ("default", "glibc, freed memory kept")


@pytest.mark.parametrize("task", bench.TASKS)
def test_bench_json_has_every_quantity(bench_run, task):
    r = bench_run[1]["tasks"][task]
    assert set(r["seconds"]) == set(TIMED)
    assert all(math.isfinite(s) and s > 0 for s in r["seconds"].values())
    assert set(r["ratios"]) == ((set(TIMED) - {"evaluate"}) | {"sgd_ls_step_vs_sgd_m_step", "ls_peak_memory_vs_base"}
                                | {f"step_amortised[{m}]" for m in PERIODIC})
    assert set(r["extra"]) == {f"curvature[{k}]" for k in KINDS} | {f"step[{m}]" for m in bench.LS_METHODS}
    assert set(r["ls_step_vs_base_step"]) == set(bench.LS_METHODS)
    assert set(r["peak_memory_vs_base"]) == set(r["step_vs_base"]) == set(bench.STEP_BASE)
    assert set(r["amortised_step_vs_base"]) == set(PERIODIC)
    assert {m: t for m, t in r["periods"].items() if t > 1} == PERIODIC
    assert set(r["peak_bytes"]) == {name for name in TIMED if name.startswith("step[")}
    assert all(b > 0 for b in r["peak_bytes"].values())
    for summary in (r, r["of_min"]):  # from the medians and from the fastest runs
        assert set(summary["targets"]) == set(bench.TARGETS)
        for entry in summary["targets"].values():
            assert set(entry) == {"value", "target", "holds"} and isinstance(entry["holds"], bool)
        assert set(summary["ratios"]) == set(r["ratios"])
    assert set(r["of_min"]["seconds"]) == set(TIMED)
    assert all(len(s) == 1 for s in r["samples"].values())
    assert r["num_params"] == sum(r["block_sizes"])
    assert r["block_sizes"][r["smallest_block"]] == min(r["block_sizes"])
    # the batch: 4 images, or the whole graph for the GCN
    assert r["batch_size"] == (4 if task != "gcn" else r["batch_size"]) and r["batch_size"] >= 4


@pytest.mark.parametrize("task", bench.TASKS)
def test_bench_amortises_periodic_work_over_its_period(bench_run, task):
    # (first step + (T - 1) steps between) / T, from the reported seconds, medians and minima
    r = bench_run[1]["tasks"][task]
    for summary in (r, r["of_min"]):
        sec = summary["seconds"]
        for m, t in PERIODIC.items():
            amortised = (sec[f"step[{m}]"] + (t - 1) * sec[f"step_between[{m}]"]) / t
            assert summary["ratios"][f"step_amortised[{m}]"] == pytest.approx(
                amortised / sec["evaluate"], rel=1e-12)
            base = sec[f"step[{bench.STEP_BASE[m]}]"]
            assert summary["amortised_step_vs_base"][m] == pytest.approx(amortised / base, rel=1e-12)
        for m, b in bench.STEP_BASE.items():
            assert summary["step_vs_base"][m] == pytest.approx(sec[f"step[{m}]"] / sec[f"step[{b}]"],
                                                               rel=1e-12)


def test_every_method_but_the_bases_is_priced_against_a_base():
    # a new method must say which first-order step it is measured against (Method.cost_base)
    assert set(bench.STEP_BASE) == set(STEPPED) - {"sgd", "adamw"}
    assert set(bench.STEP_BASE.values()) == {"sgd", "adamw"}


def test_bench_records_the_machine(bench_run):
    m = bench_run[1]["machine"]
    assert m["numpy"] and m["usable_cores"] >= 1 and "name" in m["blas"]
    assert isinstance(m["environment"], dict)


def test_bench_table_names_every_task_and_target(bench_run):
    table = bench.format_table(bench_run[1])
    for name in (list(bench.TASKS) + list(bench.TARGETS)
                 + ["curvature mc_fisher", "step sgd-ls", "step kfac amortised over 5",
                    "step shampoo[update_every=10] amortised / sgd step", "peak mem kfac / sgd"]):
        assert name in table


def test_bench_prices_the_new_kfac_and_both_shampoo_configurations_against_sgd(bench_run):
    """Issue 19: K-FAC (quadratic model, adaptive λ), the fixed-damping K-FAC and the Shampoo
    configuration the line-up does not use each have a row against their base step."""
    table = bench.format_table(bench_run[1])
    graft = [v for v in bench.VARIANTS if v.startswith("shampoo[graft=")]
    assert len(graft) == 1
    for m in ["kfac", "kfac[fixed damping]", "shampoo"] + graft:
        assert bench.STEP_BASE[m] == "sgd" and f"step {m} / sgd step" in table
    for task in bench.TASKS:
        assert bench_run[1]["tasks"][task]["step_vs_base"]["kfac[fixed damping]"] > 0


def test_plain_bench_times_the_layerwise_methods_and_their_bases_only(tmp_path):
    path = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "minilayerlr.cli", "bench", "--task", "gcn",
                           "--repeat", "1", "--json", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    r = json.loads(path.read_text())["tasks"]["gcn"]
    stepped = set(bench.LS_METHODS) | set(bench.BASE_OF.values())
    assert set(r["seconds"]) == ({"evaluate", "hvp"} | {f"curvature[{kind}]" for kind in KINDS}
                                 | {f"step[{m}]" for m in stepped})
    assert r["base_of"] == bench.BASE_OF and set(r["step_vs_base"]) == set(bench.LS_METHODS)
    assert set(r["targets"]) == set(bench.TARGETS)  # every target of docs/cost.md still shown
    assert "step sgd-ls / sgd step" in done.stdout and "kfac" not in done.stdout
    assert "block_hessian" not in done.stdout


def test_bench_compares_each_layerwise_method_with_its_base():
    assert bench.BASE_OF == {"sgd-ls": "sgd", "adamw-ls": "adamw", "gd-ls": "sgd"}


def test_bench_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--repeat", "0"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "--task", "resnet"])


def _refused_before_work(monkeypatch, capsys, args, word):
    def no_work(*a, **k):
        raise AssertionError("the bench started before refusing its arguments")
    monkeypatch.setattr(bench, "run_bench", no_work)
    assert cli.main(["bench"] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and word in err[0] and err[0].startswith("minilayerlr bench: error:")


@pytest.mark.parametrize("args, word", [
    (["--json", "."], "is a folder"),
    (["--json", "no/such/folder/b.json"], "does not exist"),
    (["--task", "autoencoder", "--batch-size", "1000000000000"], "at most 4000"),
    (["--task", "mlp6", "--batch-size", "1000000000000"], "memory"),
    (["--task", "mlp6", "--batch-size", "9223372036854775807"], "memory"),
    (["--task", "gcn", "--batch-size", "10"], "whole graph"),
])
def test_bench_refuses_outputs_and_sizes_before_any_work(monkeypatch, capsys, args, word):
    _refused_before_work(monkeypatch, capsys, args, word)
