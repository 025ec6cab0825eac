"""The command line's flags that spread a comparison over cores and machines: --jobs, --shard, --merge."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional, Sequence

from ..errors import UserError
from .shards import Shard, check_shard, shard_folders

SCALE_HELP = """\
--jobs N runs N runs at once, each in a worker process of its own. Every
worker starts with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS and
VECLIB_MAXIMUM_THREADS set to cores/N (at least 1), before NumPy loads, so the
workers do not oversubscribe the cores; a variable you set yourself is kept.
The results do not depend on N (times aside): the oracle prices are measured
once per task before any run. --shard K/N runs one N-th of the runs and writes
no report; --merge gathers the N shard folders into one comparison whose
report equals an unsharded run's (docs/scale.md: a SLURM job array), e.g.
  minilayerlr compare --jobs 2 --seeds 5 --out runs/five-seeds
  minilayerlr compare --seeds 5 --shard 1/4 --out runs/five/shard-1   # ... to 4/4
  minilayerlr compare --merge runs/five/shard-* --out runs/five/all

"""


def add_scale_arguments(p: argparse.ArgumentParser) -> None:
    """Add --jobs, --shard and --merge to ``compare``'s parser ``p``."""
    p.add_argument("--jobs", type=int, metavar="N",
                   help="run N runs at once, each in a worker process with cores/N BLAS threads "
                        "(see above); the same results for every N when the BLAS thread count is fixed, "
                        "e.g. OPENBLAS_NUM_THREADS=1 (docs/scale.md) (default: 1)")
    p.add_argument("--shard", metavar="K/N",
                   help="run only shard K of N: the runs at positions K, K+N, K+2N, ... of the "
                        "comparison's plan, into --out, and no report")
    p.add_argument("--merge", nargs="+", metavar="DIR",
                   help="gather the folders of all N shards of one comparison into --out and "
                        "write its report, equal to an unsharded run's (times aside)")


def checked_jobs(args) -> int:
    """The value of --jobs (default 1), refused below 1."""
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    return args.jobs or 1


def shard_note(result: dict, out: Path) -> str:
    """What a finished shard prints instead of a report."""
    k, n = result["config"]["shard"]
    return (f"shard {k}/{n}: {len(result['records'])} runs in {out}/runs, no report; when every "
            f"shard has finished: minilayerlr compare --merge <the {n} shard folders> --out DIR")


def stored_shard(flag: str, folder: Path) -> Optional[Shard]:
    """The shard (K, N) recorded in ``folder``/config.json (None: a whole comparison)."""
    from .schema import load_json
    path = folder / "config.json"
    config = load_json(path)
    return check_shard(f"{flag}: {path}: shard", config.get("shard") if isinstance(config, dict)
                       else None)


def merged_settings(args, config_flags: Sequence[str]) -> dict:
    """compare's settings for ``--merge DIR...``: those stored by shard 1 (the merge checks that
    every shard agrees), refusing flags that would change them."""
    from .methods import LS_OPTION_NAMES, METHODS
    from .schema import read_resumed_config
    from .tasks import DATA_NAMES, TASK_NAMES
    given = [f for f in config_flags if f not in ("out", "overwrite")
             and getattr(args, f, None) not in (None, False)]
    given += ["resume"] if args.resume is not None else []
    if given:
        raise UserError("--merge: the configuration comes from the shards' config.json; "
                        f"drop --{given[0].replace('_', '-')}")
    folders = shard_folders("--merge", args.merge)
    settings = read_resumed_config("--merge", folders[1], TASK_NAMES, tuple(METHODS), DATA_NAMES,
                                   LS_OPTION_NAMES)
    settings["out"] = Path(args.out or time.strftime("runs/compare-%Y%m%d-%H%M%S"))
    settings["merge"] = list(args.merge)
    return settings
