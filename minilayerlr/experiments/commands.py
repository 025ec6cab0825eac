"""The ``compare`` and ``train`` subcommands of the ``minilayerlr`` command line.

``minilayerlr.cli`` collects ``REGISTRARS``; each function adds one parser to
the subcommands and sets ``func`` to the code that runs it. Mistakes a user
can make end with one line on stderr and exit code 2 (``cli.main`` prints
``minilayerlr.errors.UserError``/``ValueError``; ``cli`` makes every parser
print its syntax errors in the same one-line form).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from ..errors import UserError
from .tasks import DATA_NAMES, TASK_NAMES

_OPTIMIZER_HELP = ("sgd: SGD with momentum 0.9 (needs --lr); adamw: AdamW (needs --lr); "
                   "sgd-ls / adamw-ls: the same directions with layer-wise step sizes "
                   "(no --lr: each layer's step is computed from its curvature); gd-ls: the "
                   "idealized full-batch gradient descent with layer-wise step sizes")


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", choices=DATA_NAMES, default="synthetic",
                   help="data set: synthetic (generated, no download; the default), or your own "
                        "files of mnist / cifar10 (autoencoder, cnn) or cora (gcn)")
    p.add_argument("--data-dir", metavar="PATH",
                   help="folder with the real data files (MNIST IDX, CIFAR-10 data_batch_*.bin, "
                        "cora.content + cora.cites)")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="epochs per run (default: the task's, see --help of compare)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="seeds the data, the initial weights and the shuffling (default: 0)")
    p.add_argument("--quick", action="store_true",
                   help="smaller data, fewer epochs, shorter grid: a one-minute smoke run")
    p.add_argument("--size", type=int, metavar="N",
                   help="shrink the data: N training images, or N graph nodes for gcn")
    p.add_argument("--ls-scale", type=float, metavar="ETA",
                   help="η, the multiplier of every layer-wise step (default: the optimizer's, "
                        "1 = minimiser of each layer's quadratic model; the theory guarantees "
                        "descent for η below 2/c, c <= number of layers)")
    p.add_argument("--ls-ema", type=float, metavar="RHO",
                   help="ρ in [0, 1), averaging of the step-size numerator and denominator over "
                        "steps (default: the optimizer's)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress line on stderr (it only shows on a terminal anyway)")


def _check_common(args) -> None:
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs: expected an integer >= 1, got {args.epochs}")
    if args.seed < 0:
        raise UserError(f"--seed: expected an integer >= 0, got {args.seed}")
    if args.size is not None and args.size < 20:
        raise UserError(f"--size: expected an integer >= 20, got {args.size}")
    if args.data != "synthetic" and not args.data_dir:
        raise UserError(f"--data-dir: --data {args.data} reads local files; give the folder "
                        f"that holds them")
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UserError(f"--data-dir: {args.data_dir} is not a folder")


def _writable_folder(flag: str, folder) -> None:
    """Create ``folder`` now, so that a bad path fails before any training, naming ``flag``."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag}: cannot create the folder {folder} ({error.strerror or error})") from None


def _ls_options(args) -> dict:
    """--ls-scale / --ls-ema as LayerwiseStepSize keyword arguments (only those given)."""
    options = {}
    if args.ls_scale is not None:
        if not (args.ls_scale > 0 and math.isfinite(args.ls_scale)):
            raise UserError(f"--ls-scale: expected a finite number > 0, got {args.ls_scale}")
        options["scale"] = args.ls_scale
    if args.ls_ema is not None:
        if not 0 <= args.ls_ema < 1:
            raise UserError(f"--ls-ema: expected a number in [0, 1), got {args.ls_ema}")
        options["ema"] = args.ls_ema
    return options


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- compare ----------------------------------------------------------------------------

_COMPARE_DESCRIPTION = """\
Run the paper's comparison on small CPU-sized tasks.

Each task is trained from the same initial weights with
  SGD-m, AdamW        over a grid of learning rates; the table shows the rate
                      with the lowest final training loss (all runs are saved)
  SGD-m-LS, AdamW-LS  the same directions with layer-wise step sizes: no
                      learning rate, each layer's step comes from its curvature
  GD-LS               the idealized full-batch method (gcn only)

Tasks (default data is generated, nothing is downloaded):
  autoencoder  MLP autoencoder on 16x16 synthetic digits, 20 epochs
  cnn          small CNN classifying the same digits, 10 epochs
  gcn          2-layer GCN on a contextual stochastic block model graph,
               200 full-batch steps

Prints a markdown table; writes results.json, results.csv, results.md and PNG
plots (learning curves, per-layer step sizes) into --out. The defaults take
about ten minutes on two cores, --quick about one minute.

examples:
  minilayerlr compare --quick
  minilayerlr compare --task gcn --data cora --data-dir ~/data/cora
"""

def register_compare(subparsers) -> None:
    """Add ``minilayerlr compare``."""
    p = subparsers.add_parser(
        "compare", help="run the paper's comparison: tuned SGD-m / AdamW vs untuned layer-wise "
                        "step sizes",
        description=_COMPARE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASK_NAMES + ("all",), default="all",
                   help="which experiment to run (default: all)")
    p.add_argument("--out", metavar="DIR",
                   help="run folder for results and plots (default: runs/compare-<date-time>)")
    _add_data_arguments(p)
    p.set_defaults(func=_run_compare)


