"""LayerwiseStepSize and GDLS: oracles, invariances, fallbacks, weight decay."""
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilayerlr.optim import (GDLS, SGD, Adam, AdamW, LayerwiseStepSize, apply_updates,
                               scale_blocks)
from minilayerlr.theory import BlockQuadratic
from strategies_optim import block_quadratics


@dataclass(frozen=True)
class FixedDirection:
    """A stub base method whose direction is given (to scale d_l at will)."""
    d: list
    coupled_weight_decay: float = 0.0
    decoupled_weight_decay: float = 0.0

    def init(self, params):
        return None

    def direction(self, grads, state, params=None):
        return self.d, state


@dataclass(frozen=True)
class ScaledPerturbedGradient:
    """A stub base method: d_t = s ⊙_blocks (g_t + r_t), r_t a fixed sequence (changes every step)."""
    scales: np.ndarray
    perturbations: list
    coupled_weight_decay: float = 0.0
    decoupled_weight_decay: float = 0.0

    def init(self, params):
        return 0

    def direction(self, grads, state, params=None):
        d = [{n: g + r[n] for n, g in gk.items()} for gk, r in zip(grads, self.perturbations[state])]
        return scale_blocks(d, self.scales), state + 1


def flat(tree):
    return np.concatenate([tree[k][n].ravel() for k in range(len(tree)) for n in tree[k]])


def informative(states, rel=1e-8):
    """Mask of blocks whose numerator is far above roundoff (relative to step 1)."""
    first = np.abs(states[0].numerators)
    return [(np.abs(s.numerators) > rel * first) & (s.fallbacks == 0) for s in states]


def run(opt, quad, steps, seed=0):
    """Run ``steps`` steps of ``opt`` on ``quad``; return the list of (params, state)."""
    params = quad.init(seed)
    state = opt.init(params)
    out = []
    for _ in range(steps):
        ev = quad.evaluate(params)
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = apply_updates(params, updates)
        out.append((params, state))
    return out


def test_runs_on_a_synthetic_lambda_oracle():
    params = [{"W": np.ones((2, 2)), "b": np.zeros(2)}, {}, {"w": np.full(3, 2.0)}]
    grads = [{"W": np.full((2, 2), 0.5), "b": np.ones(2)}, {}, {"w": np.ones(3)}]
    opt = LayerwiseStepSize(SGD(), scale=1.0)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params, curvature=lambda d: np.array([3.0, 0.5]))
    # block 0: gᵀd = 4·0.25 + 2 = 3, q = 3 → α = 1; block 1: gᵀd = 3, q = 0.5 → α = 6
    np.testing.assert_allclose(state.step_sizes, [1.0, 6.0])
    np.testing.assert_allclose(updates[2]["w"], -6.0 * np.ones(3))
    np.testing.assert_allclose(updates[0]["W"], -0.5 * np.ones((2, 2)))
    assert updates[1] == {} and state.fallback_names == ("none", "none")


def test_blocks_scale_is_one_over_the_number_of_blocks():
    """η = 1/L with scale="blocks" (the 0.1 default; L blocks: in Theorem 1's range 0 < η < 2/c
    on every quadratic, as c ≤ L)."""
    params = [{"W": np.ones((2, 2)), "b": np.zeros(2)}, {}, {"w": np.full(3, 2.0)}]
    grads = [{"W": np.full((2, 2), 0.5), "b": np.ones(2)}, {}, {"w": np.ones(3)}]
    oracle = lambda d: np.array([3.0, 0.5])  # noqa: E731
    blocks = LayerwiseStepSize(SGD(), ema=0.0, scale="blocks")
    _, state = blocks.update(grads, blocks.init(params), params, curvature=oracle)
    np.testing.assert_allclose(state.step_sizes, [0.5, 3.0])  # (1/2)·[1, 6]
    assert blocks.multiplier(2) == 0.5 and LayerwiseStepSize(SGD(), scale=0.3).multiplier(2) == 0.3
    assert state.multiplier == 0.5


