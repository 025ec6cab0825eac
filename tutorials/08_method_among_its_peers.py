# %% [markdown]
# # Tutorial 8 — The method among its peers
#
# The layer-wise rule $\alpha_l = \eta\,g_l^\top d_l / d_l^\top H_{ll}d_l$ is
# one way of using curvature to choose a step. Its peers use other ways, or
# none at all:
#
# | method | what it knows about curvature | where it comes from | tuned? |
# |---|---|---|---|
# | **SGD-m-LS**, **AdamW-LS** (ours) | one number per layer, $q_l = d_l^\top H_{ll} d_l$, exact | one forward-over-reverse sweep for all layers (Tutorial 3) | no ($\eta = 1/L$) |
# | **K-FAC** (Martens & Grosse 2015; KFC for conv) | the Fisher block of each layer as $A_l \otimes G_l$ to precondition; the exact Fisher along two directions to choose step and momentum | layer inputs (A) and back-propagated gradients for targets *sampled* from the model (G): one extra backward pass; two Fisher-vector products; the loss twice every 5 steps to adapt the damping | initial damping |
# | **Shampoo** (Gupta, Koren & Singer 2018) | no second derivative: sums of gradient outer products $\sum G G^\top$, $\sum G^\top G$ per weight matrix (AdaGrad's statistics, one per dimension) | the gradients themselves | learning rate |
# | **Prodigy** (Mishchenko & Defazio 2023) | none: one scalar $d$, an estimate of the distance to the solution, scales Adam | gradients and the distance travelled | no |
# | **DoG** (Ivgi, Hinder & Carmon 2023) | none: $\eta_t = \bar r_t/\sqrt{\sum_i\|g_i\|^2}$ | gradients and the distance travelled | no |
#
# We train all six on the embedded real MNIST digits (the `cnn` task of
# `minilayerlr compare`), look at what each one's curvature object is, count
# what each step costs, and draw the per-layer stability picture of SGD-m-LS.
# K-FAC and Shampoo get the middle value of their registry grids (the value
# `compare --quick` runs), not a tuned one; LS, Prodigy and DoG run at their
# defaults. One seed: an anecdote, not a verdict — `minilayerlr compare
# --seeds K` is the experiment. Network size, data size and epochs are our choices.

# %%
from minilayerlr.testing.notebook import start_tutorial

TUTORIAL = start_tutorial("tutorial08")  # picks the plot backend: before pyplot
FAST, OUT, save = TUTORIAL.fast, TUTORIAL.out, TUTORIAL.save

import dataclasses

import matplotlib.pyplot as plt
import numpy as np

import minilayerlr as mll
from minilayerlr.experiments import build_task, get_method, run_one
from minilayerlr.experiments.cost import calibrate, gradient_equivalents
from minilayerlr.experiments.stability import block_lambda_max
from minilayerlr.optim.kfac import as_matrix

# %% [markdown]
# ## 1. The task
#
# `build_task("cnn")`: two 3×3 convolutions with ReLU and 2×2 max-pooling, then
# a dense layer to 10 classes, softmax cross-entropy, mini-batches of 100, on
# the 28×28 MNIST digits shipped in the package (4,000 training, 1,000 test
# images; the fast mode keeps 400 and 80).

# %%
task = build_task("cnn", size=400 if FAST else None)
EPOCHS = 2 if FAST else 5
net, names = task.net, task.block_names
p0 = net.init(seed=0)
sizes = [sum(a.size for a in p0[k].values()) for k in net.blocks]
print(task.description, task.sizes)
print("blocks:", ", ".join(f"{n} ({s} parameters)" for n, s in zip(names, sizes)))
assert task.x_train.shape[1:] == (1, 28, 28) and 0 <= task.x_train.min() and task.x_train.max() <= 1
assert set(np.unique(task.y_train)) == set(range(10))
xb, yb = task.x_train[:task.batch_size], task.y_train[:task.batch_size]
ev = net.evaluate(p0, xb, yb)
g = ev.grads

