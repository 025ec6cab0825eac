"""minilayerlr: layer-wise adaptive step sizes with an exact curvature engine.

A NumPy reference implementation of Bahamou & Goldfarb, "Layer-wise Adaptive
Step-Sizes for Stochastic First-Order Methods for Deep Learning",
arXiv 2305.13664. Subpackages: ``optim`` (SGD, AdamW, LayerwiseStepSize,
GDLS), ``theory`` (BlockQuadratic and rate bounds), ``data`` (generated and
local data sets), ``training`` (the training loop; its checkpoint code is imported
on first use of ``load_checkpoint`` or of a checkpointed run), ``experiments`` (the paper's
comparison; imported on demand), ``testing`` (derivative checkers; imported on
demand).
"""
from . import _startup

_startup.begin()  # Ctrl-C during the imports below: one line; end() restores the hook

from . import data, optim, theory  # noqa: E402
from .evaluation import Evaluation
from .layers import (AvgPool2d, Conv2d, Dense, Flatten, GraphConv, Layer, MaxPool2d, ReLU,
                     Sigmoid, Softplus, Tanh, normalized_adjacency)
from .losses import Loss, MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .optim import apply_updates
from .training import History, TrainResult, train
from .tree import flatten, tree_map, unflatten

__version__ = "0.2.0"
_startup.end()

__all__ = [
    "AvgPool2d", "Conv2d", "Dense", "Evaluation", "Flatten", "GraphConv", "History", "Layer", "Loss",
    "MaxPool2d", "MeanSquaredError", "ReLU", "Sequential", "Sigmoid", "SigmoidCrossEntropy",
    "Softplus", "SoftmaxCrossEntropy", "Tanh", "apply_updates", "data", "flatten",
    "load_checkpoint", "normalized_adjacency", "optim", "theory", "train", "TrainResult",
    "tree_map", "unflatten",
]


def __getattr__(name):
    """``load_checkpoint``, imported on first use (PEP 562): ``import minilayerlr`` loads the
    engine and the optimizers, not the checkpoint code."""
    if name == "load_checkpoint":
        from .training.checkpoint import load_checkpoint
        return load_checkpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
