"""Layers: hyper-parameters in the object, parameters as plain dicts of arrays."""
from .activations import Activation, ReLU, Sigmoid, Softplus, Tanh
from .base import Layer
from .conv import Conv2d
from .dense import Dense
from .graph import GraphConv, normalized_adjacency
from .pooling import AvgPool2d, Flatten, MaxPool2d

__all__ = ["Activation", "AvgPool2d", "Conv2d", "Dense", "Flatten", "GraphConv", "Layer",
           "MaxPool2d", "ReLU", "Sigmoid", "Softplus", "Tanh", "normalized_adjacency"]
