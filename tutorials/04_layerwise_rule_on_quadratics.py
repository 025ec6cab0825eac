# %% [markdown]
# # Tutorial 4 — The layer-wise step rule on closed-form quadratics
#
# Before trusting the rule on networks, watch it where everything is known:
# $f(x) = \tfrac12 x^\top A x - b^\top x$, $A\succ 0$, with $x$ split into blocks
# (stand-ins for layers). The **idealized** method (`mll.optim.GDLS`) is
# full-batch gradient descent with one exact step per block,
#
# $$\alpha_l = \eta\,\frac{\|g_l\|^2}{g_l^\top A_{ll}\, g_l},\qquad x_l^+ = x_l-\alpha_l g_l,$$
#
# the minimiser of $f$ along $g_l$ *when only block $l$ moves* (for $\eta=1$).
# We compare what happens with what `docs/theory.md` proves:
#
# * **Theorem 1**: with $\mu=\lambda_{\min}(A)$, $M=\max_l\lambda_{\max}(A_{ll})$ and the
#   coupling constant $c=\lambda_{\max}(B^{-1/2}AB^{-1/2})$ ($B$ the block diagonal),
#   for $0<\eta<2/c$
#   $$f(x^+)-f^\star \le \rho_T(\eta)\,(f(x)-f^\star),\qquad \rho_T(\eta)=1-2\eta\big(1-\tfrac{\eta c}{2}\big)\tfrac{\mu}{M};$$
# * **Theorem 1′**: the same with $\mu/M$ replaced by $\max(\mu_D,\mu_W)\ge\mu/M$, relative
#   constants that do not change when a block is rescaled (as GD-LS does not): $\rho'(\eta)\le\rho_T(\eta)$;
# * **Theorem 3**: with scalar blocks $A_{ll}=a_lI$ the worst ratio is *exactly*
#   $\max\big((1-\eta\mu_B)^2,(1-\eta c)^2\big)$ (damped block Jacobi); **Proposition 3**: with
#   $\eta=1$ and $c>2$ the method diverges;
# * **Theorem 2**: for a block-diagonal $A$ each block converges like steepest descent with exact
#   line search, at Kantorovich's rate $\big(\tfrac{\kappa_l-1}{\kappa_l+1}\big)^2$.
#
# Notation: $L$ is always the number of blocks; the global smoothness constant of §6 is
# $\Lambda$. The theorems are about the plain step, `GDLS(line_search=False)`; the default
# `GDLS()` adds an Armijo line search that keeps the plain step whenever it decreases $f$
# enough (Theorem 10 of `docs/theory.md`; §4 shows it at work).
#
# The statements, constants and proofs are ours (the paper's full text is not
# available to us; the abstract claims linear convergence of the idealized
# method without giving constants).

# %%
from minilayerlr.testing.notebook import start_tutorial

TUTORIAL = start_tutorial("tutorial04")  # picks the plot backend: before pyplot
FAST, OUT, save = TUTORIAL.fast, TUTORIAL.out, TUTORIAL.save

import matplotlib.pyplot as plt
import numpy as np

import minilayerlr as mll
from minilayerlr import theory


rng = np.random.default_rng(0)
STEPS = 40 if FAST else 200

# %% [markdown]
# ## 1. A coupled block quadratic
#
# We build $A$ = (a random block-diagonal SPD matrix with spread-out block
# scales) + (a weaker full random PSD matrix that couples the blocks). The
# optimizer sees the problem only through the same oracle protocol a network
# evaluation offers: `.grads` and `.layer_curvature(d)`.

# %%
sizes = [3, 4, 2, 5]
n = sum(sizes)


def random_spd(k, cond, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((k, k)))
    return Q @ np.diag(np.geomspace(1, cond, k)) @ Q.T


A = np.zeros((n, n))
cuts = np.concatenate([[0], np.cumsum(sizes)])
for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
    A[a:b, a:b] = (1.5 ** i) * random_spd(b - a, 4.0, rng)     # block scales 1, 1.5, 2.25, 3.4
R = rng.standard_normal((n, n)) / np.sqrt(n)
A += 1.5 * R @ R.T
A = (A + A.T) / 2
quad = theory.BlockQuadratic(A, rng.standard_normal(n), sizes)
mu, M, c = quad.strong_convexity(), quad.block_smoothness(), quad.coupling_constant()
f_star = quad.optimal_value()
print(f"mu = {mu:.3f}, M = {M:.3f}, c = {c:.3f} (1 <= c <= L = {len(sizes)}), 2/c = {2 / c:.3f}")
assert 1 <= c <= len(sizes)


