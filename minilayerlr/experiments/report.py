"""results.md, results.csv and results.json of a comparison, generated from the run records."""
from __future__ import annotations

import csv
import io
import math
import platform
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np

from ..paths import atomic_write_bytes
from .horizon import horizon_markdown
from .runs import write_json
from .verdict import RULE


def versions() -> Dict[str, str]:
    """Versions of Python, the dependencies and minilayerlr."""
    import matplotlib
    import scipy

    from .. import __version__
    return {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
            "matplotlib": matplotlib.__version__, "minilayerlr": __version__,
            "platform": platform.platform()}


def _pm(mean_sd, accuracy: bool = False, seeds: int = 2) -> str:
    """``mean ± sd``; with one seed the value alone (an sd of one value is no spread)."""
    mean, sd = mean_sd
    if not math.isfinite(mean):
        return "diverged" if mean == math.inf else "n/a"
    value = f"{mean:.3f}" if accuracy else f"{mean:.4g}"
    if seeds < 2:
        return value
    return f"{value} ± {sd:.3f}" if accuracy else f"{value} ± {sd:.2g}"


def _searched(block: dict) -> bool:
    """Whether any method of ``block`` had a grid of rates to choose from."""
    return any(e["tuned"] and len(e["grid"]) > 1 for e in block["entries"])


def reference_words(block: dict) -> str:
    """How the tables name the reference's rate: "tuned SGD-m", or "SGD-m (one rate, not tuned)"."""
    ref = block.get("reference", "SGD-m")
    for e in block["entries"]:
        if e["label"] == ref and e["tuned"] and len(e["grid"]) == 1:
            return f"{ref} (one rate, not tuned)"
    return f"tuned {ref}"


def _lr_cell(e: dict) -> str:
    if not e["tuned"]:
        return "none"
    if len(e["grid"]) == 1:
        return f"{e['lr']:g} (one rate, not tuned)"
    edge = ", at the grid's edge" if e["at_edge"] else ""
    return f"{e['lr']:g} (best of {len(e['grid'])}{edge})"