# %% [markdown]
# ## 2. What curvature each method uses
#
# ### Layer-wise step sizes: one exact number per layer
#
# At the first step SGD-m's direction is the gradient ($m_1 = g$), the moving
# averages are the raw values, and the rule is $\alpha_l = \eta\,g_l^\top g_l/q_l$
# with $q_l = g_l^\top H_{ll} g_l$. We check the sweep's $q_l$ against the dense
# block on a probe of 10 images (the first convolution has 80 parameters, so
# its $H_{00}$ is cheap to form), and the step against the formula.

# %%
probe = net.evaluate(p0, xb[:10], yb[:10])
H00 = probe.block_hessian(0)
g0 = mll.flatten([probe.grads[net.blocks[0]]])
q_probe = probe.layer_curvature(probe.grads)
assert np.isclose(q_probe[0], g0 @ H00 @ g0, rtol=1e-10)
sgd_ls = mll.optim.LayerwiseStepSize(mll.optim.SGD(momentum=0.9))
updates, state = sgd_ls.update(g, sgd_ls.init(p0), p0, curvature=ev.layer_curvature)
q = ev.layer_curvature(g)
eta = sgd_ls.multiplier(len(net.blocks))
gg = np.array([sum(np.vdot(g[k][n], g[k][n]) for n in g[k]) for k in net.blocks])
assert np.allclose(state.step_sizes, eta * gg / q, rtol=1e-12)
for i, k in enumerate(net.blocks):
    for n in g[k]:
        assert np.allclose(updates[k][n], -state.step_sizes[i] * g[k][n], rtol=1e-12, atol=0)
print("q_l =", np.array2string(q, precision=4), " alpha_l =", np.array2string(state.step_sizes, precision=4))

# %% [markdown]
# ### K-FAC: Kronecker factors from a sampled-target backward pass
#
# `ev.kronecker_factors(seed)` draws targets from the model's own predictive
# distribution, back-propagates the resulting loss gradient once, and returns per
# block $A$ (inputs with a trailing 1 for the bias; for a convolution, its
# patches summed over the output locations) and $G$ (the sampled output
# gradients). By construction both are Gram matrices — symmetric, positive
# semi-definite — and $A$'s bias entry is the mean of $1\cdot 1$ over examples,
# times the number of output locations $|T|$ for a convolution.
#
# What is *exact* about them: on a single example, a Dense block's Gauss-Newton
# block is $\tilde a\tilde a^\top \otimes \mathbb E[\delta\delta^\top]$, so
# $D^\top(A\otimes G)D = (\tilde a^\top D\,\delta)^2$ is one Monte-Carlo Fisher
# draw of $q_l$ — the same number `layer_curvature(kind="mc_fisher")` gives with
# the same seed (Tutorial 7 shows that draw is unbiased). On a batch, K-FAC
# replaces $\sum_n \tilde a_n\tilde a_n^\top\otimes\delta_n\delta_n^\top$ by
# $(\frac1N\sum_n \tilde a_n\tilde a_n^\top)\otimes(\sum_n\delta_n\delta_n^\top)$
# (inputs and output gradients taken as independent), and a convolution's
# locations as independent too: an approximation whose size we measure below.

# %%
def kron_form(entry, factors, conv):
    """D̃ᵀ(A ⊗ G)D̃ for Dense (W̃ = [W; b], kron(A, G)) or D̃ᵀ(G ⊗ A)D̃ for Conv2d (W̃ = [W, b])."""
    D, A, G = as_matrix(entry), factors["A"], factors["G"]
    return float(np.sum(D * (G @ D @ A))) if conv else float(np.sum(D * (A @ D @ G)))


is_conv = [p0[k]["W"].ndim == 4 for k in net.blocks]  # a convolution's W is (O, C, k, k)
factors = ev.kronecker_factors(seed=0)
for i, (f, conv) in enumerate(zip(factors, is_conv)):
    for M in (f["A"], f["G"]):
        assert np.allclose(M, M.T, rtol=0, atol=1e-14 * np.abs(M).max())
        w = np.linalg.eigvalsh(M)
        # a Gram matrix: PSD; eigvalsh is backward stable, its error is O(n·ε·‖M‖) (10 for the O)
        assert w.min() >= -10 * M.shape[0] * np.finfo(float).eps * w.max()
    locations = ev.output_grads[net.blocks[i]][0, 0].size if conv else 1
    assert np.isclose(f["A"][-1, -1], locations, rtol=1e-12)
    print(f"{names[i]:16s} A {f['A'].shape}, G {f['G'].shape}, A's bias entry {f['A'][-1, -1]:g}")

