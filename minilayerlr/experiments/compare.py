"""The comparison: every method of the registry on every task, over K seeds, run by run.

For each task (``tasks.py``) and each seed s (initial weights ``net.init(s)``
and batch order seeded by s; the data stay fixed), every method of the line-up
(``methods.py``) runs: tuned methods once per rate of their grid, tuning-free
ones once. Each finished run is written at once to ``<out>/runs/<key>.json``,
whose name hashes everything that decides its numbers (``runs.run_spec``),
so an interrupted comparison keeps what it finished and ``resume`` skips every
run already done with the same configuration. The oracle prices of each task
(``cost.calibrate``) are measured once and kept in ``<out>/prices.json``.
When all runs are done the verdict (``verdict.py``), the reports
(``report.py``) and the plots (``plots.py``) are written.
"""
from __future__ import annotations

import numbers
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from ..errors import UserError
from ..paths import RunLock, check_output_dir, check_output_files
from ..validation import check_memory
from . import ablation as ablation_mod
from . import shards
from .cost import as_prices, calibrate
from .horizon import run_epochs
from .lineup import MIN_RUN_SECONDS, check_budget, check_duration, lineup
from .methods import default_methods, get_method
from .plots import figure_names
from .report import REPORT_NAMES
from .runs import initial_evaluation, load_record, run_one, run_spec, spec_key, write_json
from .schema import check_prices, load_json
from .tasks import TASK_NAMES, Task, build_task, check_task_args
from .verdict import summarize_task, verdicts

CONFIG_NAME = "config.json"


class _Progress:
    """One line per finished run: runs done / total, elapsed, estimated time left.

    The estimate prices each remaining run at the mean time of the finished runs of its own
    task (tasks differ by far more than methods), or of all finished runs before that, and
    shares the remaining runs among the ``workers`` that run them at once.
    """

    def __init__(self, tasks: List[str], log: Optional[Callable[[str], None]], workers: int = 1):
        self.left, self.log, self.done, self.reused = Counter(tasks), log, 0, 0
        self.workers = workers
        self.total, self.per_task = len(tasks), {}
        self.started, self.run_seconds = time.perf_counter(), 0.0

    def tick(self, task: str, what: str, seconds: Optional[float]) -> None:
        self.done += 1
        self.left[task] -= 1
        if seconds is None:
            self.reused += 1
        else:
            self.run_seconds += seconds
            self.per_task.setdefault(task, []).append(seconds)
        if self.log is None:
            return
        elapsed = time.perf_counter() - self.started
        times = [t for ts in self.per_task.values() for t in ts]
        overall = sum(times) / len(times) if times else 0.0
        left = sum(n * (sum(self.per_task[t]) / len(self.per_task[t]) if t in self.per_task
                        else overall) for t, n in self.left.items())
        left /= max(1, min(self.workers, sum(self.left.values())))
        self.log(f"compare: {self.done}/{self.total} runs ({self.reused} reused), "
                 f"{elapsed:.0f} s elapsed, about {left:.0f} s left; {what}")


def _task_prices(out: Path, task: Task, seed: int, fixed: Optional[dict]) -> Dict[str, float]:
    """The oracle prices of ``task``: given, stored in prices.json, or measured now and stored."""
    if fixed is not None:
        return as_prices(fixed)
    path = out / "prices.json"
    stored = check_prices(path, load_json(path)) if path.exists() else {}
    if task.name not in stored:
        n = task.batch_size or len(task.x_train)
        stored[task.name] = calibrate(task.net, task.net.init(seed), task.x_train[:n],
                                      task.y_train[:n])
        write_json(path, stored)
    return as_prices(stored[task.name])


def _check_output_paths(out: Path, built: List[Task], plan: list, ablation: bool,
                        reports: bool = True) -> None:
    """Refuse, before any run, an output path where a file cannot be written (a folder, a FIFO ...)."""
    names = [CONFIG_NAME, "prices.json", *(REPORT_NAMES if reports else ())]
    i = 0
    for task in built if reports else ():
        if ablation:
            for group in ablation_mod.GROUPS:
                if len(ablation_mod.group_labels(group)) > 1:
                    names += figure_names(task.name, f"_ablation{i}")
                    i += 1
        else:
            names += figure_names(task.name)
    check_output_files("out", out, names)
    runs_dir = out / "runs"
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UserError(f"out: {runs_dir} is not a folder; the run records go there")
    check_output_files("out", runs_dir, [f"{spec_key(spec)}.json" for *_, spec in plan])


