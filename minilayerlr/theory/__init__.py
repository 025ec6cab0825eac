"""Theory of the idealized layer-wise method: closed-form problems and rate bounds.

Theorems and proofs: docs/theory.md. ``BlockQuadratic``, ``LogisticRegression``
and ``BumpFunction`` follow the same evaluate protocol as networks, so the
optimizers of ``minilayerlr.optim`` run on them unchanged. ``bounds`` holds the
constants and Theorems 1, 2, 4; ``sharp`` Theorems 1′, 3, 4′, 4″, 10, Lemma 4.5, the constant c_λ
and Proposition 7; ``noise`` Proposition 9; ``momentum`` Propositions 8′(c)(iv) (and its measured
horizon worst case) and 6.3; ``worst_case`` the worst one-step ratio found by optimisation and the
table printed by ``print_bound_table()``.
"""
from minilayerlr.theory.bounds import (block_diagonal, block_smoothness, coupling_constant,
                                       contraction_bound, jacobi_matrix, kantorovich_rate,
                                       smoothness, strong_convexity, strongly_convex_bound)
from minilayerlr.theory.problems import (BlockProblem, BlockQuadratic, DenseEvaluation,
                                         LogisticRegression)
from minilayerlr.theory.sharp import (block_jacobi_best_scale, block_jacobi_rate, ema_contraction_bound,
                                      exact_strongly_convex_rate, fixed_step_rate,
                                      improved_strongly_convex_bound, invariant_contraction_bound,
                                      kantorovich_constant, kantorovich_strong_convexity, line_search_bound,
                                      min_scaled_coupling_constant, one_dimensional_rate,
                                      relative_strong_convexity, rescaled_strong_convexity)
from minilayerlr.theory.bump import BumpFunction
from minilayerlr.theory.momentum import abs_rule_step_bounds, momentum_horizon_bounds
from minilayerlr.theory.noise import (block_jacobi_floor_standard_error, block_jacobi_noise_covariance,
                                      block_jacobi_noise_floor, optimum_escape_bound)
from minilayerlr.theory.tables import print_bound_table, spike_and_dip_ratio, strongly_convex_table
from minilayerlr.theory.worst_case import bound_table, one_step_ratio, worst_one_step_ratio

__all__ = [
    "BlockQuadratic", "LogisticRegression", "BlockProblem", "DenseEvaluation",
    "strong_convexity", "smoothness", "block_smoothness", "coupling_constant",
    "block_diagonal", "contraction_bound", "strongly_convex_bound", "kantorovich_rate",
    "jacobi_matrix", "BumpFunction",
    "rescaled_strong_convexity", "kantorovich_strong_convexity", "relative_strong_convexity",
    "kantorovich_constant", "invariant_contraction_bound", "block_jacobi_rate",
    "block_jacobi_best_scale", "improved_strongly_convex_bound", "ema_contraction_bound",
    "min_scaled_coupling_constant", "one_dimensional_rate", "exact_strongly_convex_rate",
    "fixed_step_rate",
    "line_search_bound", "block_jacobi_noise_covariance", "block_jacobi_noise_floor",
    "optimum_escape_bound", "block_jacobi_floor_standard_error",
    "one_step_ratio", "worst_one_step_ratio", "bound_table", "print_bound_table",
    "strongly_convex_table", "spike_and_dip_ratio", "momentum_horizon_bounds", "abs_rule_step_bounds",
]
