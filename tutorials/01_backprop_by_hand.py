# %% [markdown]
# # Tutorial 1 — Backpropagation by hand, and how to know it is right
#
# Every number minilayerlr computes (gradients, Hessian-vector products,
# per-layer curvatures, step sizes) rests on a few lines of hand-written
# derivative code per layer. This lesson writes those lines for a **Dense**
# layer and a **tanh** activation from the definitions, compares them with the
# library, and then learns the two tests that catch a wrong derivative:
#
# 1. the **adjoint test**: the backward pass (a vector-Jacobian product, VJP)
#    must be the transpose of the forward-mode derivative (a Jacobian-vector
#    product, JVP): $\langle \bar y, J\dot x\rangle = \langle J^\top \bar y, \dot x\rangle$;
# 2. **central finite differences along a random direction**, which check a
#    whole Jacobian with two function calls.
#
# Run it as a script (`python tutorials/01_backprop_by_hand.py`) or open it as a
# notebook (jupytext or VS Code's "Run Cell"). `MINILAYERLR_FAST=1` shrinks it;
# pictures go to the folder in `MINILAYERLR_OUT` (a temporary folder otherwise).

# %%
from minilayerlr.testing.notebook import start_tutorial

TUTORIAL = start_tutorial("tutorial01")  # picks the plot backend: before pyplot
FAST, OUT, save = TUTORIAL.fast, TUTORIAL.out, TUTORIAL.save

import matplotlib.pyplot as plt
import numpy as np

import minilayerlr as mll
from minilayerlr import testing


rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The Dense layer
#
# A Dense layer maps a batch $x\in\mathbb R^{N\times I}$ to
# $y = xW + b$, with $W\in\mathbb R^{I\times O}$, $b\in\mathbb R^{O}$ (added to
# every row). Reverse mode receives $\bar y = \partial f/\partial y$ (same shape
# as $y$; the library calls it `g_y`) and must return the gradients of $f$ with
# respect to everything the layer read. Write $y_{no} = \sum_i x_{ni}W_{io} + b_o$
# and apply the chain rule entry by entry:
#
# $$\frac{\partial f}{\partial W_{io}} = \sum_n \bar y_{no}\,x_{ni}
#   \;\Rightarrow\; \bar W = x^\top \bar y,\qquad
#   \bar b = \sum_n \bar y_{n,:},\qquad
#   \bar x = \bar y\, W^\top .$$
#
# Each rule is "the forward matrix product, transposed": that is all backprop is.

# %%
N, I, O = 5, 4, 3
layer = mll.Dense(I, O)
p = layer.init(rng)
x = rng.standard_normal((N, I))
g_y = rng.standard_normal((N, O))          # some upstream gradient ∂f/∂y


def dense_backward_by_hand(W, x, g_y):
    g_W = x.T @ g_y
    g_b = g_y.sum(axis=0)
    g_x = g_y @ W.T
    return g_x, {"W": g_W, "b": g_b}


y, cache = layer.forward(p, x)
assert np.allclose(y, x @ p["W"] + p["b"])
g_x_lib, g_p_lib = layer.backward(p, cache, g_y)
g_x_hand, g_p_hand = dense_backward_by_hand(p["W"], x, g_y)
# Same sums, perhaps in another order (another BLAS kernel): each entry is a sum of
# at most N products, so two orders differ by at most 2γ_N times the sum of the
# products' sizes, γ_N = N·u (Higham, Accuracy and Stability, Lemma 3.1).
rounding = 2 * testing.gamma(max(N, O))
sizes = dense_backward_by_hand(np.abs(p["W"]), np.abs(x), np.abs(g_y))   # Σ|terms| of each entry
for name in ("W", "b"):
    assert np.all(np.abs(g_p_hand[name] - g_p_lib[name]) <= rounding * sizes[1][name]), name
assert np.all(np.abs(g_x_hand - g_x_lib) <= rounding * sizes[0])
print("Dense backward by hand == library")

