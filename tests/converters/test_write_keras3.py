"""Keras 3 writers (`keras3-weights`, `keras3-model`) against the real Keras 3 loaders."""

from __future__ import annotations

import dataclasses
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from converters import zoo
from converters.layout import LayerNode, WeightRef
from converters.writers.base import Writer, WriteOptions
from converters.writers.hdf5_keras3 import KERAS3_WEIGHTS_WRITER, OPTIMIZER_NOTE
from converters.writers.keras_archive import KERAS3_MODEL_WRITER
from inspector.errors import MappingError, UnsafeArtifact, UnsupportedFeature

# The shared live-model layout helper sits beside this file (not a package).
sys.path.insert(0, str(Path(__file__).parent))
from keras2_layouts import layout_from_model, tf_keras_model  # noqa: E402

pytestmark = pytest.mark.tf

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

MODELS = ("seed", "cnn", "lstm")


@pytest.fixture(scope="module")
def sources():
    """(tf_keras model, its logits on the sample inputs) per zoo model."""
    out = {}
    for name in MODELS:
        model = tf_keras_model(name, seed=7)
        out[name] = (model, model(zoo.sample_inputs(name), training=False).numpy())
    return out


def _keras3_model(name: str):
    return zoo.MODELS[name](keras)


def _assert_same(tf_model, k3_model, name: str, logits: np.ndarray) -> None:
    expected = [v.numpy() for v in tf_model.weights]
    got = [np.asarray(v.numpy()) for v in k3_model.weights]
    assert [e.shape for e in expected] == [g.shape for g in got]
    for e, g in zip(expected, got):
        assert e.dtype == g.dtype and e.tobytes() == g.tobytes()
    out = np.asarray(k3_model(zoo.sample_inputs(name), training=False))
    # The helper's positive weights give logits near 1e6, so the tolerance is relative too.
    np.testing.assert_allclose(out, logits, atol=1e-5, rtol=1e-5)


