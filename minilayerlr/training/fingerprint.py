"""A run's fingerprint: what a checkpoint must match before a run continues from it.

Parameter shapes alone do not identify a network: Tanh and ReLU, or two
losses, or two training sets of the same size, give checkpoints of the same
layout. The fingerprint records each layer's type and hyper-parameters, the
loss and its options (a mask by content), the dtype of the parameters and
the identity of the data (shape, dtype and SHA-256 of x and y). It is plain
JSON, stored in the checkpoint's ``meta`` and compared on resume, naming the
first entry that differs.
"""
from __future__ import annotations

import hashlib
from typing import Any, Optional

import numpy as np
import scipy.sparse


def array_identity(a) -> dict:
    """{"shape", "dtype", "sha256"} of an array's contents (C order)."""
    a = np.ascontiguousarray(a)
    digest = hashlib.sha256(a.tobytes()).hexdigest()
    return {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": digest}


def _value(v) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, np.ndarray):
        return array_identity(v)
    if scipy.sparse.issparse(v):
        csr = scipy.sparse.csr_matrix(v)
        return {"sparse": list(csr.shape), "data": array_identity(csr.data),
                "indices": array_identity(csr.indices), "indptr": array_identity(csr.indptr)}
    if isinstance(v, (list, tuple)) and all(isinstance(e, (bool, int, float, str)) for e in v):
        return list(v)
    return {"type": type(v).__name__}


def describe(obj) -> dict:
    """{"type": class name, hyper-parameter: value, ...} of a layer or a loss."""
    out = {"type": type(obj).__name__}
    for name, v in sorted(vars(obj).items()):
        if not name.startswith("_"):
            out[name] = _value(v)
    return out


def _params_dtype(params) -> Optional[str]:
    """dtype of the first parameter array, or None (params are ignored when resuming)."""
    try:
        for entry in params:
            for v in entry.values():
                return str(np.asarray(v).dtype)
    except (TypeError, AttributeError):
        pass
    return None


def fingerprint(net, params, x, y) -> dict:
    """The run's identity: layers, loss, parameter dtype and data (see the module docstring)."""
    return {"layers": [describe(layer) for layer in net.layers], "loss": describe(net.loss_fn),
            "params_dtype": _params_dtype(params), "x": array_identity(x), "y": array_identity(y)}


def first_difference(saved: Any, current: Any, where: str = "") -> Optional[str]:
    """Where two fingerprints first differ, as "where: A there, B here", or None if they agree."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current)):
            if not where and key == "params_dtype" and current.get(key) is None:
                continue  # resuming without parameters: the checkpoint's dtype is the run's
            inner = first_difference(saved.get(key), current.get(key),
                                     f"{where}.{key}" if where else key)
            if inner:
                return inner
        return None
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        for i, (s, c) in enumerate(zip(saved, current)):
            inner = first_difference(s, c, f"{where}[{i}]")
            if inner:
                return inner
        return None
    if saved == current and type(saved) is type(current):
        return None
    return f"{where}: {_short(saved)} there, {_short(current)} here"


def _short(v) -> str:
    if isinstance(v, str) and len(v) == 64:
        return v[:12] + "…"  # a digest
    if isinstance(v, list) and len(v) > 8:
        return f"a list of {len(v)}"
    return repr(v)
