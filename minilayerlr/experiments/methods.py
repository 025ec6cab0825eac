"""The method registry: every optimizer ``compare``, ``bench`` and ``train`` know, one entry each.

A :class:`Method` says how to build the optimizer (with a learning rate for
tuned methods), whether it is tuned over a grid or tuning-free (its grid on each
task lives in that task's record, ``tasks.TASKS``), and whether it needs full batches or takes the layer-wise options. What
each step hands the optimizer is decided by the optimizer itself, through its
``oracles`` attribute (``minilayerlr.optim.oracles``); the cost of each oracle
in gradient equivalents is counted in ``experiments.cost``.

Adding a method is one call, e.g. for a tuning-free peer::

    register(Method("dog", "DoG", lambda lr, options, steps: DoG(), tuned=False,
                    description="DoG (Ivgi et al. 2023), defaults of dog-optimizer"))

and for a tuned one, whose grid on each task goes into that task's record in
``tasks.TASKS`` (``lr_grids={..., "shampoo": (0.01, 0.03, 0.1)}``; half-decade steps,
bracketing the best rate)::

    register(Method("shampoo", "Shampoo", lambda lr, options, steps: Shampoo(lr=lr), tuned=True,
                    description="Shampoo (Gupta et al. 2018)"))

(a method registered from outside the package brings its grids: ``register(method,
lr_grid={"cnn": (...), ...})`` files them into the task records);

a learning-rate method with a schedule (``optim.Scheduled``: the build returns the base,
``build_optimizer`` wraps it over the run's ``total_steps``)::

    register(Method("sgd-cos", "SGD-m cosine", lambda lr, options, steps: SGD(lr=lr, momentum=0.9),
                    tuned=True, grid_of="sgd", schedule="cosine"))

and the global-step ablation, which takes the layer-wise options but is not one of the
paper's layer-wise methods (then also add its row to ``ablation.VARIANTS``)::

    register(Method("sgd-global", "SGD-m-GS",
                    lambda lr, options, steps: GlobalStepSize(SGD(momentum=0.9), **options),
                    tuned=False, step_options=True, description="..."))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Optional, Tuple

from ..optim import (GDLS, KFAC, LDoG, SGD, SLS, AdaHessian, AdamW, DoG, GlobalStepSize,
                     LayerwiseStepSize, Prodigy, SCHEDULES, Scheduled, Shampoo)
from ..optim.oracles import required_oracles
from .tasks import TASKS

#: options the layer-wise methods accept from the command line / ablations
LS_OPTION_NAMES = ("scale", "ema", "curvature_kind", "denominator")


@dataclass(frozen=True)
class Method:
    """One optimizer of the line-up.

    Attributes:
        name: the command-line key (``--optimizer NAME``, ``--optimizers a,b``).
        label: the name in tables and plots.
        build: ``(lr, options, steps) -> optimizer``; ``lr`` is None for
            tuning-free methods, ``options`` a dict of layer-wise options ({}
            otherwise), ``steps`` the mini-batches per epoch of the task (None
            when unknown; e.g. SLS's reset uses it).
        tuned: True if the method needs a learning rate chosen over a grid: the
            task record's ``lr_grids[grid_of or name]`` (``tasks.TASKS``).
        grid_of: the method whose grids it runs (e.g. "sgd" for "sgd-cos"); None: its own.
        full_batch: trains on the whole training set per step (then it runs
            only on tasks that are full batch anyway, e.g. gcn).
        layerwise: one of the paper's layer-wise methods: it gets a verdict
            column in results.md, the step-size plot and the stability picture.
        step_options: takes the ``LS_OPTION_NAMES`` options (--ls-scale,
            --ls-ema, the ablations); e.g. the global-step ablation does too.
        base: label of the method whose tuned learning rate its step sizes are
            compared with in plots (e.g. "SGD-m" for "SGD-m-LS").
        cost_base: name of the first-order method whose step ``bench`` prices
            this method's step against (e.g. "sgd" for "kfac"); the layer-wise
            methods use ``base`` instead.
        schedule: None, or a schedule of ``optim.SCHEDULES`` ("cosine", "step"):
            ``build_optimizer`` wraps what ``build`` returns in ``optim.Scheduled``
            over the run's total steps (which it then needs).
        in_default: in the default line-up (``compare`` without ``--optimizers``).
        description: one line for ``--help``.
    """

    name: str
    label: str
    build: Callable[[Optional[float], dict, Optional[int]], Any]
    tuned: bool
    grid_of: Optional[str] = None
    full_batch: bool = False
    layerwise: bool = False
    step_options: bool = False
    base: Optional[str] = None
    cost_base: Optional[str] = None
    schedule: Optional[str] = None
    in_default: bool = True
    description: str = ""

    @property
    def lr_grid(self) -> Dict[str, Tuple[float, ...]]:
        """Task name -> the learning rates tried, read from the task records ({} if tuning-free)."""
        key = self.grid_of or self.name
        return {t: tuple(r.lr_grids[key]) for t, r in TASKS.items()
                if self.tuned and key in r.lr_grids}

    def grid(self, task: str, quick: bool = False) -> Tuple[Optional[float], ...]:
        """The learning rates to run on ``task``: (None,) for tuning-free methods.

        ``quick`` runs every method once: the middle rate of the grid (our choice).
        """
        if not self.tuned:
            return (None,)
        grid = self.lr_grid.get(task)
        if grid is None:
            raise ValueError(f"optimizer: {self.label} has no learning-rate grid for task {task}")
        return (grid[len(grid) // 2],) if quick else grid

    def runs_on(self, task_full_batch: bool) -> bool:
        """Full-batch methods run only where the task itself is full batch (affordable)."""
        return task_full_batch or not self.full_batch


METHODS: Dict[str, Method] = {}


def register(method: Method, lr_grid: Optional[Dict[str, Tuple[float, ...]]] = None) -> Method:
    """Add ``method`` to the registry (its name must be new).

    ``lr_grid`` (task name -> learning rates) is for a tuned method registered from
    outside the package: its grids are filed into the task records, where the
    package's own methods keep theirs.
    """
    if method.name in METHODS:
        raise ValueError(f"method: {method.name!r} is already registered")
    if method.schedule is not None and method.schedule not in SCHEDULES:
        raise ValueError(f"method: schedule of {method.name!r} must be one of "
                         f"{', '.join(SCHEDULES)}, got {method.schedule!r}")
    unknown = sorted(set(lr_grid or {}) - set(TASKS))
    if unknown:
        raise ValueError(f"lr_grid: no task named {', '.join(unknown)}")
    if method.tuned and not (lr_grid or method.lr_grid):
        raise ValueError(f"method: the tuned method {method.name!r} has no learning-rate grid "
                         "in the task records (tasks.TASKS)")
    for task, grid in (lr_grid or {}).items():
        record = TASKS[task]
        TASKS[task] = replace(record, lr_grids={**record.lr_grids, method.name: tuple(grid)})
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The registered method ``name`` (ValueError listing the names otherwise)."""
    if name not in METHODS:
        raise ValueError(f"optimizer: expected one of {', '.join(METHODS)}, got {name!r}")
    return METHODS[name]


def default_methods() -> list:
    """Names of the default line-up, in registry order (every method with ``in_default``)."""
    return [name for name, m in METHODS.items() if m.in_default]


def parse_methods(text: Optional[str]):
    """``"sgd,adamw-ls"`` -> the Method objects, in registry order; None -> the default line-up."""
    if text is None:
        return [METHODS[name] for name in default_methods()]
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError("--optimizers: give at least one name, e.g. --optimizers sgd,sgd-ls")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"--optimizers: unknown {', '.join(unknown)}; known: {', '.join(METHODS)}")
    return [m for m in METHODS.values() if m.name in names]


