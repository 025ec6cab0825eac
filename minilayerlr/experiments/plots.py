"""PNG figures of a comparison: learning curves, per-layer step sizes, per-layer stability.

Each curve is the mean over seeds of the method's selected runs (its best
rate, for tuned methods), with a band from the smallest to the largest seed.
Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot),
so plotting never changes the backend of a notebook or opens a window.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import List

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from ..paths import atomic_write_bytes
from .horizon import FRACTIONS, fraction_epoch, fraction_name
from .methods import METHODS

#: line styles after the ten colours are used: (colour, style) is unique per method
_LINE_STYLES = ("-", "--", ":", "-.")


def _style(label: str, i: int):
    """(colour, line style) of a method: fixed by its place in the registry, the same in
    every figure and unique among registered methods; other labels (ablation variants)
    take their place ``i`` in the figure after the registry's."""
    labels = [m.label for m in METHODS.values()]
    k = labels.index(label) if label in labels else len(labels) + i
    return f"C{k % 10}", _LINE_STYLES[(k // 10) % len(_LINE_STYLES)]


def _save(fig: Figure, path: Path) -> Path:
    """Render to memory, then write atomically: a full disk never leaves a half (or empty) PNG."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=100, format="png", bbox_inches="tight")
    except OSError as error:
        raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from None
    return atomic_write_bytes(path, buffer.getvalue())


#: the mantissas labelled on a log axis, by the decades it spans (up to the first number)
_LOG_SUBS = ((0.6, (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)), (1.5, (1, 1.5, 2, 3, 5, 7)),
             (3.0, (1, 2, 5)), (float("inf"), (1,)))


def _log_y(ax) -> None:
    """A log y axis whose labels let one read a value: the more mantissas (1, 2, 5 × 10^k,
    ...) the fewer decades it spans, at most ten labels, evenly spaced round values on a
    range too short for any, all printed as plain numbers."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    if not (0 < lo < hi and np.isfinite(hi)):
        return
    decades = np.log10(hi / lo)
    subs = next(s for limit, s in _LOG_SUBS if decades <= limit)
    powers = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    ticks = [m * 10.0 ** e for e in powers for m in subs if lo <= m * 10.0 ** e <= hi]
    if len(ticks) < 3:
        ticks = [t for t in MaxNLocator(nbins=5).tick_values(lo, hi) if lo <= t <= hi]
    ticks = ticks[::-(-len(ticks) // 10)]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(lo, hi)


def _legend_below(ax, entries: int) -> None:
    """The panel's legend under its x axis, where it covers no data."""
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=min(3, max(1, entries)), frameon=False)


def _array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _positive(values) -> np.ndarray:
    """Values with non-positive or missing entries as NaN (gaps on a log axis)."""
    a = _array(values)
    a[~(a > 0)] = np.nan
    return a


def _stack(runs, get) -> np.ndarray:
    """(seeds, epochs) array of one per-epoch quantity; runs that stopped early pad with NaN."""
    rows = [_array(get(r)) for r in runs]
    width = max(len(r) for r in rows)
    return np.array([np.pad(r, (0, width - len(r)), constant_values=np.nan) for r in rows])


def _band(ax, x, ys, color, label, log: bool, ls: str = "-"):
    with warnings.catch_warnings():  # all-NaN columns (a diverged seed) are gaps
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, lo, hi = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
    if log:
        mean, lo, hi = (np.where(a > 0, a, np.nan) for a in (mean, lo, hi))
    ax.plot(x, mean, color=color, label=label, lw=1.5, ls=ls)
    if ys.shape[0] > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)


def _label(e: dict) -> str:
    return e["label"] + (f" (lr={e['lr']:g})" if e["lr"] is not None else "")


def plot_curves(block: dict, path: Path) -> Path:
    """Training loss against epoch, seconds and gradient equivalents; test metric against epoch."""
    fig = Figure(figsize=(17, 3.9))
    axes = fig.subplots(1, 4)
    all_losses = [v for e in block["entries"] for r in e["_runs"]
                  for v in r["history"]["train_loss"] if v is not None]
    # log axis unless a loss is negative; a loss of exactly 0 (a cross-entropy that underflowed on
    # a long run) is a gap there, not a reason to draw every curve on a linear axis
    log = any(v > 0 for v in all_losses) and min(all_losses) >= 0
    evaluations = 0  # of the longest run, epoch 0 included
    for i, e in enumerate(block["entries"]):
        runs, (color, ls) = e["_runs"], _style(e["label"], i)
        loss = _stack(runs, lambda r: r["history"]["train_loss"])
        width = loss.shape[1]
        evaluations = max(evaluations, width)
        epochs = np.arange(width)
        seconds = np.nanmean(_stack(runs, lambda r: r["history"]["time"]), 0)
        _band(axes[0], epochs, loss, color, _label(e), log, ls)
        _band(axes[1], seconds, loss, color, _label(e), log, ls)
        if all(r.get("grad_equivalents") for r in runs):
            ge = np.nanmean(_stack(runs, lambda r: r["grad_equivalents"]), 0)
            _band(axes[2], ge, loss, color, _label(e), log, ls)
        metric = _stack(runs, lambda r: r["history"]["metrics"].get(block["metric"], []))
        _band(axes[3], np.arange(metric.shape[1]), metric, color, _label(e), False, ls)
    marks = _horizon_marks(evaluations - 1)
    for ax in (axes[0], axes[3]):
        for epoch, name in marks:
            ax.axvline(epoch, color="0.55", ls=":", lw=1, zorder=0)
            ax.text(epoch, 0.99, f" {name}", transform=ax.get_xaxis_transform(), va="top",
                    fontsize=7, color="0.4")
    labels = ("epoch", "training time (s)", "gradient equivalents (passes over the data)", "epoch")
    for ax, xlabel in zip(axes, labels):
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    cap, above = _loss_cap(block)
    for ax in axes[:3]:
        ax.set_ylabel("training loss" + (" (log scale)" if log else ""))
        if log:
            ax.set_yscale("log")
        low, high = ax.get_ylim()
        if cap is not None and high > cap:  # the autoscaled bottom was padded for the blow-up too
            floor = min((v for v in all_losses if v > 0), default=low) / 2 if log else low
            ax.set_ylim(max(low, floor), cap)
        if log:
            _log_y(ax)
    axes[3].set_ylabel(block["metric"].replace("_", " "))
    # one legend beside the panels, where it covers no curve
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8)
    k = len(block["seeds"])
    cut = (f"\nloss axes cut at {cap:.3g} = {LOSS_AXIS_FACTOR:g}× the largest initial loss; "
           f"above it: {', '.join(above)}") if above else ""
    dotted = f"; dotted: {' and '.join(n for _, n in marks)} of the epochs" if marks else ""
    fig.suptitle(f"{block['task']}: {block['description']} — "
                 + (f"mean of {k} seeds, band: min to max" if k > 1 else
                    f"one seed ({block['seeds'][0]})") + dotted + cut, fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.14, top=0.84 if cut else 0.88, wspace=0.3)
    return _save(fig, path)


def _horizon_marks(epochs: int):
    """(epoch, name) of the budget fractions before the end that the horizon table reports.

    Only epochs strictly inside the run are marked (the last is the final loss); fractions
    that share an epoch share its mark ("25%/50%" on a two-epoch run).
    """
    marks = {}
    for f in FRACTIONS:
        epoch = fraction_epoch(epochs, f)
        if 0 < epoch < epochs:
            marks.setdefault(epoch, []).append(fraction_name(f))
    return [(epoch, "/".join(names)) for epoch, names in sorted(marks.items())]


#: the loss axes end at this multiple of the largest initial loss: a run that blows up (K-FAC's
#: 1e133 on the long CNN) would otherwise squash every other curve into one line
LOSS_AXIS_FACTOR = 10.0


def _loss_cap(block: dict):
    """(the loss axes' top, labels of the methods whose mean or band goes above it)."""
    initial = [r["history"]["train_loss"][0] for e in block["entries"] for r in e["_runs"]
               if r["history"]["train_loss"] and r["history"]["train_loss"][0] is not None]
    initial = [v for v in initial if np.isfinite(v) and v > 0]
    if not initial:
        return None, []
    cap = LOSS_AXIS_FACTOR * max(initial)
    above = [_label(e) for e in block["entries"]
             if any(v is not None and v > cap for r in e["_runs"] for v in r["history"]["train_loss"])]
    return cap, above


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` steps, ignoring NaN (skipped steps)."""
    if width <= 1 or len(values) < width:
        return values
    ok = np.isfinite(values)
    kernel = np.ones(width)
    total = np.convolve(np.where(ok, values, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _layerwise(block: dict) -> List[dict]:
    out = []
    for e in block["entries"]:
        method = METHODS.get(e["_runs"][0]["method"])
        if method is not None and method.layerwise:
            out.append(e)
    return out


def plot_step_sizes(block: dict, path: Path) -> Path:
    """One panel per layer-wise method (first seed): α_l per step for every block, log scale.

    The dashed line is the learning rate of the base method (SGD-m for
    SGD-m-LS, AdamW for AdamW-LS): its tuned rate, or its one rate when no grid
    was searched. Faint lines per step, thick ones a moving average over an
    epoch; α_l = 0 (a step the rule skipped for that block) leaves a gap. The
    figure says so in its title, with the number of such steps per panel.
    """
    entries = _layerwise(block)
    rates = {e["label"]: (e["lr"], len(e["grid"])) for e in block["entries"] if e["lr"] is not None}
    names = block.get("block_names") or []
    fig = Figure(figsize=(4.6 * max(len(entries), 1), 3.8))
    axes = np.atleast_1d(fig.subplots(1, max(len(entries), 1)))
    faint, average = False, 1
    for ax, e in zip(axes, entries):
        run = e["_runs"][0]
        sizes = np.array(run["history"]["step_sizes"], dtype=float)
        if sizes.size == 0:
            ax.set_title(f"{e['label']}: no steps")
            continue
        steps = np.arange(1, len(sizes) + 1)
        per_epoch = max(1, run["history"]["steps"][-1] // max(1, run["history"]["epoch"][-1]))
        for l in range(sizes.shape[1]):
            alpha = _positive(sizes[:, l])
            if per_epoch > 1:
                ax.plot(steps, alpha, color=f"C{l % 10}", lw=0.5, alpha=0.25)
                faint, average = True, per_epoch
            ax.plot(steps, _smooth(alpha, per_epoch), color=f"C{l % 10}", lw=1.6,
                    label=names[l] if l < len(names) else f"block {l}")
            skipped = steps[sizes[:, l] == 0]
            if skipped.size:  # a tick along the bottom per skipped step: the gap made visible
                ax.plot(skipped, np.full(skipped.size, 0.02 + 0.03 * (l % 4)), "|",
                        color=f"C{l % 10}", ms=5, transform=ax.get_xaxis_transform())
        base = METHODS[run["method"]].base
        if base in rates:
            lr, grid = rates[base]
            ax.axhline(lr, color="k", ls="--", lw=1,
                       label=f"{base} lr {lr:g}" + (" (tuned)" if grid > 1 else " (one rate)"))
        zeros = int(np.sum(sizes == 0))
        _log_y(ax)
        ax.set_xlabel("step")
        ax.set_ylabel("step size α_l (log scale)")
        ax.set_title(e["label"] + (f": {zeros} of {sizes.size} α_l = 0 (gaps)" if zeros else
                                   ": no α_l = 0"), fontsize=9)
        ax.grid(alpha=0.3, which="both")
        _legend_below(ax, sizes.shape[1] + 1)
    how = [f"faint: α_l at each step; thick: its moving average over one epoch ({average} "
           "steps)" if faint else "one line per block: α_l at each step",
           "a gap (marked | at the bottom) is a step where the rule set α_l = 0, skipping that "
           "block" + ("; the average leaves such steps out" if faint else "")]
    fig.suptitle(f"{block['task']}: per-layer step sizes chosen by the layer-wise rule (seed "
                 f"{block['seeds'][0]})\n" + "\n".join(how), fontsize=9)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.76, wspace=0.3)
    return _save(fig, path)


def plot_stability(block: dict, path: Path) -> Path:
    """α_l·λ_max(H_ll) per block against epoch (mean over seeds), with the stability line 2."""
    entries = [e for e in _layerwise(block) if all(r.get("stability") for r in e["_runs"])]
    names = block.get("block_names") or []
    fig = Figure(figsize=(4.6 * max(len(entries), 1), 3.8))
    axes = np.atleast_1d(fig.subplots(1, max(len(entries), 1)))
    for ax, e in zip(axes, entries):
        runs = e["_runs"]
        epochs = [m["epoch"] for m in runs[0]["stability"]]
        prod = np.array([[m["product"] for m in r["stability"]] for r in runs], dtype=float)
        for l in range(prod.shape[2]):
            _band(ax, epochs, prod[:, :, l], f"C{l % 10}",
                  names[l] if l < len(names) else f"block {l}", True)
        ax.axhline(2.0, color="k", ls="--", lw=1, label="stability line 2")
        _log_y(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("α_l · λ_max(H_ll) (log scale)")
        # λ_max < 0 (a block curving down along every direction) gives a product ≤ 0,
        # which a log axis cannot show: say how many there are rather than hide them
        hidden = int(np.sum(~(prod > 0)))
        ax.set_title(e["label"] + (f": {hidden} of {prod.size} values ≤ 0 not drawn"
                                   if hidden else ""), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        _legend_below(ax, prod.shape[2] + 1)
    fig.suptitle(f"{block['task']}: each layer's step against its edge of stability "
                 "(λ_max by power iteration on block-masked HVPs), "
                 + ("mean over seeds" if len(block.get("seeds") or []) > 1 else "one seed") + ";\n"
                 "a value ≤ 0 (λ_max < 0, the block curves down) has no place on the log axis",
                 fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.82, wspace=0.3)
    return _save(fig, path)


def figure_names(task: str, suffix: str = "", layerwise: bool = True) -> List[str]:
    """The file names :func:`plot_block` may write for ``task`` (checked before any work)."""
    kinds = ("curves", "step_sizes", "stability") if layerwise else ("curves",)
    return [f"{task}{suffix}_{kind}.png" for kind in kinds]


def plot_block(block: dict, out, suffix: str = "") -> List[Path]:
    """Write ``<task><suffix>_curves.png``, and for layer-wise methods ``_step_sizes`` and ``_stability``."""
    out = Path(out)
    name = block["task"] + suffix
    paths = [plot_curves(block, out / f"{name}_curves.png")]
    if _layerwise(block):
        paths.append(plot_step_sizes(block, out / f"{name}_step_sizes.png"))
        if any(r.get("stability") for e in _layerwise(block) for r in e["_runs"]):
            paths.append(plot_stability(block, out / f"{name}_stability.png"))
    return paths