def run_gdls(problem, scale, x0, steps):
    """Run GDLS and return the gaps f(x_k) - f* and the step sizes per block."""
    opt = mll.optim.GDLS(scale=scale, line_search=False)  # the plain step the theorems state
    params, state = x0, opt.init(x0)
    gaps, alphas = [], []
    fs = problem.optimal_value()
    for _ in range(steps):
        ev = problem.evaluate(params)
        gaps.append(ev.loss - fs)
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = mll.apply_updates(params, updates)
        alphas.append(state.step_sizes)
    gaps.append(problem.evaluate(params).loss - fs)
    return np.array(gaps), np.array(alphas)


# %% [markdown]
# First a check of what $\alpha_l$ *is*: moving block $l$ alone, $f(x - \alpha\,
# g_l)$ is a parabola in $\alpha$ and its minimiser is $\|g_l\|^2/g_l^\top A_{ll}g_l$.

# %%
x0 = quad.init(seed=1)
ev0 = quad.evaluate(x0)
_, a_first = run_gdls(quad, 1.0, x0, 1)
for l in range(len(sizes)):
    def f_along(alpha, l=l):
        moved = [dict(e) for e in x0]
        moved[l] = {"x": x0[l]["x"] - alpha * ev0.grads[l]["x"]}
        return quad.evaluate(moved).loss
    grid = a_first[0, l] * np.array([0.9, 1.0, 1.1])
    values = [f_along(a) for a in grid]
    assert values[1] < values[0] and values[1] < values[2]      # the minimum along block l
    # a parabola's vertex from three points: exactly alpha_l
    vertex = grid[1] - 0.5 * (grid[1] - grid[0]) * (values[2] - values[0]) / (values[2] - 2 * values[1] + values[0])
    assert abs(vertex - a_first[0, l]) < 1e-8 * a_first[0, l]
print("alpha_l is the exact minimiser along g_l with the other blocks fixed")

# %% [markdown]
# ## 2. Observed contraction against Theorem 1
#
# Per step we record the ratio $(f(x_{k+1})-f^\star)/(f(x_k)-f^\star)$ and compare it with
# $\rho(\eta)=1-2\eta(1-\eta c/2)\mu/M$. The bound is a *worst case* over all
# starting points and it is pessimistic: its $\mu/M$ compares the flattest
# direction of the whole problem with the stiffest direction of *any* block,
# while each block's step adapts to its own scale. Expect the observed ratios
# well below it — the assertion is only that they never exceed it.

# %%
etas = [0.5 / c, 1.0 / c, min(1.0, 1.9 / c)]
runs = {}
for eta in etas:
    gaps, alphas = run_gdls(quad, eta, x0, STEPS)
    gaps = gaps[gaps > 1e-13 * gaps[0]]            # stop at rounding level
    ratios = gaps[1:] / gaps[:-1]
    bound = quad.contraction_bound(eta)
    runs[eta] = (gaps, alphas, bound)
    print(f"eta = {eta:.3f}: worst observed ratio {ratios.max():.4f} <= bound {bound:.4f}")
    assert ratios.max() <= bound + 1e-12

# %% [markdown]
# ## 3. The whole range of $\eta$: $\rho_T$, $\rho'$ and the true worst case
#
# The worst one-step ratio over *all* starting points is found by optimisation:
# `theory.worst_one_step_ratio` maximises $(f(x^+)-f^\star)/(f(x)-f^\star)$ over the
# start with BFGS from random and structured starts. What it returns is attained by
# a start, so every valid bound must lie above it. Theorem 1′ sits between it and
# Theorem 1 for every $\eta\in(0,2/c)$; past $2/c$ neither theorem says anything.

# %%
eta_grid = np.linspace(0.05, 1.95, 8 if FAST else 30) / c
rho_t = np.array([quad.contraction_bound(e) for e in eta_grid])
rho_p = np.array([quad.invariant_contraction_bound(e) for e in eta_grid])
worst = np.array([theory.worst_one_step_ratio(A, sizes, e, restarts=1 if FAST else 6,
                                               max_iter=25 if FAST else 200)[0] for e in eta_grid])
