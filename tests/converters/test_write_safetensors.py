"""safetensors writer against the reference implementation (safetensors.numpy) and live tf_keras models."""

from __future__ import annotations

import json
import struct

import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy as stnp

from converters.layout import LayerNode, ModelLayout, WeightRef
from converters.writers.base import WriteOptions, Writer
from converters.writers.safetensors import SAFETENSORS_WRITER, write_safetensors
from inspector.errors import MappingError, UnsupportedFeature


def _layout(values: dict[str, np.ndarray], **kwargs) -> ModelLayout:
    refs = tuple(WeightRef(k, str(v.dtype), v.shape, k) for k, v in values.items())
    return ModelLayout(layers=(LayerNode("layer", "Dense", refs),), read=values.__getitem__, **kwargs)


def _mixed_values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "dense/kernel": rng.normal(size=(5, 3)).astype(np.float32),
        "dense/bias_bf16": rng.normal(size=(3,)).astype(ml_dtypes.bfloat16),
        "half": rng.normal(size=(2, 2)).astype(np.float16),
        "double": rng.normal(size=(4,)),
        "steps": np.array(7, np.int64),
        "ids": rng.integers(0, 9, size=(3, 1)).astype(np.int32),
        "mask": np.array([True, False, True]),
        "bytes": rng.integers(0, 255, size=(5,)).astype(np.uint8),
        "empty": np.zeros((0, 4), np.float32),
    }


@pytest.mark.tf
@pytest.mark.parametrize("name", ["seed", "cnn", "lstm"])
def test_live_model_weights_round_trip_bit_identical(tmp_path, name):
    from tests.converters.keras2_layouts import layout_from_model, tf_keras_model

    model = tf_keras_model(name)
    layout = layout_from_model(model)
    dst = tmp_path / "m.safetensors"
    result = SAFETENSORS_WRITER.write(layout, dst, WriteOptions())
    assert result.paths == (dst,)
    loaded = stnp.load_file(dst)
    expected = {r.name: layout.read(r.source_key) for r in layout.flat_weights()}
    expected.update({"optimizer/" + r.name: layout.read(r.source_key) for r in layout.optimizer})
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        assert loaded[key].tobytes() == value.tobytes(), key


def test_mixed_dtypes_including_bfloat16_are_bit_identical(tmp_path):
    values = _mixed_values()
    dst = tmp_path / "x.safetensors"
    SAFETENSORS_WRITER.write(_layout(values), dst, WriteOptions())
    loaded = stnp.load_file(dst)
    assert loaded["dense/bias_bf16"].dtype == ml_dtypes.bfloat16
    for key, value in values.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        assert loaded[key].tobytes() == value.tobytes(), key


def test_bytes_identical_to_reference_writer(tmp_path):
    # Same tensors and metadata as safetensors' own (Rust) writer: the same file, byte for byte.
    values = {k: v for k, v in _mixed_values().items() if v.dtype != ml_dtypes.bfloat16}  # numpy.save refuses bf16
    layout = _layout(values)
    dst = tmp_path / "x.safetensors"
    # One key only: the Rust writer keeps metadata in a HashMap, so the order of several keys is random.
    metadata = {"producer": "ckit"}
    write_safetensors(dst, [(r.name, r) for r in layout.flat_weights()], layout, metadata, WriteOptions())
    assert dst.read_bytes() == stnp.save(values, metadata=metadata)


def test_header_is_aligned_and_records_provenance(tmp_path):
    dst = tmp_path / "x.safetensors"
    layout = _layout({"w": np.ones((3,), np.float32)}, source_format="h5-weights", source_producer={"keras": "2.21.0"})
    SAFETENSORS_WRITER.write(layout, dst, WriteOptions())
    raw = dst.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and len(raw) == 8 + n + 12
    header = json.loads(raw[8 : 8 + n])
    assert header["w"] == {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}
    meta = header["__metadata__"]
    assert meta["source_format"] == "h5-weights" and meta["producer"].startswith("ckit")
    assert json.loads(meta["source_producer"]) == {"keras": "2.21.0"}
    with safetensors.safe_open(dst, framework="np") as f:
        assert f.metadata() == meta


def test_progress_called_once_per_tensor(tmp_path):
    values = _mixed_values()
    seen: dict[str, int] = {}
    opts = WriteOptions(progress=lambda ref, n: seen.__setitem__(ref.name, n))
    SAFETENSORS_WRITER.write(_layout(values), tmp_path / "x.safetensors", opts)
    assert seen == {k: v.nbytes for k, v in values.items()}


def test_optimizer_tensors_prefixed_when_included(tmp_path):
    values = {"w": np.ones((2,), np.float32), "it": np.array(3, np.int64)}
    refs = (WeightRef("w", "float32", (2,), "w"),)
    layout = ModelLayout((LayerNode("l", "Dense", refs),), values.__getitem__,
                         optimizer=(WeightRef("iteration", "int64", (), "it"),))  # fmt: skip
    dst = tmp_path / "x.safetensors"
    assert SAFETENSORS_WRITER.write(layout, dst, WriteOptions()).notes == ()
    assert sorted(stnp.load_file(dst)) == ["optimizer/iteration", "w"]
    result = SAFETENSORS_WRITER.write(layout, dst, WriteOptions(include_optimizer=False))
    assert sorted(stnp.load_file(dst)) == ["w"]
    assert result.notes == ("optimizer state (1 tensors) left out as asked (include_optimizer off)",)
    unnamed = ModelLayout(layout.layers, layout.read, optimizer=(WeightRef("", "int64", (), "it"),))
    result = SAFETENSORS_WRITER.write(unnamed, dst, WriteOptions())
    assert result.notes == ("optimizer state (1 tensors) dropped: its tensors have no names",)


def test_string_tensor_refused_with_advice(tmp_path):
    ref = WeightRef("vocab/table", "string", (3,), "v")
    layout = ModelLayout((LayerNode("vocab", None, (ref,)),), lambda k: np.array([b"a", b"b", b"c"], object))
    with pytest.raises(UnsupportedFeature, match=r"'vocab/table' has dtype string, which safetensors cannot hold.*"
                       r"TensorFlow checkpoint"):  # fmt: skip
        SAFETENSORS_WRITER.write(layout, tmp_path / "x.safetensors", WriteOptions())
    assert not (tmp_path / "x.safetensors").exists()  # refused before any byte was written


def test_duplicate_names_refused(tmp_path):
    refs = (WeightRef("d/k", "float32", (1,), "a"), WeightRef("d/k", "float32", (1,), "b"))
    layout = ModelLayout((LayerNode("d", "Dense", refs),), lambda k: np.zeros((1,), np.float32))
    with pytest.raises(MappingError, match=r"two tensors would both be stored as 'd/k'"):
        SAFETENSORS_WRITER.write(layout, tmp_path / "x.safetensors", WriteOptions())


def test_value_contradicting_layout_refused(tmp_path):
    ref = WeightRef("d/k", "float32", (2,), "a")
    layout = ModelLayout((LayerNode("d", "Dense", (ref,)),), lambda k: np.zeros((2,), np.float64))
    with pytest.raises(MappingError, match=r"'d/k'.*read as float64\[2\].*declares float32\[2\]"):
        SAFETENSORS_WRITER.write(layout, tmp_path / "x.safetensors", WriteOptions())


def test_writer_satisfies_protocol():
    assert isinstance(SAFETENSORS_WRITER, Writer)
    assert (SAFETENSORS_WRITER.name, SAFETENSORS_WRITER.suffixes) == ("safetensors", (".safetensors",))
