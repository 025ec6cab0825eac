# %% [markdown]
# # Tutorial 5 — SGD-momentum with layer-wise step sizes on an autoencoder
#
# Now the stochastic method on a real network. A deep tanh autoencoder learns
# to reproduce images of generated handwritten-like digits (sigmoid
# cross-entropy on the pixels), the first of the paper's three experiment
# families. We compare
#
# * **SGD-m**: SGD with heavy-ball momentum $\beta=0.9$ at a grid of learning
#   rates (what a user who tunes would do), and
# * **SGD-m-LS**: the same directions $d_l$ (the momentum buffers), but each layer's
#   learning rate replaced by
#   $$\alpha_l = \eta\,\frac{g_l^\top d_l}{d_l^\top H_{ll} d_l + \lambda\|d_l\|^2},$$
#   the minimiser of the mini-batch loss's quadratic model along $d_l$ with the
#   other layers fixed — computed for *all* layers in one sweep by
#   `ev.layer_curvature`. No learning rate to tune: $\lambda=0$ and the
#   library's default multiplier $\eta = 1/L$, with $L$ the number of layers
#   (blocks) — see below.
#
# **Why $\eta = 1/L$ and not $\eta = 1$.** $\eta = 1$ is the minimiser of each
# layer's model *with the other layers held fixed*, but all layers move at once.
# When the layers are coupled (the Hessian's off-diagonal blocks matter) the
# per-block minimisers add up to an overshoot: on quadratics the idealized rule
# is guaranteed to descend only for $\eta < 2/c$, with a coupling constant
# $1\le c\le L$ (Theorem 1 in `docs/theory.md`, Tutorial 4). $\eta = 1/L$ is
# the multiplier that is safe there whatever the coupling (on a quadratic; for
# the mini-batch, momentum and averaged rule used here it is a heuristic: only
# pieces are proved, Propositions 7–9 and 8′ there); it is our default
# (`scale=None`), and `opt.multiplier(L)` tells which $\eta$ is in use. We run
# $\eta = 1$ (`scale=1.0`) next to it to show what the overshoot does.
#
# The formula is the natural reading of the paper's abstract; the safeguards
# (what to do when $g_l^\top d_l\le 0$ or the curvature is $\le 0$, optional EMA
# and cap) are **our** choices, documented in `mll.optim.LayerwiseStepSize`. We
# use its defaults, printed below. The one that matters most here is the
# exponential moving average: with $\rho>0$ the rule divides running averages,
# $\alpha_l = \eta\,\bar n_l/\bar D_l$ with $\bar n_l \leftarrow \rho\bar n_l + (1-\rho)\,g_l^\top d_l$
# and $\bar D_l \leftarrow \rho \bar D_l + (1-\rho)(|q_l|+\lambda\|d_l\|^2)$ (bias-corrected;
# the average of the curvature's *magnitude* $|q_l|$: the second-edition default, see
# tutorial 09 for why not $q_l$), which smooths out the noise of single mini-batches
# ($\rho=0$ is the formula as written). A block
# whose direction points uphill ($g_l^\top d_l\le 0$) is skipped for that step;
# one whose averaged curvature is not positive reuses its previous step.

# %%
from minilayerlr.testing.notebook import start_tutorial

TUTORIAL = start_tutorial("tutorial05")  # picks the plot backend: before pyplot
FAST, OUT, save = TUTORIAL.fast, TUTORIAL.out, TUTORIAL.save

import time

import matplotlib.pyplot as plt
import numpy as np

import minilayerlr as mll


# %% [markdown]
# ## 1. Data and model
#
# 16×16 generated digits, flattened to 256 pixels in $[0,1]$. The encoder and
# decoder are Dense layers with tanh in between; the last layer outputs logits
# and the sigmoid sits inside the loss. Sizes are ours (smaller with
# `MINILAYERLR_FAST=1`).

# %%
digits = mll.data.synthetic_digits(num_train=1000 if FAST else 3000, num_test=200, size=16, seed=0)
x = digits.x_train.reshape(len(digits.x_train), -1)
widths = [256, 64, 16, 64, 256] if FAST else [256, 128, 64, 16, 64, 128, 256]
layers = []
for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
    layers.append(mll.Dense(a, b))
    if k < len(widths) - 2:
        layers.append(mll.Tanh())
