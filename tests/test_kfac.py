"""K-FAC (minilayerlr.optim.KFAC): the paper's equations unrolled (fixed λ with regular momentum; the
quadratic-model step with Levenberg-Marquardt damping), the Newton step, purity, seeds, networks."""
import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim import KFAC, KFACState, SGD
from minilayerlr.optim.kfac_qmodel import adapt_damping
from minilayerlr.optim.oracles import supply_oracles
from minilayerlr.training.checkpoint import encode_tree

from strategies import seeds
from strategies_validation import expect_error
from test_optim_networks import cnn_task, gcn_task, mlp_task

EPS = np.finfo(float).eps


def _conv_dense_net():
    """Both Kronecker layouts in one network: a Conv2d block and a Dense block."""
    rng = np.random.default_rng(11)
    net = mll.Sequential([mll.Conv2d(1, 2, 3, padding=1), mll.Tanh(), mll.Flatten(), mll.Dense(32, 3)],
                         mll.SoftmaxCrossEntropy())
    return net, rng.standard_normal((6, 1, 4, 4)), np.array([0, 1, 2, 2, 1, 0])


def _step_seed(seed, t):
    return int(np.random.SeedSequence([seed, t]).generate_state(1)[0])



def _damped_factors(history, weights, lam, n_blocks):
    """M&G's damped factors by hand: the debiased averages Ā, Ḡ of the drawn factors, π from
    their traces, (Ā + π√λ I, Ḡ + √λ/π I) per block."""
    damped = []
    for i in range(n_blocks):
        A = sum(w * h[i]["A"] for w, h in zip(weights, history))
        G = sum(w * h[i]["G"] for w, h in zip(weights, history))
        pi = math.sqrt((np.trace(A) / len(A)) / (np.trace(G) / len(G)))
        damped.append((A + pi * math.sqrt(lam) * np.eye(len(A)),
                       G + math.sqrt(lam) / pi * np.eye(len(G))))
    return damped

def _kfac_reference(net, params, x, y, steps, lr, lam, eps, T, mu, seed):
    """K-FAC from the equations (M&G 2015 §3, §6.3; KFC 2016 §3), with Kronecker products built in full.

    Ā_t = Σ_{s≤t} (1−ε) ε^{t−s} A_s / (1 − ε^t)    (zero-start average, zero-debiased)
    π = sqrt((tr Ā/dim)/(tr Ḡ/dim)),  vec Δ = [(Ā + π√λI) ⊗ (Ḡ + √λ/π I)]⁻¹ vec ∇W̃  (Dense rows of [W; b])
    (Conv2d: [(Ḡ + √λ/π I) ⊗ (Ā + π√λ I)]⁻¹ on rows of [W | b]),  v ← μv + Δ,  θ ← θ − lr v.
    """
    history, damped, velocity = [], None, None
    for t in range(1, steps + 1):
        ev = net.evaluate(params, x, y)
        history.append(ev.kronecker_factors(seed=_step_seed(seed, t)))
        weights = [(1 - eps) * eps ** (t - s) / (1 - eps ** t) for s in range(1, t + 1)]
        if (t - 1) % T == 0:
            damped = _damped_factors(history, weights, lam, len(net.blocks))
        new = [dict(p) for p in params]
        velocity = velocity or [{n: np.zeros_like(a) for n, a in p.items()} for p in params]
        for i, k in enumerate(net.blocks):
            W, b = ev.grads[k]["W"], ev.grads[k]["b"]
            Ad, Gd = damped[i]
            if W.ndim == 2:
                matrix = np.vstack([W, b])
                vec = np.linalg.solve(np.kron(Ad, Gd), matrix.ravel()).reshape(matrix.shape)
                delta = {"W": vec[:-1], "b": vec[-1]}
            else:
                matrix = np.hstack([W.reshape(W.shape[0], -1), b[:, None]])
                vec = np.linalg.solve(np.kron(Gd, Ad), matrix.ravel()).reshape(matrix.shape)
                delta = {"W": vec[:, :-1].reshape(W.shape), "b": vec[:, -1]}
            velocity[k] = {n: mu * velocity[k][n] + delta[n] for n in delta}
            new[k] = {n: params[k][n] - lr * velocity[k][n] for n in delta}
        params = new
    return params


def _oracles(opt, net, ev, x, y):
    return supply_oracles(opt, ev, loss=lambda p: net.loss_value(p, x, y))


