"""The embedded MNIST digits: the shipped file, its split, and its place in the tasks."""
import zipfile

import numpy as np
import pytest

from minilayerlr.data import load_dataset, load_mnist5k
from minilayerlr.data import mnist5k


def test_the_file_holds_5000_digits_500_per_class():
    with np.load(mnist5k.PATH, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["images", "labels"]
        images, labels = archive["images"], archive["labels"]
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [500] * 10
    # real digits: grey levels spanning 0..255, mostly background, each image has ink
    assert images.min() == 0 and images.max() == 255
    ink = (images > 0).mean(axis=(1, 2))
    assert 0.05 < ink.mean() < 0.4 and ink.min() > 0
    # a compact file (about 1 MB), stored compressed, no pickled member
    assert mnist5k.PATH.stat().st_size < 1_500_000
    with zipfile.ZipFile(mnist5k.PATH) as z:
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in z.infolist())


def test_the_split_is_fixed_balanced_and_disjoint():
    ds = load_mnist5k()
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    images, _ = mnist5k.read_mnist5k()
    # every image is used once: train and test together are the 5000 images, as a multiset
    flat = np.concatenate([ds.x_train, ds.x_test]).reshape(5000, -1)
    as_bytes = np.round(flat * 255).astype(np.uint8)
    assert sorted(map(bytes, as_bytes)) == sorted(map(bytes, images.reshape(5000, -1)))
    again = load_dataset("mnist5k")
    assert np.array_equal(again.x_train, ds.x_train) and np.array_equal(again.y_test, ds.y_test)


def test_shrinking_keeps_a_prefix_and_checks_the_sizes():
    small, full = load_mnist5k(num_train=200, num_test=50), load_mnist5k()
    assert np.array_equal(small.x_train, full.x_train[:200])
    assert np.array_equal(small.y_test, full.y_test[:50])
    assert np.bincount(small.y_train, minlength=10).min() >= 10  # shuffled: near balance
    with pytest.raises(ValueError, match="num_train"):
        load_mnist5k(num_train=4001)
    with pytest.raises(ValueError, match="num_test"):
        load_mnist5k(num_test=0)


def test_the_package_data_ships_the_file():
    # pip install and the editable install ship what [tool.setuptools.package-data] names
    from pathlib import Path
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"minilayerlr.data" = ["mnist5k.npz", "README.md"]' in text
    readme = (mnist5k.PATH.parent / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "LeCun" in readme and "convert_mnist5k.py" in readme
