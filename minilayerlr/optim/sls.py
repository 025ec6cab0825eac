"""SLS: SGD with a stochastic Armijo line search on the current mini-batch (Vaswani et al. 2019).

At step k, with f the loss of the *same* mini-batch that gave g = ∇f(x_k)::

    η ← min(η_{k−1} · γ^{1/n_b}, η_max)              (reset, the paper's option 2)
    while f(x_k − η g) > f(x_k) − c η ‖g‖²:  η ← β η  (backtracking)
    x_{k+1} = x_k − η g,   η_k = η

with n_b the number of mini-batches per epoch. Each trial costs one forward
pass (the ``loss`` oracle); the state records how many were made.

References:
    Vaswani, Mishkin, Laradji, Schmidt, Gidel & Lacoste-Julien, "Painless
    Stochastic Gradient: Interpolation, Line-Search, and Convergence Rates",
    NeurIPS 2019, arXiv 1905.09997, Algorithm 1 (SGD + Armijo) with the reset
    of its Algorithm 2. Official implementation: github.com/IssamLaradji/sls
    (package ``sls`` 0.1.0, ``sls/sls.py``, ``sls/utils.py``).

Following the official ``Sls``: c = 0.1, β = 0.9 (``beta_b``), γ = 2,
init_step_size = 1 (the first trial is 1·γ^{1/n_b}), n_b = 500 by default, at
most 100 trials; if none is accepted, the step is 10⁻⁶·g and the reduced η is
kept; if ‖g‖ < 10⁻⁸ no step is taken. The official reset code is numbered
differently (its ``reset_option=1`` is the paper's option 2).

Departures:
    * η_max = 10 caps the reset η, as the repository's first ``reset_step`` did
      (``min(η·γ^{1/n_b}, 10)``); the current official code uses ``eta_max``
      only in its Goldstein variant.
    * f(x_k) comes from one extra call of the ``loss`` oracle (the official
      closure reuses the forward pass of the gradient); ``loss_evaluations``
      counts it, so the extra cost over SGD is ``loss_evaluations − 1`` forward passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.optim.base import check_state
from minilayerlr.optim.checks import require_params
from minilayerlr.optim.oracles import check_oracle
from minilayerlr.optim.state_checks import check_scalar
from minilayerlr.tree import Params, block_sq_norm, check_tree, num_blocks, tree_map
from minilayerlr.validation import check_int, check_positive, check_unit_interval

#: the official code's gradient-norm threshold below which no step is taken
_TINY_GRADIENT = 1e-8
#: the official code's step when no trial satisfies the Armijo condition
_FALLBACK_STEP = 1e-6


@dataclass(frozen=True)
class SLSState:
    """State of :class:`SLS`.

    Attributes:
        count: number of steps taken.
        step_size: η_k, the last accepted (or reduced) η; the next search starts from it.
        step_sizes: the η actually applied at the last step, per block, shape (L,)
            (0 if ‖g‖ < 10⁻⁸, 10⁻⁶ if the search failed).
        backtracks: number of reductions η ← βη at the last step.
        loss_evaluations: calls of the ``loss`` oracle at the last step
            (1 for f(x_k) plus one per trial).
        total_loss_evaluations: the same, summed over all steps.
        armijo_satisfied: True if the last step's η passed the Armijo test.
    """

    count: int
    step_size: float
    step_sizes: np.ndarray
    backtracks: int = 0
    loss_evaluations: int = 0
    total_loss_evaluations: int = 0
    armijo_satisfied: bool = False

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless η is finite and ≥ 0 and the counts are integers ≥ 0."""
        check_scalar(self.step_size, f"{where}.step_size", minimum=0)
        for name in ("backtracks", "loss_evaluations", "total_loss_evaluations"):
            check_scalar(getattr(self, name), f"{where}.{name}", minimum=0, integer=True)
        if not isinstance(self.armijo_satisfied, (bool, np.bool_)):
            raise TypeError(f"{where}.armijo_satisfied: expected True or False, "
                            f"got {self.armijo_satisfied!r}")


