"""Checkpoints that survive concurrent writers, refuse to overwrite what they do not own,
and accept only this run's file with sane values (issue: reliability, second pass)."""
import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minilayerlr as mll
from minilayerlr.errors import UserError
from minilayerlr.optim import SGD, LayerwiseStepSize
from minilayerlr.training import load_checkpoint, train
from minilayerlr.training.checkpoint import save_checkpoint


def _net(act=mll.Tanh, loss=None):
    return mll.Sequential([mll.Dense(6, 8), act(), mll.Dense(8, 3)], loss=loss or mll.SoftmaxCrossEntropy())


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 6))
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)


class Counter:
    """An eval_fn that counts its calls (0 calls = refused before any work)."""

    def __init__(self, name="acc"):
        self.calls, self.name = 0, name

    def __call__(self, params):
        self.calls += 1
        return {self.name: 0.5}


def _run(epochs=1, net=None, x=None, y=None, optimizer=None, eval_fn=None, **kwargs):
    net = net or _net()
    if x is None:
        x, y = _data()
    opt = optimizer or LayerwiseStepSize(SGD(momentum=0.9), ema=0.7, scale=0.5)
    return train(net, net.init(1), opt, x, y, epochs=epochs, batch_size=16, progress=False,
                 eval_fn=eval_fn or Counter(), **kwargs)


# ---- 2c: a unique temporary file and an atomic replace --------------------------------------

def test_a_stale_fixed_temporary_name_does_not_block_saving(tmp_path):
    path = tmp_path / "shared.npz"
    (tmp_path / "shared.npz.tmp").mkdir()  # the old fixed temporary name, taken
    _run(checkpoint=path)
    assert load_checkpoint(path)["epoch"] == 1


def test_concurrent_writers_of_one_checkpoint_all_succeed_and_leave_a_readable_file(tmp_path):
    path = tmp_path / "shared.npz"
    result = _run(checkpoint=tmp_path / "one.npz")
    errors = []

    def writer(k):
        try:
            for epoch in range(5):
                save_checkpoint(path, params=result.params, opt_state=result.state,
                                rng_state=np.random.default_rng(k).bit_generator.state,
                                history=result.history.to_dict(), epoch=epoch, meta={"writer": k})
        except Exception as error:  # pragma: no cover - the failure being tested
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert load_checkpoint(path)["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.npz", "shared.npz"]  # no temporary left


def test_a_failed_replace_leaves_no_temporary_and_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    result = _run(checkpoint=path)
    before = path.read_bytes()

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, params=result.params, opt_state=result.state, rng_state={}, history={},
                        epoch=2, meta={})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


# ---- 2d: never overwrite a file that is not this run's checkpoint -----------------------------

def test_an_unrelated_file_is_not_overwritten_unless_asked(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("my notes")
    counter = Counter()
    with pytest.raises(UserError, match=r"^checkpoint: .*not a minilayerlr checkpoint.*overwrite=True"):
        _run(checkpoint=path, eval_fn=counter)
    assert counter.calls == 0 and path.read_text() == "my notes"  # refused before any work
    _run(checkpoint=path, overwrite=True)
    assert load_checkpoint(path)["epoch"] == 1


def test_rerunning_without_resume_does_not_overwrite_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    _run(epochs=2, checkpoint=path)
    counter = Counter()
    with pytest.raises(UserError, match="this run's checkpoint at epoch 2; resume from it"):
        _run(epochs=3, checkpoint=path, eval_fn=counter)
    assert counter.calls == 0 and load_checkpoint(path)["epoch"] == 2
    _run(epochs=3, checkpoint=path, resume=path)  # continuing it is fine
    assert load_checkpoint(path)["epoch"] == 3


def test_another_runs_checkpoint_is_not_overwritten(tmp_path):
    path = tmp_path / "ck.npz"
    _run(checkpoint=path)
    with pytest.raises(UserError, match="checkpoint of another run"):
        _run(checkpoint=path, net=_net(mll.ReLU))


def test_a_checkpoint_under_a_plain_file_is_refused_before_any_work(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    counter = Counter()
    with pytest.raises(ValueError, match=r"^checkpoint: .*afile is not a folder"):
        _run(epochs=3, checkpoint=afile / "ck.npz", eval_fn=counter)
    assert counter.calls == 0


# ---- 3: a checkpoint is accepted only if it is this run's ------------------------------------

@pytest.mark.parametrize("change, word", [
    (dict(net=_net(mll.ReLU)), "different architecture: layers\\[1\\].type: 'Tanh' there, 'ReLU' here"),
    (dict(net=_net(mll.Sigmoid)), "different architecture"),
    (dict(net=_net(loss=mll.SoftmaxCrossEntropy(mask=np.arange(40) % 2 == 0))), "different loss: loss.mask"),
    (dict(x=_data(1)[0], y=_data(0)[1]), "different training inputs x"),
    (dict(x=_data(0)[0], y=_data(0)[1][::-1].copy()), "different training targets y"),
])
def test_resume_refuses_another_network_loss_or_data_and_names_it(tmp_path, change, word):
    path = tmp_path / "ck.npz"
    _run(checkpoint=path)
    with pytest.raises(ValueError, match="^resume: .*" + word):
        _run(epochs=2, resume=path, **change)


def test_resume_refuses_a_different_eval_fn_up_front(tmp_path):
    path = tmp_path / "ck.npz"
    _run(checkpoint=path, eval_fn=Counter("acc"))
    for other in (Counter("test_loss"), None):
        with pytest.raises(ValueError, match=r"^resume: .*\['acc'\], but this run's eval_fn gives"):
            net, (x, y) = _net(), _data()
            train(net, net.init(1), LayerwiseStepSize(SGD(momentum=0.9), ema=0.7, scale=0.5), x, y,
                  epochs=2, batch_size=16, progress=False, eval_fn=other, resume=path)
    _run(epochs=2, resume=path, eval_fn=Counter("acc"))  # the same metrics resume fine


def _edit(src: Path, dst: Path, header_fn=None, arrays_fn=None):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["__header__"]))
    if header_fn:
        header_fn(header)
    if arrays_fn:
        arrays_fn(arrays)
    arrays["__header__"] = np.array(json.dumps(header))
    with open(dst, "wb") as f:
        np.savez(f, **arrays)


