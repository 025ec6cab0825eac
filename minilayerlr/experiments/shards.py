"""A comparison split into N shards (``compare --shard K/N``) and the shards merged into one.

The plan of a comparison (every run, in the order ``compare._plan`` lists
them: task, method, rate, seed) is dealt round-robin: shard K of N runs the
runs at positions i with ``i % N == K - 1``. The plan depends only on the
configuration, so every shard computes the same one and the N slices cover it
once. A shard writes its config (with ``"shard": [K, N]``), the oracle prices
of its tasks and its own runs, and no report. :func:`merged_records` gathers
every shard's runs; the merged folder's report is then computed exactly as an
unsharded comparison's from the same records, priced with one table (each
task's prices from the lowest-numbered shard that measured them).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import UserError
from .cost import as_prices, gradient_equivalents
from .runs import load_record, spec_key, write_json
from .schema import check_prices, load_json

Shard = Tuple[int, int]


def parse_shard(name: str, text) -> Shard:
    """``"K/N"`` (1 <= K <= N) as (K, N); else a UserError naming ``name``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if match is None:
        raise UserError(f"{name}: expected K/N (shard K of N, e.g. 2/5), got {text!r}")
    k, n = int(match.group(1)), int(match.group(2))
    if not 1 <= k <= n:
        raise UserError(f"{name}: expected 1 <= K <= N in K/N, got {text!r}")
    return k, n


def check_shard(name: str, shard) -> Optional[Shard]:
    """``shard`` as stored in a config (None or [K, N] with 1 <= K <= N) as a tuple."""
    if shard is None:
        return None
    if (isinstance(shard, (list, tuple)) and len(shard) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
            and 1 <= shard[0] <= shard[1]):
        return int(shard[0]), int(shard[1])
    raise UserError(f"{name}: expected a shard [K, N] with 1 <= K <= N, got {shard!r}")


def select(plan: Sequence, shard: Optional[Shard]) -> list:
    """The runs of ``plan`` that shard (K, N) runs: positions i with i % N == K - 1."""
    if shard is None:
        return list(plan)
    k, n = shard
    return [item for i, item in enumerate(plan) if i % n == k - 1]


def shard_folders(name: str, folders: Sequence[Path]) -> Dict[int, Path]:
    """Shard number -> folder, refusing a folder that is no shard, mixed N, and a missing or
    repeated shard; ``name`` is the argument named in the messages."""
    found: Dict[int, Path] = {}
    total = None
    for folder in map(Path, folders):
        path = folder / "config.json"
        if not path.is_file():
            raise UserError(f"{name}: {path} is missing; is {folder} a shard's folder?")
        config = load_json(path)
        shard = check_shard(f"{name}: {path}: shard", config.get("shard")
                            if isinstance(config, dict) else None)
        if shard is None:
            raise UserError(f"{name}: {folder} holds a whole comparison, not a shard "
                            "(its config.json has no shard)")
        k, n = shard
        if total is not None and n != total:
            raise UserError(f"{name}: {folder} is shard {k}/{n}, the others are of {total}")
        if k in found:
            raise UserError(f"{name}: shard {k}/{n} given twice ({found[k]} and {folder})")
        total, found[k] = n, folder
    missing = [k for k in range(1, (total or 0) + 1) if k not in found]
    if missing:
        raise UserError(f"{name}: shard(s) {', '.join(f'{k}/{total}' for k in missing)} missing; "
                        "give every shard's folder")
    return found


def merged_prices(folders: Dict[int, Path], tasks: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """Per task, the prices stored by the lowest-numbered shard that measured them."""
    out: Dict[str, Dict[str, float]] = {}
    for k in sorted(folders):
        path = folders[k] / "prices.json"
        if path.exists():
            for task, prices in check_prices(path, load_json(path)).items():
                if task in tasks and task not in out:
                    out[task] = as_prices(prices)
    return out


def reprice(record: dict, prices: Dict[str, float]) -> dict:
    """``record`` with its gradient equivalents recomputed from its oracle counts at ``prices``."""
    if record.get("oracle_calls") is not None:
        record["grad_equivalents"] = gradient_equivalents(record["oracle_calls"], prices)
    return record


def missing_runs(name: str, folders: Dict[int, Path], missing: List[Tuple[int, str]]) -> UserError:
    """The error for shards whose runs are not all finished (``missing``: (shard, run key))."""
    n = len(folders)
    counts: Dict[int, int] = {}
    for k, _ in missing:
        counts[k] = counts.get(k, 0) + 1
    parts = [f"shard {k}/{n} ({folders[k]}) lacks {c} of its runs" for k, c in sorted(counts.items())]
    first = folders[min(counts)]
    return UserError(f"{name}: {'; '.join(parts)}; finish it first, e.g. minilayerlr compare "
                     f"--resume {first}")


#: the settings that decide a comparison's runs: shards merge only when these agree
DECIDING = ("tasks", "methods", "seeds", "epochs", "data", "data_dir", "quick", "size",
            "ls_options", "ablation", "stability")


def gather(plan: list, folders: Dict[int, Path], out: Path, config: dict, prices) -> None:
    """Copy every shard's runs into ``out/runs``, priced with one table (:func:`merged_prices`, or
    ``prices`` if given), or refuse, naming the shard, if a shard's settings differ or any of
    its runs is missing (nothing is written then)."""
    for k, folder in sorted(folders.items()):
        stored = load_json(folder / "config.json")
        for name in DECIDING:
            if stored.get(name) != config.get(name):
                raise UserError(f"merge: shard {k}/{len(folders)} ({folder}) was run with other "
                                f"settings ({name}: {stored.get(name)!r}, not {config.get(name)!r})")
    table = ({t: as_prices(prices) for t in config["tasks"]} if prices is not None
             else merged_prices(folders, config["tasks"]))
    found, missing = [], []
    for i, (task, entry, lr, seed, spec) in enumerate(plan):
        k, name = i % len(folders) + 1, f"{spec_key(spec)}.json"
        path = folders[k] / "runs" / name
        record = load_record(path, spec) if path.exists() else None
        if record is None:
            missing.append((k, name))
        elif task.name not in table:
            raise UserError(f"merge: no shard holds the oracle prices of the {task.name} task "
                            "(prices.json)")
        else:
            found.append((name, reprice(record, table[task.name])))
    if missing:
        raise missing_runs("merge", folders, missing)
    if prices is None:
        write_json(out / "prices.json", table)
    (out / "runs").mkdir(exist_ok=True)
    for name, record in found:
        write_json(out / "runs" / name, record)
