"""PNG figures of a comparison: learning curves and the per-layer step-size schedules.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot),
so plotting never changes the backend of a notebook or opens a window.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# one colour per method, the same in every figure
COLORS = {"SGD-m": "tab:blue", "AdamW": "tab:orange", "SGD-m-LS": "tab:green",
          "AdamW-LS": "tab:red", "GD-LS": "tab:purple"}


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def _ls_note(task_result: dict) -> str:
    """Title suffix naming the layer-wise settings a comparison overrode, e.g. " (layer-wise η=0.5)"."""
    options = task_result.get("ls_options") or {}
    symbols = {"scale": "η", "ema": "ρ"}
    shown = ", ".join(f"{symbols.get(k, k)}={v:g}" for k, v in options.items())
    return f" (layer-wise {shown})" if shown else ""


def _run_label(run: dict) -> str:
    return run["label"] + (f" (lr={run['lr']:g})" if run["lr"] is not None else "")


def _positive(values) -> np.ndarray:
    """Values with non-positive or missing entries as NaN (gaps on a log axis)."""
    a = np.array([np.nan if v is None else v for v in values], dtype=float)
    a[~(a > 0)] = np.nan
    return a


def plot_curves(task_result: dict, path: Path) -> Path:
    """Three panels: training loss per epoch, training loss per second, test metric per epoch."""
    runs = [r for r in task_result["runs"] if r["selected"]]
    fig = Figure(figsize=(13, 3.8))
    ax_epoch, ax_time, ax_metric = fig.subplots(1, 3)
    losses = [v for r in runs for v in r["history"]["train_loss"] if v is not None and np.isfinite(v)]
    log_loss = bool(losses) and min(losses) > 0
    metric = task_result["metric"]
    for run in runs:
        h, color, label = run["history"], COLORS.get(run["label"]), _run_label(run)
        loss = np.array(h["train_loss"], dtype=float)
        ax_epoch.plot(h["epoch"], loss, color=color, label=label)
        ax_time.plot(h["time"], loss, color=color, label=label)
        ax_metric.plot(h["epoch"], h["metrics"].get(metric, []), color=color, label=label)
    for ax, xlabel in ((ax_epoch, "epoch"), (ax_time, "training time (s)"), (ax_metric, "epoch")):
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    if log_loss:
        ax_epoch.set_yscale("log")
        ax_time.set_yscale("log")
    ax_epoch.set_ylabel("training loss")
    ax_time.set_ylabel("training loss")
    ax_metric.set_ylabel(metric.replace("_", " "))
    ax_epoch.legend(fontsize=8)
    fig.suptitle(f"{task_result['task']}: {task_result['description']}{_ls_note(task_result)}",
                 fontsize=10)
    # fixed margins: tight_layout costs about a second per figure
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.13, top=0.88, wspace=0.28)
    return _save(fig, path)


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` steps, ignoring NaN (skipped steps)."""
    if width <= 1 or len(values) < width:
        return values
    ok = np.isfinite(values)
    kernel = np.ones(width)
    total = np.convolve(np.where(ok, values, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def plot_step_sizes(task_result: dict, path: Path) -> Path:
    """One panel per layer-wise method: α_l per step for every block, log scale.

    The dashed line is the best learning rate found by the grid search for
    the base method (SGD-m for SGD-m-LS, AdamW for AdamW-LS): the step the
    layer-wise rule replaces. Steps where a block did not move (α_l = 0, the
    "ascent" fallback) are gaps. Thin lines are per step, thick ones a moving
    average over about an epoch.
    """
    runs = [r for r in task_result["runs"] if r["lr"] is None]
    tuned = {r["label"]: r["lr"] for r in task_result["runs"] if r["selected"] and r["lr"]}
    names = task_result.get("block_names") or []
    fig = Figure(figsize=(4.6 * max(len(runs), 1), 3.8))
    axes = np.atleast_1d(fig.subplots(1, max(len(runs), 1)))
    for ax, run in zip(axes, runs):
        sizes = np.array(run["history"]["step_sizes"], dtype=float)
        if sizes.size == 0:
            ax.set_title(f"{run['label']}: no steps")
            continue
        steps = np.arange(1, len(sizes) + 1)
        per_epoch = max(1, run["history"]["steps"][-1] // max(1, run["history"]["epoch"][-1]))
        colors = [f"C{k % 10}" for k in range(sizes.shape[1])]
        for l in range(sizes.shape[1]):
            alpha = _positive(sizes[:, l])
            if per_epoch > 1:
                ax.plot(steps, alpha, color=colors[l], lw=0.5, alpha=0.25)
            ax.plot(steps, _smooth(alpha, per_epoch), color=colors[l], lw=1.6,
                    label=names[l] if l < len(names) else f"block {l}")
        base = {"SGD-m-LS": "SGD-m", "AdamW-LS": "AdamW"}.get(run["label"])
        if base in tuned:
            ax.axhline(tuned[base], color="k", ls="--", lw=1, label=f"tuned {base} lr")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("step size α_l")
        ax.set_title(run["label"], fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"{task_result['task']}: per-layer step sizes chosen by the layer-wise rule"
                 f"{_ls_note(task_result) or ' (default settings)'}", fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.86, wspace=0.3)
    return _save(fig, path)


def plot_task(task_result: dict, out) -> List[Path]:
    """Write ``<task>_curves.png`` and (if a layer-wise run is present) ``<task>_step_sizes.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = task_result["task"]
    paths = [plot_curves(task_result, out / f"{name}_curves.png")]
    if any(r["lr"] is None for r in task_result["runs"]):
        paths.append(plot_step_sizes(task_result, out / f"{name}_step_sizes.png"))
    return paths
