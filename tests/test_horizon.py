"""The comparison's horizon: scheduled baselines in the registry, compare --long, the 25/50/100 % table."""
import json
import math

import pytest

import minilayerlr.experiments.compare as compare_mod
from minilayerlr import cli
from minilayerlr.experiments import METHODS, TASK_NAMES, build_optimizer, build_task, register
from minilayerlr.experiments import methods as methods_mod
from minilayerlr.experiments.compare import _plan, run_compare
from minilayerlr.experiments.horizon import (FRACTIONS, LONG_FACTOR, add_horizon, fraction_epoch,
                                             horizon_markdown, run_epochs)
from minilayerlr.experiments.methods import Method, default_methods, parse_methods
from minilayerlr.experiments.runs import steps_per_epoch
from minilayerlr.experiments.schema import read_resumed_config
from minilayerlr.optim import SGD, AdamW, Scheduled

SCHEDULED = {"sgd-cos": ("sgd", "cosine"), "adamw-cos": ("adamw", "cosine"),
             "sgd-step": ("sgd", "step"), "adamw-step": ("adamw", "step")}


def test_scheduled_baselines_share_their_base_grids_and_only_cosine_is_in_the_default():
    for name, (of, schedule) in SCHEDULED.items():
        m, base = METHODS[name], METHODS[of]
        assert m.tuned and m.schedule == schedule and m.cost_base == of
        assert m.lr_grid == base.lr_grid and set(m.lr_grid) == set(TASK_NAMES)
        assert m.label == f"{base.label} {schedule}"
    assert {"sgd-cos", "adamw-cos"} <= set(default_methods())
    assert not {"sgd-step", "adamw-step"} & set(default_methods())
    assert [m.name for m in parse_methods(None)] == default_methods()
    assert [m.name for m in parse_methods("sgd-step,sgd")] == ["sgd", "sgd-step"]


def test_build_optimizer_wraps_scheduled_methods_over_the_runs_steps():
    assert build_optimizer("sgd-cos", 0.1, total_steps=30) == Scheduled(SGD(lr=0.1, momentum=0.9), 30)
    assert build_optimizer("adamw-step", 1e-3, total_steps=8) == Scheduled(AdamW(lr=1e-3), 8, "step")
    assert build_optimizer("sgd", 0.1, total_steps=30) == SGD(lr=0.1, momentum=0.9)  # ignored
    with pytest.raises(ValueError, match="^total_steps: SGD-m cosine"):
        build_optimizer("sgd-cos", 0.1)
    with pytest.raises(ValueError, match="^total_steps: "):
        build_optimizer("adamw-cos", 1e-3, total_steps=0)
    with pytest.raises(ValueError, match="^lr: "):
        build_optimizer("sgd-cos", None, total_steps=30)


def test_register_refuses_an_unknown_schedule(monkeypatch):
    monkeypatch.setattr(methods_mod, "METHODS", dict(METHODS))
    with pytest.raises(ValueError, match="schedule"):
        register(Method("sgd-lin", "x", lambda lr, o, n: SGD(lr=lr), tuned=True,
                        schedule="linear"), lr_grid={"gcn": (0.1,)})


def test_run_epochs():
    assert run_epochs(8, None, False) == 8 and run_epochs(8, None, True) == 8 * LONG_FACTOR
    assert run_epochs(8, 3, False) == 3
    with pytest.raises(ValueError, match="^long: "):
        run_epochs(8, 3, True)


def _config(long):
    return {"tasks": list(TASK_NAMES), "methods": default_methods(), "seeds": [0, 3], "epochs": None,
            "data": None, "data_dir": None, "quick": True, "size": 60, "ls_options": {},
            "ablation": False, "long": long}


def test_long_multiplies_every_tasks_epochs_and_keeps_seeds_batches_and_grids():
    built = [build_task(name, quick=True, size=60) for name in TASK_NAMES]
    default, long = _plan(built, _config(False)), _plan(built, _config(True))
    assert len(default) == len(long)
    for (task, entry, lr, seed, spec), (task2, entry2, lr2, seed2, spec2) in zip(default, long):
        assert (task.name, entry, lr, seed) == (task2.name, entry2, lr2, seed2)
        assert spec2["epochs"] == LONG_FACTOR * spec["epochs"] == LONG_FACTOR * task.epochs
        assert {k: v for k, v in spec2.items() if k not in ("epochs", "optimizer")} == \
               {k: v for k, v in spec.items() if k not in ("epochs", "optimizer")}
        if METHODS[entry["method"]].schedule:  # the schedule spans the whole long run
            total = spec2["epochs"] * steps_per_epoch(task, spec["batch_size"])
            assert f"total_steps={total}," in spec2["optimizer"]
        else:
            assert spec2["optimizer"] == spec["optimizer"]
    assert {t.name for t, *_ in long} == set(TASK_NAMES)
    assert {s for *_, s, _ in long} == {0, 3}