def _set(arrays, key, fn):
    arrays[key] = fn(arrays[key])


def _nan_first(a):
    a = a.copy()
    a.flat[0] = np.nan
    return a


EDITS = {
    "NaN avg_denominators": (None, lambda a: _set(a, "opt/avg_denominators", _nan_first), "avg_denominators"),
    "Inf reference_step_sizes": (None, lambda a: _set(a, "opt/reference_step_sizes", lambda v: v + np.inf),
                                 "reference_step_sizes"),
    "NaN momentum": (None, lambda a: _set(a, "opt/base_state/momentum/0/W", _nan_first), "momentum"),
    "float32 params": (None, lambda a: _set(a, "params/0/W", lambda v: v.astype(np.float32)), "float32"),
    "LS count vs base count": (lambda h: h["opt_state"]["fields"]["base_state"]["fields"]["count"].update(value=1),
                               None, "count"),
    "non-monotone epochs": (lambda h: h["history"].update(epoch=[1, 0]), None, "history.epoch"),
    "NaN time": (lambda h: h["history"]["time"].__setitem__(1, float("nan")), None, "history.time"),
    "fallback code 99 in the state": (None, lambda a: _set(a, "opt/fallbacks", lambda v: v + 99), "fallbacks"),
    "fallback code 99 in the history": (lambda h: h["history"]["fallbacks"][0].__setitem__(0, 99), None,
                                        "history.fallbacks"),
    "ragged step-size rows": (lambda h: h["history"]["step_sizes"][1].append(0.1), None, "history.step_sizes"),
    "steps beyond the step losses": (lambda h: h["history"]["steps"].__setitem__(1, 99), None, "history.steps"),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_hand_edited_values_are_refused_naming_the_entry(tmp_path, name):
    header_fn, arrays_fn, word = EDITS[name]
    good, bad = tmp_path / "good.npz", tmp_path / "bad.npz"
    _run(checkpoint=good)
    _edit(good, bad, header_fn, arrays_fn)
    with pytest.raises(ValueError) as caught:
        _run(epochs=2, resume=bad)
    message = str(caught.value)
    assert message.startswith("resume:") and word in message and "\n" not in message, message


def _craft_member(path: Path, header: bytes, data: bytes = b""):
    """An .npz whose member x.npy has a hand-written header."""
    body = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", body + data)


@pytest.mark.parametrize("header, word", [
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }\n", "10000000000"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': " + b"(" * 2000 + b")" * 2000 + b"}\n", "nested"),
], ids=["10^12 elements", "nested 2000 deep"])
def test_crafted_npy_headers_are_refused_with_one_line(tmp_path, header, word):
    path = tmp_path / "crafted.npz"
    _craft_member(path, header, b"\0" * 8)
    with pytest.raises(ValueError) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith("resume:") and word in str(caught.value) and "\n" not in str(caught.value)


def test_a_header_nested_100000_deep_is_refused(tmp_path):
    path = tmp_path / "deep.npz"
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b"\x93NUMPY\x02\x00" + len(deep).to_bytes(4, "little") + deep
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", body)
    with pytest.raises(ValueError, match="^resume: .*header of 200000 bytes"):
        load_checkpoint(path)
    # and a JSON header nested as deep (the archive itself honest)
    json_path = tmp_path / "deep_json.npz"
    np.savez(json_path, __header__=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(ValueError, match="^resume: "):
        load_checkpoint(json_path)
