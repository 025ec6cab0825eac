"""Experiments: the paper's three task families and the optimizer comparison.

``build_task(name, ...)`` gives model, data and metric for "autoencoder",
"cnn" and "gcn"; ``run_compare(...)`` trains each with tuned SGD-m/AdamW and
untuned layer-wise step sizes and writes results and plots; ``commands``
holds the ``compare`` and ``train`` subcommands.
"""
from .compare import OPTIMIZERS, compare_task, make_optimizer, run_compare, run_one
from .tasks import DATA_NAMES, TASK_NAMES, Task, build_task

__all__ = ["DATA_NAMES", "OPTIMIZERS", "TASK_NAMES", "Task", "build_task", "compare_task",
           "make_optimizer", "run_compare", "run_one"]
