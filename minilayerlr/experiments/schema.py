"""What a comparison folder's files must hold, checked when ``compare`` reads them back.

``compare --resume DIR`` (and ``run_compare`` into a folder it wrote before)
reads ``config.json``, ``prices.json`` and the run records ``runs/*.json``.
Each is read here against the layout ``compare`` writes: a damaged file ends
in one :class:`~minilayerlr.errors.UserError` naming the file and the field
(``runs/x.json: stability[0].product: missing``), never a KeyError or a
RecursionError from deep inside the report, and never a silent coercion
(``seeds: [0.5]`` is not seed 0, ``quick: "no"`` is not true).
"""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

from ..errors import UserError

#: the largest JSON file read back (a record of a long run is a few MB)
MAX_JSON_BYTES = 512 * 2 ** 20


def load_json(path: Path):
    """The JSON value in ``path``, or UserError naming the file (unreadable, not JSON, too deep)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):  # opening a FIFO would wait forever for a writer
            raise UserError(f"{path}: not a regular file; a comparison writes plain JSON files")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise UserError(f"{path}: {path.stat().st_size} bytes, more than the "
                            f"{MAX_JSON_BYTES} a comparison writes; not one of its files")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read it ({getattr(error, 'strerror', None) or error})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(f"{path}: not a file compare wrote (JSON nested too deep)") from None
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None


class _Bad(Exception):
    """A field that does not fit: (where, what was expected, what was found)."""


def _got(value) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(where, expected, value):
    raise _Bad(f"{where}: expected {expected}, got {_got(value)}")


def _int(where, value, minimum=0, optional=False):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(where, f"an integer >= {minimum}" + (" or null" if optional else ""), value)


def _number(where, value, optional=True):
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, "a number" + (" or null" if optional else ""), value)


def _str(where, value, optional=False, choices=None):
    if value is None and optional:
        return
    if not isinstance(value, str) or (choices is not None and value not in choices):
        what = f"one of {', '.join(choices)}" if choices is not None else "a string"
        _fail(where, what + (" or null" if optional else ""), value)


def _bool(where, value):
    if not isinstance(value, bool):
        _fail(where, "true or false", value)


def _list(where, value, item, optional=False, nonempty=False):
    if value is None and optional:
        return
    if not isinstance(value, list) or (nonempty and not value):
        _fail(where, ("a non-empty list" if nonempty else "a list") + (" or null" if optional else ""),
              value)
    for i, v in enumerate(value):
        item(f"{where}[{i}]", v)


def _dict(where, value, fields: dict, optional=()):
    if not isinstance(value, dict):
        _fail(where, "an object", value)
    for name, check in fields.items():
        key = f"{where}.{name}" if where else name
        if name not in value:
            if name in optional:
                continue
            raise _Bad(f"{key}: missing")
        check(key, value[name])


def _numbers(where, value):
    _list(where, value, _number)


def _history(where, value):
    _dict(where, value, {
        "epoch": lambda w, v: _list(w, v, _int, nonempty=True),
        "train_loss": _numbers, "time": _numbers,
        "steps": lambda w, v: _list(w, v, _int),
        "metrics": lambda w, v: [_numbers(f"{w}.{k}", x) for k, x in _items(w, v)],
        "step_sizes": lambda w, v: _list(w, v, _numbers),
        "step_loss": _numbers,
        "fallbacks": lambda w, v: _list(w, v, lambda w2, v2: _list(w2, v2, _int)),
        "stop_reason": lambda w, v: _str(w, v, optional=True)})
    lengths = {len(value[k]) for k in ("epoch", "train_loss", "time", "steps")}
    if len(lengths) != 1:
        raise _Bad(f"{where}: its per-epoch lists (epoch, train_loss, time, steps) differ in length")
    if not len(value["step_sizes"]) == len(value["step_loss"]) == len(value["fallbacks"]):
        raise _Bad(f"{where}: step_sizes, step_loss and fallbacks differ in length")


def _items(where, value):
    if not isinstance(value, dict):
        _fail(where, "an object", value)
    return value.items()


def _stability_entry(where, value):
    _dict(where, value, {"epoch": lambda w, v: _int(w, v, 1), "lambda_max": _numbers,
                         "alpha": _numbers, "product": _numbers}, optional=("alpha",))


def _oracle_calls(where, value):
    for k, v in _items(where, value):
        _int(f"{where}.{k}", v)


RECORD_FIELDS = {
    "key": _str, "spec": lambda w, v: _items(w, v), "task": _str, "method": _str,
    "tuned": _bool, "lr": _number, "seed": _int, "batch_size": lambda w, v: _int(w, v, 1, True),
    "epochs": _int, "final_train_loss": _number, "metric": _str, "final_metric": _number,
    "wall_time": _number, "steps": _int, "stop_reason": lambda w, v: _str(w, v, optional=True),
    "oracle_calls": lambda w, v: _list(w, v, _oracle_calls, optional=True),
    "grad_equivalents": lambda w, v: _list(w, v, _number, optional=True),
    "stability": lambda w, v: _list(w, v, _stability_entry),
    "history": _history,
}


def check_record(path: Path, record) -> dict:
    """``record`` (read from ``path``) if it has every field a report reads; else UserError naming one."""
    try:
        _dict("", record, RECORD_FIELDS)
    except _Bad as bad:
        raise UserError(f"{path}: {bad}; delete the file to run that run again") from None
    return record


def check_prices(path: Path, prices) -> dict:
    """``prices`` (read from ``path``): task -> {oracle call: finite number >= 0}; else UserError."""
    try:
        for task, table in _items("", prices):
            for key, value in _items(task, table):
                _number(f"{task}.{key}", value, optional=False)
                if value < 0:
                    _fail(f"{task}.{key}", "a number >= 0", value)
    except _Bad as bad:
        raise UserError(f"{path}: {str(bad).lstrip(': ')}; delete the file to measure the prices "
                        "again") from None
    return prices


def _distinct(where, value):
    if isinstance(value, list) and len(set(map(json.dumps, value))) != len(value):
        raise _Bad(f"{where}: lists an entry twice, {json.dumps(value)[:60]}")


def _option(where, value, names):
    key = where.rsplit(".", 1)[-1]
    if key not in names:
        raise _Bad(f"{where}: not an option of the layer-wise methods ({', '.join(names)})")
    if key in ("curvature_kind", "denominator"):
        _str(where, value)
    elif key == "scale" and isinstance(value, str):  # a named multiplier
        _str(where, value, choices=("blocks", "coupling"))
    else:  # η and ρ
        _number(where, value, optional=False)


def check_config(path: Path, config, task_names, method_names, data_names,
                 option_names=("scale", "ema", "curvature_kind", "denominator")) -> dict:
    """``config`` (read from ``path``) if every setting has the type compare wrote; else UserError."""
    try:
        _dict("", config, {
            "tasks": lambda w, v: _list(w, v, lambda w2, v2: _str(w2, v2, choices=task_names),
                                        nonempty=True),
            "methods": lambda w, v: _list(w, v, lambda w2, v2: _str(w2, v2, choices=method_names),
                                          optional=True),
            "seeds": lambda w, v: _list(w, v, _int, nonempty=True),
            "epochs": lambda w, v: _int(w, v, 1, optional=True),
            "data": lambda w, v: _str(w, v, optional=True, choices=data_names),
            "data_dir": lambda w, v: _str(w, v, optional=True),
            "quick": _bool, "size": lambda w, v: _int(w, v, 20, optional=True),
            "ls_options": lambda w, v: [_option(f"{w}.{k}", x, option_names)
                                        for k, x in _items(w, v)],
            "ablation": _bool, "stability": _bool, "long": _bool,
        }, optional=("methods", "epochs", "data", "data_dir", "size", "ls_options", "ablation",
                     "stability", "quick", "long"))
        for name in ("tasks", "methods", "seeds"):
            _distinct(name, config.get(name))
    except _Bad as bad:
        raise UserError(f"{path}: {bad}") from None
    return config


def read_resumed_config(flag: str, folder: Path, task_names, method_names, data_names,
                        option_names) -> dict:
    """The settings of the comparison in ``folder`` (``compare --resume``), read from its config.json.

    Refused, naming ``flag`` and the file: a folder that is not one, a missing
    config.json, and any field ``check_config`` refuses.
    """
    if not folder.is_dir():
        raise UserError(f"{flag}: {folder} is not a folder; is it a comparison folder?")
    path = folder / "config.json"
    if not os.path.lexists(path):
        raise UserError(f"{flag}: {path} is missing; is {folder} a comparison folder?")
    try:
        config = check_config(path, load_json(path), task_names, method_names, data_names,
                              option_names)
    except UserError as error:
        raise UserError(f"{flag}: {error}") from None
    return {"tasks": config["tasks"], "methods": config.get("methods"), "seeds": config["seeds"],
            "epochs": config.get("epochs"), "data": config.get("data"),
            "data_dir": config.get("data_dir"), "quick": config.get("quick", False),
            "size": config.get("size"), "ls_options": config.get("ls_options") or {},
            "ablation": config.get("ablation", False), "out": folder,
            "stability": config.get("stability", True), "long": config.get("long", False)}


#: what a comparison writes into its folder (besides figures)
COMPARISON_FILES = ("config.json", "prices.json", "runs", "results.json", "results.csv",
                    "results.md")


def comparison_files(folder: Path) -> list:
    """The files of ``COMPARISON_FILES`` present in ``folder`` (empty for a new or unrelated folder)."""
    return [name for name in COMPARISON_FILES if os.path.lexists(Path(folder) / name)]