net = mll.Sequential(layers, loss=mll.SigmoidCrossEntropy())
block_names = [f"dense {a}→{b}" for a, b in zip(widths[:-1], widths[1:])]
params0 = net.init(seed=0)
EPOCHS, BATCH = (8, 50) if FAST else (20, 100)
print(net)
print(mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9)))
L = len(net.blocks)
print(f"L = {L} blocks: default eta = 1/L = {mll.optim.LayerwiseStepSize(mll.optim.SGD()).multiplier(L):.4f}")

# %% [markdown]
# ## 2. The training loop, written out
#
# One evaluation per step gives the mini-batch loss, its gradient and the
# curvature oracle of *that same batch*; the optimizer calls the oracle once on
# its own direction. Plain SGD-m ignores the oracle. (`minilayerlr.training.train`
# does the same with checkpoints and a progress line; we write it out to record
# the fallbacks too.)

# %%
def run(opt, seed=0):
    rng = np.random.default_rng(seed)
    params, state = params0, opt.init(params0)
    losses, alphas, fallbacks = [net.loss_value(params, x, x)], [], []
    started = time.perf_counter()
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            xb = x[order[start:start + BATCH]]
            ev = net.evaluate(params, xb, xb)
            updates, state = opt.update(ev.grads, state, params, curvature=ev.layer_curvature)
            params = mll.apply_updates(params, updates)
            alphas.append(state.step_sizes)
            fallbacks.append(getattr(state, "fallbacks", np.zeros(len(net.blocks), int)))
            if isinstance(opt, mll.optim.LayerwiseStepSize):      # the rule, checked at every step
                ok = state.fallbacks == 0
                expected = opt.multiplier(len(state.step_sizes)) * state.avg_numerators[ok] / state.avg_denominators[ok]
                assert np.allclose(state.step_sizes[ok], expected, rtol=1e-12)
        loss = net.loss_value(params, x, x)
        losses.append(loss)
        if not np.isfinite(loss):
            break
    return dict(losses=np.array(losses), alphas=np.array(alphas), fallbacks=np.array(fallbacks),
                seconds=time.perf_counter() - started, params=params)


grid = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
with np.errstate(all="ignore"):                 # the largest rates overflow on purpose
    runs = {f"SGD-m lr={lr:g}": run(mll.optim.SGD(lr=lr, momentum=0.9)) for lr in grid}
runs["SGD-m-LS"] = run(mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9)))
runs["SGD-m-LS (η = 1)"] = run(mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9), scale=1.0))  # the plain per-layer minimiser
runs["SGD-m-LS (Gauss-Newton)"] = run(mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9), curvature_kind="ggn"))
runs["SGD-m-LS (no EMA)"] = run(mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9), ema=0.0))
for name, r in runs.items():
    print(f"{name:26s} final train loss {r['losses'][-1]:10.3f}   ({r['seconds']:.1f} s)")

# %% [markdown]
# ## 3. What the comparison shows
#
# The tuned baseline is the best SGD-m in the grid; the largest rates diverge
# and the smallest crawl, which is why one tunes at all. SGD-m-LS with the
# default $\eta = 1/L$, untuned, ends level with the best tuned SGD-m on the
# short (FAST) run (93.95 against 95.14 in ours) and clearly ahead of it on the
# long run (68.3 against 86.6: the tuned SGD-m stalls near the plateau around
# 87 that LS leaves). With $\eta = 1$ the same method stops on a plateau: 96.4
# (FAST) and 99.4 (long run), behind the tuned rate.
#
# The two variants are not uniformly better or worse: on the short run the
# Gauss-Newton curvature (77.9) and no EMA (87.8) both end *below* the default,
# on the long run both end above it (87.0 and 95.8). We do not assert on them.
# What we assert holds in both modes: LS decreases the loss a lot, ends no more
# than 2 % above the best tuned SGD-m, beats the median point of the grid (a
# learning rate picked without tuning), and $\eta = 1/L$ ends below $\eta = 1$.

# %%
final = {name: r["losses"][-1] for name, r in runs.items()}
sgd_finals = np.array([final[f"SGD-m lr={lr:g}"] for lr in grid])
sgd_finals = np.where(np.isfinite(sgd_finals), sgd_finals, np.inf)
best_lr = grid[int(np.argmin(sgd_finals))]
ls = final["SGD-m-LS"]
print(f"best tuned SGD-m: lr = {best_lr}, loss {sgd_finals.min():.3f};  SGD-m-LS {ls:.3f} "
      f"(ratio {ls / sgd_finals.min():.3f})")
