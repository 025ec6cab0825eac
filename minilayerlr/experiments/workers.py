"""The runs of a comparison in a pool of worker processes (``compare --jobs N``), standard library only.

Each worker is a fresh interpreter (multiprocessing's "spawn" start method)
started with the BLAS thread variables (:data:`THREAD_VARIABLES`) set in its
environment, so they hold before NumPy loads there: each of N workers gets
``cores // N`` threads (at least 1), unless the user set a variable, which is
then kept as given. A worker builds each task it meets once (the same
``build_task`` call as the parent, so the same data) and returns the finished
run's record; the parent writes it to ``runs/`` as it arrives, so the records
on disk are the same whatever N is.

Workers ignore SIGINT: Ctrl-C (which a terminal sends to every process of the
group) reaches the parent alone, which terminates the pool and keeps every run
it has received. A run that raises in a worker raises in the parent too.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from typing import Dict, Tuple

#: the variables that set the thread count of OpenBLAS, OpenMP (and BLAS built on it),
#: MKL and Apple's Accelerate
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def worker_environment(jobs: int, environ=None) -> Dict[str, str]:
    """The BLAS thread variables each of ``jobs`` workers gets: the user's value where set,
    else ``available_cores() // jobs`` (at least 1), so that the workers together use the
    cores once."""
    environ = os.environ if environ is None else environ
    threads = str(max(1, available_cores() // jobs))
    return {name: environ.get(name, threads) for name in THREAD_VARIABLES}


@contextlib.contextmanager
def _environment(values: Dict[str, str]):
    """``os.environ`` with ``values`` set while the pool starts its workers; restored after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone answers Ctrl-C


_TASKS: dict = {}


def run_job(job: tuple) -> Tuple[int, dict, float]:
    """One run in a worker: (its index in the plan, its record without "_result", seconds)."""
    from .runs import run_one
    from .tasks import build_task
    index, task_args, kwargs = job
    if task_args not in _TASKS:
        name, data, data_dir, seed, quick, size = task_args
        _TASKS[task_args] = build_task(name, data=data, data_dir=data_dir, seed=seed,
                                       quick=quick, size=size)
    started = time.perf_counter()
    record = run_one(_TASKS[task_args], **kwargs)
    record.pop("_result")
    return index, record, time.perf_counter() - started


@contextlib.contextmanager
def worker_pool(workers: int):
    """A pool of ``workers`` spawned processes, terminated when the block ends however it ends
    (Ctrl-C, an error, or normally once every result is in), so no worker outlives it.

    Use ``pool.imap_unordered(run_job, jobs, chunksize=1)`` inside the block.
    """
    context = multiprocessing.get_context("spawn")
    with _environment(worker_environment(workers)):
        pool = context.Pool(workers, initializer=_init_worker)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()
