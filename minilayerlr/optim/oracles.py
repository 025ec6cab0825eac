"""The oracle protocol: what an optimizer may ask for beyond the gradient.

Every optimizer is a pure pair ``init(params) -> state`` and
``update(grads, state, params, **oracles) -> (updates, state)``. What a method
needs beyond the mini-batch gradient comes as a keyword argument of
``update``, with one name across the package:

==================== ======================================== ==========================
keyword              what it is                               from an ``Evaluation`` ev
==================== ======================================== ==========================
``curvature``        d ↦ q, q_l = d_lᵀH_ll d_l, shape (L,)    ``ev.layer_curvature``
``hvp``              v ↦ H v, same structure as params        ``ev.hvp``
``loss``             θ ↦ f(θ) on the same mini-batch          ``net.evaluate(θ, x_b, y_b).loss``
``kronecker_factors`` (seed) ↦ per-block K-FAC factors        ``ev.kronecker_factors``
==================== ======================================== ==========================

An optimizer declares what it needs in its class attribute ``oracles`` (a
tuple of the names above; ``()`` for plain first-order methods). The training
loop, ``compare`` and ``bench`` call :func:`supply_oracles` and pass exactly
those, so every method sees the same exact numbers of one evaluation.
"""
from __future__ import annotations

import inspect
from typing import Callable, Dict, Optional

import numpy as np

from minilayerlr.errors import NonFiniteError
from minilayerlr.tree import Params, block_dot, check_tree

#: The oracle keywords, in the order of the table above.
ORACLE_NAMES = ("curvature", "hvp", "loss", "kronecker_factors")

_WHAT = {
    "curvature": "a callable d -> q (one q_l per block), e.g. curvature=ev.layer_curvature",
    "hvp": "a callable v -> H v, e.g. hvp=ev.hvp",
    "loss": "a callable params -> loss on the same mini-batch",
    "kronecker_factors": "a callable (seed=...) -> per-block factors, e.g. "
                         "kronecker_factors=ev.kronecker_factors",
}


def required_oracles(optimizer) -> tuple:
    """The oracle names ``optimizer`` declares in its ``oracles`` attribute (``()`` if none)."""
    return tuple(getattr(optimizer, "oracles", ()))


def check_oracle(name: str, value, who: str) -> Callable:
    """Return ``value``, or ValueError naming ``name`` unless it is a callable.

    Called once by an optimizer's public ``update`` for each oracle it declares.
    """
    if value is None or not callable(value):
        raise ValueError(f"{name}: {who} needs the {name} oracle, {_WHAT[name]}")
    return value


def real_result(value, name: str, what: str) -> np.ndarray:
    """An oracle's answer as a float64 array, or TypeError naming ``name`` (it must return ``what``).

    Integers and floats of any width are accepted; complex, bool, strings and
    objects are refused, never cast (a cast would drop an imaginary part silently).
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):  # e.g. a ragged list
        array = np.asarray(None)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name}: the oracle must return {what}, got an array of dtype {array.dtype}")
    return array.astype(np.float64)


def supply_oracles(optimizer, ev, loss: Optional[Callable] = None) -> Dict[str, Callable]:
    """The keyword arguments of ``optimizer.update`` for the evaluation ``ev``: exactly its oracles.

    Args:
        optimizer: anything with an ``oracles`` attribute (see the table above).
        ev: the mini-batch's ``Evaluation`` (or a ``BlockQuadratic`` evaluation).
        loss: θ ↦ f(θ) on the same mini-batch; needed only by optimizers that
            declare ``"loss"``.
    """
    supplied = {}
    for name in required_oracles(optimizer):
        if name not in ORACLE_NAMES:
            raise ValueError(f"optimizer: declares an unknown oracle {name!r}; "
                             f"expected names from {ORACLE_NAMES}")
        if name == "loss":
            supplied[name] = loss
        elif name == "curvature":
            supplied[name] = getattr(ev, "layer_curvature", None)
        else:
            supplied[name] = getattr(ev, name, None)
        if supplied[name] is None or not callable(supplied[name]):
            what = "the loss argument" if name == "loss" else f"the evaluation ({type(ev).__name__})"
            raise ValueError(f"{name}: {type(optimizer).__name__} needs the {name} oracle, "
                             f"{_WHAT[name]}, but {what} offers none")
    return supplied


def checked_curvature(result, n_blocks: int, coupled: bool):
    """(q, C or None) from the ``curvature`` oracle's answer, checked: q real of shape (L,) and
    finite; with ``coupled``, the answer is the pair (q, C), C real, finite, of shape (L, L)."""
    gram = None
    if coupled:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ValueError("curvature: with the coupling multiplier the oracle must return "
                             "(q, C) when called with coupling=True (ev.layer_curvature does)")
        result, gram = result
        gram = real_result(gram, "curvature", "a Gram matrix C of shape (L, L)")
        if gram.shape != (n_blocks, n_blocks):
            raise ValueError(f"curvature: the Gram C must be finite of shape "
                             f"({n_blocks}, {n_blocks}), got shape {gram.shape}")
        if not np.all(np.isfinite(gram)):  # a diverging run: train stops on it
            raise NonFiniteError("curvature: the oracle returned a non-finite Gram C")
    q = real_result(result, "curvature", "one real q_l per block")
    if q.shape != (n_blocks,):
        raise ValueError(f"curvature: the oracle must return shape ({n_blocks},) "
                         f"(one q_l per block), got {q.shape}")
    if not np.all(np.isfinite(q)):
        raise NonFiniteError(f"curvature: the oracle returned non-finite values {q}")
    return q, gram


def quadratic_form(hvp: Callable[[Params], Params], d: Params) -> float:
    """dᵀ(Hd) from one call of the oracle; its answer is checked (structure, finite)."""
    hd = hvp(d)
    try:
        check_tree(hd, "hvp", like=d)
    except NonFiniteError:
        raise NonFiniteError("hvp: the oracle returned non-finite values") from None
    except TypeError as error:  # complex, integer or object arrays: never cast silently
        raise TypeError(f"hvp: the oracle must return real floating-point arrays ({error})") from None
    except ValueError as error:
        raise ValueError(f"hvp: the oracle must return H v in the structure of params ({error})") from None
    return float(block_dot(d, hd).sum())


def takes_keyword(oracle, name: str) -> bool:
    """Whether ``oracle`` accepts the keyword ``name`` (or any keyword)."""
    try:
        parameters = inspect.signature(oracle).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in parameters)
