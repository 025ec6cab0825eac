"""The training loop: seeded mini-batches, one evaluation per step, history, checkpoints.

Each step evaluates the network once on the mini-batch and hands the
optimizer the gradient and exactly the oracles it declares (the oracle
protocol of ``minilayerlr.optim.oracles``), all from *that* evaluation::

    ev = net.evaluate(params, x_batch, y_batch)
    oracles = supply_oracles(optimizer, ev, loss=lambda p: net.loss_value(p, x_batch, y_batch))
    updates, state = optimizer.update(ev.grads, state, params, **oracles)
    params = apply_updates(params, updates)

Plain methods declare no oracle; the layer-wise methods call the curvature
oracle once on their direction, so g, d and the curvature all come from the
same mini-batch, as the step-size formula assumes (docs/design.md). After each
step the loop records ``step_diagnostics(state)`` (step sizes, fallback codes).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import NonFiniteError
from ..model import Sequential
from ..optim.base import step_diagnostics
from ..optim.oracles import supply_oracles
from ..optim.state_checks import check_nested_state_values
from ..paths import RunLock, check_output_file
from ..tree import add_updates, check_same_structure, check_tree
from ..validation import check_int, check_memory
from .history import History, as_metrics
from .progress import Progress

EvalFn = Callable[[list], Dict[str, float]]

#: A diverging run overflows inside the network before a loss turns non-finite;
#: the loop checks finiteness itself and says so in one line (``stop_reason``),
#: so NumPy's RuntimeWarnings are silenced in the step and the per-epoch evaluation.
QUIET_OVERFLOW = dict(over="ignore", invalid="ignore", divide="ignore")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        params: the final parameters (the last finite ones if the run diverged).
        state: the optimizer state that goes with them.
        history: the recorded curves (see :class:`History`).
    """

    params: list
    state: Any
    history: History


def dataset_loss(net, params, x, y, chunk: int = 256) -> float:
    """f(θ) on the whole set (x, y), in chunks of ``chunk`` examples to bound memory.

    256 rather than more: a chunk's activations (the CNN's patches, the autoencoder's
    256 × 784 outputs) then stay in the CPU caches; larger chunks made the per-epoch
    evaluation slower (docs/cost.md).

    The losses are means over examples, so the chunk means are weighted by the
    chunk sizes. Networks that mix examples (graphs) are evaluated in one go.
    """
    n = len(x)
    if net.mixes_examples or n <= chunk:
        return float(net.loss_value(params, x, y))
    total = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        total += net.loss_value(params, x[start:stop], y[start:stop]) * (stop - start)
    return total / n


def _batches(rng: np.random.Generator, n: int, batch_size: Optional[int]):
    """Index arrays of one epoch: a fresh permutation cut into batches (last may be short)."""
    if batch_size is None:
        return [None]  # full batch, no shuffling needed (the loss is a mean)
    order = rng.permutation(n)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]


def step(net, optimizer, params, state, xb, yb):
    """One training step on the mini-batch (xb, yb): ``(loss, new_params, new_state)``.

    The optimizer gets exactly its declared oracles, each from this one
    evaluation (``loss`` is θ ↦ f(θ) on this mini-batch). Raises NonFiniteError
    (a ValueError) when the loss or the curvature is not finite or the update
    overflows; ``train`` turns that into a clean stop. Each input is scanned for
    NaN/Inf once: θ and the batch by ``evaluate``, g and the state by the optimizer's
    ``update``, the curvature by the optimizer that asked for it, θ + u by ``add_updates``.
    """
    with np.errstate(**QUIET_OVERFLOW):
        ev = net.evaluate(params, xb, yb)
        if not math.isfinite(ev.loss):
            raise NonFiniteError(f"non-finite loss {ev.loss}")
        oracles = supply_oracles(optimizer, ev, loss=lambda p: net.loss_value(p, xb, yb))
        updates, new_state = optimizer.update(ev.grads, state, params, **oracles)
        # θ was scanned by evaluate; add_updates scans θ + u, which a NaN or Inf u reaches too
        return float(ev.loss), add_updates(params, updates), new_state