@given(block_quadratics(), st.integers(0, 2**31 - 1), st.floats(0.0, 2.0),
       st.floats(0.0, 0.9))
def test_scaling_each_direction_block_leaves_the_update_unchanged(problem, seed, damping, ema):
    """Proposition 5(a) (docs/theory.md): d_l → s_l d_l (s_l > 0 fixed across steps) leaves every
    update α_l d_l and every fallback unchanged, with directions and gradients that change each
    step so that the EMA averages different values (the optimizer runs for real)."""
    A, b, sizes, _ = problem
    quad = BlockQuadratic(A, b, sizes)
    rng = np.random.default_rng(seed)
    s = 10.0 ** rng.uniform(-3, 3, len(sizes))
    steps = 4
    perturbations = [quad.split(rng.standard_normal(quad.dim)) for _ in range(steps)]
    runs = []
    for scales in (np.ones(len(sizes)), s):
        opt = LayerwiseStepSize(ScaledPerturbedGradient(scales, perturbations), damping=damping, ema=ema)
        params = quad.init(seed)
        state, history = opt.init(params), []
        for _ in range(steps):
            ev = quad.evaluate(params)
            updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
            params = apply_updates(params, updates)
            history.append((flat(updates), state.fallbacks))
        runs.append(history)
    for (u0, f0), (u1, f1) in zip(*runs):
        # a step of size ‖u‖ ≤ ~1e3 (α up to 1/λ_min ~ 1e3 times ‖d‖ ~ 1) rounds at ~1e-13 absolute
        np.testing.assert_allclose(u1, u0, rtol=1e-8, atol=1e-10)
        np.testing.assert_array_equal(f1, f0)


@given(block_quadratics(min_log10_cond=0.5), st.floats(-3, 3), st.sampled_from([0.0, 0.5, 0.9]),
       st.booleans(), st.floats(0.0, 0.8))
def test_scaling_the_loss_leaves_sgd_ls_unchanged(problem, log10_omega, momentum, nesterov, ema):
    """Proposition 5(b) (docs/theory.md): f → ω·f (ω > 0, λ = 0) leaves SGD-LS's iterates unchanged."""
    A, b, sizes, seed = problem
    omega = 10.0 ** log10_omega
    opt = LayerwiseStepSize(SGD(momentum=momentum, nesterov=nesterov and momentum > 0), ema=ema)
    plain = run(opt, BlockQuadratic(A, b, sizes), 3, seed)
    scaled = run(opt, BlockQuadratic(omega * A, omega * b, sizes), 3, seed)
    masks = informative([s for _, s in plain])
    for (p0, s0), (p1, s1), used in zip(plain, scaled, masks):
        np.testing.assert_allclose(flat(p1), flat(p0), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(s1.step_sizes[used] * omega, s0.step_sizes[used], rtol=1e-6)


@given(block_quadratics(max_log10_cond=4.0))
def test_one_block_gradient_direction_is_exact_line_search(problem):
    """Proposition 6 (docs/theory.md): one block, d = g, η = 1, λ = 0 gives α = gᵀg/gᵀAg."""
    A, b, _, seed = problem
    quad = BlockQuadratic(A, b, [len(b)])
    params = quad.init(seed)
    ev = quad.evaluate(params)
    g = quad.join(ev.grads)
    opt = LayerwiseStepSize(SGD())
    updates, state = opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature)
    np.testing.assert_allclose(state.step_sizes, [g @ g / (g @ A @ g)], rtol=1e-12)
    # exactness along the line: the new gradient is orthogonal to g
    x_new = quad.join(apply_updates(params, updates))
    g_new = A @ x_new - b
    assert abs(g @ g_new) <= 1e-9 * np.linalg.norm(g) * (np.linalg.norm(g_new) + np.linalg.norm(g))


