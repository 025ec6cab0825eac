"""Tests of the training loop: determinism, exact resume, divergence stop, checks."""
import hashlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minilayerlr as mll
from minilayerlr.optim import SGD, LayerwiseStepSize
from minilayerlr.testing import gamma
from minilayerlr.training import History, Progress, dataset_loss, load_checkpoint, train
from optimizer_list import OPTIMIZERS as OPTIMIZER_LIST


def _net():
    return mll.Sequential([mll.Dense(6, 8), mll.Tanh(), mll.Dense(8, 3)],
                          loss=mll.SoftmaxCrossEntropy())


def _data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return x, y


def _run(optimizer, epochs=3, seed=0, batch_size=16, **kwargs):
    net = _net()
    x, y = _data()
    return train(net, net.init(1), optimizer, x, y, epochs=epochs, batch_size=batch_size, seed=seed,
                 eval_fn=lambda p: {"acc": float(np.mean(net.forward(p, x).argmax(1) == y))},
                 progress=False, **kwargs)


def _without_time(history: History) -> dict:
    d = history.to_dict()
    d.pop("time")
    return d


def _assert_params_equal(a, b):
    for ea, eb in zip(a, b):
        assert list(ea) == list(eb)
        for k in ea:
            assert np.array_equal(ea[k], eb[k]), k


def _assert_states_equal(a, b):
    """Every array and scalar of two (nested dataclass) optimizer states, bit for bit."""
    from minilayerlr.training.checkpoint import encode_tree
    arrays_a, arrays_b = {}, {}
    assert encode_tree(a, "s", arrays_a) == encode_tree(b, "s", arrays_b)
    assert arrays_a.keys() == arrays_b.keys()
    for key in arrays_a:
        assert np.array_equal(arrays_a[key], arrays_b[key]), key


#: the optimizers: the one list of tests/optimizer_list.py
OPTIMIZERS = {name: entry.make for name, entry in OPTIMIZER_LIST.items()}
#: the idealized method is full batch (one step per epoch, no shuffling)
BATCH_SIZE = {name: None for name in OPTIMIZERS if getattr(OPTIMIZERS[name](), "full_batch", False)}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_same_seed_same_run(name):
    batch = BATCH_SIZE.get(name, 16)
    a, b = _run(OPTIMIZERS[name](), batch_size=batch), _run(OPTIMIZERS[name](), batch_size=batch)
    _assert_params_equal(a.params, b.params)
    assert _without_time(a.history) == _without_time(b.history)


def test_seed_changes_the_shuffle():
    a, b = _run(OPTIMIZERS["sgd-m"](), seed=0), _run(OPTIMIZERS["sgd-m"](), seed=1)
    assert a.history.step_loss[0] != b.history.step_loss[0]


def test_history_shapes_and_contents():
    result = _run(OPTIMIZERS["sgd-m-ls-ema"](), epochs=2)
    h = result.history
    steps_per_epoch = math.ceil(50 / 16)
    assert h.epoch == [0, 1, 2]
    assert h.steps == [0, steps_per_epoch, 2 * steps_per_epoch]
    assert h.step_size_array().shape == (2 * steps_per_epoch, 2)
    assert h.epoch_step_sizes().shape == (2, 2)
    # the last recorded step sizes are the optimizer's
    assert np.array_equal(h.step_size_array()[-1], result.state.step_sizes)
    assert len(h.step_loss) == 2 * steps_per_epoch and len(h.metrics["acc"]) == 3
    assert h.time[0] == 0 and all(t1 >= t0 for t0, t1 in zip(h.time, h.time[1:]))
    # epoch 0 is the initial parameters; the train loss is the whole-set loss
    net, (x, y) = _net(), _data()
    # the same loss (a mean of 50 positive terms): equal up to 2γ_50 if summed in another order
    assert h.train_loss[0] == pytest.approx(net.loss_value(net.init(1), x, y), rel=2 * gamma(len(x)), abs=0)
    assert h.train_loss[-1] == pytest.approx(net.loss_value(result.params, x, y), rel=2 * gamma(len(x)), abs=0)
    assert h.stop_reason is None
    assert History.from_dict(h.to_dict()) == h
    # the fallback codes each step took are recorded, one row per step
    assert np.asarray(h.fallbacks).shape == (2 * steps_per_epoch, 2)
    assert np.array_equal(h.fallbacks[-1], result.state.fallbacks)
    assert set(np.unique(h.fallbacks)) <= {0, 1, 2, 3}
    assert h.fallback_fractions().shape == (2,)


def test_plain_methods_record_no_fallbacks():
    h = _run(SGD(lr=0.1, momentum=0.9), epochs=1).history
    assert len(h.fallbacks) == len(h.step_loss) and not np.any(h.fallbacks)


