# %% [markdown]
# # Tutorial 2 — Hessian-vector products: the R-operator by hand, and with dual numbers
#
# The layer-wise step size needs second-order information: for layer $l$ and
# direction $d_l$, the curvature $q_l = d_l^\top H_{ll} d_l$ of the loss. The
# basic tool is the **Hessian-vector product** $Hv$, computed exactly without
# ever forming $H$ (Pearlmutter, 1994). This lesson
#
# 1. derives $Hv$ for a 2-layer tanh network by hand — Pearlmutter's
#    $\mathcal R$-operator, the *tangent of the backward pass* — and checks it
#    against the library (`ev.hvp`) to $10^{-10}$;
# 2. gets the same $Hv$ a second way: a 40-line **dual-number** class run
#    through an *unchanged* hand-written forward/backward pass;
# 3. shows why one HVP with the whole direction $d$ is **not** the per-layer
#    quantity $q_l$, and what is.
#
# The library writes explicit $\mathcal R$-rules per layer (the layer protocol of
# docs/design.md, §4); the other honest design, generic dual numbers run through the
# same code, lives here, as a derivation checked against it.

# %%
from minilayerlr.testing.notebook import start_tutorial

TUTORIAL = start_tutorial("tutorial02")  # picks the plot backend: before pyplot
FAST, OUT, save = TUTORIAL.fast, TUTORIAL.out, TUTORIAL.save

import matplotlib.pyplot as plt
import numpy as np

import minilayerlr as mll
from minilayerlr import testing


rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The network and its backward pass
#
# $$a = xW_1 + b_1,\quad h=\tanh(a),\quad y = hW_2+b_2,\quad
#   f = \tfrac1{2N}\|y-t\|^2 .$$
#
# Backward (Tutorial 1), with bars for $\partial f/\partial(\cdot)$:
#
# $$\bar y = (y-t)/N,\quad \bar W_2 = h^\top\bar y,\quad \bar b_2=\textstyle\sum_n\bar y_n,\quad
#   \bar h = \bar y W_2^\top,\quad \bar a = \bar h\odot(1-h^2),\quad
#   \bar W_1 = x^\top \bar a,\quad \bar b_1 = \textstyle\sum_n \bar a_n .$$

# %%
N, D, Hdim, C = 12, 5, 7, 3
net = mll.Sequential([mll.Dense(D, Hdim), mll.Tanh(), mll.Dense(Hdim, C)], loss=mll.MeanSquaredError())
params = net.init(seed=0)
for e in params:                                 # non-zero biases, so every term is exercised
    if e:
        e["b"] = 0.3 * rng.standard_normal(e["b"].shape)
x = rng.standard_normal((N, D))
t = rng.standard_normal((N, C))
ev = net.evaluate(params, x, t)
v = testing.random_like(params, rng)             # the direction of the HVP


def unpack(ps):
    return ps[0]["W"], ps[0]["b"], ps[2]["W"], ps[2]["b"]


def forward_backward(P, x, t, tanh=np.tanh):
    """Gradient of f for the 2-layer net, written once for any array type."""
    W1, b1, W2, b2 = P
    n = x.shape[0]
    a = x @ W1 + b1
    h = tanh(a)
    y = h @ W2 + b2
    g_y = (y - t) * (1.0 / n)
    g_W2, g_b2 = h.T @ g_y, g_y.sum(axis=0)
    g_h = g_y @ W2.T
    g_a = g_h * (1 - h * h)
    g_W1, g_b1 = x.T @ g_a, g_a.sum(axis=0)
    return g_W1, g_b1, g_W2, g_b2


grads_hand = forward_backward(unpack(params), x, t)
# Every tolerance below is a rounding bound: the same exact quantity computed in
# another order differs by about γ_n = n·u per sum of n terms (Higham, Accuracy and
# Stability, Lemma 3.1), so a chain of L layers over P parameters stays within
# ROUNDING = L·γ_P of the size of its terms.
P_all = mll.flatten(params).size
ROUNDING = len(net.layers) * testing.gamma(P_all)
for mine, lib in zip(grads_hand, unpack(ev.grads)):
    assert np.allclose(mine, lib, rtol=0, atol=ROUNDING * max(1.0, np.abs(lib).max()))
print("hand-written gradient == ev.grads")

