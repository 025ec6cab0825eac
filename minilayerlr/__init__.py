"""minilayerlr: layer-wise adaptive step sizes with an exact curvature engine.

A NumPy reference implementation of Bahamou & Goldfarb, "Layer-wise Adaptive
Step-Sizes for Stochastic First-Order Methods for Deep Learning",
arXiv 2305.13664.
"""
from .evaluation import Evaluation
from .layers import (AvgPool2d, Conv2d, Dense, Flatten, GraphConv, Layer, MaxPool2d, ReLU,
                     Sigmoid, Softplus, Tanh, normalized_adjacency)
from .losses import Loss, MeanSquaredError, SigmoidCrossEntropy, SoftmaxCrossEntropy
from .model import Sequential
from .tree import flatten, tree_map, unflatten

__version__ = "0.1.0"