def train(net, params, optimizer, x, y, *, epochs: int, batch_size: Optional[int] = None,
          seed: int = 0, eval_fn: Optional[EvalFn] = None, checkpoint=None,
          checkpoint_every: int = 1, resume=None, progress: Optional[bool] = None,
          label: str = "train", overwrite: bool = False, extra_state=None,
          initial: Optional[Tuple[float, Dict[str, float]]] = None) -> TrainResult:
    """Train ``net`` from ``params`` with ``optimizer`` for ``epochs`` epochs.

    Args:
        net: a ``Sequential``.
        params: initial parameters (``net.init(seed)``); ignored when resuming.
        optimizer: anything with ``init(params)``, ``update(grads, state, params,
            **oracles)`` and an ``oracles`` attribute naming what it needs
            (``minilayerlr.optim``; see ``minilayerlr.optim.oracles``).
        x: training inputs, shape (N, ...).
        y: training targets, N entries (labels, or images for an autoencoder).
        epochs: total number of epochs, counting those already in a resumed
            checkpoint; 0 only evaluates the initial parameters.
        batch_size: examples per step; None trains full batch (one step per
            epoch, no shuffling). Networks that mix examples (graph
            convolutions) must train full batch: the loss's mask selects the
            labelled nodes.
        seed: seeds the generator that shuffles the examples each epoch.
        eval_fn: ``params -> {name: value}`` evaluated after each epoch (and
            at epoch 0), e.g. test accuracy; its time is not counted.
        checkpoint: path of an ``.npz`` written every ``checkpoint_every``
            epochs and when the run ends (finished or stopped).
        checkpoint_every: epochs between checkpoints (>= 1).
        resume: path of a checkpoint to continue from. The continued run is bit
            for bit the run that was never interrupted (times aside).
        progress: show a progress line on stderr: True, False, or None (only
            when stderr is a terminal). It appears after 2 s.
        label: prefix of the progress line.
        overwrite: replace an existing ``checkpoint`` file that is not the one
            this run resumes from (refused otherwise, before any work).
        extra_state: the caller's own state that must survive a resume along
            with the run (e.g. what ``eval_fn`` accumulates): an object with
            ``state_dict() -> dict`` (JSON-able), saved in every checkpoint, and
            ``load_state_dict(dict or None)``, called on resume (None: the
            checkpoint holds none).
        initial: (f(params) on (x, y), ``eval_fn(params)``) when the caller has them
            already, e.g. from an earlier run from the same weights; epoch 0 then
            records them instead of evaluating (``eval_fn`` is first called after
            epoch 1). Not with ``resume``.

    Returns:
        TrainResult(params, state, history). If a loss, curvature or parameter
        becomes NaN or Inf, training stops, ``params`` are the last finite
        ones and ``history.stop_reason`` says what happened.

    Raises:
        ValueError: bad arguments (named), or a checkpoint that does not
            belong to this network, optimizer, seed or batch size.
        FileNotFoundError: ``resume`` names no file.
    """
    epochs, seed, checkpoint_every, batch_size = _check_arguments(
        net, optimizer, x, y, epochs, batch_size, seed, eval_fn, checkpoint, checkpoint_every)
    _check_options(checkpoint=checkpoint, resume=resume, progress=progress, label=label,
                   overwrite=overwrite)
    initial = _check_initial(initial, eval_fn, resume)
    if resume is None:
        net.check_inputs(params, x)  # names params[k][key] or x: structure, dtype, NaN/Inf
    meta = lock = None
    if checkpoint is not None or resume is not None:  # the checkpoint code loads only for these runs
        from .checkpoint import check_checkpoint_target, run_meta
        meta = {**_run_meta(optimizer, seed, batch_size, len(x)), **run_meta(net, params, x, y)}
    if checkpoint is not None:  # one writer per checkpoint file: a second run is refused
        lock = RunLock("checkpoint", check_output_file("checkpoint", checkpoint))
    try:
        if checkpoint is not None:
            checkpoint = check_checkpoint_target(checkpoint, resume, overwrite, meta)
        return _train(net, params, optimizer, x, y, epochs, batch_size, seed, eval_fn,
                      checkpoint, checkpoint_every, resume, progress, label, meta, extra_state,
                      initial)
    finally:
        if lock is not None:
            lock.release()


