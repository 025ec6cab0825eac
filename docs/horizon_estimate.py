"""What the scheduled baselines add to the default comparison, and what ``compare --long`` takes.

Usage::

    python docs/horizon_estimate.py [docs/results/default-v2/results.csv] [WALL_SECONDS]

From a recorded default comparison (one seed) it sums the per-run ``wall_time``
(seconds of optimizer steps, as compare records them) per task and method. A
scheduled baseline (SGD-m cosine, AdamW cosine) runs the same grid as its
constant-rate base and costs the same per step, so it adds the base's time.
``--long`` runs 5× the epochs: 5× (default + scheduled). Whole wall time is
estimated by scaling with the recorded comparison's ratio of wall time to step
time (``WALL_SECONDS``, default 1111 s: docs/results/default-v2 took 1,025 s plus
a 86 s resume). Estimates, not measurements; only the standard library.
"""
import collections
import csv
import sys

SCHEDULED_BASES = ("sgd", "adamw")  # sgd-cos and adamw-cos: same grids, same step cost
LONG_FACTOR = 5


def main(path="docs/results/default-v2/results.csv", wall=1111.0):
    step = collections.defaultdict(float)
    with open(path) as f:
        for row in csv.DictReader(f):
            step[(row["task"], row["method"])] += float(row["wall_time"])
    tasks = list(dict.fromkeys(t for t, _ in step))
    ratio = wall / sum(step.values())
    print(f"{path}: {sum(step.values()):.0f} s of steps, {wall:.0f} s wall "
          f"(ratio {ratio:.2f}); seconds per seed:\n")
    print("| task | default (steps) | scheduled add | long = 5x(default + scheduled) |")
    print("|---|---|---|---|")
    totals = [0.0, 0.0, 0.0]
    for task in tasks:
        default = sum(v for (t, _), v in step.items() if t == task)
        added = sum(step[(task, m)] for m in SCHEDULED_BASES)
        long = LONG_FACTOR * (default + added)
        for i, v in enumerate((default, added, long)):
            totals[i] += v
        print(f"| {task} | {default:.1f} | {added:.1f} | {long:.0f} |")
    print(f"| all | {totals[0]:.0f} | {totals[1]:.0f} ({100 * totals[1] / totals[0]:.0f} %) | "
          f"{totals[2]:.0f} |")
    print(f"\nwall time estimates: default + scheduled {ratio * (totals[0] + totals[1]) / 60:.1f} "
          f"min (scheduled add {ratio * totals[1] / 60:.1f} min); --long "
          f"{ratio * totals[2] / 3600:.1f} h per seed")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or []), *(float(a) for a in sys.argv[2:3]))
