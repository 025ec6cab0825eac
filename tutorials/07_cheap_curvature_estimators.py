# %% [markdown]
# # Tutorial 7 — Cheap curvature estimators: cost against variance
#
# The exact per-layer curvatures $q_l = d_l^\top H_{ll}d_l$ (all layers in one
# sweep) are minilayerlr's edge, but a large-scale implementation in an
# autodiff framework would rather use something it already has. Two unbiased
# estimators, both `kind`s of `ev.layer_curvature`:
#
# * **random signs** (`"sign_hvp"`, estimates the Hessian form): one HVP with
#   $v=\sum_m\epsilon_m d_m$, $\epsilon_m=\pm1$ independent, and
#   $\hat q_l=\epsilon_l\,d_l^\top(Hv)_l = q_l + \sum_{m\ne l}\epsilon_l\epsilon_m\, d_l^\top H_{lm}d_m$.
#   Unbiased since $\mathbb E[\epsilon_l\epsilon_m]=\delta_{lm}$; its noise is
#   exactly the cross-layer coupling.
# * **Monte-Carlo Fisher** (`"mc_fisher"`, estimates the Gauss-Newton form):
#   draw targets from the model's own predictive distribution, back-propagate the
#   resulting loss gradient $s$ once ($\mathbb E[ss^\top]=\nabla^2_y\ell$), and
#   for each example form $r_n = \langle\delta_n, \dot y_n\rangle$ with $\delta$
#   the back-propagated $s$ at layer $l$'s output and $\dot y$ layer $l$'s output
#   tangent along $d_l$; then $\hat q_l=\sum_n r_n^2$. About the cost of one gradient.
#
# We measure bias, variance and cost against the exact engine, look at the
# graph case, and train with each.

# %%
from minilayerlr.testing.notebook import start_tutorial

TUTORIAL = start_tutorial("tutorial07")  # picks the plot backend: before pyplot
FAST, OUT, save = TUTORIAL.fast, TUTORIAL.out, TUTORIAL.save

import time

import matplotlib.pyplot as plt
import numpy as np

import minilayerlr as mll
from minilayerlr import testing
from minilayerlr.training import train


rng = np.random.default_rng(0)
SAMPLES = 300 if FAST else 3000

# %% [markdown]
# ## 1. A tanh autoencoder and a realistic direction
#
# Tanh (not ReLU) so that the Hessian and Gauss-Newton forms differ. The
# direction is the momentum buffer after a few SGD-m steps, the $d$ SGD-m-LS
# would hand to the oracle.

# %%
digits = mll.data.synthetic_digits(num_train=1000 if FAST else 3000, num_test=10, size=16, seed=0)
x = digits.x_train.reshape(len(digits.x_train), -1)
widths = [256, 64, 16, 64, 256]
layers = []
for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
    layers += [mll.Dense(a, b)] + ([mll.Tanh()] if k < len(widths) - 2 else [])
net = mll.Sequential(layers, loss=mll.SigmoidCrossEntropy())
names = [f"dense {a}→{b}" for a, b in zip(widths[:-1], widths[1:])]
warm = train(net, net.init(seed=0), mll.optim.SGD(lr=0.01, momentum=0.9), x, x, epochs=1, batch_size=100, progress=False)
params, d = warm.params, warm.state.momentum
ev = net.evaluate(params, x[:100], x[:100])
q_h = ev.layer_curvature(d)
q_g = ev.layer_curvature(d, kind="ggn")
print("exact Hessian form     ", np.array2string(q_h, precision=4))
print("exact Gauss-Newton form", np.array2string(q_g, precision=4))

# %% [markdown]
# ## 2. Unbiased, but how noisy?
#
# For each estimator we draw many seeds and compare the sample mean with the
# exact value it estimates: the difference must be within a few standard errors
# (we assert 5). The relative standard deviation of a *single* draw is what an
# optimizer would see at each step.

# %%
def draws(kind, n):
    return np.array([ev.layer_curvature(d, kind=kind, seed=int(s)) for s in rng.integers(0, 2**32, size=n)])


est = {"sign_hvp": (draws("sign_hvp", SAMPLES), q_h), "mc_fisher": (draws("mc_fisher", SAMPLES), q_g)}
for kind, (S, exact) in est.items():
    mean, se = S.mean(axis=0), S.std(axis=0, ddof=1) / np.sqrt(len(S))
    z = np.abs(mean - exact) / np.maximum(se, 1e-300)
    rel_sd = S.std(axis=0) / np.abs(exact)
    print(f"{kind:9s} |mean - exact| / stderr = {np.array2string(z, precision=2)},"
          f"  relative sd of one draw = {np.array2string(rel_sd, precision=2)}")
    assert np.all(z < 5), kind