def _h5_tree(path) -> dict[str, dict]:
    """Group/dataset path -> attrs (names only for datasets' shapes), optimizer excluded."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if not name.startswith("optimizer"):
                out[name] = getattr(obj, "shape", None)
        f.visititems(visit)
        assert dict(f.attrs) == {}
    return out


def test_writers_satisfy_protocol():
    assert isinstance(KERAS3_WEIGHTS_WRITER, Writer) and isinstance(KERAS3_MODEL_WRITER, Writer)
    assert KERAS3_WEIGHTS_WRITER.name == "keras3-weights"
    assert KERAS3_WEIGHTS_WRITER.suffixes == (".weights.h5", ".weights.json")
    assert KERAS3_MODEL_WRITER.name == "keras3-model" and KERAS3_MODEL_WRITER.suffixes == (".keras",)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("with_config", [True, False], ids=["config", "classes"])
def test_weights_load_in_keras3(sources, tmp_path, name, with_config):
    tf_model, logits = sources[name]
    layout = layout_from_model(tf_model, config=with_config)
    seen = []
    dst = tmp_path / "model.weights.h5"
    result = KERAS3_WEIGHTS_WRITER.write(layout, dst, WriteOptions(progress=lambda ref, n: seen.append((ref, n))))
    assert result.paths == (dst,)
    assert any(n.startswith(OPTIMIZER_NOTE) and "optimizer tensors not carried" in n for n in result.notes)
    assert [r for r, _ in seen] == layout.flat_weights()
    assert sum(n for _, n in seen) == sum(v.numpy().nbytes for v in tf_model.weights)

    k3 = _keras3_model(name)
    k3.load_weights(dst)
    _assert_same(tf_model, k3, name, logits)

    # The same groups Keras 3 writes itself; without a config, only the weighted layers' groups.
    reference = tmp_path / "keras.weights.h5"
    k3.save_weights(reference)
    ours, theirs = _h5_tree(dst), _h5_tree(reference)
    if with_config:
        assert ours == theirs
    else:
        assert {k: v for k, v in theirs.items() if k.endswith(tuple("0123456789"))} == {
            k: v for k, v in ours.items() if k.endswith(tuple("0123456789"))
        }


def test_weights_name_attributes_follow_source(sources, tmp_path):
    layout = layout_from_model(sources["cnn"][0])
    dst = tmp_path / "cnn.weights.h5"
    KERAS3_WEIGHTS_WRITER.write(layout, dst, WriteOptions())
    with h5py.File(dst, "r") as f:
        assert f["vars"].attrs["name"] == "cnn"
        assert f["layers/sequential/vars"].attrs["name"] == "head"
        assert f["layers/sequential/layers/dense_1/vars"].attrs["name"] == sources["cnn"][0].layers[-1].layers[-1].name
        assert "layers/input_layer/vars" in f and "optimizer" not in f


def test_weights_names_only_seed(sources, tmp_path):
    """class_name None: classes come from the Keras 2 auto-generated layer names."""
    tf_model, logits = sources["seed"]
    layout = layout_from_model(tf_model, config=False)
    layout = dataclasses.replace(
        layout, layers=tuple(dataclasses.replace(n, class_name=None) for n in layout.layers)
    )
    dst = tmp_path / "seed.weights.h5"
    KERAS3_WEIGHTS_WRITER.write(layout, dst, WriteOptions(include_optimizer=False))
    with h5py.File(dst, "r") as f:
        assert set(f["layers"]) == {"dense", "dense_1"}
    k3 = _keras3_model("seed")
    k3.load_weights(dst)
    _assert_same(tf_model, k3, "seed", logits)


# Limits that split each model into several shards while keeping every tensor under the limit,
# since Keras refuses a tensor larger than max_shard_size.
SHARD_LIMITS = {"seed": 402_000, "cnn": 5_000, "lstm": 5_000}


@pytest.mark.parametrize("name", MODELS)
def test_sharded_weights_match_keras(sources, tmp_path, name):
    tf_model, logits = sources[name]
    layout = layout_from_model(tf_model)
    limit = SHARD_LIMITS[name]
    index = tmp_path / "ours.weights.json"  # sharded Keras 3 weights are named X.weights.json
    result = KERAS3_WEIGHTS_WRITER.write(layout, index, WriteOptions(max_shard_size=limit))
    assert result.paths[0] == index and all(p.parent == tmp_path for p in result.paths)
    assert len(result.paths) > 2
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in result.paths}

    k3 = _keras3_model(name)
    k3.load_weights(index)
    _assert_same(tf_model, k3, name, logits)

    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    k3.save_weights(ref_dir / "ours.weights.json", max_shard_size=limit / 1024**3)
    ours, theirs = json.loads(index.read_text()), json.loads((ref_dir / "ours.weights.json").read_text())
    drop_opt = {k: v for k, v in theirs["weight_map"].items() if not k.startswith("/optimizer")}
    assert ours["weight_map"] == drop_opt
    assert ours["metadata"]["total_size"] == sum(v.numpy().nbytes for v in tf_model.weights)


def test_sharded_by_json_suffix_uses_one_shard(sources, tmp_path):
    tf_model, logits = sources["seed"]
    dst = tmp_path / "seed.weights.json"
    result = KERAS3_WEIGHTS_WRITER.write(layout_from_model(tf_model), dst, WriteOptions())
    assert [p.name for p in result.paths] == ["seed.weights.json", "seed_00000.weights.h5"]
    k3 = _keras3_model("seed")
    k3.load_weights(dst)
    _assert_same(tf_model, k3, "seed", logits)


@pytest.mark.parametrize("name", MODELS)
def test_keras_archive_loads_with_safe_mode(sources, tmp_path, name):
    tf_model, logits = sources[name]
    dst = tmp_path / f"{name}.keras"
    result = KERAS3_MODEL_WRITER.write(layout_from_model(tf_model), dst, WriteOptions())
    assert result.paths == (dst,)
    assert any("uncompiled" in n for n in result.notes) and any(n.startswith(OPTIMIZER_NOTE) for n in result.notes)
    with zipfile.ZipFile(dst) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == ["metadata.json", "config.json", "model.weights.h5"]
        assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED}
        meta = json.loads(zf.read("metadata.json"))
        assert meta["keras_version"] == keras.__version__ and "@" in meta["date_saved"]
        config = json.loads(zf.read("config.json"))
        native = keras.saving.serialize_keras_object(_keras3_model(name))
        for key in ("module", "class_name", "registered_name"):
            assert config[key] == native[key]
        assert config["build_config"] == json.loads(json.dumps(native["build_config"]))
        assert not config.get("compile_config")
    assert sorted(p.name for p in tmp_path.iterdir()) == [dst.name]

    k3 = keras.models.load_model(dst)
    _assert_same(tf_model, k3, name, logits)
    assert [layer.name for layer in k3.layers] == [
        layer.name for layer in tf_model.layers if type(layer).__name__ != "InputLayer" or name == "cnn"
    ]


# --- error paths --------------------------------------------------------------------------------


def test_unknown_layer_name_without_class(tmp_path):
    ref = WeightRef("mystery_1/kernel", "float32", (2, 2), "k")
    layout = layout_from_model(tf_keras_model("seed"), config=False)
    layout = dataclasses.replace(layout, layers=(LayerNode("mystery_1", None, (ref,)),))
    with pytest.raises(MappingError, match=r"layer 'mystery_1' has no class recorded and 'mystery' is not .*pass --model"):
        KERAS3_WEIGHTS_WRITER.write(layout, tmp_path / "x.weights.h5", WriteOptions())


def test_wrapper_layer_without_config_needs_model(tmp_path):
    inner = LayerNode("forward_lstm", "LSTM", (WeightRef("forward_lstm/k", "float32", (1,), "k"),))
    layout = layout_from_model(tf_keras_model("seed"), config=False)
    layout = dataclasses.replace(layout, layers=(LayerNode("bidirectional", "Bidirectional", (), (inner,)),))
    with pytest.raises(MappingError, match=r"layer 'bidirectional' \(Bidirectional\) holds sub-layers.*--model"):
        KERAS3_WEIGHTS_WRITER.write(layout, tmp_path / "x.weights.h5", WriteOptions())


def test_wrong_suffix(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"), config=False)
    with pytest.raises(UnsupportedFeature, match=r"'\*.weights.h5' or '\*.weights.json'.*got 'x.h5'; rename"):
        KERAS3_WEIGHTS_WRITER.write(layout, tmp_path / "x.h5", WriteOptions())
    with pytest.raises(UnsupportedFeature, match=r"'\*.keras'.*got 'x.zip'; rename"):
        KERAS3_MODEL_WRITER.write(layout, tmp_path / "x.zip", WriteOptions())


def test_archive_without_config(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"), config=False)
    with pytest.raises(MappingError, match=r"carries no model config.*pass --model module:function"):
        KERAS3_MODEL_WRITER.write(layout, tmp_path / "x.keras", WriteOptions())
    assert not list(tmp_path.iterdir())


def test_shape_mismatch_against_config(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"))
    first = layout.layers[0]
    bad = dataclasses.replace(first.weights[0], shape=(10, 128))
    layout = dataclasses.replace(layout, layers=(dataclasses.replace(first, weights=(bad, first.weights[1])),
                                                 *layout.layers[1:]))
    # A plain-layer config is planned without Keras (no framework import), so the value's own shape
    # is what disagrees with the layout; a config Keras must rebuild is checked against the model.
    message = (rf"weight '{bad.name}' (is float32\[784, 128\], the source's '{bad.name}' is float32\[10, 128\]; "
               rf"pass --model|read with shape \(784, 128\) but the layout says \(10, 128\))")
    with pytest.raises(MappingError, match=message):
        KERAS3_WEIGHTS_WRITER.write(layout, tmp_path / "x.weights.h5", WriteOptions())


def test_lambda_model_refused_for_archive_but_weights_fall_back(tmp_path):
    import tf_keras

    model = tf_keras.Sequential(
        [tf_keras.Input(shape=(4,)), tf_keras.layers.Dense(3), tf_keras.layers.Lambda(lambda x: x * 2, name="double")]
    )
    layout = layout_from_model(model, optimizer=False)
    with pytest.raises(UnsafeArtifact, match=r"layer 'double' is a Lambda layer.*pass --model"):
        KERAS3_MODEL_WRITER.write(layout, tmp_path / "x.keras", WriteOptions())
    result = KERAS3_WEIGHTS_WRITER.write(layout, tmp_path / "x.weights.h5", WriteOptions())
    assert any("paths derived from layer classes" in n for n in result.notes)
    k3 = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3)])
    k3.load_weights(tmp_path / "x.weights.h5")
    np.testing.assert_array_equal(k3.layers[0].kernel.numpy(), model.layers[0].kernel.numpy())


def _custom_classes(k):
    """Custom layers as a package registers them ('ckit_test>Name'), declared for either Keras."""
    register = getattr(k.utils, "register_keras_serializable", None) or k.saving.register_keras_serializable

    class Scale(k.layers.Layer):  # one variable: a single order
        def build(self, shape):
            self.scale = self.add_weight(name="scale", shape=(shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.scale

    class Affine(k.layers.Layer):  # two variables: the order is whatever the class's code creates
        def build(self, shape):
            self.w = self.add_weight(name="w", shape=(shape[-1],), initializer="ones")
            self.b = self.add_weight(name="b", shape=(shape[-1],), initializer="zeros")

        def call(self, x):
            return x * self.w + self.b

    class Double(k.layers.Layer):  # no variables
        def call(self, x):
            return x * 2

    return {c.__name__: register(package="ckit_test")(c) for c in (Scale, Affine, Double)}


_CUSTOM: dict = {}


def _custom_model(k, layer: str):
    classes = _CUSTOM.setdefault(k.__name__, _custom_classes(k))
    inp = k.Input((4,))
    x = k.layers.Dense(4, name="dense")(inp)
    x = classes[layer](name=layer.lower())(x)
    return k.Model(inp, k.layers.Dense(3, name="dense_1")(k.layers.Dense(4, name="dense_2")(x)))


@pytest.mark.parametrize("layer", ["Double", "Scale"])
def test_custom_layers_keras3_can_place_are_written(layer, tmp_path):
    """A config Keras 3 cannot rebuild (custom classes) still places Keras's own layers by class, and
    a custom layer with one variable at layers/<its Python class>/vars/0, where Keras 3 loads it."""
    import tf_keras

    from converters.convert import convert

    source = _custom_model(tf_keras, layer)
    rng = np.random.default_rng(3)
    for w in source.weights:
        w.assign(rng.standard_normal(w.shape).astype("float32"))
    source.save(tmp_path / "m.h5")
    result = convert(tmp_path / "m.h5", tmp_path / "m.weights.h5")
    assert result.verified and any("paths derived from layer classes" in n for n in result.notes)
    k3 = _custom_model(keras, layer)  # the user's Keras 3 port: same classes, same names
    k3.load_weights(tmp_path / "m.weights.h5")
    x = rng.standard_normal((2, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(k3(x)), np.asarray(source(x)), atol=1e-6)


def test_custom_layer_with_several_variables_is_refused(tmp_path):
    import tf_keras

    from converters.convert import convert
    from inspector.errors import CkitError

    _custom_model(tf_keras, "Affine").save(tmp_path / "m.h5")
    with pytest.raises(CkitError) as err:
        convert(tmp_path / "m.h5", tmp_path / "out" / "m.weights.h5")
    message = str(err.value)
    assert "\n" not in message
    for part in ("'affine'", "'ckit_test>Affine'", "Keras 3 does not know", "2 variables (w, b)",
                 "layers/affine/vars/0..1", "--model", "safetensors", "tf-checkpoint"):
        assert part in message, (part, message)
    assert not (tmp_path / "out").exists()


def test_weight_count_mismatch_against_config(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"))
    first = layout.layers[0]
    layout = dataclasses.replace(layout, layers=(dataclasses.replace(first, weights=first.weights[:1]),
                                                 *layout.layers[1:]))
    with pytest.raises(MappingError, match=rf"layer '{first.name}' has 2 weights, the source's layer "
                                           rf"'{first.name}' has 1; pass --model"):
        KERAS3_WEIGHTS_WRITER.write(layout, tmp_path / "x.weights.h5", WriteOptions())


def test_layers_unmatched_by_name_or_count(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"))
    renamed = dataclasses.replace(layout.layers[0], name="renamed")
    layout = dataclasses.replace(layout, layers=(renamed,))
    with pytest.raises(MappingError, match=r"the model has 2 layers with weights \(dense.*\), the source has 1 "
                                           r"\(renamed\); pass --model"):
        KERAS3_WEIGHTS_WRITER.write(layout, tmp_path / "x.weights.h5", WriteOptions())


def test_rnn_layouts_ckit_cannot_place(tmp_path):
    w = WeightRef("lstm/k", "float32", (1,), "k")
    cell = LayerNode("lstm_cell", "LSTMCell", (w,))
    base = layout_from_model(tf_keras_model("seed"), config=False)
    both = dataclasses.replace(base, layers=(LayerNode("lstm", "LSTM", (w,), (cell,)),))
    with pytest.raises(MappingError, match=r"RNN layer 'lstm' has weights both on itself and on a cell.*--model"):
        KERAS3_WEIGHTS_WRITER.write(both, tmp_path / "x.weights.h5", WriteOptions())
    two = dataclasses.replace(base, layers=(LayerNode("lstm", "LSTM", (), (cell, cell)),))
    with pytest.raises(MappingError, match=r"RNN layer 'lstm' has 2 cells; ckit maps one cell.*--model"):
        KERAS3_WEIGHTS_WRITER.write(two, tmp_path / "x.weights.h5", WriteOptions())


def test_rnn_weights_without_cell_node_go_under_cell(sources, tmp_path):
    """A reader that lists an LSTM's variables on the layer itself still lands them at lstm/cell/vars."""
    tf_model, logits = sources["lstm"]
    layout = layout_from_model(tf_model, config=False)
    flat = tuple(
        dataclasses.replace(n, weights=tuple(n.flat_weights()), children=()) if n.class_name == "LSTM" else n
        for n in layout.layers
    )
    dst = tmp_path / "lstm.weights.h5"
    KERAS3_WEIGHTS_WRITER.write(dataclasses.replace(layout, layers=flat), dst, WriteOptions())
    with h5py.File(dst, "r") as f:
        assert sorted(f["layers/lstm/cell/vars"]) == ["0", "1", "2"]
    k3 = _keras3_model("lstm")
    k3.load_weights(dst)
    _assert_same(tf_model, k3, "lstm", logits)
