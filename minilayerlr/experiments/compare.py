"""The paper's comparison: tuned first-order methods against untuned layer-wise step sizes.

For each task (``tasks.py``), from the same initial parameters and the same
shuffling seed:

* SGD-m (momentum 0.9) and AdamW at every learning rate of the task's grid;
  the best rate is the one with the lowest final *training* loss, as a user
  who tunes would pick it (all grid runs are recorded);
* SGD-m-LS and AdamW-LS: ``LayerwiseStepSize`` around the same base methods
  with the optimizer's default safeguards, and no learning rate at all;
* GD-LS, the idealized full-batch method, where the task is full batch (gcn).

Outputs in the run folder: ``results.json`` (config, versions, every run with
its history), ``results.csv`` (one row per run), ``results.md`` (the table
printed to stdout) and the PNG plots of ``plots.py``.
"""
from __future__ import annotations

import csv
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..optim import GDLS, SGD, AdamW, LayerwiseStepSize
from ..training import train
from .tasks import TASK_NAMES, Task, build_task

#: optimizer key -> (label, takes a learning rate, needs full batch)
OPTIMIZERS = {
    "sgd": ("SGD-m", True, False),
    "adamw": ("AdamW", True, False),
    "sgd-ls": ("SGD-m-LS", False, False),
    "adamw-ls": ("AdamW-LS", False, False),
    "gd-ls": ("GD-LS", False, True),
}


def make_optimizer(key: str, lr: Optional[float] = None, ls_options: Optional[dict] = None):
    """The optimizer behind a command-line name.

    Args:
        key: "sgd" (SGD, momentum 0.9), "adamw" (AdamW, PyTorch defaults),
            "sgd-ls", "adamw-ls" (LayerwiseStepSize around them, default
            safeguards), "gd-ls" (GDLS, the idealized full-batch method).
        lr: learning rate, required for "sgd"/"adamw", refused for the others.
        ls_options: keyword arguments for ``LayerwiseStepSize`` (e.g.
            ``{"scale": 0.5, "ema": 0.9}``) used by "sgd-ls"/"adamw-ls"; None or
            {} keeps the optimizer's defaults. "gd-ls" takes only "scale".

    Raises:
        ValueError: unknown key, a missing lr, or an lr given to a method that
            chooses its own step sizes.
    """
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {key!r}")
    label, takes_lr, _ = OPTIMIZERS[key]
    if takes_lr and lr is None:
        raise ValueError(f"lr: {label} needs a learning rate")
    if not takes_lr and lr is not None:
        raise ValueError(f"lr: {label} chooses its own step sizes; do not pass a learning rate")
    if key == "sgd":
        return SGD(lr=lr, momentum=0.9)
    if key == "adamw":
        return AdamW(lr=lr)
    options = dict(ls_options or {})
    if key == "sgd-ls":
        return LayerwiseStepSize(SGD(momentum=0.9), **options)
    if key == "adamw-ls":
        return LayerwiseStepSize(AdamW(), **options)
    return GDLS(**{k: v for k, v in options.items() if k == "scale"})


def run_one(task: Task, key: str, lr: Optional[float], *, epochs: int, seed: int,
            progress: Optional[bool] = None, ls_options: Optional[dict] = None) -> dict:
    """Train ``task`` with optimizer ``key`` from ``task.net.init(seed)``; return a result record."""
    label = OPTIMIZERS[key][0] + (f" lr={lr:g}" if lr is not None else "")
    batch_size = None if OPTIMIZERS[key][2] else task.batch_size
    optimizer = make_optimizer(key, lr, ls_options)
    result = train(task.net, task.net.init(seed), optimizer, task.x_train, task.y_train,
                   epochs=epochs, batch_size=batch_size, seed=seed, eval_fn=task.eval_fn,
                   progress=progress,
                   label=f"{task.name} {label}")
    h = result.history
    return {
        "task": task.name, "optimizer": key, "label": OPTIMIZERS[key][0], "lr": lr,
        "optimizer_repr": repr(optimizer), "batch_size": batch_size, "epochs": epochs,
        "final_train_loss": h.final_train_loss, "metric": task.metric,
        "final_metric": h.final_metric(task.metric), "wall_time": h.time[-1],
        "steps": h.steps[-1], "stop_reason": h.stop_reason, "selected": lr is None,
        "history": h.to_dict(), "_result": result,
    }


def _best(runs: List[dict]) -> Optional[dict]:
    """Lowest final training loss among runs that finished (None if all diverged)."""
    ok = [r for r in runs if r["stop_reason"] is None and math.isfinite(r["final_train_loss"])]
    return min(ok, key=lambda r: r["final_train_loss"]) if ok else None


