"""The table ``minilayerlr bench`` prints: every ratio of one run, per task, from medians and minima.

It reads only the result dict of ``bench.run_bench`` (its keys are documented
there and in docs/cost.md), so a stored ``--json`` file prints the same table.
"""
from __future__ import annotations

from ..curvature import KINDS


def _rows(result: dict) -> list:
    """(row name, cell function of one task's summary) for every reported quantity."""
    first = next(iter(result["tasks"].values()))
    methods = [name[len("step["):-1] for name in first["seconds"] if name.startswith("step[")]
    periods = first["periods"]
    rows = [("evaluate (ms)", lambda r: f"{1e3 * r['seconds']['evaluate']:.2f}"),
            ("hvp", lambda r: f"{r['ratios']['hvp']:.2f}")]
    rows += [(f"curvature {kind}", lambda r, kind=kind: f"{r['ratios'][f'curvature[{kind}]']:.2f}")
             for kind in KINDS]
    if "block_hessian" in first["ratios"]:  # with --peers
        rows += [("block_hessian (smallest)", lambda r: f"{r['ratios']['block_hessian']:.0f}")]
    rows += [(f"step {m}", lambda r, m=m: f"{r['ratios'][f'step[{m}]']:.2f}") for m in methods]
    rows += [(f"step {m} amortised over {t}",
              lambda r, m=m: f"{r['ratios'][f'step_amortised[{m}]']:.2f}")
             for m, t in periods.items() if t > 1]
    bases = first["base_of"]
    rows += [(f"step {m} / {bases[m]} step", lambda r, m=m: f"{r['step_vs_base'][m]:.2f}")
             for m in first["step_vs_base"]]
    rows += [(f"step {m} amortised / {bases[m]} step",
              lambda r, m=m: f"{r['amortised_step_vs_base'][m]:.2f}")
             for m in first["amortised_step_vs_base"]]
    return rows


def format_table(result: dict) -> str:
    """Rows = quantities; per task two columns: from the median and from the fastest run."""
    tasks = list(result["tasks"])
    rows = _rows(result)
    width = max(len(name) for name, _ in rows) + 2
    bases = next(iter(result["tasks"].values()))["base_of"]

    def both(cell, t):
        r = result["tasks"][t]
        return f"{cell(r):>8}{cell(r['of_min']):>8}"

    lines = ["ratios to one evaluate (forward + backward) on the same batch; a step with periodic "
             "work (K-FAC's inverses, Shampoo's roots) is timed at a step that does it "
             "(unamortised) and amortised over its period",
             f"{'':<{width}}" + "".join(f"{t:>16}" for t in tasks),
             f"{'':<{width}}" + "  median     min" * len(tasks),
             f"{'batch size':<{width}}" + "".join(f"{result['tasks'][t]['batch_size']:>16}" for t in tasks)]
    lines += [f"{name:<{width}}" + "".join(both(cell, t) for t in tasks) for name, cell in rows]
    lines += [f"{f'peak mem {m} / {b}':<{width}}"
              + "".join(f"{result['tasks'][t]['peak_memory_vs_base'][m]:>16.2f}" for t in tasks)
              for m, b in bases.items()]
    lines.append("")
    lines.append("targets of docs/cost.md (curvature = the extra cost: an LS step reuses its evaluation)")
    for q, target in result["targets"].items():
        cells = ""
        for t in tasks:
            for r in (result["tasks"][t], result["tasks"][t]["of_min"]):
                entry = r["targets"][q]
                cells += f"{entry['value']:>5.2f} {'ok' if entry['holds'] else 'NO'} "
        lines.append(f"{f'{q} <= {target}':<{width + 4}}" + cells)
    lines += _footer(result)
    return "\n".join(lines)


def _footer(result: dict) -> list:
    """The machine, the settings and a warning when the machine was busy."""
    m = result["machine"]
    lines = ["", f"numpy {m['numpy']}, BLAS {m['blas'].get('name')} {m['blas'].get('version', '')}, "
                 f"{m['usable_cores']} usable cores; {result['settings']['repeat']} runs after a "
                 f"warm-up; malloc: {result['settings']['allocator']}; "
                 f"threads: {m['environment'].get('OPENBLAS_NUM_THREADS', 'BLAS default')}"]
    load = m["load_average_1min"]
    if load is not None and load > m["usable_cores"]:
        lines.append(f"warning: load average {load:.1f} > {m['usable_cores']} cores: timings are noisy"
                     + ("" if "OPENBLAS_NUM_THREADS" in m["environment"]
                        else "; a threaded BLAS may stall, try OPENBLAS_NUM_THREADS=1"))
    return lines
