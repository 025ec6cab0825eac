"""Experiments: the paper's three task families, the method registry and the comparison.

``build_task(name, ...)`` gives model, data and metric for "autoencoder",
"cnn" and "gcn"; ``methods`` is the registry of optimizers (one entry each)
that ``compare``, ``bench`` and ``train`` build from; ``run_compare(...)``
runs every method over seeds, run by run and resumable, and writes the
verdict, the cost tables and the plots; ``commands`` and ``bench`` hold the
``compare``, ``train`` and ``bench`` subcommands.
"""
from .compare import run_compare
from .methods import METHODS, Method, build_optimizer, get_method, register
from .runs import run_one, run_record, run_spec
from .tasks import DATA_NAMES, TASK_NAMES, Task, build_task, default_data
from .verdict import RULE, paired_verdict

__all__ = ["DATA_NAMES", "METHODS", "Method", "RULE", "TASK_NAMES", "Task", "build_optimizer",
           "build_task", "default_data", "get_method", "paired_verdict", "register",
           "run_compare", "run_one", "run_record", "run_spec"]
