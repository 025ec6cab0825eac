# %% [markdown]
# # Tutorial 3 — Exact block Hessians of an MLP, a CNN and a GCN
#
# The layer-wise method uses only the **diagonal blocks** $H_{ll}$ of the
# Hessian, one per layer, and ignores the blocks $H_{lm}$ that couple layers.
# How much does it throw away? Here we build the full Hessian $H$ and the
# Gauss-Newton matrix $G = J^\top\nabla^2\ell\,J$ of three small real networks
# exactly (one basis vector per column, through `ev.hessian()`), and look at
#
# * heatmaps of $H$ with the block boundaries drawn in;
# * the spectrum of each diagonal block;
# * a fact that falls out of the engine's derivation: in a **ReLU** network the
#   diagonal blocks of $H$ and $G$ coincide;
# * the **coupling constant** $c = \lambda_{\max}(B^{-1/2} G B^{-1/2})$ with
#   $B = \operatorname{blockdiag}(G_{ll})$, the number that decides which global
#   scale $\eta$ the theory allows (Tutorial 4): $1\le c\le L$, and $c = 1$ iff
#   the layers are uncoupled.

# %%
from minilayerlr.testing.notebook import start_tutorial

TUTORIAL = start_tutorial("tutorial03")  # picks the plot backend: before pyplot
FAST, OUT, save = TUTORIAL.fast, TUTORIAL.out, TUTORIAL.save

import matplotlib.pyplot as plt
import numpy as np

import minilayerlr as mll
from minilayerlr import testing
from minilayerlr.training import train


# %% [markdown]
# ## 1. Three small networks on generated data
#
# Sizes are ours, chosen so that each Hessian has a few hundred rows: an
# 8×8-pixel version of the synthetic digits for the MLP and the CNN, and a
# contextual stochastic-block-model graph for the GCN. We first train each for a
# few steps with plain SGD-momentum so we look at a Hessian away from the
# random initialisation (where the last layer dominates everything).

# %%
digits = mll.data.synthetic_digits(num_train=200 if FAST else 1000, num_test=10, size=8, seed=0)
xi, yi = digits.x_train, digits.y_train
graph = mll.data.contextual_sbm(num_nodes=200 if FAST else 400, num_classes=4, num_features=16,
                                p_in=0.08, p_out=0.01, train_per_class=15, num_val=40, seed=0)
adj = mll.normalized_adjacency(graph.edges, graph.num_nodes)
WIDTH = 6 if FAST else 10

models = {
    "MLP (tanh)": (mll.Sequential([mll.Dense(64, WIDTH), mll.Tanh(), mll.Dense(WIDTH, WIDTH), mll.Tanh(),
                                   mll.Dense(WIDTH, 10)],
                                  loss=mll.SoftmaxCrossEntropy()), xi.reshape(len(xi), -1), yi, 50),
    "CNN (ReLU)": (mll.Sequential([mll.Conv2d(1, 4, 3, padding=1), mll.ReLU(), mll.MaxPool2d(2),
                                   mll.Conv2d(4, 4, 3, padding=1), mll.ReLU(), mll.MaxPool2d(2),
                                   mll.Flatten(), mll.Dense(16, 10)], loss=mll.SoftmaxCrossEntropy()),
                   xi[:40] if FAST else xi, yi[:40] if FAST else yi, 20),
    "GCN (ReLU)": (mll.Sequential([mll.GraphConv(16, 8, adj), mll.ReLU(), mll.GraphConv(8, 4, adj)],
                                  loss=mll.SoftmaxCrossEntropy(mask=np.asarray(graph.train_mask))),
                   np.asarray(graph.features), np.asarray(graph.labels), None),
}

