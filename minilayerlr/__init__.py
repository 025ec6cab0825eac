"""minilayerlr: layer-wise adaptive step sizes with an exact curvature engine.

A NumPy reference implementation of Bahamou & Goldfarb, "Layer-wise Adaptive
Step-Sizes for Stochastic First-Order Methods for Deep Learning",
arXiv 2305.13664. Subpackages: ``optim`` (SGD, AdamW, LayerwiseStepSize,
GDLS), ``theory`` (BlockQuadratic and rate bounds), ``data`` (generated and
local data sets), ``training`` (the training loop), ``experiments`` (the paper's
comparison; imported on demand), ``testing`` (derivative checkers; imported on
demand).
"""
from . import _startup

_startup.begin()  # Ctrl-C during the imports below: one line, not a traceback

from . import data, optim, theory  # noqa: E402
from .evaluation import Evaluation
from .layers import (AvgPool2d, Conv2d, Dense, Flatten, GraphConv, Layer, MaxPool2d, ReLU,
                     Sigmoid, Softplus, Tanh, normalized_adjacency)
from .losses import Loss, MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .optim import apply_updates
from .training import History, TrainResult, load_checkpoint, train
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
