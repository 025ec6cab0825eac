"""Argument checks shared by every public entry point (docs/design.md, "Checks at the boundary").

Each raises ValueError whose message starts with the argument's name, so a
user learns which argument to fix. This module imports nothing from the
package: everything may use it. The checks of the parameter structure
(``check_tree``, ``check_same_structure``) live next to that structure in
``minilayerlr.tree``.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .errors import UserError


def is_real_number(value) -> bool:
    """True for an int or float (numpy scalars included), False for bool and everything else."""
    # bool is an int subclass, but lr=True is a bug, not 1
    return (isinstance(value, (int, float, np.floating, np.integer))
            and not isinstance(value, (bool, np.bool_)))


def check_positive(name: str, value: float) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is a finite number > 0."""
    if not (is_real_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")


def check_nonnegative(name: str, value: float) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is a finite number ≥ 0."""
    if not (is_real_number(value) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")


def check_unit_interval(name: str, value: float) -> None:
    """Raise ValueError naming ``name`` unless 0 ≤ ``value`` < 1."""
    if not (is_real_number(value) and 0 <= value < 1):
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or ValueError naming ``name`` unless it is an integer ≥ ``minimum``.

    bool is rejected although it subclasses int: ``epochs=True`` is a bug, not 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


_NO_VALUE = object()


def as_generator(name, seed=_NO_VALUE, allow_none: bool = False) -> np.random.Generator:
    """A numpy Generator from an integer seed ≥ 0 (or a Generator, passed through).

    Called as ``as_generator("seed", value)`` like the other checks; the earlier
    ``as_generator(value)`` / ``as_generator(value, "name")`` order still works (a
    string is never a seed, so the two cannot be confused). With ``allow_none``,
    None gives a Generator seeded from fresh OS entropy.
    """
    if seed is _NO_VALUE:
        name, seed = "seed", name
    elif not isinstance(name, str):
        name, seed = seed, name  # the earlier order: (seed, name)
    if isinstance(seed, np.random.Generator):
        return seed
    if not (allow_none and seed is None):
        what = "an integer >= 0, a numpy Generator" + (" or None" if allow_none else "")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{name}: expected {what}, got {seed!r}")
    return np.random.default_rng(seed)


# The two checks below keep the (value, name) order of the theory module they came
# from, so its many callers read as before.

def check_real(value, name: str) -> float:
    """``value`` as a float, or ValueError naming ``name`` unless it is a real number (not bool)."""
    if not is_real_number(value):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    return float(value)


def as_real_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array, or ValueError naming ``name`` unless it holds real numbers.

    Integers are accepted (exact); bool, complex, strings and objects are not.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected real numbers, got an array of dtype {array.dtype}")
    return array.astype(np.float64)


def available_bytes():
    """Memory available to a new allocation (Linux: MemAvailable; else physical memory; None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


#: requests below this many bytes are not checked (check_memory runs once per evaluate)
MIN_CHECKED_BYTES = 2 ** 26


def check_memory(name: str, what: str, needed_bytes: float) -> None:
    """Raise UserError (a ValueError) naming ``name`` when ``needed_bytes`` exceed the memory available.

    Called before a size-driven allocation, so a huge size is one line, not a
    MemoryError traceback (or numpy's "array is too big" wording). ``needed_bytes``
    is a float: a product of sizes never overflows.
    """
    if needed_bytes < MIN_CHECKED_BYTES:  # fits anywhere: no need to read /proc/meminfo
        return
    have = available_bytes()
    if have is not None and needed_bytes > have:
        raise UserError(f"{name}: {what} needs about {needed_bytes / 1e9:.3g} GB of memory, more "
                         f"than the {have / 1e9:.3g} GB available; choose a smaller value")