def build_optimizer(name: str, lr: Optional[float] = None, options: Optional[dict] = None,
                    steps_per_epoch: Optional[int] = None, total_steps: Optional[int] = None):
    """The optimizer of method ``name`` with learning rate ``lr`` and layer-wise ``options``.

    ``steps_per_epoch`` (the task's mini-batches per epoch) is handed to methods that use it;
    ``total_steps`` (the run's steps, epochs × steps per epoch) to scheduled methods, which
    need it (others ignore it).

    Raises:
        ValueError: unknown name, a missing or non-positive lr for a tuned
            method, an lr for a tuning-free one, options for a method that
            takes none, a scheduled method without a valid ``total_steps``.
    """
    method = get_method(name)
    if method.tuned and lr is None:
        raise ValueError(f"lr: {method.label} needs a learning rate")
    if method.tuned and not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}")
    if not method.tuned and lr is not None:
        raise ValueError(f"lr: {method.label} chooses its own step sizes; do not pass a learning rate")
    options = dict(options or {})
    if options and not method.step_options:
        raise ValueError(f"options: {method.label} takes no layer-wise options, got {sorted(options)}")
    unknown = sorted(set(options) - set(LS_OPTION_NAMES))
    if unknown:
        raise ValueError(f"options: expected names from {LS_OPTION_NAMES}, got {unknown}")
    built = method.build(lr, options, steps_per_epoch)
    if method.schedule is None:
        return built
    if total_steps is None:
        raise ValueError(f"total_steps: {method.label} decays its rate over the run; give the "
                         "run's total steps (epochs × steps per epoch)")
    return Scheduled(built, total_steps, method.schedule)  # checks total_steps