assert ls < 0.7 * runs["SGD-m-LS"]["losses"][0]
eta1 = final["SGD-m-LS (η = 1)"]
print(f"SGD-m-LS with eta = 1/L: {ls:.3f};  with eta = 1: {eta1:.3f}")
assert ls <= 1.02 * sgd_finals.min()
assert ls <= np.median(sgd_finals)
assert ls < eta1

# %% [markdown]
# ## 4. The schedules the method chose
#
# This is the heart of the method: every layer gets its own step size, step by
# step, and they differ by large factors. Gaps in the curves are steps where a
# layer's momentum direction pointed uphill on the current batch
# ($g_l^\top d_l\le0$) and our "skip" safeguard set $\alpha_l = 0$ — with
# momentum $0.9$ that happens regularly, most often in the layers whose
# gradient changes fastest.
#
# **What $\eta = 1$ does on the long run** (without `MINILAYERLR_FAST`): the
# step sizes of the first four layers (encoder and bottleneck) climb by many
# orders of magnitude (to $10^4$–$10^5$ in our run, against at most 0.15 with
# $\eta = 1/L$) and about
# a third of the steps of the encoder's second and third layers are skipped as
# uphill, while the loss sits on the plateau near 98–99. Our reading (a
# hypothesis we have not verified): the per-layer minimisers overshoot jointly,
# the encoder's tanh units saturate, and in saturated, flat directions both
# $g_l^\top d_l$ and $d_l^\top H_{ll}d_l$ become tiny, so their ratio can grow
# without bound while the model says little about the loss. With $\eta = 1/L$
# no step size exceeds 0.15 on the long run and the loss keeps going down. On the
# short run the $\eta = 1$ schedules have not run away yet (largest
# $\alpha_l\approx 3$); there it is only behind, not stuck.

# %%
A = runs["SGD-m-LS"]["alphas"]
F = runs["SGD-m-LS"]["fallbacks"]
med = np.array([np.median(A[F[:, l] == 0, l]) for l in range(A.shape[1])])
print("median alpha_l per layer:", np.array2string(med, precision=4))
print("fraction of skipped (uphill) steps per layer:", np.round((F == 1).mean(axis=0), 2))
print("largest alpha_l per layer:", np.array2string(A.max(axis=0), precision=3))
A1 = runs["SGD-m-LS (η = 1)"]["alphas"]
F1 = runs["SGD-m-LS (η = 1)"]["fallbacks"]
print("eta = 1: largest alpha_l per layer:", np.array2string(A1.max(axis=0), precision=3))
print("eta = 1: fraction of skipped (uphill) steps per layer:", np.round((F1 == 1).mean(axis=0), 2))
# genuinely layer-wise: the layers' typical steps differ by well over the factor 2 that
# separates a half-decade grid's neighbours (about 8x in fast mode, more in the full run)
assert med.max() / med.min() > 5
assert np.all(A >= 0) and np.all(np.isfinite(A))
if not FAST:                              # the run-away only shows on the long run
    assert A1.max() > 1e3 * A.max()

# %% [markdown]
# ## 5. Why no learning rate: scale invariance
#
# Multiply the loss by a constant $s>0$ (e.g. sum instead of mean over the
# batch). Gradients and momentum scale by $s$, the curvature $q_l$ by $s^3$
# (it is quadratic in $d_l$ and linear in $H$), so $\alpha_l$ scales by $1/s$ and
# the update $\alpha_l d_l$ is unchanged. Plain SGD's update scales by $s$: its
# good learning rate depends on such conventions; LS's step does not.

# %%
ev = net.evaluate(params0, x[:BATCH], x[:BATCH])
s = 37.0
opt = mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9))
u1, _ = opt.update(ev.grads, opt.init(params0), params0, curvature=ev.layer_curvature)
scaled = mll.tree_map(lambda g: s * g, ev.grads)
u2, _ = opt.update(scaled, opt.init(params0), params0, curvature=lambda d: s * ev.layer_curvature(d))
assert np.allclose(mll.flatten(u1), mll.flatten(u2), rtol=1e-10, atol=0)
print("LS update unchanged when the loss is scaled by", s)

# %% [markdown]
# ## 6. Pictures