def _train(net, params, optimizer, x, y, epochs, batch_size, seed, eval_fn, checkpoint,
           checkpoint_every, resume, progress, label, meta, extra_state,
           initial=None) -> TrainResult:
    """The body of :func:`train`, once its arguments are checked and the checkpoint locked."""
    n = len(x)
    rng = np.random.default_rng(seed)

    evaluate = partial(_evaluate, net, x, y, eval_fn)
    if resume is not None:
        from .resume_checks import check_metric_names
        params, state, history, start_epoch, extra = _resume(resume, net, optimizer, meta,
                                                             epochs, rng)
        check_metric_names(eval_fn, params, history)
        if extra_state is not None:
            extra_state.load_state_dict(extra)
    else:
        state, history, start_epoch = optimizer.init(params), History(), 0
        loss0, metrics0 = evaluate(params) if initial is None else initial
        history.record_epoch(0, loss0, metrics0, 0.0, 0)
        if not math.isfinite(loss0):
            history.stop_reason = "the loss of the initial parameters is not finite"

    elapsed, steps = history.time[-1], history.steps[-1]
    display = Progress(label, epochs, enabled=progress)
    try:
        for epoch in range(start_epoch + 1, epochs + 1):
            if history.stop_reason is not None:
                break
            started = time.perf_counter()
            for idx in _batches(rng, n, batch_size):
                xb, yb = (x, y) if idx is None else (x[idx], y[idx])
                try:
                    loss, params_next, state_next = step(net, optimizer, params, state, xb, yb)
                except NonFiniteError as why:
                    history.stop_reason = (f"diverged at step {steps + 1} (epoch {epoch}): {why}; "
                                           "stopped, keeping the last finite parameters")
                    break
                params, state, steps = params_next, state_next, steps + 1
                _record_step(history, loss, state)
                display.update(epoch, steps, loss)
            elapsed += time.perf_counter() - started
            loss, metrics = evaluate(params)
            history.record_epoch(epoch, loss, metrics, elapsed, steps)
            if history.stop_reason is None and not math.isfinite(loss):
                history.stop_reason = (f"diverged after epoch {epoch}: the training loss is {loss}; "
                                       "stopped, keeping the last finite parameters")
            display.update(epoch, steps, loss, force=True)
            done = history.stop_reason is not None or epoch == epochs
            if checkpoint is not None and (done or epoch % checkpoint_every == 0):
                from .checkpoint import save_checkpoint
                save_checkpoint(checkpoint, params=params, opt_state=state,
                                rng_state=rng.bit_generator.state, history=history.to_dict(),
                                epoch=epoch, meta=meta,
                                extra=None if extra_state is None else extra_state.state_dict())
    finally:
        display.close()
    return TrainResult(params=params, state=state, history=history)


def _evaluate(net, x, y, eval_fn, p):
    """(training loss, metrics) at ``p``; overflow shows as a non-finite loss, not a warning."""
    with np.errstate(**QUIET_OVERFLOW):
        return dataset_loss(net, p, x, y), as_metrics(eval_fn(p)) if eval_fn is not None else {}


def _run_meta(optimizer, seed: int, batch_size: Optional[int], n: int) -> dict:
    """What a checkpoint records about its run; resuming needs every entry to match."""
    return {"seed": seed, "batch_size": batch_size, "num_examples": n,
            "optimizer": repr(optimizer)}


def _record_step(history: History, loss: float, state) -> None:
    """Append the step's loss and the optimizer's diagnostics (step sizes, fallback codes)."""
    diagnostics = step_diagnostics(state)
    history.step_loss.append(loss)
    history.step_sizes.append([float(a) for a in np.asarray(diagnostics["step_sizes"])])
    history.fallbacks.append([int(c) for c in np.asarray(diagnostics["fallbacks"])])


