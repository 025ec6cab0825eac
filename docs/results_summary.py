"""Print the README's summary table of a finished comparison (run by hand).

Per task: the leader, the LS methods' mean final training loss over the better tuned
constant-rate baseline's (SGD-m or AdamW at the best rate of its grid) and their rank,
then the geometric mean of those ratios over the tasks::

    python docs/results_summary.py RUN_FOLDER    # a compare --out folder (it reads results.json)
"""
import json
import math
import sys


def main(run: str) -> None:
    results = json.load(open(f"{run}/results.json"))
    print("| task | leader | SGD-m-LS / best tuned | rank | AdamW-LS / best tuned | rank | methods |")
    print("|---|---|---|---|---|---|---|")
    ratios = {"SGD-m-LS": [], "AdamW-LS": []}
    for task in results["tasks"]:
        entries = {e["label"]: e for e in task["entries"]}

        def loss(label):
            value = entries[label]["loss"]
            return value[0] if isinstance(value, list) else value  # (mean, sd)

        best = min(loss(label) for label in ("SGD-m", "AdamW") if label in entries)
        leader = min(entries, key=lambda label: math.inf if loss(label) is None else loss(label))
        row = [task["task"], leader]
        for method in ratios:
            ratios[method].append(loss(method) / best)
            row += [f"{ratios[method][-1]:.3g}", str(entries[method]["rank"])]
        print("| " + " | ".join(row + [str(len(entries))]) + " |")
    for method, values in ratios.items():
        print(f"{method}: geometric mean {math.exp(sum(map(math.log, values)) / len(values)):.3g}")


if __name__ == "__main__":
    main(*sys.argv[1:])
