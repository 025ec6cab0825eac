"""One training run of one method on one task, and the record every command writes for it.

:func:`run_one` trains (through ``minilayerlr.training.train``), counting the
oracle calls of every step and, for layer-wise methods, measuring each
block's λ_max(H_ll) at a few epochs; :func:`run_record` turns what ``train``
returned into the plain-data record that ``compare`` writes to
``runs/<key>.json`` and ``train --out`` to ``run.json``. Both commands build
their record with this one function.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import UserError
from ..paths import atomic_write_bytes
from ..validation import check_int
from ..training import train
from .cost import CountingOptimizer, gradient_equivalents
from .methods import build_optimizer, get_method
from .schema import check_record, load_json
from .stability import block_lambda_max, stability_epochs, stability_products
from .tasks import Task

#: version of the record layout; a stored run with another one is run again
RECORD_VERSION = 1


def run_spec(task: Task, method: str, lr: Optional[float], seed: int, epochs: int,
             options: Optional[dict] = None, data_key: Optional[dict] = None) -> dict:
    """Everything that decides a run's numbers: two runs with equal specs give equal results."""
    return _spec_and_optimizer(task, method, lr, seed, epochs, options, data_key)[0]


def _spec_and_optimizer(task, method, lr, seed, epochs, options, data_key):
    """(:func:`run_spec`, the optimizer it names): a run builds its optimizer once, here."""
    epochs = check_int("epochs", epochs, 1)  # train() takes 0; a run trains at least one epoch
    batch = None if get_method(method).full_batch else task.batch_size
    steps = steps_per_epoch(task, batch)
    optimizer = build_optimizer(method, lr, options, steps, total_steps=epochs * steps)
    return {"record_version": RECORD_VERSION, "task": task.name, "data": data_key or {},
            "method": method, "lr": lr, "seed": int(seed), "epochs": epochs,
            "batch_size": batch, "options": dict(sorted((options or {}).items())),
            "optimizer": repr(optimizer)}, optimizer


