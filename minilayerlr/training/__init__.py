"""Training: the loop, its history, checkpoints and progress display.

``train(net, params, optimizer, x, y, epochs=..., batch_size=...)`` runs
seeded mini-batch training with any ``minilayerlr.optim`` optimizer, records a
:class:`History` (losses, metrics, times, per-step step sizes), stops cleanly
on divergence, and writes/resumes ``.npz`` checkpoints bit for bit.
"""
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .loop import TrainResult, dataset_loss, train
from .progress import Progress

__all__ = ["History", "Progress", "TrainResult", "dataset_loss", "load_checkpoint",
           "save_checkpoint", "train"]