# %% [markdown]
# ## 2. Design A: Pearlmutter's $\mathcal R$-operator, derived by hand
#
# Define $\mathcal R\{z\} = \frac{d}{dr} z(\theta + r v)\big|_{r=0}$ for every
# intermediate quantity $z$. Applied to the gradient, $\mathcal R\{\nabla f\} =
# Hv$. $\mathcal R$ is a derivative, so it obeys the product rule, and
# $\mathcal R\{W_k\} = V_k$, $\mathcal R\{b_k\}=c_k$ (the blocks of $v$),
# $\mathcal R\{x\}=\mathcal R\{t\}=0$. Apply it to every line of the forward
# pass ...
#
# $$\mathcal R\{a\} = xV_1 + c_1,\quad \mathcal R\{h\} = (1-h^2)\odot\mathcal R\{a\},\quad
#   \mathcal R\{y\} = \mathcal R\{h\}W_2 + hV_2 + c_2,$$
#
# ... and then to every line of the backward pass:
#
# $$\mathcal R\{\bar y\} = \mathcal R\{y\}/N,\qquad
#   \mathcal R\{\bar W_2\} = \mathcal R\{h\}^\top\bar y + h^\top\mathcal R\{\bar y\},\qquad
#   \mathcal R\{\bar b_2\} = \textstyle\sum_n \mathcal R\{\bar y\}_n,$$
# $$\mathcal R\{\bar h\} = \mathcal R\{\bar y\}W_2^\top + \bar y V_2^\top,\qquad
#   \mathcal R\{\bar a\} = \mathcal R\{\bar h\}\odot(1-h^2) \;+\; \bar h\odot\big(-2h\odot\mathcal R\{h\}\big),$$
# $$\mathcal R\{\bar W_1\} = x^\top \mathcal R\{\bar a\},\qquad \mathcal R\{\bar b_1\} = \textstyle\sum_n\mathcal R\{\bar a\}_n .$$
#
# The term $\bar h\odot(-2h)\odot\mathcal R\{h\} = \bar h\odot\tanh''(a)\odot\mathcal R\{a\}$
# is the only place the activation's *second* derivative appears; dropping it
# together with the $\bar y V_2^\top$ and $\mathcal R\{h\}^\top \bar y$ terms
# (everything that multiplies the backward gradient rather than its tangent)
# leaves the Gauss-Newton product $J^\top\nabla^2\ell\,J v$.
# The cost is about one more forward and backward pass.

# %%
def hvp_by_hand(P, V, x, t, gauss_newton=False):
    W1, b1, W2, b2 = P
    V1, c1, V2, c2 = V
    n = x.shape[0]
    # forward and backward (the same lines as above)
    a = x @ W1 + b1
    h = np.tanh(a)
    y = h @ W2 + b2
    g_y = (y - t) / n
    g_h = g_y @ W2.T
    if gauss_newton:            # drop every term that multiplies the backward gradient itself
        g_y, g_h = np.zeros_like(g_y), np.zeros_like(g_h)
    # R{forward}
    Ra = x @ V1 + c1
    Rh = (1 - h * h) * Ra
    Ry = Rh @ W2 + h @ V2 + c2
    # R{backward}
    Rg_y = Ry / n
    Rg_W2 = Rh.T @ g_y + h.T @ Rg_y
    Rg_b2 = Rg_y.sum(axis=0)
    Rg_h = Rg_y @ W2.T + g_y @ V2.T
    Rg_a = Rg_h * (1 - h * h) + g_h * (-2 * h * Rh)
    Rg_W1 = x.T @ Rg_a
    Rg_b1 = Rg_a.sum(axis=0)
    return Rg_W1, Rg_b1, Rg_W2, Rg_b2


hv_lib = ev.hvp(v)
hv_hand = hvp_by_hand(unpack(params), unpack(v), x, t)
err_A = testing.relative_error(np.concatenate([a.ravel() for a in hv_hand]),
                               np.concatenate([a.ravel() for a in unpack(hv_lib)]))
print(f"R-operator by hand vs ev.hvp: relative error {err_A:.1e}")
assert err_A < ROUNDING

gv_hand = hvp_by_hand(unpack(params), unpack(v), x, t, gauss_newton=True)
err_G = testing.relative_error(np.concatenate([a.ravel() for a in gv_hand]), mll.flatten(ev.hvp(v, kind="ggn")))
print(f"Gauss-Newton product by hand vs ev.hvp(v, kind='ggn'): relative error {err_G:.1e}")
assert err_G < ROUNDING

# %% [markdown]
# ## 3. Design B: dual numbers through the unchanged backward code
#
# Instead of deriving a $\mathcal R$-rule for every line, make the *numbers*
# carry their own derivative. A dual number is a pair $(z, \dot z)$ standing for
# $z + \dot z\,\epsilon$ with $\epsilon^2 = 0$. Arithmetic on pairs is the
# product rule: $(a+\dot a\epsilon)(b+\dot b\epsilon) = ab + (\dot a b + a\dot b)\epsilon$,
# and $\tanh(a+\dot a\epsilon) = \tanh a + (1-\tanh^2 a)\,\dot a\,\epsilon$.
#
# Seed the parameters with tangent $v$, i.e. $\theta + v\epsilon$, run
# `forward_backward` **exactly as written above**, and every gradient comes out
# as $\nabla f(\theta) + (Hv)\,\epsilon$: forward-over-reverse in one pass.
#
# Setting `__array_ufunc__ = None` makes NumPy refuse to mix a `Dual` into its
# own ufuncs (`ndarray @ Dual` then calls our `__rmatmul__`): a stray `np.`
# call in differentiated code fails loudly instead of silently dropping the
# tangent.

