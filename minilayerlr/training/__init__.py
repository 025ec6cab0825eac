"""Training: the loop, its history, checkpoints and progress display.

``train(net, params, optimizer, x, y, epochs=..., batch_size=...)`` runs
seeded mini-batch training with any ``minilayerlr.optim`` optimizer, records a
:class:`History` (losses, metrics, times, per-step step sizes), stops cleanly
on divergence, and writes/resumes ``.npz`` checkpoints bit for bit.
"""
from .history import History
from .loop import TrainResult, dataset_loss, train
from .progress import Progress


def __getattr__(name):
    """``load_checkpoint`` and ``save_checkpoint``, imported on first use (PEP 562): the
    checkpoint code is not loaded by ``import minilayerlr``."""
    if name in ("load_checkpoint", "save_checkpoint"):
        from . import checkpoint
        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["History", "Progress", "TrainResult", "dataset_loss", "load_checkpoint",
           "save_checkpoint", "train"]