# %% [markdown]
# ## 2. The tanh activation
#
# Elementwise $y=\tanh(x)$ has a diagonal Jacobian, so the VJP is a product of
# arrays: $\bar x = \bar y \odot \tanh'(x) = \bar y\odot(1-y^2)$. Reusing the
# *output* $y$ saves recomputing $\tanh$; this is why layers keep a cache.

# %%
act = mll.Tanh()
s = rng.standard_normal((N, O))
h, act_cache = act.forward({}, s)
g_s_hand = g_y * (1 - h ** 2)
g_s_lib, _ = act.backward({}, act_cache, g_y)
assert np.allclose(g_s_hand, g_s_lib, rtol=2 * testing.gamma(3), atol=0)   # three operations per entry
print("tanh backward by hand == library")

# %% [markdown]
# ## 3. The adjoint test: backward must be the transpose of forward mode
#
# Forward mode pushes a tangent $(\dot x,\dot W,\dot b)$ through the layer:
# $\dot y = \dot x W + x\dot W + \dot b$ (the library's `tangent`, with a leading
# axis of $K$ tangents). Reverse mode pulls $\bar y$ back. For *any* $\dot x$
# and $\bar y$ the two must satisfy
#
# $$\langle \bar y, \dot y\rangle
#   = \langle \bar x, \dot x\rangle + \langle \bar W, \dot W\rangle + \langle \bar b, \dot b\rangle .$$
#
# Both sides are computed exactly, so they agree to rounding (~1e-15), not to
# the ~1e-9 of a finite difference. This test needs no step size at all.

# %%
x_dot = rng.standard_normal(x.shape)
p_dot = {"W": rng.standard_normal(p["W"].shape), "b": rng.standard_normal(p["b"].shape)}
y_dot = layer.tangent(p, cache, x_dot[None], {k: v[None] for k, v in p_dot.items()})[0]
lhs = np.vdot(g_y, y_dot)
rhs = np.vdot(g_x_lib, x_dot) + np.vdot(g_p_lib["W"], p_dot["W"]) + np.vdot(g_p_lib["b"], p_dot["b"])
print(f"<g_y, J v> = {lhs:.15f}\n<J^T g_y, v> = {rhs:.15f}")
# both sides are sums of products of the numbers involved: within γ_n of Σ|terms|
terms = np.vdot(np.abs(g_y), np.abs(x_dot) @ np.abs(p["W"]) + np.abs(x) @ np.abs(p_dot["W"]) + np.abs(p_dot["b"]))
assert abs(lhs - rhs) <= 2 * testing.gamma(N * O * (I + 2)) * terms

# %% [markdown]
# ## 4. Finite differences along a random direction
#
# The adjoint test checks that forward and reverse mode agree with *each other*;
# it cannot tell whether both are wrong in the same way. The independent
# reference is the function itself. For a random direction $u$ in parameter
# space, the central difference
#
# $$\frac{f(\theta+\varepsilon u)-f(\theta-\varepsilon u)}{2\varepsilon}
#   = \nabla f(\theta)^\top u + O(\varepsilon^2) + O(\mathsf u/\varepsilon)$$
#
# has a truncation error $O(\varepsilon^2)$ and a rounding error $O(\mathsf
# u/\varepsilon)$ ($\mathsf u\approx 2.2\times10^{-16}$ the unit round-off).
# Balancing them gives $\varepsilon\approx\mathsf u^{1/3}\approx 6\times 10^{-6}$
# and an error near $\mathsf u^{2/3}\approx 10^{-10}$–$10^{-9}$. The library's
# checkers (`minilayerlr.testing`, shared with the test-suite) use exactly this.
#
# We check a whole network: Dense → tanh → Dense with a softmax cross-entropy.

# %%
net = mll.Sequential([mll.Dense(6, 8), mll.Tanh(), mll.Dense(8, 3)], loss=mll.SoftmaxCrossEntropy())
params = net.init(seed=1)
X = rng.standard_normal((20, 6))
labels = rng.integers(0, 3, size=20)
ev = net.evaluate(params, X, labels)
loss = lambda q: net.loss_value(q, X, labels)
u = testing.random_like(params, rng)
result = testing.check_gradient(loss, ev.grads, params, u)
print(result)
assert result.passed and result.error < 1e-7

