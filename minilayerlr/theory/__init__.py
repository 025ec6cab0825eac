"""Theory of the idealized layer-wise method: closed-form problems and rate bounds.

Theorems and proofs: docs/theory.md. ``BlockQuadratic`` and
``LogisticRegression`` follow the same evaluate protocol as networks, so the
optimizers of ``minilayerlr.optim`` run on them unchanged.
"""
from minilayerlr.theory.bounds import (block_diagonal, block_smoothness, coupling_constant,
                                       contraction_bound, jacobi_matrix, kantorovich_rate,
                                       smoothness, strong_convexity, strongly_convex_bound)
from minilayerlr.theory.problems import (BlockProblem, BlockQuadratic, DenseEvaluation,
                                         LogisticRegression)

__all__ = [
    "BlockQuadratic", "LogisticRegression", "BlockProblem", "DenseEvaluation",
    "strong_convexity", "smoothness", "block_smoothness", "coupling_constant",
    "block_diagonal", "contraction_bound", "strongly_convex_bound", "kantorovich_rate",
    "jacobi_matrix",
]
