"""Data: embedded generated data sets and loaders for local real data files.

Generated (seeded, no download): ``synthetic_digits`` (images) and
``contextual_sbm`` (graph). Embedded real data: ``load_mnist5k`` (5,000 MNIST digits). Real, from files the user already has:
``load_mnist`` (IDX), ``load_cifar10`` (binary batches) and ``load_cora``.
``load_dataset(name, ...)`` reaches all of them by name. No pickle anywhere.
"""
from .containers import GraphDataset, ImageDataset
from .digits import synthetic_digits
from .graphs import contextual_sbm
from .loaders import load_cifar10, load_cora, load_mnist, read_idx
from .mnist5k import load_mnist5k
from .registry import DATASET_NAMES, load_dataset

__all__ = [
    "DATASET_NAMES",
    "GraphDataset",
    "ImageDataset",
    "contextual_sbm",
    "load_cifar10",
    "load_cora",
    "load_dataset",
    "load_mnist",
    "load_mnist5k",
    "read_idx",
    "synthetic_digits",
]
