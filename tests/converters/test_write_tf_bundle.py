"""TensorFlow checkpoint writer against the real thing: TF's own bundle reader and writer, tf_keras load_weights."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from converters import zoo
from converters.layout import LayerNode, ModelLayout, WeightRef
from converters.writers.base import WriteOptions, Writer
from converters.writers.sstable import short_successor, shortest_separator
from converters.writers.tf_bundle import (
    OBJECT_GRAPH_KEY,
    TF_CHECKPOINT_WRITER,
    BundleWriter,
    build_object_graph,
    escape_local_name,
)
from inspector.errors import MappingError, MissingData, OutputExists, UnsupportedFeature

from tests.converters.keras2_layouts import layout_from_model, tf_keras_model

pytestmark = pytest.mark.tf
MODELS = ["seed", "cnn", "lstm"]


def _tf():
    import tensorflow as tf

    return tf


def every_dtype() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "float32": rng.standard_normal((3, 4)).astype(np.float32),
        "float64": rng.standard_normal((2, 2, 2)),
        "float16": rng.standard_normal(7).astype(np.float16),
        "bfloat16": rng.standard_normal((5, 3)).astype(ml_dtypes.bfloat16),
        "int8": np.array([-128, 0, 127], dtype=np.int8),
        "int16": np.array([-32768, 5, 32767], dtype=np.int16),
        "int32": np.arange(-5, 5, dtype=np.int32).reshape(2, 5),
        "int64": np.array([-(2**62), 2**62], dtype=np.int64),
        "uint8": np.arange(256, dtype=np.uint8),
        "uint16": np.array([0, 65535], dtype=np.uint16),
        "uint32": np.array([0, 2**32 - 1], dtype=np.uint32),
        "uint64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "bool": np.array([[True, False], [False, True]]),
        "complex64": (rng.standard_normal(4) + 1j * rng.standard_normal(4)).astype(np.complex64),
        "complex128": rng.standard_normal((2, 1)) + 1j * rng.standard_normal((2, 1)),
        "scalar_float": np.array(3.25, dtype=np.float32),
        "scalar_int64": np.array(42, dtype=np.int64),
        "empty": np.zeros((0, 5), dtype=np.float32),
        "empty_1d_int": np.zeros((0,), dtype=np.int32),
        "strings": np.array([b"", b"a", "ünïcode".encode(), b"\x00\xff" * 300], dtype=object),
        "string_matrix": np.array([[b"ab", b"cd"], [b"ef", b""]], dtype=object),
        "string_scalar": np.array(b"just one", dtype=object),
        "string_empty": np.array([], dtype=object).reshape(0, 2),
        "long_string": np.array([b"x" * 200_000], dtype=object),
        # Keys TF must find as they are: dots, slashes and non-ASCII survive untouched.
        "layer.1/kernel/.ATTRIBUTES/VARIABLE_VALUE": np.ones(2, np.float32),
        "ключ": np.zeros(1, np.int8),
    }


def _check_against_tf(prefix: Path, expected: dict[str, np.ndarray], dtypes: dict[str, str] | None = None) -> None:
    tf = _tf()
    reader = tf.train.load_checkpoint(str(prefix))
    shapes = reader.get_variable_to_shape_map()
    tf_dtypes = reader.get_variable_to_dtype_map()
    assert set(shapes) == set(expected)
    for key, value in expected.items():
        got = reader.get_tensor(key)
        assert tuple(shapes[key]) == value.shape, key
        if value.dtype == object:
            assert tf_dtypes[key] == tf.string
            got = np.asarray(got, dtype=object).reshape(value.shape)
            assert [bytes(x) for x in got.reshape(-1)] == [bytes(x) for x in value.reshape(-1)], key
            continue
        got = np.asarray(got)
        assert tf_dtypes[key].as_numpy_dtype == value.dtype, key
        assert got.dtype == value.dtype, key
        assert got.shape == value.shape, key
        assert got.tobytes() == value.tobytes(), key


# --- low level: BundleWriter ----------------------------------------------------------------------


def test_every_dtype_reads_back_in_tensorflow(tmp_path: Path) -> None:
    values = every_dtype()
    prefix = tmp_path / "ckpt"
    with BundleWriter(prefix) as writer:
        for key, value in values.items():
            writer.add(key, value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.data-00000-of-00001", "ckpt.index"]
    _check_against_tf(prefix, values)

    # ckit's own reader (which verifies every CRC) agrees too.
    from inspector.formats.tf_bundle import BundleReader

    reader = BundleReader(prefix)
    try:
        for key, value in values.items():
            got = reader.read(key)
            assert got.shape == value.shape, key
            if value.dtype == object:
                assert [bytes(x) for x in got.reshape(-1)] == [bytes(x) for x in value.reshape(-1)], key
            else:
                assert got.dtype == value.dtype and got.tobytes() == value.tobytes(), key
    finally:
        reader.close()


def test_index_and_data_are_byte_identical_to_tensorflows_own(tmp_path: Path) -> None:
    """SaveV2 (TF's C++ BundleWriter) and ours, fed the same tensors in the same order, agree byte for byte.

    Enough keys, long enough, that the index spans several 256 KiB data blocks, so
    restart points, block trailers and TF's shortest separators are all exercised.
    """
    tf = _tf()
    rng = np.random.default_rng(0)
    values: dict[str, np.ndarray] = {}
    for i in range(12000):
        values[f"model/layer_{i:05d}/sub.layer/{'kernel' if i % 2 else 'bias'}/.ATTRIBUTES/VARIABLE_VALUE"] = (
            rng.standard_normal((i % 5 + 1, 2)).astype(np.float32)
        )
    values["strings"] = np.array([b"abc", b"", b"de"], dtype=object)
    values["no_strings"] = np.array([], dtype=object).reshape(0, 2)
    values["half"] = np.arange(4, dtype=np.float16)
    names = list(values)
    tf.raw_ops.SaveV2(
        prefix=str(tmp_path / "tf"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(v) for v in values.values()],
    )
    with BundleWriter(tmp_path / "ours") as writer:
        for key, value in values.items():
            writer.add(key, value)
    tf_index = (tmp_path / "tf.index").read_bytes()
    assert len(tf_index) > 3 * 256 * 1024
    assert (tmp_path / "ours.index").read_bytes() == tf_index
    tf_data = (tmp_path / "tf.data-00000-of-00001").read_bytes()
    assert (tmp_path / "ours.data-00000-of-00001").read_bytes() == tf_data


def test_sharded_bundle_reads_back_in_tensorflow(tmp_path: Path) -> None:
    values = every_dtype()
    prefix = tmp_path / "sharded"
    with BundleWriter(prefix, max_shard_size=1000) as writer:
        for key, value in values.items():
            writer.add(key, value)
        paths = writer.finish()
    shards = sorted(p.name for p in tmp_path.glob("sharded.data-*"))
    count = len(shards)
    assert count > 3
    assert shards == [f"sharded.data-{i:05d}-of-{count:05d}" for i in range(count)]
    assert {p.name for p in paths} == set(shards) | {"sharded.index"}
    _check_against_tf(prefix, values)


def test_shards_hold_whole_tensors_under_the_limit(tmp_path: Path) -> None:
    prefix = tmp_path / "s"
    with BundleWriter(prefix, max_shard_size=100) as writer:
        writer.add("a", np.zeros(10, np.float32))  # 40 bytes
        writer.add("b", np.zeros(10, np.float32))  # 80 so far
        writer.add("c", np.zeros(10, np.float32))  # would be 120: new shard
        writer.add("big", np.zeros(100, np.float32))  # 400 bytes: alone
        writer.add("d", np.zeros(1, np.float32))
    sizes = [(tmp_path / f"s.data-{i:05d}-of-00004").stat().st_size for i in range(4)]
    assert sizes == [80, 40, 400, 4]
    _check_against_tf(prefix, {k: np.zeros(n, np.float32) for k, n in [("a", 10), ("b", 10), ("c", 10), ("big", 100), ("d", 1)]})


def test_refuses_to_overwrite_an_existing_index(tmp_path: Path) -> None:
    (tmp_path / "ckpt.index").write_bytes(b"precious")
    with pytest.raises(OutputExists, match=r"ckpt\.index already exists; BundleWriter never overwrites a checkpoint; remove it or choose another prefix"):
        BundleWriter(tmp_path / "ckpt")
    assert (tmp_path / "ckpt.index").read_bytes() == b"precious"


def test_refuses_to_overwrite_stray_data_shards(tmp_path: Path) -> None:
    (tmp_path / "ckpt.data-00000-of-00001").write_bytes(b"precious")
    with pytest.raises(OutputExists, match=r"ckpt\.data-00000-of-00001 already exists \(data shard without index\)"):
        BundleWriter(tmp_path / "ckpt")


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MissingData, match=r"nowhere is not an existing directory; .*; create it first"):
        BundleWriter(tmp_path / "nowhere" / "ckpt")


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    with BundleWriter(tmp_path / "ckpt") as writer:
        writer.add("w", np.zeros(2, np.float32))
        with pytest.raises(MappingError, match="duplicate tensor key 'w': a bundle holds one tensor per key; rename"):
            writer.add("w", np.ones(2, np.float32))


def test_header_key_is_reserved(tmp_path: Path) -> None:
    with BundleWriter(tmp_path / "ckpt") as writer:
        with pytest.raises(MappingError, match="tensor key '' is reserved for the bundle header"):
            writer.add("", np.zeros(2, np.float32))


@pytest.mark.parametrize(
    ("value", "dtype", "shown"),
    [
        (np.array(["2020-01-01"], dtype="datetime64[D]"), None, "datetime64[D]"),
        (np.zeros(2, np.float32), "resource", "resource"),
        (np.zeros(2, np.float32), "float128", "float128"),
    ],
)
def test_unsupported_dtype_is_refused(tmp_path: Path, value, dtype, shown) -> None:
    with BundleWriter(tmp_path / "ckpt") as writer:
        with pytest.raises(UnsupportedFeature, match=rf"cannot write tensor 'x' of dtype '{re.escape(shown)}' into a TensorFlow bundle; supported dtypes: .*bfloat16.*; cast the tensor first"):
            writer.add("x", value, dtype=dtype)


def test_string_elements_must_be_bytes_or_str(tmp_path: Path) -> None:
    with BundleWriter(tmp_path / "ckpt") as writer:
        with pytest.raises(UnsupportedFeature, match="string tensor element of type int; expected bytes or str"):
            writer.add("s", np.array([b"a", 3], dtype=object))


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with BundleWriter(tmp_path / "ckpt") as writer:
            writer.add("a", np.zeros(3, np.float32))
            raise RuntimeError("source went away")
    assert list(tmp_path.iterdir()) == []


def test_separators_follow_tensorflow() -> None:
    assert shortest_separator(b"the quick brown fox", b"the who") == b"the r"
    assert shortest_separator(b"abc", b"abcd") == b"abc"  # prefix: unchanged
    assert shortest_separator(b"ab\xff", b"ac") == b"ab\xff"
    assert shortest_separator(b"a1", b"a2") == b"a1"  # no room between the differing bytes
    assert short_successor(b"abc") == b"b"
    assert short_successor(b"\xff\xffa") == b"\xff\xffb"
    assert short_successor(b"\xff") == b"\xff"


def test_escape_local_name_matches_tensorflow() -> None:
    from tensorflow.python.trackable import trackable_utils

    for name in ["kernel", "a.b", "a/b", "..", ".S", "x./y"]:
        assert escape_local_name(name) == trackable_utils.escape_local_name(name)


def test_write_speed_is_reported(tmp_path: Path) -> None:
    """Not a benchmark: guards against a pure-Python slow path creeping into the data loop."""
    import time

    value = np.random.default_rng(0).standard_normal(8 << 20).astype(np.float32)  # 32 MiB
    start = time.perf_counter()
    with BundleWriter(tmp_path / "big") as writer:
        writer.add("big", value)
    elapsed = time.perf_counter() - start
    assert value.nbytes / elapsed > 50e6, f"{value.nbytes / elapsed / 1e6:.0f} MB/s"


# --- high level: tf_keras checkpoints from a layout -------------------------------------------------


def _write(layout: ModelLayout, dst: Path, **options) -> tuple:
    result = TF_CHECKPOINT_WRITER.write(layout, dst, WriteOptions(**options))
    return result


def _model_keys(prefix: Path) -> set[str]:
    keys = set(_tf().train.load_checkpoint(str(prefix)).get_variable_to_shape_map())
    return {k for k in keys if not k.startswith("optimizer/") and k != OBJECT_GRAPH_KEY}


def test_writer_satisfies_the_protocol() -> None:
    assert isinstance(TF_CHECKPOINT_WRITER, Writer)
    assert TF_CHECKPOINT_WRITER.name == "tf-checkpoint"
    assert TF_CHECKPOINT_WRITER.suffixes == ()


@pytest.mark.parametrize("model_name", MODELS)
def test_tf_keras_load_weights_restores_every_weight(tmp_path: Path, model_name: str) -> None:
    import tf_keras

    source = tf_keras_model(model_name, seed=3)
    layout = layout_from_model(source)
    seen = []
    result = _write(layout, tmp_path / "weights", progress=lambda ref, n: seen.append((ref.name, n)))
    assert sorted(p.name for p in result.paths) == ["checkpoint", "weights.data-00000-of-00001", "weights.index"]
    assert all(p.parent == tmp_path for p in result.paths)
    assert [name for name, _ in seen] == [r.name for r in layout.flat_weights()] + [
        r.name for r in layout.optimizer
    ] + ["learning_rate"]
    assert (tmp_path / "checkpoint").read_text() == (
        'model_checkpoint_path: "weights"\nall_model_checkpoint_paths: "weights"\n'
    )
    assert result.notes == ()

    fresh = zoo.MODELS[model_name](tf_keras)
    fresh.optimizer.build(fresh.trainable_variables)
    status = fresh.load_weights(str(tmp_path / "weights"))
    status.assert_existing_objects_matched()
    for got, want in zip(fresh.get_weights(), source.get_weights(), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
    for got, want in zip(fresh.optimizer.variables, source.optimizer.variables, strict=True):
        assert got.numpy().tobytes() == want.numpy().tobytes()
    assert fresh.optimizer.learning_rate.numpy() == source.optimizer.learning_rate.numpy()

    # Slots restore as tf_keras restores its own: deferred until the optimizer builds them.
    later = zoo.MODELS[model_name](tf_keras)
    later.load_weights(str(tmp_path / "weights")).assert_nontrivial_match()
    later.optimizer.build(later.trainable_variables)
    for got, want in zip(later.optimizer.variables, source.optimizer.variables, strict=True):
        assert got.numpy().tobytes() == want.numpy().tobytes()
    inputs = zoo.sample_inputs(model_name)
    np.testing.assert_array_equal(fresh(inputs, training=False).numpy(), source(inputs, training=False).numpy())

    # TF's own reader agrees, and the keys are exactly the ones tf_keras writes itself.
    source.save_weights(str(tmp_path / "own" / "weights"))
    own = set(_tf().train.load_checkpoint(str(tmp_path / "own" / "weights")).get_variable_to_shape_map())
    ours = set(_tf().train.load_checkpoint(str(tmp_path / "weights")).get_variable_to_shape_map())
    assert ours == own
    assert _model_keys(tmp_path / "weights") == {
        k for k in own if not k.startswith("optimizer/") and k != OBJECT_GRAPH_KEY
    }


@pytest.mark.parametrize("model_name", MODELS)
def test_weights_only_layout_loads_into_a_fresh_model(tmp_path: Path, model_name: str) -> None:
    """No optimizer in the layout: the model weights still restore, as `load_weights` users expect."""
    import tf_keras

    source = tf_keras_model(model_name, seed=5, optimizer=False)
    layout = layout_from_model(source, config=False, optimizer=False)
    result = _write(layout, tmp_path / "w")
    assert result.notes == ()
    fresh = zoo.MODELS[model_name](tf_keras)
    fresh.load_weights(str(tmp_path / "w")).assert_nontrivial_match()
    for got, want in zip(fresh.get_weights(), source.get_weights(), strict=True):
        assert got.tobytes() == want.tobytes()
    inputs = zoo.sample_inputs(model_name)
    np.testing.assert_array_equal(fresh(inputs, training=False).numpy(), source(inputs, training=False).numpy())


def test_object_graph_has_tf_keras_shape(tmp_path: Path) -> None:
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    layout = layout_from_model(tf_keras_model("lstm"), config=False, optimizer=False)
    cell_kernel = layout.layers[1].flat_weights()[0]
    _write(layout, tmp_path / "w")
    reader = _tf().train.load_checkpoint(str(tmp_path / "w"))
    graph = TrackableObjectGraph.FromString(reader.get_tensor(OBJECT_GRAPH_KEY))
    root = {c.local_name: c.node_id for c in graph.nodes[0].children}
    assert list(root) == ["layer_with_weights-0", "layer_with_weights-1", "layer_with_weights-2"]
    lstm = graph.nodes[root["layer_with_weights-1"]]
    cell = graph.nodes[{c.local_name: c.node_id for c in lstm.children}["cell"]]
    kernel = graph.nodes[{c.local_name: c.node_id for c in cell.children}["kernel"]]
    assert kernel.attributes[0].name == "VARIABLE_VALUE"
    assert kernel.attributes[0].full_name == cell_kernel.name
    assert cell_kernel.name.endswith("lstm_cell/kernel")
    assert kernel.attributes[0].checkpoint_key == "layer_with_weights-1/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert all(node.has_checkpoint_values.value for node in graph.nodes)


def test_sharded_tf_keras_checkpoint_loads(tmp_path: Path) -> None:
    import tf_keras

    source = tf_keras_model("cnn", seed=7)
    layout = layout_from_model(source, config=False)
    result = _write(layout, tmp_path / "w", max_shard_size=2048)
    shards = [p for p in result.paths if ".data-" in p.name]
    assert len(shards) > 2
    fresh = zoo.MODELS["cnn"](tf_keras)
    fresh.load_weights(str(tmp_path / "w")).assert_nontrivial_match()
    for got, want in zip(fresh.get_weights(), source.get_weights(), strict=True):
        assert got.tobytes() == want.tobytes()


def test_names_are_escaped_like_tensorflow(tmp_path: Path) -> None:
    ref = WeightRef(name="odd/we.ird/name", dtype="float32", shape=(2,), source_key="k")
    layout = ModelLayout(layers=(LayerNode("odd", "Custom", (ref,)),), read=lambda key: np.ones(2, np.float32))
    _graph, variables, _notes = build_object_graph(layout)
    assert [key for key, _, _ in variables] == ["layer_with_weights-0/name/.ATTRIBUTES/VARIABLE_VALUE"]
    ref = replace(ref, name="odd/we.ird")
    layout = replace(layout, layers=(LayerNode("odd", "Custom", (ref,)),))
    _graph, variables, _notes = build_object_graph(layout)
    assert [key for key, _, _ in variables] == ["layer_with_weights-0/we..ird/.ATTRIBUTES/VARIABLE_VALUE"]


def test_optimizer_that_does_not_map_is_dropped_with_a_note(tmp_path: Path) -> None:
    import tf_keras

    source = tf_keras_model("seed", seed=2)
    layout = layout_from_model(source, config=False)
    # Legacy (tf_keras < 2.11) slot names: `Opt/<variable>/<slot>`.
    legacy = tuple(
        replace(ref, name=f"RMSprop/{ref.name.partition('/')[2]}/rms") if ref.name.startswith("velocity/") else ref
        for ref in layout.optimizer
    )
    result = _write(replace(layout, optimizer=legacy), tmp_path / "w")
    first_kernel = layout.flat_weights()[0].name
    assert result.notes == (
        f"optimizer slots dropped (4 variables): slot 'RMSprop/{first_kernel}/rms' does not name a model "
        "variable as '[<optimizer>/]<slot>/<variable>'; tf_keras would restore them onto the wrong variables; the iteration "
        "count was kept, the slots start fresh",
    )
    keys = set(_tf().train.load_checkpoint(str(tmp_path / "w")).get_variable_to_shape_map())
    assert "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert not any(k.startswith("optimizer/_variables/") for k in keys)
    fresh = zoo.MODELS["seed"](tf_keras)
    fresh.load_weights(str(tmp_path / "w")).assert_nontrivial_match()
    for got, want in zip(fresh.get_weights(), source.get_weights(), strict=True):
        assert got.tobytes() == want.tobytes()
    assert int(fresh.optimizer.iterations.numpy()) == int(source.optimizer.iterations.numpy())

    no_counter = tuple(r for r in layout.optimizer if r.attribute != "iteration")
    result = _write(replace(layout, optimizer=no_counter), tmp_path / "w2")
    assert result.notes == (
        "optimizer state dropped (4 variables): expected one iteration counter, found none; "
        "the model will load with a fresh optimizer",
    )


def test_include_optimizer_false_writes_no_optimizer(tmp_path: Path) -> None:
    layout = layout_from_model(tf_keras_model("seed"), config=False)
    result = _write(layout, tmp_path / "w", include_optimizer=False)
    assert result.notes == ()
    keys = set(_tf().train.load_checkpoint(str(tmp_path / "w")).get_variable_to_shape_map())
    assert not any(k.startswith("optimizer/") for k in keys)


def test_shape_disagreement_is_refused(tmp_path: Path) -> None:
    ref = WeightRef(name="dense/kernel", dtype="float32", shape=(2, 3), source_key="k")
    layout = ModelLayout(layers=(LayerNode("dense", "Dense", (ref,)),), read=lambda key: np.ones((3, 2), np.float32))
    with pytest.raises(MappingError, match=r"tensor 'k' has shape \(3, 2\), but the layout declares \(2, 3\) for 'dense/kernel'"):
        _write(layout, tmp_path / "w")
    assert list(tmp_path.iterdir()) == []


def test_unknown_sub_layers_are_refused(tmp_path: Path) -> None:
    inner = LayerNode("inner", "Dense", (WeightRef("block/inner/kernel", "float32", (2,), "k"),))
    layout = ModelLayout(layers=(LayerNode("block", "Block", (), (inner,)),), read=lambda key: np.ones(2))
    with pytest.raises(MappingError, match=r"layer 'block' \(Block\) has sub-layers \['inner'\] whose tf_keras attribute names are not known.*or \.keras instead$"):
        _write(layout, tmp_path / "w")
    # A Bidirectional layer is placed as tf_keras tracks it (forward_layer, backward_layer), but only
    # when both directions are there: one alone is refused before anything is written.
    inner = LayerNode("forward_lstm", "LSTM", (WeightRef("f/kernel", "float32", (2,), "k"),))
    layout = ModelLayout(layers=(LayerNode("bidirectional", "Bidirectional", (), (inner,)),), read=lambda key: np.ones(2))
    with pytest.raises(UnsupportedFeature, match=r"^layer 'bidirectional' \(Bidirectional\): ckit cannot tell which"):
        _write(layout, tmp_path / "w")
    assert not list(tmp_path.iterdir())


def test_writer_does_not_import_tensorflow(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from converters.layout import LayerNode, ModelLayout, WeightRef\n"
        "from converters.writers.base import WriteOptions\n"
        "from converters.writers.tf_bundle import TF_CHECKPOINT_WRITER\n"
        "ref = WeightRef('dense/kernel', 'float32', (2,), 'k')\n"
        "layout = ModelLayout((LayerNode('dense', 'Dense', (ref,)),), lambda key: np.ones(2, np.float32))\n"
        f"TF_CHECKPOINT_WRITER.write(layout, __import__('pathlib').Path({str(tmp_path / 'w')!r}), WriteOptions())\n"
        "assert not any(m == 'tensorflow' or m.startswith(('tensorflow.', 'tf_keras', 'keras')) for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
    assert (tmp_path / "w.index").exists()
