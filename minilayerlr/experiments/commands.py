"""The ``compare`` and ``train`` subcommands of the ``minilayerlr`` command line.

``minilayerlr.cli`` collects ``REGISTRARS``; each function adds one parser to
the subcommands and sets ``func`` to the code that runs it. Mistakes a user
can make end with one line on stderr and exit code 2: the values are checked
by the library (``build_task``, ``build_optimizer``, ``run_one``, ``run_compare``),
whose errors name the argument and ``cli.main`` prints naming the flag; this
module checks only what is the command line's own (which flags go together)
and every output path, before any work. Ctrl-C ends with one line and exit
code 130, keeping what was finished.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

from ..errors import UserError
from ..paths import RunLock, check_output_dir, check_output_file, check_output_files
from .horizon import LONG_HELP
from .compare_help import COMPARE_DESCRIPTION
from .ls_flags import add_ls_arguments, ls_options
from .methods import LS_OPTION_NAMES, METHODS, get_method, parse_methods
from .scale_flags import (add_scale_arguments, checked_jobs, merged_settings,
                          shard_note, stored_shard)
from .shards import parse_shard
from .tasks import DATA_NAMES, FILE_DATA, TASK_NAMES


def _optimizer_help() -> str:
    return "; ".join(f"{m.name}: {m.description}" for m in METHODS.values())


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", choices=DATA_NAMES,
                   help="data set: mnist5k (5,000 real MNIST digits shipped in the package; the "
                        "default for autoencoder and cnn), synthetic (generated digits, and the "
                        "contextual SBM graph: the default for gcn and for --quick), or your own "
                        "files of mnist / cifar10 (autoencoder, cnn) or cora (gcn) with --data-dir")
    p.add_argument("--data-dir", metavar="PATH",
                   help="folder with the data files (MNIST IDX, CIFAR-10 data_batch_*.bin, "
                        "cora.content + cora.cites)")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="epochs per run (default: the task's, see compare --help)")
    p.add_argument("--seed", type=int, metavar="S",
                   help="seeds the initial weights and the batch order (and generated data) "
                        "(default: 0)")
    p.add_argument("--quick", action="store_true",
                   help="synthetic data, smaller models, fewer epochs, every method once (tuned "
                        "ones at one rate, not tuned): a smoke run (40 s on 2 cores)")
    p.add_argument("--size", type=int, metavar="N",
                   help="shrink the data: N training images, or N graph nodes for gcn")
    add_ls_arguments(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no redrawn progress line of the run (epoch, step, loss; drawn on stderr "
                        "only when it is a terminal); compare's one line per finished run still "
                        "goes to stderr, redirected or not")


def _check_seed(args) -> None:
    if args.seed is None:
        args.seed = 0
    if args.seed < 0:
        raise UserError(f"--seed: expected an integer >= 0, got {args.seed}")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- compare ----------------------------------------------------------------------------

#: flags that define a comparison: with --resume they come from the stored config.json
_CONFIG_FLAGS = ("task", "optimizers", "seeds", "seed", "ablation", "data", "data_dir", "epochs",
                 "quick", "size", "ls_scale", "ls_ema", "ls_denominator", "ls_curvature", "out",
                 "overwrite", "no_stability", "shard", "long")


def register_compare(subparsers) -> None:
    """Add ``minilayerlr compare``."""
    p = subparsers.add_parser(
        "compare", help="run the paper's comparison: every method, over seeds, with a verdict",
        description=COMPARE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASK_NAMES + ("all",), help="which experiment (default: all)")
    p.add_argument("--out", metavar="DIR",
                   help="run folder for results and plots (default: runs/compare-<date-time>)")
    p.add_argument("--optimizers", metavar="A,B,...",
                   help=f"run only these methods (default: all but "
                        f"{', '.join(n for n, m in METHODS.items() if not m.in_default)}): "
                        f"{', '.join(METHODS)}")
    p.add_argument("--seeds", type=int, metavar="K",
                   help="repeat every run with K seeds, --seed .. --seed+K-1 (default: 1)")
    p.add_argument("--ablation", action="store_true",
                   help="instead of the methods, run SGD-m-LS variants: curvature kind, ρ, η "
                        "(and layer-wise vs global step once that method is registered)")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the comparison in DIR with its stored configuration, "
                        "skipping every run already finished")
    p.add_argument("--long", action="store_true", help=LONG_HELP)
    p.add_argument("--no-stability", action="store_true",
                   help="skip the per-layer λ_max(H_ll) measurements of the layer-wise methods")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out name a folder holding a comparison: its config, reports and "
                        "figures are replaced (stored runs of identical settings are reused)")
    add_scale_arguments(p)
    _add_data_arguments(p)
    p.set_defaults(func=_run_compare)


def _resumed_args(args):
    """args with the configuration stored in ``--resume DIR`` (refusing flags that would change it)."""
    from .schema import read_resumed_config
    given = [f for f in _CONFIG_FLAGS if getattr(args, f, None) not in (None, False)]
    if given:
        raise UserError(f"--resume: the configuration comes from {args.resume}/config.json; "
                        f"drop --{given[0].replace('_', '-')}")
    return read_resumed_config("--resume", Path(args.resume), TASK_NAMES, tuple(METHODS),
                               DATA_NAMES, LS_OPTION_NAMES)


def _compare_settings(args) -> dict:
    if args.merge is not None:
        return merged_settings(args, _CONFIG_FLAGS)
    if args.resume is not None:
        return dict(_resumed_args(args), shard=stored_shard("--resume", Path(args.resume)))
    tasks = list(TASK_NAMES) if args.task in (None, "all") else [args.task]
    if args.data in FILE_DATA and args.task in (None, "all"):
        raise UserError(f"--task: --data {args.data} fits only some tasks; choose one with --task")
    if args.seeds is not None and args.seeds < 1:
        raise UserError(f"--seeds: expected an integer >= 1, got {args.seeds}")
    if args.seeds is not None:  # refused before a list of that many seeds is built
        from ..validation import check_memory
        from .lineup import MIN_RUN_SECONDS, check_duration
        check_memory("--seeds", f"at least {args.seeds} runs and their records", args.seeds * 4000.0)
        check_duration("--seeds", f"{args.seeds} seeds", args.seeds * MIN_RUN_SECONDS)
    if args.ablation and args.optimizers:
        raise UserError("--optimizers: --ablation runs its own line-up of SGD-m-LS variants")
    _check_seed(args)
    try:
        methods = [m.name for m in parse_methods(args.optimizers)]
    except ValueError as error:
        raise UserError(str(error)) from None
    return {"tasks": tasks, "methods": methods,
            "seeds": range(args.seed, args.seed + (args.seeds or 1)),
            "epochs": args.epochs, "data": args.data, "data_dir": args.data_dir,
            "quick": args.quick, "size": args.size, "ls_options": ls_options(args),
            "ablation": args.ablation, "stability": not args.no_stability, "long": args.long,
            "shard": None if args.shard is None else parse_shard("--shard", args.shard),
            "out": Path(args.out or time.strftime("runs/compare-%Y%m%d-%H%M%S"))}


def _run_compare(args) -> int:
    from .compare import check_compare_args, run_compare
    from .schema import COMPARISON_FILES, comparison_files
    settings = dict(_compare_settings(args), jobs=checked_jobs(args))
    if args.resume is None:  # the values first: a wrong one leaves no new folder behind
        check_compare_args(**settings)
    flag = "--resume" if args.resume is not None and args.merge is None else "--out"
    out = check_output_dir(flag, settings.pop("out"))
    check_output_files(flag, out, COMPARISON_FILES[:2] + COMPARISON_FILES[3:])  # before any data
    held = [] if args.resume is not None or args.overwrite else comparison_files(out)
    if held:
        raise UserError(f"--out: {out} already holds a comparison ({', '.join(held)}); "
                        f"continue it with --resume {out}, pass --overwrite to replace its "
                        "results, or choose another folder")
    started = time.perf_counter()
    try:
        command = " ".join(["minilayerlr"] + getattr(args, "argv", sys.argv[1:]))
        with RunLock(flag, out, folder=True, what=f"the comparison folder {out}"):
            result = run_compare(out=out, progress=False if args.no_progress else None, log=_log,
                                 command=command, **settings)
    except ValueError as error:  # cli.main names the flags; with --resume, the folder's files
        if args.resume is None:
            raise
        message = str(error)
        if message.startswith("out: "):
            message = f"{flag}: {message[len('out: '):]}"
        elif message.startswith((str(out / "runs"), str(out / "prices.json"))):
            message = f"--resume: {message}"  # a damaged file of the folder names itself
        else:  # the settings came from config.json: name it
            message = f"--resume: {out / 'config.json'}: {message.lstrip('-')}"
        raise UserError(message) from None
    except KeyboardInterrupt:
        done = len(list((out / "runs").glob("*.json"))) if (out / "runs").is_dir() else 0
        _log(f"minilayerlr compare: interrupted; {done} finished run(s) kept in {out}/runs; "
             f"continue with: minilayerlr compare --resume {out}")
        return 130
    if result["config"].get("shard"):  # no report: the merge writes it
        return print(shard_note(result, out)) or 0
    print(result["paths"]["md"].read_text())
    _log(f"compare finished in {time.perf_counter() - started:.0f} s; results in {out}/ "
         f"(results.md, results.csv, results.json, {len(result['paths']['figures'])} PNG)")
    return 0


# -- train ------------------------------------------------------------------------------

def register_train(subparsers) -> None:
    """Add ``minilayerlr train``."""
    p = subparsers.add_parser(
        "train", help="train one task with one optimizer (checkpoints, resume)",
        description="Train one task with one optimizer and print its final training loss, test "
                    "metric, time and steps. With --out, also write run.json (the run record "
                    "compare writes) and PNG plots. --checkpoint writes an .npz after every "
                    "epoch; --resume continues from one exactly as if the run had never stopped. "
                    "Example: minilayerlr train --task cnn --optimizer sgd-ls --epochs 2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which experiment")
    p.add_argument("--optimizer", choices=tuple(METHODS), required=True, help=_optimizer_help())
    p.add_argument("--lr", type=float, metavar="LR", help="learning rate, for tuned methods only")
    p.add_argument("--batch-size", type=int, metavar="B",
                   help="examples per step (default: the task's; gcn and gd-ls are full batch)")
    p.add_argument("--out", metavar="DIR", help="write run.json and PNG plots into DIR")
    p.add_argument("--checkpoint", metavar="FILE.npz", help="save a checkpoint after each epoch")
    p.add_argument("--resume", metavar="FILE.npz", help="continue from a checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="let --checkpoint replace an existing file that is not the checkpoint "
                        "being resumed (an unrelated file, another run's checkpoint, or this "
                        "run's own when starting afresh); without it such a file is refused")
    _add_data_arguments(p)
    p.set_defaults(func=_run_train)


def _check_train_paths(args) -> None:
    """Every file ``train`` writes, before any work (the values are the library's to check)."""
    _check_seed(args)
    if args.out is not None:
        from .plots import figure_names
        from .schema import comparison_files
        out = check_output_dir("--out", args.out)  # and every file written into it, before any work
        check_output_files("--out", args.out, ["run.json", *figure_names(args.task)])
        if {"config.json", "results.md"} & set(comparison_files(out)):
            raise UserError(f"--out: {out} holds a comparison, whose figures train would "
                            "replace; choose another folder")
    if args.checkpoint is not None:
        check_output_file("--checkpoint", args.checkpoint)
    if args.overwrite and args.checkpoint is None:
        raise UserError("--overwrite: applies to --checkpoint; give --checkpoint FILE.npz")
    if args.resume is not None and not Path(args.resume).is_file():
        raise UserError(f"--resume: no checkpoint file at {args.resume}"
                        if not Path(args.resume).exists() else
                        f"--resume: {args.resume} is not a regular file (a checkpoint .npz)")


def _run_train(args) -> int:
    method = get_method(args.optimizer)
    if args.batch_size is not None and method.full_batch:  # run_one would train it full batch
        raise UserError(f"--batch-size: {args.optimizer} trains full batch; drop --batch-size")
    new_folder = args.out is not None and not Path(args.out).exists()
    _check_train_paths(args)
    try:
        return _train(args)
    except ValueError:  # UserError too
        # the library refused a value: the folder made for the run holds nothing, so it goes
        if new_folder and Path(args.out).is_dir() and not any(Path(args.out).iterdir()):
            Path(args.out).rmdir()
        raise


def _train(args) -> int:
    """Build the task and run ``train``'s one run (the paths are checked)."""
    from .runs import run_one
    from .tasks import build_task
    task = build_task(args.task, data=args.data, data_dir=args.data_dir, seed=args.seed,
                      quick=args.quick, size=args.size)
    if args.batch_size is not None:  # checked by run_one and train, naming batch_size
        task.batch_size = args.batch_size
    epochs = task.epochs if args.epochs is None else args.epochs
    started = time.time()
    with contextlib.ExitStack() as stack:
        if args.out is not None:  # one writer per folder: a second train or compare is refused
            stack.enter_context(RunLock("--out", args.out, folder=True,
                                        what=f"the folder {args.out}"))
        try:
            record = run_one(task, args.optimizer, args.lr, seed=args.seed, epochs=epochs,
                             options=ls_options(args), prices=None, stability=True,
                             progress=False if args.no_progress else None,
                             checkpoint=args.checkpoint, resume=args.resume,
                             overwrite=args.overwrite)
        except KeyboardInterrupt:
            _log("minilayerlr train: interrupted" + _saved_note(args.checkpoint, started))
            return 130
        record.pop("_result")
        _print_train(record, task)
        if args.out is not None:
            _write_train(Path(args.out), record, task)
    if record["stop_reason"]:
        _log(f"minilayerlr train: {record['stop_reason']}")
        return 1
    return 0


def _saved_note(checkpoint, started: float) -> str:
    """What an interrupted train kept: the checkpoint only if this run wrote it (after ``started``)."""
    if not checkpoint:
        return ""
    path = Path(checkpoint)
    if path.is_file() and path.stat().st_mtime >= started:
        return f"; the last finished epoch is in {checkpoint}"
    return f"; no epoch had finished, so nothing was saved to {checkpoint}"


def _print_train(record: dict, task) -> None:
    metric = task.metric.replace("_", " ")
    value = record["final_metric"]
    print(f"| optimizer | lr | final train loss | {metric} | wall time (s) | steps |\n"
          f"|---|---|---|---|---|---|\n"
          f"| {record['label']} | {'none' if record['lr'] is None else format(record['lr'], 'g')} | "
          f"{record['final_train_loss']:.4g} | "
          f"{'n/a' if value is None or not math.isfinite(value) else format(value, '.4g')} | "
          f"{record['wall_time']:.1f} | {record['steps']} |")


def _write_train(out: Path, record: dict, task) -> None:
    from .plots import plot_block
    from .runs import write_json
    from .verdict import summarize_task
    write_json(out / "run.json", record)
    entries = summarize_task([record], {record["label"]: [record["lr"]]}, [record["seed"]])
    block = {"task": task.name, "description": task.description, "metric": task.metric,
             "seeds": [record["seed"]], "block_names": task.block_names, "entries": entries}
    plot_block(block, out)
    _log(f"wrote {out}/run.json and plots")


REGISTRARS = [register_compare, register_train]
