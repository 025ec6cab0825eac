"""λ_max(H_ll) per block by power iteration on block-masked HVPs, against the dense blocks."""
import numpy as np
import pytest

import minilayerlr as mll
from minilayerlr.experiments.stability import (block_lambda_max, stability_epochs,
                                               stability_products)


def _start_vectors(params, seed):
    """The start vectors block_lambda_max draws: one Gaussian per block, blocks and arrays in order."""
    rng = np.random.default_rng(seed)
    return [np.concatenate([rng.standard_normal(a.shape).ravel() for a in entry.values()])
            for entry in params if entry]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_iteration_finds_each_blocks_largest_eigenvalue(seed):
    rng = np.random.default_rng(seed)
    net = mll.Sequential([mll.Dense(4, 5), mll.Tanh(), mll.Dense(5, 3)],
                         loss=mll.SoftmaxCrossEntropy())
    params = net.init(seed)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    ev = net.evaluate(params, x, y)
    iterations = 300
    got = block_lambda_max(ev, params, iterations=iterations, seed=seed)
    for i, v0 in enumerate(_start_vectors(params, seed)):
        H = ev.block_hessian(i)
        eig, vecs = np.linalg.eigh(H)
        order = np.argsort(-np.abs(eig))
        top, ratio = eig[order[0]], abs(eig[order[1]] / eig[order[0]])
        cos0 = abs(vecs[:, order[0]] @ v0) / np.linalg.norm(v0)
        # Rayleigh quotient after k = iterations - 1 products with H (Golub & Van Loan 8.2.1):
        # |ρ_k − λ_1| <= (max_j |λ_j − λ_1|) · tan²θ_0 · (|λ_2| / |λ_1|)^(2k), plus rounding
        # of order P·eps·|λ_1| per product
        spread = np.max(np.abs(eig - top))
        bound = (spread * (1 / cos0 ** 2 - 1) * ratio ** (2 * (iterations - 1))
                 + 1e3 * H.shape[0] * np.finfo(float).eps * abs(top))
        assert abs(got[i] - top) <= bound, (i, got[i], top, ratio)


def test_stability_epochs_spread_and_include_the_last():
    assert stability_epochs(2) == [1, 2]
    assert stability_epochs(8) == [3, 5, 8]
    assert stability_epochs(200) == [67, 133, 200]


def test_products_use_the_mean_step_of_the_epoch():
    sizes = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    steps = [0, 2, 3]
    out = stability_products(sizes, steps, [{"epoch": 1, "lambda_max": [1.0, 0.5]},
                                            {"epoch": 2, "lambda_max": [2.0, 1.0]}])
    assert out[0]["alpha"] == [2.0, 3.0] and out[0]["product"] == [2.0, 1.5]
    assert out[1]["alpha"] == [5.0, 6.0] and out[1]["product"] == [10.0, 6.0]
