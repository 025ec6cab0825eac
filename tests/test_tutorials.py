"""Every tutorial runs start to finish in fast mode and asserts what it teaches.

Each tutorial is a plain Python script (percent-format notebook); we run it in
a subprocess with ``MINILAYERLR_FAST=1`` and the Agg backend, pictures going to
a temporary folder, and require exit code 0. The tutorials' own ``assert``s
compare the library against hand derivations and the theory, so a wrong
library breaks them.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "tutorials").glob("[0-9][0-9]_*.py"))


def test_tutorials_are_found():
    assert len(TUTORIALS) >= 7


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs(path, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", MINILAYERLR_FAST="1", MINILAYERLR_OUT=str(tmp_path),
               # small matrices: threaded BLAS only adds contention on a busy CI machine
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(path)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{path.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert list(tmp_path.glob("*.png")), f"{path.name} saved no picture"