def _check_args(tasks, methods, seeds, epochs) -> None:
    if not isinstance(tasks, (list, tuple)) or not tasks:
        raise ValueError(f"task: expected a non-empty list of task names, got {tasks!r}")
    for name in tasks:
        if name not in TASK_NAMES:
            raise ValueError(f"task: expected one of {', '.join(TASK_NAMES)} or all, got {name!r}")
    for name in methods:
        get_method(name)
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0 for s in seeds)):
        raise ValueError(f"seeds: expected a non-empty list of integers >= 0, got {seeds!r}")
    for name, values in (("task", tasks), ("methods", methods), ("seeds", seeds)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name}: lists an entry twice, {list(values)!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs: expected an integer >= 1, got {epochs!r}")


def _plan(built: List[Task], config: dict) -> list:
    """(task, entry, lr, seed, spec) of every run of the comparison, in running order."""
    plan, seeds = [], config["seeds"]
    for task in built:
        data_key = {"data": task.data, "data_dir": config["data_dir"], "quick": config["quick"],
                    "size": config["size"], "data_seed": seeds[0]}
        entries = lineup(task, config["methods"], config["quick"], config["ls_options"],
                         config["ablation"])
        for entry in entries:
            for lr in entry["grid"]:
                for seed in seeds:
                    epochs = run_epochs(task.epochs, config["epochs"], config.get("long", False))
                    spec = run_spec(task, entry["method"], lr, seed, epochs, entry["options"],
                                    data_key)
                    plan.append((task, entry, lr, seed, spec))
    return plan


def _what(task: Task, entry: dict, lr, seed: int) -> str:
    return f"{task.name} {entry['label']}" + ("" if lr is None else f" lr={lr:g}") + f" seed {seed}"


def _run_plan(plan: list, out: Path, bar: _Progress, prices, stability: bool, progress,
              calibration_seed: int, jobs: int = 1, task_args: Optional[dict] = None) -> List[dict]:
    """Run (or reuse) every planned run, writing each record as soon as it is finished.

    The runs already stored are read first; then the oracle prices of every task
    with a run left are measured here, before any run and in this process, so
    they do not depend on ``jobs``; then the runs left run here one by one
    (``jobs`` 1) or in a pool of ``jobs`` worker processes (``workers.py``).
    Records come back in plan order whatever order the runs finished in.
    """
    runs_dir = out / "runs"
    runs_dir.mkdir(exist_ok=True)
    records: List[Optional[dict]] = [None] * len(plan)
    todo = []
    for i, (task, entry, lr, seed, spec) in enumerate(plan):
        path = runs_dir / f"{spec_key(spec)}.json"
        record = load_record(path, spec) if path.exists() else None
        if record is None:
            todo.append(i)
        else:
            record["label"] = entry["label"]
            records[i] = record
            bar.tick(task.name, _what(task, entry, lr, seed) + " (done before)", None)
    # the runs of one task and seed start from the same weights: their epoch-0 evaluation,
    # the same numbers, is computed by the first and handed to the others
    initial = {(plan[i][0].name, plan[i][3]): initial_evaluation(r)
               for i, r in enumerate(records) if r is not None}
    task_prices: Dict[str, Dict[str, float]] = {}
    for i in todo:
        task = plan[i][0]
        if task.name not in task_prices:
            task_prices[task.name] = _task_prices(out, task, calibration_seed, prices)

    def arguments(i: int) -> dict:
        task, entry, lr, seed, spec = plan[i]
        return dict(method=entry["method"], lr=lr, seed=seed, epochs=spec["epochs"],
                    options=entry["options"], prices=task_prices[task.name],
                    data_key=spec["data"], stability=stability,
                    initial=initial.get((task.name, seed)))

    def finished(i: int, record: dict, seconds: float) -> None:
        task, entry, lr, seed, spec = plan[i]
        record["label"] = entry["label"]
        write_json(runs_dir / f"{spec_key(spec)}.json", record)
        records[i] = record
        initial.setdefault((task.name, seed), initial_evaluation(record))
        bar.tick(task.name, _what(task, entry, lr, seed), seconds)

    if jobs == 1 or len(todo) < 2:
        for i in todo:
            started = time.perf_counter()
            record = run_one(plan[i][0], progress=progress, **arguments(i))
            record.pop("_result")
            finished(i, record, time.perf_counter() - started)
    else:
        from .workers import run_job, worker_pool
        work = [(i, task_args[plan[i][0].name], dict(arguments(i), progress=False)) for i in todo]
        with worker_pool(min(jobs, len(todo))) as pool:
            for i, record, seconds in pool.imap_unordered(run_job, work):
                finished(i, record, seconds)
    return records


def check_compare_args(tasks=TASK_NAMES, *, methods=None, seeds=(0,), epochs=None, data=None,
                       data_dir=None, quick=False, size=None, ls_options=None, jobs=1, shard=None,
                       merge=None, long=False, **_other):
    """Check :func:`run_compare`'s values (not ``out``) before anything is written or built.

    The command line calls it before it checks its output folder, so a wrong value
    leaves nothing behind; ``run_compare`` calls it first. The keywords are
    ``run_compare``'s (others are ignored).

    Returns:
        (tasks, methods, seeds, jobs, shard, ls_options), normalised.
    """
    methods = default_methods() if methods is None else list(methods)
    try:  # a lower bound first (one run per seed and task), before the seeds are even listed
        runs = float(len(seeds)) * max(1, len(tasks) if isinstance(tasks, (list, tuple)) else 1)
    except TypeError:
        pass  # not a sequence: _check_args names it
    else:
        check_memory("seeds", f"at least {runs:.0f} runs and their records", runs * 4000)
        check_duration("seeds", f"at least {runs:.0f} runs", runs * MIN_RUN_SECONDS)
    if isinstance(tasks, str):
        tasks = [tasks]
    seeds = list(seeds) if isinstance(seeds, (list, tuple, range)) else seeds
    _check_args(tasks, methods, seeds, epochs)
    if not isinstance(long, bool):
        raise ValueError(f"long: expected True or False, got {long!r}")
    run_epochs(1, epochs, long)  # long with epochs is refused, naming long
    seeds = [int(s) for s in seeds]
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or jobs < 1:
        raise ValueError(f"jobs: expected an integer >= 1, got {jobs!r}")
    shard = shards.check_shard("shard", shard)
    if merge is not None and shard is not None:
        raise ValueError("merge: gathers finished shards; drop shard")
    ls_options = dict(ls_options or {})
    if ls_options:  # a bad option, or one a method of the line-up cannot take, fails before any work
        for name in sorted({m for m in methods if get_method(m).step_options} or {"sgd-ls"}):
            get_method(name).build(None, ls_options, None)
    for name in tasks:  # every task's data, folder and size before the first task is built
        check_task_args(name, data=data, data_dir=data_dir, quick=quick, size=size)
    return tasks, methods, seeds, int(jobs), shard, ls_options


def run_compare(tasks=TASK_NAMES, *, out, methods: Optional[Sequence[str]] = None,
                seeds: Sequence[int] = (0,), epochs: Optional[int] = None,
                data: Optional[str] = None, data_dir=None, quick: bool = False,
                size: Optional[int] = None, ls_options: Optional[dict] = None,
                ablation: bool = False, prices: Optional[dict] = None, stability: bool = True,
                progress: Optional[bool] = None, plots: bool = True, log=None,
                command: Optional[str] = None, jobs: int = 1, shard=None,
                merge: Optional[Sequence] = None, long: bool = False) -> dict:
    """Run the comparison and write everything into the folder ``out`` (resumable).

    Args:
        tasks: names from ``TASK_NAMES``.
        out: run folder (created; checked writable before any work). Runs
            already in ``out/runs`` with the same configuration are reused.
        methods: registry names (default: the default line-up, ``methods.default_methods``).
        seeds: one run per seed (weights and batch order); the data are built with seeds[0].
        epochs: override every task's default number of epochs.
        long: run every task ``horizon.LONG_FACTOR`` times its default epochs (not with ``epochs``).
        data, data_dir, quick, size: see ``build_task``.
        ls_options: layer-wise options (``methods.LS_OPTION_NAMES``) for the layer-wise methods.
        ablation: run the ablation line-up (``ablation.py``) instead of the methods.
        prices: fixed oracle prices for every task (default: measured, see ``cost``).
        stability: measure λ_max(H_ll) per block for the layer-wise methods.
        progress: per-run progress line on stderr (None: when a terminal).
        plots: write the PNG figures.
        log: callable taking one line (the whole comparison's progress).
        command: the command line recorded in the results (default: sys.argv).
        jobs: runs at once, each in a worker process of its own (``workers.py``); the
            results are the same for every value (times aside).
        shard: (K, N): run only shard K of N of the runs (``shards.py``) and write no
            report; merge the N folders with ``merge``.
        merge: the N shard folders of this comparison: their runs are gathered into
            ``out`` (refused if one is missing) and reported as one comparison.

    Returns:
        {"config", "tasks": per-task summaries, "records", "paths"} (a shard: no tasks, no paths).
    """
    tasks, methods, seeds, jobs, shard, ls_options = check_compare_args(
        tasks, methods=methods, seeds=seeds, epochs=epochs, data=data, data_dir=data_dir,
        quick=quick, size=size, ls_options=ls_options, jobs=jobs, shard=shard, merge=merge,
        long=long)
    out = check_output_dir("out", out)
    folders = None if merge is None else shards.shard_folders("merge", merge)
    if folders is not None and any(f.resolve() == out.resolve() for f in folders.values()):
        raise UserError("merge: out names one of the shard folders; merge into a new folder")
    with RunLock("out", out, folder=True):
        return _run_compare(tasks, out, methods, seeds, epochs, data, data_dir, quick, size,
                            ls_options, ablation, prices, stability, progress, plots, log, command,
                            int(jobs), shard, folders, long)


def _run_compare(tasks, out, methods, seeds, epochs, data, data_dir, quick, size, ls_options,
                 ablation, prices, stability, progress, plots, log, command, jobs, shard,
                 folders, long=False) -> dict:
    """The body of :func:`run_compare`, with its arguments checked and ``out`` locked."""
    built = [build_task(name, data=data, data_dir=data_dir, seed=seeds[0], quick=quick, size=size)
             for name in tasks]  # all first: a data error stops before any training
    config = {"tasks": list(tasks), "methods": methods, "seeds": seeds, "epochs": epochs,
              "data": data, "data_dir": None if data_dir is None else str(data_dir),
              "quick": quick, "size": size, "ls_options": ls_options, "ablation": ablation,
              "stability": stability, "command": command or " ".join(["minilayerlr"] + sys.argv[1:]),
              "long": long}
    for task in built:
        if not lineup(task, methods, quick, ls_options, ablation):
            raise UserError(f"methods: none of {', '.join(methods)} runs on the {task.name} task "
                            f"({'full' if task.batch_size is None else 'mini'}-batch training); "
                            "nothing to run")
    check_budget(built, config)
    plan = _plan(built, config)
    mine = shards.select(plan, shard)
    _check_output_paths(out, built, mine, ablation, reports=shard is None)
    if prices is None and (out / "prices.json").exists():  # read back whether or not a run needs it
        check_prices(out / "prices.json", load_json(out / "prices.json"))
    if folders is not None:
        shards.gather(plan, folders, out, config, prices)
    write_json(out / CONFIG_NAME, config if shard is None else dict(config, shard=list(shard)))
    bar = _Progress([task.name for task, *_ in mine], log, jobs)
    task_args = {t.name: (t.name, data, config["data_dir"], seeds[0], quick, size) for t in built}
    records = _run_plan(mine, out, bar, prices, stability, progress, seeds[0], jobs, task_args)
    config["run_seconds"] = bar.run_seconds  # whole runs (training, evaluation) done by this call
    config["reused_runs"] = bar.reused
    config["elapsed_seconds"] = time.perf_counter() - bar.started
    if shard is not None:  # the report is the merge's
        return {"config": dict(config, shard=list(shard)), "tasks": [], "records": records,
                "paths": {"figures": []}}
    return finish(out, config, built, records, ablation, seeds, plots)


def _blocks_for(task: Task, records: List[dict], entries: List[dict], seeds, labels=None,
                reference: str = "SGD-m", title: str = "") -> dict:
    grids = {e["label"]: e["grid"] for e in entries if labels is None or e["label"] in labels}
    mine = [r for r in records if r["task"] == task.name and r["label"] in grids]
    summary = summarize_task(mine, grids, list(seeds), reference=reference)
    challengers = ([reference] if labels is not None else
                   [e["label"] for e in entries if get_method(e["method"]).layerwise])
    return {"task": task.name, "description": task.description + title, "metric": task.metric,
            "higher_is_better": task.higher_is_better, "seeds": list(seeds),
            "block_names": task.block_names, "reference": reference, "entries": summary,
            "verdicts": verdicts(summary, [c for c in challengers if c in grids])}


def finish(out: Path, config: dict, built: List[Task], records: List[dict], ablation: bool,
           seeds, plots: bool) -> dict:
    """Aggregate the records, write results.{md,csv,json} and the plots."""
    from .report import write_reports
    blocks = []
    for task in built:
        entries = lineup(task, config["methods"], config["quick"], config["ls_options"], ablation)
        if ablation:
            for group, question in ablation_mod.GROUPS.items():
                labels = ablation_mod.group_labels(group)
                if len(labels) > 1:
                    blocks.append(_blocks_for(task, records, entries, seeds, labels,
                                              ablation_mod.DEFAULT_LABEL, f" — ablation: {question}"))
        else:
            blocks.append(_blocks_for(task, records, entries, seeds))
    paths = write_reports(out, config, blocks, records)
    figures = []
    if plots:
        from .plots import plot_block
        for i, block in enumerate(blocks):
            figures.extend(plot_block(block, out, suffix=f"_ablation{i}" if ablation else ""))
    paths["figures"] = figures
    return {"config": config, "tasks": blocks, "records": records, "paths": paths}