def steps_per_epoch(task: Task, batch_size: Optional[int]) -> int:
    """Mini-batches per epoch (1 for full batch); ``train`` checks the rest of ``batch_size``."""
    if batch_size is None:
        return 1
    return -(-len(task.x_train) // check_int("batch_size", batch_size, 1))


def spec_key(spec: dict) -> str:
    """A file name for ``spec``: readable prefix + hash of the whole spec."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    lr = "" if spec["lr"] is None else f"-lr{spec['lr']:g}"
    return f"{spec['task']}-{spec['method']}{lr}-s{spec['seed']}-{digest}"


def _finite_or_none(obj):
    """NaN/inf -> None recursively, keys starting with "_" dropped: strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    return obj


def write_json(path: Path, payload) -> Path:
    """Write strict JSON atomically (unique temporary file in the same folder, then replace)."""
    text = json.dumps(_finite_or_none(payload), indent=1, allow_nan=False)
    return atomic_write_bytes(path, text.encode())


def load_record(path: Path, spec: dict) -> Optional[dict]:
    """The stored record at ``path`` if it was run with exactly ``spec`` (None: run it again).

    A file that is not JSON, or a record of other settings, is run again (and
    replaced); a record of these settings that lacks a field a report reads is
    refused, naming the file and the field (``schema.check_record``).
    """
    try:
        record = load_json(path)
    except UserError:
        return None
    if not (isinstance(record, dict) and record.get("spec") == spec):
        return None
    return check_record(path, record)


class _EpochHook:
    """The task's eval_fn, plus what the harness records at each evaluation (untimed by train)."""

    def __init__(self, task: Task, counting: CountingOptimizer, stability_at: List[int],
                 probe, seed: int):
        self.task, self.counting, self.stability_at = task, counting, set(stability_at)
        self.probe, self.seed, self.epoch, self.stability = probe, seed, 0, []

    def state_dict(self) -> dict:
        """What a checkpoint keeps of the harness: the oracle counts and λ_max measured so far."""
        return {"calls": dict(self.counting.calls), "snapshots": list(self.counting.snapshots),
                "stability": list(self.stability), "epoch": self.epoch}

    def load_state_dict(self, saved) -> None:
        """Continue from :meth:`state_dict` (a resumed run); None or damage: counts stay incomplete."""
        from collections import Counter
        try:
            calls = Counter({str(k): int(v) for k, v in saved["calls"].items()})
            snapshots = [{str(k): int(v) for k, v in s.items()} for s in saved["snapshots"]]
            stability = [{"epoch": int(m["epoch"]), "lambda_max": [float(v) for v in m["lambda_max"]]}
                         for m in saved["stability"]]
            epoch = int(saved["epoch"])
        except (TypeError, KeyError, ValueError, AttributeError):
            self.counting.snapshots = [None]  # never complete: the record leaves the counts out
            self.epoch = 10 ** 9  # no stability measured: the earlier ones are unknown
            return
        self.counting.calls, self.counting.snapshots = calls, snapshots
        self.stability, self.epoch = stability, epoch

    def __call__(self, params):
        metrics = self.task.eval_fn(params)
        self.epoch_done(params)
        return metrics

    def epoch_done(self, params) -> None:
        """The epoch's oracle counts, and λ_max when this epoch is one of ``stability_at``."""
        self.counting.snapshot()
        if self.epoch in self.stability_at:
            ev = self.task.net.evaluate(params, *self.probe)
            lam = block_lambda_max(ev, params, seed=self.seed)
            self.stability.append({"epoch": self.epoch, "lambda_max": lam.tolist()})
        self.epoch += 1


def run_record(task: Task, spec: dict, result, counting: Optional[CountingOptimizer] = None,
               prices: Optional[Dict[str, float]] = None, stability: Optional[list] = None) -> dict:
    """The plain-data record of one finished (or stopped) run.

    Args:
        task: the task trained.
        spec: its :func:`run_spec`.
        result: the ``TrainResult``.
        counting: the CountingOptimizer used (None: no oracle counts). A resumed run
            has them when its checkpoint holds the harness's state (``_EpochHook``).
        prices: oracle call key -> cost ratio (see ``cost``); None: no gradient equivalents.
        stability: the λ_max measurements of :class:`_EpochHook`.
    """
    m = get_method(spec["method"])
    h = result.history
    calls = counting.snapshots if counting is not None else None
    complete = (calls is not None and len(calls) == len(h.epoch)
                and all(c is not None for c in calls))
    grad_eq = gradient_equivalents(calls, prices) if complete and prices is not None else None
    return {
        "key": spec_key(spec), "spec": spec, "task": task.name, "method": m.name, "label": m.label,
        "tuned": m.tuned, "lr": spec["lr"], "seed": spec["seed"], "optimizer_repr": spec["optimizer"],
        "batch_size": spec["batch_size"], "epochs": spec["epochs"],
        "final_train_loss": h.final_train_loss, "metric": task.metric,
        "final_metric": h.final_metric(task.metric), "wall_time": h.time[-1],
        "steps": h.steps[-1], "stop_reason": h.stop_reason,
        "oracle_calls": calls if complete else None, "grad_equivalents": grad_eq,
        "stability": stability_products(h.step_sizes, h.steps, stability) if stability else [],
        "history": h.to_dict(),
    }


def run_one(task: Task, method: str, lr: Optional[float], *, seed: int, epochs: int,
            options: Optional[dict] = None, prices: Optional[Dict[str, float]] = None,
            data_key: Optional[dict] = None, stability: bool = True,
            progress: Optional[bool] = None, initial=None, **train_kwargs) -> dict:
    """Train ``task`` with ``method`` from ``task.net.init(seed)``, batches shuffled by ``seed``.

    ``initial``: the training loss and metrics at ``task.net.init(seed)``, from an earlier
    run of this task and seed (:func:`initial_evaluation` of its record); the run then
    skips that evaluation and is otherwise the same, bit for bit.

    Returns:
        the :func:`run_record` (plus "_result", the TrainResult, not written to JSON).
    """
    spec, optimizer = _spec_and_optimizer(task, method, lr, seed, epochs, options, data_key)
    m = get_method(method)
    counting = CountingOptimizer(optimizer)
    n = task.batch_size or len(task.x_train)
    probe = (task.x_train[:n], task.y_train[:n])
    at = stability_epochs(epochs) if (stability and m.layerwise) else []
    hook = _EpochHook(task, counting, at, probe, seed)
    params = task.net.init(seed)
    if initial is not None and train_kwargs.get("resume") is None:
        hook.epoch_done(params)  # epoch 0's counts and λ_max; its loss and metrics are given
    else:
        initial = None
    result = train(task.net, params, counting, task.x_train, task.y_train,
                   epochs=epochs, batch_size=spec["batch_size"], seed=seed, eval_fn=hook,
                   progress=progress, label=f"{task.name} {m.label}"
                   + ("" if lr is None else f" lr={lr:g}") + f" seed {seed}", extra_state=hook,
                   initial=initial, **train_kwargs)
    record = run_record(task, spec, result, counting, prices, hook.stability)
    record["_result"] = result
    return record


def initial_evaluation(record: dict):
    """(training loss, {metric: value}) at a run's initial weights, from its record's history."""
    h = record["history"]
    return h["train_loss"][0], {name: values[0] for name, values in h["metrics"].items()}
