"""What a training run records: per-epoch and per-step curves.

A :class:`History` is plain data (lists of floats), so it converts to JSON for
``results.json`` and for checkpoints, and back, without loss: Python's float
repr round-trips every float64 exactly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Mapping, Optional

import numpy as np


@dataclass
class History:
    """Curves of one training run.

    Per-epoch lists have one entry per evaluation: index 0 is the initial
    parameters (before any step), index e the parameters after epoch e.

    Attributes:
        epoch: epoch numbers 0, 1, ..., E.
        train_loss: f(θ) on the whole training set at the end of each epoch
            (not the running mean of mini-batch losses, which lags behind).
        metrics: name -> per-epoch values of the evaluation function, e.g.
            ``{"test_accuracy": [...]}`` or ``{"test_loss": [...]}``.
        time: cumulative seconds spent in optimizer steps (forward, backward,
            curvature, update) at the end of each epoch; evaluation and
            checkpointing are excluded so that methods compare on the work
            they do.
        steps: cumulative optimizer steps at the end of each epoch.
        step_loss: mini-batch loss at each step, shape (S,).
        step_sizes: per step, the step size each block used (``state.step_sizes``:
            α_l for layer-wise methods, the learning rate for plain ones),
            shape (S, L).
        fallbacks: per step, the fallback code of each block (``state.fallbacks``
            of layer-wise methods: 0 none, 1 ascent skipped, 2 non-positive
            curvature, 3 capped; all 0 for plain methods), shape (S, L).
        stop_reason: None for a run that finished its epochs, otherwise a
            one-line explanation (e.g. a non-finite loss).
    """

    epoch: List[int] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    metrics: Dict[str, List[float]] = field(default_factory=dict)
    time: List[float] = field(default_factory=list)
    steps: List[int] = field(default_factory=list)
    step_loss: List[float] = field(default_factory=list)
    step_sizes: List[List[float]] = field(default_factory=list)
    fallbacks: List[List[int]] = field(default_factory=list)
    stop_reason: Optional[str] = None

    @property
    def diverged(self) -> bool:
        """True when the run stopped early on a non-finite value."""
        return self.stop_reason is not None

    @property
    def final_train_loss(self) -> float:
        """Training loss at the last evaluation (NaN if never evaluated)."""
        return self.train_loss[-1] if self.train_loss else float("nan")

    def final_metric(self, name: str) -> float:
        """Last value of metric ``name`` (NaN if absent)."""
        values = self.metrics.get(name, [])
        return values[-1] if values else float("nan")

    def step_size_array(self) -> np.ndarray:
        """Per-step step sizes as an array of shape (S, L) (S = 0: shape (0, 0))."""
        if not self.step_sizes:
            return np.zeros((0, 0))
        return np.asarray(self.step_sizes, dtype=np.float64)

    def fallback_fractions(self) -> np.ndarray:
        """Fraction of steps on which each block took a fallback, shape (L,)."""
        if not self.fallbacks:
            return np.zeros(0)
        return (np.asarray(self.fallbacks) != 0).mean(axis=0)

    def epoch_step_sizes(self) -> np.ndarray:
        """Mean step size per block over each epoch, shape (E, L)."""
        sizes = self.step_size_array()
        bounds = self.steps
        return np.array([sizes[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])
                         if b > a]).reshape(-1, sizes.shape[1] if sizes.size else 0)

    def record_epoch(self, epoch: int, train_loss: float, metrics: Dict[str, float],
                     seconds: float, steps: int) -> None:
        """Append one evaluation.

        Raises:
            ValueError: ``metrics`` names other metrics than the epochs before
                (the per-epoch lists would no longer line up with ``epoch``).
        """
        if self.epoch and sorted(metrics) != sorted(self.metrics):
            raise ValueError(f"eval_fn: returned the metrics {sorted(metrics)} after epoch {epoch}, "
                             f"but {sorted(self.metrics)} before; it must name the same metrics every time")
        self.epoch.append(int(epoch))
        self.train_loss.append(float(train_loss))
        for name, value in metrics.items():
            self.metrics.setdefault(name, []).append(float(value))
        self.time.append(float(seconds))
        self.steps.append(int(steps))

    def to_dict(self) -> dict:
        """JSON-ready dict (floats stay exact; NaN/inf become JSON's NaN/Infinity)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: if ``data`` lacks a field or has an unknown one.
        """
        names = {f for f in cls.__dataclass_fields__}
        if not isinstance(data, dict) or set(data) != names:
            raise ValueError(f"history: expected fields {sorted(names)}, got "
                             f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
        metrics = data["metrics"]
        per_epoch = [data[k] for k in ("epoch", "train_loss", "time", "steps")]
        per_epoch += list(metrics.values()) if isinstance(metrics, dict) else [None]
        rows = data["step_sizes"] if isinstance(data["step_sizes"], list) else [None]
        codes = data["fallbacks"] if isinstance(data["fallbacks"], list) else [None]
        if not (all(_numbers(v) for v in per_epoch + [data["step_loss"]] + rows + codes)
                and len({len(v) for v in per_epoch}) == 1 and len(per_epoch[0]) >= 1
                and len(rows) == len(data["step_loss"]) == len(codes)
                and (data["stop_reason"] is None or isinstance(data["stop_reason"], str))):
            raise ValueError("history: expected per-epoch lists of numbers of one length, "
                             "one step-size row and one fallback row per step loss, and a "
                             "stop_reason string or null")
        return cls(**{k: (dict(v) if k == "metrics" else v) for k, v in data.items()})


def _numbers(value) -> bool:
    """True for a list of ints and floats (not bools)."""
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def as_metrics(value) -> Dict[str, float]:
    """What an ``eval_fn`` returned, as {name: float}, or ValueError naming ``eval_fn``.

    NaN and Inf are kept (a diverged test loss is a result); strings, nested
    values and non-string names are refused.
    """
    if not isinstance(value, Mapping):
        raise ValueError(f"eval_fn: expected a dict {{name: number}}, got {type(value).__name__} {value!r:.60}")
    out = {}
    for name, v in value.items():
        if not isinstance(name, str):
            raise ValueError(f"eval_fn: metric names must be strings, got {name!r}")
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                and not (isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "iuf"):
            raise ValueError(f"eval_fn: metric {name!r} must be a real number, got {type(v).__name__} {v!r:.60}")
        out[name] = float(v)
    return out
