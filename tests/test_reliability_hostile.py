"""Bad inputs a second hostile pass found still unclean: each now raises a one-line error naming
its argument (UserError / ValueError / TypeError) before any work or allocation.

Every case failed before its fix: a MemoryError traceback (huge sizes), an IndexError or
AttributeError (trees of another structure), NaN updates (AdaHessian's ν < 0, K-FAC's NaN
factors reported as a singular damping), a complex H z cast silently, a message naming
the wrong argument (``grads`` for bad ``params``), FileNotFoundError that no ``except
ValueError`` caught, or no error at all.
"""
import dataclasses

import numpy as np
import pytest

import minilayerlr as mll
from minilayerlr import data, optim, theory
from minilayerlr.errors import MissingFileError, UserError
from minilayerlr.tree import as_stack

RNG = np.random.default_rng(0)
X, Y = RNG.standard_normal((6, 4)), RNG.integers(0, 2, 6)
NET = mll.Sequential([mll.Dense(4, 3), mll.Tanh(), mll.Dense(3, 2)], loss=mll.SoftmaxCrossEntropy())
P = NET.init(0)
EV = NET.evaluate(P, X, Y)
G = EV.grads


def _raises(fn, kind, word):
    """fn() raises ``kind`` whose one-line message starts with (or names) ``word``."""
    with pytest.raises(kind) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message and word in message, message
    return message


# ---- peers: state values, oracle results, params -------------------------------------------

def _update_with(opt, state=None, params=P, **oracles):
    oracles = oracles or {"hvp": EV.hvp, "kronecker_factors": EV.kronecker_factors,
                          "loss": lambda th: NET.evaluate(th, X, Y).loss}
    kwargs = {k: v for k, v in oracles.items() if k in opt.oracles}
    return opt.update(G, opt.init(P) if state is None else state, params, **kwargs)


def test_adahessian_refuses_a_complex_hz_instead_of_casting_it():
    hvp = lambda v: mll.tree_map(lambda a: a + 1e-3j, EV.hvp(v))  # noqa: E731
    _raises(lambda: _update_with(optim.AdaHessian(), hvp=hvp), TypeError, "hvp")


@pytest.mark.parametrize("opt, edit, word", [
    (optim.AdaHessian(), lambda s: dataclasses.replace(s, nu=mll.tree_map(lambda a: a - 1, s.nu)), "state.nu"),
    (optim.AdaHessian(), lambda s: dataclasses.replace(s, mu=mll.tree_map(lambda a: a * np.nan, s.mu)), "state.mu"),
    (optim.KFAC(), lambda s: dataclasses.replace(s, factors_a=[a * np.nan for a in s.factors_a]), "state.factors_a"),
    (optim.KFAC(), lambda s: dataclasses.replace(s, pis=-s.pis), "state.pis"),
    (optim.Shampoo(), lambda s: dataclasses.replace(s, left=mll.tree_map(lambda a: a * np.nan, s.left)), "state.left"),
], ids=["adahessian-nu", "adahessian-mu", "kfac-factors", "kfac-pis", "shampoo-left"])
def test_peer_states_with_impossible_values_are_refused_naming_the_field(opt, edit, word):
    _raises(lambda: _update_with(opt, state=edit(opt.init(P))), ValueError, word)


@pytest.mark.parametrize("opt", [optim.KFAC(), optim.Shampoo(), optim.AdaHessian(), optim.DoG(),
                                 optim.Prodigy(), optim.SLS()], ids=lambda o: type(o).__name__)
def test_params_of_another_length_are_blamed_on_params(opt):
    _raises(lambda: _update_with(opt, params=P[:2]), ValueError, "params")


@pytest.mark.parametrize("answer", ["abc", None, np.ones(3), 1 + 1j], ids=["str", "None", "array", "complex"])
def test_sls_refuses_a_loss_oracle_that_returns_no_real_number(answer):
    _raises(lambda: _update_with(optim.SLS(), loss=lambda th: answer), TypeError, "loss")


# ---- files --------------------------------------------------------------------------------

def test_missing_files_are_user_errors_naming_the_argument(tmp_path):
    for fn, word in [(lambda: mll.load_checkpoint(tmp_path / "no.npz"), "resume"),
                     (lambda: mll.load_checkpoint(tmp_path), "resume"),
                     (lambda: data.load_mnist(tmp_path / "nodir"), "data_dir"),
                     (lambda: data.load_cora(tmp_path), "data_dir"),
                     (lambda: data.read_idx(tmp_path / "no.idx"), "path")]:
        message = _raises(fn, UserError, word)
        with pytest.raises(FileNotFoundError):  # still what `except FileNotFoundError` expects
            fn()
        assert message.startswith(word), message
    assert issubclass(MissingFileError, UserError) and issubclass(MissingFileError, FileNotFoundError)