def compare_task(task: Task, *, epochs: Optional[int] = None, seed: int = 0,
                 progress: Optional[bool] = None, ls_options: Optional[dict] = None,
                 log=None) -> dict:
    """Run the whole comparison on one task; returns {"runs": [...], ...}."""
    epochs = task.epochs if epochs is None else epochs
    # One untimed step first, so that one-off costs (lazy imports, BLAS thread start-up,
    # first-touch memory) do not land in the wall time of whichever run comes first.
    params = task.net.init(seed)
    size = task.batch_size or len(task.x_train)
    ev = task.net.evaluate(params, task.x_train[:size], task.y_train[:size])
    ev.layer_curvature(ev.grads)
    runs = []
    for key in ("sgd", "adamw"):
        grid = [run_one(task, key, lr, epochs=epochs, seed=seed, progress=progress)
                for lr in task.lr_grid[key]]
        best = _best(grid)
        for run in grid:
            run["selected"] = run is best
        if best is None:  # every rate diverged: show the smallest one in the table
            grid[0]["selected"] = True
        runs.extend(grid)
        if log:
            log(f"{task.name}: {OPTIMIZERS[key][0]} grid done, best lr = "
                f"{best['lr'] if best else 'none (all diverged)'}")
    keys = ["sgd-ls", "adamw-ls"] + (["gd-ls"] if task.batch_size is None else [])
    for key in keys:
        runs.append(run_one(task, key, None, epochs=epochs, seed=seed, progress=progress,
                            ls_options=ls_options))
        if log:
            log(f"{task.name}: {OPTIMIZERS[key][0]} done")
    return {"task": task.name, "description": task.description, "metric": task.metric,
            "higher_is_better": task.higher_is_better, "epochs": epochs,
            "batch_size": task.batch_size, "sizes": task.sizes, "lr_grid": task.lr_grid,
            "block_names": task.block_names, "ls_options": dict(ls_options or {}), "runs": runs}


def versions() -> Dict[str, str]:
    """Versions of Python, the dependencies and minilayerlr, for results.json."""
    import matplotlib
    import scipy

    from .. import __version__
    return {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
            "matplotlib": matplotlib.__version__, "minilayerlr": __version__,
            "platform": platform.platform()}


def _finite_or_none(obj):
    """Replace NaN/inf by None recursively so that results.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def markdown_table(task_result: dict) -> str:
    """The table of the selected runs of one task (best-lr SGD-m/AdamW, LS methods)."""
    metric = task_result["metric"].replace("_", " ")
    lines = [f"### {task_result['task']}: {task_result['description']}", "",
             f"| optimizer | lr | final train loss | {metric} | wall time (s) | steps |",
             "|---|---|---|---|---|---|"]
    for run in task_result["runs"]:
        if not run["selected"]:
            continue
        if run["lr"] is None:
            lr = "none (layer-wise)"
        else:
            grid = task_result["lr_grid"][run["optimizer"]]
            lr = f"{run['lr']:g}" + (f" (best of {len(grid)})" if len(grid) > 1 else "")
        note = " (diverged)" if run["stop_reason"] else ""
        value = run["final_metric"]
        shown = f"{value:.3f}" if task_result["metric"].endswith("accuracy") else f"{value:.4g}"
        lines.append(f"| {run['label']}{note} | {lr} | {run['final_train_loss']:.4g} | {shown} | "
                     f"{run['wall_time']:.1f} | {run['steps']} |")
    return "\n".join(lines)


CSV_FIELDS = ["task", "optimizer", "label", "lr", "selected", "final_train_loss", "metric",
              "final_metric", "wall_time", "steps", "diverged", "stop_reason"]


def write_results(out: Path, config: dict, task_results: List[dict]) -> Dict[str, Path]:
    """Write results.json, results.csv and results.md into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    payload = {"config": config, "versions": versions(), "tasks": task_results}
    paths["json"].write_text(json.dumps(_finite_or_none(payload), indent=1, allow_nan=False))
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for task in task_results:
            for run in task["runs"]:
                row = {k: run.get(k) for k in CSV_FIELDS}
                row["diverged"] = run["stop_reason"] is not None
                writer.writerow(row)
    paths["md"].write_text("\n\n".join(markdown_table(t) for t in task_results) + "\n")
    return paths


def run_compare(tasks=("autoencoder", "cnn", "gcn"), *, out, epochs: Optional[int] = None,
                data: str = "synthetic", data_dir=None, quick: bool = False, seed: int = 0,
                size: Optional[int] = None, progress: Optional[bool] = None,
                ls_options: Optional[dict] = None, plots: bool = True, log=None) -> dict:
    """Run the comparison on ``tasks`` and write everything to the folder ``out``.

    Args:
        tasks: names from ``TASK_NAMES``.
        out: run folder (created).
        epochs: override every task's default number of epochs.
        data, data_dir, quick, size: see ``build_task``.
        seed: seeds the data, the initial parameters and the shuffling.
        progress: progress line on stderr (None: when stderr is a terminal).
        ls_options: overrides of the layer-wise methods' defaults (see
            ``make_optimizer``); recorded in the config.
        plots: write the PNG figures.
        log: callable taking one line of text (e.g. to print to stderr).

    Returns:
        {"config": ..., "tasks": [per-task results], "paths": {...}}.
    """
    from .plots import plot_task  # matplotlib only when plotting

    for name in tasks:
        if name not in TASK_NAMES:
            raise ValueError(f"task: expected one of {', '.join(TASK_NAMES)} or all, got {name!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs: expected an integer >= 1, got {epochs!r}")
    out = Path(out)
    make_optimizer("sgd-ls", None, ls_options)  # a bad option fails before any work
    built = [build_task(name, data=data, data_dir=data_dir, seed=seed, quick=quick, size=size)
             for name in tasks]  # build all first: a data error stops before any training
    config = {"tasks": list(tasks), "epochs": epochs, "data": data,
              "data_dir": None if data_dir is None else str(data_dir), "quick": quick,
              "seed": seed, "size": size, "ls_options": dict(ls_options or {}), "command": " ".join(sys.argv),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    results, figures = [], []
    for task in built:
        result = compare_task(task, epochs=epochs, seed=seed, progress=progress,
                              ls_options=ls_options, log=log)
        results.append(result)
        if plots:
            figures.extend(plot_task(result, out))
    paths = write_results(out, config, results)
    paths["figures"] = figures
    return {"config": config, "tasks": results, "paths": paths}
