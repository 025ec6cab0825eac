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
#   $$f(x^+)-f^\star \le \Big(1-2\eta\big(1-\tfrac{\eta c}{2}\big)\tfrac{\mu}{M}\Big)\,(f(x)-f^\star);$$
# * **Proposition 3**: with $\eta=1$ and $c\ge 2$ the method can diverge (a Jacobi iteration);
# * **Theorem 2**: for a block-diagonal $A$ each block converges like steepest descent with exact
#   line search, at Kantorovich's rate $\big(\tfrac{\kappa_l-1}{\kappa_l+1}\big)^2$.
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
    opt = mll.optim.GDLS(scale=scale)
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
# ## 3. The whole range of $\eta$
#
# Sweeping $\eta\in(0,2/c)$ and taking the worst per-step ratio over several
# random starts gives the observed rate curve; it stays under $\rho(\eta)$, whose
# minimum $1-\mu/(cM)$ sits at $\eta=1/c$. Past $2/c$ the theorem says nothing;
# here the method may still converge (the witness direction of $c$ is not
# always hit), but nothing is guaranteed.

# %%
eta_grid = np.linspace(0.05, 2.0, 14 if FAST else 40) / c
worst = []
for eta in eta_grid:
    w = 0.0
    for seed in range(3 if FAST else 10):
        gaps, _ = run_gdls(quad, eta, quad.init(seed=seed + 10), 15 if FAST else 40)
        gaps = gaps[gaps > 1e-12 * gaps[0]]
        w = max(w, (gaps[1:] / gaps[:-1]).max())
    worst.append(w)
worst = np.array(worst)
bounds = np.array([1 - 2 * e * (1 - e * c / 2) * mu / M for e in eta_grid])
assert np.all(worst <= bounds + 1e-12)
inside = eta_grid < 2 / c
assert np.allclose(bounds[inside][:3], [quad.contraction_bound(e) for e in eta_grid[inside][:3]])

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
    params, opt = start, mll.optim.GDLS(scale=1.0)
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
# For a $\mu$-strongly convex $f$ with $\nabla^2 f\preceq L_{\rm glob} I$ everywhere, with
# $\alpha_l$ from the exact *local* block Hessian, `docs/theory.md` proves
# $f(x^+)-f^\star\le\big(1-2\eta(1-\eta\kappa/2)/\kappa\big)(f(x)-f^\star)$ for
# $\eta<2/\kappa$, $\kappa=L_{\rm glob}/\mu$ (with the *global* constant: with the
# block constant $M$ the statement is false, Remark 4.2 there). Regularised
# logistic regression is the classic non-quadratic test: $\mu=\gamma$ and
# $L_{\rm glob} = \lambda_{\max}(X^\top X)/(4n)+\gamma$.

# %%
Xl = rng.standard_normal((200, 6))
yl = np.where(Xl @ rng.standard_normal(6) + 0.5 * rng.standard_normal(200) > 0, 1.0, -1.0)
logreg = theory.LogisticRegression(Xl, yl, reg=0.1, block_sizes=[2, 2, 2])
kappa = logreg.smoothness() / logreg.strong_convexity()
for eta in (0.5 / kappa, 1.0 / kappa, 1.5 / kappa):
    gaps, _ = run_gdls(logreg, eta, logreg.init(seed=0), 30 if FAST else 100)
    gaps = gaps[gaps > 1e-12 * gaps[0]]
    bound = theory.strongly_convex_bound(logreg.strong_convexity(), logreg.smoothness(), eta)
    print(f"logistic regression, kappa = {kappa:.2f}, eta = {eta:.3f}: worst ratio "
          f"{(gaps[1:] / gaps[:-1]).max():.4f} <= bound {bound:.4f}")
    assert (gaps[1:] / gaps[:-1]).max() <= bound + 1e-12

# %% [markdown]
# ## 7. Pictures

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
ax.plot(eta_grid * c, worst, "o-", label="worst observed per-step ratio")
ax.plot(eta_grid * c, bounds, "k--", label=r"$\rho(\eta)=1-2\eta(1-\eta c/2)\mu/M$")
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

# %% [markdown]
# ## What to remember
#
# * Each $\alpha_l$ is a perfect line search for its own block; the danger is in
#   taking all of them *at once* when blocks are coupled.
# * $c$ measures that coupling. $\eta < 2/c$ guarantees linear convergence at the
#   rate of Theorem 1, best at $\eta = 1/c$; $\eta=1/L$ is always safe.
# * With $\eta=1$ and $c > 2$ the method can diverge (Jacobi).
# * Without coupling each block converges at its own Kantorovich rate.
#
# Tutorial 3 measured $c$ for real networks; Tutorial 5 runs the stochastic
# version of the rule on one.