results, ev_x, ev_y = {}, {}, {}
for name, (net, x, y, batch) in models.items():
    params = net.init(seed=0)
    run = train(net, params, mll.optim.SGD(lr=0.05, momentum=0.9), x, y,
                             epochs=3 if FAST else 10, batch_size=batch, progress=False)
    ev = net.evaluate(run.params, x, y)       # the whole (small) data set: an exact full-batch Hessian
    ev_x[name], ev_y[name] = x, y
    H, G = ev.hessian(), ev.gauss_newton()
    sizes = [sum(a.size for a in run.params[k].values()) for k in net.blocks]
    results[name] = dict(net=net, ev=ev, H=H, G=G, sizes=sizes, cuts=np.concatenate([[0], np.cumsum(sizes)]))
    print(f"{name}: {H.shape[0]} parameters in blocks {sizes}, loss {ev.loss:.3f}")

# %% [markdown]
# ## 2. Sanity: symmetric, blocks consistent, $G\succeq 0$
#
# `ev.block_hessian(i)` builds block $i$ alone (only its own basis vectors); it
# must equal the corresponding slice of the full matrix. $H$ is symmetric;
# $G$ is positive semi-definite because all our losses are convex in the output.

# Every tolerance below is a rounding bound: an entry of $H$ or $G$, or a
# quadratic form over a block, is a sum of at most $P$ products computed in
# floating point, so two orders of evaluation (another BLAS kernel, another
# thread count, one block alone instead of the whole matrix) can differ by
# about $P\,u$ times the size of the terms, $u$ the unit round-off (Higham,
# *Accuracy and Stability of Numerical Algorithms*, §3.1: $|\Delta| \le
# \gamma_P\,|x|^\top|y|$). An eigenvalue computed by `eigvalsh` is off by
# at most about $P\,u\,\|G\|_2$ (backward stability).