# %%
class Dual:
    """An array value with one tangent: value + tangent·ε, ε² = 0."""

    __array_ufunc__ = None

    def __init__(self, value, tangent):
        self.value, self.tangent = np.asarray(value, float), np.asarray(tangent, float)

    @staticmethod
    def lift(z):
        return z if isinstance(z, Dual) else Dual(z, np.zeros_like(np.asarray(z, float)))

    def __add__(self, o):
        o = Dual.lift(o)
        return Dual(self.value + o.value, self.tangent + o.tangent)

    __radd__ = __add__

    def __sub__(self, o):
        o = Dual.lift(o)
        return Dual(self.value - o.value, self.tangent - o.tangent)

    def __rsub__(self, o):
        return Dual.lift(o) - self

    def __mul__(self, o):
        o = Dual.lift(o)
        return Dual(self.value * o.value, self.tangent * o.value + self.value * o.tangent)

    __rmul__ = __mul__

    def __matmul__(self, o):
        o = Dual.lift(o)
        return Dual(self.value @ o.value, self.tangent @ o.value + self.value @ o.tangent)

    def __rmatmul__(self, o):
        return Dual.lift(o) @ self

    @property
    def T(self):
        return Dual(self.value.T, self.tangent.T)

    def sum(self, axis=None):
        return Dual(self.value.sum(axis=axis), self.tangent.sum(axis=axis))


def dual_tanh(z):
    y = np.tanh(z.value)
    return Dual(y, (1 - y * y) * z.tangent)


P_dual = [Dual(p_, v_) for p_, v_ in zip(unpack(params), unpack(v))]
out = forward_backward(P_dual, x, t, tanh=dual_tanh)
grad_B = np.concatenate([o.value.ravel() for o in out])
hv_B = np.concatenate([o.tangent.ravel() for o in out])
err_B = testing.relative_error(hv_B, mll.flatten(hv_lib))
print(f"dual numbers through the backward pass vs ev.hvp: relative error {err_B:.1e}")
assert err_B < ROUNDING
assert testing.relative_error(grad_B, mll.flatten(ev.grads)) < ROUNDING

try:                                             # the guard: np.tanh on a Dual must fail
    np.tanh(P_dual[0])
    raise AssertionError("np.tanh accepted a Dual")
except TypeError as err:
    print("np.tanh(Dual) refused:", err)

# %% [markdown]
# **A versus B.** Design A writes each formula (forward, backward, JVP, $\mathcal
# R$) by hand: everything visible, but twice the derivative code, and the second
# half is where bugs hide. Design B writes each *primitive's* rule once and reuses
# the layer code, but needs layer code to stay inside the dual type's vocabulary
# (no in-place updates, no raw `np.` math). The two agree to rounding, and both
# agree with an independent finite difference of the gradient:

# %%
grad_at = lambda q: net.evaluate(q, x, t).grads
r_fd = testing.check_hvp(grad_at, hv_lib, params, v)
r_sym = testing.check_symmetry(ev.hvp, v, testing.random_like(params, rng))
print(r_fd, r_sym, sep="\n")
assert r_fd.passed and r_sym.passed

# %% [markdown]
# ## 4. One HVP with the whole direction is not the per-layer quantity
#
# Split the parameters into blocks (one per layer with parameters) and the
# Hessian into blocks $H_{lm}$. The layer-wise method needs, for each block,
#
# $$q_l = d_l^\top H_{ll}\, d_l,$$
#
# the curvature of the loss when *only layer $l$ moves* along $d_l$. The
# tempting shortcut — one HVP with the whole direction, then read off block
# $l$ — gives
#
# $$d_l^\top (Hd)_l = \sum_m d_l^\top H_{lm} d_m = q_l + \underbrace{\sum_{m\neq l} d_l^\top H_{lm}d_m}_{\text{cross-layer coupling}},$$
#
# biased by the off-diagonal blocks, and possibly of the wrong sign. Three
# correct ways:
#
# * $L$ masked HVPs, $q_l = d_l^\top(H\,[0,\dots,d_l,\dots,0])_l$ — exact, $L$ times the cost;
# * the library's one-sweep `ev.layer_curvature(d)` (kind `"hessian"`): a
#   tangent starts at each layer and travels forward; exact, about one pass;
# * one HVP with random signs $v=\sum_m\epsilon_m d_m$, $\hat q_l = \epsilon_l
#   d_l^\top (Hv)_l$: unbiased because $\mathbb E[\epsilon_l\epsilon_m]=\delta_{lm}$
#   (Tutorial 7 measures its variance).
#
# We check all of these on a 3-block tanh network against the dense Hessian.

