"""From run records to a verdict: tuned rates, mean ± sd over seeds, ranks, paired better/tie/worse.

The rule (also written at the top of results.md): method A is **better** than
method B on a task when A's mean final training loss over the K seeds is
lower than B's *and* A's loss is lower than B's on at least K − 1 of the K
paired seeds (same seed: same initial weights and batch order); **worse**
when the same holds with A and B swapped; a **tie** otherwise. A run that
diverged counts as an infinite loss. Tuned methods enter with their best
learning rate, the one with the lowest mean final training loss over the
seeds, as a user who tunes would pick it; their cost includes the whole grid.
Each entry also carries its loss and rank at 25 %, 50 % and 100 % of the
budget (``horizon.add_horizon``), at the rate selected at 100 %.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np

from .horizon import add_horizon

RULE = ("A is *better* than B when A's mean final training loss over the K seeds is lower "
        "than B's and A's loss is lower on at least K−1 of the K paired seeds (same seed = "
        "same initial weights and batch order); *worse* when that holds with A and B swapped; "
        "a *tie* otherwise. A diverged run counts as an infinite loss. Tuned methods enter "
        "with the learning rate of lowest mean final training loss; their cost includes the "
        "whole grid.")


def _loss(run: dict) -> float:
    value = run["final_train_loss"]
    return math.inf if run["stop_reason"] or value is None or not math.isfinite(value) else value


def paired_verdict(a: List[float], b: List[float]) -> str:
    """"better", "worse" or "tie" for A against B, from losses on the same K seeds (see RULE)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"a, b: expected two equal-length, non-empty lists of losses, got "
                         f"{a.shape} and {b.shape}")
    k = len(a)

    def beats(x, y):
        with np.errstate(invalid="ignore"):
            mean_lower = np.mean(x) < np.mean(y)
        return bool(mean_lower) and int(np.sum(x < y)) >= k - 1

    if beats(a, b):
        return "better"
    if beats(b, a):
        return "worse"
    return "tie"


def mean_sd(values: List[float]):
    """(mean, sample sd; 0 for one value); inf mean if any value is inf."""
    v = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(v)):
        return math.inf, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _first_reach(curve_x, losses, target: float) -> Optional[float]:
    for x, loss in zip(curve_x, losses):
        if loss is not None and math.isfinite(loss) and loss <= target:
            return float(x)
    return None


def _reach(runs: List[dict], target: Optional[float], axis: str):
    """Mean over seeds of the first time (or gradient equivalents) with loss <= target; None if
    some seed never gets there."""
    if target is None or not math.isfinite(target):
        return None
    hits = []
    for run in runs:
        xs = run["history"]["time"] if axis == "time" else run.get("grad_equivalents")
        if xs is None:
            return None
        hit = _first_reach(xs, run["history"]["train_loss"], target)
        if hit is None:
            return None
        hits.append(hit)
    return float(np.mean(hits))


def summarize_task(records: List[dict], grids: Dict[str, list], seeds: List[int],
                   reference: str = "SGD-m") -> List[dict]:
    """One entry per method (label) of one task, with its selected rate, statistics and costs.

    Args:
        records: the task's run records (every method, rate and seed).
        grids: label -> the learning rates of its grid ([None] if tuning-free).
        seeds: the seeds of the comparison (paired by position).
        reference: the label whose tuned final loss is the "time to reach" target.
    """
    by = {}
    for r in records:
        by[(r["label"], r["lr"], r["seed"])] = r
    entries = []
    for label, grid in grids.items():
        per_lr = {}
        for lr in grid:
            runs = [by.get((label, lr, s)) for s in seeds]
            if all(run is not None for run in runs):
                per_lr[lr] = runs
        if not per_lr:
            continue
        best = min(per_lr, key=lambda lr: (mean_sd([_loss(r) for r in per_lr[lr]])[0],
                                           grid.index(lr)))
        runs = per_lr[best]
        losses = [_loss(r) for r in runs]
        metrics = [r["final_metric"] if r["final_metric"] is not None else math.nan for r in runs]
        tuning_time = sum(float(np.mean([r["wall_time"] for r in rs])) for rs in per_lr.values())
        grad_eq = [r["grad_equivalents"][-1] if r.get("grad_equivalents") else None for r in runs]
        entries.append({
            "label": label, "lr": best, "tuned": best is not None, "grid": list(grid),
            "runs_done": len(per_lr), "at_edge": best is not None and len(grid) > 1
            and grid.index(best) in (0, len(grid) - 1),
            "losses": losses, "metrics": metrics, "loss": mean_sd(losses),
            "metric": mean_sd(metrics), "diverged": sum(1 for r in runs if r["stop_reason"]),
            "runs_needed": len(grid), "total_time": tuning_time,
            "time": float(np.mean([r["wall_time"] for r in runs])),
            "epochs": runs[0]["epochs"],
            "grad_eq": None if None in grad_eq else float(np.mean(grad_eq)), "_runs": runs})
    order = sorted(range(len(entries)), key=lambda i: (entries[i]["loss"][0], i))
    for rank, i in enumerate(order, 1):
        entries[i]["rank"] = rank
    add_horizon(entries)  # the loss and rank at 25/50/100 % of the budget (horizon.py)
    ref = next((e for e in entries if e["label"] == reference), None)
    target = ref["loss"][0] if ref else None
    for e in entries:
        e["reach_time"] = _reach(e["_runs"], target, "time")
        e["reach_grad_eq"] = _reach(e["_runs"], target, "grad_eq")
    return entries


def verdicts(entries: List[dict], challengers: List[str]) -> Dict[str, Dict[str, str]]:
    """challenger label -> {other label: "better" / "tie" / "worse"} (challenger against other)."""
    by = {e["label"]: e for e in entries}
    return {c: {e["label"]: paired_verdict(by[c]["losses"], e["losses"])
                for e in entries if e["label"] != c}
            for c in challengers if c in by}