def test_the_command_line_passes_long_refuses_it_with_epochs_and_resumes_it(tmp_path, monkeypatch,
                                                                          capsys):
    seen = {}

    def fake(**kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt
    monkeypatch.setattr(compare_mod, "run_compare", fake)
    out = tmp_path / "c"
    assert cli.main(["compare", "--long", "--task", "gcn", "--out", str(out), "--no-progress"]) == 130
    assert seen["long"] is True and seen["epochs"] is None
    monkeypatch.undo()
    capsys.readouterr()
    assert cli.main(["compare", "--long", "--epochs", "3", "--task", "gcn", "--out",
                     str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "--long: " in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    (out / "config.json").write_text(json.dumps({"tasks": ["gcn"], "seeds": [0], "long": True}))
    assert read_resumed_config("--resume", out, TASK_NAMES, tuple(METHODS), ("synthetic",),
                               ("scale",))["long"] is True
    (out / "config.json").write_text(json.dumps({"tasks": ["gcn"], "seeds": [0], "long": "yes"}))
    with pytest.raises(Exception, match="long"):
        read_resumed_config("--resume", out, TASK_NAMES, tuple(METHODS), ("synthetic",), ("scale",))


def _record(label, seed, curve, epochs, stop=None):
    return {"label": label, "lr": None, "seed": seed, "final_train_loss": curve[-1],
            "final_metric": 0.5, "stop_reason": stop, "wall_time": 1.0, "epochs": epochs,
            "grad_equivalents": None, "history": {"time": [0.0] * len(curve), "train_loss": curve}}


def test_the_horizon_reads_the_first_evaluation_at_or_after_each_fraction():
    assert [fraction_epoch(8, f) for f in FRACTIONS] == [2, 4, 8]
    assert [fraction_epoch(3, f) for f in FRACTIONS] == [1, 2, 3]  # 0.75 -> epoch 1, 1.5 -> 2
    assert [fraction_epoch(250, f) for f in FRACTIONS] == [63, 125, 250]
    # A is ahead early, B late; C diverges after 50 %: ranks change with the horizon
    a = [_record("A", s, [9.0, 2.0, 1.0 + s, 1.0, 0.9], 4) for s in (0, 1)]
    b = [_record("B", s, [9.0, 5.0, 4.0, 2.0, 0.5 + s], 4) for s in (0, 1)]
    c = [_record("C", 0, [9.0, 3.0, 3.0, math.nan], 4, stop="diverged"),
         _record("C", 1, [9.0, 3.0, 3.0, 3.0, 3.0], 4)]
    entries = [{"label": x[0]["label"], "epochs": 4, "_runs": x, "rank": r}
               for x, r in ((a, 1), (b, 2), (c, 3))]
    add_horizon(entries)
    by = {e["label"]: e["horizon"] for e in entries}
    assert by["A"]["25%"] == {"epoch": 1, "loss": 2.0, "rank": 1}
    assert by["A"]["50%"] == {"epoch": 2, "loss": 1.5, "rank": 1}
    assert by["B"]["50%"]["loss"] == 4.0 and by["C"]["50%"] == {"epoch": 2, "loss": 3.0, "rank": 2}
    assert by["A"]["100%"]["loss"] == 0.9 and by["B"]["100%"] == {"epoch": 4, "loss": 1.0, "rank": 2}
    assert by["C"]["100%"] == {"epoch": 4, "loss": math.inf, "rank": 3}  # diverged seed: last
    text = horizon_markdown({"task": "toy", "entries": entries})
    assert "| 25% (epoch 1 of 4) | 50% (epoch 2 of 4) | 100% (epoch 4 of 4) |" in text
    assert "| C | 3 (2) | 3 (2) | diverged (3) |" in text
    assert "change with the horizon for B, C." in text


def test_a_tiny_long_comparison_reports_the_horizon(tmp_path):
    result = run_compare(["gcn"], out=tmp_path / "long", methods=["sgd", "sgd-cos"], seeds=[0, 1],
                         quick=True, size=60, long=True, plots=False, stability=False)
    runs = result["records"]
    assert {r["epochs"] for r in runs} == {LONG_FACTOR * build_task("gcn", quick=True, size=60).epochs}
    assert {r["seed"] for r in runs} == {0, 1} and {r["batch_size"] for r in runs} == {None}
    cosine = [r for r in runs if r["method"] == "sgd-cos"]
    assert all(f"total_steps={r['steps']}," in r["optimizer_repr"] for r in cosine)
    rates = [row[0] for row in cosine[0]["history"]["step_sizes"]]
    assert rates[0] == cosine[0]["lr"] and rates[-1] < 1e-4 * rates[0]  # decayed to ~0 at the end
    entries = result["tasks"][0]["entries"]
    assert all(e["horizon"]["100%"]["rank"] == e["rank"] for e in entries)
    md = (tmp_path / "long" / "results.md").read_text()
    assert "Horizon on gcn" in md and "| SGD-m cosine |" in md
    saved = json.loads((tmp_path / "long" / "results.json").read_text())
    assert saved["config"]["long"] is True
    assert set(saved["tasks"][0]["entries"][0]["horizon"]) == {"25%", "50%", "100%"}


def test_a_blown_up_loss_does_not_squash_the_loss_axes(tmp_path, monkeypatch):
    """A run whose loss explodes (K-FAC reached 1e133 on the long CNN) is cut at 10× the
    largest initial loss, named in the title; the other curves keep the axes' range."""
    from minilayerlr.experiments import plots
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)

    def run(losses):
        n = len(losses)
        return {"history": {"train_loss": losses, "time": list(range(n)), "metrics": {"acc": [0.5] * n}},
                "grad_equivalents": list(range(n))}

    calm = {"label": "SGD-m", "lr": 0.1, "_runs": [run([2.0, 1.0, 0.5])]}
    wild = {"label": "K-FAC", "lr": 1.0, "_runs": [run([2.0, 1e100, 1e133])]}
    for entries, cut in (([calm, wild], True), ([calm], False)):
        block = {"task": "t", "description": "d", "metric": "acc", "seeds": [0], "entries": entries}
        plots.plot_curves(block, tmp_path / "c.png")
        fig = figures.pop()
        title = fig._suptitle.get_text()
        for ax in fig.axes[:3]:
            low, high = ax.get_ylim()
            assert low <= 0.5 and (high == 20.0 if cut else high < 20.0)
            assert low >= 0.25 * (1 - 1e-12) if cut else True
        assert ("above it: K-FAC (lr=1)" in title) == cut


def test_the_curves_mark_the_fractions_of_the_horizon_table(tmp_path, monkeypatch):
    """The epoch panels draw a dotted line at the epochs the horizon table reports before the
    end (⌈E/4⌉ and ⌈E/2⌉), and none on a run too short to have them."""
    from minilayerlr.experiments import plots
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or path)

    def block(epochs):
        losses = [2.0 / (1 + t) for t in range(epochs + 1)]
        run = {"history": {"train_loss": losses, "time": list(range(epochs + 1)),
                           "metrics": {"acc": [0.5] * (epochs + 1)}}}
        return {"task": "t", "description": "d", "metric": "acc", "seeds": [0],
                "entries": [{"label": "SGD-m", "lr": 0.1, "_runs": [run]}]}

    def vertical_lines(ax):
        return sorted(line.get_xdata()[0] for line in ax.get_lines()
                      if len(set(line.get_xdata())) == 1 and line.get_label().startswith("_"))

    for epochs, expected, title in ((15, [4, 8], "dotted: 25% and 50% of the epochs"),
                                    (2, [1], "dotted: 25%/50% of the epochs"), (1, [], None)):
        plots.plot_curves(block(epochs), tmp_path / "c.png")
        fig = figures.pop()
        axes = fig.axes
        assert vertical_lines(axes[0]) == expected and vertical_lines(axes[3]) == expected
        assert vertical_lines(axes[1]) == [] and vertical_lines(axes[2]) == []
        text = fig._suptitle.get_text()
        assert (title in text) if title else ("dotted" not in text)
