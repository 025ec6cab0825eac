"""Shared problems and helpers for the tests of the peers (DoG, LDoG, Prodigy, SLS, GlobalStepSize).

The hand-unrolled references in the tests work on flat vectors: ``flat(tree)``
and ``block_slices(tree)`` give the vector and the coordinates of each block
in the order of ``minilayerlr.tree.flatten``.
"""
from __future__ import annotations

import copy

import numpy as np

import minilayerlr as mll
from minilayerlr.optim.oracles import required_oracles
from minilayerlr.tree import block_indices, flatten, unflatten


def flat(tree):
    """The tree as one vector (``minilayerlr.tree.flatten``)."""
    return flatten(tree)


def block_slices(tree):
    """Slices of the flat vector, one per block (layers with parameters), in block order."""
    slices, start = [], 0
    for k, entry in enumerate(tree):
        size = sum(v.size for v in entry.values())
        if k in block_indices(tree):
            slices.append(slice(start, start + size))
        start += size
    return slices


def tiny_network(seed=0, n=5):
    """A two-block MLP with squared error, its batch and initial params."""
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(3, 4), mll.Tanh(), mll.Dense(4, 2)], mll.MeanSquaredError())
    x, y = rng.standard_normal((n, 3)), rng.standard_normal((n, 2))
    return net, x, y, net.init(seed)


def grad_at(net, x, y, like, vector):
    """∇f at the flat point ``vector`` (the engine's gradient, trusted here), as a flat vector."""
    return flat(net.evaluate(unflatten(vector, like), x, y).grads)


def oracles_for(opt, net, params, x, y):
    """Exactly the oracles ``opt`` declares, for the batch (x, y) at ``params``."""
    ev = net.evaluate(params, x, y)
    supply = {"curvature": ev.layer_curvature, "hvp": ev.hvp,
              "loss": lambda p: net.loss_value(p, x, y), "kronecker_factors": ev.kronecker_factors}
    return ev, {name: supply[name] for name in required_oracles(opt)}


def run_network(opt, net, params, x, y, steps):
    """``steps`` full-batch steps of ``opt``; returns (params, state, [states])."""
    state, states = opt.init(params), []
    for _ in range(steps):
        ev, oracles = oracles_for(opt, net, params, x, y)
        updates, state = opt.update(ev.grads, state, params, **oracles)
        params = mll.apply_updates(params, updates)
        states.append(state)
    return params, state, states


def assert_trees_equal(a, b):
    """Same structure and the same bits in every array."""
    assert len(a) == len(b)
    for ea, eb in zip(a, b):
        assert list(ea) == list(eb)
        for k in ea:
            assert np.array_equal(ea[k], eb[k]), k


def assert_pure(opt, net, x, y, steps=2):
    """``update`` leaves grads, params and the old state untouched, and repeats bit for bit."""
    from minilayerlr.training.checkpoint import encode_tree
    params = net.init(0)
    state = opt.init(params)
    for _ in range(steps):
        ev, oracles = oracles_for(opt, net, params, x, y)
        grads_copy, params_copy = copy.deepcopy(ev.grads), copy.deepcopy(params)
        arrays_before = {}
        spec_before = encode_tree(state, "s", arrays_before)
        arrays_before = {k: v.copy() for k, v in arrays_before.items()}
        updates, new_state = opt.update(ev.grads, state, params, **oracles)
        again, again_state = opt.update(ev.grads, state, params, **oracles)
        assert_trees_equal(ev.grads, grads_copy)
        assert_trees_equal(params, params_copy)
        arrays_after = {}
        assert encode_tree(state, "s", arrays_after) == spec_before
        for key in arrays_before:
            assert np.array_equal(arrays_after[key], arrays_before[key]), key
        assert_trees_equal(updates, again)
        a, b = {}, {}
        assert encode_tree(new_state, "s", a) == encode_tree(again_state, "s", b)
        assert all(np.array_equal(a[k], b[k]) for k in a)
        params, state = mll.apply_updates(params, updates), new_state