def _check_arguments(net, optimizer, x, y, epochs, batch_size, seed, eval_fn, checkpoint,
                     checkpoint_every):
    """Validate train's arguments (each error names one); returns the normalised integers."""
    if not isinstance(net, Sequential):
        raise TypeError(f"net: expected a minilayerlr Sequential, got {type(net).__name__}")
    for method in ("init", "update"):
        if isinstance(optimizer, type) or not callable(getattr(optimizer, method, None)):
            raise TypeError(f"optimizer: expected an optimizer instance with init() and update(), "
                            f"got {optimizer!r}")
    epochs = check_int("epochs", epochs, 0)
    seed = check_int("seed", seed, 0)
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
    if not isinstance(x, np.ndarray) or x.ndim < 2 or len(x) == 0:
        raise ValueError(f"x: expected a non-empty array of shape (N, ...), got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(y, np.ndarray):
        raise TypeError(f"y: expected a numpy array of targets, got {type(y).__name__}")
    if y.ndim == 0:
        raise ValueError(f"y: expected {len(x)} targets (one per example of x), got a 0-d array {y!r}")
    if len(y) != len(x):
        raise ValueError(f"y: expected {len(x)} targets (one per example of x), got {len(y)}")
    n = len(x)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, 1)
        if batch_size > n:
            raise ValueError(f"batch_size: {batch_size} exceeds the {n} training examples")
        if getattr(optimizer, "full_batch", False) is True and batch_size < n:
            raise ValueError(f"batch_size: {type(optimizer).__name__} is a full-batch method "
                             "(its theory assumes exact gradients): use batch_size=None")
        if net.mixes_examples and batch_size < n:
            raise ValueError("batch_size: this network mixes examples (graph convolution), so it "
                             "trains full batch: use batch_size=None")
    per_epoch = 1 if batch_size is None else -(-n // batch_size)
    # the history keeps a loss, L step sizes and L fallback codes per step (Python objects)
    check_memory("epochs", f"{epochs} epochs of {per_epoch} step(s) (the per-step history)",
                 float(epochs) * per_epoch * (200 + 48 * len(net.blocks)))
    if eval_fn is not None and not callable(eval_fn):
        raise ValueError("eval_fn: expected a callable params -> {name: value}")
    return epochs, seed, checkpoint_every, batch_size


def _check_initial(initial, eval_fn, resume):
    """``initial`` as (float, {name: float}), or a ValueError naming it."""
    if initial is None:
        return None
    if resume is not None:
        raise ValueError("initial: a resumed run continues from its checkpoint, not from params")
    try:
        loss, metrics = initial
        loss = float(loss)
        metrics = {str(name): float(value) for name, value in dict(metrics).items()}
    except (TypeError, ValueError):
        raise ValueError(f"initial: expected (loss, {{metric: value}}), got {initial!r}") from None
    if eval_fn is None and metrics:
        raise ValueError(f"initial: names metrics {sorted(metrics)} but there is no eval_fn")
    return loss, metrics


def _check_options(*, checkpoint, resume, progress, label, overwrite) -> None:
    """TypeError naming the argument unless the paths are paths and the flags are flags."""
    for name, value in (("checkpoint", checkpoint), ("resume", resume)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name}: expected a file path (str or Path), got {type(value).__name__}")
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f"progress: expected True, False or None, got {progress!r}")
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite: expected True or False, got {overwrite!r}")
    if not isinstance(label, str):
        raise TypeError(f"label: expected a string, got {type(label).__name__}")


def _resume(resume, net, optimizer, meta: dict, epochs: int, rng: np.random.Generator):
    """Load ``resume`` for this run: ``(params, state, history, epoch)``; sets ``rng``'s state.

    Raises ValueError when the checkpoint was written by a different run
    (``meta``), has done more than ``epochs`` epochs, or is corrupt.
    """
    from .checkpoint import check_layout, check_resume_meta, decode_tree, load_checkpoint
    from .resume_checks import check_loaded_values
    saved = load_checkpoint(resume)
    check_resume_meta(saved["meta"], meta)
    if saved["epoch"] > epochs:
        raise ValueError(f"epochs: the checkpoint has already done {saved['epoch']} epochs; "
                         f"ask for at least that many")
    template = net.init(0)
    try:
        params = decode_tree(saved["params_spec"], template, saved["arrays"], "params")
        check_same_structure(params, template, "params")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"resume: the checkpoint's parameters do not fit this network "
                         f"(written for a different architecture?): {error}") from None
    try:
        check_tree(params, "params")
        fresh = optimizer.init(params)
        state = decode_tree(saved["opt_spec"], fresh, saved["arrays"], "state")
        check_layout(state, fresh, "state")
        check_nested_state_values(state)  # the values update would refuse: NaN momentum, ν < 0, ...
        rng.bit_generator.state = saved["rng_state"]
        history = History.from_dict(saved["history"])
        check_loaded_values(params, state, history, saved)
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
        raise ValueError(f"resume: {resume} is corrupt: {error}") from None
    return params, state, history, saved["epoch"], saved["extra"]