def _run(opt, net, params, x, y, steps):
    state = opt.init(params)
    for _ in range(steps):
        ev = net.evaluate(params, x, y)
        updates, state = opt.update(ev.grads, state, params, **_oracles(opt, net, ev, x, y))
        params = mll.apply_updates(params, updates)
    return params, state


def test_three_steps_equal_the_equations_unrolled():
    net, x, y = _conv_dense_net()
    params0 = net.init(2)
    hyper = dict(lr=0.3, damping=0.05, factor_decay=0.8, inverse_every=2, momentum=0.7, seed=5)
    params, state = _run(KFAC(**hyper, momentum_type="regular", adapt_damping=False), net, params0, x, y, 3)
    expected = _kfac_reference(net, params0, x, y, 3, hyper["lr"], hyper["damping"], hyper["factor_decay"],
                               hyper["inverse_every"], hyper["momentum"], hyper["seed"])
    assert state.count == 3 and state.factor_seed == _step_seed(5, 3)
    for e, f in zip(params, expected):
        for n in e:
            # The reference solves the full Kronecker system, the code two small inverses:
            # they agree to rounding, well inside 1e-12 on parameters of size ~1.
            np.testing.assert_allclose(e[n], f[n], rtol=0, atol=1e-12)
    moved = max(np.abs(e[n] - f[n]).max() for e, f in zip(params, params0) for n in e)
    assert moved > 1e-2  # the steps were not negligible


def _kfac_qmodel_reference(net, params, x, y, steps, lam, eps, T, seed, interval, decay, rescale):
    """K-FAC with the exact quadratic model and Levenberg-Marquardt damping, from M&G 2015's equations.

    Δ_t = −F̃⁻¹∇h with F̃ the damped Kronecker blocks of ``_kfac_reference`` (π split of λ, Kronecker
    products built in full), F the exact Gauss-Newton matrix as a dense matrix, C = F + λI, and
    δ_0 the previous step (0 at first), M&G §7:
        [α; μ] = −[[ΔᵀCΔ, ΔᵀCδ_0], [δ_0ᵀCΔ, δ_0ᵀCδ_0]]⁻¹ [∇hᵀΔ; ∇hᵀδ_0]      (§6.4: μ = 0 while δ_0 = 0)
        δ = αΔ + μδ_0,   θ ← θ + r δ,   next δ_0 = δ
    and at steps t ≡ 0 (mod interval), §6.5 with ω = decay^interval:
        ρ = (h(θ + rδ) − h(θ)) / (∇hᵀ(rδ) + ½ (rδ)ᵀF(rδ))
        λ ← ωλ if ρ > 3/4 (or h fell while the model rose), λ/ω if ρ < 1/4.
    Returns the parameters and, per step, (λ used, α, μ, ρ or None).
    """
    history, damped, delta0, record = [], None, None, []
    flat = mll.tree.flatten
    for t in range(1, steps + 1):
        ev = net.evaluate(params, x, y)
        history.append(ev.kronecker_factors(seed=_step_seed(seed, t)))
        weights = [(1 - eps) * eps ** (t - s) / (1 - eps ** t) for s in range(1, t + 1)]
        if (t - 1) % T == 0:
            damped = _damped_factors(history, weights, lam, len(net.blocks))
        Delta = [{} for _ in params]
        for i, k in enumerate(net.blocks):
            W, b = ev.grads[k]["W"], ev.grads[k]["b"]
            Ad, Gd = damped[i]
            if W.ndim == 2:
                matrix = np.vstack([W, b])
                vec = np.linalg.solve(np.kron(Ad, Gd), matrix.ravel()).reshape(matrix.shape)
                Delta[k] = {"W": -vec[:-1], "b": -vec[-1]}
            else:
                matrix = np.hstack([W.reshape(W.shape[0], -1), b[:, None]])
                vec = np.linalg.solve(np.kron(Gd, Ad), matrix.ravel()).reshape(matrix.shape)
                Delta[k] = {"W": -vec[:, :-1].reshape(W.shape), "b": -vec[:, -1]}
        F, g, D = ev.gauss_newton(), flat(ev.grads), flat(Delta)
        C = F + lam * np.eye(len(F))
        if delta0 is None or not g @ delta0:
            alpha, mu = -(g @ D) / (D @ C @ D), 0.0
            delta0 = np.zeros_like(D)
        else:
            alpha, mu = -np.linalg.solve([[D @ C @ D, D @ C @ delta0], [delta0 @ C @ D, delta0 @ C @ delta0]],
                                         [g @ D, g @ delta0])
        delta = alpha * D + mu * delta0
        step = rescale * delta
        new = mll.tree.unflatten(flat(params) + step, params)
        rho, used = None, lam
        if t % interval == 0:
            omega = decay ** interval
            h0, h1 = net.loss_value(params, x, y), net.loss_value(new, x, y)
            model = g @ step + 0.5 * step @ F @ step
            rho = (h1 - h0) / model
            if (h1 < h0 and model > 0) or rho > 0.75:
                lam = lam * omega
            elif rho < 0.25:
                lam = lam / omega
        record.append((used, alpha, mu, rho))
        params, delta0 = new, delta
    return params, record


