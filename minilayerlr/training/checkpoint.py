"""Checkpoints: everything a run needs to continue bit for bit, in one ``.npz``.

A checkpoint holds the parameters, the optimizer state (momentum buffers,
Adam moments, the layer-wise method's EMA of numerators and denominators,
its fallback memory and step count), the state of the shuffling generator,
the history so far and the epoch reached. It is written with ``np.savez``
and read with ``allow_pickle=False``: arrays are stored as arrays, and all
the rest (structure, scalars, generator state, history) as one JSON string,
so loading a checkpoint can never execute code.

Optimizer states are frozen dataclasses nested to any depth (the layer-wise
state wraps its base method's state). They are stored generically: each
array gets a key such as ``opt/base_state/momentum/2/W``, and a JSON *spec*
mirrors the structure. On loading, the spec is decoded against a fresh
``optimizer.init(params)`` so that each dataclass is rebuilt from the class
the optimizer itself uses (no class is ever looked up by name).
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..errors import MissingFileError, UserError
from ..paths import atomic_write_bytes, check_output_file
from .fingerprint import first_difference, fingerprint
from .safe_npz import check_members

FORMAT = "minilayerlr-checkpoint-1"


def encode_tree(obj: Any, prefix: str, arrays: Dict[str, np.ndarray]) -> Any:
    """JSON spec of ``obj``; its arrays go into ``arrays`` under keys starting with ``prefix``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"dataclass": type(obj).__name__,
                "fields": {f.name: encode_tree(getattr(obj, f.name), f"{prefix}/{f.name}", arrays)
                           for f in dataclasses.fields(obj)}}
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"array": prefix}
    if isinstance(obj, (list, tuple)):
        return {"list": [encode_tree(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) and "/" not in k for k in obj):
            raise ValueError(f"{prefix}: dict keys must be strings without '/'")
        return {"dict": {k: encode_tree(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}}
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"{prefix}: cannot store a {type(obj).__name__} in a checkpoint")


def decode_tree(spec: Any, template: Any, arrays, where: str) -> Any:
    """Rebuild what :func:`encode_tree` stored, taking dataclass types from ``template``.

    Raises:
        ValueError: if the stored structure does not fit ``template`` (the
            checkpoint was written by another optimizer or network).
    """
    if "dataclass" in spec:
        if not (dataclasses.is_dataclass(template) and type(template).__name__ == spec["dataclass"]):
            raise ValueError(f"{where}: the checkpoint holds a {spec['dataclass']}, but the "
                             f"optimizer's state is a {type(template).__name__}")
        values = {}
        for f in dataclasses.fields(template):
            if f.name not in spec["fields"]:
                raise ValueError(f"{where}: the checkpoint lacks the field {f.name!r}")
            values[f.name] = decode_tree(spec["fields"][f.name], getattr(template, f.name),
                                         arrays, f"{where}.{f.name}")
        return type(template)(**values)
    if "array" in spec:
        if spec["array"] not in arrays:
            raise ValueError(f"{where}: the checkpoint lacks the array {spec['array']!r} (corrupt file)")
        return np.array(arrays[spec["array"]])  # a copy, independent of the file
    if "list" in spec:
        items = spec["list"]
        sub = template if isinstance(template, (list, tuple)) and len(template) == len(items) else [None] * len(items)
        out = [decode_tree(s, t, arrays, f"{where}[{i}]") for i, (s, t) in enumerate(zip(items, sub))]
        return tuple(out) if isinstance(template, tuple) else out
    if "dict" in spec:
        sub = template if isinstance(template, dict) else {}
        return {k: decode_tree(s, sub.get(k), arrays, f"{where}[{k!r}]") for k, s in spec["dict"].items()}
    return spec["value"]


def check_layout(value: Any, template: Any, where: str) -> None:
    """Raise ValueError unless ``value`` is laid out like ``template``.

    Same nesting, dataclass fields, dict keys and list lengths; arrays of the
    same shape and kind of dtype; scalars of the same type (``None`` in the
    template may have become a number, e.g. the seed of an estimator). This
    is what a checkpoint decoded against a fresh ``optimizer.init`` must
    satisfy before a run continues from it.
    """
    arrays_v: Dict[str, np.ndarray] = {}
    arrays_t: Dict[str, np.ndarray] = {}
    _compare(encode_tree(value, "", arrays_v), encode_tree(template, "", arrays_t),
             arrays_v, arrays_t, where)


def _compare(spec, ref, arrays, ref_arrays, where):
    if set(spec) != set(ref):
        raise ValueError(f"{where}: holds {sorted(spec)} where {sorted(ref)} was expected")
    if "array" in ref:
        a, b = arrays[spec["array"]], ref_arrays[ref["array"]]
        if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
            raise ValueError(f"{where}: an array of {a.dtype} {a.shape}, expected {b.dtype} {b.shape}")
    elif "value" in ref:
        v, r = spec["value"], ref["value"]
        if not (type(v) is type(r) or (r is None and type(v) in (int, float))):
            raise ValueError(f"{where}: the value {v!r}, expected a {type(r).__name__}")
        if type(v) is int and v < 0:  # the states' integers are step counts and seeds
            raise ValueError(f"{where}: the value {v}, expected an integer >= 0")
    elif "list" in ref:
        if len(spec["list"]) != len(ref["list"]):
            raise ValueError(f"{where}: {len(spec['list'])} entries, expected {len(ref['list'])}")
        for i, (s, r) in enumerate(zip(spec["list"], ref["list"])):
            _compare(s, r, arrays, ref_arrays, f"{where}[{i}]")
    else:
        inner = "fields" if "dataclass" in ref else "dict"
        if "dataclass" in ref and spec["dataclass"] != ref["dataclass"]:
            raise ValueError(f"{where}: a {spec['dataclass']}, expected a {ref['dataclass']}")
        if set(spec[inner]) != set(ref[inner]):
            raise ValueError(f"{where}: keys {sorted(spec[inner])}, expected {sorted(ref[inner])}")
        for k in ref[inner]:
            _compare(spec[inner][k], ref[inner][k], arrays, ref_arrays, f"{where}.{k}")


def save_checkpoint(path, *, params, opt_state, rng_state: dict, history: dict,
                    epoch: int, meta: dict, extra: Optional[dict] = None) -> Path:
    """Write a checkpoint to ``path`` atomically (a crash never leaves half a file).

    Args:
        path: file name; written exactly as given (no ``.npz`` is appended).
        params: the parameters, list of per-layer dicts of arrays.
        opt_state: the optimizer state (dataclasses, trees, arrays, scalars).
        rng_state: ``Generator.bit_generator.state`` of the shuffling generator.
        history: ``History.to_dict()``.
        epoch: epochs completed.
        meta: anything JSON-able that ``train`` checks on resume (seed,
            batch size, optimizer description).
        extra: JSON-able state of the caller's own (``train``'s ``extra_state``,
            e.g. the oracle counts of the ``compare`` harness), given back on resume.
    Returns:
        The path written.
    """
    path = Path(path)
    arrays: Dict[str, np.ndarray] = {}
    header = {
        "format": FORMAT,
        "epoch": int(epoch),
        "params": encode_tree(params, "params", arrays),
        "opt_state": encode_tree(opt_state, "opt", arrays),
        "rng_state": rng_state,
        "history": history,
        "meta": meta,
    }
    if extra is not None:
        header["extra"] = extra
    buffer = io.BytesIO()
    np.savez(buffer, __header__=np.array(json.dumps(header)), **arrays)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, buffer.getvalue())  # a reader never sees half a file


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``allow_pickle=False``).

    Returns:
        dict with "epoch", "params_spec", "opt_spec", "rng_state", "history",
        "meta", "extra" (a dict, or None) and "arrays" (name -> array); :func:`decode_tree` rebuilds
        the parameters and the optimizer state from the specs.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a minilayerlr checkpoint or is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"resume: {path} is a folder, not a checkpoint file" if path.is_dir()
                               else f"resume: no checkpoint file at {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # np.load would try to read anything else as a pickle
            raise ValueError(f"resume: {path} is not a readable minilayerlr checkpoint "
                             "(not an .npz archive)")
    try:
        check_members(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        header = json.loads(str(arrays.pop("__header__")))
    except (ValueError, OSError, KeyError, EOFError, RecursionError, zipfile.BadZipFile) as error:
        # RecursionError: a JSON header nested thousands deep
        # BadZipFile: truncated or overwritten bytes (bad CRC, no central directory)
        raise ValueError(f"resume: {path} is not a readable minilayerlr checkpoint "
                         f"(truncated or corrupt: {error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"resume: {path} is not a {FORMAT} file")
    expected = {"epoch": int, "params": dict, "opt_state": dict, "rng_state": dict,
                "history": dict, "meta": dict}
    for key, kind in expected.items():
        if not isinstance(header.get(key), kind) or isinstance(header.get(key), bool):
            raise ValueError(f"resume: {path} is corrupt (its header lacks a valid {key!r})")
    return {"epoch": header["epoch"], "params_spec": header["params"],
            "opt_spec": header["opt_state"], "rng_state": header["rng_state"],
            "history": header["history"], "meta": header["meta"], "arrays": arrays,
            "extra": header.get("extra") if isinstance(header.get("extra"), dict) else None}


def run_meta(net, params, x, y) -> dict:
    """Entries of ``meta`` that identify the run beyond its settings: ``{"fingerprint": ...}``."""
    return {"fingerprint": fingerprint(net, params, x, y)}


def meta_difference(saved: dict, meta: dict) -> Optional[str]:
    """The first setting or fingerprint entry in which a checkpoint's ``meta`` differs from ``meta``."""
    for key, value in meta.items():
        if key == "fingerprint":
            if not isinstance(saved.get(key), dict):
                return "fingerprint: none stored (written by an older minilayerlr)"
            diff = first_difference(saved[key], value)
            if diff:
                top = diff.split(".")[0].split("[")[0].split(":")[0]
                what = {"layers": "a different architecture", "loss": "a different loss",
                        "params_dtype": "parameters of another dtype",
                        "x": "different training inputs x", "y": "different training targets y"}
                return f"it was written for {what.get(top, 'another run')}: {diff}"
        elif saved.get(key) != value:
            return f"{key}: the checkpoint was written with {key}={saved.get(key)!r}, but this run has {key}={value!r}"
    return None


def check_resume_meta(saved: dict, meta: dict) -> None:
    """Raise ValueError unless the checkpoint's ``meta`` is this run's (settings and fingerprint)."""
    diff = meta_difference(saved, meta)
    if diff:
        raise ValueError(f"resume: the checkpoint is not this run's: {diff}")


def check_checkpoint_target(checkpoint, resume, overwrite: bool, meta: dict) -> Optional[Path]:
    """Check before any work that ``checkpoint`` may be written; returns it as a Path (or None).

    The folder must exist and be writable and the name must not be a folder
    (:func:`~minilayerlr.paths.check_output_file`). An existing file is
    replaced only when ``overwrite`` is true or when it is the file this run
    resumes from (it continues it); anything else — an unrelated file, another
    run's checkpoint, or this run's own checkpoint while starting afresh —
    would destroy work, so it is refused with what the file is.
    """
    if checkpoint is None:
        return None
    path = check_output_file("checkpoint", checkpoint)
    if not path.exists() or overwrite:
        return path
    if resume is not None and Path(resume).exists() and os.path.samefile(path, resume):
        return path
    try:
        saved = load_checkpoint(path)
    except (ValueError, OSError):
        what = "is not a minilayerlr checkpoint"
    else:
        diff = meta_difference(saved["meta"], meta)
        what = (f"is a checkpoint of another run ({diff})" if diff else
                f"holds this run's checkpoint at epoch {saved['epoch']}; resume from it to continue")
    raise UserError(f"checkpoint: {path} already exists and {what}; refusing to overwrite it "
                    "(pass overwrite=True to replace it)")