def _run_compare(args) -> int:
    from .compare import run_compare
    _check_common(args)
    tasks = list(TASK_NAMES) if args.task == "all" else [args.task]
    if args.data != "synthetic" and args.task == "all":
        raise UserError(f"--task: --data {args.data} fits only some tasks; choose one with --task")
    out = Path(args.out or time.strftime("runs/compare-%Y%m%d-%H%M%S"))
    _writable_folder("--out", out)
    started = time.perf_counter()
    result = run_compare(tasks, out=out, epochs=args.epochs, data=args.data,
                         data_dir=args.data_dir, quick=args.quick, seed=args.seed,
                         size=args.size, progress=False if args.no_progress else None,
                         ls_options=_ls_options(args), log=_log)
    print(result["paths"]["md"].read_text())
    _log(f"compare finished in {time.perf_counter() - started:.0f} s; results in {out}/ "
         f"(results.json, results.csv, results.md, {len(result['paths']['figures'])} PNG)")
    return 0


# -- train ------------------------------------------------------------------------------

def register_train(subparsers) -> None:
    """Add ``minilayerlr train``."""
    p = subparsers.add_parser(
        "train", help="train one task with one optimizer (checkpoints, resume)",
        description="Train one task with one optimizer and print its final training loss, test "
                    "metric, time and steps. With --out, also write run.json (the history) and "
                    "PNG plots. --checkpoint writes an .npz after every epoch; --resume continues "
                    "from one exactly as if the run had never stopped. "
                    "Example: minilayerlr train --task cnn --optimizer sgd-ls --epochs 5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which experiment")
    p.add_argument("--optimizer", choices=("sgd", "adamw", "sgd-ls", "adamw-ls", "gd-ls"),
                   required=True, help=_OPTIMIZER_HELP)
    p.add_argument("--lr", type=float, metavar="LR",
                   help="learning rate, for sgd and adamw only (e.g. 0.1 and 0.001)")
    p.add_argument("--batch-size", type=int, metavar="B",
                   help="examples per step (default: the task's; gcn and gd-ls are full batch)")
    p.add_argument("--out", metavar="DIR", help="write run.json and PNG plots into DIR")
    p.add_argument("--checkpoint", metavar="FILE.npz", help="save a checkpoint after each epoch")
    p.add_argument("--resume", metavar="FILE.npz", help="continue from a checkpoint")
    _add_data_arguments(p)
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from .compare import OPTIMIZERS, _finite_or_none, make_optimizer, markdown_table
    from .plots import plot_task
    from .tasks import build_task
    from ..training import train

    _check_common(args)
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise UserError(f"--lr: expected a finite number > 0, got {args.lr}")
    label, takes_lr, full_batch = OPTIMIZERS[args.optimizer]
    if takes_lr and args.lr is None:
        raise UserError(f"--lr: {args.optimizer} needs a learning rate, e.g. --lr "
                        f"{'0.1' if args.optimizer == 'sgd' else '0.001'} (or use "
                        f"{args.optimizer}-ls, which needs none)")
    if not takes_lr and args.lr is not None:
        raise UserError(f"--lr: {args.optimizer} computes its own per-layer step sizes; drop --lr")
    if args.out:
        _writable_folder("--out", args.out)
    if args.checkpoint:
        _writable_folder("--checkpoint", Path(args.checkpoint).parent)
        if Path(args.checkpoint).is_dir():
            raise UserError(f"--checkpoint: {args.checkpoint} is a folder; give a file name such as run.npz")
    if args.resume and not Path(args.resume).is_file():
        raise UserError(f"--resume: no checkpoint file at {args.resume}")
    task = build_task(args.task, data=args.data, data_dir=args.data_dir, seed=args.seed,
                      quick=args.quick, size=args.size)
    batch_size = args.batch_size if args.batch_size is not None else task.batch_size
    if full_batch or task.batch_size is None:
        if args.batch_size is not None:
            raise UserError(f"--batch-size: {'gd-ls' if full_batch else 'the gcn task'} trains "
                            "full batch; drop --batch-size")
        batch_size = None
    epochs = args.epochs or task.epochs
    options = _ls_options(args)
    if options and takes_lr:
        raise UserError(f"--ls-scale/--ls-ema: only for the layer-wise optimizers, not {args.optimizer}")
    if "ema" in options and args.optimizer == "gd-ls":
        raise UserError("--ls-ema: gd-ls is the idealized method without averaging")
    optimizer = make_optimizer(args.optimizer, args.lr, options)
    result = train(task.net, task.net.init(args.seed), optimizer, task.x_train, task.y_train,
                   epochs=epochs, batch_size=batch_size, seed=args.seed, eval_fn=task.eval_fn,
                   checkpoint=args.checkpoint, resume=args.resume,
                   progress=False if args.no_progress else None,
                   label=f"{task.name} {label}")
    h = result.history
    run = {"task": task.name, "optimizer": args.optimizer, "label": label, "lr": args.lr,
           "optimizer_repr": repr(optimizer), "batch_size": batch_size, "epochs": epochs,
           "final_train_loss": h.final_train_loss, "metric": task.metric,
           "final_metric": h.final_metric(task.metric), "wall_time": h.time[-1],
           "steps": h.steps[-1], "stop_reason": h.stop_reason, "selected": True,
           "history": h.to_dict()}
    summary = {"task": task.name, "description": task.description, "metric": task.metric,
               "lr_grid": {args.optimizer: [args.lr]}, "block_names": task.block_names,
               "runs": [run]}
    print(markdown_table(summary))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(_finite_or_none(run), indent=1, allow_nan=False))
        plot_task(summary, out)
        _log(f"wrote {out}/run.json and plots")
    if h.stop_reason:
        _log(f"minilayerlr train: {h.stop_reason}")
        return 1
    return 0


REGISTRARS = [register_compare, register_train]
