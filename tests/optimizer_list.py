"""The one list of optimizer configurations that the generic tests run, as optax's
``alias_test.py`` runs its one list: purity and dtypes (test_float32), same seed same run and
resume (test_train), named errors (test_validation_api), state checks (test_reliability_state)
and reducing the loss from the defaults (test_peers_networks, test_optim_networks).

A new optimizer gets one entry here and every generic test runs it. An entry is a factory
(a fresh optimizer per call) and, for the state checks, the state fields whose values feed
the next step (dotted for a wrapper's base state) and those of them that are never negative.
"""
from typing import Callable, NamedTuple, Tuple

import numpy as np

from minilayerlr.optim import (GDLS, KFAC, SGD, SLS, AdaHessian, Adam, AdamW, DoG, GlobalStepSize,
                               LayerwiseStepSize, LDoG, Prodigy, Shampoo)

_RULE_FIELDS = ("avg_numerators", "avg_denominators", "avg_curvatures", "avg_sq_norms",
                "reference_step_sizes")


class Entry(NamedTuple):
    make: Callable
    feeds: Tuple[str, ...] = ()
    nonnegative: Tuple[str, ...] = ()
    #: False where float32 parameters get float64 updates or buffers (a known gap)
    keeps_float32: bool = True
    #: a peer at its defaults: the loss-reduction test trains the MLP, CNN and GCN with it
    peer_at_defaults: bool = False


OPTIMIZERS = {
    # the base methods (numbers given as NumPy scalars too)
    "sgd": Entry(lambda: SGD(lr=0.1)),
    "sgd-m": Entry(lambda: SGD(lr=0.1, momentum=0.9, weight_decay=1e-3), ("momentum",)),
    "sgd-nesterov": Entry(lambda: SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "sgd-numpy-hyper": Entry(lambda: SGD(lr=np.float64(0.1), momentum=np.float64(0.9),
                                         weight_decay=np.float64(1e-3))),
    "adam": Entry(lambda: Adam(lr=np.float64(0.01), b1=np.float64(0.9)), ("mu", "nu"), ("nu",)),
    "adamw": Entry(AdamW, ("mu", "nu"), ("nu",)),
    # the method: every curvature kind, the EMA, the idealized GDLS
    "sgd-ls": Entry(lambda: LayerwiseStepSize(SGD(), scale=0.5)),
    "sgd-m-ls": Entry(lambda: LayerwiseStepSize(SGD(momentum=0.9, weight_decay=1e-3)),
                      ("base_state.momentum",) + _RULE_FIELDS + ("step_sizes", "numerators",
                                                                 "curvatures", "denominators"),
                      ("avg_sq_norms", "reference_step_sizes", "step_sizes")),
    "sgd-m-ls-ema": Entry(lambda: LayerwiseStepSize(SGD(momentum=0.9), ema=0.7, scale=0.5)),
    "adamw-ls": Entry(lambda: LayerwiseStepSize(AdamW()), ("base_state.mu", "base_state.nu"),
                      ("base_state.nu",)),
    "adamw-ls-ggn": Entry(lambda: LayerwiseStepSize(AdamW(), curvature_kind="ggn")),
    "sgd-m-ls-mc-fisher": Entry(lambda: LayerwiseStepSize(SGD(momentum=0.9), curvature_kind="mc_fisher",
                                                          seed=1)),
    "adamw-ls-mc-fisher": Entry(lambda: LayerwiseStepSize(AdamW(), ema=0.5, scale=0.5,
                                                          curvature_kind="mc_fisher", seed=3)),
    "sgd-m-ls-sign-hvp": Entry(lambda: LayerwiseStepSize(SGD(momentum=0.9), scale=0.5, damping=0.1,
                                                         curvature_kind="sign_hvp", seed=5)),
    "gdls": Entry(GDLS, ("reference_step_sizes", "avg_sq_norms"), ("reference_step_sizes", "avg_sq_norms")),
    # the first-order peers and the global-step ablation
    "dog": Entry(DoG, ("initial_params", "max_distance", "grad_sq_sum"), ("max_distance", "grad_sq_sum"),
                 peer_at_defaults=True),
    "dog-averaged": Entry(lambda: DoG(averaging=8.0), peer_at_defaults=True),
    "ldog": Entry(LDoG, peer_at_defaults=True),
    "ldog-averaged": Entry(lambda: LDoG(averaging=8.0), ("average", "max_distance", "grad_sq_sum"),
                           ("max_distance", "grad_sq_sum")),
    "prodigy": Entry(Prodigy, ("initial_params", "mu", "nu", "s", "numerator", "d", "d_max", "d_hat"),
                     ("nu", "d", "d_max"), peer_at_defaults=True),
    "prodigy-wd": Entry(lambda: Prodigy(weight_decay=0.1)),
    "prodigy-l2": Entry(lambda: Prodigy(weight_decay=0.1, decouple=False)),
    "sls": Entry(SLS, ("step_size",), ("step_size",), peer_at_defaults=True),
    "sls-epochs": Entry(lambda: SLS(batches_per_epoch=4)),
    "global-sgd-m": Entry(lambda: GlobalStepSize(SGD(momentum=0.9)),
                          ("base_state.momentum",) + _RULE_FIELDS, ("avg_sq_norms", "reference_step_sizes"),
                          peer_at_defaults=True),
    "global-adamw": Entry(lambda: GlobalStepSize(AdamW()), peer_at_defaults=True),
    # the second-order peers: inverses and roots every few steps, so a resume lands between refreshes
    # (K-FAC and Shampoo precondition with float64 matrices, and cast the step to the
    # parameters' dtype)
    "kfac": Entry(lambda: KFAC(lr=0.03, inverse_every=3, seed=2)),
    "shampoo": Entry(lambda: Shampoo(lr=0.3, update_every=2)),
    "adahessian": Entry(lambda: AdaHessian(lr=0.05, seed=4)),
    "adahessian-wd": Entry(lambda: AdaHessian(weight_decay=0.1)),
}
#: the names, sorted, for hypothesis and parametrize
NAMES = sorted(OPTIMIZERS)
#: the entries that keep float32 parameters, updates and buffers in float32
FLOAT32_NAMES = sorted(name for name, entry in OPTIMIZERS.items() if entry.keeps_float32)
#: the peers at their defaults
PEERS_AT_DEFAULTS = [name for name, entry in OPTIMIZERS.items() if entry.peer_at_defaults]
#: the entries whose state fields the state checks corrupt
WITH_STATE_FIELDS = sorted(name for name, entry in OPTIMIZERS.items() if entry.feeds)


def make(name: str):
    """A fresh optimizer of entry ``name``."""
    return OPTIMIZERS[name].make()


def batch_size(opt, mini_batch):
    """``None`` (the whole set) for a full-batch method (GDLS), else ``mini_batch``."""
    return None if getattr(opt, "full_batch", False) else mini_batch

