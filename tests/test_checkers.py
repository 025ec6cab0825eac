"""The checkers themselves: a deliberately wrong derivative must fail them."""
import subprocess
import sys

import numpy as np
import pytest

import minilayerlr as mll
from minilayerlr.testing import (check_gradient, check_hvp, check_layer, check_network, check_symmetry,
                                 check_taylor_order, random_like, taylor_remainder_order)


class WrongBackwardTanh(mll.Tanh):
    """tanh with σ' off by 1 % in backward only."""

    def backward(self, p, cache, g_y, *, input_grad=True):
        g_x, _ = super().backward(p, cache, g_y)
        return 1.01 * g_x, {}


class WrongSecondTanh(mll.Tanh):
    """tanh whose σ'' (used by the R-op and curvature) has the wrong sign."""

    def second(self, x, y):
        return -super().second(x, y)


class WrongRopDense(mll.Dense):
    """Dense whose R-op forgets the ẋᵀ g_y term of ġ_W."""

    def backward_tangent(self, p, x, x_dot, p_dot, g_y, g_y_dot, *, input_grad=True):
        return super().backward_tangent(p, x, None, p_dot, g_y, g_y_dot, input_grad=input_grad)


def failed_names(results):
    return {r.name.split(" (")[0] for r in results if not r.passed}


def test_layer_checks_catch_wrong_rules():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    assert "vjp adjoint" in failed_names(check_layer(WrongBackwardTanh(), {}, x, rng))
    wrong = failed_names(check_layer(WrongSecondTanh(), {}, x, rng))
    assert {"R-op", "curvature term"} <= wrong
    layer = WrongRopDense(3, 2)
    assert "R-op" in failed_names(check_layer(layer, layer.init(rng), x, rng))
    assert not failed_names(check_layer(mll.Tanh(), {}, x, rng))


def network(activation, dense=mll.Dense):
    net = mll.Sequential([dense(3, 4), activation(), dense(4, 2)], mll.SoftmaxCrossEntropy())
    rng = np.random.default_rng(1)
    return net, net.init(2), rng.standard_normal((5, 3)), rng.integers(0, 2, 5), rng


def test_network_checks_catch_a_wrong_hessian():
    net, params, x, y, rng = network(WrongSecondTanh)
    wrong = failed_names(check_network(net, params, x, y, rng))
    assert {"hvp", "taylor order", "layer curvature vs 2nd difference"} <= wrong
    assert "gradient" not in wrong  # σ' is right, only σ'' is wrong
    net, params, x, y, rng = network(mll.Tanh, WrongRopDense)
    assert "hvp" in failed_names(check_network(net, params, x, y, rng))


def test_network_checks_catch_a_wrong_gradient():
    net, params, x, y, rng = network(WrongBackwardTanh)
    assert "gradient" in failed_names(check_network(net, params, x, y, rng))


def test_generic_checkers_on_a_known_quadratic():
    """f(θ) = ½ θᵀAθ: exact derivatives pass, perturbed ones fail at the expected order."""
    rng = np.random.default_rng(3)
    M = rng.standard_normal((4, 4))
    A = M @ M.T + np.eye(4)
    cubic = rng.standard_normal(4)

    def f(p):
        t = p[0]["t"]
        return 0.5 * t @ A @ t + (cubic @ t) ** 3

    theta = [{"t": rng.standard_normal(4)}]
    t = theta[0]["t"]
    grad = [{"t": A @ t + 3 * (cubic @ t) ** 2 * cubic}]
    H = A + 6 * (cubic @ t) * np.outer(cubic, cubic)
    u = random_like(theta, rng)
    hv = [{"t": H @ u[0]["t"]}]

    def gradient(p):
        s = p[0]["t"]
        return [{"t": A @ s + 3 * (cubic @ s) ** 2 * cubic}]

    assert check_gradient(f, grad, theta, u).passed
    assert check_hvp(gradient, hv, theta, u).passed
    assert check_symmetry(lambda v: [{"t": H @ v[0]["t"]}], u, random_like(theta, rng)).passed
    assert check_taylor_order(f, grad, hv, theta, u).passed
    assert not check_gradient(f, [{"t": grad[0]["t"] + 0.01}], theta, u).passed
    assert not check_hvp(gradient, [{"t": hv[0]["t"] * 1.001}], theta, u).passed
    assert not check_symmetry(lambda v: [{"t": (H + np.triu(H, 1)) @ v[0]["t"]}], u, random_like(theta, rng)).passed
    wrong_h = [{"t": hv[0]["t"] + 0.1 * u[0]["t"]}]
    assert abs(taylor_remainder_order(f, grad, wrong_h, theta, u) - 2) < 0.3
    assert abs(taylor_remainder_order(f, [{"t": grad[0]["t"] + 0.1}], hv, theta, u) - 1) < 0.3


def test_check_command_passes_and_prints_a_table():
    out = subprocess.run([sys.executable, "-m", "minilayerlr.cli", "check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "| instance | check | error | tolerance | pass |" in out.stdout
    assert out.stdout.strip().splitlines()[-1].endswith("passed, 0 failed")
    assert "GCN masked softmax CE" in out.stdout and "R-op" in out.stdout


def test_check_command_float32_passes():
    out = subprocess.run([sys.executable, "-m", "minilayerlr.cli", "check", "--float32"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:]
    assert "float32 hvp vs float64" in out.stdout
