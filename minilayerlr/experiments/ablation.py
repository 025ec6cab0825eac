"""``compare --ablation``: which part of the layer-wise rule matters, one table per question.

Each variant is one row of :data:`VARIANTS`: (group, label, method, options).
The first row is SGD-m-LS at its defaults (exact Hessian blocks, the average of
|q_l|, ρ = 0.9, η = 1/L, one step per layer); it is run once and appears in every
group's table, so each table changes one thing only; the "rule" group sets it
against the 0.1 rule (signed average of q_l). Every variant runs with the
same seeds as the rest of the comparison.

The global-step ablation (``GlobalStepSize``: the same rule with one block
for the whole network) joins as one more row once it is registered as a
method, e.g.::

    ("step", "global step (one block)", "sgd-global", {}),
"""
from __future__ import annotations

from typing import Dict, List, Tuple

from .methods import METHODS

DEFAULT_LABEL = "SGD-m-LS (defaults)"
#: the ablation line-up: (group, label, method, options); DEFAULT_LABEL first, in every group
VARIANTS: List[Tuple[str, str, str, dict]] = [
    ("*", DEFAULT_LABEL, "sgd-ls", {}),
    ("rule", "the 0.1 rule (signed q̄, η = 1/L)", "sgd-ls", {"denominator": "signed", "scale": "blocks"}),
    ("denominator", "signed q̄", "sgd-ls", {"denominator": "signed"}),
    ("denominator", "√(mean q²)", "sgd-ls", {"denominator": "rms"}),
    ("step", "global step (one block)", "sgd-global", {}),
    ("curvature", "ggn", "sgd-ls", {"curvature_kind": "ggn"}),
    ("curvature", "mc_fisher", "sgd-ls", {"curvature_kind": "mc_fisher"}),
    ("curvature", "sign_hvp", "sgd-ls", {"curvature_kind": "sign_hvp"}),
    ("ema", "ρ=0", "sgd-ls", {"ema": 0.0}),
    ("ema", "ρ=0.99", "sgd-ls", {"ema": 0.99}),
    ("scale", "η=1/2", "sgd-ls", {"scale": 0.5}),
    ("scale", "η=1", "sgd-ls", {"scale": 1.0}),
]
#: what each group's table asks, and how the defaults read in it
GROUPS: Dict[str, str] = {
    "rule": "the second-edition default vs the 0.1 rule",
    "denominator": "how q_l is averaged (defaults: the mean of |q_l|)",
    "step": "layer-wise (defaults) vs one global step",
    "curvature": "curvature kind (defaults: exact Hessian blocks)",
    "ema": "averaging ρ (defaults: 0.9)",
    "scale": "multiplier η (defaults: 1/L)",
}


def active_variants() -> List[Tuple[str, str, str, dict]]:
    """The variants whose method is registered (the global step joins when it is)."""
    return [v for v in VARIANTS if v[2] in METHODS]


def group_labels(group: str) -> List[str]:
    """Labels in one group's table: the defaults first, then the group's variants."""
    return [DEFAULT_LABEL] + [label for g, label, _, _ in active_variants() if g == group]