# %%
u = np.finfo(float).eps
for name, r in results.items():
    H, G, cuts = r["H"], r["G"], r["cuts"]
    P = H.shape[0]
    r["rounding"] = P * u                            # γ_P, relative to the size of the terms
    assert np.allclose(H, H.T, rtol=0, atol=r["rounding"] * np.abs(H).max())
    i = len(r["sizes"]) - 1 if FAST else 0           # one block is enough to make the point
    s = slice(cuts[i], cuts[i + 1])
    assert np.allclose(r["ev"].block_hessian(i), H[s, s], rtol=0, atol=r["rounding"] * np.abs(H[s, s]).max())
    assert np.allclose(r["ev"].block_hessian(i, kind="ggn"), G[s, s], rtol=0,
                       atol=r["rounding"] * np.abs(G[s, s]).max())
    eig_G = np.linalg.eigvalsh(G)
    assert eig_G[0] >= -r["rounding"] * eig_G[-1], name
    # independent references: H v against a finite difference of the gradient
    # (smooth nets only: with ReLU and max-pooling over many examples, a step of
    # 6e-6 can cross a kink, where the gradient jumps), and the one-sweep
    # q_l = d_l'H_ll d_l against the dense blocks
    ev, rng = r["ev"], np.random.default_rng(1)
    v = testing.random_like(ev.params, rng)
    if testing.is_smooth(r["net"]):
        fd = testing.check_hvp(lambda q: r["net"].evaluate(q, ev_x[name], ev_y[name]).grads,
                               mll.unflatten(H @ mll.flatten(v), v), ev.params, v)
        assert fd.passed, (name, str(fd))
    vf = mll.flatten(v)
    q_dense = [vf[a:b] @ H[a:b, a:b] @ vf[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    # the forms may cancel (H is indefinite): hold them to the size of their terms, |v|ᵀ|H_ll||v|
    q_terms = [np.abs(vf[a:b]) @ np.abs(H[a:b, a:b]) @ np.abs(vf[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    assert np.all(np.abs(ev.layer_curvature(v) - q_dense) <= r["rounding"] * np.array(q_terms))
print("symmetry, block slices, G >= 0, H against finite differences, q_l against dense blocks: ok")

# %% [markdown]
# ## 3. Heatmaps
#
# Colour shows $\operatorname{sign}(H_{ij})\,|H_{ij}|^{1/2}$ (a square root so
# that small entries stay visible); black lines separate the layers' blocks
# (each block holds the layer's $W$ then $b$). The diagonal blocks are what the
# layer-wise step uses; everything off the block diagonal is coupling.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 5))
for ax, (name, r) in zip(axes, results.items()):
    S = np.sign(r["H"]) * np.sqrt(np.abs(r["H"]))
    lim = np.abs(S).max()
    ax.imshow(S, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    for c in r["cuts"][1:-1]:
        ax.axhline(c - 0.5, color="k", lw=0.7)
        ax.axvline(c - 0.5, color="k", lw=0.7)
    ax.set_title(f"{name}: Hessian, {r['H'].shape[0]} parameters")
    ax.set_xticks(r["cuts"][:-1] + np.diff(r["cuts"]) / 2, [str(i) for i in range(len(r["sizes"]))])
    ax.set_xlabel("block (layer with parameters)")
    ax.set_yticks([])
save(fig, "03_hessian_heatmaps.png")

# %% [markdown]
# ## 4. Spectra of the diagonal blocks
#
# Each block has its own curvature scale, often orders of magnitude apart —
# which is the whole case for one step size per layer: a single learning rate
# must be small enough for the stiffest block and is then too small for the
# others. Blocks of $H$ may have negative eigenvalues (the loss is not convex
# in the weights); blocks of $G$ never do.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for ax, (name, r) in zip(axes, results.items()):
    for i in range(len(r["sizes"])):
        s = slice(r["cuts"][i], r["cuts"][i + 1])
        eig = np.sort(np.linalg.eigvalsh(r["H"][s, s]))[::-1]
        ax.plot(np.arange(1, len(eig) + 1), eig, ".-", ms=3, label=f"block {i} ({r['sizes'][i]} params)")
        r.setdefault("block_lmax", []).append(eig[0])
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xscale("log")
    ax.set_xlabel("eigenvalue index")
    ax.set_title(f"{name}: spectra of $H_{{ll}}$")
    ax.legend(fontsize=8)
save(fig, "03_block_spectra.png")
for name, r in results.items():
    print(f"{name}: largest eigenvalue per block", np.array2string(np.array(r["block_lmax"]), precision=4))

# %% [markdown]
# ## 5. In a ReLU network $H_{ll} = G_{ll}$
#
# The engine computes $q_l = d_l^\top H_{ll}d_l$ by starting a tangent at layer
# $l$ and pushing it forward. Along the way a layer adds a second-order term
# only if it is *curved in the quantity the tangent enters through*. Dense,
# convolution and graph-convolution layers are linear in their input (for fixed
# weights) and linear in their weights, and a tangent that starts at layer $l$
# enters layer $l$ through its weights and every later layer through its input
# only. ReLU has $\sigma''=0$ almost everywhere. So in a ReLU network nothing
# but the loss's curvature is left: $H_{ll}=G_{ll}$ exactly — while the
# *off-diagonal* blocks $H_{lm}$ still differ from $G_{lm}$ (they contain
# $\bar y$-weighted products of two different layers' weights). In the tanh MLP
# the diagonal blocks differ too, through $\langle \bar y, \tanh''\odot\dot s^2\rangle$.

# %%
for name, r in results.items():
    H, G, cuts = r["H"], r["G"], r["cuts"]
    diag_gap = max(np.abs(H[cuts[i]:cuts[i + 1], cuts[i]:cuts[i + 1]] - G[cuts[i]:cuts[i + 1], cuts[i]:cuts[i + 1]]).max()
                   for i in range(len(r["sizes"]))) / np.abs(H).max()
    full_gap = np.abs(H - G).max() / np.abs(H).max()
    r["diag_gap"], r["full_gap"] = diag_gap, full_gap
    print(f"{name}: max |H - G| on diagonal blocks {diag_gap:.1e}, anywhere {full_gap:.1e} (relative)")
    # equal up to rounding (γ_P, relative to max |H|), or different by far more than rounding can explain
    if "ReLU" in name:
        assert diag_gap <= r["rounding"] and full_gap > 1e3 * r["rounding"]
    else:
        assert diag_gap > 1e3 * r["rounding"]

# %% [markdown]
# ## 6. How strongly are the layers coupled?
#
# For a positive definite matrix $A$ with block diagonal $B$ the coupling
# constant is
#
# $$c = \lambda_{\max}\big(B^{-1/2}AB^{-1/2}\big) = \max_{v\neq 0}\frac{v^\top A v}{v^\top B v},
#   \qquad 1\le c\le L .$$
#
# (The upper bound: $\|\sum_l u_l\|_A \le \sum_l\|u_l\|_A\le\sqrt L(\sum_l\|u_l\|_A^2)^{1/2}$.)
# For a quadratic, Theorem 1 of `docs/theory.md` shows the idealized
# layer-wise step converges for $\eta<2/c$; $c=L$ means the per-layer steps
# can all push the loss up along the same coupled direction at once.
#
# A network's Hessian is indefinite, so we measure $c$ on the Gauss-Newton
# matrix. $G$ can be singular, so we add a tiny damping $\delta I$ with
# $\delta = 10^{-6}\operatorname{tr}(G)/P$ (our choice; it only affects
# directions with essentially zero curvature) and use
# `mll.theory.coupling_constant`, which solves the generalized eigenproblem
# $Av=\lambda Bv$.

# %%
# %% [markdown]
# How exact can $c$ be? The damping makes $B$ badly conditioned on purpose
# ($\kappa(B)$ up to about $10^6 P$), and a computed eigenvalue of the pencil
# $Av=\lambda Bv$ carries an error of about
# $p(P)\,u\,\|A\|_2\|B^{-1}\|_2$ ($u$ the unit round-off; LAPACK Users'
# Guide, §4.10.1, error bounds for the symmetric-definite generalized
# eigenproblem). We take $p(P)=P$ (a worst case for the Cholesky reduction):
# that is the tolerance of every assert on $c$ below, so they hold whichever
# BLAS kernel or thread count computes them.

# %%
def pencil_error_bound(A, B):
    """P·u·‖A‖₂·‖B⁻¹‖₂: how far a computed eigenvalue of A v = λ B v may sit from the exact one."""
    eig_B = np.linalg.eigvalsh(B)
    return A.shape[0] * np.finfo(A.dtype).eps * np.linalg.norm(A, 2) / eig_B[0]


for name, r in results.items():
    G = r["G"]
    delta = 1e-6 * np.trace(G) / G.shape[0]
    A = G + delta * np.eye(G.shape[0])
    B = mll.theory.block_diagonal(A, r["sizes"])
    r["c"] = mll.theory.coupling_constant(A, r["sizes"])
    r["c_error"] = pencil_error_bound(A, B)
    L = len(r["sizes"])
    print(f"{name}: c = {r['c']:.3f}  (L = {L}; 1 <= c <= L; theory's safe scale 1/c = {1 / r['c']:.3f}; "
          f"rounding bound {r['c_error']:.1e})")
    assert 1 - r["c_error"] <= r["c"] <= L + r["c_error"]
    assert r["c"] > 1.05   # real layers are coupled
    if G.shape[0] < 300:   # (one is enough) the block-diagonal part alone has c = 1 exactly
        c_B = mll.theory.coupling_constant(B, r["sizes"])
        print(f"{name}: c(B) - 1 = {c_B - 1:.1e}, allowed {pencil_error_bound(B, B):.1e} "
              f"(kappa(B) = {np.linalg.cond(B):.1e})")
        assert abs(c_B - 1) <= pencil_error_bound(B, B)

# %% [markdown]
# ### Why $c$ comes out so close to $L$: the network's own parameters are a witness
#
# $c$ near $L$ means there is a direction $v=(u_1,\dots,u_L)$ whose blocks all
# move the output the *same* way, $J_1u_1\approx J_2u_2\approx\dots$, so that
# $v^\top Gv = \|\sum_l J_lu_l\|^2_\Lambda \approx L^2\|J_1u_1\|_\Lambda^2$ while
# $v^\top B v = \sum_l\|J_lu_l\|^2_\Lambda\approx L\|J_1u_1\|^2_\Lambda$.
# ReLU networks hand us one: scaling one layer's weights by $a$ scales the output
# by $a$ (positive homogeneity; the biases of *later* layers spoil it a little),
# so by Euler's theorem $J_l\theta_l \approx y$ for every layer $l$, and
# $v = \theta$ is a witness. Tanh is nearly linear for small pre-activations, so
# the MLP behaves the same way. This is *our* observation, measured here, not a
# claim of the paper.
#
# What the step rule feels is the coupling along the direction it actually
# moves: the ratio $r(u) = u^\top G u / \sum_l u_l^\top G_{ll} u_l$ for the
# update $u_l = \alpha_l g_l$ of the idealized layer-wise step. It is
# bounded by $c$; depending on the network and the point it can sit well below
# $c$ or come close to it (compare the fast and the full run).

# %%
def coupling_ratio(A, sizes, u):
    cuts = np.concatenate([[0], np.cumsum(sizes)])
    blockwise = sum(u[a:b] @ A[a:b, a:b] @ u[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
    return float(u @ A @ u / blockwise)


for name, r in results.items():
    ev, G = r["ev"], r["G"]
    theta = mll.flatten(ev.params)
    g = mll.flatten(ev.grads)
    gblocks = [g[a:b] for a, b in zip(r["cuts"][:-1], r["cuts"][1:])]
    alphas = [gb @ gb / (gb @ r["H"][a:b, a:b] @ gb) for gb, a, b in zip(gblocks, r["cuts"][:-1], r["cuts"][1:])]
    step = np.concatenate([a_ * gb for a_, gb in zip(alphas, gblocks)])
    r["r_theta"], r["r_step"] = coupling_ratio(G, r["sizes"], theta), coupling_ratio(G, r["sizes"], step)
    print(f"{name}: c = {r['c']:.3f}, r(theta) = {r['r_theta']:.3f}, r(layer-wise step) = {r['r_step']:.3f}")
    # r(u) ≤ c exactly; computed, each side carries its rounding: the pencil bound on c, γ_P on the ratio
    allowed = r["c"] + r["c_error"] + r["rounding"] * r["c"]
    assert r["r_step"] <= allowed and r["r_theta"] <= allowed
    if "ReLU" in name:
        assert r["r_theta"] > 0.8 * len(r["sizes"])     # the homogeneity witness

# %%
fig, ax = plt.subplots(figsize=(7, 3.8))
names = list(results)
xs = np.arange(len(names))
ax.bar(xs - 0.2, [results[n]["r_theta"] for n in names], 0.2, color="tab:orange", label=r"$r(\theta)$ (homogeneity witness)")
ax.bar(xs, [results[n]["r_step"] for n in names], 0.2, color="tab:green", label=r"$r(\alpha\odot g)$ (the step taken)")
ax.set_xticks(xs - 0.2, names)
ax.bar(xs - 0.4, [results[n]["c"] for n in names], 0.2, color="tab:blue", label="measured c (Gauss-Newton)")
ax.hlines([len(results[n]["sizes"]) for n in names], xs - 0.55, xs + 0.15, colors="k", label="upper bound L")
ax.axhline(1, color="gray", lw=0.8, ls="--")
ax.set_ylabel("coupling")
ax.set_title("Layer coupling after a few training steps")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
save(fig, "03_coupling_constants.png")

# %% [markdown]
# ## What to remember
#
# * Diagonal blocks of a network's Hessian live on very different scales:
#   that is what a per-layer step size adapts to.
# * In ReLU networks (conv, dense, graph conv) $H_{ll}=G_{ll}$: exact Hessian
#   and Gauss-Newton step sizes agree; they differ only with curved activations.
# * Layers are genuinely coupled: $c$ is well above 1 — close to $L$ for
#   (nearly) homogeneous networks, because of the rescaling witness; the
#   coupling along the step actually taken is at most that, sometimes much less. The theory
#   of Tutorial 4 needs $\eta<2/c$; the plain rule uses $\eta=1$, which is safe
#   while $c<2$ and not guaranteed beyond.
