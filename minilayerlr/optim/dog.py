"""DoG and LDoG: SGD with the "distance over gradients" step size (Ivgi, Hinder & Carmon 2023).

DoG needs no learning rate: the step is the largest distance travelled from
the start, divided by the root of the summed squared gradient norms::

    r̄_t = max(r_ε, max_{1≤i≤t} ‖x_i − x_0‖),      r_ε = reps_rel · (1 + ‖x_0‖)
    G_t = eps + Σ_{i≤t} ‖g_i‖²
    η_t = c · r̄_t / √G_t
    x_{t+1} = x_t − η_t g_t

so the first step moves x by c·r_ε·‖g_0‖/√(‖g_0‖² + eps) ≈ c·r_ε. LDoG applies
the same formula to each block separately (‖·‖ restricted to the block).
Multiplying the loss by a constant k > 0 multiplies every g_t by k and √G_t
by k (exactly when eps = 0), so the iterates do not change: DoG is invariant
to the scale of the loss.

The paper recommends iterate averaging; with ``averaging`` set to γ ≥ 0 the
state carries the polynomial-decay average of Shamir & Zhang (2013) that the
official package ships (``PolynomialDecayAverager``, default γ = 8)::

    x̄_1 = x_1,      x̄_t = (1 − w_t) x̄_{t−1} + w_t x_t,   w_t = (1 + γ)/(t + γ)

where x_t is the point after the t-th step. Evaluate ``state.average`` to use it.

References:
    Ivgi, Hinder & Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic
    Step Size Schedule", ICML 2023, arXiv 2302.12022: Algorithm 1 (DoG) and
    the paper's layer-wise variant L-DoG. Official implementation:
    package ``dog-optimizer`` 1.0.3 (github.com/formll/dog, ``dog/dog.py``,
    ``dog/averager.py``).

Departures from dog-optimizer 1.0.3:
    * LDoG's unit is our block (a layer: W and b together); the official LDoG
      treats every parameter tensor (W, b separately) as its own group.
    * ``init_eta`` (a fixed first step overriding reps_rel) is not offered.
    * A zero G_t (possible only with eps = 0 and zero gradients so far) gives
      η_t = 0 instead of the official assertion error (our choice: g_t = 0 then,
      so the step is zero either way).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Tuple

import numpy as np

from minilayerlr.optim.base import check_state
from minilayerlr.optim.checks import require_params
from minilayerlr.optim.state_checks import check_block_arrays, check_state_tree
from minilayerlr.tree import (Params, block_indices, block_sq_norm, check_same_structure,
                              check_tree, num_blocks, tree_map)
from minilayerlr.validation import check_nonnegative, check_positive


@dataclass(frozen=True)
class DoGState:
    """State of :class:`DoG` and :class:`LDoG`; K = 1 (DoG) or L (LDoG) groups.

    Attributes:
        count: number of steps taken t.
        initial_params: x_0 (same structure as params).
        max_distance: r̄ at the last step (r_ε before the first), shape (K,).
        grad_sq_sum: G = eps + Σ‖g_i‖² so far, shape (K,).
        step_sizes: η used per block at the last step, shape (L,) (DoG: one value repeated).
        average: the polynomial-decay average x̄_t of the iterates after each
            step (x_0 before the first), or None when averaging is off.
    """

    count: int
    initial_params: Params
    max_distance: np.ndarray
    grad_sq_sum: np.ndarray
    step_sizes: np.ndarray
    average: Optional[Params] = None

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.<field>`` unless x_0 (and x̄) are finite, r̄ and G finite, ≥ 0, alike."""
        check_state_tree(self.initial_params, f"{where}.initial_params")
        check_block_arrays(self, ("max_distance", "grad_sq_sum"), None, where,
                           nonnegative=("max_distance", "grad_sq_sum"))
        if self.average is not None:
            check_state_tree(self.average, f"{where}.average")
            check_same_structure(self.average, self.initial_params, f"{where}.average")


