"""Tests for the generated data sets: synthetic digits and the contextual SBM."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minilayerlr.data import GraphDataset, ImageDataset, contextual_sbm, synthetic_digits
from minilayerlr.data.graphs import unrank_pairs


@pytest.fixture(scope="module")
def digits():
    return synthetic_digits(num_train=2000, num_test=500, seed=3)


def test_digits_shapes_dtypes_ranges(digits):
    assert isinstance(digits, ImageDataset)
    assert digits.x_train.shape == (2000, 1, 16, 16)
    assert digits.x_test.shape == (500, 1, 16, 16)
    assert digits.x_train.dtype == np.float64 and digits.y_train.dtype == np.int64
    for x in (digits.x_train, digits.x_test):
        assert np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= 1.0
    assert digits.classes == tuple("0123456789") and digits.num_classes == 10
    assert digits.image_shape == (1, 16, 16)


def test_digits_are_read_only(digits):
    with pytest.raises(ValueError):
        digits.x_train[0, 0, 0, 0] = 0.5
    with pytest.raises(AttributeError):
        digits.x_train = None


def test_digits_balanced(digits):
    assert np.array_equal(np.bincount(digits.y_train, minlength=10), np.full(10, 200))
    assert np.array_equal(np.bincount(digits.y_test, minlength=10), np.full(10, 50))


@given(num=st.integers(1, 57), seed=st.integers(0, 2**32 - 1))
def test_digits_balanced_any_size(num, seed):
    ds = synthetic_digits(num_train=num, num_test=3, seed=seed)
    counts = np.bincount(ds.y_train, minlength=10)
    assert counts.sum() == num and counts.max() - counts.min() <= 1


def test_digits_deterministic():
    a = synthetic_digits(num_train=50, num_test=20, seed=7)
    b = synthetic_digits(num_train=50, num_test=20, seed=7)
    c = synthetic_digits(num_train=50, num_test=20, seed=8)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_test, c.x_test)


def test_digits_test_set_independent_of_train_size():
    a = synthetic_digits(num_train=30, num_test=20, seed=1)
    b = synthetic_digits(num_train=90, num_test=20, seed=1)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)


def test_digits_nearest_class_mean_beats_chance(digits):
    x = digits.x_train.reshape(len(digits.x_train), -1)
    means = np.stack([x[digits.y_train == k].mean(axis=0) for k in range(10)])
    xt = digits.x_test.reshape(len(digits.x_test), -1)
    pred = np.argmin(((xt[:, None] - means[None]) ** 2).sum(-1), axis=1)
    accuracy = np.mean(pred == digits.y_test)
    assert accuracy > 0.6, accuracy          # chance is 0.1


def test_digits_have_ink_and_background(digits):
    x = digits.x_train.reshape(len(digits.x_train), -1)
    ink = (x > 0.5).mean(axis=1)
    # Every image is a stroke on a dark background, neither blank nor filled.
    assert ink.min() > 0.03 and ink.max() < 0.6


def test_digits_same_class_images_differ(digits):
    zeros = digits.x_train[digits.y_train == 0]
    assert not np.allclose(zeros[0], zeros[1])


@pytest.mark.parametrize("size", [8, 28])
def test_digits_other_sizes(size):
    ds = synthetic_digits(num_train=20, num_test=10, size=size, seed=0)
    assert ds.x_train.shape == (20, 1, size, size)
    assert ds.x_train.max() > 0.5


def test_digits_no_noise_no_blur_background_is_zero():
    ds = synthetic_digits(num_train=20, num_test=10, noise=0.0, blur=0.0)
    assert ds.x_train[:, :, 0, 0].max() == 0.0   # corners carry no ink


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_train=0), "num_train"), (dict(num_test=-1), "num_test"),
    (dict(size=4), "size"), (dict(seed=-1), "seed"), (dict(noise=-0.1), "noise"),
    (dict(blur=float("nan")), "blur"), (dict(num_train=2.5), "num_train"),
    (dict(num_train=True), "num_train"),
])
def test_digits_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        synthetic_digits(**kwargs)


# ---------------------------------------------------------------- graphs


@given(n=st.integers(2, 40))
def test_unrank_pairs_enumerates_upper_triangle(n):
    i, j = unrank_pairs(np.arange(n * (n - 1) // 2), n)
    expected = np.array([(a, b) for a in range(n) for b in range(a + 1, n)])
    assert np.array_equal(np.stack([i, j], axis=1), expected)


def test_unrank_pairs_large_n_last_ranks():
    n = 100_000
    total = n * (n - 1) // 2
    i, j = unrank_pairs(np.array([total - 1, total - 2, total - 3]), n)
    assert np.array_equal(i, [n - 2, n - 3, n - 3])
    assert np.array_equal(j, [n - 1, n - 1, n - 2])


@given(n=st.integers(2, 3 * 10**9), frac=st.floats(0, 1, exclude_max=True))
def test_unrank_pairs_inverts_rank_for_huge_n(n, frac):
    # At ~1e9 nodes the float square root lands one row off at row
    # boundaries; the integer corrections must put the pair back, so test the
    # first and last rank of a row: rank(unrank(k)) == k.
    row = min(int(frac * (n - 1)), n - 2)
    start = row * (2 * n - row - 1) // 2
    k = np.array([start, start + (n - row - 2), 0, n * (n - 1) // 2 - 1], dtype=np.int64)
    i, j = unrank_pairs(k, n)
    assert np.all((0 <= i) & (i < j) & (j < n))
    assert i[0] == row and i[1] == row
    assert np.array_equal(i * (2 * n - i - 1) // 2 + (j - i - 1), k)


def _check_graph(g, n):
    assert isinstance(g, GraphDataset) and g.num_nodes == n
    e = g.edges
    assert e.dtype == np.int64 and e.ndim == 2 and e.shape[1] == 2
    assert np.all(e[:, 0] < e[:, 1]), "i < j, so no self loops"
    assert e.min(initial=0) >= 0 and e.max(initial=0) < n
    assert np.unique(e, axis=0).shape[0] == e.shape[0], "no duplicates"
    masks = np.stack([g.train_mask, g.val_mask, g.test_mask])
    assert masks.dtype == bool and masks.sum(axis=0).max() <= 1, "disjoint"


@given(n=st.integers(8, 120), c=st.integers(2, 4), f=st.integers(1, 6),
       p_in=st.floats(0, 1), p_out=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_csbm_valid_for_any_parameters(n, c, f, p_in, p_out, seed):
    g = contextual_sbm(num_nodes=n, num_classes=c, num_features=f, p_in=p_in,
                       p_out=p_out, train_per_class=1, num_val=2, seed=seed)
    _check_graph(g, n)
    assert g.features.shape == (n, f) and g.features.dtype == np.float64
    assert g.labels.dtype == np.int64
    counts = np.bincount(g.labels, minlength=c)
    assert counts.max() - counts.min() <= 1
    assert np.array_equal(np.bincount(g.labels[g.train_mask], minlength=c), np.ones(c))
    assert g.val_mask.sum() == 2 and g.test_mask.sum() == n - c - 2


def test_csbm_extreme_probabilities():
    n, c = 30, 3
    full = contextual_sbm(num_nodes=n, num_classes=c, p_in=1.0, p_out=1.0,
                          train_per_class=1, num_val=1)
    assert full.num_edges == n * (n - 1) // 2
    none = contextual_sbm(num_nodes=n, num_classes=c, p_in=0.0, p_out=0.0,
                          train_per_class=1, num_val=1)
    assert none.num_edges == 0 and none.edges.shape == (0, 2)
    within = contextual_sbm(num_nodes=n, num_classes=c, p_in=1.0, p_out=0.0,
                            train_per_class=1, num_val=1)
    same = within.labels[within.edges[:, 0]] == within.labels[within.edges[:, 1]]
    assert same.all() and within.num_edges == c * 10 * 9 // 2


def test_csbm_homophily_and_density_as_requested():
    n, c, p_in, p_out = 2000, 5, 0.02, 0.003
    g = contextual_sbm(num_nodes=n, num_classes=c, p_in=p_in, p_out=p_out, seed=11)
    _check_graph(g, n)
    counts = np.bincount(g.labels)
    within_pairs = np.sum(counts * (counts - 1) // 2)
    between_pairs = n * (n - 1) // 2 - within_pairs
    same = g.labels[g.edges[:, 0]] == g.labels[g.edges[:, 1]]
    e_in, e_out = same.sum(), (~same).sum()
    # Binomial counts: allow 4 standard deviations.
    for observed, pairs, p in ((e_in, within_pairs, p_in), (e_out, between_pairs, p_out)):
        assert abs(observed - pairs * p) < 4 * np.sqrt(pairs * p * (1 - p)) + 1
    expected_h = p_in * within_pairs / (p_in * within_pairs + p_out * between_pairs)
    assert abs(same.mean() - expected_h) < 0.03


def test_csbm_features_carry_signal():
    g = contextual_sbm(num_nodes=1000, num_classes=4, num_features=16,
                       feature_signal=3.0, seed=2)
    means = np.stack([g.features[g.train_mask & (g.labels == k)].mean(0) for k in range(4)])
    pred = np.argmin(((g.features[:, None] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred[g.test_mask] == g.labels[g.test_mask]) > 0.7   # chance 0.25
    flat = contextual_sbm(num_nodes=1000, num_classes=4, num_features=16,
                          feature_signal=0.0, seed=2)
    assert abs(flat.features.mean()) < 0.05 and abs(flat.features.std() - 1) < 0.05


def test_csbm_deterministic():
    a, b, c = (contextual_sbm(num_nodes=300, seed=s) for s in (5, 5, 6))
    for name in ("features", "labels", "edges", "train_mask", "val_mask", "test_mask"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.features, c.features)
    assert not np.array_equal(a.labels, c.labels)


def test_csbm_large_graph_is_quick_and_sparse():
    g = contextual_sbm(num_nodes=5000, num_classes=5, p_in=0.005, p_out=0.0005)
    _check_graph(g, 5000)
    assert 10_000 < g.num_edges < 20_000


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_nodes=1), "num_nodes"), (dict(num_classes=1), "num_classes"),
    (dict(num_features=0), "num_features"), (dict(p_in=1.5), "p_in"),
    (dict(p_out=-0.1), "p_out"), (dict(feature_signal=-1.0), "feature_signal"),
    (dict(train_per_class=0), "train_per_class"), (dict(num_val=-1), "num_val"),
    (dict(num_test=-1), "num_test"), (dict(seed=-3), "seed"),
    (dict(num_nodes=40, num_classes=4, train_per_class=20), "train_per_class"),
    (dict(num_nodes=100, num_val=90), "num_val"),
    (dict(num_nodes=3, num_classes=5), "num_classes"),
])
def test_csbm_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        contextual_sbm(**kwargs)


def test_containers_reject_inconsistent_shapes():
    x, y = np.zeros((3, 1, 4, 4)), np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="train"):
        ImageDataset(x, y[:2], x, y, ("a",))
    with pytest.raises(ValueError, match="test"):
        ImageDataset(x, y, x[:, 0], y, ("a",))
    mask = np.zeros(3, dtype=bool)
    edges = np.zeros((0, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="features"):
        GraphDataset(np.zeros((2, 5)), y, edges, 3, mask, mask, mask)
    with pytest.raises(ValueError, match="edges"):
        GraphDataset(np.zeros((3, 5)), y, np.zeros((4, 3)), 3, mask, mask, mask)
    with pytest.raises(ValueError, match="val_mask"):
        GraphDataset(np.zeros((3, 5)), y, edges, 3, mask, mask[:2], mask)
    g = GraphDataset(np.zeros((3, 5)), np.array([0, 2, 1]), edges, 3, mask, mask, mask)
    assert g.classes == ("0", "1", "2") and g.num_edges == 0