wrong_sign = (np.sign(est["sign_hvp"][0]) != np.sign(q_h)).mean(axis=0)
print("fraction of sign_hvp draws whose sign differs from the exact q_l:", np.round(wrong_sign, 3))
assert wrong_sign.max() > 0                    # a single unbiased draw can have the wrong sign
assert np.all(est["mc_fisher"][0] >= 0)        # a sum of squares never is

# %% [markdown]
# With $L$ blocks the random-sign estimate takes at most $2^{L-1}$ distinct
# values (flipping all signs changes nothing), which is why its histogram below
# is a handful of spikes: an average over a few *exact* cross-layer terms, not
# a bell curve. Two facts to take away. A random-sign draw can come out with
# the **wrong sign** — negative for a block whose curvature is positive, or the
# reverse (the exact Hessian form itself can be negative for early tanh layers,
# as the long run of this tutorial shows; the Gauss-Newton form never is). The
# step rule must then fall back (our `on_nonpositive_curvature` safeguard). The Monte-Carlo Fisher
# estimate is a sum of squares, always $\ge 0$, but estimates the Gauss-Newton
# form, not the Hessian one.
#
# ## 3. What each costs
#
# Wall time per call, relative to one gradient (a forward and backward pass,
# i.e. `net.evaluate`), on the same batch. Timings are noisy on a shared
# machine, so we report them without asserting; the benchmark command
# (`minilayerlr bench`) is the place for careful numbers.

# %%
def timed(fn, repeat):
    fn()
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeat)
    return best


R = 5 if FAST else 30
xb = x[:100]
t_grad = timed(lambda: net.evaluate(params, xb, xb), R)
costs = {kind: timed(lambda kind=kind: ev.layer_curvature(d, kind=kind, seed=1), R) / t_grad
         for kind in ("hessian", "ggn", "sign_hvp", "mc_fisher")}
costs["L masked HVPs"] = timed(lambda: [ev.hvp(testing.mask_to_block(d, k)) for k in net.blocks], R) / t_grad
for kind, c in costs.items():
    print(f"{kind:14s} {c:5.2f} x one gradient")

# %% [markdown]
# ## 4. Graphs: what stays unbiased when examples share neighbours
#
# In a GCN, node $n$'s output depends on its neighbours, so the back-propagated
# $\delta_n$ mixes the sampled $s$ of several nodes and $\sum_n r_n^2$ picks up
# cross terms $s_n s_m$ with $n\ne m$ — biased. What stays unbiased is the
# square of the sum: $r=\sum_n r_n = s^\top J d_l$ and
# $\mathbb E[r^2] = d_l^\top J^\top\mathbb E[ss^\top]Jd_l = d_l^\top G_{ll} d_l$
# because the $s_n$ of different nodes are independent with mean zero. One
# scalar per draw instead of a sum over nodes: unbiased, at a higher variance.
# The library switches to it automatically after a layer that mixes examples.
# We check it on a small GCN with tanh (so the last layer is preceded by mixing).

# %%
graph = mll.data.contextual_sbm(num_nodes=300, num_classes=3, num_features=8, p_in=0.05, p_out=0.005,
                                train_per_class=20, num_val=30, seed=1)
adj = mll.normalized_adjacency(graph.edges, graph.num_nodes)
gcn = mll.Sequential([mll.GraphConv(8, 8, adj), mll.Tanh(), mll.GraphConv(8, 3, adj)],
                     loss=mll.SoftmaxCrossEntropy(mask=np.asarray(graph.train_mask)))
gp = gcn.init(seed=0)
gx, gy = np.asarray(graph.features), np.asarray(graph.labels)
gev = gcn.evaluate(gp, gx, gy)
gd = gev.grads
g_exact = gev.layer_curvature(gd, kind="ggn")
G_S = np.array([gev.layer_curvature(gd, kind="mc_fisher", seed=s) for s in range(SAMPLES)])
z = np.abs(G_S.mean(axis=0) - g_exact) / (G_S.std(axis=0, ddof=1) / np.sqrt(SAMPLES))
gcn_rel_sd = G_S.std(axis=0) / g_exact
print("GCN mc_fisher: |mean - exact| / stderr", np.array2string(z, precision=2),
      " relative sd", np.array2string(gcn_rel_sd, precision=2))
