"""The three experiment families, CPU sized: model, data, metric and defaults per task.

| task        | default data                         | model                                         | loss, metric |
|-------------|--------------------------------------|-----------------------------------------------|--------------|
| autoencoder | embedded MNIST, 28×28 (4,000 train)  | MLP 784-256-128-64-16-64-128-256-784, tanh    | sigmoid BCE on pixels; test loss |
| cnn         | embedded MNIST, 10 classes           | 2 × (conv 3×3 + ReLU + max-pool 2) + dense    | softmax CE; test accuracy |
| gcn         | contextual SBM graph (1,200 nodes)   | 2-layer GCN, ReLU, 16 hidden                  | masked softmax CE; test accuracy |

These mirror the paper's three families (Bahamou & Goldfarb, arXiv 2305.13664,
section 5: MNIST autoencoder, CNNs, GCN) at a size a laptop runs in minutes.
The autoencoder is the deep MNIST autoencoder of Hinton & Salakhutdinov
(Science 2006: 784-1000-500-250-30 and its mirror) scaled to a quarter of its
widths and a 16-unit code, with tanh units (our choice). The embedded MNIST
is 5,000 real digits shipped in the package (``minilayerlr.data.load_mnist5k``,
a fixed 4,000 / 1,000 split); ``synthetic`` digits (16×16) serve tests and
``quick``. Real data from local files (``mnist``, ``cifar10``, ``cora``) comes
through ``minilayerlr.data.load_dataset``. Sizes and epochs are our choices,
picked so that ``minilayerlr compare`` fits its time budget with the whole
line-up (docs/cost.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from .. import (Conv2d, Dense, Flatten, GraphConv, MaxPool2d, ReLU, Sequential,
                SigmoidCrossEntropy, SoftmaxCrossEntropy, Tanh, normalized_adjacency)
from ..data import load_dataset
from ..training import dataset_loss
from ..validation import check_memory
from .memory import graph_task_bytes, image_task_bytes
from .stress import regression_parts, tanh_mlp_parts

#: data sets that read the user's files (--data-dir)
FILE_DATA = ("mnist", "cifar10", "cora")
DATA_NAMES = ("mnist5k", "synthetic", "mnist", "cifar10", "cora")
#: autoencoder widths: Hinton & Salakhutdinov's 784-1000-500-250-30 scaled (our choice)
AUTOENCODER_HIDDEN = (256, 128, 64, 16, 64, 128, 256)


@dataclass
class Task:
    """Everything needed to train and evaluate one experiment.

    Attributes:
        name: one of ``TASK_NAMES``.
        description: one line for tables and plot titles.
        net: the Sequential model (its loss holds the train mask for graphs).
        x_train, y_train: what ``train`` iterates over.
        eval_fn: params -> {metric: value} on held-out data.
        metric: the key of eval_fn's result ("test_loss" or "test_accuracy").
        higher_is_better: True for accuracy.
        batch_size: examples per step, None for full batch (graphs).
        epochs: default number of epochs.
        data: the data set's name ("mnist5k", "synthetic", ...).
        block_names: one readable name per parameter block, for legends.
        sizes: the data sizes actually used (recorded in results.json).
    """

    name: str
    description: str
    net: Sequential
    x_train: np.ndarray
    y_train: np.ndarray
    eval_fn: Callable[[list], Dict[str, float]]
    metric: str
    higher_is_better: bool
    batch_size: Optional[int]
    epochs: int
    data: str = "synthetic"
    block_names: List[str] = field(default_factory=list)
    sizes: Dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRecord:
    """One experiment as the harness knows it: its data, how its model is built, its grids.

    Attributes:
        name: the key (``--task NAME``).
        build: ``(data, data_dir, seed, quick, size) -> Task`` (arguments already
            checked): the data, the model and the defaults (epochs, batch size).
        data: the data sets that fit it; the first is its default (``quick``: synthetic).
        lr_grids: tuned method name -> the learning rates ``compare`` tries on this task.
        size_unit: what ``size`` counts ("training images", "nodes").
        size_bytes: ``(data, size) -> bytes``, the estimated peak memory (``memory.py``).
    """

    name: str
    build: Callable[..., Task]
    data: Tuple[str, ...]
    lr_grids: Mapping[str, Tuple[float, ...]]
    size_unit: str = "training images"
    size_bytes: Callable[[str, int], float] = image_task_bytes


def _check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _block_names(net: Sequential) -> List[str]:
    return [net.layers[k].block_label(k) for k in net.blocks]


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def _images(data: str, data_dir, seed: int, size: Optional[int], quick: bool):
    """Image data set; size = training images (test: a fifth, >= 10)."""
    if data == "synthetic":
        num_train = size or (1000 if quick else 6000)
        num_test = max(num_train // 5, 10) if size else (250 if quick else 1000)
        return load_dataset("digits", seed=seed, num_train=num_train, num_test=num_test)
    if data == "mnist5k":
        kwargs = {"num_train": size, "num_test": min(max(size // 5, 10), 1000)} if size else {}
        return load_dataset("mnist5k", **kwargs)
    kwargs = {"num_train": size, "num_test": max(size // 5, 10)} if size else {}
    return load_dataset(data, data_dir=data_dir, **kwargs)


def default_data(task: str, quick: bool = False) -> str:
    """The data set of ``task`` when none is named (synthetic digits for quick runs)."""
    return "synthetic" if quick else TASKS[_check_choice("task", task, TASK_NAMES)].data[0]


def check_task_args(name: str, *, data: Optional[str] = None, data_dir=None,
                    quick: bool = False, size: Optional[int] = None) -> str:
    """Check ``build_task``'s arguments without building anything; returns the data set's name.

    ``run_compare`` calls it for every task before building the first, so that
    no task is built when another's arguments are wrong.
    """
    record = TASKS[_check_choice("task", name, TASK_NAMES)]
    data = default_data(name, quick) if data is None else data
    _check_choice("data", data, DATA_NAMES)
    if data not in record.data:
        fits = [t for t in TASK_NAMES if data in TASKS[t].data]
        raise ValueError(f"data: {data} does not fit task {name}; it works with {' or '.join(fits)}")
    if data in FILE_DATA and data_dir is None:
        raise ValueError(f"data_dir: --data {data} reads local files; pass --data-dir PATH")
    if data not in FILE_DATA and data_dir is not None:
        raise ValueError("data_dir: only data read from files (--data mnist|cifar10|cora) takes it")
    if data_dir is not None and not Path(data_dir).is_dir():  # its files: the loader's to check
        raise ValueError(f"data_dir: {data_dir} is not a folder")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 20:
            raise ValueError(f"size: expected an integer >= 20, got {size!r}")
        if data == "mnist5k" and size > 4000:
            raise ValueError(f"size: the embedded MNIST has 4000 training images, got {size}")
        if data == "cora":
            raise ValueError("size: cannot shrink a real graph (--data cora)")
        check_memory("size", f"{name} with {size} {record.size_unit}", record.size_bytes(data, size))
    return data


def build_task(name: str, *, data: Optional[str] = None, data_dir=None, seed: int = 0,
               quick: bool = False, size: Optional[int] = None) -> Task:
    """Build task ``name`` on data set ``data``.

    Args:
        name: one of ``TASK_NAMES``.
        data: None for the task's default (``default_data``: the embedded
            MNIST for autoencoder and cnn, the contextual SBM for gcn,
            synthetic digits when ``quick``), "mnist5k", "synthetic", or a data
            set read from files that fits the task: "mnist" or "cifar10" for
            autoencoder/cnn, "cora" for gcn.
        data_dir: directory with the data files (required for those, refused otherwise).
        seed: seed of the generated data (and of the Cora split); the embedded
            MNIST split is fixed.
        quick: synthetic data by default, smaller, fewer epochs (a smoke run).
        size: override the data size: training images (autoencoder, cnn; the
            test set gets a fifth) or graph nodes (gcn, synthetic only);
            refused when its estimated memory is more than this machine has.

    Returns:
        Task.

    Raises:
        ValueError: unknown name, data that does not fit the task, bad size.
        FileNotFoundError: missing data files.
    """
    data = check_task_args(name, data=data, data_dir=data_dir, quick=quick, size=size)
    return TASKS[name].build(data, data_dir, seed, quick, size)


def _task(parts: dict) -> Task:
    """A stress task (``stress.py``) from its fields, with its blocks named."""
    return Task(block_names=_block_names(parts["net"]), **parts)


def _image_sizes(ds) -> Dict[str, int]:
    return {"num_train": int(len(ds.x_train)), "num_test": int(len(ds.x_test))}


def _autoencoder_task(ds, data: str, quick: bool) -> Task:
    x = ds.x_train.reshape(len(ds.x_train), -1)
    xt = ds.x_test.reshape(len(ds.x_test), -1)
    d = x.shape[1]
    widths = [d, *((128, 64, 16, 64, 128) if quick else AUTOENCODER_HIDDEN), d]
    layers = []
    for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Dense(a, b))
        if k < len(widths) - 2:
            layers.append(Tanh())
    net = Sequential(layers, loss=SigmoidCrossEntropy())  # logits out; σ is in the loss
    return Task(
        name="autoencoder",
        description=f"MLP autoencoder {'-'.join(map(str, widths))} (tanh, sigmoid BCE) on {data} images",
        net=net, x_train=x, y_train=x, data=data,
        eval_fn=lambda p: {"test_loss": dataset_loss(net, p, xt, xt)},
        metric="test_loss", higher_is_better=False, batch_size=min(100, len(x)),
        epochs=4 if quick else 8, block_names=_block_names(net), sizes=_image_sizes(ds))


def _cnn_task(ds, data: str, quick: bool) -> Task:
    c, h, w = ds.image_shape
    if h % 4 or w % 4:
        raise ValueError(f"data: the cnn needs image sides divisible by 4, got {h}×{w}")
    net = Sequential([
        Conv2d(c, 8, 3, padding=1), ReLU(), MaxPool2d(2),
        Conv2d(8, 16, 3, padding=1), ReLU(), MaxPool2d(2),
        Flatten(), Dense(16 * (h // 4) * (w // 4), ds.num_classes),
    ], loss=SoftmaxCrossEntropy())
    xt, yt = ds.x_test, ds.y_test

    def eval_fn(p):
        # chunks of 250: im2col of larger chunks leaves the caches and runs ~3x slower
        logits = np.concatenate([net.forward(p, xt[i:i + 250]) for i in range(0, len(xt), 250)])
        return {"test_accuracy": _accuracy(logits, yt)}

    return Task(
        name="cnn", description=f"CNN conv3×3({c}→8)+ReLU+maxpool, conv3×3(8→16)+ReLU+maxpool, "
                                f"dense→{ds.num_classes}; softmax CE, on {data} images",
        net=net, x_train=ds.x_train, y_train=ds.y_train, eval_fn=eval_fn, data=data,
        metric="test_accuracy", higher_is_better=True, batch_size=min(100, len(ds.x_train)),
        epochs=2 if quick else 3, block_names=_block_names(net), sizes=_image_sizes(ds))


def _gcn_task(data: str, data_dir, seed: int, quick: bool, size: Optional[int]) -> Task:
    if data == "synthetic" and size is not None:
        # keep the split proportions of the default graph (80 labelled of 1200)
        g = load_dataset("csbm", seed=seed, num_nodes=size, num_val=size // 6,
                         train_per_class=max(1, min(20, size // 60)))
    elif data == "synthetic":
        g = load_dataset("csbm", seed=seed)
    else:
        g = load_dataset("cora", data_dir=data_dir, seed=seed)
    adjacency = normalized_adjacency(g.edges, g.num_nodes)
    hidden = 16
    net = Sequential([GraphConv(g.features.shape[1], hidden, adjacency), ReLU(),
                      GraphConv(hidden, g.num_classes, adjacency)],
                     loss=SoftmaxCrossEntropy(mask=np.asarray(g.train_mask)))
    x, labels, test = np.asarray(g.features), np.asarray(g.labels), np.asarray(g.test_mask)
    return Task(
        name="gcn",
        description=f"2-layer GCN {x.shape[1]}-{hidden}-{g.num_classes} (ReLU, masked softmax CE) "
                    f"on {'a contextual SBM graph' if data == 'synthetic' else data}",
        net=net, x_train=x, y_train=labels, data=data,
        eval_fn=lambda p: {"test_accuracy": _accuracy(net.forward(p, x)[test], labels[test])},
        metric="test_accuracy", higher_is_better=True, batch_size=None,
        epochs=50 if quick else 200, block_names=_block_names(net),
        sizes={"num_nodes": int(g.num_nodes), "num_edges": int(g.num_edges),
               "num_train": int(np.sum(g.train_mask)), "num_test": int(np.sum(test))})


def _on_images(make: Callable) -> Callable[..., Task]:
    """A task builder from ``make(ds, data, quick)``, on the image data set it is given."""
    return lambda data, data_dir, seed, quick, size: make(
        _images(data, data_dir, seed, size, quick), data, quick)


_IMAGES = ("mnist5k", "synthetic", "mnist", "cifar10")

# The learning-rate grids (our choice): half-decade steps around the rate that was best in our
# runs of the default comparison, trimmed so that the best has a worse neighbour on each side
# (results.md says whether the best ended at an edge). K-FAC's tuned value is its initial damping
# λ₀ (decade steps, each best bracketed over three seeds: docs/peers.md, issue 19); Shampoo's
# best was bracketed over three seeds. The stress tasks' grids for sgd and adamw: the three rates
# around the best of a five-rate scan over three seeds (docs/results/selection/base_stress*.csv);
# for the second-order peers, the autoencoder's (Shampoo: half-decades around the autoencoder's
# and the CNN's), not scanned on them.
_STRESS_GRIDS = {"sgd": (0.03, 0.1, 0.3), "adamw": (3e-3, 1e-2, 3e-2), "kfac": (0.1, 1.0, 10.0),
                 "shampoo": (0.01, 0.03, 0.1, 0.3), "adahessian": (0.05, 0.15, 0.5)}

#: every task, one record each: ``TASK_NAMES`` is its order (the paper's three, then the stress tasks)
TASKS: Dict[str, TaskRecord] = {r.name: r for r in (
    TaskRecord("autoencoder", _on_images(_autoencoder_task), _IMAGES, {
        "sgd": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2), "adamw": (3e-4, 1e-3, 3e-3, 1e-2),
        "kfac": (0.1, 1.0, 10.0), "shampoo": (0.01, 0.03, 0.1), "adahessian": (0.05, 0.15, 0.5)}),
    TaskRecord("cnn", _on_images(_cnn_task), _IMAGES, {
        "sgd": (0.01, 0.03, 0.1, 0.3), "adamw": (1e-3, 3e-3, 1e-2, 3e-2),
        "kfac": (1.0, 10.0, 100.0), "shampoo": (0.03, 0.1, 0.3), "adahessian": (0.05, 0.15, 0.5)}),
    TaskRecord("gcn", _gcn_task, ("synthetic", "cora"), {
        "sgd": (0.3, 1.0, 3.0, 10.0), "adamw": (1e-2, 3e-2, 1e-1, 3e-1),
        "kfac": (1e-8, 1e-6, 1e-4), "shampoo": (0.3, 1.0, 3.0), "adahessian": (0.15, 0.5, 1.0)},
        size_unit="nodes", size_bytes=graph_task_bytes),
    TaskRecord("tanh-mlp", _on_images(lambda ds, data, quick: _task(tanh_mlp_parts(ds, data, quick))),
               _IMAGES, _STRESS_GRIDS),
    TaskRecord("regression", lambda data, data_dir, seed, quick, size:
               _task(regression_parts(seed, quick, size)), ("synthetic",), _STRESS_GRIDS),
)}
#: the paper's three families; ``bench`` measures these
PAPER_TASKS = ("autoencoder", "cnn", "gcn")
TASK_NAMES = tuple(TASKS)
