"""Values a resumed run trusts, checked once when a checkpoint is loaded.

The layout (structure, shapes, kinds of dtype) is checked against a fresh
``optimizer.init``; here the *values* are: a run that continues from a NaN
EMA denominator, a fallback code no optimizer writes, or a history whose
epochs go backwards would compute or plot nonsense without an error. Every
check raises ValueError naming the entry; the caller prefixes the file.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Tuple

import numpy as np

from ..optim.layerwise import FALLBACK_NAMES


def _walk(obj: Any, where: str) -> Iterator[Tuple[str, str, Any]]:
    """(path, field name, value) of every leaf of a nested dataclass / list / dict state."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value) or isinstance(value, (list, tuple, dict)):
                yield from _walk(value, f"{where}.{f.name}")
            else:
                yield f"{where}.{f.name}", f.name, value
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{where}[{k!r}]")
    else:
        yield where, where.rsplit(".", 1)[-1], obj


def check_params_values(params, dtype) -> None:
    """Every parameter array has the run's dtype (``dtype``; None: any floating dtype)."""
    for k, entry in enumerate(params):
        for key, value in entry.items():
            if dtype is not None and str(value.dtype) != dtype:
                raise ValueError(f"params[{k}][{key!r}]: {value.dtype}, but the run is {dtype}")


def check_state_values(state, steps: int) -> None:
    """Finite floats, known fallback codes, and every ``count`` equal to the steps taken.

    Every optimizer state counts its updates in ``count`` (a layer-wise state
    and its base state both do), and the loop calls ``update`` once a step.
    """
    for where, name, value in _walk(state, "state"):
        if isinstance(value, np.ndarray) and value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            raise ValueError(f"{where}: contains NaN or Inf")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: {value}, expected a finite number")
        if name == "fallbacks" and isinstance(value, np.ndarray):
            if value.dtype.kind not in "iu" or np.any((value < 0) | (value >= len(FALLBACK_NAMES))):
                raise ValueError(f"{where}: codes {value.tolist()}, expected integers in "
                                 f"0..{len(FALLBACK_NAMES) - 1} ({', '.join(FALLBACK_NAMES)})")
        if name == "count" and value != steps:
            raise ValueError(f"{where}: {value} updates, but the history records {steps} steps")


def check_history_values(history, epoch: int, num_blocks: int) -> None:
    """Epochs 0..E in order, finite non-decreasing times and steps, rectangular step rows."""
    if history.epoch != list(range(len(history.epoch))) or history.epoch[-1] != epoch:
        raise ValueError(f"history.epoch: expected 0, 1, ..., {epoch}, got {_head(history.epoch)}")
    for name in ("time", "steps"):
        values = getattr(history, name)
        if not all(math.isfinite(v) and v >= 0 for v in values) or any(b < a for a, b in zip(values, values[1:])):
            raise ValueError(f"history.{name}: expected finite non-negative non-decreasing values, "
                             f"got {_head(values)}")
    if history.steps[0] != 0 or history.steps[-1] != len(history.step_loss):
        raise ValueError(f"history.steps: starts at {history.steps[0]} and ends at {history.steps[-1]}, "
                         f"expected 0 and {len(history.step_loss)} (one per step loss)")
    if not all(math.isfinite(v) for v in history.step_loss):
        raise ValueError("history.step_loss: contains NaN or Inf (steps are recorded only when finite)")
    last_ok = len(history.train_loss) - (1 if history.stop_reason is not None else 0)
    if not all(math.isfinite(v) for v in history.train_loss[:last_ok]):
        raise ValueError("history.train_loss: NaN or Inf before the run stopped")
    for i, (sizes, codes) in enumerate(zip(history.step_sizes, history.fallbacks)):
        if len(sizes) != num_blocks or len(codes) != num_blocks:
            raise ValueError(f"history.step_sizes[{i}]: {len(sizes)} step sizes and {len(codes)} "
                             f"fallback codes, expected {num_blocks} (one per block)")
        if not all(math.isfinite(a) for a in sizes):
            raise ValueError(f"history.step_sizes[{i}]: contains NaN or Inf")
        if not all(isinstance(c, int) and 0 <= c < len(FALLBACK_NAMES) for c in codes):
            raise ValueError(f"history.fallbacks[{i}]: codes {codes}, expected integers in "
                             f"0..{len(FALLBACK_NAMES) - 1}")


def check_metric_names(eval_fn, params, history) -> None:
    """The resumed run's ``eval_fn`` yields the metrics the history already records.

    Otherwise the per-epoch metric lists would come out shorter than the
    epochs (or gain a name half-way), a history the loader itself refuses.
    """
    recorded = sorted(history.metrics)
    now = [] if eval_fn is None else sorted(dict(eval_fn(params)))
    if now != recorded:
        raise ValueError(f"resume: the checkpoint's history records the metrics {recorded}, but this "
                         f"run's eval_fn gives {now}; resume with the eval_fn the run started with")


def _head(values, n: int = 6) -> str:
    shown = ", ".join(repr(v) for v in values[:n])
    return f"[{shown}{', ...' if len(values) > n else ''}]"


def check_loaded_values(params, state, history, saved: dict) -> None:
    """All the value checks above, for what :func:`~minilayerlr.training.checkpoint.load_checkpoint` gave."""
    fp = saved["meta"].get("fingerprint")
    check_params_values(params, fp.get("params_dtype") if isinstance(fp, dict) else None)
    check_history_values(history, saved["epoch"], sum(1 for entry in params if entry))
    check_state_values(state, history.steps[-1])
