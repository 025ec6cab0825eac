"""Derivative checkers for tests, tutorials and ``minilayerlr check``.

Nothing in the library imports this package; it imports the library.
"""
from .checkers import (CheckResult, axpy, check_gradient, check_hvp, check_second_difference, check_symmetry,
                       check_taylor_order, default_eps, gamma, mask_to_block, random_like, relative_error,
                       second_difference, taylor_remainder_order, tree_vdot)
from .suite import check_float32, check_layer, check_network, gauss_newton_reference, is_smooth

__all__ = ["CheckResult", "axpy", "check_gradient", "check_hvp", "check_second_difference", "check_float32", "check_layer", "is_smooth", "check_network",
           "check_symmetry", "check_taylor_order", "default_eps", "gamma", "gauss_newton_reference",
           "mask_to_block", "random_like", "relative_error", "second_difference",
           "taylor_remainder_order", "tree_vdot"]
