"""minilayerlr.validation: the scalar checks every public entry point uses (docs/design.md §7).

Each check accepts what it promises, refuses the rest with a ValueError whose message
starts with the argument's name, and returns the value where it says so.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilayerlr.validation import (as_generator, as_real_array, check_int, check_nonnegative,
                                    check_positive, check_real, check_unit_interval, is_real_number)
from strategies_validation import BAD_POSITIVE, expect_error

NUMBERS = st.sampled_from([1, 2.5, np.float32(0.5), np.int64(3), 1e-300])


@given(NUMBERS)
def test_good_values_pass(value):
    assert is_real_number(value)
    assert check_positive("lr", value) is None
    assert check_nonnegative("wd", value) is None
    assert check_real(value, "a") == float(value)
    check_nonnegative("wd", 0.0)
    check_unit_interval("ema", 0.0)
    check_unit_interval("ema", 0.999)


@given(BAD_POSITIVE)
def test_check_positive_names_the_argument(value):
    expect_error(lambda: check_positive("lr", value), "lr")


@pytest.mark.parametrize("value", [1, 1.0, -0.1, math.nan, math.inf, "0.5", None, True])
def test_check_unit_interval_refuses_outside_zero_one(value):
    expect_error(lambda: check_unit_interval("ema", value), "ema")


@pytest.mark.parametrize("value", [-1e-9, math.nan, math.inf, "0", None, np.bool_(True)])
def test_check_nonnegative_refuses(value):
    expect_error(lambda: check_nonnegative("wd", value), "wd")


def test_check_int_returns_a_python_int_and_refuses_bool():
    assert check_int("epochs", np.int64(3), 0) == 3 and type(check_int("epochs", 3)) is int
    for bad in (True, 1.0, "1", 0):
        expect_error(lambda: check_int("epochs", bad, 1), "epochs")


@given(st.integers(0, 2**32))
def test_as_generator_reads_both_argument_orders(seed):
    """("name", seed) is the convention; (seed) and (seed, "name") are the earlier order."""
    draws = [g.integers(0, 2**62) for g in (as_generator("seed", seed), as_generator(seed),
                                            as_generator(seed, "seed"),
                                            np.random.default_rng(seed))]
    assert len(set(draws)) == 1
    rng = np.random.default_rng(1)
    assert as_generator("seed", rng) is rng


@pytest.mark.parametrize("call", [lambda: as_generator("rng_seed", -1),
                                  lambda: as_generator("rng_seed", 1.5),
                                  lambda: as_generator("rng_seed", True),
                                  lambda: as_generator("rng_seed", None),
                                  lambda: as_generator("rng_seed", "0")])
def test_as_generator_names_the_argument(call):
    expect_error(call, "rng_seed")
    assert isinstance(as_generator("rng_seed", None, allow_none=True), np.random.Generator)


def test_as_real_array_refuses_what_is_not_real():
    np.testing.assert_array_equal(as_real_array([1, 2], "b"), [1.0, 2.0])
    for bad in ([1j], ["a"], [True, False]):
        expect_error(lambda: as_real_array(bad, "b"), "b")
