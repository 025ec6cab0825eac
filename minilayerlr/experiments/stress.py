"""The two stress tasks: where the 0.1 rule of the layer-wise step sizes broke.

| task       | data                                  | model                                  | loss, metric |
|------------|---------------------------------------|----------------------------------------|--------------|
| tanh-mlp   | embedded MNIST, 10 classes            | MLP 784-64-64-64-10, tanh              | softmax CE; test accuracy |
| regression | 20-d Gaussian inputs, a random teacher | MLP 20-32-32-32-32-1, tanh (student) | squared error; test loss |

Both are tanh networks, where the mini-batch curvature q_l = d_lᵀH_ll d_l changes
sign from batch to batch (tanh'' ≠ 0): the averaged signed curvature of the 0.1
rule then passes through 0, and its step through a pole. The teacher of the
regression is a 20-32-1 tanh network with weights N(0, 4/fan_in) (a nonlinear
target, our choice) plus noise of standard deviation 0.05; the student is deeper
than the teacher. Sizes and epochs are our choices, small enough for ``compare``.
They were added to choose the second-edition default (docs/measurements.md);
nothing here was tuned to a result.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import Dense, MeanSquaredError, Sequential, SoftmaxCrossEntropy, Tanh
from ..training import dataset_loss

#: the regression's input dimension, teacher and student widths (our choice)
TEACHER_INPUTS, TEACHER_HIDDEN, STUDENT_HIDDEN = 20, 32, (32, 32, 32, 32)
TEACHER_NOISE = 0.05


def _tanh_mlp(widths, loss) -> Sequential:
    layers = []
    for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Dense(a, b))
        if k < len(widths) - 2:
            layers.append(Tanh())
    return Sequential(layers, loss=loss)


def tanh_mlp_parts(ds, data: str, quick: bool) -> dict:
    """The ``Task`` fields of the tanh MLP classifier on an image data set ``ds``."""
    x = ds.x_train.reshape(len(ds.x_train), -1)
    xt = ds.x_test.reshape(len(ds.x_test), -1)
    widths = [x.shape[1], 64, 64, 64, ds.num_classes]
    net = _tanh_mlp(widths, SoftmaxCrossEntropy())
    yt = ds.y_test

    def eval_fn(p):
        return {"test_accuracy": float(np.mean(np.argmax(net.forward(p, xt), axis=1) == yt))}

    return dict(name="tanh-mlp", net=net, x_train=x, y_train=ds.y_train, eval_fn=eval_fn,
                description=f"tanh MLP {'-'.join(map(str, widths))} (softmax CE) on {data} images",
                metric="test_accuracy", higher_is_better=True,
                batch_size=min(100, len(x)), epochs=2 if quick else 5, data=data,
                sizes={"num_train": int(len(x)), "num_test": int(len(xt))})


def teacher_data(seed: int, num_train: int, num_test: int):
    """(x, y, x_test, y_test): y = teacher(x) + noise, x ~ N(0, I_20), shapes (N, 20), (N, 1)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((TEACHER_INPUTS, TEACHER_HIDDEN)) * np.sqrt(4.0 / TEACHER_INPUTS)
    w2 = rng.standard_normal((TEACHER_HIDDEN, 1)) * np.sqrt(4.0 / TEACHER_HIDDEN)
    x = rng.standard_normal((num_train + num_test, TEACHER_INPUTS))
    y = np.tanh(x @ w1) @ w2 + TEACHER_NOISE * rng.standard_normal((len(x), 1))
    return x[:num_train], y[:num_train], x[num_train:], y[num_train:]


def regression_parts(seed: int, quick: bool, size: Optional[int]) -> dict:
    """The ``Task`` fields of the deep tanh student fitting the teacher (data seeded by ``seed``)."""
    num_train = size or (500 if quick else 2000)
    num_test = max(num_train // 4, 10)
    x, y, xt, yt = teacher_data(seed, num_train, num_test)
    widths = [TEACHER_INPUTS, *STUDENT_HIDDEN, 1]
    net = _tanh_mlp(widths, MeanSquaredError())
    return dict(name="regression", net=net, x_train=x, y_train=y, data="synthetic",
                description=f"tanh MLP {'-'.join(map(str, widths))} (squared error) fitting a "
                            f"random {TEACHER_INPUTS}-{TEACHER_HIDDEN}-1 tanh teacher",
                eval_fn=lambda p: {"test_loss": dataset_loss(net, p, xt, yt)},
                metric="test_loss", higher_is_better=False, batch_size=min(50, num_train),
                epochs=4 if quick else 10, sizes={"num_train": num_train, "num_test": num_test})
