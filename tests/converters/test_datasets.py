"""converters.datasets: ckit's digits28, Keras's Fashion-MNIST cache (tiny idx.gz files), user .npz files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from converters.datasets import (
    fashion_mnist_dir,
    load_dataset,
    load_npz,
    read_idx_gz,
    write_fashion_mnist_cache,
    write_idx_gz,
)
from inspector.errors import CkitError, CorruptArtifact, MissingData


def make_fashion_cache(root: Path, n_train: int = 12, n_test: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    write_fashion_mnist_cache(root, arrays)
    return arrays


def test_idx_bytes_are_the_mnist_layout(tmp_path):
    write_idx_gz(tmp_path / "l.gz", np.array([3, 1, 4], np.uint8))
    assert gzip.decompress((tmp_path / "l.gz").read_bytes()) == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])


def test_idx_refuses_dtypes_it_cannot_hold(tmp_path):
    with pytest.raises(CkitError, match=r"idx files hold .*, not int64; cast the array first"):
        write_idx_gz(tmp_path / "x.gz", np.zeros(2, np.int64))


def test_digits28_is_the_default_and_is_scaled():
    data = load_dataset()
    assert data.name == "digits28"
    assert data.x_train.shape[1:] == data.x_test.shape[1:] == (28, 28)
    assert data.x_test.dtype == np.float32 and 0.0 <= data.x_test.min() and data.x_test.max() <= 1.0
    assert data.y_test.dtype == np.int64 and set(np.unique(data.y_train)) <= set(range(10))
    raw = np.load(data.source)
    np.testing.assert_array_equal(data.x_test, raw["x_test"].astype(np.float32) / np.float32(255))
    assert "digits28" in repr(data)


def test_fashion_mnist_from_keras_home(tmp_path, monkeypatch):
    arrays = make_fashion_cache(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    data = load_dataset("fashion_mnist")
    assert data.name == "fashion_mnist"
    assert Path(data.source) == tmp_path / "datasets" / "fashion-mnist"
    np.testing.assert_array_equal(data.x_train, arrays["x_train"].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(data.y_test, arrays["y_test"].astype(np.int64))
    assert data.x_test.shape == (5, 28, 28) and data.y_train.shape == (12,)


def test_fashion_mnist_default_cache_is_home_dot_keras(tmp_path, monkeypatch):
    make_fashion_cache(tmp_path / ".keras")
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert fashion_mnist_dir() == tmp_path / ".keras" / "datasets" / "fashion-mnist"
    assert load_dataset("fashion_mnist").x_test.shape == (5, 28, 28)


@pytest.mark.parametrize("given", ["root", "datasets", "fashion-mnist"])
def test_fashion_mnist_cache_dir_option(tmp_path, given):
    make_fashion_cache(tmp_path)
    cache_dir = {"root": tmp_path, "datasets": tmp_path / "datasets", "fashion-mnist": tmp_path / "datasets" / "fashion-mnist"}[given]
    assert load_dataset("fashion_mnist", cache_dir=cache_dir).y_test.shape == (5,)


def test_fashion_mnist_missing_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(MissingData, match="Fashion-MNIST is not in the Keras cache: .*t10k-images-idx3-ubyte.gz|"
                       "Fashion-MNIST is not in the Keras cache: .*train-images-idx3-ubyte.gz") as info:
        load_dataset("fashion_mnist")
    assert "ckit never downloads" in str(info.value)
    assert "keras.datasets.fashion_mnist.load_data()" in str(info.value)


def test_idx_round_trip_other_dtypes(tmp_path):
    values = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
    write_idx_gz(tmp_path / "a.gz", values)
    out = read_idx_gz(tmp_path / "a.gz")
    np.testing.assert_array_equal(out, values)
    assert out.dtype == np.int32 and out.dtype.isnative


def test_idx_truncated_is_corrupt(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 28, 28) + b"\x00" * 100)
    with pytest.raises(CorruptArtifact, match=r"idx header declares shape \(2, 28, 28\) \(1568 bytes\) but holds 100 bytes"):
        read_idx_gz(path)


def test_idx_without_header_is_corrupt(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"PK\x03\x04not idx")
    with pytest.raises(CorruptArtifact, match=r"no idx header \(expected 00 00 <type> <ndim>\)"):
        read_idx_gz(path)


def test_idx_not_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"plain bytes")
    with pytest.raises(CorruptArtifact, match="not a readable gzip file"):
        read_idx_gz(path)


def test_npz_test_only(tmp_path):
    np.savez(tmp_path / "d.npz", x_test=np.zeros((3, 4), np.float64), y_test=np.array([0, 1, 2]))
    data = load_npz(tmp_path / "d.npz")
    assert data.name == "d" and not data.has_train
    assert data.x_test.dtype == np.float32


def test_npz_int_inputs_stay_integers(tmp_path):
    np.savez(tmp_path / "tokens.npz", x_test=np.ones((3, 20), np.int64), y_test=np.array([0, 1, 2]))
    assert load_npz(tmp_path / "tokens.npz").x_test.dtype == np.int32


def test_data_option_wins_over_dataset_name(tmp_path):
    np.savez(tmp_path / "d.npz", x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.array([0, 1]))
    assert load_dataset("fashion_mnist", data=tmp_path / "d.npz").name == "d"


def test_npz_missing_arrays(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 4)))
    with pytest.raises(MissingData, match=r"has arrays \['images'\] but no x_test, y_test; save it with numpy.savez"):
        load_npz(tmp_path / "d.npz")


def test_npz_mismatched_lengths(tmp_path):
    np.savez(tmp_path / "d.npz", x_test=np.zeros((3, 4)), y_test=np.zeros(2, np.int64))
    with pytest.raises(CorruptArtifact, match=r"x_test has shape \(3, 4\) and y_test has shape \(2,\); expected"):
        load_npz(tmp_path / "d.npz")


def test_npz_float_labels(tmp_path):
    np.savez(tmp_path / "d.npz", x_test=np.zeros((2, 4)), y_test=np.zeros(2))
    with pytest.raises(CorruptArtifact, match=r"y_test has dtype float64; expected integer class ids"):
        load_npz(tmp_path / "d.npz")


def test_npz_train_and_test_shapes_differ(tmp_path):
    np.savez(tmp_path / "d.npz", x_test=np.zeros((2, 4)), y_test=np.zeros(2, np.int8),
             x_train=np.zeros((2, 5)), y_train=np.zeros(2, np.int8))
    with pytest.raises(CorruptArtifact, match=r"x_train samples have shape \(5,\) but x_test samples \(4,\)"):
        load_npz(tmp_path / "d.npz")


def test_npz_missing_file(tmp_path):
    with pytest.raises(MissingData, match="data file .*nope.npz does not exist; pass an .npz with x_test and y_test"):
        load_npz(tmp_path / "nope.npz")


def test_npz_not_an_npz(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"hello")
    with pytest.raises(CorruptArtifact, match=r"is not a readable \.npz"):
        load_npz(tmp_path / "d.npz")


def test_unknown_dataset_name():
    with pytest.raises(CkitError, match="dataset 'cifar' is not known; expected one of: digits28, fashion_mnist"):
        load_dataset("cifar")