@given(block_quadratics(min_log10_cond=0.5), st.floats(0.0, 1.0), st.sampled_from([0.0, 0.9]))
def test_sgd_weight_decay_equals_regularised_objective(problem, wd, momentum):
    """SGD's coupled decay is part of the objective: SGD(wd)-LS on f = SGD-LS on f + ½wd‖x‖²."""
    A, b, sizes, seed = problem
    decayed = run(LayerwiseStepSize(SGD(momentum=momentum, weight_decay=wd)),
                  BlockQuadratic(A, b, sizes), 3, seed)
    regular = run(LayerwiseStepSize(SGD(momentum=momentum)),
                  BlockQuadratic(A + wd * np.eye(len(b)), b, sizes), 3, seed)
    # α is compared where it is not computed from roundoff (a block that converged
    # exactly shows g_l = 0 in one run and 1e-17 in the other)
    masks = informative([s for _, s in regular])
    for (p0, s0), (p1, s1), used in zip(decayed, regular, masks):
        np.testing.assert_allclose(flat(p0), flat(p1), rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(s0.step_sizes[used], s1.step_sizes[used], rtol=1e-6)


@given(block_quadratics(), st.floats(0.01, 0.5))
def test_adamw_ls_decay_uses_the_layer_step_size(problem, wd):
    """AdamW-LS (Proposition 11, docs/theory.md): θ_l ← (θ_l − α_l d_l)/(1 + α_l·wd) with α_l the
    Adam-LS step, i.e. AdamW's update with lr α̃_l = α_l/(1 + α_l wd), which step_sizes records."""
    A, b, sizes, seed = problem
    quad = BlockQuadratic(A, b, sizes)
    params = quad.init(seed)
    ev = quad.evaluate(params)
    outs = []
    for base in (Adam(), AdamW(weight_decay=wd)):
        opt = LayerwiseStepSize(base)
        outs.append(opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature))
    (u_adam, s_adam), (u_adamw, s_adamw) = outs
    np.testing.assert_allclose(s_adamw.step_sizes, s_adam.step_sizes / (1 + s_adam.step_sizes * wd),
                               rtol=1e-14)
    alpha, theta = np.repeat(s_adam.step_sizes, sizes), quad.join(params)
    np.testing.assert_allclose(flat(u_adamw) + theta, (theta + flat(u_adam)) / (1 + alpha * wd),
                               rtol=1e-12, atol=1e-14 * (1 + np.abs(theta).max()))


def test_fallbacks_fire_and_never_produce_nan():
    params = [{"x": np.ones(2)}, {"x": np.ones(2)}, {"x": np.ones(2)}, {"x": np.ones(2)}]
    grads = [{"x": np.ones(2)}, {"x": np.ones(2)}, {"x": np.ones(2)}, {"x": np.zeros(2)}]
    opt = LayerwiseStepSize(SGD(), scale=1.0, max_step=5.0, ema=0.0, denominator="signed")
    state = opt.init(params)
    # step 1: block 0 fine (α = 2/1), block 1 zero curvature, block 2 tiny curvature
    # (α > α_max: capped), block 3 zero gradient (ascent rule: skip)
    updates, state = opt.update(grads, state, params,
                                curvature=lambda d: np.array([1.0, 0.0, 1e-320, 0.0]))
    assert state.fallback_names == ("none", "nonpositive_curvature", "capped", "ascent")
    np.testing.assert_allclose(state.step_sizes, [2.0, 0.0, 5.0, 0.0])
    # step 2: block 0 negative curvature → "previous" reuses α = 2
    updates, state = opt.update(grads, state, params,
                                curvature=lambda d: np.array([-1.0, 4.0, 2.0, 1.0]))
    assert state.fallback_names == ("nonpositive_curvature", "none", "none", "ascent")
    np.testing.assert_allclose(state.step_sizes, [2.0, 0.5, 1.0, 0.0])
    assert all(np.all(np.isfinite(u["x"])) for u in updates)


