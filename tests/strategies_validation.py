"""Hypothesis strategies for bad inputs, and the assertion every validation test makes.

A *corruption* turns a good array into a bad one in one of the ways a user
gets it wrong: a NaN or Inf at a drawn position, an integer, complex, object,
bool or string dtype, a wrong shape, or a plain list instead of an array.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import strategies as st

#: the exceptions a bad argument may raise; anything else (IndexError, KeyError,
#: ZeroDivisionError, AttributeError, a NumPy broadcasting error) fails the test
ARGUMENT_ERRORS = (ValueError, TypeError)

NON_FINITE = (np.nan, np.inf, -np.inf)
BAD_DTYPES = ("int", "complex", "object", "bool", "str")


def names_argument(message: str, name: str) -> bool:
    """True if ``message`` names ``name``: ``name:``, ``name[`` or, for long names, the word."""
    pattern = rf"(?<![\w\-]){re.escape(name)}(?=[:\[])"
    if len(name) > 2:
        pattern += rf"|(?<![\w\-]){re.escape(name)}(?![\w])"
    return re.search(pattern, message) is not None


def expect_error(fn, name, errors=ARGUMENT_ERRORS):
    """Call ``fn``; it must raise one of ``errors`` whose message names ``name``.

    ``name`` may be a tuple of names when the fault is ambiguous (x and y of
    different lengths: either may be the wrong one).
    """
    with pytest.raises(errors) as info:
        fn()
    message = str(info.value)
    names = (name,) if isinstance(name, str) else name
    assert any(names_argument(message, n) for n in names), f"message does not name {name!r}: {message}"
    assert "\n" not in message.strip(), f"message is not one line: {message!r}"
    return info.value


@st.composite
def corrupted(draw, array: np.ndarray, kinds=("nonfinite", "dtype", "shape", "list"),
              dtypes=BAD_DTYPES):
    """(bad array, kind): ``array`` corrupted in one drawn way (a dtype from ``dtypes``)."""
    kind = draw(st.sampled_from(kinds))
    if kind == "nonfinite":
        bad = np.array(array, dtype=np.float64, copy=True)
        flat = bad.reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(NON_FINITE))
        return bad, kind
    if kind == "dtype":
        dtype = draw(st.sampled_from(dtypes))
        if dtype == "str":
            return np.full(array.shape, "a"), kind
        if dtype == "bool":
            return array > 0, kind
        return array.astype({"int": np.int64, "complex": np.complex128, "object": object}[dtype]), kind
    if kind == "shape":
        change = draw(st.sampled_from(["drop_row", "add_axis", "flatten"]))
        if change == "drop_row" and array.shape[0] > 1:
            return array[1:], kind
        if change == "flatten" and array.ndim > 1:
            return array.reshape(-1), kind
        return array[..., None], kind
    return array.tolist(), kind


#: scalars that are wrong for any positive real hyper-parameter
BAD_POSITIVE = st.sampled_from([0, -1, -0.5, np.nan, np.inf, -np.inf, "1", None, True, [1.0]])
#: wrong for an integer >= 1
BAD_COUNT = st.sampled_from([0, -3, 1.5, 2.0, "3", None, True, np.nan])
#: wrong for a name chosen from a list
BAD_NAME = st.sampled_from(["", "nope", "HESSIAN ", None, 3])
