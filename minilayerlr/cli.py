"""Command line: ``minilayerlr check|compare|train|bench ...``.

Each subcommand lives in the module that owns its job and registers itself
through a ``register(subparsers)`` function that sets ``func`` on its parser;
this file only assembles them. Errors a user can cause (bad arguments, missing
files, diverging runs) end with one line on stderr and a non-zero exit code,
never a traceback. The values are checked by the library, whose messages start
with the argument's name; :func:`flag_message` is the one place that name
becomes the flag's.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from .errors import UserError


def _registrars():
    # Imported here, not at the top, so that importing minilayerlr.cli stays cheap.
    from .experiments import bench
    from .experiments import commands as experiment_commands
    from .testing import command as check_command
    return [check_command.register, *experiment_commands.REGISTRARS, bench.register]


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make argparse report a syntax error as one line on stderr (no usage block), exit code 2."""
    def error(message):
        print(f"{parser.prog}: error: {message} (see {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)
    parser.error = error
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minilayerlr",
        description="Layer-wise adaptive step sizes (Bahamou & Goldfarb, arXiv 2305.13664) "
                    "with an exact NumPy curvature engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in _registrars():
        register(sub)
    one_line_errors(parser)
    for subparser in sub.choices.values():
        one_line_errors(subparser)
    return parser


#: the library's argument names and the flags that set them
FLAGS = {"batch_size": "--batch-size", "checkpoint": "--checkpoint", "data": "--data",
         "data_dir": "--data-dir", "epochs": "--epochs", "jobs": "--jobs", "long": "--long",
         "lr": "--lr", "merge": "--merge", "methods": "--optimizers", "optimizer": "--optimizer",
         "out": "--out", "resume": "--resume", "seed": "--seed", "seeds": "--seeds",
         "shard": "--shard", "size": "--size", "task": "--task",
         # the layer-wise options (LayerwiseStepSize's keywords, build_optimizer's "options")
         "scale": "--ls-scale", "ema": "--ls-ema", "curvature_kind": "--ls-curvature",
         "denominator": "--ls-denominator",
         "options": "--ls-scale/--ls-ema/--ls-curvature/--ls-denominator"}


def flag_message(message: str) -> str:
    """A library message naming an argument (``size: ...``) as the flag that sets it (``--size: ...``)."""
    name, sep, rest = message.partition(": ")
    if sep and name in FLAGS:
        message = f"{FLAGS[name]}: {rest}"
    return (message.replace("pass overwrite=True", "pass --overwrite")
            .replace("use batch_size=None", "drop --batch-size"))


def _refuse_empty_values(args) -> None:
    """An empty (or blank) value of any flag is refused: ``--out ''`` must not mean "here"."""
    for name, value in vars(args).items():
        if isinstance(value, str) and not value.strip() and name != "command":
            raise UserError(f"--{name.replace('_', '-')}: an empty value; give one or leave "
                            "the flag out")


def main(argv: Optional[List[str]] = None) -> int:
    try:
        parser = build_parser()  # imports the subcommands: Ctrl-C here is one line too
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded with the results
    except KeyboardInterrupt:
        print("minilayerlr: interrupted while starting", file=sys.stderr)
        return 130
    try:
        _refuse_empty_values(args)
        return int(args.func(args) or 0)
    except (UserError, ValueError, TypeError, FileNotFoundError, OSError) as error:
        print(f"minilayerlr {args.command}: error: {flag_message(str(error))}", file=sys.stderr)
        return 2
    except MemoryError as error:  # the size checks run first; this is what they cannot foresee
        print(f"minilayerlr {args.command}: error: out of memory"
              + (f" ({error})" if str(error) else "") + "; choose smaller sizes", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"minilayerlr {args.command}: error: an input nested too deeply to read",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minilayerlr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