@pytest.mark.parametrize("rule, expected", [("skip", 0.0), ("previous", 1.0), ("max_step", 3.0)])
def test_ascent_rule_with_momentum_reversal(rule, expected):
    """g₂ᵀm₂ < 0 after the gradient flips sign under momentum: the ascent rule decides α."""
    params = [{"x": np.zeros(1)}]
    opt = LayerwiseStepSize(SGD(momentum=0.9), max_step=3.0, on_ascent=rule, ema=0.0, scale="blocks")
    state = opt.init(params)
    _, state = opt.update([{"x": np.ones(1)}], state, params, curvature=lambda d: d[0]["x"] ** 2)
    assert state.step_sizes[0] == 1.0
    updates, state = opt.update([{"x": -0.1 * np.ones(1)}], state, params,
                                curvature=lambda d: d[0]["x"] ** 2)
    assert state.numerators[0] < 0 and state.fallback_names == ("ascent",)
    np.testing.assert_allclose(state.step_sizes, [expected])
    np.testing.assert_allclose(updates[0]["x"], -expected * 0.8 * np.ones(1))


def test_curvature_kind_and_reproducible_estimator_seeds():
    params = [{"x": np.ones(2)}]
    calls = []

    def oracle(d, **kwargs):
        calls.append(kwargs)
        return np.array([1.0])

    for kind in ("hessian", "sign_hvp", "sign_hvp"):
        opt = LayerwiseStepSize(SGD(), curvature_kind=kind, seed=7, scale="blocks")
        state = opt.init(params)
        for _ in range(2):
            _, state = opt.update(params, state, params, curvature=oracle)
    assert calls[0] == {"kind": "hessian"} == calls[1]
    seeds = [c["seed"] for c in calls[2:]]
    assert all(c["kind"] == "sign_hvp" for c in calls[2:])
    assert seeds[:2] == seeds[2:] and seeds[0] != seeds[1]  # same run → same seeds; steps differ


def test_sign_hvp_estimator_on_a_quadratic_runs_and_is_seeded():
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    quad = BlockQuadratic(A, np.ones(2), [1, 1])
    opt = LayerwiseStepSize(SGD(), curvature_kind="sign_hvp", seed=3)
    a, b = run(opt, quad, 3), run(opt, quad, 3)
    np.testing.assert_array_equal(flat(a[-1][0]), flat(b[-1][0]))


def test_missing_or_malformed_curvature_raises():
    params = [{"x": np.ones(2)}, {"x": np.ones(1)}]
    opt = LayerwiseStepSize(SGD())
    state = opt.init(params)
    with pytest.raises(ValueError, match="curvature"):
        opt.update(params, state, params)
    with pytest.raises(ValueError, match="curvature"):
        opt.update(params, state, params, curvature=lambda d: np.ones(3))
    with pytest.raises(ValueError, match="curvature"):
        opt.update(params, state, params, curvature=lambda d: np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="grads"):
        opt.update([{"x": np.array([np.nan, 1.0])}, {"x": np.ones(1)}], state, params,
                   curvature=lambda d: np.ones(2))


@pytest.mark.parametrize("kwargs, name", [
    ({"scale": 0.0}, "scale"), ({"scale": -1.0}, "scale"), ({"damping": -0.1}, "damping"),
    ({"ema": 1.0}, "ema"), ({"ema": -0.1}, "ema"), ({"max_step": 0.0}, "max_step"),
    ({"on_ascent": "jump"}, "on_ascent"), ({"on_nonpositive_curvature": "max_step"}, "on_nonpositive_curvature"),
    ({"curvature_kind": "exact"}, "curvature_kind"), ({"seed": -1}, "seed"), ({"base": 0.1}, "base"),
])
def test_bad_layerwise_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LayerwiseStepSize(**kwargs)
    with pytest.raises(ValueError, match="scale"):
        GDLS(scale=-1.0)