def test_qmodel_steps_and_damping_adaptation_equal_martens_grosse_unrolled():
    """Three steps of the default K-FAC (qmodel, adaptive λ) against M&G §6.4, §6.5, §7 written
    out with dense matrices; λ adapted after every step (interval 1) so that steps 2 and 3 use
    adapted values, and the inverses refreshed at step 3 with the adapted λ."""
    net, x, y = _conv_dense_net()
    params0 = net.init(2)
    hyper = dict(damping=0.5, factor_decay=0.8, inverse_every=2, seed=5, damping_interval=1,
                 damping_decay=0.9)
    for rescale in (1.0, 0.7):
        params, state = params0, KFAC(lr=rescale, **hyper).init(params0)
        opt = KFAC(lr=rescale, **hyper)
        states = []
        for _ in range(3):
            ev = net.evaluate(params, x, y)
            updates, state = opt.update(ev.grads, state, params, **_oracles(opt, net, ev, x, y))
            params = mll.apply_updates(params, updates)
            states.append(state)
        expected, record = _kfac_qmodel_reference(net, params0, x, y, 3, 0.5, 0.8, 2, 5, 1, 0.9, rescale)
        # F and the Kronecker systems are solved densely in the reference and by products here;
        # the damped matrices have λ_min ≥ λ ≈ 0.5 and norms O(1), so both agree to rounding:
        # 1e-12 on parameters and coefficients of size ~1 leaves a margin of ~1e3 over cond·eps.
        for e, f in zip(params, expected):
            for n in e:
                np.testing.assert_allclose(e[n], f[n], rtol=0, atol=1e-12)
        for st_, (lam, alpha, mu, rho) in zip(states, record):
            assert st_.step_damping == pytest.approx(lam, rel=1e-14)
            assert st_.alpha == pytest.approx(alpha, rel=1e-11) and st_.mu == pytest.approx(mu, abs=1e-11)
            assert st_.rho == pytest.approx(rho, rel=1e-9)  # a ratio of differences of O(1) losses
        assert states[0].mu == 0 and states[1].mu != 0  # §6.4 first, §7 after
        lams = [r[0] for r in record] + [states[-1].damping]
        assert len(set(lams)) > 1  # the rule moved λ in these three steps
        assert states[-1].inverse_damping == lams[2]  # step 3 refreshed the inverses with it


@pytest.mark.parametrize("loss_change,model_change,factor", [
    (-0.9, -1.0, 0.5),     # ρ = 0.9 > 3/4: decrease
    (-0.5, -1.0, 1.0),     # ρ = 0.5: keep
    (-0.1, -1.0, 2.0),     # ρ = 0.1 < 1/4: increase
    (0.3, -1.0, 2.0),      # the loss rose: ρ < 0, increase
    (-0.2, 0.1, 0.5),      # the loss fell although the model rose: decrease
    (0.0, 0.0, 1.0),       # 0/0: nan, keep
])
def test_levenberg_marquardt_rule(loss_change, model_change, factor):
    """M&G §6.5 with ω = 0.5: λ ← ωλ, λ, λ/ω by the reduction ratio; never below min_damping."""
    new, rho = adapt_damping(1.0, loss_change, model_change, 0.5, 1e-8)
    assert new == factor
    assert (math.isnan(rho) if model_change == 0 else rho == loss_change / model_change)
    assert adapt_damping(1e-8, -0.9, -1.0, 0.5, 1e-8)[0] == 1e-8