assert np.all(z < 5)

# %% [markdown]
# And the per-node sum of squares, written out by hand for the first block from
# the evaluation's caches (sample $s$, back-propagate it through the later
# layers, contract with the block's output tangent), is biased — by the
# neighbour cross terms:

# %%
def per_node_estimate(seed):
    s = gev.loss_fn.sample_gradient(gev.loss_cache, np.random.default_rng(seed))
    for k in (2, 1):                                    # back through GraphConv 2 and tanh
        s, _ = gev.layers[k].backward(gev.params[k], gev.caches[k], s)
    y_dot = gev.layers[0].tangent(gev.params[0], gev.caches[0], None, {n: a[None] for n, a in gd[0].items()})[0]
    r = (y_dot * s).sum(axis=1)
    return r @ r, r.sum() ** 2


pairs = np.array([per_node_estimate(s) for s in range(SAMPLES)])
assert np.allclose(pairs[:, 1], G_S[:, 0], rtol=1e-10)    # the library's estimate is the square of the sum
mean_pn, se_pn = pairs[:, 0].mean(), pairs[:, 0].std(ddof=1) / np.sqrt(SAMPLES)
print(f"block 0: exact {g_exact[0]:.5f}; square of the sum {pairs[:, 1].mean():.5f}; "
      f"per-node sum of squares {mean_pn:.5f} ({abs(mean_pn - g_exact[0]) / se_pn:.0f} standard errors off)")
assert abs(mean_pn - g_exact[0]) > 5 * se_pn

# %% [markdown]
# ## 5. Training with each estimator
#
# SGD-m-LS on the autoencoder with the exact Hessian, exact Gauss-Newton, and
# the two estimators (each step draws a fresh, reproducible seed).

# %%
EPOCHS = 4 if FAST else 15
hist = {}
for kind in ("hessian", "ggn", "sign_hvp", "mc_fisher"):
    opt = mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9), curvature_kind=kind, seed=0)
    hist[kind] = train(net, net.init(seed=0), opt, x, x, epochs=EPOCHS, batch_size=100, progress=False).history
    h = hist[kind]
    print(f"{kind:10s} final loss {h.final_train_loss:8.3f}   step time {h.time[-1] / h.steps[-1] * 1e3:6.2f} ms")
    assert h.stop_reason is None and h.final_train_loss < 0.8 * h.train_loss[0]

# %%
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
ax = axes[0]
for i, (kind, (S, exact)) in enumerate(est.items()):
    sd = S.std(axis=0) / np.abs(exact)
    ax.scatter([costs[kind]] * len(sd), sd, s=40, label=f"{kind} (one point per layer)")
ax.scatter([costs["hessian"], costs["ggn"]], [0, 0], marker="*", s=150, c="k", label="exact sweeps (hessian, ggn)")
ax.scatter([costs["L masked HVPs"]], [0], marker="x", s=80, c="gray", label="L masked HVPs (exact)")
ax.set_xlabel("cost per call / one gradient")
ax.set_ylabel("relative sd of one estimate")
ax.set_title("Cost against variance (autoencoder)")
ax.legend(fontsize=7)

ax = axes[1]
S = est["sign_hvp"][0]
for l in range(S.shape[1]):
    ax.hist(S[:, l] / q_h[l], bins=40, histtype="step", label=names[l])
ax.axvline(1, color="k", lw=0.8)
ax.axvline(0, color="r", lw=0.8, ls=":")
ax.set_xlabel(r"$\hat q_l / q_l$ (random signs)")
ax.set_title("Random-sign draws: unbiased, can be negative")
ax.legend(fontsize=7)

ax = axes[2]
for kind, h in hist.items():
    ax.plot(h.epoch, h.train_loss, marker="o", ms=3, label=kind)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss")
ax.set_title("SGD-m-LS with each curvature kind")
ax.legend(fontsize=8)
fig.tight_layout()
save(fig, "07_estimators_cost_variance.png")

# %% [markdown]
# ## What to remember
#
# * Both estimators are unbiased for what they estimate; random signs estimate
#   the Hessian form (noise = cross-layer coupling, can go negative),
#   Monte-Carlo Fisher the Gauss-Newton form (never negative, noise from sampling).
# * On graphs the per-example split is lost; $(\sum_n r_n)^2$ keeps it unbiased at
#   a higher variance (our derivation).
# * The exact one-sweep engine costs about as much as the estimators here and
#   has no variance at all — the reason minilayerlr defaults to it.
