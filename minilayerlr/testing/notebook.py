"""What every tutorial needs before its first picture: fast mode, an output folder, ``save``.

Tutorials run three ways: as plain scripts (pictures only saved), inside a
notebook kernel (pictures saved and shown inline) and from the tests with
``MINILAYERLR_FAST=1`` (shrunk to seconds). Environment variables:
``MINILAYERLR_FAST=1`` selects the fast mode; ``MINILAYERLR_OUT`` names the
folder the PNGs go to (default: a fresh temporary folder, printed).
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tutorial:
    """Settings of one tutorial run.

    Attributes:
        fast: True under ``MINILAYERLR_FAST=1``.
        out: folder the pictures are written to.
        interactive: True inside a notebook kernel.
    """

    fast: bool
    out: Path
    interactive: bool

    def save(self, fig, name: str) -> Path:
        """Write ``fig`` as ``out/name`` (PNG); show it in a notebook, close it otherwise."""
        import matplotlib.pyplot as plt
        path = self.out / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        print("saved", path)
        if self.interactive:
            plt.show()
        else:
            plt.close(fig)
        return path


def start_tutorial(name: str) -> Tutorial:
    """Pick the plotting backend and the output folder; call before importing pyplot."""
    interactive = "ipykernel" in sys.modules
    if not interactive and not os.environ.get("MPLBACKEND"):
        import matplotlib
        matplotlib.use("Agg")
    out = Path(os.environ.get("MINILAYERLR_OUT") or tempfile.mkdtemp(prefix=f"minilayerlr-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    return Tutorial(fast=os.environ.get("MINILAYERLR_FAST") == "1", out=out, interactive=interactive)
