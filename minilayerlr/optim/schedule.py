"""A learning-rate schedule as a wrapper of any optimizer: cosine decay to zero, or step decay.

:class:`Scheduled` multiplies the updates of its base method by s(t), where
t = 0, 1, ..., T − 1 counts the steps taken before this one and T is the
run's total number of steps (``total_steps``, given explicitly: the caller
knows it, e.g. epochs × mini-batches per epoch)::

    cosine:  s(t) = (1 + cos(π t / T)) / 2           (1 at t = 0, 1/2 at T/2, 0 at T)
    step:    s(t) = 0.1^k,  k = [t ≥ T/2] + [t ≥ 3T/4]   (×0.1 at 50 % and at 75 % of the run)
    updates = s(t) · base updates,  so  η_t = η₀ · s(t)  for a base with learning rate η₀

For SGD (with momentum) and AdamW this is what a learning-rate scheduler does
in PyTorch: the whole step, AdamW's decoupled decay term included, is scaled
by η_t; the momentum and moment buffers are the base's, unscaled. The state
records the multiplier and the rate of every step (``multiplier``, ``lr``).
A step past the schedule (t ≥ T) is refused: T was not the run's length.

The cosine factor is computed as sin²(π (T − t) / (2T)), the same number as
(1 + cos(π t/T))/2 without its cancellation near t = T (a few ulps relative
everywhere; exactly 1 at t = 0 and 0 at t = T).

References:
    Loshchilov & Hutter, arXiv 1608.03983 (SGDR), eq. (5), without restarts;
    optax ``scale_by_schedule`` / ``cosine_decay_schedule`` (the composition);
    He et al., arXiv 1512.03385, §3.4 (the rate divided by 10 at fixed points).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from minilayerlr.optim.base import check_state_type, step_diagnostics
from minilayerlr.optim.state_checks import check_block_arrays
from minilayerlr.tree import Params, num_blocks, tree_map

#: the schedules :class:`Scheduled` knows
SCHEDULES = ("cosine", "step")
#: step decay: the factor applied at each boundary, and the boundaries as fractions of the run
STEP_FACTOR, STEP_BOUNDARIES = 0.1, (0.5, 0.75)


def schedule_multiplier(schedule: str, t: int, total_steps: int) -> float:
    """s(t) of ``schedule`` for the step t (0-based) of a run of ``total_steps`` = T steps.

    Args:
        schedule: "cosine" or "step" (see the module docstring for the formulas).
        t: steps taken before this one, 0 ≤ t ≤ T (t = T is the rate after the run).
        total_steps: T ≥ 1.

    Returns:
        s(t) in [0, 1]: cosine (1 + cos(π t/T))/2; step 0.1^k with k boundaries passed.
    """
    _check_schedule(schedule, total_steps)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= total_steps:
        raise ValueError(f"t: expected an integer step in 0..{total_steps} (total_steps), got {t!r}")
    t, T = int(t), int(total_steps)
    if schedule == "cosine":
        return math.sin(math.pi * (T - t) / (2 * T)) ** 2
    # the boundaries t ≥ T/2 and t ≥ 3T/4 in integers (exact for every T)
    passed = int(2 * t >= T) + int(4 * t >= 3 * T)
    return STEP_FACTOR ** passed


def _check_schedule(schedule, total_steps) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if (isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer))
            or total_steps < 1):
        raise ValueError(f"total_steps: expected an integer >= 1 (the run's steps, epochs × "
                         f"steps per epoch), got {total_steps!r}")


@dataclass(frozen=True)
class ScheduledState:
    """State of :class:`Scheduled`.

    Attributes:
        count: number of steps taken.
        base_state: the wrapped method's state.
        multiplier: s(t) used at the last step (0.0 before the first).
        lr: the rate used at the last step, η₀·s(t) (η₀ = the base's ``lr``; for a
            base without one, the multiplier itself); 0.0 before the first step.
        step_sizes: the base's step size per block times s(t) at the last step, shape (L,).
    """

    count: int
    base_state: Any
    multiplier: float
    lr: float
    step_sizes: np.ndarray

    def diagnostics(self) -> dict:
        """What the training loop records per step: the scheduled step sizes, the base's fallbacks."""
        return {"step_sizes": self.step_sizes,
                "fallbacks": step_diagnostics(self.base_state)["fallbacks"]}

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless the multiplier is in [0, 1], lr finite ≥ 0, sizes finite."""
        for name, high, what in (("multiplier", 1.0, "in [0, 1]"), ("lr", math.inf, ">= 0")):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (float, np.floating))
                    or not (math.isfinite(value) and 0.0 <= value <= high)):
                raise ValueError(f"{where}.{name}: expected a finite float {what}, got {value!r}")
        check_block_arrays(self, ("step_sizes",), where=where)


@dataclass(frozen=True)
class Scheduled:
    """A base method whose updates are scaled by a decaying schedule s(t) over ``total_steps``.

    Args:
        base: any optimizer of the protocol (``init``/``update``, optional ``oracles``).
        total_steps: T ≥ 1, the number of steps the run takes; a step t ≥ T is refused.
        schedule: "cosine" (default; to zero at T) or "step" (×0.1 at T/2 and at 3T/4).

    Example::

        opt = Scheduled(SGD(lr=0.1, momentum=0.9), total_steps=epochs * steps_per_epoch)
    """

    base: Any
    total_steps: int
    schedule: str = "cosine"

    def __post_init__(self):
        if not (callable(getattr(self.base, "init", None)) and callable(getattr(self.base, "update", None))):
            raise TypeError(f"base: expected an optimizer with init and update, got "
                            f"{type(self.base).__name__}")
        _check_schedule(self.schedule, self.total_steps)

    @property
    def oracles(self) -> Tuple[str, ...]:
        """The base method's oracles: the schedule needs none."""
        return tuple(getattr(self.base, "oracles", ()))

    @property
    def base_lr(self) -> float:
        """η₀: the base's learning rate, or 1.0 for a base without one (then lr = s(t))."""
        lr = getattr(self.base, "lr", None)
        return 1.0 if lr is None else float(lr)

    def rate(self, t: int) -> float:
        """η_t = η₀·s(t), the rate of step t (0 ≤ t ≤ total_steps)."""
        return self.base_lr * schedule_multiplier(self.schedule, t, self.total_steps)

    def init(self, params: Params) -> ScheduledState:
        """Return the initial state: the base's, and no rate used yet."""
        base_state = self.base.init(params)  # checks params
        return ScheduledState(count=0, base_state=base_state, multiplier=0.0, lr=0.0,
                              step_sizes=np.zeros(num_blocks(params)))

    def update(self, grads: Params, state: ScheduledState, params: Optional[Params] = None,
               **oracles) -> Tuple[Params, ScheduledState]:
        """Return s(t) × the base's updates (t = ``state.count``) and the new state.

        Args:
            grads: g, same structure as params.
            state: from ``init`` or the previous ``update``.
            params: θ (the base may need them, e.g. for weight decay).
            **oracles: handed to the base unchanged (its ``oracles``).

        Raises:
            ValueError: naming ``total_steps`` when this step is past the schedule.
        """
        check_state_type(state, ScheduledState, "Scheduled")
        t = int(state.count)
        if t >= self.total_steps:
            raise ValueError(f"total_steps: the schedule covers {self.total_steps} steps, but "
                             f"this is step {t + 1}; build the optimizer with the run's total "
                             "steps (epochs × steps per epoch)")
        s = schedule_multiplier(self.schedule, t, self.total_steps)
        updates, base_state = self.base.update(grads, state.base_state, params, **oracles)
        if s != 1.0:  # s = 1 leaves the base's updates bit for bit
            updates = tree_map(lambda u: s * u, updates)  # a Python float keeps the dtype
        sizes = np.asarray(step_diagnostics(base_state)["step_sizes"], dtype=np.float64) * s
        return updates, ScheduledState(count=t + 1, base_state=base_state, multiplier=float(s),
                                       lr=self.base_lr * s, step_sizes=sizes)