one = net.evaluate(p0, xb[:1], yb[:1])
dense = [i for i, conv in enumerate(is_conv) if not conv]
for seed in range(3):
    f1, draw = one.kronecker_factors(seed=seed), one.layer_curvature(one.grads, kind="mc_fisher", seed=seed)
    for i in dense:
        entry = one.grads[net.blocks[i]]
        # r = ãᵀD̃δ two ways; |r| ≤ ‖ã‖‖D̃‖‖δ‖ with ‖ã‖² = tr A, ‖δ‖² = tr G (N = 1), so rounding is
        # relative to that scale, not to r² (which may be tiny by cancellation)
        scale = np.trace(f1[i]["A"]) * np.trace(f1[i]["G"]) * np.sum(as_matrix(entry) ** 2)
        assert abs(kron_form(entry, f1[i], False) - draw[i]) <= 1e-12 * scale

DRAWS = 10 if FAST else 40
forms = np.array([[kron_form(g[k], f, c) for k, f, c in zip(net.blocks, ev.kronecker_factors(seed=s), is_conv)]
                  for s in range(1, DRAWS + 1)])
exact_ggn = ev.layer_curvature(g, kind="ggn")
ratio, ratio_se = forms.mean(0) / exact_ggn, forms.std(0, ddof=1) / np.sqrt(DRAWS) / exact_ggn
for n, r, s in zip(names, ratio, ratio_se):
    print(f"{n:16s} E[gᵀ(A⊗G)g] / gᵀG_ll g = {r:.3f} ± {s:.3f}  (batch of {len(xb)}, {DRAWS} draws)")
far = [n for n, r, s in zip(names, ratio, ratio_se) if abs(r - 1) > 5 * s]
print(f"In this run K-FAC's model misses the exact Gauss-Newton form along g by more than 5 standard errors "
      f"in {', '.join(far) or 'no block'}.")

# %% [markdown]
# ## 3. Training each for a few epochs
#
# `run_one` trains through `minilayerlr.training.train` with the optimizer
# wrapped in a `CountingOptimizer` (every oracle call counted), and for
# SGD-m-LS records $\lambda_{\max}(H_{ll})$ per block at a few epochs (section 5).
# The price of each oracle, as a ratio to one forward + backward pass on a
# batch, is measured once here by `calibrate` and turns the counts into
# *gradient equivalents* (1 per epoch of a plain first-order method).

# %%
prices = calibrate(net, p0, xb, yb, repeat=2 if FAST else 7)
print("oracle price / one gradient:", {k: round(v, 2) for k, v in prices.items()
                                       if k in ("curvature[hessian]", "kronecker_factors")})
lineup = {"SGD-m-LS": ("sgd-ls", None), "AdamW-LS": ("adamw-ls", None),
          "K-FAC": ("kfac", get_method("kfac").grid("cnn", quick=True)[0]),
          "Shampoo": ("shampoo", get_method("shampoo").grid("cnn", quick=True)[0]),
          "Prodigy": ("prodigy", None), "DoG": ("dog", None)}
runs = {}
for label, (name, lr) in lineup.items():
    runs[label] = run_one(task, name, lr, seed=0, epochs=EPOCHS, prices=prices, progress=False,
                          stability=label == "SGD-m-LS")  # α·λ_max(H_ll) is GD's edge: SGD directions only
    r = runs[label]
    print(f"{label:9s} lr {'default' if lr is None else lr:>7}  train loss {r['history']['train_loss'][0]:.3f}"
          f" -> {r['final_train_loss']:.4f}  test accuracy {r['final_metric']:.3f}  ({r['wall_time']:.1f} s)")
    assert r["stop_reason"] is None and r["final_train_loss"] < r["history"]["train_loss"][0]

# %% [markdown]
# What the run shows is printed, not written here: the ranking by final training
# loss after the same epochs, and after the same *work* (the loss each method had
# reached when it had spent as many gradient equivalents as the cheapest one spent
# in all, read off its curve, linearly between epochs). The prices are timed on
# this machine, so the second ranking can move from run to run when two methods
# are close. The sentences about LS are generated from those numbers. Neither
# counts tuning: a user who tunes K-FAC's or Shampoo's rate pays one such run per
# rate of the grid.