# %%
deep = mll.Sequential([mll.Dense(D, 6), mll.Tanh(), mll.Dense(6, 6), mll.Tanh(), mll.Dense(6, C)],
                      loss=mll.SoftmaxCrossEntropy())
theta = deep.init(seed=3)
labels = rng.integers(0, C, size=N)
ev3 = deep.evaluate(theta, x, labels)
d = testing.random_like(theta, rng)
H = ev3.hessian()
sizes = [sum(a.size for a in theta[k].values()) for k in deep.blocks]
cuts = np.concatenate([[0], np.cumsum(sizes)])
dv = mll.flatten(d)
parts = [slice(cuts[i], cuts[i + 1]) for i in range(len(sizes))]

q_dense = np.array([dv[s] @ H[s, s] @ dv[s] for s in parts])
naive_dense = np.array([dv[s] @ (H @ dv)[s] for s in parts])
q_engine = ev3.layer_curvature(d)
q_masked = np.array([testing.tree_vdot(testing.mask_to_block(d, k), ev3.hvp(testing.mask_to_block(d, k)))
                     for k in deep.blocks])
q_naive = ev3.layer_curvature(d, kind="naive_hvp")
# the random-sign estimator averaged over all 2^L sign patterns is exact (E[ε_l ε_m] = δ_lm)
patterns = np.array(np.meshgrid(*[[-1.0, 1.0]] * len(sizes))).reshape(len(sizes), -1).T
sign_avg = np.zeros(len(sizes))
for eps in patterns:
    hv = H @ np.concatenate([e * dv[s] for e, s in zip(eps, parts)])
    sign_avg += np.array([e * dv[s] @ hv[s] for e, s in zip(eps, parts)]) / len(patterns)

print("block   exact q_l    masked HVPs   sign average   naive d_l'(Hd)_l")
for i in range(len(sizes)):
    print(f"{i:5d} {q_engine[i]:12.6f} {q_masked[i]:12.6f} {sign_avg[i]:13.6f} {q_naive[i]:14.6f}")
# forms may cancel (H is indefinite): hold them to the size of their terms, |d|ᵀ|H||d| per block
rounding3 = 2 * len(deep.layers) * testing.gamma(H.shape[0])
terms = np.array([np.abs(dv[s]) @ (np.abs(H) @ np.abs(dv))[s] for s in parts])
for name, value, reference in (("engine", q_engine, q_dense), ("masked", q_masked, q_dense),
                               ("sign average", sign_avg, q_dense), ("naive", q_naive, naive_dense)):
    assert np.all(np.abs(value - reference) <= rounding3 * terms), name
cross = q_naive - q_engine
print("cross-layer bias of the naive read-off:", np.round(cross, 6))
assert np.max(np.abs(cross) / np.abs(q_engine)) > 0.05    # the shortcut is visibly wrong

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
lim = np.abs(H).max()
axes[0].imshow(H, cmap="RdBu_r", vmin=-lim, vmax=lim)
for c in cuts[1:-1]:
    axes[0].axhline(c - 0.5, color="k", lw=0.8)
    axes[0].axvline(c - 0.5, color="k", lw=0.8)
axes[0].set_title("Hessian of a 3-block tanh net\n(diagonal blocks $H_{ll}$ give $q_l$)")
w = 0.38
idx = np.arange(len(sizes))
axes[1].bar(idx - w / 2, q_engine, w, label=r"exact $q_l=d_l^\top H_{ll}d_l$")
axes[1].bar(idx + w / 2, q_naive, w, label=r"naive $d_l^\top (Hd)_l$")
axes[1].axhline(0, color="k", lw=0.6)
axes[1].set_xticks(idx, [f"block {i}" for i in idx])
axes[1].set_title("Per-layer curvature: exact vs one whole-direction HVP")
axes[1].legend(fontsize=8)
save(fig, "02_naive_vs_exact_block_curvature.png")

# %% [markdown]
# ## What to remember
#
# * $Hv$ is the derivative of the backward pass along $v$; applying $\mathcal R$ line
#   by line (design A) or running dual numbers through the same code (design B)
#   gives it exactly, at the cost of about one extra gradient.
# * The per-layer curvature $q_l = d_l^\top H_{ll}d_l$ is **not** block $l$ of $Hd$:
#   the off-diagonal blocks leak in. Use masked HVPs, random signs, or the
#   one-sweep engine.
#
# Next: what these blocks look like in real networks, and how strongly layers
# are coupled (Tutorial 3).
