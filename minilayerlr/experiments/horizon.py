"""The comparison's horizon: ``compare --long`` (5× each task's epochs) and the loss at 25/50/100 %.

A constant learning rate stalls at its noise floor, a decaying one (the
scheduled baselines, ``methods.py``) or an adaptive step may keep descending:
whether a ranking holds depends on how long the runs are. ``--long`` runs every
task ``LONG_FACTOR`` times its default epochs with the seeds, batches and grids
of the default; :func:`horizon_markdown` shows, beside each verdict table, the
training loss of every method's selected entry (the rate chosen at 100 %) at 25 %,
50 % and 100 % of the budget, and its rank there.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

#: ``compare --long`` runs each task this many times its default epochs
LONG_FACTOR = 5
#: fractions of the budget (of the epochs) reported, as (numerator, denominator): exact
FRACTIONS = ((1, 4), (1, 2), (1, 1))

#: what --help says --long costs: an estimate (docs/horizon_estimate.py on the recorded
#: default comparison docs/results/default-v2, one seed: 701 s of optimizer steps, 1,111 s wall)
#: and the measured long runs of the three cheap tasks (docs/horizon.md)
LONG_HELP = (f"run every task {LONG_FACTOR}x its default epochs (autoencoder 40, cnn 15, gcn 1000 "
             "steps, tanh-mlp 25, regression 50), same seeds, batches and grids; the verdict "
             "tables add the loss at 25/50/100%% of the budget. Estimated at about 1.8 h per seed "
             "on the project's 2-core machine (5x the default's recorded per-run times, "
             "scheduled baselines included): an estimate, not a measurement. Measured with "
             "--seeds 3 while other jobs loaded the machine: gcn 24 min, tanh-mlp 23 min, "
             "regression 13 min: 4x (gcn, an evaluation every step) and 1.5x their estimates; "
             "after 0.2.1's faster evaluation, cnn 84 min, 0.65x, and autoencoder 69 min on one "
             "core for 57 of its 102 runs, then 28 min with --jobs 2 for the rest, 0.7x counting "
             "that stretch twice")


def run_epochs(task_epochs: int, epochs: Optional[int], long: bool) -> int:
    """Epochs of every run on a task: ``epochs`` if given, else the task's (×LONG_FACTOR if long).

    Raises:
        ValueError: naming ``long`` when both ``long`` and ``epochs`` are given.
    """
    if long and epochs is not None:
        raise ValueError(f"long: multiplies each task's default epochs by {LONG_FACTOR}, so it "
                         f"takes no epochs (got {epochs!r}); give one or the other")
    if epochs is not None:
        return int(epochs)
    return int(task_epochs) * (LONG_FACTOR if long else 1)


def fraction_epoch(epochs: int, fraction) -> int:
    """The evaluation reporting ``fraction`` = (a, b) of ``epochs``: the first at or after it, ⌈E·a/b⌉."""
    a, b = fraction
    return -(-int(epochs) * a // b)


def fraction_name(fraction) -> str:
    a, b = fraction
    return f"{100 * a // b}%"


def loss_at(run: dict, epoch: int) -> float:
    """Training loss of ``run`` after ``epoch`` epochs; inf if it had stopped (diverged) before."""
    losses = run["history"]["train_loss"]
    value = losses[epoch] if epoch < len(losses) else None
    return value if value is not None and math.isfinite(value) else math.inf


def horizon_markdown(block: dict) -> str:
    """The table of one task: per method, mean training loss (over seeds) and rank at 25/50/100 %."""
    entries = block["entries"]
    if not entries or not all("horizon" in e for e in entries):
        return ""
    epochs = sorted({e["epochs"] for e in entries})
    head = ["method"] + [
        f"{fraction_name(f)} (epoch {', '.join(str(fraction_epoch(n, f)) for n in epochs)} "
        f"of {', '.join(map(str, epochs))})" for f in FRACTIONS]
    lines = [f"Horizon on {block['task']}: training loss (mean over seeds) and rank at each "
             "fraction of the budget, every method at the rate selected at 100 % (the first "
             "evaluation at or after the fraction):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in sorted(entries, key=lambda e: e["rank"]):
        cells = [e["label"]]
        for f in FRACTIONS:
            h = e["horizon"][fraction_name(f)]
            loss = "diverged" if h["loss"] == math.inf else f"{h['loss']:.4g}"
            cells.append(f"{loss} ({h['rank']})")
        lines.append("| " + " | ".join(cells) + " |")
    changed = [e["label"] for e in entries
               if len({e["horizon"][fraction_name(f)]["rank"] for f in FRACTIONS}) > 1]
    lines += ["", "Ranks " + (f"change with the horizon for {', '.join(changed)}." if changed
                              else "are the same at every fraction.")]
    return "\n".join(lines)


def add_horizon(entries: List[dict]) -> None:
    """Add ``entry["horizon"]``: {"25%": {"epoch", "loss" (mean over seeds), "rank"}, ...}.

    ``entries`` are :func:`~minilayerlr.experiments.verdict.summarize_task`'s, each
    with its selected runs in ``_runs``; a diverged seed makes the mean inf.
    """
    for f in FRACTIONS:
        name = fraction_name(f)
        for e in entries:
            epoch = fraction_epoch(e["epochs"], f)
            losses = [loss_at(r, epoch) for r in e["_runs"]]
            mean = math.inf if math.inf in losses else float(np.mean(losses))  # as verdict.mean_sd
            e.setdefault("horizon", {})[name] = {"epoch": epoch, "loss": mean}
        order = sorted(range(len(entries)), key=lambda i: (entries[i]["horizon"][name]["loss"], i))
        for rank, i in enumerate(order, 1):
            entries[i]["horizon"][name]["rank"] = rank