# %%
fig, axes = plt.subplots(2, 2, figsize=(13, 9))
axes = axes.ravel()
ax = axes[0]
cmap = plt.get_cmap("viridis")
for i, lr in enumerate(grid):
    L_ = runs[f"SGD-m lr={lr:g}"]["losses"]
    ax.plot(np.arange(len(L_)), L_, color=cmap(i / (len(grid) - 1)), lw=1.2, label=f"SGD-m lr={lr:g}")
for name, style in (("SGD-m-LS", "r-"), ("SGD-m-LS (η = 1)", "k-."), ("SGD-m-LS (Gauss-Newton)", "m--"),
                    ("SGD-m-LS (no EMA)", "r:")):
    ax.plot(runs[name]["losses"], style, lw=2.2, label=name)
finite_all = np.concatenate([r["losses"][np.isfinite(r["losses"])] for r in runs.values()])
ax.set_ylim(0.9 * finite_all.min(), 1.3 * runs["SGD-m-LS"]["losses"][0])
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (BCE per image)")
ax.set_title("Autoencoder: loss per epoch")
ax.legend(fontsize=7)

ax = axes[1]
ax.loglog(grid, sgd_finals, "o-", label="SGD-m, final loss")
ax.axhline(ls, color="r", label=f"SGD-m-LS, η = 1/L = 1/{L} (no learning rate)")
ax.axhline(eta1, color="k", ls="-.", label="SGD-m-LS, η = 1")
ax.set_ylim(0.8 * min(ls, sgd_finals.min()), 1.2 * sgd_finals.max())
ax.set_xlabel("learning rate")
ax.set_title("Sensitivity to the learning rate")
ax.legend(fontsize=8)

for ax, (AA, FF, title) in zip(axes[2:], ((A, F, f"SGD-m-LS, η = 1/L = 1/{L} (default)"),
                                         (A1, F1, "SGD-m-LS, η = 1 (per-layer minimiser)"))):
    steps = np.arange(len(AA))
    for l in range(AA.shape[1]):
        ax.semilogy(steps, np.where(FF[:, l] == 0, AA[:, l], np.nan), lw=1, label=block_names[l])
    ax.axhline(best_lr, color="k", ls=":", label=f"best tuned SGD-m lr = {best_lr}")
    ax.set_xlabel("step (gaps: uphill steps skipped)")
    ax.set_ylabel(r"$\alpha_l$")
    ax.set_title(f"Per-layer step sizes: {title}", fontsize=10)
    ax.legend(fontsize=7)
ylim = (min(axes[2].get_ylim()[0], axes[3].get_ylim()[0]), max(axes[2].get_ylim()[1], axes[3].get_ylim()[1]))
axes[2].set_ylim(ylim)                   # same scale: the η = 1 run-away is visible by comparison
axes[3].set_ylim(ylim)
fig.tight_layout()
save(fig, "05_autoencoder_sgd_ls.png")

# %%
fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
xt = digits.x_test.reshape(len(digits.x_test), -1)[:8]
recon = 1 / (1 + np.exp(-net.forward(runs["SGD-m-LS"]["params"], xt)))
for i in range(8):
    axes[0, i].imshow(xt[i].reshape(16, 16), cmap="gray_r", vmin=0, vmax=1)
    axes[1, i].imshow(recon[i].reshape(16, 16), cmap="gray_r", vmin=0, vmax=1)
    axes[0, i].axis("off")
    axes[1, i].axis("off")
axes[0, 0].set_title("test images", loc="left", fontsize=9)
axes[1, 0].set_title("SGD-m-LS reconstructions", loc="left", fontsize=9)
save(fig, "05_reconstructions.png")

# %% [markdown]
# ## What to remember
#
# * SGD-m-LS replaces the learning rate by $\eta$ times an exact, per-layer
#   minimiser of the local quadratic model; untuned, with $\eta = 1/L$, it
#   ties the best tuned SGD-m on the short run and beats it on the long one.
# * $\eta = 1$, each layer's own minimiser, overshoots when all layers move
#   together: on the long run its step sizes run away and the loss stalls on a
#   plateau. $\eta = 1/L$ is the multiplier Theorem 1 makes safe for any coupling
#   on a quadratic (here a measured heuristic, not a theorem).
# * The step sizes differ across layers by large factors and change over
#   training — a schedule no single learning rate can express.
# * With momentum, a layer's direction sometimes points uphill on the current
#   batch; what to do then is a safeguard (ours: skip the layer for that step).
# * The update is invariant to the scale of the loss.
