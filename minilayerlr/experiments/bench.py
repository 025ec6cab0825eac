"""``minilayerlr bench``: the cost of curvature and of the layer-wise steps (with --peers, of every method's step), as ratios to one gradient.

For each default model of ``minilayerlr compare`` (the task registry,
``experiments.tasks``) and one fixed batch, in one process, this times one
gradient (``evaluate``), one HVP, ``layer_curvature`` of every kind, the
dense block of the smallest block (with ``peers`` only), and a whole step
of each layer-wise method and its base method (with ``peers``: of every
method of the registry, ``experiments.methods``, and the bench-only
variants), built as ``compare``
builds it and given the oracles it declares (``supply_oracles``), with
K-FAC's and Shampoo's periodic work both unamortised and amortised; and the
peak memory of every step against its base method's. What each quantity means, the
targets, why the sweep costs what it costs, and how to measure on a shared
machine: docs/cost.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from ..curvature import KINDS
from ..errors import UserError
from ..optim import apply_updates
from ..optim.oracles import supply_oracles
from ..paths import check_output_file
from .bench_report import format_table
from .cost import time_interleaved
from .methods import METHODS, SHAMPOO_GRAFT, build_optimizer
from .tasks import PAPER_TASKS

TASKS = PAPER_TASKS  # the stress tasks are tanh MLPs like the autoencoder: not priced
#: extra settings, measured only when asked for by name
EXTRA_SETTINGS = ("mlp6",)


def _ls_methods():
    """Layer-wise methods of the registry that have a base method to compare with."""
    labels = {m.label: m.name for m in METHODS.values()}
    return {m.name: labels[m.base] for m in METHODS.values() if m.layerwise and m.base in labels}


#: each layer-wise method and the method whose learning rate it replaces (from the registry)
BASE_OF = _ls_methods()
LS_METHODS = tuple(BASE_OF)
#: every method whose step is priced against a first-order base step: the layer-wise
#: methods and the peers (``Method.cost_base``), plus the bench-only variants below
STEP_BASE = {**BASE_OF, **{m.name: m.cost_base for m in METHODS.values() if m.cost_base}}
#: bench-only variants (not in the comparison): name -> (method it varies, constructor options)
VARIANTS = {
    "shampoo[update_every=10]": ("shampoo", {"update_every": 10}),
    # the Shampoo configuration the line-up does not use: grafted from AdaGrad, or as released
    (f"shampoo[graft={'adagrad' if SHAMPOO_GRAFT == 'none' else 'none'}]"):
        ("shampoo", {"graft": "adagrad" if SHAMPOO_GRAFT == "none" else "none"}),
    # K-FAC before issue 19: fixed λ = 0.1, regular momentum 0.9, lr 0.01, inverses every 10 steps
    "kfac[fixed damping]": ("kfac", {"momentum_type": "regular", "adapt_damping": False, "lr": 0.01,
                                     "damping": 0.1, "inverse_every": 10}),
}
STEP_BASE.update({name: STEP_BASE[of] for name, (of, _) in VARIANTS.items()})


def period(optimizer) -> int:
    """Steps between a method's periodic work (K-FAC's inverses, Shampoo's roots); 1 if none."""
    return int(getattr(optimizer, "inverse_every", getattr(optimizer, "update_every", 1)))