def oracles_of(name: str) -> Tuple[str, ...]:
    """The oracles the optimizer of method ``name`` declares (built with a placeholder lr)."""
    method = get_method(name)
    lr = method.grid(next(iter(method.lr_grid)))[0] if method.tuned else None
    return required_oracles(build_optimizer(name, lr, total_steps=1))  # a schedule adds none


#: Shampoo's grafting in the line-up ("none" = as released: grafting from AdaGrad or SGD did not
#: beat it, docs/peers.md)
SHAMPOO_GRAFT = "none"


def _gdls(lr, options, steps):
    if "ema" in options:
        raise ValueError("ema: gd-ls is the idealized method without averaging")
    if "denominator" in options:  # ρ = 0: the denominator is this step's q_l, whatever its average
        raise ValueError("denominator: gd-ls divides by the full-batch q_l itself (no average)")
    return GDLS(**options)


# -- the existing methods (the tuned ones' grids: in the task records, tasks.TASKS) -----------
register(Method(
    "sgd", "SGD-m", lambda lr, o, n: SGD(lr=lr, momentum=0.9), tuned=True,
    description="SGD with heavy-ball momentum 0.9 (needs --lr)"))
register(Method(
    "adamw", "AdamW", lambda lr, o, n: AdamW(lr=lr), tuned=True,
    description="AdamW, PyTorch defaults (needs --lr)"))
register(Method(
    "sgd-ls", "SGD-m-LS", lambda lr, o, n: LayerwiseStepSize(SGD(momentum=0.9), **o), tuned=False,
    layerwise=True, step_options=True, base="SGD-m",
    description="SGD-m directions with layer-wise step sizes (no --lr)"))
register(Method(
    "adamw-ls", "AdamW-LS", lambda lr, o, n: LayerwiseStepSize(AdamW(), **o), tuned=False,
    layerwise=True, step_options=True, base="AdamW",
    description="AdamW directions with layer-wise step sizes (no --lr)"))
register(Method(
    "gd-ls", "GD-LS", _gdls, tuned=False, full_batch=True, layerwise=True, step_options=True,
    base="SGD-m",
    description="the idealized full-batch gradient descent with layer-wise step sizes "
                "(full-batch tasks only)"))

# -- the peers (issue 11): tuning-free methods at their official defaults -------------------
register(Method(
    "sgd-global", "SGD-m-GS", lambda lr, o, n: GlobalStepSize(SGD(momentum=0.9), **o),
    tuned=False, step_options=True, base="SGD-m", cost_base="sgd",
    description="the global-step ablation: the same rule with one block for the whole network "
                "(one exact HVP), on SGD-m directions (no --lr)"))
