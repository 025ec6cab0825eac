"""Input checks shared by the peers that need the current parameters (DoG, Prodigy, SLS; AdaHessian's decay)."""
from __future__ import annotations

from typing import Optional

from minilayerlr.tree import Params, check_same_structure, check_tree


def require_params(params: Optional[Params], grads: Params, who: str, why: str,
                   start: Optional[Params] = None) -> Params:
    """Return ``params`` after checking them once: given, finite, shaped like ``grads`` (and ``start``).

    Args:
        params: θ passed to ``update``.
        grads: the (already checked) gradients.
        who: the optimizer's name, for the message.
        why: what the optimizer needs θ for, e.g. "the distance from x_0".
        start: x_0 kept in the state, if any; θ must have its structure.
    """
    if params is None:
        raise ValueError(f"params: {who} needs the current parameters ({why}); "
                         "call update(grads, state, params)")
    check_tree(params, "params")
    if len(params) != len(grads):  # a list of another length is the parameters' fault ...
        raise ValueError(f"params: expected a list of {len(grads)} per-layer dicts like grads, "
                         f"got one of length {len(params)}")
    check_same_structure(grads, params, "grads")  # ... a key or shape names grads, as check_params does
    if start is not None:  # params fit grads (just checked): a misfit is the state's x_0
        check_same_structure(start, params, "state.initial_params")
    return params
