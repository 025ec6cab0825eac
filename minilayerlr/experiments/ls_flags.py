"""The command line's flags for the layer-wise rule (--ls-*), shared by ``compare`` and ``train``."""
from __future__ import annotations

import argparse

from ..curvature import UNBIASED_KINDS


def add_ls_arguments(p: argparse.ArgumentParser) -> None:
    """Add --ls-scale, --ls-denominator, --ls-curvature and --ls-ema to ``p``."""
    p.add_argument("--ls-scale", metavar="ETA",
                   help="η, the multiplier of every layer-wise step: 'blocks' (1/L, the default), "
                        "'coupling' (min(1, 1/c) from the blocks' coupling along the step) or a "
                        "number (1 = minimiser of each layer's quadratic model)")
    p.add_argument("--ls-denominator", choices=("abs", "signed", "rms"),
                   help="how the layer-wise curvature q_l is averaged: abs (the default, |q_l|), "
                        "signed (q_l, the 0.1 rule) or rms (√ of the average q_l²)")
    p.add_argument("--ls-curvature", choices=UNBIASED_KINDS,
                   help="the curvature q_l of the layer-wise methods: hessian (the default, "
                        "exact blocks), ggn (exact Gauss-Newton blocks), or an estimator")
    p.add_argument("--ls-ema", type=float, metavar="RHO",
                   help="ρ in [0, 1), averaging of the step-size numerator and denominator over "
                        "steps (default: the optimizer's 0.9)")


def ls_options(args) -> dict:
    """The --ls-* flags given, as ``LayerwiseStepSize`` keyword arguments (checked by it)."""
    options = {}
    if args.ls_scale is not None:
        try:
            options["scale"] = float(args.ls_scale)
        except ValueError:  # 'blocks', 'coupling', or a word the optimizer refuses, naming scale
            options["scale"] = args.ls_scale
    if args.ls_denominator is not None:
        options["denominator"] = args.ls_denominator
    if args.ls_curvature is not None:
        options["curvature_kind"] = args.ls_curvature
    if args.ls_ema is not None:
        options["ema"] = args.ls_ema
    return options
