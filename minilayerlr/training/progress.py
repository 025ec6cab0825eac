"""A one-line progress display on stderr, redrawn in place with ``\\r``.

Plain text, no dependency. It stays silent for the first ``delay`` seconds,
so short runs (and tests) print nothing, and it is off when the stream is not
a terminal (logs and pipes get no carriage-return clutter) unless forced on.
"""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    """Redraws ``label epoch e/E step s loss ... t s`` at most every ``interval`` seconds.

    Args:
        label: text shown first, e.g. "cnn SGD-m lr=0.1".
        total_epochs: E.
        enabled: True, False, or None (on when ``stream`` is a TTY).
        stream: where to write (default ``sys.stderr``).
        delay: seconds of silence before the first line.
        interval: minimum seconds between redraws.
    """

    def __init__(self, label: str, total_epochs: int, enabled: Optional[bool] = None,
                 stream: Optional[TextIO] = None, delay: float = 2.0, interval: float = 0.25):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.label, self.total_epochs = label, total_epochs
        self.delay, self.interval = delay, interval
        self.start = time.perf_counter()
        self.last_draw = -float("inf")
        self.width = 0

    def update(self, epoch: int, step: int, loss: float, force: bool = False) -> None:
        """Redraw if enabled, past the initial delay and the redraw interval (or forced)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < self.delay or (not force and now - self.last_draw < self.interval):
            return
        self.last_draw = now
        line = (f"{self.label}  epoch {epoch}/{self.total_epochs}  step {step}  "
                f"loss {loss:.4g}  {now - self.start:.1f}s")
        # pad with spaces so a shorter line fully covers the previous one
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()
        self.width = len(line)

    def close(self) -> None:
        """End the line if anything was drawn."""
        if self.enabled and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0