def test_gdls_is_the_idealized_step():
    """GDLS: α_l = η‖g_l‖²/g_lᵀA_ll g_l, by hand on a 2-block quadratic."""
    A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    quad = BlockQuadratic(A, np.array([1.0, -1.0, 2.0]), [2, 1])
    params = quad.split(np.array([0.3, -0.2, 0.1]))
    ev = quad.evaluate(params)
    g = A @ np.array([0.3, -0.2, 0.1]) - np.array([1.0, -1.0, 2.0])
    opt = GDLS(scale=0.7)  # c < 2(1 − ν)/0.7 here: the line search keeps the full step (Theorem 10)
    updates, state = opt.update(ev.grads, opt.init(params), params, curvature=ev.layer_curvature,
                                loss=lambda p: quad.evaluate(p).loss)
    assert state.line_search_factor == 1.0
    a0 = 0.7 * (g[:2] @ g[:2]) / (g[:2] @ A[:2, :2] @ g[:2])
    a1 = 0.7 * g[2] ** 2 / (g[2] ** 2 * A[2, 2])
    np.testing.assert_allclose(state.step_sizes, [a0, a1], rtol=1e-13)
    np.testing.assert_allclose(flat(updates), -np.concatenate([a0 * g[:2], [a1 * g[2]]]), rtol=1e-13)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ema_is_a_ratio_of_averages_with_bias_cancelling(rho):
    """Two steps by hand, zero-started EMA n̄₂ = ρ(1−ρ)n₁ + (1−ρ)n₂ (same for D̄):
    α₂ = η n̄₂/D̄₂, the bias factors (1 − ρ²) cancelling; the state reports n̄₂/(1 − ρ²)."""
    params = [{"x": np.array([1.0, 2.0])}]
    g1, g2 = np.array([1.0, -1.0]), np.array([2.0, 0.5])
    q1, q2 = 3.0, 0.7
    opt = LayerwiseStepSize(SGD(), scale=0.8, damping=0.1, ema=rho)
    state = opt.init(params)
    _, state = opt.update([{"x": g1}], state, params, curvature=lambda d: np.array([q1]))
    n1, D1 = g1 @ g1, q1 + 0.1 * g1 @ g1
    np.testing.assert_allclose(state.step_sizes, [0.8 * n1 / D1], rtol=1e-14)
    _, state = opt.update([{"x": g2}], state, params, curvature=lambda d: np.array([q2]))
    n2, D2 = g2 @ g2, q2 + 0.1 * g2 @ g2
    np.testing.assert_allclose(state.step_sizes,
                               [0.8 * (rho * (1 - rho) * n1 + (1 - rho) * n2)
                                / (rho * (1 - rho) * D1 + (1 - rho) * D2)],
                               rtol=1e-14)
    np.testing.assert_allclose(state.avg_numerators,
                               [(rho * (1 - rho) * n1 + (1 - rho) * n2) / (1 - rho**2)], rtol=1e-14)
    np.testing.assert_allclose(state.numerators, [n2])
    np.testing.assert_allclose(state.curvatures, [q2])


def test_ascent_checks_this_steps_numerator_even_if_the_average_is_positive():
    """A positive average must not push a block uphill on this step (our safeguard)."""
    params = [{"x": np.zeros(1)}]
    opt = LayerwiseStepSize(SGD(momentum=0.5), ema=0.9, scale="blocks")
    state = opt.init(params)
    _, state = opt.update([{"x": np.ones(1)}], state, params, curvature=lambda d: d[0]["x"] ** 2)
    _, state = opt.update([{"x": -0.4 * np.ones(1)}], state, params,
                          curvature=lambda d: d[0]["x"] ** 2)
    # m₂ = 0.5 − 0.4 = 0.1 and n₂ = −0.04 < 0, while the average is 0.9·1 + 0.1·(−0.04) > 0
    assert state.numerators[0] < 0 < state.avg_numerators[0]
    assert state.fallback_names == ("ascent",) and state.step_sizes[0] == 0.0


# -- the pure rule functions ---------------------------------------------------------------------

def test_layerwise_step_sizes_is_the_equation():
    """α_l = η n_l / (q_l + λ‖d_l‖²), called directly on three blocks. The operands are
    dyadic, so q_l + λ‖d_l‖² is exact and both sides round the same quotient once."""
    from minilayerlr.optim.layerwise import layerwise_step_sizes
    alpha = layerwise_step_sizes(np.array([2.0, 1.0, 3.0]), np.array([1.0, 3.0, 0.5]),
                                 np.array([4.0, 2.0, 2.0]), scale=0.5, damping=0.25)
    np.testing.assert_array_equal(alpha, [0.5 * 2.0 / 2.0, 0.5 * 1.0 / 3.5, 0.5 * 3.0 / 1.0])
    # zero denominator: ±inf/NaN, left for the fallbacks, no warning raised
    with np.errstate(all="raise"):
        edge = layerwise_step_sizes(np.array([1.0, 0.0]), np.zeros(2), np.zeros(2),
                                    scale=1.0, damping=0.0)
    assert np.isinf(edge[0]) and np.isnan(edge[1])


