"""``minilayerlr check``: run every derivative check and print a table."""
from __future__ import annotations

import numpy as np

from .instances import layer_instances, network_instances
from .suite import check_float32, check_layer, check_network


def run_checks(seed: int = 0, float32: bool = False):
    """All checks on fresh random instances: a list of (instance name, CheckResult).

    With ``float32`` the network checks compare the float32 engine with the
    float64 one instead of with finite differences.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for name, layer, x in layer_instances(rng):
        for result in check_layer(layer, layer.init(rng), x, rng):
            rows.append((name, result))
    for name, net, params, x, y in network_instances(rng):
        check = check_float32 if float32 else check_network
        for result in check(net, params, x, y, rng):
            rows.append((name, result))
    return rows


def format_table(rows) -> str:
    """A markdown table: instance, check, max error, tolerance, pass."""
    lines = ["| instance | check | error | tolerance | pass |", "|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r.name} | {r.error:.2e} | {r.tolerance:.0e} | {'yes' if r.passed else 'NO'} |")
    return "\n".join(lines)


def main(args) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed: expected an integer >= 0, got {args.seed}")
    rows = run_checks(args.seed, args.float32)
    print(format_table(rows))
    failed = [r for _, r in rows if not r.passed]
    print(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check", help="verify every layer's and loss's derivatives against finite differences",
        description="Runs the adjoint (VJP), JVP, R-operator, Hessian-vector, symmetry, Taylor-order, "
                    "layer-curvature and Gauss-Newton checks on small random instances of every layer "
                    "and loss, prints a table, and exits 0 only if every check passes.")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random instances (default 0)")
    parser.add_argument("--float32", action="store_true", help="also hold the float32 engine to the float64 one")
    parser.set_defaults(func=main)