def test_skipped_uphill_steps_show_in_the_history():
    """Momentum makes g_lᵀm_l < 0 on some steps: the 'ascent' code (1) must be recorded."""
    h = _run(LayerwiseStepSize(SGD(momentum=0.95), ema=0.0), epochs=4, batch_size=16).history
    assert h.stop_reason is None
    codes = np.asarray(h.fallbacks)
    assert (codes == 1).any()
    assert np.all(h.step_size_array()[codes == 1] == 0)  # "skip" is the default rule


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_reproduces_the_uninterrupted_run(tmp_path, name):
    batch = BATCH_SIZE.get(name, 16)
    straight = _run(OPTIMIZERS[name](), epochs=4, batch_size=batch)
    path = tmp_path / "ck.npz"
    first = _run(OPTIMIZERS[name](), epochs=2, checkpoint=path, batch_size=batch)
    assert load_checkpoint(path)["epoch"] == 2
    # the parameters given here are ignored: everything comes from the checkpoint
    net, (x, y) = _net(), _data()
    resumed = train(net, net.init(99), OPTIMIZERS[name](), x, y, epochs=4, batch_size=batch, seed=0,
                    eval_fn=lambda p: {"acc": float(np.mean(net.forward(p, x).argmax(1) == y))},
                    resume=path, progress=False)
    _assert_params_equal(resumed.params, straight.params)
    _assert_states_equal(resumed.state, straight.state)
    assert _without_time(resumed.history) == _without_time(straight.history)
    assert first.history.epoch == [0, 1, 2]
    assert not straight.history.diverged and straight.history.train_loss[-1] < straight.history.train_loss[0]
    if hasattr(straight.state, "avg_denominators"):  # the LS EMA state really was carried over
        assert np.all(straight.state.avg_denominators > 0)


def _digest(result) -> str:
    """sha256 of every parameter and optimizer-state array and the step losses, bit for bit."""
    from minilayerlr.training.checkpoint import encode_tree
    arrays = {}
    spec = encode_tree([result.params, result.state], "r", arrays)
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    for key in sorted(arrays):
        h.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
    h.update(np.array(result.history.step_loss).tobytes())
    return h.hexdigest()


CROSS_PROCESS = ["sgd-m", "adamw", "sgd-m-ls-ema", "adamw-ls-mc-fisher", "sgd-m-ls-sign-hvp", "gdls"]
_CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
import test_train as t
out = {{}}
for name in {names!r}:
    batch = t.BATCH_SIZE.get(name, 16)
    out[name] = t._digest(t._run(t.OPTIMIZERS[name](), epochs=4, batch_size=batch))
    t._run(t.OPTIMIZERS[name](), epochs=2, batch_size=batch, checkpoint={folder!r} + "/" + name + ".npz")
