"""The safetensors reader against the safetensors package, and every bound it checks."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from inspector.errors import CkitError, CorruptArtifact, UnsupportedFeature
from inspector.formats.safetensors import SAFETENSORS
from inspector.registry import detect, open_artifact


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "dense/kernel": rng.random((784, 128), dtype=np.float32),
        "dense/bias": rng.random(128, dtype=np.float32),
        "dense_1/kernel": rng.random((128, 10)).astype(np.float16),
        "dense_1/bias": np.arange(10, dtype=np.float64),
        "optimizer/iteration": np.array(7, dtype=np.int64),
        "flags": np.array([True, False, True]),
        "ids": np.arange(12, dtype=np.int32).reshape(3, 4),
        "bytes": np.arange(5, dtype=np.uint8),
        "empty": np.zeros((0, 3), dtype=np.float32),
    }


def test_matches_the_safetensors_package(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(_tensors(), str(path), metadata={"format": "np", "framework": "ckit"})
    oracle = load_file(str(path))
    assert detect(path).name == "safetensors"
    with open_artifact(path) as reader:
        m = reader.manifest
        assert m.format == "safetensors"
        assert sorted(t.key for t in m) == sorted(oracle)
        for info in m:
            value = reader.read_tensor(info.key)
            assert value.dtype == oracle[info.key].dtype and value.shape == oracle[info.key].shape == info.shape
            assert value.tobytes() == oracle[info.key].tobytes()
            assert info.nbytes == oracle[info.key].nbytes
        assert m.metadata["safetensors_metadata"] == {"format": "np", "framework": "ckit"}
        assert m.producer["framework"] == "ckit"
        assert m["optimizer/iteration"].role == "optimizer"
        assert m["dense/kernel"].layer == "dense"
        # the file is laid out by dtype and name; the Keras order comes from the names
        assert [(t.name, t.index) for t in dict(m.layer_weights())["dense"]] == [("dense/kernel", 0), ("dense/bias", 1)]
        assert m.metadata["layer_order"] == "guessed"


def _write(path: Path, header: dict, data: bytes, length: int | None = None) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def test_bfloat16_and_float8(tmp_path: Path) -> None:
    bf = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    f8 = np.array([0.5, 1.0], dtype=ml_dtypes.float8_e4m3fn)
    header = {"bf": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]},
              "f8": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [6, 8]}}
    path = _write(tmp_path / "x.safetensors", header, bf.tobytes() + f8.tobytes())
    with SAFETENSORS.open(path) as reader:
        assert reader.manifest["bf"].dtype == "bfloat16"
        assert reader.read_tensor("bf").tobytes() == bf.tobytes()
        assert reader.read_tensor("bf").dtype == ml_dtypes.bfloat16
        assert reader.read_tensor("f8").dtype == ml_dtypes.float8_e4m3fn
        with pytest.raises(KeyError):
            reader.read_tensor("nope")


def test_layer_index_follows_keras_variable_order(tmp_path: Path) -> None:
    names = ["bn/beta", "bn/gamma", "bn/moving_mean", "bn/moving_variance", "lstm/lstm_cell/bias",
             "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "x/zeta", "x/alpha_custom"]
    header = {n: {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i, n in enumerate(names)}
    with SAFETENSORS.open(_write(tmp_path / "x.safetensors", header, b"\0" * 4 * len(names))) as reader:
        got = {layer: [t.name for t in ws] for layer, ws in reader.manifest.layer_weights()}
    assert got == {
        "bn": ["bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"],
        "lstm": ["lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "lstm/lstm_cell/bias"],
        "x": ["x/zeta", "x/alpha_custom"],  # unknown names keep file order
    }


def _error(path: Path, cls=CkitError) -> str:
    with pytest.raises(cls) as info:
        SAFETENSORS.open(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


GOOD = {"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("header,data,length,message", [
    (None, b"", None, "the file is empty"),
    (None, b"\x01\x02\x03", None, "3 bytes is shorter than the 8-byte header length"),
    (GOOD, b"\0" * 8, 1 << 40, "header length 1099511627776 does not fit"),
    ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 8, None,
     "tensor 't' spans bytes [0, 16) but the data area holds 8"),
    ({"t": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, None,
     "tensor 't' holds 8 bytes but float32 [3] needs 12"),
    ({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 8]}}, b"\0" * 8, None,
     "has shape [-1]; expected a list of non-negative integers"),
    ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, None, "spans bytes [8, 0)"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, None, "tensors 'a' and 'b' overlap"),
    ({"t": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, None, "has data_offsets None; expected [begin, end]"),
    ({"__metadata__": {"k": 1}, **GOOD}, b"\0" * 8, None, "__metadata__ must map strings to strings"),
    ({"t": [1, 2]}, b"\0" * 8, None, "tensor 't' has a list entry"),
])
def test_bad_headers(tmp_path: Path, header, data: bytes, length, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    if header is None:
        path.write_bytes(data)
    else:
        _write(path, header, data, length)
    assert message in _error(path, CorruptArtifact)


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", 5) + b"{oops")
    assert "the header is not valid JSON" in _error(path, CorruptArtifact)
    path.write_bytes(struct.pack("<Q", 2) + b"[]")
    assert "the header is a JSON list, not an object" in _error(path, CorruptArtifact)


def test_unknown_dtype(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.safetensors", {"t": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8)
    assert "has dtype 'C64'; expected one of BOOL, U8" in _error(path, UnsupportedFeature)


def test_truncated_after_open(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.safetensors", GOOD, b"\0" * 8)
    with SAFETENSORS.open(path) as reader:
        path.write_bytes(path.read_bytes()[:-4])
        with pytest.raises(CorruptArtifact, match="tensor 't' is cut short"):
            reader.read_tensor("t")


@pytest.mark.parametrize("content", [b"", b"1234567", b"\xff" * 64, b"\x89HDF\r\n\x1a\n" + b"\0" * 64])
def test_sniff_never_raises(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    assert not SAFETENSORS.sniff(path)
    assert not SAFETENSORS.sniff(tmp_path) and not SAFETENSORS.sniff(tmp_path / "absent")


def test_detected_by_content_without_suffix(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    save_file({"a": np.ones(2, np.float32)}, str(path))
    assert detect(path).name == "safetensors"
