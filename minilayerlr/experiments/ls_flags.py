"""The command line's flags for the layer-wise rule (--ls-*), shared by ``compare`` and ``train``."""
from __future__ import annotations

import argparse
import math

from ..curvature import UNBIASED_KINDS
from ..errors import UserError


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
    """The --ls-* flags given, as ``LayerwiseStepSize`` keyword arguments."""
    options = {}
    if args.ls_scale is not None:
        if args.ls_scale in ("blocks", "coupling"):
            options["scale"] = args.ls_scale
        else:
            try:
                scale = float(args.ls_scale)
            except ValueError:
                scale = math.nan
            if not (scale > 0 and math.isfinite(scale)):
                raise UserError(f"--ls-scale: expected a finite number > 0, 'blocks' or "
                                f"'coupling', got {args.ls_scale}")
            options["scale"] = scale
    if args.ls_denominator is not None:
        options["denominator"] = args.ls_denominator
    if args.ls_curvature is not None:
        options["curvature_kind"] = args.ls_curvature
    if args.ls_ema is not None:
        if not 0 <= args.ls_ema < 1:
            raise UserError(f"--ls-ema: expected a number in [0, 1), got {args.ls_ema}")
        options["ema"] = args.ls_ema
    return options
