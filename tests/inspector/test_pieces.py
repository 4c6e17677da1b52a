"""Stats and diff of tensors larger than one piece, on checkpoints TensorFlow writes here.

NaN, Inf and zeros (-0.0 too) sit in later pieces and on block and piece boundaries; pieces are
split between two threads (stats) or both sides read on two threads (diff); one element
changed in the last piece is found and named.  The oracle is numpy on the whole arrays.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import inspector
from inspector import open_artifact
from inspector.chunks import CHUNK_ELEMS
from inspector.compare import compare_values, diff_readers
from inspector.errors import ChecksumMismatch
from inspector.stats import BLOCK, Accumulator, tensor_stats
from tests.conftest import flip_byte_in_tensor
from tests.inspector.test_stats import _numpy_stats

N = CHUNK_ELEMS + 200_000  # two pieces at the default size
CHANGED = N - 2  # in the last piece, whatever the piece size


def _arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    w = (rng.standard_normal(N) * 0.05).astype(np.float32)
    w[::997] = 0.0
    w[[5, BLOCK - 1, BLOCK, CHUNK_ELEMS - 1, N - 7]] = -0.0  # negative zeros count as zeros
    w[CHUNK_ELEMS + 1] = np.inf  # non-finite values only in the second piece
    w[CHUNK_ELEMS + 4 * BLOCK + 3] = np.nan
    w[N - 1] = -np.inf
    return {
        "w": w,
        # float64 with a large mean and a small spread: the plain sum-of-squares formula cancels here.
        "offset": 1000.0 + rng.standard_normal(300_000) * 1e-3,
        "counts": rng.integers(-3, 4, size=400_000).astype(np.int32),
        "positive": rng.uniform(1.0, 2.0, size=CHUNK_ELEMS).astype(np.float32),  # no zeros to count
    }


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """(A, B, arrays): TF checkpoints of the same variables; B's `w` differs at CHANGED only."""
    import tensorflow as tf

    arrays = _arrays(np.random.default_rng(10))
    out = tmp_path_factory.mktemp("pieces")

    def write(name: str, values: dict[str, np.ndarray]):
        variables = {k: tf.Variable(v, name=k) for k, v in values.items()}
        return out / name / "ckpt", tf.train.Checkpoint(**variables).write(str(out / name / "ckpt"))

    a, _ = write("a", arrays)
    changed = dict(arrays, w=arrays["w"].copy())
    changed["w"][CHANGED] += 0.25
    b, _ = write("b", changed)
    return a, b, arrays


