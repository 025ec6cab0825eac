"""Base first-order methods as pure optimizers: SGD (with momentum), Adam, AdamW.

Each optimizer is a frozen dataclass of hyper-parameters with two pure
functions in the optax style::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)   # θ ← θ + updates

and one more that the layer-wise wrapper needs, the *direction* without the
learning rate::

    d, state = opt.direction(grads, state, params)      # update = −lr·d (− lr·wd·θ)

so that :class:`~minilayerlr.optim.LayerwiseStepSize` can replace ``lr`` by a
step size α_l per block. Two attributes tell the wrapper how weight decay
enters: ``coupled_weight_decay`` (an L2 term of the objective, already folded
into the gradient inside ``direction``) and ``decoupled_weight_decay`` (AdamW's
θ ← θ − lr·wd·θ, applied outside the direction).

Checks happen once, at the public boundary: ``update`` and ``direction``
call ``check_inputs`` (state, gradients, parameters), then the private
``_direction``, which trusts its caller. A wrapper such as
:class:`~minilayerlr.optim.LayerwiseStepSize` calls the public ``direction``
and does not check those inputs again.

States are frozen dataclasses and record what the step used: ``count`` (steps
taken) and ``step_sizes`` (the learning rate per block, shape (L,), so that
plain and layer-wise runs plot the same way). What the training loop records
per step comes through one hook, :func:`step_diagnostics`.

References:
    PyTorch ``torch.optim.SGD`` (momentum convention m ← βm + g),
    Kingma & Ba, arXiv 1412.6980 (Adam, Algorithm 1),
    Loshchilov & Hutter, arXiv 1711.05101 (AdamW, Algorithm 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Dict, Optional, Tuple

import numpy as np

from minilayerlr.optim.state_checks import check_block_arrays, check_buffers, check_state_tree
from minilayerlr.tree import (Params, check_same_structure, check_tree, num_blocks, tree_map,
                              zeros_like)
from minilayerlr.validation import check_nonnegative, check_positive, check_unit_interval


def step_diagnostics(state) -> Dict[str, np.ndarray]:
    """What the training loop records after a step: ``{"step_sizes": (L,), "fallbacks": (L,) ints}``.

    The hook: a state that has more to say defines ``diagnostics()`` returning
    that dict (the layer-wise state does: its fallback codes, ``FALLBACK_NAMES``).
    Any other state records its ``step_sizes`` and no fallbacks (zeros).
    """
    if hasattr(type(state), "diagnostics"):
        return state.diagnostics()
    sizes = np.asarray(state.step_sizes)
    return {"step_sizes": sizes, "fallbacks": np.zeros(len(sizes), dtype=np.int64)}


def check_state(state, cls, who: str, grads: Params) -> None:
    """Raise unless ``state`` is a ``cls`` made by ``who.init`` for a tree with the blocks of ``grads``.

    Also checks ``grads`` (finite floating-point arrays, named ``grads``): the
    one scan of the gradients per update; and ``state.step_sizes``: finite, shape (L,).
    """
    check_state_type(state, cls, who)
    check_tree(grads, "grads")
    n = check_block_arrays(state, ("step_sizes",))
    if n != num_blocks(grads):
        raise ValueError(f"state: was initialised for {n} blocks, but grads "
                         f"has {num_blocks(grads)}; call init with these parameters")


def check_state_type(state, cls, who: str) -> None:
    """Raise unless ``state`` is a ``cls`` (from ``who.init``) with an integer ``count`` ≥ 0.

    A state class that defines ``check_values(where)`` (``minilayerlr.optim.state_checks``)
    has its values checked here too: the one check of the state per update.
    """
    if not isinstance(state, cls):
        raise TypeError(f"state: expected the {cls.__name__} returned by {who}.init(params), "
                        f"got {type(state).__name__}")
    count = state.count
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"state: count must be an integer >= 0, got {count!r}")
    if hasattr(cls, "check_values"):
        state.check_values("state")


def check_params(params: Optional[Params], grads: Params, needed: bool, who: str) -> None:
    """Raise unless ``params`` fit ``grads``; when ``needed`` (weight decay) they must be given and finite.

    ``params`` that are not a list of one entry per layer of ``grads`` are named
    ``params``; a key or shape that differs names ``grads`` (params are the reference).
    """
    if params is None:
        if needed:
            raise ValueError(f"params: {who} needs the current parameters (weight decay); "
                             "call update(grads, state, params)")
        return
    if needed:
        check_tree(params, "params")
    if not isinstance(params, (list, tuple)) or len(params) != len(grads):
        got = f"of length {len(params)}" if isinstance(params, (list, tuple)) else type(params).__name__
        raise ValueError(f"params: expected a list of {len(grads)} per-layer dicts like grads, "
                         f"got {got}")
    check_same_structure(grads, params, "grads")


def objective_gradient(grads: Params, params: Optional[Params], weight_decay: float) -> Params:
    """Gradient of f(θ) + ½ wd‖θ‖²: g + wd·θ (a new tree; g itself when wd = 0). Trusts its caller."""
    if weight_decay == 0:
        return grads
    wd = float(weight_decay)  # a Python float keeps float32 arrays float32 (NumPy's NEP 50)
    return tree_map(lambda g_, p_: g_ + wd * p_, grads, params)


@dataclass(frozen=True)
class SGDState:
    """State of :class:`SGD`.

    Attributes:
        count: number of steps taken.
        momentum: the buffer m (same structure as params), or None when β = 0.
        step_sizes: learning rate used per block at the last step, shape (L,).
    """

    count: int
    momentum: Optional[Params]
    step_sizes: np.ndarray

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.momentum`` unless the buffer (if any) is finite floating-point arrays."""
        if self.momentum is not None:
            check_state_tree(self.momentum, f"{where}.momentum")


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent with heavy-ball or Nesterov momentum.

    With g̃ = g + wd·θ (L2 decay coupled into the gradient, PyTorch style)::

        m ← β m + g̃                       (m₀ = 0, so m₁ = g̃₁ as in PyTorch)
        d = m            (heavy ball)      d = g̃ + β m   (nesterov=True)
        θ ← θ − lr · d

    Args:
        lr: learning rate, > 0 (ignored when wrapped by LayerwiseStepSize).
        momentum: β in [0, 1).
        nesterov: use Nesterov's look-ahead direction (needs β > 0).
        weight_decay: L2 coefficient wd ≥ 0; part of the objective
            f(θ) + ½ wd‖θ‖², hence ``coupled_weight_decay``.
    """

    oracles: ClassVar[Tuple[str, ...]] = ()

    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_unit_interval("momentum", self.momentum)
        check_nonnegative("weight_decay", self.weight_decay)
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov: expected True or False, got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: Nesterov momentum needs momentum > 0")

    @property
    def coupled_weight_decay(self) -> float:
        return float(self.weight_decay)

    @property
    def decoupled_weight_decay(self) -> float:
        return 0.0

    def init(self, params: Params) -> SGDState:
        """Return the initial state (zero momentum buffer)."""
        check_tree(params, "params")
        buffer = zeros_like(params) if self.momentum > 0 else None
        return SGDState(count=0, momentum=buffer, step_sizes=np.zeros(num_blocks(params)))

    def check_inputs(self, grads: Params, state: SGDState, params: Optional[Params]) -> None:
        """Validate the inputs of ``direction``/``update`` once (the public boundary)."""
        check_state(state, SGDState, "SGD", grads)
        if self.momentum > 0 and state.momentum is None:
            raise ValueError("state: holds no momentum buffer (it was made by an SGD with "
                             "momentum=0); call init of this optimizer")
        check_params(params, grads, self.weight_decay > 0, "SGD")
        check_buffers(state, ("momentum",), grads, params)  # names state.momentum, not grads

    def direction(self, grads: Params, state: SGDState,
                  params: Optional[Params] = None) -> Tuple[Params, SGDState]:
        """Return the direction d (update = −lr·d) and the advanced state."""
        self.check_inputs(grads, state, params)
        return self._direction(grads, state, params)

    def _direction(self, grads, state, params):
        g = objective_gradient(grads, params, self.weight_decay)
        if self.momentum == 0:
            return g, SGDState(state.count + 1, None, state.step_sizes)
        beta = float(self.momentum)  # Python floats keep the params' dtype (NEP 50)
        m = tree_map(lambda m_, g_: beta * m_ + g_, state.momentum, g)
        d = tree_map(lambda g_, m_: g_ + beta * m_, g, m) if self.nesterov else m
        return d, SGDState(state.count + 1, m, state.step_sizes)

    def update(self, grads: Params, state: SGDState, params: Optional[Params] = None,
               *, curvature=None) -> Tuple[Params, SGDState]:
        """Return updates −lr·d and the new state (``curvature`` is accepted and ignored)."""
        self.check_inputs(grads, state, params)
        d, new = self._direction(grads, state, params)
        lr = float(self.lr)
        updates = tree_map(lambda d_: -lr * d_, d)
        sizes = np.full(num_blocks(d), lr)
        return updates, SGDState(new.count, new.momentum, sizes)


@dataclass(frozen=True)
class AdamState:
    """State of :class:`Adam` and :class:`AdamW`.

    Attributes:
        count: number of steps taken t.
        mu: first moment m (same structure as params).
        nu: second moment v (same structure as params).
        step_sizes: learning rate used per block at the last step, shape (L,).
    """

    count: int
    mu: Params
    nu: Params
    step_sizes: np.ndarray

    def check_values(self, where: str = "state") -> None:
        """Raise naming ``where.mu``/``where.nu`` unless both are finite float trees, ν ≥ 0, alike."""
        check_state_tree(self.mu, f"{where}.mu")
        check_state_tree(self.nu, f"{where}.nu", nonnegative=True)


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba, Algorithm 1)::

        m ← b1 m + (1 − b1) g        v ← b2 v + (1 − b2) g²
        m̂ = m / (1 − b1ᵗ)            v̂ = v / (1 − b2ᵗ)
        d = m̂ / (√v̂ + eps)           θ ← θ − lr · d

    Args:
        lr: learning rate, > 0 (ignored when wrapped by LayerwiseStepSize).
        b1: first-moment decay in [0, 1).
        b2: second-moment decay in [0, 1).
        eps: > 0, added to √v̂.
    """

    oracles: ClassVar[Tuple[str, ...]] = ()

    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_unit_interval("b1", self.b1)
        check_unit_interval("b2", self.b2)
        check_positive("eps", self.eps)

    @property
    def coupled_weight_decay(self) -> float:
        return 0.0

    @property
    def decoupled_weight_decay(self) -> float:
        return 0.0

    def init(self, params: Params) -> AdamState:
        """Return the initial state (zero moments, t = 0)."""
        check_tree(params, "params")
        return AdamState(0, zeros_like(params), zeros_like(params),
                         np.zeros(num_blocks(params)))

    def check_inputs(self, grads: Params, state: AdamState, params: Optional[Params]) -> None:
        """Validate the inputs of ``direction``/``update`` once (the public boundary)."""
        who = type(self).__name__
        check_state(state, AdamState, who, grads)
        check_params(params, grads, self.decoupled_weight_decay > 0, who)
        check_buffers(state, ("mu", "nu"), grads, params)  # names state.mu / state.nu, not grads

    def direction(self, grads: Params, state: AdamState,
                  params: Optional[Params] = None) -> Tuple[Params, AdamState]:
        """Return d = m̂/(√v̂ + eps) and the advanced state."""
        self.check_inputs(grads, state, params)
        return self._direction(grads, state)

    def _direction(self, grads, state):
        t = state.count + 1
        b1, b2, eps = float(self.b1), float(self.b2), float(self.eps)  # keep the params' dtype
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
        d = tree_map(lambda m, v: (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps),
                     mu, nu)
        return d, AdamState(t, mu, nu, state.step_sizes)

    def update(self, grads: Params, state: AdamState, params: Optional[Params] = None,
               *, curvature=None) -> Tuple[Params, AdamState]:
        """Return updates −lr·(d + wd·θ) and the new state (wd = 0 for Adam; ``curvature`` ignored)."""
        self.check_inputs(grads, state, params)
        d, new = self._direction(grads, state)
        wd, lr = self.decoupled_weight_decay, float(self.lr)
        if wd > 0:
            updates = tree_map(lambda d_, p_: -lr * (d_ + wd * p_), d, params)
        else:
            updates = tree_map(lambda d_: -lr * d_, d)
        sizes = np.full(num_blocks(d), lr)
        return updates, AdamState(new.count, new.mu, new.nu, sizes)


@dataclass(frozen=True)
class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay scaled by the learning rate::

        θ ← θ − lr · (d + wd · θ)        (d as in Adam)

    which equals PyTorch's θ ← (1 − lr·wd) θ − lr·d. With zero gradients
    θ_t = (1 − lr·wd)ᵗ θ₀.

    Args:
        lr, b1, b2, eps: as in :class:`Adam`.
        weight_decay: wd ≥ 0 (default 0.01, as PyTorch).
    """

    weight_decay: float = 0.01

    def __post_init__(self):
        super().__post_init__()
        check_nonnegative("weight_decay", self.weight_decay)

    @property
    def decoupled_weight_decay(self) -> float:
        return float(self.weight_decay)
