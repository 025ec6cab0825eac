"""Argument checks shared by every public entry point (DESIGN §8).

Each raises ValueError whose message starts with the argument's name, so a
user learns which argument to fix. This module imports nothing from the
package: everything may use it.
"""
from __future__ import annotations

import numbers

import numpy as np


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or ValueError naming ``name`` unless it is an integer ≥ ``minimum``.

    bool is rejected although it subclasses int: ``epochs=True`` is a bug, not 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def as_generator(seed, name: str = "seed", allow_none: bool = False) -> np.random.Generator:
    """A numpy Generator from an integer seed ≥ 0 (or a Generator, passed through).

    With ``allow_none``, None gives a Generator seeded from fresh OS entropy.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if not (allow_none and seed is None):
        what = "an integer >= 0, a numpy Generator" + (" or None" if allow_none else "")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{name}: expected {what}, got {seed!r}")
    return np.random.default_rng(seed)