rounding = 1e-12 * np.linalg.cond(A)  # a few ulps of the ratio times the condition number
assert np.all(worst <= rho_p + rounding) and np.all(rho_p <= rho_t + 1e-15)
print("eta*c :", np.round(eta_grid * c, 2))
print("rho_T :", np.round(rho_t, 4))
print("rho'  :", np.round(rho_p, 4))
print("worst :", np.round(worst, 4))
# the same iterates after rescaling a block: Theorem 1 moves, Theorem 1' does not
S = np.diag(np.repeat([1.0, 10.0, 1.0, 0.1], sizes))
rescaled = theory.BlockQuadratic(S @ A @ S, S @ quad.b, sizes)
print(f"rescaled blocks, eta = 1/c: rho_T {quad.contraction_bound(1 / c):.5f} -> "
      f"{rescaled.contraction_bound(1 / c):.5f}, rho' {quad.invariant_contraction_bound(1 / c):.5f} -> "
      f"{rescaled.invariant_contraction_bound(1 / c):.5f}")
assert abs(rescaled.invariant_contraction_bound(1 / c) - quad.invariant_contraction_bound(1 / c)) < 1e-9
assert rescaled.contraction_bound(1 / c) > quad.contraction_bound(1 / c)

# %% [markdown]
# With scalar blocks the worst case is known in closed form (Theorem 3). Here
# $A_{ll}=a_l I$ is built from the matrix above by normalising each diagonal block,
# and the search over starts finds exactly the formula.

# %%
Bh = np.zeros_like(A)
for lo, hi in zip(cuts[:-1], cuts[1:]):
    lam_b, V_b = np.linalg.eigh(A[lo:hi, lo:hi])
    Bh[lo:hi, lo:hi] = (V_b / np.sqrt(lam_b)) @ V_b.T
As = Bh @ A @ Bh                                   # unit diagonal blocks, up to rounding
for lo, hi in zip(cuts[:-1], cuts[1:]):
    As[lo:hi, lo:hi] = np.eye(hi - lo)
Sa = np.diag(np.repeat(np.sqrt([1.0, 3.0, 0.5, 2.0]), sizes))  # a_l = 1, 3, 0.5, 2
As = Sa @ ((As + As.T) / 2) @ Sa
cs = theory.coupling_constant(As, sizes)
for eta in (0.5 / cs, theory.block_jacobi_best_scale(As, sizes), 1.5 / cs):
    exact = theory.block_jacobi_rate(As, sizes, eta)
    found = theory.worst_one_step_ratio(As, sizes, eta, restarts=1)[0]
    print(f"scalar blocks, eta*c = {eta * cs:.3f}: exact {exact:.6f}, found {found:.6f}, "
          f"rho' {theory.invariant_contraction_bound(As, sizes, eta):.6f}")
    assert abs(found - exact) <= 1e-12 * np.linalg.cond(As)

# %% [markdown]
# ## 4. Divergence with $\eta = 1$: the Jacobi example
#
# Take $L$ scalar blocks and $A=(1-a)I+a\mathbf 1\mathbf 1^\top$. Each block is one
# coordinate, $A_{ll}=1$, so $\alpha_l = 1$ and the update is
# $x^+ = x-(Ax-b)$: the error obeys $e^+=(I-A)e$, the **Jacobi iteration**. The
# eigenvalues of $A$ are $1-a$ (multiplicity $L-1$) and $1+(L-1)a=c$, so along
# $\mathbf 1$ the error is multiplied by $1-c$ each step: for $c>2$ it
# **diverges** (the gap grows like $(1-c)^{2k}$), although every single block
# step is a perfect line search. Each layer's step is right for that layer
# alone; taken together they overshoot along the direction all blocks share.
# $\eta=1/c$ repairs it.

# %%
L, a = 4, 0.5
J = theory.jacobi_matrix(L, a)
jac = theory.BlockQuadratic(J, np.ones(L), [1] * L)
cj = jac.coupling_constant()
assert abs(cj - (1 + (L - 1) * a)) < 1e-12
xj = jac.init(seed=0)
gaps_div, _ = run_gdls(jac, 1.0, xj, 12 if FAST else 25)
gaps_safe, _ = run_gdls(jac, 1.0 / cj, xj, 12 if FAST else 25)
growth = gaps_div[-1] / gaps_div[-2]
print(f"Jacobi, c = {cj}: eta = 1 multiplies the gap by {growth:.4f} per step (theory (1-c)^2 = {(1 - cj) ** 2}); "
      f"eta = 1/c ends at gap {gaps_safe[-1]:.1e}")
