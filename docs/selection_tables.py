"""The tables of docs/measurements.md's second-edition selection, from comparison folders.

Usage (each argument NAME=FOLDER is a ``minilayerlr compare`` output folder, or its
results.csv; several may share a NAME, their runs are pooled, one per seed; ``base``
names the tuned baselines)::

    python docs/selection_tables.py base=base_main base=base_stress v01=v01 abs=abs ...

For every candidate and each of SGD-m-LS and AdamW-LS it prints the ratio of the mean
final training loss over the seeds to the better of tuned SGD-m's and tuned AdamW's
(each at the rate of its grid with the lowest mean), per task; their geometric mean
(the score of the rule); the worst ratio; diverged runs. Then, from the same records,
why: the median α_l·λ_max(H_ll) and λ_max(H_ll) of the stability measurements, the
share of block-steps with a fallback (and with "ascent"), the largest jump of a
block's α over its median, and the share of (block, epoch) pairs frozen at α = 0.
Only numpy and the standard library: it reads the JSON run records.
"""
import collections
import csv
import glob
import json
import math
import sys

import numpy as np

TASKS = ["autoencoder", "cnn", "gcn", "tanh-mlp", "regression"]
LS = ("SGD-m-LS", "AdamW-LS")


def records(folder):
    """The run records of a comparison folder, or the rows of a results.csv (no history)."""
    if folder.endswith(".csv"):
        with open(folder) as f:
            for row in csv.DictReader(f):
                yield {"task": row["task"], "label": row["label"], "seed": int(row["seed"]),
                       "lr": float(row["lr"]) if row["lr"] else None,
                       "final_train_loss": None if row["diverged"] == "True" else float(row["final_train_loss"]),
                       "stop_reason": "diverged" if row["diverged"] == "True" else ""}
        return
    for path in sorted(glob.glob(f"{folder}/runs/*.json")):
        with open(path) as f:
            yield json.load(f)


def final_loss(r):
    v = r["final_train_loss"]
    return math.inf if v is None or (r.get("stop_reason") or "").startswith("diverged") else v


def main(argv):
    folders = collections.defaultdict(list)
    for arg in argv:
        name, _, folder = arg.partition("=")
        folders[name].append(folder)
    # one loss per (task, method, rate, seed): a run found in two files counts once
    seen = {}
    for folder in folders.pop("base"):
        for r in records(folder):
            seen[(r["task"], r["label"], r["lr"], r["seed"])] = final_loss(r)
    tuned = collections.defaultdict(list)
    for (task, label, lr, _), loss in seen.items():
        tuned[(task, label, lr)].append(loss)
    best = {}
    for (task, label, lr), losses in tuned.items():
        mean = sum(losses) / len(losses)
        if (task, label) not in best or mean < best[(task, label)][0]:
            best[(task, label)] = (mean, lr, len(losses))
    reference = {t: min(best[(t, "SGD-m")][0], best[(t, "AdamW")][0]) for t in TASKS}
    unique = {}
    for name, paths in folders.items():
        for folder in paths:
            for r in records(folder):
                if r["label"] in LS:
                    unique[(name, r["label"], r["task"], r["seed"])] = r
    runs = collections.defaultdict(list)
    for (name, label, task, _), r in unique.items():
        runs[(name, label, task)].append(r)
    print("| candidate | method | " + " | ".join(TASKS) + " | geometric mean | worst | diverged runs |")
    print("|---|---|" + "---|" * (len(TASKS) + 3))
    for name in folders:
        for label in LS:
            ratios, cells, diverged = [], [], 0
            for task in TASKS:
                losses = [final_loss(r) for r in runs[(name, label, task)]]
                diverged += sum(not math.isfinite(v) for v in losses)
                if not losses:
                    cells.append("–")
                    continue
                ratios.append(sum(losses) / len(losses) / reference[task])
                cells.append(f"{ratios[-1]:.3g}")
            complete = len(ratios) == len(TASKS) and all(map(math.isfinite, ratios))
            score = math.exp(sum(map(math.log, ratios)) / len(ratios)) if complete else math.inf
            print(f"| `{name}` | {label} | " + " | ".join(cells)
                  + f" | {score:.3g} | {max(ratios, default=math.nan):.3g} | {diverged} |")
    print("\n| task | best tuned SGD-m (rate) | best tuned AdamW (rate) | seeds |")
    print("|---|---|---|---|")
    for task in TASKS:
        (s, s_lr, k), (a, a_lr, _) = best[(task, "SGD-m")], best[(task, "AdamW")]
        print(f"| {task} | {s:.4g} ({s_lr:g}) | {a:.4g} ({a_lr:g}) | {k} |")
    print("\n| candidate | method | task | median α_l·λ_max | median λ_max(H_ll) | fallback % "
          "| ascent % | largest α / median α | frozen block-epochs % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, label, task), rs in sorted(runs.items(), key=lambda kv: (list(folders).index(kv[0][0]), kv[0][1:])):
        print(f"| `{name}` | {label} | {task} | " + " | ".join(why(rs)) + " |")


def why(rs):
    rs = [r for r in rs if "history" in r]  # a results.csv row has none
    if not rs:
        return ["–"] * 6
    product, sharpness, fallback, ascent, jump, frozen = [], [], [], [], [], []
    for r in rs:
        for entry in r.get("stability") or []:
            product += entry["product"]
            sharpness += entry["lambda_max"]
        alpha = np.array(r["history"]["step_sizes"])
        codes = np.array(r["history"]["fallbacks"])
        fallback.append(np.mean(codes != 0))
        ascent.append(np.mean(codes == 1))
        for column in alpha.T:
            moving = column[column > 0]
            if len(moving) > 5:
                jump.append(moving.max() / np.median(moving))
        per_epoch = len(alpha) // r["epochs"]
        for e in range(r["epochs"]):
            frozen += list(np.all(alpha[e * per_epoch:(e + 1) * per_epoch] == 0, axis=0))
    median = lambda v: f"{np.median(v):.3g}" if v else "–"  # noqa: E731
    return [median(product), median(sharpness), f"{100 * np.mean(fallback):.1f}",
            f"{100 * np.mean(ascent):.1f}", f"{max(jump):.3g}" if jump else "–",
            f"{100 * np.mean(frozen):.1f}"]


if __name__ == "__main__":
    main(sys.argv[1:])