@dataclass(frozen=True)
class SLS:
    """SGD with the stochastic Armijo line search (SGD-Armijo of Vaswani et al. 2019).

    Args:
        c: Armijo constant in (0, 1) (default 0.1).
        beta: backtracking factor β in (0, 1) (default 0.9).
        gamma: reset growth γ ≥ 1 per epoch (default 2).
        max_step: η_max > 0 (default 10).
        init_step_size: η_0 > 0 before the first reset (default 1).
        batches_per_epoch: n_b ≥ 1 (default 500, as the official code; pass the
            real number of mini-batches per epoch).
        max_trials: the most trials per step (default 100, official).

    References: see the module docstring (arXiv 1905.09997; IssamLaradji/sls).
    """

    oracles: ClassVar[Tuple[str, ...]] = ("loss",)

    c: float = 0.1
    beta: float = 0.9
    gamma: float = 2.0
    max_step: float = 10.0
    init_step_size: float = 1.0
    batches_per_epoch: int = 500
    max_trials: int = 100

    def __post_init__(self):
        for name in ("c", "beta"):
            check_unit_interval(name, getattr(self, name))
            check_positive(name, getattr(self, name))
        check_positive("gamma", self.gamma)
        if self.gamma < 1:
            raise ValueError(f"gamma: expected a number >= 1, got {self.gamma!r}")
        check_positive("max_step", self.max_step)
        check_positive("init_step_size", self.init_step_size)
        check_int("batches_per_epoch", self.batches_per_epoch)
        check_int("max_trials", self.max_trials)

    def init(self, params: Params) -> SLSState:
        """Return the initial state: η = init_step_size, nothing counted."""
        check_tree(params, "params")
        return SLSState(count=0, step_size=float(self.init_step_size),
                        step_sizes=np.zeros(num_blocks(params)))

    def update(self, grads: Params, state: SLSState, params: Optional[Params] = None, *,
               loss: Optional[Callable[[Params], float]] = None) -> Tuple[Params, SLSState]:
        """One SGD-Armijo step.

        Args:
            grads: g = ∇f(x_k) on the mini-batch.
            state: from ``init`` or the previous ``update``.
            params: x_k (required: the trials are x_k − η g).
            loss: the oracle θ ↦ f(θ) on the same mini-batch.

        Returns:
            ``(updates, new_state)`` with updates = −η_k g.

        Raises:
            ValueError: missing ``loss`` or ``params``; NonFiniteError if f(x_k) is not finite.
        """
        loss = check_oracle("loss", loss, "SLS")
        check_state(state, SLSState, "SLS", grads)
        require_params(params, grads, "SLS", "the trial points x_k − ηg")
        eta = min(state.step_size * self.gamma ** (1.0 / self.batches_per_epoch), self.max_step)
        grad_sq = float(block_sq_norm(grads).sum())
        if math.sqrt(grad_sq) < _TINY_GRADIENT:
            updates = tree_map(lambda g: np.zeros_like(g), grads)
            return updates, self._state(state, eta, 0.0, 0, 0, False)

        f0 = _value(loss(params), "loss")
        trials, found = 0, False
        while trials < self.max_trials:
            trials += 1
            updates = tree_map(lambda g: -eta * g, grads)
            f1 = _real(loss(tree_map(lambda x, u: x + u, params, updates)), "loss")
            if f1 <= f0 - self.c * eta * grad_sq:  # NaN/inf compares False: backtrack
                found = True
                break
            eta = eta * self.beta
        applied = eta
        if not found:
            applied = _FALLBACK_STEP
            updates = tree_map(lambda g: -applied * g, grads)
        return updates, self._state(state, eta, applied, trials - 1 if found else trials,
                                    trials + 1, found)

    @staticmethod
    def _state(state: SLSState, eta: float, applied: float, backtracks: int, evaluations: int,
               found: bool) -> SLSState:
        return SLSState(count=state.count + 1, step_size=float(eta),
                        step_sizes=np.full(len(state.step_sizes), float(applied)),
                        backtracks=int(backtracks), loss_evaluations=int(evaluations),
                        total_loss_evaluations=int(state.total_loss_evaluations + evaluations),
                        armijo_satisfied=bool(found))


def _real(value, name: str) -> float:
    """``value`` as a float, or TypeError naming ``name`` unless it is one real number (NaN allowed)."""
    array = np.asarray(value) if not isinstance(value, (str, bytes)) else np.asarray(None)
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        what = f"an array of shape {array.shape}" if array.ndim else repr(value)[:60]
        raise TypeError(f"{name}: the oracle must return one real number f(θ), got {what}")
    return float(array)


def _value(value, name: str) -> float:
    """``value`` as a finite float, or TypeError / NonFiniteError naming ``name``."""
    value = _real(value, name)
    if not math.isfinite(value):
        raise NonFiniteError(f"{name}: the oracle returned {value} at the current parameters")
    return value
