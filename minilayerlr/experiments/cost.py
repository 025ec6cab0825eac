"""Cost of a run in gradient equivalents: oracle calls counted in the run, priced once per task.

One *gradient equivalent* is one forward + backward pass over the whole
training set (our choice of unit: an epoch of SGD costs 1, and a full-batch
step costs 1 too, so mini-batch and full-batch methods share one axis). A
step on a batch of b of N examples costs

    (b / N) · (1 + Σ_o calls_o · r_o)

where ``calls_o`` counts the calls the optimizer made to oracle ``o`` in that
step (counted by :class:`CountingOptimizer`, exactly) and ``r_o`` is the
oracle's cost as a ratio to one evaluation (forward + backward) on the same
batch. The ratios are the ``minilayerlr bench`` quantities (from the fastest of 7
runs), measured once per task on one batch at the start of a comparison
(:func:`calibrate`) and stored
in the run folder, so a resumed comparison prices its runs alike. Each oracle
of ``minilayerlr.optim.oracles`` is priced by one line of :data:`PRICES`:

==================== ================================================ =====================
oracle               what is timed, relative to ``net.evaluate``      typically
==================== ================================================ =====================
``curvature[kind]``  ``ev.layer_curvature(d, kind)``: the one sweep    0.5–1.5 (ggn, hessian)
``hvp``              ``ev.hvp(v)``: forward-over-reverse               1.5–3
``loss``             ``net.loss_value(θ, x_b, y_b)``: forward only     0.3–0.5
``kronecker_factors`` ``ev.kronecker_factors(seed=0)``: one backward   0.5–1
==================== ================================================ =====================

Work that is not a pass over the data (K-FAC's and Shampoo's inverses, the
update arithmetic) shows in wall time, not here. Batches are taken as equal
(b = N / steps per epoch; exact when b divides N, as in every default task).
"""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable, Dict, List

import numpy as np

from ..curvature import KINDS

#: oracle call key -> (what is timed, as a function of (net, params, x, y, ev)), one line each
PRICES: Dict[str, Callable] = {
    **{f"curvature[{kind}]": (lambda kind: lambda net, p, x, y, ev:
                              ev.layer_curvature(ev.grads, kind, seed=0))(kind) for kind in KINDS},
    "hvp": lambda net, p, x, y, ev: ev.hvp(ev.grads),
    "loss": lambda net, p, x, y, ev: net.loss_value(p, x, y),
    "kronecker_factors": lambda net, p, x, y, ev: ev.kronecker_factors(seed=0),
}
#: the kind ``layer_curvature`` uses when the optimizer passes none
DEFAULT_CURVATURE_KIND = "hessian"


def call_key(oracle: str, kwargs: dict) -> str:
    """The PRICES key of one oracle call (curvature calls are priced per kind)."""
    if oracle == "curvature":
        return f"curvature[{kwargs.get('kind') or DEFAULT_CURVATURE_KIND}]"
    return oracle


class CountingOptimizer:
    """An optimizer wrapped so that every oracle call its ``update`` makes is counted.

    The counts are the only state, a measuring instrument of the harness (the
    wrapped optimizer stays pure); ``repr`` is the wrapped optimizer's, so
    checkpoints and run records name the real method. ``snapshot()`` is taken
    by the run's evaluation hook after each epoch.
    """

    def __init__(self, inner):
        self.inner = inner
        self.calls: Counter = Counter()
        self.snapshots: List[Dict[str, int]] = []

    @property
    def oracles(self):
        return tuple(getattr(self.inner, "oracles", ()))

    def init(self, params):
        return self.inner.init(params)

    def update(self, grads, state, params=None, **oracles):
        self.calls["steps"] += 1
        return self.inner.update(grads, state, params,
                                 **{name: self._counted(name, fn) for name, fn in oracles.items()})

    def _counted(self, name: str, fn):
        if not callable(fn):
            return fn

        def call(*args, **kwargs):
            self.calls[call_key(name, kwargs)] += 1
            return fn(*args, **kwargs)
        return call

    def snapshot(self) -> None:
        self.snapshots.append(dict(self.calls))

    def __getattr__(self, name):  # diagnostics hooks and attributes of the wrapped optimizer
        return getattr(self.__dict__["inner"], name)

    def __repr__(self):
        return repr(self.inner)


def gradient_equivalents(snapshots: List[Dict[str, int]], ratios: Dict[str, float]) -> List[float]:
    """Cumulative gradient equivalents at each snapshot (one per evaluated epoch).

    Args:
        snapshots: cumulative call counts, ``{"steps": S, "curvature[hessian]": ...}``.
        ratios: PRICES key -> cost of one call as a ratio to one evaluation.

    Returns:
        one float per snapshot: Σ_epochs (1/steps_e)·(steps_e + Σ_o calls_o,e · r_o),
        i.e. 1 per epoch of plain steps.
    """
    out, total, previous = [], 0.0, Counter()
    for snap in snapshots:
        now = Counter(snap)
        steps = now["steps"] - previous["steps"]
        if steps > 0:
            extra = 0.0
            for key in set(now) - {"steps"}:
                calls = now[key] - previous[key]
                if calls:
                    if key not in ratios:
                        raise ValueError(f"ratios: no price for oracle calls {key!r}")
                    extra += calls * ratios[key]
            total += (steps + extra) / steps
        out.append(total)
        previous = now
    return out


def time_interleaved(jobs: Dict[str, Callable], repeat: int) -> Dict[str, List[float]]:
    """Seconds per job and round: one warm-up each, then ``repeat`` interleaved rounds.

    Round r times every job once, so that a machine whose load drifts disturbs them alike.
    """
    for fn in jobs.values():
        fn()
    samples: Dict[str, List[float]] = {name: [] for name in jobs}
    for _ in range(repeat):
        for name, fn in jobs.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return samples


def calibrate(net, params, x, y, repeat: int = 7) -> Dict[str, float]:
    """PRICES key -> fastest time of that oracle / fastest time of one evaluation, on batch (x, y).

    The fastest of ``repeat`` interleaved rounds (after a warm-up) is the run least disturbed
    by other processes (our choice: on a shared machine medians of the same ratio moved by 2×
    between two comparisons, the fastest runs far less).

    Oracles the engine does not offer (e.g. ``kronecker_factors`` before it
    exists) are left out; pricing a call to one of them is then an error.
    """
    ev = net.evaluate(params, x, y)
    jobs = {"evaluate": lambda: net.evaluate(params, x, y)}
    for key, job in PRICES.items():
        if key == "kronecker_factors" and not hasattr(ev, "kronecker_factors"):
            continue
        jobs[key] = (lambda job: lambda: job(net, params, x, y, ev))(job)
    seconds = {k: min(v) for k, v in time_interleaved(jobs, repeat).items()}
    unit = seconds.pop("evaluate")
    return {key: float(s / unit) for key, s in seconds.items()}


def fixed_prices(value: float = 1.0) -> Dict[str, float]:
    """Every oracle priced ``value`` (tests and reproducible examples)."""
    return {key: float(value) for key in PRICES}


def as_prices(ratios) -> Dict[str, float]:
    """Checked copy of a stored price table (finite, non-negative floats)."""
    out = {}
    for key, value in dict(ratios).items():
        value = float(value)
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"prices: {key} must be a finite number >= 0, got {value}")
        out[str(key)] = value
    return out