def test_moving_average_is_the_bias_corrected_ema():
    """Two steps by hand: the corrected average after (v₁, v₂) is (ρ(1−ρ)v₁ + (1−ρ)v₂)/(1−ρ²)."""
    from minilayerlr.optim.layerwise import moving_average
    rho, v1, v2 = 0.75, np.array([1.0, -2.0]), np.array([3.0, 0.5])
    a1 = moving_average(np.zeros(2), v1, rho, 1)
    np.testing.assert_allclose(a1, v1, rtol=1e-15)  # step 1: the value itself
    a2 = moving_average(a1, v2, rho, 2)
    np.testing.assert_allclose(a2, (rho * (1 - rho) * v1 + (1 - rho) * v2) / (1 - rho ** 2),
                               rtol=1e-15)
    np.testing.assert_array_equal(moving_average(a1, v2, 0.0, 2), v2)  # ρ = 0: exactly v


def _fallbacks_block_by_block(numer, avg_n, avg_d, raw, previous, max_step, rules):
    """The per-block definition of the fallbacks, written as a loop (reference for the test)."""
    alpha, codes, reference = np.zeros(len(numer)), [], previous.copy()
    for l in range(len(numer)):
        if numer[l] <= 0 or avg_n[l] <= 0:
            code = 1
        elif not avg_d[l] > 0 or (np.isinf(raw[l]) and np.isinf(max_step)):
            code = 2
        else:
            code = 3 if raw[l] > max_step else 0
        codes.append(code)
        if code in (0, 3):
            alpha[l] = reference[l] = min(raw[l], max_step)
        else:
            alpha[l] = {"skip": 0.0, "previous": previous[l], "max_step": max_step}[rules[code - 1]]
    return alpha, np.array(codes), reference


@given(st.data())
def test_vectorised_fallbacks_match_their_block_by_block_definition(data):
    from minilayerlr.optim.layerwise import apply_fallbacks, fallback_codes, layerwise_step_sizes
    n = data.draw(st.integers(1, 6), label="blocks")
    pick = lambda values, label: np.array(data.draw(st.lists(st.sampled_from(values), min_size=n,
                                                             max_size=n), label=label))
    numer = pick([-1.0, 0.0, 0.5, 2.0], "numerators")
    avg_n = np.where(numer > 0, pick([-0.5, 0.0, 1.0, 3.0], "avg_numerators"), numer)
    avg_d = pick([-1.0, 0.0, 1e-320, 0.25, 4.0], "avg_denominators")
    previous = pick([0.0, 0.5, 7.0], "previous")
    max_step = data.draw(st.sampled_from([np.inf, 1.0, 10.0]), label="max_step")
    rules = data.draw(st.tuples(*[st.sampled_from(["skip", "previous"]
                                                  + (["max_step"] if np.isfinite(max_step) else []))] * 2),
                      label="rules")
    raw = layerwise_step_sizes(avg_n, avg_d, np.zeros(n), scale=0.5, damping=0.0)
    codes = fallback_codes(numer, avg_n, avg_d, raw, max_step)
    alpha, reference = apply_fallbacks(raw, codes, previous, on_ascent=rules[0],
                                       on_nonpositive_curvature=rules[1], max_step=max_step)
    want_alpha, want_codes, want_reference = _fallbacks_block_by_block(
        numer, avg_n, avg_d, raw, previous, max_step, rules)
    np.testing.assert_array_equal(codes, want_codes)
    np.testing.assert_array_equal(alpha, want_alpha)
    np.testing.assert_array_equal(reference, want_reference)
    assert np.all(np.isfinite(alpha))