# %%
def loss_at(r, axis, budget):
    return float(np.interp(budget, r[axis], r["history"]["train_loss"]))


for r in runs.values():
    r["seconds"] = r["history"]["time"]
budget = {axis: min(r[axis][-1] for r in runs.values()) for axis in ("grad_equivalents", "seconds")}
rank = {"epochs": sorted(runs, key=lambda m: runs[m]["final_train_loss"])}
for axis in budget:
    rank[axis] = sorted(runs, key=lambda m: loss_at(runs[m], axis, budget[axis]))
print(f"ranked by training loss after {EPOCHS} epochs:  ", " < ".join(rank["epochs"]))
print(f"... after {budget['grad_equivalents']:.2f} gradient equivalents:", " < ".join(rank["grad_equivalents"]))
print(f"... after {budget['seconds']:.2f} s of steps:     ", " < ".join(rank["seconds"]))
PEERS = ("K-FAC", "Shampoo", "Prodigy", "DoG")
for ls in ("SGD-m-LS", "AdamW-LS"):
    for axis, what in (("epochs", f"after {EPOCHS} epochs"), ("grad_equivalents", "at equal gradient equivalents")):
        order = rank[axis]
        ahead = [m for m in PEERS if order.index(m) > order.index(ls)]
        behind = [m for m in PEERS if m not in ahead]
        print(f"In this run, {what}, {ls} is ahead of {', '.join(ahead) or 'none of the four peers'}"
              f" and behind {', '.join(behind) or 'none of them'}.")
tuning = {m: len(get_method(lineup[m][0]).grid("cnn")) for m in runs}
print("runs needed to choose the rate (registry grid; 1 = tuning-free):",
      ", ".join(f"{m} {n}" for m, n in tuning.items()))

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
for i, (label, r) in enumerate(runs.items()):
    style = dict(color=f"C{i}", marker="o", ms=3, lw=2.2 if label.endswith("-LS") else 1.2, label=label)
    for ax, x in zip(axes, (r["history"]["epoch"], r["grad_equivalents"], r["seconds"])):
        ax.semilogy(x, r["history"]["train_loss"], **style)
for ax, xlabel in zip(axes, ("epoch", "gradient equivalents (counted oracle calls × price)",
                             "seconds in optimizer steps")):
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3, which="both")
axes[0].legend(fontsize=8)
axes[1].axvline(budget["grad_equivalents"], color="k", ls=":", lw=0.8)
fig.suptitle(f"CNN on the embedded MNIST ({task.sizes['num_train']} images), one seed", fontsize=10)
fig.tight_layout()
save(fig, "08_loss_against_work.png")

# %% [markdown]
# ## 4. What a step costs
#
# Counted, exactly: every LS step makes one call to the curvature oracle, every
# K-FAC step one call for its factors and two Fisher-vector products (one at the
# first step, when there is no previous update) plus two loss evaluations every
# 5 steps (the damping rule), and Shampoo, Prodigy and DoG none — each
# declares its `oracles` and the counts must agree with it. So the gradient
# equivalents of a plain method after $e$ epochs are exactly $e$, an LS run's
# $e(1 + r_{\rm curv})$, with the calibrated prices $r$. What the counts leave
# out shows only in wall time:
# K-FAC's inverses of its damped factors (every 5 steps), Shampoo's inverse
# fourth roots (every step), the update arithmetic. The wall-time column is each
# run's own clock (seconds in optimizer steps per step, over DoG's), taken one run
# after another: on a shared machine it moves from run to run, so it is printed,
# not asserted (`minilayerlr bench` times the steps interleaved).