assert abs(growth - (1 - cj) ** 2) < 1e-6 and gaps_div[-1] > 1e3 * gaps_div[0]
assert np.all(gaps_safe[1:] / gaps_safe[:-1] <= jac.contraction_bound(1.0 / cj) + 1e-12)
assert abs(jac.block_jacobi_rate(1.0) - (1 - cj) ** 2) < 1e-12        # Theorem 3: the exact rate

# %% [markdown]
# The default `GDLS()` backtracks (Armijo, with the `loss` oracle) whenever a step would
# not decrease $f$ enough: with $\eta=1$ on the same problem it shortens the steps and
# converges, and $f$ never increases.

# %%
safe_opt = mll.optim.GDLS(scale=1.0)
params, state, safe_gaps = xj, safe_opt.init(xj), []
for _ in range(12 if FAST else 25):
    ev = jac.evaluate(params)
    safe_gaps.append(ev.loss - jac.optimal_value())
    updates, state = safe_opt.update(ev.grads, state, params, curvature=ev.layer_curvature,
                                     loss=lambda p: jac.evaluate(p).loss)
    params = mll.apply_updates(params, updates)
print(f"GDLS(scale=1.0) with its line search: gap {safe_gaps[0]:.2e} -> {safe_gaps[-1]:.2e}, "
      f"last factor t = {state.line_search_factor}")
assert np.all(np.diff(safe_gaps) <= 0) and safe_gaps[-1] < 1e-3 * safe_gaps[0]

# %% [markdown]
# ## 5. No coupling: Kantorovich per block
#
# If $A$ is block diagonal then $c = 1$, the blocks do not interact, and each
# block runs steepest descent with exact line search on its own quadratic.
# Kantorovich's inequality bounds the per-block gap decrease by
# $\big(\tfrac{\kappa_l-1}{\kappa_l+1}\big)^2$, $\kappa_l$ the condition number of
# $A_{ll}$ — often much better than Theorem 1's $1-\mu/M$, which mixes the
# smallest eigenvalue of one block with the largest of another. The bound is
# attained: start block $l$ with error $v_{\min}/\lambda_{\min} + v_{\max}/\lambda_{\max}$
# (its gradient then has equal weight on the two extreme eigenvectors) and the
# iterates zig-zag at exactly that rate.

# %%
Bd = theory.block_diagonal(A, sizes)
bq = theory.BlockQuadratic(Bd, np.zeros(n), sizes)        # x* = 0, f* = 0
assert abs(bq.coupling_constant() - 1) < 1e-10
worst_start = np.zeros(n)
for (lo, hi) in zip(cuts[:-1], cuts[1:]):
    lam, V = np.linalg.eigh(Bd[lo:hi, lo:hi])
    worst_start[lo:hi] = V[:, 0] / lam[0] + V[:, -1] / lam[-1]
steps_k = 10 if FAST else 30
per_block = {"random start": [], "worst start": []}
for label, start in (("random start", bq.init(seed=3)), ("worst start", bq.split(worst_start))):
    params, opt = start, mll.optim.GDLS(scale=1.0, line_search=False)
    state = opt.init(params)
    hist = []
    for _ in range(steps_k):
        hist.append([0.5 * p["x"] @ Bd[lo:hi, lo:hi] @ p["x"] for p, lo, hi in zip(params, cuts[:-1], cuts[1:])])
        ev = bq.evaluate(params)
        updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
        params = mll.apply_updates(params, updates)
    per_block[label] = np.array(hist)
rates = np.array([theory.kantorovich_rate(Bd[lo:hi, lo:hi]) for lo, hi in zip(cuts[:-1], cuts[1:])])
for label, hist in per_block.items():
    observed = hist[1:] / hist[:-1]
    print(label, "worst per-block ratio", np.round(observed.max(axis=0), 4), "Kantorovich", np.round(rates, 4))
    assert np.all(observed <= rates + 1e-10)
assert np.allclose(per_block["worst start"][1:] / per_block["worst start"][:-1], rates, rtol=1e-8)
print("the worst start attains Kantorovich's rate in every block, at every step")