def verdict_markdown(block: dict) -> str:
    """The verdict table of one task: mean ± sd, rank, and each challenger against each method."""
    entries, verdicts, k = block["entries"], block["verdicts"], len(block["seeds"])
    accuracy = block["metric"].endswith("accuracy")
    metric = block["metric"].replace("_", " ")
    challengers = list(verdicts)
    spread = f"mean ± sd, K={k}" if k > 1 else "one seed"
    head = ["method", "lr", f"final train loss ({spread})", metric, "rank"]
    head += [f"{c} vs it" for c in challengers]
    lines = [f"### {block['task']}: {block['description']}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in sorted(entries, key=lambda e: e["rank"]):
        cells = [e["label"] + (f" ({e['diverged']} of {k} diverged)" if e["diverged"] else ""),
                 _lr_cell(e), _pm(e["loss"], seeds=k), _pm(e["metric"], accuracy, k), str(e["rank"])]
        cells += ["—" if c == e["label"] else verdicts[c].get(e["label"], "—") for c in challengers]
        lines.append("| " + " | ".join(cells) + " |")
    edges = [e["label"] for e in entries if e["at_edge"]]
    lines.append("")
    lines.append("Grid check: " + (
        f"the best rate of {', '.join(edges)} is at an edge of its grid, so the grid does not "
        "bracket it (the tuned result may be better still)." if edges else
        "every tuned method's best rate lies inside its grid (bracketed)."
        if any(e["tuned"] and len(e["grid"]) > 1 for e in entries) else "no grid was searched."))
    return "\n".join(lines)


def cost_markdown(block: dict) -> str:
    """Per method: runs needed, time with tuning, per-epoch cost, and time to reach SGD-m's loss."""
    ref = reference_words(block)
    over = "mean over seeds" if len(block["seeds"]) > 1 else "one seed"
    lines = [f"Cost on {block['task']} ({over}; times count optimizer steps only, not "
             f"the per-epoch evaluation; gradient equivalents: forward+backward passes over the "
             f"whole training set, see docs/cost.md):", "",
             f"| method | runs needed | total time{' incl. tuning' if _searched(block) else ''} (s) "
             "| time per run (s) | "
             f"grad. equivalents per run | time to reach {ref}'s loss (s) | "
             "grad. equivalents to reach it |", "|---|---|---|---|---|---|---|"]

    def cell(value, fmt):
        return "not reached" if value is None else format(value, fmt)
    for e in sorted(block["entries"], key=lambda e: e["rank"]):
        lines.append(f"| {e['label']} | {e['runs_needed']} | {e['total_time']:.1f} | "
                     f"{e['time']:.1f} | {'n/a' if e['grad_eq'] is None else format(e['grad_eq'], '.1f')} | "
                     f"{cell(e['reach_time'], '.1f')} | {cell(e['reach_grad_eq'], '.1f')} |")
    return "\n".join(lines)


def stability_markdown(block: dict) -> str:
    """Largest α_l·λ_max(H_ll) per layer-wise method at its last measurement (stable below 2)."""
    rows = []
    for e in block["entries"]:
        runs = [r for r in e["_runs"] if r.get("stability")]
        if not runs:
            continue
        last = np.array([r["stability"][-1]["product"] for r in runs], dtype=float)
        rows.append(f"| {e['label']} | {runs[0]['stability'][-1]['epoch']} | "
                    + ", ".join(f"{v:.2g}" for v in np.nanmean(last, axis=0)) + " |")
    if not rows:
        return ""
    return "\n".join([f"Per-layer stability on {block['task']}: α_l·λ_max(H_ll) per block at the "
                      "last measured epoch (" + ("mean over seeds" if len(block["seeds"]) > 1 else "one seed") + "; a step is stable on the block's "
                      "quadratic model below 2):", "", "| method | epoch | α_l·λ_max, blocks in "
                      "order |", "|---|---|---|", *rows])


def results_markdown(config: dict, blocks: List[dict]) -> str:
    """The whole results.md: the command, the rule, then per task its tables."""
    parts = ["# Comparison results", "",
             f"Command: `{config.get('command', '')}`", "",
             f"Seeds: {config['seeds']}. Verdict rule: {RULE}", ""]
    if blocks and not any(_searched(b) for b in blocks):
        parts += ["No grid was searched here (e.g. --quick): each tuned method ran at one rate, "
                  "so no rate is tuned." + (" With one seed the verdicts compare single runs."
                                            if len(config["seeds"]) == 1 else ""), ""]
    for block in blocks:
        parts += [verdict_markdown(block), "", cost_markdown(block), ""]
        horizon = horizon_markdown(block)  # the loss at 25/50/100 % of the budget (issue 24)
        if horizon:
            parts += [horizon, ""]
        stab = stability_markdown(block)
        if stab:
            parts += [stab, ""]
    return "\n".join(parts)


#: the files write_reports writes into the run folder
REPORT_NAMES = ("results.json", "results.csv", "results.md")

CSV_FIELDS = ["task", "label", "method", "lr", "seed", "final_train_loss", "metric",
              "final_metric", "wall_time", "steps", "grad_equivalents", "diverged", "stop_reason"]


def write_reports(out: Path, config: dict, blocks: List[dict], records: List[dict]) -> Dict[str, Path]:
    """Write results.json (config, versions, summaries, every record), results.csv, results.md."""
    out = Path(out)
    paths = {"json": out / "results.json", "csv": out / "results.csv", "md": out / "results.md"}
    summaries = [{k: v for k, v in b.items() if k != "entries"}
                 | {"entries": [{k: v for k, v in e.items() if k != "_runs"} for e in b["entries"]]}
                 for b in blocks]
    write_json(paths["json"], {"config": config, "versions": versions(), "tasks": summaries,
                               "runs": records})
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for r in records:
        # a non-finite number is an empty cell, as in results.json (null), whether the record
        # is fresh (NaN in memory) or read back by --resume (null on disk)
        row = {k: (None if isinstance(r.get(k), float) and not math.isfinite(r[k]) else r.get(k))
               for k in CSV_FIELDS}
        row["grad_equivalents"] = (r["grad_equivalents"] or [None])[-1] if r.get("grad_equivalents") else None
        row["diverged"] = r["stop_reason"] is not None
        writer.writerow(row)
    atomic_write_bytes(paths["csv"], text.getvalue().encode())
    atomic_write_bytes(paths["md"], (results_markdown(config, blocks) + "\n").encode())
    return paths