# %%
steps_per_epoch = -(-len(task.x_train) // task.batch_size)
extra = {"sgd-ls": "curvature[hessian]", "adamw-ls": "curvature[hessian]"}
for label, r in runs.items():
    calls = r["oracle_calls"]
    assert [c.get("steps", 0) for c in calls] == [e * steps_per_epoch for e in range(EPOCHS + 1)]
    if r["method"] == "kfac":  # factors every step; F·Δ, and F·v after the first; f twice per 5 steps
        n = calls[-1]["steps"]
        assert calls[-1] == {"steps": n, "kronecker_factors": n, "hvp": 2 * n - 1, "loss": 2 * (n // 5)}
        assert r["grad_equivalents"] == gradient_equivalents(calls, prices)
        continue
    key = extra.get(r["method"])
    assert set(calls[-1]) == {"steps"} | ({key} if key else set()), (label, calls[-1])
    assert not key or all(c.get(key, 0) == c.get("steps", 0) for c in calls)
    per_epoch = 1 + (prices[key] if key else 0.0)
    assert np.allclose(r["grad_equivalents"], per_epoch * np.arange(EPOCHS + 1), rtol=1e-12, atol=0)
    assert r["grad_equivalents"] == gradient_equivalents(calls, prices)
plain_step = runs["DoG"]["wall_time"] / runs["DoG"]["steps"]


def floats(obj):
    """Numbers an optimizer state holds (arrays, nested lists/dicts, dataclasses)."""
    if isinstance(obj, np.ndarray):
        return obj.size
    if dataclasses.is_dataclass(obj):
        return sum(floats(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    if isinstance(obj, (list, tuple)):
        return sum(floats(v) for v in obj)
    if isinstance(obj, dict):
        return sum(floats(v) for v in obj.values())
    return 1 if isinstance(obj, float) else 0


P = sum(sizes)
cost = {}
print(f"{'method':9s} {'oracles':22s} {'grad. eq. / step':>16s} {'wall / DoG step':>16s} {'state / #params':>16s}")
for label, r in runs.items():
    opt = get_method(r["method"]).build(r["lr"], {}, steps_per_epoch)
    cost[label] = (r["grad_equivalents"][-1] / EPOCHS, r["wall_time"] / r["steps"] / plain_step)
    print(f"{label:9s} {', '.join(opt.oracles) or '(gradient only)':22s} {cost[label][0]:16.2f} {cost[label][1]:16.2f}"
          f" {floats(r['_result'].state) / P:16.2f}")

# %% [markdown]
# The recorded step sizes are the formula. LS's state keeps what the rule used at
# the last step — the averaged $\bar n_l$ and $\bar D_l$ — and the fallback code
# of each block: code 0 means $\alpha_l = \eta\bar n_l/\bar D_l$ (for AdamW-LS then
# divided by $1 + \alpha_l\,\mathrm{wd}$, its implicit decay), 1 a skipped uphill
# step ($\alpha_l = 0$), 2 the block's previous formula step. And Shampoo's
# statistics $L = \sum_s G_sG_s^\top$, $R = \sum_s G_s^\top G_s$ have the same trace,
# $\sum_s\|G_s\|_F^2$ (a dimension of more than 768 keeps only the diagonal, as the
# released code does — the dense layer's 784 inputs here).

# %%
for label in ("SGD-m-LS", "AdamW-LS"):
    st, opt = runs[label]["_result"].state, get_method(runs[label]["method"]).build(None, {}, steps_per_epoch)
    alpha = opt.multiplier(len(net.blocks)) * st.avg_numerators / st.avg_denominators
    wd = opt.base.decoupled_weight_decay
    alpha = alpha / (1 + alpha * wd)
    expected = np.select([st.fallbacks == 0, st.fallbacks == 1], [alpha, 0.0], st.reference_step_sizes)
    assert np.allclose(st.step_sizes, expected, rtol=1e-12, atol=0), label
    assert np.array_equal(runs[label]["history"]["step_sizes"][-1], st.step_sizes.tolist())
    print(f"{label}: last step's alpha_l = {np.array2string(st.step_sizes, precision=4)} "
          f"(fallbacks {st.fallback_names})")
sh = runs["Shampoo"]["_result"].state
for i, k in enumerate(net.blocks):
    for n in sh.left[k]:
        left = sh.left[k][n]
        trace = left.sum() if left.ndim == 1 else np.trace(left)
        if left.ndim == 2:
            assert np.allclose(left, left.T, rtol=1e-12) and np.linalg.eigvalsh(left).min() >= -1e-12 * trace
        if n in sh.right[k]:
            assert np.isclose(trace, np.trace(sh.right[k][n]), rtol=1e-10)
    shape = lambda M: "x".join(map(str, M.shape)) if M.ndim == 2 else f"diagonal of {M.size}"
    print(f"Shampoo statistics of {names[i]:16s}", "; ".join(
        f"{n}: L {shape(sh.left[k][n])}" + (f", R {shape(sh.right[k][n])}" if n in sh.right[k] else "")
        for n in sh.left[k]))

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
labels = list(cost)
x = np.arange(len(labels))
ax.bar(x - 0.2, [cost[m][0] for m in labels], 0.4, label="gradient equivalents per step (counted)")
ax.bar(x + 0.2, [cost[m][1] for m in labels], 0.4, label="wall time per step / DoG's (measured)")
ax.axhline(1, color="k", lw=0.8)
ax.set_xticks(x, labels)
ax.set_title("What one step costs, relative to one gradient")
ax.legend(fontsize=8)
fig.tight_layout()
save(fig, "08_cost_per_step.png")

# %% [markdown]
# ## 5. The per-layer stability picture
#
# On block $l$'s quadratic model alone, gradient descent with a constant step
# $\alpha$ is stable iff $\alpha\,\lambda_{\max}(H_{ll}) < 2$. The harness measures
# $\lambda_{\max}(H_{ll})$ without forming $H_{ll}$: power iteration on
# block-masked HVPs, all blocks in one stacked sweep, 6 iterations, Rayleigh
# quotient (`experiments.stability.block_lambda_max`). First the check against
# the dense block on the probe: a Rayleigh quotient lies between the extreme
# eigenvalues; for a PSD block (all blocks of a ReLU CNN) the quotients of the
# power iterates increase monotonically towards $\lambda_{\max}$, so the
# 6-iteration value is a *lower* bound, and with many iterations and a spectral
# gap it converges.

# %%
lam6 = block_lambda_max(probe, p0)
MANY = 60
lam_many = block_lambda_max(probe, p0, iterations=MANY)
dense_blocks = [0] if FAST else [0, 1]  # block 1 has 1168 parameters: full mode only
for i in dense_blocks:
    w = np.linalg.eigvalsh(H00 if i == 0 else probe.block_hessian(i, max_size=2000))
    tol = 1e-10 * w[-1]                          # rounding of the HVPs, relative to ‖H_ll‖
    assert w[0] >= -tol                          # PSD: H_ll = G_ll in a ReLU network
    assert w[0] - tol <= lam6[i] <= lam_many[i] + tol <= w[-1] + 2 * tol
    # after m iterations, (λ₁ − R)/λ₁ ≤ tan²θ₀·(λ₂/λ₁)^(2(m−1)), θ₀ the start's angle to the top
    # eigenvector; for a Gaussian start tan²θ₀ = χ²_{P−1}/χ²_1 < 1e10 unless the start is
    # almost orthogonal to it (probability ~ sqrt(P·1e-10) < 1e-3 here; the seed is fixed)
    bound = 1e10 * (w[-2] / w[-1]) ** (2 * (MANY - 1))
    if bound < 1e-4:
        assert lam_many[i] >= (1 - 1e-4) * w[-1]
    print(f"{names[i]}: lambda_max dense {w[-1]:.5f}, 6 iterations {lam6[i]:.5f}, {MANY} iterations {lam_many[i]:.5f}"
          f"  (lambda_2/lambda_1 = {w[-2] / w[-1]:.3f})")

# %% [markdown]
# During training the harness measured $\lambda_{\max}(H_{ll})$ on the first
# batch at a few epochs and paired it with the mean $\alpha_l$ of that epoch.
# The last measurement is taken at the final parameters: recomputing it must
# give the same numbers. Two lines in the picture: 2, gradient descent's edge,
# and $2(1+\beta) = 3.8$, the edge of heavy-ball momentum $\beta = 0.9$ with a
# constant step $\alpha$ ($m \leftarrow \beta m + g$, $\theta \leftarrow \theta - \alpha m$ is heavy ball;
# on a quadratic with curvature $\lambda$ it is stable iff $0 < \alpha\lambda < 2(1+\beta)$). Crossing a
# line is not divergence — the rule's step changes every iteration, and the
# Cauchy step $g^\top g/g^\top Hg$ of a quadratic can exceed $2/\lambda_{\max}$ while
# the loss still falls — it says that along the sharpest direction of that layer
# the step overshoots. In the right panel, gaps in a line are steps the rule
# skipped for that layer ($g_l^\top d_l \le 0$ or its moving average $\le 0$: the momentum
# direction pointed uphill).

# %%
rec = runs["SGD-m-LS"]
stab = rec["stability"]
final_probe = net.evaluate(rec["_result"].params, xb, yb)
assert stab[-1]["epoch"] == EPOCHS
assert np.allclose(stab[-1]["lambda_max"], block_lambda_max(final_probe, rec["_result"].params), rtol=1e-12)
S = np.asarray(rec["history"]["step_sizes"])
steps = rec["history"]["steps"]
for m in stab:
    e = m["epoch"]
    assert np.allclose(m["alpha"], S[steps[e - 1]:steps[e]].mean(axis=0), rtol=1e-12)
    assert np.all(np.asarray(m["lambda_max"]) > 0)  # PSD blocks, and the rule took steps
products = np.array([m["product"] for m in stab])
print("alpha_l * lambda_max(H_ll) per measured epoch:\n", np.array2string(products, precision=3))
skipped = np.mean(np.asarray(rec["history"]["fallbacks"]) == 1, axis=0)
print("fraction of steps skipped as uphill (n_l <= 0), per layer:", np.round(skipped, 3))
for l, n in enumerate(names):
    print(f"In this run, {n}: {np.sum(products[:, l] < 2)} of {len(stab)} measurements below 2, "
          f"{np.sum(products[:, l] < 3.8)} below 3.8.")
if products.max() < 1:
    print(f"Every product stays below {products.max():.2g}: each layer's step is at most "
          f"{products.max() / 2:.0%} of the largest stable constant step of plain gradient descent "
          "on that layer's model (a little more: λ_max is estimated from below).")

fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
ax = axes[0]
epochs = [m["epoch"] for m in stab]
for l, n in enumerate(names):
    ax.semilogy(epochs, products[:, l], "o-", color=f"C{l}", label=n)
ax.axhline(2, color="k", ls="--", lw=1, label="2 (gradient descent)")
ax.axhline(3.8, color="k", ls=":", lw=1, label="2(1+β) = 3.8 (heavy ball)")
ax.set_xlabel("epoch")
ax.set_ylabel(r"$\alpha_l\,\lambda_{\max}(H_{ll})$")
ax.set_title("SGD-m-LS: each layer's step against its edge", fontsize=10)
ax.legend(fontsize=8)
ax = axes[1]
for l, n in enumerate(names):
    ax.semilogy(np.arange(1, len(S) + 1), np.where(S[:, l] > 0, S[:, l], np.nan), color=f"C{l}", lw=1, label=n)
    ax.semilogy([steps[e] for e in epochs], 2 / np.array([m["lambda_max"][l] for m in stab]), "v",
                color=f"C{l}", ms=8)
ax.set_xlabel("step")
ax.set_ylabel(r"$\alpha_l$ (lines), $2/\lambda_{\max}(H_{ll})$ (triangles)")
ax.set_title("the step sizes SGD-m-LS chose", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
save(fig, "08_stability.png")

# %% [markdown]
# ## What to remember
#
# * The peers differ in *what* they know about curvature: LS one exact scalar
#   $q_l$ per layer along the step it is about to take; K-FAC a Kronecker model of
#   each layer's Fisher block, exact in expectation only for one example through a
#   Dense layer; Shampoo and the tuning-free Prodigy and DoG no second derivative at all.
# * A step's cost is counted, not guessed: one curvature sweep (LS) or one sampled
#   backward pass (K-FAC) on top of the gradient, priced once per task; what the
#   counts miss (inverses, roots) shows in wall time. Comparing at equal gradient
#   equivalents, not equal epochs, is what makes the comparison fair.
# * The stability picture is a check no loss curve gives: whether each layer's
#   step rides below its own edge. The power-iteration $\lambda_{\max}$ is a lower
#   bound, so a product near the line may be a little above it.
# * Which method wins on this task is in the printed lines of your run, for one
#   seed; `minilayerlr compare --seeds K` repeats it and says better / tie / worse.
