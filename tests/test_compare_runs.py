"""The comparison on tiny settings: seeds, reproducibility, interruption, resume, ablation."""
import json

import pytest

from minilayerlr.errors import UserError
from minilayerlr.experiments import compare as compare_mod
from minilayerlr.experiments import run_compare
from minilayerlr.experiments.cost import fixed_prices

TINY = dict(tasks=["gcn"], methods=["sgd", "sgd-ls", "gd-ls"], seeds=[0, 1], epochs=2,
            size=60, prices=fixed_prices(1.0), plots=False, command="test")


def _numbers(result):
    """Everything a run computes except wall times (which no two runs share)."""
    out = []
    for r in sorted(result["records"], key=lambda r: r["key"]):
        h = r["history"]
        out.append((r["key"], h["train_loss"], h["metrics"], h["step_sizes"], r["grad_equivalents"],
                    r["oracle_calls"], [s["lambda_max"] for s in r["stability"]]))
    return out


def test_every_method_rate_and_seed_runs_once(tmp_path):
    result = run_compare(out=tmp_path, **TINY)
    grid = len(compare_mod.get_method("sgd").lr_grid["gcn"])
    assert len(result["records"]) == (grid + 2) * 2
    assert len(list((tmp_path / "runs").glob("*.json"))) == len(result["records"])
    block = result["tasks"][0]
    labels = {e["label"]: e for e in block["entries"]}
    assert set(labels) == {"SGD-m", "SGD-m-LS", "GD-LS"}
    assert labels["SGD-m"]["runs_needed"] == grid and labels["SGD-m-LS"]["runs_needed"] == 1
    assert set(block["verdicts"]) == {"SGD-m-LS", "GD-LS"}
    # seed s: initial weights net.init(s) -> the two seeds start from different losses
    starts = {r["seed"]: r["history"]["train_loss"][0] for r in result["records"]}
    assert starts[0] != starts[1]
    md = (tmp_path / "results.md").read_text()
    assert "K−1 of the K paired seeds" in md and "SGD-m-LS vs it" in md and "time to reach" in md
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["runs"]) == len(result["records"]) and saved["config"]["seeds"] == [0, 1]


def test_same_command_same_numbers(tmp_path):
    a = run_compare(out=tmp_path / "a", **TINY)
    b = run_compare(out=tmp_path / "b", **TINY)
    assert _numbers(a) == _numbers(b)


def _interrupt_after(monkeypatch, n):
    real, calls = compare_mod.run_one, []

    def flaky(*args, **kwargs):
        if len(calls) == n:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)
    monkeypatch.setattr(compare_mod, "run_one", flaky)


def test_an_interrupted_comparison_keeps_its_finished_runs_and_resumes_identically(tmp_path, monkeypatch):
    straight = run_compare(out=tmp_path / "straight", **TINY)
    out = tmp_path / "cut"
    _interrupt_after(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_compare(out=out, **TINY)
    kept = list((out / "runs").glob("*.json"))
    assert len(kept) == 1
    first = json.loads(kept[0].read_text())  # readable, complete
    assert first["history"]["epoch"] == [0, 1, 2] and first["stop_reason"] is None
    monkeypatch.undo()
    calls = []
    real = compare_mod.run_one
    monkeypatch.setattr(compare_mod, "run_one", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = run_compare(out=out, **TINY)
    assert len(calls) == len(straight["records"]) - 1  # the finished run was not run again
    assert _numbers(resumed) == _numbers(straight)
    def verdict_table(folder):  # results.md up to the cost table (which holds wall times)
        return (folder / "results.md").read_text().split("Cost on")[0]
    assert verdict_table(out) == verdict_table(tmp_path / "straight")


def test_a_changed_configuration_runs_again(tmp_path):
    run_compare(out=tmp_path, **TINY)
    changed = dict(TINY, epochs=3)
    result = run_compare(out=tmp_path, **changed)
    assert all(r["epochs"] == 3 for r in result["records"])
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2 * len(result["records"])


@pytest.mark.parametrize("make_bad", ["file", "under_file"])
def test_the_output_folder_is_checked_before_any_work(tmp_path, monkeypatch, make_bad):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = blocker if make_bad == "file" else blocker / "sub"
    monkeypatch.setattr(compare_mod, "build_task", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(UserError, match="out"):
        run_compare(out=out, **TINY)


def test_the_ablation_runs_on_a_tiny_setting(tmp_path):
    result = run_compare(out=tmp_path, ablation=True, **dict(TINY, seeds=[0], methods=None))
    blocks = result["tasks"]
    questions = [b["description"].split("ablation: ")[1] for b in blocks]
    assert len(questions) == len(set(questions)) >= 3
    from minilayerlr.experiments.ablation import DEFAULT_LABEL, active_variants
    assert len(result["records"]) == len(active_variants())  # the defaults run once
    for block in blocks:
        labels = [e["label"] for e in block["entries"]]
        assert labels[0] == DEFAULT_LABEL and len(labels) >= 2
        assert set(block["verdicts"]) == {DEFAULT_LABEL}
    kinds = {r["spec"]["options"].get("curvature_kind") for r in result["records"]}
    assert {"ggn", "mc_fisher", "sign_hvp"} <= kinds


def test_runs_of_one_task_and_seed_share_their_first_evaluation(tmp_path, monkeypatch):
    """The epoch-0 evaluation runs once per task and seed (the runs start from the same
    weights) and every record is the one of a run that made its own."""
    from minilayerlr.training import loop
    shared = run_compare(out=tmp_path / "shared", **TINY)
    calls = []
    real = loop.dataset_loss
    monkeypatch.setattr(loop, "dataset_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = run_compare(out=tmp_path / "again", **TINY)
    runs, epochs = len(again["records"]), TINY["epochs"]
    assert len(calls) == runs * epochs + len(TINY["seeds"])  # every epoch, epoch 0 once per seed
    monkeypatch.setattr(compare_mod, "initial_evaluation", lambda record: None)
    calls.clear()
    alone = run_compare(out=tmp_path / "alone", **TINY)
    assert len(calls) == runs * (epochs + 1)
    assert _numbers(shared) == _numbers(again) == _numbers(alone)


def test_a_non_finite_loss_is_the_same_empty_cell_fresh_or_resumed(tmp_path):
    """results.csv writes a diverged run's NaN loss as results.json does (empty / null), so a
    fresh comparison (NaN in memory) and a resumed one (null read back) write the same file."""
    import csv
    from minilayerlr.experiments import report
    result = run_compare(out=tmp_path / "a", **TINY)
    cells = []
    for value in (float("nan"), None):
        records = [dict(r) for r in result["records"]]
        records[0]["final_train_loss"] = value
        out = tmp_path / f"csv-{value}"
        out.mkdir()
        report.write_reports(out, result["config"], result["tasks"], records)
        rows = list(csv.DictReader((out / "results.csv").open()))
        cells.append(rows[0]["final_train_loss"])
        assert rows[1]["final_train_loss"] not in ("", "nan")
    assert cells == ["", ""]