# %% [markdown]
# ## 6. Beyond quadratics: Theorem 4 on logistic regression
#
# For a $\mu$-strongly convex $f$ with $\nabla^2 f\preceq \Lambda I$ everywhere, with
# $\alpha_l$ from the exact *local* block Hessian, `docs/theory.md` proves
# $f(x^+)-f^\star\le\big(1-2\eta(1-\eta\kappa/2)/\kappa\big)(f(x)-f^\star)$ for
# $\eta<2/\kappa$, $\kappa=\Lambda/\mu$ (Theorem 4; with the *global* constant $\Lambda$: with
# the block constant $M$ the statement is false, Remark 4.2 there), and the sharper
# $1-\min\{(2\eta/\kappa)(1-\eta/2),\,2\eta(1-\eta\kappa/2)\}$ (Theorem 4′). Regularised
# logistic regression is the classic non-quadratic test: $\mu=\gamma$ and
# $\Lambda = \lambda_{\max}(X^\top X)/(4n)+\gamma$.

# %%
Xl = rng.standard_normal((200, 6))
yl = np.where(Xl @ rng.standard_normal(6) + 0.5 * rng.standard_normal(200) > 0, 1.0, -1.0)
logreg = theory.LogisticRegression(Xl, yl, reg=0.1, block_sizes=[2, 2, 2])
kappa = logreg.smoothness() / logreg.strong_convexity()
for eta in (0.5 / kappa, 1.0 / kappa, 1.5 / kappa):
    gaps, _ = run_gdls(logreg, eta, logreg.init(seed=0), 30 if FAST else 100)
    gaps = gaps[gaps > 1e-12 * gaps[0]]
    bound = theory.strongly_convex_bound(logreg.strong_convexity(), logreg.smoothness(), eta)
    sharper = theory.improved_strongly_convex_bound(logreg.strong_convexity(), logreg.smoothness(), eta)
    print(f"logistic regression, kappa = {kappa:.2f}, eta = {eta:.3f}: worst ratio "
          f"{(gaps[1:] / gaps[:-1]).max():.4f} <= Theorem 4' {sharper:.4f} <= Theorem 4 {bound:.4f}")
    assert (gaps[1:] / gaps[:-1]).max() <= sharper + 1e-12 and sharper <= bound

# %% [markdown]
# ## 7. Mini-batches: a noise floor (Proposition 9)
#
# With a mini-batch gradient $g_S=\nabla f+\xi$ ($\mathbb E\xi=0$, covariance $\Sigma/|S|$) the
# numerator $\|g_S\|^2$ does not vanish at $x^\star$ and $\alpha_l\ge\eta/\Lambda_l$ never shrinks:
# SGD-LS at a fixed $\eta$ is a constant-step method and stalls at a floor. With scalar
# blocks the floor is exact, $\tfrac12\mathrm{tr}(AP)$ with $P=TPT^\top+\eta^2B^{-1}\Sigma_S B^{-1}$,
# $T=I-\eta B^{-1}A$ (`theory.block_jacobi_noise_floor`). We measure it on the scalar-block
# matrix of §3 for two batch sizes: the floor scales like $1/|S|$.

# %%
sigma = 0.05 * np.eye(n)                     # per-sample gradient covariance
noisy = theory.BlockQuadratic(As, np.zeros(n), sizes)
eta_n = 0.5 / cs
noise_rng = np.random.default_rng(5)
floors, measured, traces = {}, {}, {}
for batch in (4, 64):
    cov = sigma / batch
    floors[batch] = theory.block_jacobi_noise_floor(As, sizes, eta_n, cov)
    opt = mll.optim.LayerwiseStepSize(mll.optim.SGD(), scale=eta_n, ema=0.0)
    params = noisy.split(np.ones(n))
    state, trace = opt.init(params), []
    for _ in range(600 if FAST else 4000):
        ev = noisy.evaluate(params)
        trace.append(ev.loss)                # f* = 0 here
        g_batch = noisy.join(ev.grads) + noise_rng.multivariate_normal(np.zeros(n), cov)
        updates, state = opt.update(noisy.split(g_batch), state, params, curvature=ev.layer_curvature)
        params = mll.apply_updates(params, updates)
    traces[batch] = np.array(trace)
    kept = traces[batch][len(trace) // 3:]      # after the transient (it decays like 0.6^k)
    measured[batch] = kept.mean()
    # the mean of correlated gaps has an exact standard error (Gaussian recursion): 5 of them
    sd = theory.block_jacobi_floor_standard_error(As, sizes, eta_n, cov, len(kept))
    print(f"|S| = {batch:3d}: measured mean gap {measured[batch]:.3e}, predicted floor "
          f"{floors[batch]:.3e} (standard error {sd:.1e})")
    assert abs(measured[batch] - floors[batch]) <= 5 * sd
assert abs(floors[4] / floors[64] - 16) < 1e-9       # exactly proportional to 1/|S|

# %% [markdown]
# ## 8. Pictures

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 8))
ax = axes[0, 0]
for eta, (gaps, _, bound) in runs.items():
    k = np.arange(len(gaps))
    line, = ax.semilogy(k, gaps, label=fr"$\eta$ = {eta:.2f}")
    ax.semilogy(k, gaps[0] * bound ** k, "--", color=line.get_color(), lw=0.8)
