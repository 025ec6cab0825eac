"""One evaluation of a network on a batch: loss, gradient, and exact curvature.

``Evaluation`` runs the forward pass and the backward pass once and keeps what
every second-order query needs: each layer's cache (its input and what the
backward rule reuses) and the gradient g_k = ∂f/∂y_k at each layer's output.
From these, without touching the data again:

* ``hvp(v)``: H v by forward-over-reverse (Pearlmutter's R-operator): push the
  tangent v forward (``tangent``), turn it into ∇²ℓ ẏ at the loss, and run the
  derivative of the backward pass (``backward_tangent``). With ``kind="ggn"``
  the backward tangent ignores ẋ and ṗ, which leaves Jᵀ ∇²ℓ J v.
* ``layer_curvature(d)``: q_l = d_lᵀ H_ll d_l for all blocks in one sweep (see
  ``curvature``).
* ``block_hessian(i)``, ``hessian()``: dense matrices, one stacked HVP pass per
  chunk of basis vectors, refused above ``max_size`` parameters.

The loss is f(θ) = L(F(θ, x), y), L the mean over examples (``losses``).
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from . import curvature
from .tree import as_stack, block_indices, check_tree
from .validation import as_generator, check_int, check_memory

DEFAULT_MAX_SIZE = 4096


class Evaluation:
    """Loss, gradient and curvature oracles of a network at (params, x, y).

    Attributes:
        loss: float, f(θ) on the batch (a number; the loss *function* is ``loss_fn``).
        grads: ∇f(θ), same structure as params.
        output: network output F(θ, x), shape (N, ...).
        blocks: positions in the layer list of the layers with parameters;
            block i of every per-block array is layer ``blocks[i]``.

    Read-only attributes the curvature sweeps (``minilayerlr.curvature``) and
    the tutorials read; changing them would make the oracles disagree with
    ``loss`` and ``grads``:

        layers: the network's layers, in order.
        params: the parameters θ of this evaluation.
        loss_fn: the :class:`~minilayerlr.losses.Loss` L.
        caches: ``caches[k]`` is what layer k's ``forward`` kept (its input, …).
        output_grads: ``output_grads[k]`` = ∂f/∂y_k at layer k's output.
        loss_cache: what ``loss_fn.forward`` kept (outputs, targets).
    """

    def __init__(self, layers, loss_fn, params, x, targets):
        self.layers = list(layers)
        self.loss_fn = loss_fn
        self.params = params
        self.blocks: List[int] = block_indices(params)
        caches = []
        h = x
        for layer, p in zip(self.layers, params):
            h, cache = layer.forward(p, h)
            caches.append(cache)
        self.output = h
        self.loss, self.loss_cache = loss_fn.forward(h, targets)
        g = loss_fn.backward(self.loss_cache)
        n = len(self.layers)
        output_grads, grads = [None] * n, [None] * n
        for k in reversed(range(n)):
            output_grads[k] = g
            # the gradient with respect to the data x itself is never needed
            g, grads[k] = self.layers[k].backward(params[k], caches[k], g, input_grad=k > 0)
        self.caches, self.output_grads, self.grads = caches, output_grads, grads

    # -- Hessian-vector products -----------------------------------------------------
    def hvp_stacked(self, vs, kind: str = "hessian", down_to: int = 0):
        """H V for K directions at once.

        Args:
            vs: like params, each array with a leading axis of K directions
                (K, *shape); empty dicts (or missing layers) mean zero.
            kind: "hessian" or "ggn" (Gauss-Newton Jᵀ ∇²ℓ J).
            down_to: the backward sweep stops at this layer; the rows of H V
                for earlier layers are left out (``{}``). Dense blocks use it:
                H_ll needs no rows below layer l.
        Returns:
            like params, each array (K, *shape), ``{}`` below ``down_to``.
        """
        if kind not in curvature.EXACT_KINDS:
            raise ValueError(f"kind: expected one of {curvature.EXACT_KINDS}, got {kind!r}")
        if not isinstance(vs, (list, tuple)) or not all(isinstance(v, dict) for v in vs):
            raise ValueError(f"vs: expected a list of per-layer dicts of stacked directions, "
                             f"got {type(vs).__name__}")
        if isinstance(down_to, bool) or not isinstance(down_to, (int, np.integer)) \
                or not 0 <= down_to < len(self.layers):
            raise ValueError(f"down_to: expected a layer index in [0, {len(self.layers)}), got {down_to!r}")
        x_dots, t = [], None
        for layer, p, cache, v in zip(self.layers, self.params, self.caches, vs):
            x_dots.append(t)
            t = layer.tangent(p, cache, t, v or None)
        if t is None:
            raise ValueError("v: every block of the direction is empty")
        g_dot = self.loss_fn.hvp(self.loss_cache, t)
        out = [{} for _ in self.layers]
        for k in reversed(range(down_to, len(self.layers))):
            exact = kind == "hessian"
            x_dot = x_dots[k] if exact else None
            p_dot = (vs[k] or None) if exact else None
            g_dot, out[k] = self.layers[k].backward_tangent(
                self.params[k], self.caches[k], x_dot, p_dot, self.output_grads[k], g_dot,
                input_grad=k > down_to)
        return out

    def hvp(self, v, kind: str = "hessian"):
        """Hessian-vector product H v (kind "ggn": Gauss-Newton G v), same structure as params.

        H = ∇²f(θ) exactly, by forward-over-reverse differentiation
        (Pearlmutter 1994, section 3).
        """
        check_tree(v, "v", like=self.params)
        out = self.hvp_stacked([as_stack(e) for e in v], kind)
        return [{n: a[0] for n, a in e.items()} for e in out]

    # -- layer-wise quadratic forms --------------------------------------------------
    def layer_curvature(self, d, kind: str = "hessian", seed=None, coupling: bool = False):
        """q_l = d_lᵀ H_ll d_l for every block l, shape (L,), in ``blocks`` order.

        Args:
            d: direction, same structure as params.
            kind: "hessian" (exact ∇²f blocks), "ggn" (exact Gauss-Newton blocks),
                "sign_hvp" (unbiased, one HVP with random signs), "naive_hvp"
                (d_lᵀ(H d)_l, biased: for demonstration), "mc_fisher" (unbiased
                Monte-Carlo estimate of the Gauss-Newton form).
            seed: int, numpy Generator or None (fresh entropy) for the
                estimators; ignored by the exact kinds.
            coupling: exact kinds only: also return the Gauss-Newton Gram of the
                blocks' directions, C_lk = (J d_l)ᵀ ∇²ℓ (J d_k), shape (L, L), from
                the same sweep (no extra pass). Then the result is (q, C).

        Example: one sweep gives every block's quadratic form, equal to
        d_lᵀ H_ll d_l with the dense block of the Hessian:

        >>> import numpy as np, minilayerlr as mll
        >>> net = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)],
        ...                      loss=mll.SoftmaxCrossEntropy())
        >>> params = net.init(0)
        >>> x, labels = np.random.default_rng(0).standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
        >>> ev = net.evaluate(params, x, labels)
        >>> q = ev.layer_curvature(ev.grads)              # d = g: one q_l per block
        >>> q.shape
        (2,)
        >>> g0 = mll.flatten([ev.grads[0]])
        >>> bool(np.isclose(q[0], g0 @ ev.block_hessian(0) @ g0, rtol=1e-12))
        True
        """
        check_tree(d, "d", like=self.params)
        if seed is not None and not isinstance(seed, np.random.Generator):
            as_generator("seed", seed)  # checked for every kind, also those that ignore it
        if not self.blocks:  # {} for every layer: nothing to take a curvature of
            raise ValueError("d: the network has no parameters, so it has no blocks and no "
                             "layer curvature")
        if not isinstance(coupling, (bool, np.bool_)):
            raise ValueError(f"coupling: expected True or False, got {coupling!r}")
        if kind in curvature.EXACT_KINDS:
            return curvature.exact_layer_curvature(self, d, gauss_newton=kind == "ggn",
                                                   coupling=bool(coupling))
        if coupling and kind in curvature.KINDS:
            raise ValueError(f"coupling: only the exact kinds {curvature.EXACT_KINDS} give the "
                             f"Gauss-Newton Gram, got kind {kind!r}")
        if kind == "sign_hvp":
            return curvature.sign_hvp_curvature(self, d, as_generator("seed", seed, allow_none=True))
        if kind == "naive_hvp":
            return curvature.naive_hvp_curvature(self, d)
        if kind == "mc_fisher":
            return curvature.mc_fisher_curvature(self, d, as_generator("seed", seed, allow_none=True))
        raise ValueError(f"kind: expected one of {list(curvature.KINDS)}, got {kind!r}")

    # -- dense matrices --------------------------------------------------------------
    def _dense(self, layer_ids, kind, max_size, chunk):
        if kind not in curvature.EXACT_KINDS:
            raise ValueError(f"kind: expected one of {curvature.EXACT_KINDS}, got {kind!r}")
        if max_size is not None:
            check_int("max_size", max_size)
        check_int("chunk", chunk)
        sizes = [(k, name, self.params[k][name].shape) for k in layer_ids for name in self.params[k]]
        total = sum(int(np.prod(shape)) for _, _, shape in sizes)
        if max_size is not None and total > max_size:
            raise ValueError(
                f"max_size: the matrix would be {total}x{total} ({total} parameters) but max_size="
                f"{max_size}; pass a larger max_size to build it anyway")
        dtype = self.output.dtype
        # the matrix, plus per chunk the basis, its tangents through the network and the columns
        check_memory("max_size", f"a dense {total}x{total} matrix",
                     float(total) * total * dtype.itemsize + 4.0 * min(chunk, total) * total * 8)
        H = np.empty((total, total), dtype=dtype)
        for start in range(0, total, chunk):
            rows = np.arange(start, min(start + chunk, total))
            basis = np.zeros((len(rows), total), dtype=dtype)  # rows start.. of the identity, (K, total)
            basis[np.arange(len(rows)), rows] = 1
            vs = [{} for _ in self.layers]
            offset = 0
            for k, name, shape in sizes:
                size = int(np.prod(shape))
                vs[k][name] = basis[:, offset:offset + size].reshape((-1,) + shape)
                offset += size
            hv = self.hvp_stacked(vs, kind, down_to=min(layer_ids))
            columns = np.concatenate(
                [hv[k][name].reshape(basis.shape[0], -1) for k, name, _ in sizes], axis=1)
            H[:, start:start + chunk] = columns.T
        return H

    def block_hessian(self, i: int, kind: str = "hessian", max_size: Optional[int] = DEFAULT_MAX_SIZE,
                      chunk: int = 64) -> np.ndarray:
        """Dense H_ll of block i (position in ``blocks``), shape (P_l, P_l).

        Rows and columns follow ``flatten`` order within the block (W then b,
        C order). kind "ggn" gives the Gauss-Newton block.
        """
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < len(self.blocks):
            raise ValueError(f"i: expected a block position in [0, {len(self.blocks)}), got {i!r}")
        return self._dense([self.blocks[i]], kind, max_size, chunk)

    def hessian(self, kind: str = "hessian", max_size: Optional[int] = DEFAULT_MAX_SIZE,
                chunk: int = 64) -> np.ndarray:
        """Dense Hessian (or Gauss-Newton matrix) of all parameters in ``flatten`` order, (P, P)."""
        return self._dense(self.blocks, kind, max_size, chunk)

    def gauss_newton(self, max_size: Optional[int] = DEFAULT_MAX_SIZE) -> np.ndarray:
        """Dense Gauss-Newton matrix Jᵀ ∇²ℓ J, (P, P)."""
        return self.hessian("ggn", max_size)

    # -- K-FAC factors ---------------------------------------------------------------
    def kronecker_factors(self, seed=None):
        """Per-block K-FAC factors (A, G) with A ⊗ G ≈ the Gauss-Newton block (see ``kronecker``).

        Args:
            seed: int, numpy Generator or None for the sampled targets.
        Returns:
            list with one dict {"A": input factor, "G": output factor} per block.
        """
        from .kronecker import kronecker_factors
        return kronecker_factors(self, seed)
