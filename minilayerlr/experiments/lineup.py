"""What a comparison runs on each task (its line-up), and the budget checks made before any run.

``lineup`` lists, per task, the methods that run on it with their options and grids;
``check_budget`` refuses up front a comparison whose records cannot fit in memory or whose
lower-bound time is beyond ``MAX_SECONDS``.
"""
from __future__ import annotations

from typing import List, Sequence

from ..errors import UserError
from ..validation import check_memory
from . import ablation as ablation_mod
from .horizon import run_epochs
from .methods import get_method
from .runs import steps_per_epoch
from .tasks import Task


def lineup(task: Task, methods: Sequence[str], quick: bool, ls_options: dict,
           ablation: bool) -> List[dict]:
    """The entries run on ``task``: label, method, options, grid (learning rates)."""
    full_batch = task.batch_size is None
    if ablation:
        return [{"label": label, "method": m, "options": dict(opts), "grid": [None], "group": g}
                for g, label, m, opts in ablation_mod.active_variants()
                if get_method(m).runs_on(full_batch)]
    out = []
    for name in methods:
        m = get_method(name)
        if m.runs_on(full_batch):
            out.append({"label": m.label, "method": name,
                        "options": dict(ls_options) if m.step_options else {},
                        "grid": list(m.grid(task.name, quick))})
    return out


#: a lower bound on the seconds one run takes (building, evaluating, writing its record) and
#: one step of the smallest task: our choice, well below what any task measures
MIN_RUN_SECONDS, MIN_STEP_SECONDS = 0.02, 1e-4
#: a comparison estimated (from those lower bounds) to take longer is refused up front
MAX_SECONDS = 30 * 24 * 3600.0


def check_duration(name: str, what: str, seconds: float) -> None:
    if seconds > MAX_SECONDS:
        raise UserError(f"{name}: {what} would take at least {seconds / 86400:.3g} days (at "
                        f"{MIN_RUN_SECONDS:g} s per run and {MIN_STEP_SECONDS:g} s per step, "
                        f"far less than any task takes), more than the {MAX_SECONDS / 86400:.0f} "
                        "days a comparison may plan; choose fewer")


def check_budget(built: List[Task], config: dict) -> None:
    """Refuse, before any run, a comparison whose runs cannot fit in memory or finish in time.

    Every record (its per-step history) is kept in memory until the reports are
    written; the time is a lower bound (``MIN_RUN_SECONDS``, ``MIN_STEP_SECONDS``).
    """
    k = len(config["seeds"])
    runs = seconds = memory = 0.0
    longest = 0.0
    for task in built:
        for entry in lineup(task, config["methods"], config["quick"], config["ls_options"],
                            config["ablation"]):
            batch = None if get_method(entry["method"]).full_batch else task.batch_size
            epochs = run_epochs(task.epochs, config["epochs"], config.get("long", False))
            steps = float(epochs) * steps_per_epoch(task, batch)
            n = float(len(entry["grid"])) * k
            runs += n
            longest = max(longest, MIN_RUN_SECONDS + steps * MIN_STEP_SECONDS)
            seconds += n * (MIN_RUN_SECONDS + steps * MIN_STEP_SECONDS)
            memory += n * (4000 + steps * (100 + 48 * len(task.block_names or [0])))
    name = "epochs" if config["epochs"] is not None and (k == 1 or longest > MAX_SECONDS) else "seeds"
    check_memory(name, f"{runs:.0f} runs ({k} seed(s)) and their records", memory)
    check_duration(name, f"{runs:.0f} runs ({k} seed(s))", seconds)