ax.set_title(f"GD-LS on a coupled quadratic (c = {c:.2f})\nsolid: observed gap, dashed: Theorem 1")
ax.set_xlabel("iteration")
ax.set_ylabel(r"$f(x_k)-f^\star$")
ax.legend(fontsize=8)

ax = axes[0, 1]
ax.plot(eta_grid * c, worst, "o-", label="worst one-step ratio (search over starts)")
ax.plot(eta_grid * c, rho_p, "b-", label=r"Theorem 1$'$: $\rho'(\eta)$, $\max(\mu_D,\mu_W)$")
ax.plot(eta_grid * c, rho_t, "k--", label=r"Theorem 1: $\rho_T(\eta)$, $\mu/M$")
ax.axvline(1, color="gray", lw=0.6)
ax.set_xlabel(r"$\eta\,c$")
ax.set_ylabel("contraction factor")
ax.set_title("Rate against the scale $\\eta$")
ax.legend(fontsize=8)

ax = axes[1, 0]
ax.semilogy(gaps_div, "r-o", ms=3, label=r"$\eta=1$ (Jacobi): diverges")
ax.semilogy(gaps_safe, "g-o", ms=3, label=r"$\eta=1/c$")
ax.set_title(f"Jacobi example, L = {L}, a = {a}, c = {cj:.1f}")
ax.set_xlabel("iteration")
ax.legend(fontsize=8)

ax = axes[1, 1]
hist = per_block["worst start"]
for l in range(len(sizes)):
    line, = ax.semilogy(hist[:, l] / hist[0, l], label=fr"block {l}, $\kappa_l$ = {np.linalg.cond(Bd[cuts[l]:cuts[l + 1], cuts[l]:cuts[l + 1]]):.1f}")
    ax.semilogy(rates[l] ** np.arange(len(hist)), ":", color=line.get_color())
ax.set_title("Block-diagonal A, worst start: Kantorovich rate (dotted) attained")
ax.set_xlabel("iteration")
ax.set_ylabel("relative gap of the block")
ax.legend(fontsize=8)
fig.tight_layout()
save(fig, "04_quadratic_rates.png")

fig, ax = plt.subplots(figsize=(6, 4))
for batch, trace in traces.items():
    line, = ax.semilogy(trace, lw=0.7, label=f"SGD-LS, |S| = {batch}")
    ax.axhline(floors[batch], color=line.get_color(), ls="--", lw=1.2)
ax.set_title(r"Mini-batch SGD-LS stalls at the predicted floor $\frac{1}{2}\mathrm{tr}(AP)$ (dashed)")
ax.set_xlabel("iteration")
ax.set_ylabel(r"$f(x_k)-f^\star$")
ax.legend(fontsize=8)
save(fig, "04_noise_floor.png")

# %% [markdown]
# ## What to remember
#
# * Each $\alpha_l$ is a perfect line search for its own block; the danger is in
#   taking all of them *at once* when blocks are coupled.
# * $c$ measures that coupling. $\eta < 2/c$ guarantees linear convergence at the
#   rate of Theorem 1, and Theorem 1′ sharpens it with constants that ignore block
#   scales; $\eta=1/L$ ($L$ blocks) is always in range on a quadratic.
# * With $\eta=1$ and $c > 2$ the plain method can diverge (Jacobi; exact rate by
#   Theorem 3); the default `GDLS()` line search prevents it.
# * Without coupling each block converges at its own Kantorovich rate.
# * With mini-batches the step does not shrink: a noise floor proportional to $1/|S|$.
#
# Tutorial 3 measured $c$ for real networks; Tutorial 5 runs the stochastic
# version of the rule on one.
