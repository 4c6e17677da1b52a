"""`stats` equals numpy on the same arrays, piece by piece, and flags the NaN/Inf planted in a fixture."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from inspector import open_artifact
from inspector.cli import main
from inspector.errors import ChecksumMismatch
from inspector.stats import compute_stats, has_statistics, tensor_stats
from tests.conftest import FIXTURES, SEED_KERNEL_KEY, flip_byte_in_tensor

ARTIFACTS = [
    "seed/tf_keras/ckpt/weights",
    "seed/tf_keras/weights.h5",
    "seed/tf_keras/saved_model",
    "seed/keras3/model.keras",
    "seed/keras3/sharded/model.weights.json",
    "lstm/tf_keras/model.h5",
    "edge/dtypes/ckpt-1",
    "edge/multi_shard_sliced/ckpt-1",
    "edge/nonfinite/ckpt/weights",
    "edge/nonfinite/weights.h5",
]


def _numpy_stats(value: np.ndarray) -> dict:
    """The oracle: numpy over the whole array at once (finite values for the moments)."""
    flat = value.reshape(-1)
    if flat.dtype.kind == "b":
        flat = flat.astype(np.uint8)
    as_float = flat.astype(np.float64)
    finite = as_float[np.isfinite(as_float)]
    with np.errstate(over="ignore", invalid="ignore"):  # float64 extremes (1e300) square to inf
        return _figures(flat, as_float, finite)


def _figures(flat: np.ndarray, as_float: np.ndarray, finite: np.ndarray) -> dict:
    return {
        "count": flat.size,
        "zeros": int(np.sum(flat == 0)),
        "nan": int(np.isnan(as_float).sum()),
        "posinf": int(np.isposinf(as_float).sum()),
        "neginf": int(np.isneginf(as_float).sum()),
        "min": finite.min() if finite.size else None,
        "max": finite.max() if finite.size else None,
        "mean": finite.mean() if finite.size else None,
        "std": finite.std() if finite.size else None,
        "l2": np.linalg.norm(finite) if finite.size else None,
    }


@pytest.mark.parametrize("chunk_elems", [97, 1 << 20], ids=["tiny-pieces", "default-pieces"])
@pytest.mark.parametrize("relative", ARTIFACTS)
def test_stats_equal_numpy(relative, chunk_elems):
    with open_artifact(FIXTURES / relative) as reader:
        checked = 0
        for tensor in reader.manifest.tensors:
            if not has_statistics(tensor):
                continue
            got = tensor_stats(reader, tensor, chunk_elems=chunk_elems)
            want = _numpy_stats(reader.read_tensor(tensor.key))
            for field in ("count", "zeros", "nan", "posinf", "neginf", "min", "max"):
                assert getattr(got, field) == want[field], (tensor.key, field)
            for field in ("mean", "std", "l2"):
                if want[field] is None:
                    assert getattr(got, field) is None
                else:
                    assert getattr(got, field) == pytest.approx(want[field], rel=1e-9, abs=1e-12), (tensor.key, field)
            checked += 1
        assert checked


def test_planted_nonfinite_values_are_counted_exactly():
    for relative in ("edge/nonfinite/weights.h5", "edge/nonfinite/ckpt/weights"):
        report = compute_stats(str(FIXTURES / relative))
        by_name = {s.tensor.name: s for s in report.tensors if s.tensor.role == "weight"}
        assert (by_name["dense/kernel"].nan, by_name["dense/kernel"].posinf) == (2, 0)
        assert (by_name["dense/bias"].posinf, by_name["dense/bias"].nan) == (1, 0)
        assert by_name["dense_1/kernel"].neginf == 1
        assert by_name["dense_1/bias"].finite
        assert sorted(s.tensor.name for s in report.nonfinite) == ["dense/bias", "dense/kernel", "dense_1/kernel"]


def test_cli_flags_nonfinite_and_fails_only_when_asked(capsys):
    path = str(FIXTURES / "edge/nonfinite/ckpt/weights")
    assert main(["stats", path]) == 0
    out = capsys.readouterr().out
    assert "NON-FINITE: 3 tensors hold NaN or Inf" in out
    assert "2 NaN" in out and "1 +Inf" in out and "1 -Inf" in out
    assert main(["stats", "--fail-on-nonfinite", path]) == 1
    capsys.readouterr()
    assert main(["stats", "--fail-on-nonfinite", "--key", "dense_1/bias", path]) == 0
    assert "1 tensor," not in capsys.readouterr().out  # plural rule: "1 tensor" not "1 tensors"


def test_json_schema_and_key_filter(capsys):
    assert main(["stats", "--json", "--key", "*kernel*", str(FIXTURES / "edge/nonfinite/weights.h5")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "ckit.stats/1"
    assert [t["name"] for t in doc["tensors"]] == ["dense/kernel", "dense_1/kernel"]
    assert doc["nonfinite"] == [t["key"] for t in doc["tensors"]]
    first = doc["tensors"][0]
    assert set(first) == {"key", "name", "role", "dtype", "shape", "count", "min", "max", "mean", "std", "l2",
                          "zeros", "nan", "posinf", "neginf", "finite"}
    assert first["nan"] == 2 and first["finite"] is False


def test_streamed_pieces_still_check_the_crc(tmp_path):
    """A damaged byte in a checkpoint tensor fails stats even though no piece holds the whole tensor."""
    shutil.copytree(FIXTURES / "seed/tf_keras/ckpt", tmp_path / "ckpt")
    flip_byte_in_tensor(tmp_path / "ckpt" / "weights")
    with open_artifact(tmp_path / "ckpt" / "weights") as reader:
        tensor = reader.manifest[SEED_KERNEL_KEY]
        with pytest.raises(ChecksumMismatch, match="CRC32C of tensor"):
            tensor_stats(reader, tensor, chunk_elems=1000)
