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
import itertools
import multiprocessing
import os
import signal
import time
from typing import Dict, Iterable, Tuple

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


def _serve(tasks, results) -> None:
    """A worker's loop: run each (function, argument) it is sent until None; send back
    (True, value) or (False, the exception) for each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone answers Ctrl-C
    for fn, arg in iter(tasks.get, None):
        try:
            outcome = (True, fn(arg))
        except BaseException as error:  # raised again in the parent
            outcome = (False, error)
        try:
            results.put(outcome)
        except Exception as error:  # an exception that cannot be pickled: its text
            results.put((False, RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]} "
                                             f"({error})")))


class _Pool:
    """Worker processes fed one job at a time each (so no job waits behind a long one)."""

    #: seconds between two looks at the workers while waiting for a result
    POLL = 0.05

    def __init__(self, processes, tasks, results):
        self.processes, self.tasks, self.results = processes, tasks, results

    def imap_unordered(self, fn, jobs: Iterable):
        """Yield ``fn(job)`` for every job, in the order they finish."""
        pending, busy = iter(jobs), 0
        for job in itertools.islice(pending, len(self.processes)):
            self.tasks.put((fn, job))
            busy += 1
        while busy:
            ok, value = self._receive()
            busy -= 1
            if not ok:
                raise value
            for job in itertools.islice(pending, 1):
                self.tasks.put((fn, job))
                busy += 1
            yield value

    def _receive(self):
        while self.results.empty():
            dead = [p.exitcode for p in self.processes if p.exitcode is not None]
            if dead and self.results.empty():
                raise RuntimeError(f"a worker process ended unexpectedly (exit code {dead[0]}); "
                                   "the runs it had finished are kept")
            time.sleep(self.POLL)
        return self.results.get()


@contextlib.contextmanager
def worker_pool(workers: int):
    """``workers`` spawned processes, ended when the block ends however it ends: told to stop
    after a normal end, terminated after Ctrl-C or an error, so none outlives the block.

    Use ``pool.imap_unordered(run_job, jobs)`` inside the block.
    """
    context = multiprocessing.get_context("spawn")
    tasks, results = context.SimpleQueue(), context.SimpleQueue()
    processes = [context.Process(target=_serve, args=(tasks, results), daemon=True)
                 for _ in range(workers)]
    with _environment(worker_environment(workers)):
        for process in processes:
            process.start()
    finished = False
    try:
        yield _Pool(processes, tasks, results)
        finished = True
    finally:
        if finished:
            for _ in processes:
                tasks.put(None)
            for process in processes:
                process.join(timeout=30)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