@given(n=st.integers(4, 9), d_in=st.integers(1, 3), d_out=st.integers(1, 3), seed=seeds)
@settings(max_examples=8)
def test_exact_factors_and_zero_damping_give_the_newton_step(n, d_in, d_out, seed):
    """One Dense layer, squared error: A = X̃ᵀX̃/N, G = I is the exact Gauss-Newton (= Hessian)
    block, so a K-FAC step with λ = 0, lr = 1, μ = 0 is −H⁻¹g, and lands on the minimiser."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(d_in, d_out)], mll.MeanSquaredError())
    params = net.init(seed)
    x, y = rng.standard_normal((n, d_in)), rng.standard_normal((n, d_out))
    ev = net.evaluate(params, x, y)
    xt = np.hstack([x, np.ones((n, 1))])
    exact = lambda seed: [{"A": xt.T @ xt / n, "G": np.eye(d_out)}]  # noqa: E731
    opt = KFAC(lr=1.0, damping=0.0, momentum=0.0, inverse_every=1, momentum_type="regular",
               adapt_damping=False)
    updates, _ = opt.update(ev.grads, opt.init(params), params, kronecker_factors=exact)
    H = ev.hessian()
    newton = -np.linalg.solve(H, mll.tree.flatten(ev.grads))
    # the two solves differ by rounding amplified by cond(H)
    tol = 10 * n * np.linalg.cond(H) * EPS * (np.abs(newton).max() + 1)
    np.testing.assert_allclose(mll.tree.flatten(updates), newton, rtol=0, atol=tol)
    after = net.evaluate(mll.apply_updates(params, updates), x, y)
    assert np.abs(mll.tree.flatten(after.grads)).max() <= tol * np.abs(H).max()


def test_update_is_pure():
    net, x, y = _conv_dense_net()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = KFAC(inverse_every=2, damping_interval=1)
    oracles = _oracles(opt, net, ev, x, y)
    state = opt.update(ev.grads, opt.init(params), params, **oracles)[1]
    before = _arrays(copy.deepcopy((ev.grads, state, params)))
    opt.update(ev.grads, state, params, **oracles)
    after = _arrays((ev.grads, state, params))
    assert before[0] == after[0] and before[1].keys() == after[1].keys() and before[1]
    assert all(np.array_equal(before[1][key], after[1][key]) for key in before[1])


def _arrays(obj):
    """(structure, {key: array}) of nested states, trees and tuples, for bit-for-bit comparisons."""
    arrays = {}
    return encode_tree(obj, "x", arrays), arrays


def test_seeded_runs_reproduce_bit_for_bit():
    net, x, y = mlp_task()
    runs = [_run(KFAC(seed=s), net, net.init(1), x, y, 4) for s in (3, 3, 4)]
    flat = [mll.tree.flatten(p) for p, _ in runs]
    assert np.array_equal(flat[0], flat[1]) and not np.array_equal(flat[0], flat[2])
    assert all(np.array_equal(a, b) for a, b in zip(runs[0][1].factors_g, runs[1][1].factors_g))


@pytest.mark.parametrize("task", [mlp_task, cnn_task, gcn_task], ids=["mlp", "cnn", "gcn"])
def test_defaults_reduce_the_training_loss(task):
    """30 full-batch steps of ``minilayerlr.train``, which passes exactly the declared oracles."""
    net, x, y = task()
    result = mll.train(net, net.init(3), KFAC(), x, y, epochs=30, batch_size=None, progress=False)
    first, last = result.history.train_loss[0], result.history.train_loss[-1]
    assert result.history.stop_reason is None and np.isfinite(last) and last < 0.7 * first, (first, last)
    state = result.state
    assert isinstance(state, KFACState) and np.all(state.step_sizes == KFAC().lr * state.alpha)
    assert state.alpha > 0 and state.damping > 0 and np.isfinite(state.rho)


def test_missing_or_bad_oracles_and_inputs_are_named():
    net, x, y = mlp_task()
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = KFAC()
    state = opt.init(params)
    oracles = _oracles(opt, net, ev, x, y)
    for name in ("kronecker_factors", "hvp", "loss"):
        expect_error(lambda: opt.update(ev.grads, state, params, **dict(oracles, **{name: None})), name)
    expect_error(lambda: opt.update(ev.grads, state, None, **oracles), "params")
    expect_error(lambda: KFAC(momentum_type="adam"), "momentum_type")
    expect_error(lambda: KFAC(momentum_type="regular"), "adapt_damping")
    expect_error(lambda: KFAC(damping=0.0), "damping")
    expect_error(lambda: KFAC(damping_decay=1.0), "damping_decay")
    every = KFAC(damping_interval=1)  # the loss is asked for at adaptation steps only
    expect_error(lambda: every.update(ev.grads, state, params, **dict(oracles, loss=lambda p: np.nan)),
                 "loss")
    expect_error(lambda: opt.update(ev.grads, state, params,
                                    **dict(oracles, hvp=lambda v, kind: v[:1])), "hvp")
    opt = KFAC(momentum_type="regular", adapt_damping=False)
    assert opt.oracles == ("kronecker_factors",)
    expect_error(lambda: opt.update(ev.grads, state, params, kronecker_factors=3), "kronecker_factors")
    expect_error(lambda: opt.update(ev.grads, state, params, kronecker_factors=lambda seed: []),
                 "kronecker_factors")
    wrong = lambda seed: [{"A": np.eye(2), "G": np.eye(2)}] * 2  # noqa: E731
    expect_error(lambda: opt.update(ev.grads, state, params, kronecker_factors=wrong), "kronecker_factors")
    nan = [dict(e, W=np.full_like(e["W"], np.nan)) if e else e for e in ev.grads]
    expect_error(lambda: opt.update(nan, state, params, kronecker_factors=ev.kronecker_factors), "grads")
    expect_error(lambda: opt.update(ev.grads, SGD().init(params), params,
                                    kronecker_factors=ev.kronecker_factors), "state")


def test_an_undamped_singular_factor_stops_with_a_named_error():
    # 2 examples, 3 inputs: X̃ᵀX̃ has rank 2 < 4, so λ = 0 leaves A singular
    net = mll.Sequential([mll.Dense(3, 2)], mll.MeanSquaredError())
    x, y = np.ones((2, 3)), np.zeros((2, 2))
    params = net.init(0)
    ev = net.evaluate(params, x, y)
    opt = KFAC(damping=0.0, momentum_type="regular", adapt_damping=False)
    error = expect_error(lambda: opt.update(ev.grads, opt.init(params), params,
                                            kronecker_factors=ev.kronecker_factors), "damping")
    assert isinstance(error, mll.errors.NonFiniteError)


def test_a_run_counts_the_factors_the_model_products_and_the_loss_calls():
    """Issue 19: K-FAC's cost includes its quadratic model and damping rule. Per step one factor
    call and two F·v products (one at the first step, v = 0); two loss calls at step 5 (the
    rule's interval). Priced 0.75 each (full batch: one step per epoch)."""
    from minilayerlr.experiments import build_task, run_one
    from minilayerlr.experiments.cost import fixed_prices
    record = run_one(build_task("gcn", size=60), "kfac", 0.1, seed=0, epochs=6,
                     prices=fixed_prices(0.75), stability=False)
    assert record["oracle_calls"][-1] == {"steps": 6, "kronecker_factors": 6, "hvp": 11, "loss": 2}
    per_step = [1 + 0.75 + 0.75] + [1 + 0.75 + 1.5] * 5
    per_step[4] += 2 * 0.75
    assert record["grad_equivalents"] == pytest.approx(np.concatenate([[0.0], np.cumsum(per_step)]),
                                                       rel=1e-15)


def test_an_inverse_left_indefinite_is_a_divergence_not_a_bad_state():
    """A damped inverse that is not positive semi-definite (in a run: a factor too ill-conditioned
    for float64 at a tiny damping, as the GCN's λ₀ = 1e-8 gives) is raised as NonFiniteError, which
    the training loop records as a divergence, instead of being stored and refused by the state
    check at the next step. Here the indefiniteness is exact: A = diag(1, −0.5) (not a covariance)."""
    from minilayerlr.errors import NonFiniteError
    from minilayerlr.optim.kfac import damped_inverses
    with pytest.raises(NonFiniteError, match="^damping: .*ill-conditioned"):
        damped_inverses(np.diag([1.0, -0.5]), np.eye(2), 1e-12)
    inv_a, inv_g, _ = damped_inverses(np.diag([1.0, 0.5]), np.eye(2), 1e-12)
    assert np.all(np.diag(inv_a) > 0) and np.all(np.diag(inv_g) > 0)
