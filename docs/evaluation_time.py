"""Time the per-epoch evaluation: ``dataset_loss`` by chunk size, forward-only path against the
forward pass that builds the caches (what ``loss_value`` ran before 0.2.1).

    OPENBLAS_NUM_THREADS=1 python docs/evaluation_time.py [--repeat 5]

Prints, per task, the median over interleaved repeats of one ``dataset_loss`` on the whole
training set at the initial weights (seconds). docs/cost.md quotes its output.
"""
import argparse
import time

import numpy as np

from minilayerlr.experiments import build_task
from minilayerlr.training.loop import dataset_loss


def loss_with_caches(net, params, x, y, chunk):
    """The loss through ``forward`` (caches built and dropped), chunked as ``dataset_loss``."""
    total = 0.0
    for start in range(0, len(x), chunk):
        h = x[start:start + chunk]
        for layer, p in zip(net.layers, params):
            h, _ = layer.forward(p, h)
        total += net.loss_fn.forward(h, y[start:start + chunk])[0] * len(h)
    return total / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    chunks = (128, 256, 512, 1024)
    print("| task | " + " | ".join(f"chunk {c} (s)" for c in chunks) + " | with caches, chunk 256 (s) |")
    print("|---|" + "---|" * (len(chunks) + 1))
    for name in ("cnn", "autoencoder", "tanh-mlp"):
        task = build_task(name)
        net, x, y = task.net, task.x_train, task.y_train
        params = net.init(seed=0)
        jobs = {c: (lambda c=c: dataset_loss(net, params, x, y, chunk=c)) for c in chunks}
        jobs["caches"] = lambda: loss_with_caches(net, params, x, y, 256)
        times = {k: [] for k in jobs}
        for _ in range(args.repeat):  # interleaved: load on the machine hits every column alike
            for k, job in jobs.items():
                started = time.perf_counter()
                job()
                times[k].append(time.perf_counter() - started)
        cells = [f"{np.median(times[k]):.3f}" for k in jobs]
        print(f"| {name} ({len(x):,}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
