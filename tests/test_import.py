"""What ``import minilayerlr`` does: it loads the engine and the optimizers, not the checkpoint
code, the experiments or the checkers, and leaves ``sys.excepthook`` as it found it (the
command line handles its own errors)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = """
import json, sys
hook = sys.excepthook
import minilayerlr
loaded = sorted(name for name in sys.modules if name.startswith("minilayerlr"))
same_hook = sys.excepthook is hook
minilayerlr.load_checkpoint  # the lazy attribute still works
print(json.dumps({"loaded": loaded, "same_hook": same_hook,
                  "checkpoint_after": "minilayerlr.training.checkpoint" in sys.modules}))
"""


def _probe() -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_import_loads_the_engine_and_optimizers_not_the_checkpoint_code():
    result = _probe()
    loaded = set(result["loaded"])
    for needed in ("minilayerlr.curvature", "minilayerlr.evaluation", "minilayerlr.model",
                   "minilayerlr.optim.layerwise", "minilayerlr.optim.global_step",
                   "minilayerlr.training.loop"):
        assert needed in loaded, needed
    for absent in ("minilayerlr.training.checkpoint", "minilayerlr.training.safe_npz",
                   "minilayerlr.training.fingerprint", "minilayerlr.training.resume_checks",
                   "minilayerlr.experiments", "minilayerlr.testing", "minilayerlr.cli"):
        assert absent not in loaded, absent
    assert result["checkpoint_after"], "minilayerlr.load_checkpoint must import it on first use"


def test_import_installs_no_excepthook():
    assert _probe()["same_hook"]


def test_the_deprecated_names_are_gone():
    import minilayerlr as mll
    assert not hasattr(mll.Sequential, "loss")
    assert not hasattr(mll.optim, "ESTIMATOR_KINDS")
    net = mll.Sequential([mll.Dense(2, 1)], mll.MeanSquaredError())
    params = net.init(0)
    try:
        net.evaluate(params, [[1.0, 2.0]], y=[[0.0]])
    except TypeError as error:
        assert "y" in str(error)
    else:
        raise AssertionError("evaluate accepted the former keyword y=")