@dataclass(frozen=True)
class DoG:
    """DoG: SGD with η_t = c · r̄_t / √G_t over the whole network (one group).

    Args:
        reps_rel: r_ε / (1 + ‖x_0‖) > 0, the relative size of the first move
            (default 1e-6, the official default; 1e-4 is suggested with batch norm).
        lr: c > 0, a multiplier on η (default 1; the authors advise against changing it).
        weight_decay: L2 coefficient wd ≥ 0 added to the gradient (g ← g + wd·x),
            as the official code does (default 0).
        eps: added once to G (default 1e-8, official); 0 makes the loss-scale
            invariance exact.
        averaging: γ ≥ 0 of the polynomial-decay average kept in the state,
            or None (default) for no averaging; the official averager uses γ = 8.

    References: see the module docstring (arXiv 2302.12022, dog-optimizer 1.0.3).
    """

    oracles: ClassVar[Tuple[str, ...]] = ()
    #: True for LDoG: one group per block instead of one for the network.
    layerwise: ClassVar[bool] = False

    reps_rel: float = 1e-6
    lr: float = 1.0
    weight_decay: float = 0.0
    eps: float = 1e-8
    averaging: Optional[float] = None

    def __post_init__(self):
        check_positive("reps_rel", self.reps_rel)
        check_positive("lr", self.lr)
        check_nonnegative("weight_decay", self.weight_decay)
        check_nonnegative("eps", self.eps)
        if self.averaging is not None:
            check_nonnegative("averaging", self.averaging)

    def _group(self, per_block: np.ndarray) -> np.ndarray:
        """Per-block sums of squares → per-group sums, shape (K,)."""
        return per_block if self.layerwise else np.array([per_block.sum()])

    def init(self, params: Params) -> DoGState:
        """Return the initial state: x_0, r̄ = r_ε = reps_rel·(1 + ‖x_0‖), G = eps."""
        check_tree(params, "params")
        x0 = tree_map(np.copy, params)
        with np.errstate(over="ignore"):
            r_eps = self.reps_rel * (1 + np.sqrt(self._group(block_sq_norm(params))))
        if not np.all(np.isfinite(r_eps)):
            raise ValueError(f"reps_rel: r_ε = reps_rel·(1 + ‖x_0‖) overflows with reps_rel="
                             f"{self.reps_rel!r}; choose a smaller reps_rel")
        return DoGState(count=0, initial_params=x0, max_distance=r_eps,
                        grad_sq_sum=np.full(len(r_eps), float(self.eps)),
                        step_sizes=np.zeros(num_blocks(params)),
                        average=tree_map(np.copy, params) if self.averaging is not None else None)

    def update(self, grads: Params, state: DoGState, params: Optional[Params] = None,
               *, curvature=None) -> Tuple[Params, DoGState]:
        """One DoG step.

        Args:
            grads: g_t, same structure as params (L blocks).
            state: from ``init`` or the previous ``update``.
            params: x_t (required: DoG measures the distance from x_0).
            curvature: accepted and ignored, as by every plain method (docs/design.md §6).

        Returns:
            ``(updates, new_state)`` with updates_l = −η_{t,l} g_l.
        """
        who = type(self).__name__
        check_state(state, DoGState, who, grads)
        groups = num_blocks(grads) if self.layerwise else 1
        if len(state.max_distance) != groups or (state.average is None) != (self.averaging is None):
            raise ValueError(f"state: was not made by this {who} ({groups} group(s), averaging "
                             f"{'off' if self.averaging is None else 'on'}); call its init")
        require_params(params, grads, who, "the distance from x_0", state.initial_params)
        if self.weight_decay > 0:
            grads = tree_map(lambda g, x: g + self.weight_decay * x, grads, params)

        moved = tree_map(lambda x, x0: x - x0, params, state.initial_params)
        r_bar = np.maximum(state.max_distance, np.sqrt(self._group(block_sq_norm(moved))))
        G = state.grad_sq_sum + self._group(block_sq_norm(grads))
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.where(G > 0, self.lr * r_bar / np.sqrt(G), 0.0)
        sizes = eta if self.layerwise else np.full(num_blocks(grads), eta[0])

        updates: Params = [{} for _ in grads]
        for l, k in enumerate(block_indices(grads)):
            step = float(sizes[l])  # a Python float keeps the gradients' dtype (NEP 50)
            updates[k] = {name: -step * g for name, g in grads[k].items()}
        t = state.count + 1
        return updates, DoGState(count=t, initial_params=state.initial_params,
                                 max_distance=r_bar, grad_sq_sum=G, step_sizes=sizes,
                                 average=self._averaged(state.average, params, updates, t))

    def _averaged(self, average: Optional[Params], params: Params, updates: Params,
                  t: int) -> Optional[Params]:
        """x̄_t = (1 − w_t) x̄_{t−1} + w_t x_t with x_t = params + updates, w_t = (1+γ)/(t+γ)."""
        if average is None:
            return None
        gamma = float(self.averaging)
        w = (1 + gamma) / (t + gamma)
        return tree_map(lambda a, x, u: (1 - w) * a + w * (x + u), average, params, updates)


@dataclass(frozen=True)
class LDoG(DoG):
    """Layer-wise DoG: the DoG step computed for each block l on its own.

        r̄_{t,l} = max(reps_rel·(1 + ‖x_{0,l}‖), max_{i≤t} ‖x_{i,l} − x_{0,l}‖)
        η_{t,l} = c · r̄_{t,l} / √(eps + Σ_{i≤t} ‖g_{i,l}‖²),    x_{t+1,l} = x_{t,l} − η_{t,l} g_{t,l}

    Args: as :class:`DoG`. The official LDoG's groups are parameter tensors;
    ours are blocks (layers), see the module docstring.
    """

    layerwise: ClassVar[bool] = True