print(json.dumps(out))
"""


def test_same_seed_same_bits_across_processes_and_resume_in_another(tmp_path):
    # A fresh interpreter trains every kind of optimizer (hash of params, state and step
    # losses) and leaves a checkpoint at epoch 2; this process must reproduce the hashes,
    # and resuming the other process's checkpoint must give the same bits too.
    code = _CHILD.format(tests=str(Path(__file__).parent), names=CROSS_PROCESS, folder=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in CROSS_PROCESS:
        batch = BATCH_SIZE.get(name, 16)
        assert _digest(_run(OPTIMIZERS[name](), epochs=4, batch_size=batch)) == theirs[name], name
        resumed = _run(OPTIMIZERS[name](), epochs=4, batch_size=batch, resume=tmp_path / f"{name}.npz")
        assert _digest(resumed) == theirs[name], name


def test_checkpoint_is_plain_npz(tmp_path):
    path = tmp_path / "ck.npz"
    _run(OPTIMIZERS["sgd-m-ls-ema"](), epochs=1, checkpoint=path)
    with np.load(path, allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)
        assert any("avg_denominators" in name for name in data.files)  # the LS EMA state


def test_resume_refuses_a_foreign_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    _run(OPTIMIZERS["sgd-m"](), epochs=1, checkpoint=path)
    with pytest.raises(ValueError, match="seed"):
        _run(OPTIMIZERS["sgd-m"](), epochs=2, seed=5, resume=path)
    with pytest.raises(ValueError, match="optimizer"):
        _run(SGD(lr=0.2, momentum=0.9), epochs=2, resume=path)
    with pytest.raises(ValueError, match="epochs"):
        _run(OPTIMIZERS["sgd-m"](), epochs=0, resume=path)
    with pytest.raises(FileNotFoundError, match="resume"):
        _run(OPTIMIZERS["sgd-m"](), epochs=2, resume=tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="resume"):
        _run(OPTIMIZERS["sgd-m"](), epochs=2, resume=junk)


def test_divergence_stops_and_keeps_finite_params(tmp_path):
    # least squares with a far too large rate: the error grows geometrically until overflow
    net = mll.Sequential([mll.Dense(6, 1)], loss=mll.MeanSquaredError())
    x, _ = _data()
    y = x[:, :1].copy()
    path = tmp_path / "ck.npz"
    result = train(net, net.init(0), SGD(lr=1e3, momentum=0.9), x, y, epochs=100,
                   batch_size=16, checkpoint=path, progress=False)
    h = result.history
    assert h.diverged and "diverged" in h.stop_reason and "last finite" in h.stop_reason
    assert all(np.all(np.isfinite(v)) for entry in result.params for v in entry.values())
    assert h.epoch[-1] < 100  # it stopped early
    assert len(h.step_loss) == h.steps[-1] == len(h.step_sizes)
    assert load_checkpoint(path)["history"]["stop_reason"] == h.stop_reason


def test_argument_errors_name_the_argument():
    net, (x, y) = _net(), _data()
    params, opt = net.init(0), SGD(lr=0.1)
    for kwargs, word in [({"epochs": -1}, "epochs"), ({"epochs": 1, "batch_size": 0}, "batch_size"),
                         ({"epochs": 1, "batch_size": 51}, "batch_size"),
                         ({"epochs": 1, "seed": -2}, "seed"),
                         ({"epochs": 1, "eval_fn": 3}, "eval_fn")]:
        with pytest.raises(ValueError, match=word):
            train(net, params, opt, x, y, **kwargs)
    with pytest.raises(ValueError, match="y"):
        train(net, params, opt, x, y[:-1], epochs=1)


def test_graph_networks_train_full_batch_only():
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    a = mll.normalized_adjacency(edges, 4)
    net = mll.Sequential([mll.GraphConv(2, 2, a)],
                         loss=mll.SoftmaxCrossEntropy(mask=np.array([True, True, False, False])))
    x, y = np.random.default_rng(0).standard_normal((4, 2)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="full batch"):
        train(net, net.init(0), SGD(lr=0.1), x, y, epochs=1, batch_size=2)
    result = train(net, net.init(0), SGD(lr=0.1), x, y, epochs=3, progress=False)
    assert result.history.steps == [0, 1, 2, 3]


def test_dataset_loss_in_chunks_matches_one_pass():
    net, (x, y) = _net(), _data()
    params = net.init(0)
    # chunk means weighted back into one mean of positive terms: a sum of 50 in another order
    assert dataset_loss(net, params, x, y, chunk=7) == pytest.approx(
        net.loss_value(params, x, y), rel=2 * gamma(2 * len(x)), abs=0)


def test_progress_line():
    stream = io.StringIO()
    bar = Progress("run", 3, enabled=True, stream=stream, delay=0.0, interval=0.0)
    bar.update(1, 10, 0.5)
    bar.update(2, 20, 0.25)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and "epoch 2/3" in text and text.endswith("\n")
    quiet = io.StringIO()
    bar = Progress("run", 3, enabled=None, stream=quiet, delay=0.0)  # StringIO is not a TTY
    bar.update(1, 1, 1.0)
    bar.close()
    assert quiet.getvalue() == ""


@settings(max_examples=25)
@given(cut=st.floats(0.0, 0.999), flips=st.lists(st.integers(0, 10**9), min_size=0, max_size=3))
def test_a_damaged_checkpoint_is_refused_or_harmless(tmp_path_factory, cut, flips):
    # Truncate the file and/or flip bytes anywhere: resuming must either raise one
    # ValueError naming --resume's file, or (a flip in a timestamp, say) reproduce the run.
    folder = tmp_path_factory.mktemp("damaged")
    good = folder / "ck.npz"
    _run(OPTIMIZERS["sgd-m-ls-ema"](), epochs=1, checkpoint=good)
    raw = bytearray(good.read_bytes())
    if not flips:
        raw = raw[:int(cut * len(raw))]
    for position in flips:
        raw[position % len(raw)] ^= 0xFF
    bad = folder / "bad.npz"
    bad.write_bytes(bytes(raw))
    try:
        resumed = _run(OPTIMIZERS["sgd-m-ls-ema"](), epochs=2, resume=bad)
    except ValueError as error:
        assert str(error).startswith("resume:") and "\n" not in str(error), str(error)
    else:
        straight = _run(OPTIMIZERS["sgd-m-ls-ema"](), epochs=2)
        _assert_params_equal(resumed.params, straight.params)


def test_resume_names_a_different_architecture(tmp_path):
    path = tmp_path / "ck.npz"
    _run(OPTIMIZERS["sgd-m"](), epochs=1, checkpoint=path)
    x, y = _data()
    for other in (mll.Sequential([mll.Dense(6, 9), mll.Tanh(), mll.Dense(9, 3)], loss=mll.SoftmaxCrossEntropy()),
                  mll.Sequential([mll.Dense(6, 3)], loss=mll.SoftmaxCrossEntropy())):
        with pytest.raises(ValueError, match="different architecture"):
            train(other, other.init(0), OPTIMIZERS["sgd-m"](), x, y, epochs=2, batch_size=16,
                  resume=path, progress=False)


def test_nothing_unpickles():
    # Checkpoints and loaders never unpickle: no pickle import, every np.load says so.
    import re
    root = Path(mll.__file__).parent
    for source in root.rglob("*.py"):
        text = source.read_text()
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|joblib|shelve)\b", text, re.M), source
        for call in re.findall(r"np\.load\([^)]*\)", text):
            assert "allow_pickle=False" in call, (source, call)


def test_compare_results_are_reproducible():
    # The comparison's runs (every run's history and record) are the same twice over with
    # the same seed, wall times aside.
    from minilayerlr.experiments import build_task, run_one

    def results():
        task = build_task("gcn", size=40, seed=2)
        records, params = [], []
        for method, lr in (("sgd", 0.1), ("sgd", 0.3), ("adamw", 0.01), ("sgd-ls", None)):
            run = run_one(task, method, lr, seed=2, epochs=2)
            run.pop("wall_time", None)
            run["history"].pop("time", None)
            params.append(run.pop("_result").params)
            records.append(run)
        return json.dumps(records, sort_keys=True, default=str), params

    (a, params_a), (b, params_b) = results(), results()
    assert a == b
    for pa, pb in zip(params_a, params_b):
        _assert_params_equal(pa, pb)


def _header_paths(node, path=()):
    """Every path into a JSON tree (dict keys and list positions)."""
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _header_paths(child, path + (key,))


@settings(max_examples=30)
@given(data=st.data())
def test_a_checkpoint_with_an_edited_header_is_refused_or_harmless(tmp_path_factory, data):
    # Replace any value of the JSON header (structure, optimizer state, generator state,
    # history) by junk: resuming raises one ValueError starting with "resume:", or works.
    folder = tmp_path_factory.mktemp("edited")
    good = folder / "ck.npz"
    _run(OPTIMIZERS["sgd-m-ls-ema"](), epochs=1, checkpoint=good)
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["__header__"]))
    path = data.draw(st.sampled_from(list(_header_paths(header))[1:]), label="path")
    junk = data.draw(st.sampled_from([None, -1, 1.5, "x", [], {}, {"array": "nope"}, {"list": 3},
                                      True, 10**20]), label="junk")
    node = header
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = junk
    arrays["__header__"] = np.array(json.dumps(header))
    bad = folder / "bad.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    try:
        _run(OPTIMIZERS["sgd-m-ls-ema"](), epochs=2, resume=bad)
    except ValueError as error:
        assert str(error).startswith(("resume:", "epochs:")), str(error)


def test_initial_evaluation_given_skips_it_and_changes_nothing():
    """``initial`` (what an earlier run from the same weights measured) stands in for the
    epoch-0 evaluation: eval_fn runs once less and the history is the same, bit for bit."""
    net = _net()
    x, y = _data()
    calls = []

    def eval_fn(p):
        calls.append(1)
        return {"acc": float(np.mean(net.forward(p, x).argmax(1) == y))}

    runs = []
    for initial in (None, "from the first run"):
        calls.clear()
        if initial is not None:
            h = runs[0][0].history
            initial = (h.train_loss[0], {"acc": h.metrics["acc"][0]})
        result = train(net, net.init(1), SGD(lr=0.1, momentum=0.9), x, y, epochs=3, batch_size=16,
                       eval_fn=eval_fn, progress=False, initial=initial)
        runs.append((result, len(calls)))
    (first, n_first), (second, n_second) = runs
    assert (n_first, n_second) == (4, 3)
    assert _without_time(first.history) == _without_time(second.history)
    _assert_params_equal(first.params, second.params)


@pytest.mark.parametrize("initial,resume,words", [
    ((0.5, {}), None, "no eval_fn"), ("junk", None, "expected (loss"), ((0.5,), None, "expected (loss"),
    ((0.5, {"acc": "x"}), None, "expected (loss"), ((0.5, {}), "a.npz", "resumed")])
def test_a_bad_initial_evaluation_names_itself(initial, resume, words):
    net = _net()
    x, y = _data()
    eval_fn = None if words == "no eval_fn" else (lambda p: {"acc": 0.0})
    if words == "no eval_fn":
        initial = (0.5, {"acc": 1.0})
    with pytest.raises(ValueError, match=r"^initial: .*" + __import__("re").escape(words)):
        train(net, net.init(1), SGD(lr=0.1), x, y, epochs=1, eval_fn=eval_fn, progress=False,
              initial=initial, resume=resume)