class _CountingPool(ThreadPoolExecutor):
    """A real one-thread executor that counts the work handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)


def _assert_equal_numpy(got, value: np.ndarray, key: str) -> None:
    want = _numpy_stats(value)
    for field in ("count", "zeros", "nan", "posinf", "neginf", "min", "max"):
        assert getattr(got, field) == want[field], (key, field)
    for field in ("mean", "std", "l2"):
        assert getattr(got, field) == pytest.approx(want[field], rel=1e-9, abs=1e-12), (key, field)


@pytest.mark.parametrize("chunk_elems", [CHUNK_ELEMS, 4 * BLOCK + 77, 100_003])
@pytest.mark.parametrize("threads", [False, True], ids=["one-thread", "two-threads"])
def test_stats_over_many_pieces_equal_numpy(checkpoints, chunk_elems, threads):
    a, _, arrays = checkpoints
    with open_artifact(a) as reader:
        for tensor in reader.manifest.tensors:
            if tensor.role == "metadata":
                continue
            got = tensor_stats(reader, tensor, chunk_elems=chunk_elems, threads=threads)
            _assert_equal_numpy(got, arrays[tensor.name], tensor.key)
    w = _numpy_stats(arrays["w"])
    assert (w["nan"], w["posinf"], w["neginf"]) == (1, 1, 1) and w["zeros"] > N // 997


def test_split_pieces_fold_in_a_fixed_order(checkpoints):
    """Both halves of each piece really run on the helper thread and this one, and the figures do
    not depend on which finishes first: two runs agree to the bit, and with one thread to rounding."""
    a, _, arrays = checkpoints
    value = arrays["offset"]
    pool = _CountingPool()
    try:
        runs = []
        for _ in range(2):
            acc = Accumulator()
            for start in range(0, value.size, 5 * BLOCK + 3):  # pieces straddle blocks
                acc.add(value[start : start + 5 * BLOCK + 3], pool)
            runs.append(acc.result(None))
    finally:
        pool.shutdown()
    assert pool.submitted >= 2
    assert (runs[0].mean, runs[0].std, runs[0].l2) == (runs[1].mean, runs[1].std, runs[1].l2)
    single = Accumulator()
    single.add(value)
    alone = single.result(None)
    for field in ("mean", "std", "l2"):
        assert getattr(runs[0], field) == pytest.approx(getattr(alone, field), rel=1e-12)
    assert (runs[0].min, runs[0].max, runs[0].count) == (alone.min, alone.max, alone.count)


@pytest.mark.parametrize("chunk_elems", [CHUNK_ELEMS, 65_537])
@pytest.mark.parametrize("threads", [False, True], ids=["one-thread", "two-threads"])
def test_one_element_changed_in_the_last_piece(checkpoints, chunk_elems, threads):
    a, b, arrays = checkpoints
    with open_artifact(a) as ra, open_artifact(b) as rb:
        by_name = {t.name: t for t in rb.manifest.tensors}
        for ta in ra.manifest.tensors:
            if ta.role == "metadata":
                continue
            found = compare_values(ra, ta, rb, by_name[ta.name], chunk_elems=chunk_elems, threads=threads)
            if ta.name != "w":
                assert found is None, ta.name  # NaN equals NaN, -0.0 its own bytes
                continue
            assert found.differing == 1 and found.count == N
            assert found.first_index == (CHANGED,)
            assert found.a_value == arrays["w"][CHANGED]
            assert found.max_abs == pytest.approx(0.25, rel=1e-6)


def test_diff_names_the_one_changed_tensor_and_element(checkpoints):
    a, b, _ = checkpoints
    report = inspector.diff(a, b)
    assert not report.equal and report.compared == 4
    (change,) = report.changed
    assert change.a.name == "w" and change.values.first_index == (CHANGED,)
    assert inspector.diff(a, a).equal
    with open_artifact(a) as reader:  # one reader on both sides: read on one thread
        assert diff_readers(reader, reader).equal


@pytest.mark.parametrize("side", ["a", "b"])
def test_damaged_side_fails_its_checksum_through_either_thread(checkpoints, tmp_path, side):
    a, b, _ = checkpoints
    damaged = tmp_path / "damaged"
    shutil.copytree(a.parent, damaged)
    flip_byte_in_tensor(damaged / a.name, "w/.ATTRIBUTES/VARIABLE_VALUE")
    pair = (damaged / a.name, a) if side == "a" else (a, damaged / a.name)
    with pytest.raises(ChecksumMismatch, match="CRC32C of tensor 'w/"):
        inspector.diff(*pair)


def test_truncated_shard_is_an_error_not_a_short_read(checkpoints, tmp_path, capsys):
    from inspector.cli import main

    a, _, _ = checkpoints
    shutil.copytree(a.parent, tmp_path / "cut")
    (shard,) = (tmp_path / "cut").glob("ckpt.data-*")
    with open(shard, "r+b") as handle:
        handle.truncate(shard.stat().st_size - 1000)  # the last tensor's last piece is gone
    assert main(["stats", str(tmp_path / "cut" / "ckpt")]) == 1
    err = capsys.readouterr().err
    assert "truncated" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory):
    """A tf_keras weights file with a kernel of two pieces, and the TF checkpoint ckit converts it to."""
    import tf_keras
    from converters.convert import convert

    out = tmp_path_factory.mktemp("keras_h5")
    tf_keras.utils.set_random_seed(3)
    model = tf_keras.Sequential([tf_keras.Input((1100,)), tf_keras.layers.Dense(1000, name="big")])
    model.save_weights(str(out / "w.h5"))
    convert(out / "w.h5", out / "ckpt", "tf-checkpoint")
    return out / "w.h5", out / "ckpt"


@pytest.mark.parametrize("chunk_elems", [CHUNK_ELEMS, 4 * BLOCK + 77])
def test_h5_pieces_equal_numpy_and_the_checkpoint(keras_h5, chunk_elems):
    h5, ckpt = keras_h5
    with open_artifact(h5) as reader:
        kernel = next(t for t in reader.manifest.tensors if t.name == "big/kernel")
        assert kernel.size > CHUNK_ELEMS
        _assert_equal_numpy(tensor_stats(reader, kernel, chunk_elems=chunk_elems), reader.read_tensor(kernel.key), kernel.key)
    assert inspector.diff(h5, ckpt).equal


def test_h5_element_changed_in_the_last_piece(keras_h5, tmp_path):
    import h5py

    h5, ckpt = keras_h5
    changed = tmp_path / "changed.h5"
    shutil.copy(h5, changed)
    with h5py.File(changed, "r+") as f:
        ds = f["big"]["big"]["kernel:0"]
        ds[1099, 998] = ds[1099, 998] + 1.0
    report = inspector.diff(changed, ckpt)
    (change,) = report.changed
    assert change.a.name == "big/kernel" and change.values.differing == 1
    assert change.values.first_index == (1099, 998)


def test_second_thread_only_when_asked(checkpoints, monkeypatch):
    from inspector.chunks import helper_pool

    a, b, arrays = checkpoints
    monkeypatch.delenv("CKIT_THREADS", raising=False)
    assert helper_pool() is None and helper_pool(force=True) is not None
    monkeypatch.setenv("CKIT_THREADS", "2")
    assert helper_pool() is not None
    with open_artifact(a) as reader:
        (w,) = [t for t in reader.manifest.tensors if t.name == "w"]
        _assert_equal_numpy(tensor_stats(reader, w), arrays["w"], w.key)
    assert inspector.diff(a, b).changed[0].values.first_index == (CHANGED,)