register(Method("dog", "DoG", lambda lr, o, n: DoG(), tuned=False, cost_base="sgd",
                description="DoG, Ivgi, Hinder & Carmon 2023, dog-optimizer defaults (no --lr)"))
register(Method("ldog", "LDoG", lambda lr, o, n: LDoG(), tuned=False, cost_base="sgd",
                description="layer-wise DoG, same paper and defaults (no --lr)"))
register(Method("prodigy", "Prodigy", lambda lr, o, n: Prodigy(), tuned=False,
                cost_base="adamw",
                description="Prodigy, Mishchenko & Defazio 2023, prodigyopt 1.1 defaults (no --lr)"))
register(Method("sls", "SLS", lambda lr, o, n: SLS(batches_per_epoch=n or 500), tuned=False,
                cost_base="sgd",
                description="SGD with the stochastic Armijo line search, Vaswani et al. 2019, "
                            "official defaults, reset per epoch (no --lr)"))

# -- the peers (issue 11): second-order methods, tuned over a grid ----------------------------
# Everything but the tuned value at the official defaults (see each class); the grids of the
# tuned value are in the task records (tasks.TASKS).
# K-FAC (issue 19): the default K-FAC chooses its step size and momentum from the exact
# quadratic model and adapts λ (M&G 2015 §6.5-§7, the kfac package's qmodel/adapt_damping), so
# its "lr" column is the one value the package leaves to the user: the initial damping λ₀.
register(Method(
    "kfac", "K-FAC", lambda lr, o, n: KFAC(damping=lr), tuned=True, cost_base="sgd",
    description="K-FAC (Martens & Grosse 2015; KFC for conv): step and momentum "
    "from the exact quadratic model, Levenberg-Marquardt damping; tuned value = the initial "
    "damping (--lr sets it)"))
# Shampoo (issue 19): as released in TensorFlow 1.15; the comparison with and without grafting
# (docs/peers.md) entered SHAMPOO_GRAFT.
register(Method(
    "shampoo", "Shampoo", lambda lr, o, n: Shampoo(lr=lr, graft=SHAMPOO_GRAFT), tuned=True,
    cost_base="sgd",
    description=f"Shampoo (Gupta, Koren & Singer 2018) as released in TensorFlow 1.15, "
                f"grafting {SHAMPOO_GRAFT}, roots every step (needs --lr)"))
register(Method(
    "adahessian", "AdaHessian", lambda lr, o, n: AdaHessian(lr=lr), tuned=True,
    cost_base="adamw",
    description="AdaHessian (Yao et al. 2021), Hutchinson diagonal from one HVP (needs --lr)"))


# -- the horizon (issue 24): SGD-m and AdamW tuned with a decaying schedule ---------------------
# The same base and the same grid per task as the constant-rate entry (the grid's rate is the
# initial rate η₀); cosine decay in the default line-up, the step decay (×0.1 at 50 % and 75 %
# of the run, as the authors' group's benchmark code decays its baselines) on request.
def _scheduled(of: str, schedule: str, name: str, in_default: bool) -> Method:
    base = METHODS[of]
    what = {"cosine": "cosine decay to zero over the run",
            "step": "the rate ×0.1 at 50% and at 75% of the run"}[schedule]
    return register(Method(
        name, f"{base.label} {schedule}", base.build, tuned=True, grid_of=of,
        cost_base=of, schedule=schedule, in_default=in_default,
        description=f"{base.label} with {what} (needs --lr, the initial rate)"
                    + ("" if in_default else "; not in the default line-up")))


_scheduled("sgd", "cosine", "sgd-cos", True)
_scheduled("adamw", "cosine", "adamw-cos", True)
_scheduled("sgd", "step", "sgd-step", False)
_scheduled("adamw", "step", "adamw-step", False)
