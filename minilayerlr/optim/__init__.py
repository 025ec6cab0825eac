"""Optimizers: base first-order methods and layer-wise adaptive step sizes.

Pure optax-style optimizers: ``state = opt.init(params)``, then
``updates, state = opt.update(grads, state, params, curvature=oracle)`` and
``params = apply_updates(params, updates)``. See ``layerwise`` for the
paper's method (arXiv 2305.13664) and the safeguards we chose.
"""
from minilayerlr.optim.base import SGD, Adam, AdamState, AdamW, SGDState, step_diagnostics
from minilayerlr.optim.layerwise import (CURVATURE_KINDS, FALLBACK_NAMES, FALLBACK_RULES,
                                         SEEDED_KINDS, LayerwiseStepSize, LayerwiseStepSizeState)
from minilayerlr.optim.presets import GDLS, rule_v01
from minilayerlr.tree import (apply_updates, block_dot, block_indices, block_sq_norm,
                              scale_blocks, tree_map)

__all__ = [
    "SGD", "SGDState", "Adam", "AdamW", "AdamState",
    "LayerwiseStepSize", "LayerwiseStepSizeState", "GDLS", "rule_v01",
    "FALLBACK_NAMES", "FALLBACK_RULES", "CURVATURE_KINDS", "SEEDED_KINDS",
    "apply_updates", "tree_map", "block_indices", "block_dot", "block_sq_norm",
    "scale_blocks", "step_diagnostics",
]

# The peers (issue 11): tuning-free first-order methods and the global-step ablation.
from minilayerlr.optim.dog import DoG, DoGState, LDoG
from minilayerlr.optim.global_step import GlobalStepSize, GlobalStepSizeState
from minilayerlr.optim.prodigy import Prodigy, ProdigyState
from minilayerlr.optim.sls import SLS, SLSState

__all__ += [
    "DoG", "LDoG", "DoGState", "Prodigy", "ProdigyState", "SLS", "SLSState",
    "GlobalStepSize", "GlobalStepSizeState",
]

# The peers (issue 11): second-order methods.
from minilayerlr.optim.adahessian import AdaHessian, AdaHessianState
from minilayerlr.optim.kfac import KFAC, KFACState
from minilayerlr.optim.shampoo import Shampoo, ShampooState

__all__ += [
    "KFAC", "KFACState", "Shampoo", "ShampooState", "AdaHessian", "AdaHessianState",
]

# The horizon (issue 24): a learning-rate schedule that wraps any method.
from minilayerlr.optim.schedule import SCHEDULES, Scheduled, ScheduledState, schedule_multiplier

__all__ += ["Scheduled", "ScheduledState", "SCHEDULES", "schedule_multiplier"]