# ---- sizes refused before allocating -------------------------------------------------------

@pytest.mark.parametrize("fn, word", [
    (lambda: mll.Sequential([mll.Dense(10**9, 10**9)], mll.MeanSquaredError()).init(0), "layers"),
    (lambda: data.synthetic_digits(num_train=10, num_test=5, size=10**6), "size"),
    (lambda: data.synthetic_digits(num_train=10**12, num_test=5), "num_train"),
    (lambda: data.contextual_sbm(num_nodes=10**12), "num_nodes"),
    (lambda: mll.normalized_adjacency(np.array([[0, 1]]), 10**13), "num_nodes"),
    (lambda: theory.jacobi_matrix(10**7, 0.5), "n"),
], ids=["dense-init", "digits-size", "digits-count", "sbm-nodes", "adjacency-nodes", "jacobi-n"])
def test_huge_sizes_are_refused_before_allocating(fn, word):
    # terabytes to exabytes: more than any machine this runs on has available
    message = _raises(fn, ValueError, word)
    assert message.startswith(word) and "GB of memory" in message


# ---- train's options, params' dtype, trees, theory -------------------------------------------

@pytest.mark.parametrize("kwargs, word", [
    ({"checkpoint": 5}, "checkpoint"), ({"resume": 3.0}, "resume"), ({"progress": "yes"}, "progress"),
    ({"overwrite": "no"}, "overwrite"), ({"label": 5}, "label")])
def test_train_refuses_options_of_the_wrong_type(kwargs, word):
    _raises(lambda: mll.train(NET, P, optim.SGD(), X, Y, epochs=1, **kwargs), TypeError, word)


def test_parameters_of_mixed_dtypes_are_refused():
    mixed = [dict(e) for e in P]
    mixed[0]["W"] = mixed[0]["W"].astype(np.float32)
    _raises(lambda: NET.evaluate(mixed, X, Y), TypeError, "params")


@pytest.mark.parametrize("fn, kind, word", [
    (lambda: mll.flatten(None), ValueError, "tree"),
    (lambda: mll.flatten("abc"), ValueError, "tree"),
    (lambda: mll.tree_map(np.add, P, P[:1]), ValueError, "rest[0]"),
    (lambda: mll.tree_map(5, P), TypeError, "fn"),
    (lambda: optim.block_dot(P, P[:1]), ValueError, "b"),
    (lambda: optim.scale_blocks(P, np.ones(5)), ValueError, "factors"),
    (lambda: optim.scale_blocks(P, np.full(2, np.nan)), ValueError, "factors"),
], ids=["flatten-none", "flatten-str", "map-mismatch", "map-fn", "dot-mismatch", "scale-length", "scale-nan"])
def test_tree_helpers_name_the_bad_tree(fn, kind, word):
    _raises(fn, kind, word)


def test_tree_map_still_propagates_the_functions_own_error():
    with pytest.raises(ZeroDivisionError):
        mll.tree_map(lambda a: 1 / 0, P)


@pytest.mark.parametrize("fn, word", [
    (lambda: EV.hvp_stacked([as_stack(e) for e in G], down_to=-1), "down_to"),
    (lambda: EV.hvp_stacked(None), "vs"),
    (lambda: theory.worst_one_step_ratio(np.eye(2) + 0.1, [1, 1], 1.0, max_iter=-1), "max_iter"),
    (lambda: theory.block_jacobi_floor_standard_error(np.array([[2.0, 0.3], [0.3, 1.0]]), [1, 1], 0.5,
                                                      np.eye(2), 0), "steps"),
], ids=["down_to", "vs", "max_iter", "steps"])
def test_counts_and_indices_are_checked(fn, word):
    _raises(fn, ValueError, word)


def test_a_bool_block_size_is_refused_naming_the_entry():
    # True == 1, so [True, 4] sums to 5: the old message ("got (1, 4)") hid why it was refused
    message = _raises(lambda: theory.BlockQuadratic(np.eye(5), np.ones(5), [True, 4]), ValueError,
                      "block_sizes[0]")
    assert "bool" in message
    assert theory.BlockQuadratic(np.eye(5), np.ones(5), [2.0, np.int64(3)]).block_sizes == (2, 3)