# %% [markdown]
# The error as a function of $\varepsilon$ makes the trade-off visible: a V in
# log-log axes, slope $+2$ on the right (truncation), $-1$ on the left
# (rounding), bottom near $\mathsf u^{1/3}$.

# %%
eps_grid = np.logspace(-12, -1, 23 if not FAST else 12)
exact = testing.tree_vdot(ev.grads, u)
errors = np.array([abs((loss(testing.axpy(e, u, params)) - loss(testing.axpy(-e, u, params))) / (2 * e) - exact)
                   / abs(exact) for e in eps_grid])
best = eps_grid[np.argmin(errors)]
print(f"best eps = {best:.1e} (u^(1/3) = {testing.default_eps(np.float64):.1e}), error {errors.min():.1e}")
assert 1e-8 <= best <= 1e-3 and errors.min() < 1e-8
# right branch: truncation error shrinks like eps^2
right = eps_grid > 1e-3
slope = np.polyfit(np.log(eps_grid[right]), np.log(errors[right]), 1)[0]
assert 1.5 < slope < 2.5, slope

fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.loglog(eps_grid, errors, "o-", label="relative error of the central difference")
ax.loglog(eps_grid, eps_grid ** 2 * errors[-1] / eps_grid[-1] ** 2, "--", label=r"$\propto\varepsilon^2$ (truncation)")
ax.loglog(eps_grid, 1e-16 / eps_grid, ":", label=r"$\propto \mathsf{u}/\varepsilon$ (rounding)")
ax.axvline(testing.default_eps(np.float64), color="gray", lw=0.8)
ax.set_ylim(1e-12, 10)
ax.set_xlabel(r"step $\varepsilon$")
ax.set_ylabel("relative error")
ax.set_title("Gradient check: the finite-difference V")
ax.legend(fontsize=8)
save(fig, "01_fd_error_vs_eps.png")

# %% [markdown]
# ## 5. A checker must fail on a wrong derivative
#
# A test that always passes teaches nothing. We plant the most common bug, a
# forgotten factor in the activation's derivative ($1-y$ instead of $1-y^2$),
# and watch both checks fail: the adjoint test (the backward pass no longer
# matches the JVP) and the finite-difference test.

# %%
class BuggyTanh(mll.Tanh):
    def first(self, x, y):
        return 1 - y          # wrong: tanh' = 1 - y**2


buggy = mll.Sequential([mll.Dense(6, 8), BuggyTanh(), mll.Dense(8, 3)], loss=mll.SoftmaxCrossEntropy())
ev_bad = buggy.evaluate(params, X, labels)
bad = testing.check_gradient(loss, ev_bad.grads, params, u)
print(bad)
assert not bad.passed

layer_checks = testing.check_layer(BuggyTanh(), {}, s, rng)
print("\n".join(str(r) for r in layer_checks))
assert not all(r.passed for r in layer_checks)
good_checks = testing.check_layer(mll.Tanh(), {}, s, rng) + testing.check_layer(layer, p, x, rng)
assert all(r.passed for r in good_checks), [str(r) for r in good_checks if not r.passed]
print("the real Dense and Tanh pass every layer check")

# %% [markdown]
# ## What to remember
#
# * Backprop rules are the forward operations transposed: $\bar W = x^\top\bar y$,
#   $\bar x = \bar y W^\top$, $\bar x = \bar y\odot\sigma'(x)$.
# * The adjoint test checks reverse against forward mode to rounding error.
# * Finite differences along a random direction check against the function,
#   with $\varepsilon\approx \mathsf u^{1/3}$ and errors near $10^{-9}$.
# * Always see a checker fail on a planted bug before trusting it.
#
# Next: the *second* derivative — Hessian-vector products by differentiating
# this backward pass once more (Tutorial 2).
