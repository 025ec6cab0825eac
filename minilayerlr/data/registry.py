"""One entry point to get any data set by name."""
from __future__ import annotations

import inspect
from typing import Dict, Union

from .containers import GraphDataset, ImageDataset
from .digits import synthetic_digits
from .graphs import contextual_sbm
from .loaders import load_cifar10, load_cora, load_mnist
from .mnist5k import load_mnist5k

# name -> (function, takes a seed, needs files)
_REGISTRY: Dict[str, tuple] = {
    "digits": (synthetic_digits, True, False),
    "csbm": (contextual_sbm, True, False),
    "mnist5k": (load_mnist5k, False, False),
    "mnist": (load_mnist, False, True),
    "cifar10": (load_cifar10, False, True),
    "cora": (load_cora, True, True),
}
DATASET_NAMES = tuple(_REGISTRY)


def load_dataset(name: str, data_dir=None, seed: int = 0,
                 **sizes) -> Union[ImageDataset, GraphDataset]:
    """Generate or load a data set by name.

    Args:
        name: one of ``DATASET_NAMES``: "digits" (synthetic_digits), "csbm"
            (contextual_sbm), "mnist5k" (load_mnist5k, the 5,000 real MNIST
            digits shipped in the package), "mnist" (load_mnist), "cifar10"
            (load_cifar10), "cora" (load_cora).
        data_dir: directory with the files; required for the real data sets,
            must be None for the generated and embedded ones.
        seed: seed of the generator, or of the split for "cora"; MNIST, the
            embedded MNIST (a fixed split) and CIFAR-10 ignore it.
        **sizes: other keyword arguments of the underlying function, e.g.
            ``num_train=1000`` or ``num_nodes=500``.

    Returns:
        ImageDataset or GraphDataset.

    Raises:
        ValueError: unknown name (lists the valid ones), a misplaced or missing
            data_dir, or a keyword the underlying function does not take.
    """
    if not isinstance(name, str) or name.lower() not in _REGISTRY:
        raise ValueError(f"unknown dataset name {name!r}; valid names: "
                         f"{', '.join(DATASET_NAMES)}")
    name = name.lower()
    function, takes_seed, needs_files = _REGISTRY[name]
    accepted = set(inspect.signature(function).parameters) - {"data_dir", "seed"}
    unknown = sorted(set(sizes) - accepted)
    if unknown:
        raise ValueError(f"{name!r} does not take {', '.join(unknown)}; "
                         f"it takes: {', '.join(sorted(accepted))}")
    kwargs = dict(sizes)
    if takes_seed:
        kwargs["seed"] = seed
    if needs_files:
        if data_dir is None:
            raise ValueError(f"data_dir is required for dataset {name!r}")
        kwargs.setdefault("min_classes", 2)  # a training set of one class is refused, naming its file
        return function(data_dir, **kwargs)
    if data_dir is not None:
        raise ValueError(f"data_dir must be None for generated dataset {name!r}")
    return function(**kwargs)
