"""The safeguard rules of optim/safeguards.py as pure functions (docs/theory.md, Theorem 10, Prop. 11)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilayerlr import theory
from minilayerlr.optim import safeguards
from minilayerlr.optim.safeguards import armijo_factor, backtrack_updates, implicit_decay_step_sizes
from minilayerlr.tree import apply_updates


@given(st.integers(0, 2**31 - 1), st.floats(-2.0, 3.0))
def test_armijo_factor_is_the_largest_accepted_power_of_the_shrink(seed, log10_curv):
    """On φ(t) = f0 − s t + ½ Λ s t² the accepted t is max{τ^k : φ(τ^k) ≤ f0 − ν τ^k s} (brute force)."""
    rng = np.random.default_rng(seed)
    f0, s, big = rng.normal(), 10.0 ** rng.uniform(-2, 2), 10.0 ** log10_curv
    phi = lambda t: f0 - s * t + 0.5 * big * s * t * t  # noqa: E731
    t, f_t = armijo_factor(phi, f0, s)
    powers = 0.5 ** np.arange(31)
    ok = [p for p in powers if phi(p) <= f0 - 1e-4 * p * s]
    assert t == (ok[0] if ok else 0.0) and f_t == (phi(t) if ok else f0)
    if ok:  # the guaranteed acceptance point of Theorem 10's proof: t ≥ min(1, τ·2(1 − ν)/Λ)
        assert t >= min(1.0, 0.5 * 2 * (1 - 1e-4) / big)


def test_armijo_factor_rejects_nan_and_increase_and_returns_zero():
    assert armijo_factor(lambda t: np.nan, 1.0, 1.0) == (0.0, 1.0)
    assert armijo_factor(lambda t: 1.0 + t, 1.0, 0.0) == (0.0, 1.0)
    calls = []
    armijo_factor(lambda t: calls.append(t) or 2.0, 1.0, 1.0, max_shrinks=3)
    assert calls == [1.0, 0.5, 0.25, 0.125]


def test_backtrack_updates_returns_the_tested_point_bit_for_bit():
    """The accepted updates reproduce the tested trial point exactly (f never increases by rounding)."""
    params = [{"x": np.array([0.1, 0.7])}, {}, {"x": np.array([1 / 3])}]
    grads = [{"x": np.array([1.0, 3.0])}, {}, {"x": np.array([2.0])}]
    updates = [{"x": np.array([-3.0, -9.0])}, {}, {"x": np.array([-6.0])}]
    seen = []

    def loss(p):
        value = float(np.sum(p[0]["x"] ** 2) + np.sum(p[2]["x"] ** 2))
        seen.append((p, value))
        return value

    scaled, t = backtrack_updates(updates, params, grads, loss)
    assert 0 < t < 1
    accepted = apply_updates(params, scaled)
    tested = [p for p, _ in seen if all(np.array_equal(a.get("x", 0), b.get("x", 0)) for a, b in zip(p, accepted))]
    assert tested and loss(accepted) <= loss(params)


@given(st.floats(-3, 3), st.floats(0.0, 1.0))
def test_implicit_decay_is_the_proximal_step(log10_alpha, wd):
    """Prop. 11: θ − α̃(d + wd θ) = (θ − αd)/(1 + α wd), factor in (0, 1], α̃ wd < 1."""
    alpha = np.array([10.0 ** log10_alpha, 0.0])
    rng = np.random.default_rng(0)
    theta, d = rng.standard_normal(2), rng.standard_normal(2)
    tilde = implicit_decay_step_sizes(alpha, wd)
    np.testing.assert_allclose(theta - tilde * (d + wd * theta), (theta - alpha * d) / (1 + alpha * wd),
                               rtol=1e-13, atol=1e-13 * (1 + alpha.max()))
    assert np.all(tilde <= alpha) and np.all(tilde * wd < 1)


def test_theory_defaults_are_the_safeguards_defaults():
    """Theorem 10's bound is computed with the constants the optimizer uses."""
    assert theory.line_search_bound(1.0, 10.0, 0.5) == theory.line_search_bound(
        1.0, 10.0, 0.5, safeguards.SUFFICIENT_DECREASE, safeguards.SHRINK)
    # k_max condition of Theorem 10 for the package's range of ηκ
    assert safeguards.SHRINK ** safeguards.MAX_SHRINKS <= 2 * (1 - safeguards.SUFFICIENT_DECREASE) / 2e9


@pytest.mark.parametrize("kwargs, name", [({"sufficient_decrease": 1.0}, "sufficient_decrease"),
                                          ({"shrink": 0.0}, "shrink"), ({"scale": -1.0}, "scale")])
def test_line_search_bound_rejects_bad_arguments(kwargs, name):
    args = {"mu": 1.0, "smoothness": 2.0, "scale": 0.5, **kwargs}
    with pytest.raises(ValueError, match=f"^{name}"):
        theory.line_search_bound(**args)