#: docs/cost.md: quantity (a key of ``ratios``) -> largest acceptable ratio.
TARGETS = {
    "curvature[ggn]": 1.0,        # extra cost over the evaluation the step already has
    "curvature[hessian]": 1.5,
    "curvature[mc_fisher]": 1.0,
    "hvp": 2.0,
    "sgd_ls_step_vs_sgd_m_step": 2.2,  # the pair docs/cost.md names; the table shows the others
    "ls_peak_memory_vs_base": 2.0,    # worst LS method against its own base method
}
ENV_KEYS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _placeholder_lr(method):
    """A learning rate for timing a tuned method (the middle of its first grid): time does not
    depend on it."""
    if not method.tuned:
        return None
    grid = next(iter(method.lr_grid.values()))
    return grid[len(grid) // 2]


def steady_malloc() -> bool:
    """Ask glibc to keep freed memory (no munmap, no trimming); False where unavailable.

    mallopt parameters from <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-1, 1 << 30)) and bool(libc.mallopt(-3, 1 << 30))
    except (OSError, AttributeError):
        return False


def _mlp6(batch_size: Optional[int], seed: int):
    """A 6-layer tanh MLP, 256 wide, softmax CE on random data (batch 256 by default)."""
    from .. import Dense, Sequential, SoftmaxCrossEntropy, Tanh
    layers = []
    for i in range(6):
        layers.append(Dense(256, 10 if i == 5 else 256))
        if i < 5:
            layers.append(Tanh())
    net = Sequential(layers, SoftmaxCrossEntropy())
    rng = np.random.default_rng(seed)
    n = batch_size or 256
    return net, net.init(seed), rng.standard_normal((n, 256)), rng.integers(0, 10, n)


def _setting(task_name: str, batch_size: Optional[int], seed: int):
    """(net, params, x, y) for one default model; the batch is the first rows of its data."""
    if task_name == "mlp6":
        return _mlp6(batch_size, seed)
    from .tasks import build_task
    task = build_task(task_name, seed=seed)
    params = task.net.init(seed)
    if task.batch_size is None:  # graphs: the whole graph is the batch
        x, y = task.x_train, task.y_train
    else:
        n = min(batch_size or task.batch_size, len(task.x_train))
        x, y = task.x_train[:n], task.y_train[:n]
    return task.net, params, x, y


#: steps taken on the batch before a method's step is timed (rounded up to a multiple of
#: its period): a method whose step changes with its state (SLS backtracks from η_max at
#: first, then from the step it found) is timed in its running state, not at start-up
WARM_STEPS = 10


def _jobs(net, params, x, y, peers: bool = True):
    """({name: zero-argument callable} for everything timed, facts about the blocks)."""
    ev = net.evaluate(params, x, y)
    d = ev.grads
    sizes = [sum(a.size for a in params[k].values()) for k in ev.blocks]
    smallest = int(np.argmin(sizes))

    def advance(opt, p, state):
        e = net.evaluate(p, x, y)
        oracles = supply_oracles(opt, e, loss=lambda q: net.loss_value(q, x, y))
        updates, state = opt.update(e.grads, state, p, **oracles)
        return apply_updates(p, updates), state

    def whole_step(opt, p, state):
        return lambda: advance(opt, p, state)  # pure: the same step every call

    jobs = {"evaluate": lambda: net.evaluate(params, x, y), "hvp": lambda: ev.hvp(d)}
    for kind in KINDS:
        jobs[f"curvature[{kind}]"] = (lambda kind=kind: ev.layer_curvature(d, kind, seed=0))
    if peers:  # a reference, not a cost of the rule: one HVP per coordinate, minutes in all
        jobs["block_hessian"] = lambda: ev.block_hessian(smallest, max_size=None)
    periods = {}
    for name, opt in _optimizers(peers).items():
        periods[name] = t = period(opt)
        p, state = params, opt.init(params)
        for _ in range(-(-WARM_STEPS // t) * t):
            p, state = advance(opt, p, state)
        # the next step does the periodic work (steps 1, 1 + t, ...); the one after reuses it
        jobs[f"step[{name}]"] = whole_step(opt, p, state)
        if t > 1:
            jobs[f"step_between[{name}]"] = whole_step(opt, *advance(opt, p, state))
    return jobs, {"num_params": int(sum(sizes)), "block_sizes": [int(s) for s in sizes],
                  "smallest_block": smallest, "periods": periods, "warm_steps": WARM_STEPS}


def _optimizers(peers: bool = True) -> dict:
    """name -> optimizer for every method of the registry and every bench-only variant
    (``peers`` False: the layer-wise methods and their base methods only)."""
    names = list(METHODS) if peers else [m for m in METHODS
                                          if m in BASE_OF or m in BASE_OF.values()]
    # a scheduled method's run length: any T beyond the warm-up (time does not depend on it)
    opts = {name: build_optimizer(name, _placeholder_lr(METHODS[name]), total_steps=10 ** 6)
            for name in names}
    for name, (of, options) in VARIANTS.items() if peers else ():
        opts[name] = dataclasses.replace(opts[of], **options)
    return opts


def _peak_bytes(fn: Callable) -> int:
    """Peak bytes allocated while ``fn`` runs (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _ratios(seconds: Dict[str, float], memory: Dict[str, float], periods: Dict[str, int]) -> dict:
    """Every time as a ratio to one evaluate, each step against its base step, the targets.

    A method with periodic work every T steps (K-FAC, Shampoo) is shown at its
    first step (the work included: unamortised), between two (``step_between``)
    and amortised, (first + (T − 1)·between) / T.
    """
    unit = seconds["evaluate"]
    ratios = {name: s / unit for name, s in seconds.items() if name != "evaluate"}
    amortised = {m: (seconds[f"step[{m}]"] + (t - 1) * seconds[f"step_between[{m}]"]) / t
                 for m, t in periods.items() if t > 1}
    ratios.update({f"step_amortised[{m}]": s / unit for m, s in amortised.items()})

    def vs_base(m, s):
        return s / seconds[f"step[{STEP_BASE[m]}]"]
    steps = {m: vs_base(m, seconds[f"step[{m}]"]) for m in STEP_BASE if m in periods}
    ratios["sgd_ls_step_vs_sgd_m_step"] = steps["sgd-ls"]
    ratios["ls_peak_memory_vs_base"] = max(memory[m] for m in LS_METHODS)
    # extra = what an LS step adds on top of the evaluation it shares with a plain step
    extra = {f"curvature[{kind}]": ratios[f"curvature[{kind}]"] for kind in KINDS}
    extra.update({f"step[{m}]": (seconds[f"step[{m}]"] - seconds[f"step[{BASE_OF[m]}]"]) / unit
                  for m in LS_METHODS})
    targets = {q: {"value": ratios[q], "target": t, "holds": bool(ratios[q] <= t)}
               for q, t in TARGETS.items()}
    return {"ratios": ratios, "ls_step_vs_base_step": {m: steps[m] for m in LS_METHODS},
            "step_vs_base": steps,
            "amortised_step_vs_base": {m: vs_base(m, s) for m, s in amortised.items()},
            "extra": extra, "targets": targets}


def bench_task(task_name: str, batch_size: Optional[int] = None, repeat: int = 5,
               seed: int = 0, peers: bool = True) -> dict:
    """Times, ratios to one ``evaluate``, peak memories and targets for one model.

    The top-level ratios use the median time of each quantity; ``of_min``
    holds the same computed from the fastest run of each, the least disturbed
    by other processes (a 1 ms job preempted for one 4 ms scheduler tick
    reads 5 ms: on a busy machine the medians of short jobs jump). ``peers``
    False times the layer-wise methods and their bases only.
    """
    net, params, x, y = _setting(task_name, batch_size, seed)
    jobs, info = _jobs(net, params, x, y, peers)
    samples = time_interleaved(jobs, repeat)
    peak = {name: _peak_bytes(jobs[name]) for name in jobs if name.startswith("step[")}
    base_of = {m: b for m, b in STEP_BASE.items() if m in info["periods"]}
    memory = {m: peak[f"step[{m}]"] / peak[f"step[{b}]"] for m, b in base_of.items()}
    seconds = {name: statistics.median(s) for name, s in samples.items()}
    fastest = {name: min(s) for name, s in samples.items()}
    periods = info["periods"]
    return {"batch_size": int(x.shape[0]), **info, "base_of": base_of, "seconds": seconds,
            **_ratios(seconds, memory, periods), "peak_bytes": peak, "peak_memory_vs_base": memory,
            "of_min": {"seconds": fastest, **_ratios(fastest, memory, periods)}, "samples": samples}


def machine_info() -> dict:
    """numpy, BLAS and CPU facts that make timings comparable across runs."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # older numpy: no dict mode
        blas = {"name": "unknown (numpy < 1.26 has no np.show_config(mode='dicts'))"}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.machine(),
            "cpu_count": os.cpu_count(), "usable_cores": cores, "load_average_1min": load,
            "blas": {k: blas.get(k) for k in ("name", "version", "openblas configuration") if k in blas},
            "environment": {k: os.environ[k] for k in ENV_KEYS if k in os.environ}}


def run_bench(tasks=TASKS, batch_size: Optional[int] = None, repeat: int = 5, seed: int = 0,
              default_malloc: bool = False, peers: bool = True) -> dict:
    """The whole benchmark as a JSON-ready dict (``peers`` False: the layer-wise methods and
    their bases only)."""
    allocator = "default" if default_malloc or not steady_malloc() else "glibc, freed memory kept"
    return {"machine": machine_info(),
            "settings": {"batch_size": batch_size, "repeat": repeat, "seed": seed,
                         "allocator": allocator, "peers": peers},
            "targets": TARGETS,
            "tasks": {name: bench_task(name, batch_size, repeat, seed, peers) for name in tasks}}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


#: bytes per example of the mlp6 setting (6 layers of 256 float64 activations and their
#: gradients, tangents and copies: an upper bound, our choice)
_MLP6_BYTES_PER_EXAMPLE = 8 * 256 * 40


def _check_batch_size(tasks, batch_size: Optional[int], seed: int) -> None:
    """Refuse, before any timing, a batch larger than a task's training set or than memory."""
    from .memory import check_batch
    from .tasks import build_task
    if batch_size is None:
        return
    if tuple(tasks) == ("gcn",):
        raise UserError("--batch-size: the gcn task always uses the whole graph; leave it out")
    for name in tasks:
        if name == "mlp6":
            check_batch("--batch-size", batch_size, _MLP6_BYTES_PER_EXAMPLE, "mlp6")
            continue
        task = build_task(name, seed=seed)
        if task.batch_size is not None and batch_size > len(task.x_train):
            raise UserError(f"--batch-size: at most {len(task.x_train)} for task {name} (its "
                            f"training examples), got {batch_size}")


#: lower bounds for the up-front estimate of --repeat: timed quantities per task, seconds each
_MIN_JOBS, _MIN_JOB_SECONDS, _MAX_BENCH_SECONDS = 20, 1e-3, 7 * 24 * 3600.0


def _check_repeat(tasks, repeat: int) -> None:
    """Refuse a --repeat whose timings cannot finish in a week or whose samples cannot fit."""
    from ..validation import check_memory
    timings = float(repeat) * _MIN_JOBS * len(tasks)
    check_memory("--repeat", f"{repeat} timed runs of each quantity", timings * 64)
    if timings * _MIN_JOB_SECONDS > _MAX_BENCH_SECONDS:
        raise UserError(f"--repeat: {repeat} timed runs of each of at least {_MIN_JOBS} quantities "
                        f"per task would take at least {timings * _MIN_JOB_SECONDS / 86400:.3g} "
                        f"days (at {_MIN_JOB_SECONDS:g} s each); choose fewer")


def _run(args) -> int:
    tasks = TASKS if args.task == "all" else (args.task,)
    if args.json:
        check_output_file("--json", args.json)
    if args.seed < 0:
        raise UserError(f"--seed: expected an integer >= 0, got {args.seed}")
    _check_repeat(tasks, args.repeat)
    _check_batch_size(tasks, args.batch_size, args.seed)
    try:
        result = run_bench(tasks, args.batch_size, args.repeat, args.seed, args.default_malloc,
                           args.peers)
    except KeyboardInterrupt:
        print("minilayerlr bench: interrupted; nothing written", file=sys.stderr)
        return 130
    print(format_table(result))
    if args.json:
        from .runs import write_json
        write_json(Path(args.json), result)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add ``minilayerlr bench`` to the command line."""
    p = subparsers.add_parser(
        "bench", help="time gradient, HVP, layer curvature and LS steps (ratios to one gradient)",
        description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=TASKS + EXTRA_SETTINGS + ("all",), default="all",
                   help="which default model to measure (default: all three); mlp6 is a "
                        "6-layer tanh MLP, 256 wide, batch 256, on random data")
    p.add_argument("--batch-size", type=_positive, metavar="N",
                   help="examples per batch (default: the task's; gcn always uses the whole graph)")
    p.add_argument("--repeat", type=_positive, default=11, metavar="K",
                   help="timed runs per quantity after one warm-up; the median and the fastest "
                        "are reported (default 11)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="data and weights seed (default 0)")
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's malloc as it is (by default the bench keeps freed memory "
                        "in the process so that page faults do not blur the timings)")
    p.add_argument("--peers", action="store_true",
                   help="also time a step of every other method of the comparison (K-FAC, "
                        "Shampoo, AdaHessian, ...) and of the bench-only variants against its "
                        "base step, and the dense Hessian of the smallest block (a reference); "
                        "without it only the layer-wise methods and their bases are stepped")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(func=_run)
