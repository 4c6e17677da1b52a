"""SavedModel writer against TensorFlow's loader (serving signature) and tf_keras's."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from converters import zoo
from converters.writers.base import WriteOptions, Writer
from converters.writers.saved_model import SAVED_MODEL_WRITER, write_saved_model_from_model
from inspector.errors import MappingError, UnsafeArtifact, UnsupportedFeature
from tests.converters.keras2_layouts import layout_from_model, tf_keras_model

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def _logits(model, name: str) -> np.ndarray:
    return np.asarray(model(zoo.sample_inputs(name, count=8), training=False))


def _serve(path, name: str) -> np.ndarray:
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    (key,) = fn.structured_input_signature[1]
    (out,) = fn(**{key: tf.constant(zoo.sample_inputs(name, count=8))}).values()
    return out.numpy()


@pytest.mark.parametrize("name", ["seed", "cnn", "lstm"])
def test_saved_model_serves_and_loads_identically(tmp_path, name):
    import tf_keras

    model = tf_keras_model(name)
    dst = tmp_path / "out_savedmodel"
    seen = []
    result = SAVED_MODEL_WRITER.write(layout_from_model(model), dst, WriteOptions(progress=lambda r, n: seen.append(r)))
    assert result.paths == (dst,)
    assert (dst / "saved_model.pb").is_file() and (dst / "keras_metadata.pb").is_file()
    assert any("optimizer state" in note for note in result.notes)
    assert len(seen) == len(model.weights)
    expected = _logits(model, name)
    np.testing.assert_array_equal(_serve(dst, name), expected)
    loaded = tf_keras.models.load_model(str(dst), compile=False)
    for ours, theirs in zip(loaded.weights, model.weights, strict=True):
        assert ours.numpy().tobytes() == theirs.numpy().tobytes(), ours.name
    np.testing.assert_array_equal(_logits(loaded, name), expected)


def test_from_model_with_other_layer_names_matches_by_position(tmp_path):
    import tf_keras

    source = tf_keras_model("seed")
    fresh = zoo.seed_model(tf_keras)  # built later, so its layers are named dense_N+2 ...
    assert [layer.name for layer in fresh.layers] != [layer.name for layer in source.layers]
    dst = tmp_path / "sm"
    write_saved_model_from_model(fresh, layout_from_model(source, config=False), dst)
    np.testing.assert_array_equal(_serve(dst, "seed"), _logits(source, "seed"))


def test_no_config_says_pass_model(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"), config=False)
    with pytest.raises(MappingError, match=r"no model config.*pass --model"):
        SAVED_MODEL_WRITER.write(layout, tmp_path / "sm", WriteOptions())
    assert not (tmp_path / "sm").exists()


def test_empty_keras3_config_refused(tmp_path):
    # A Keras 3 config is exported through Keras 3 (model.export); an empty one names no architecture.
    layout = replace(layout_from_model(tf_keras_model("seed")), model_config={"schema": "keras3", "config": {}})
    with pytest.raises(MappingError, match=r"carries no model config.*pass --model"):
        SAVED_MODEL_WRITER.write(layout, tmp_path / "sm", WriteOptions())


def _with_layer(layout, entry: dict):
    config = json.loads(json.dumps(layout.model_config))
    config["config"]["config"]["layers"].insert(1, entry)
    return replace(layout, model_config=config)


def test_lambda_layer_refused_before_building(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"))
    lam = {"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAAAAAAAA", None, None]}}
    with pytest.raises(UnsafeArtifact, match=r"layer 'evil' is a Lambda layer.*refuses to run it.*--model"):
        SAVED_MODEL_WRITER.write(_with_layer(layout, lam), tmp_path / "sm", WriteOptions())
    assert not (tmp_path / "sm").exists()


@pytest.mark.parametrize(
    "entry",
    [
        {"class_name": "MyBlock", "config": {"name": "blk"}},
        {"module": "my_pkg.layers", "class_name": "Dense", "config": {"name": "blk"}, "registered_name": None},
        {"class_name": "Dense", "config": {"name": "blk"}, "registered_name": "my_pkg>Dense"},
    ],
)
def test_custom_classes_refused(tmp_path, entry):
    layout = layout_from_model(tf_keras_model("seed"))
    with pytest.raises(UnsafeArtifact, match=r"object 'blk' has class .* not a built-in tf_keras class.*--model"):
        SAVED_MODEL_WRITER.write(_with_layer(layout, entry), tmp_path / "sm", WriteOptions())


def test_shape_mismatch_names_the_layer(tmp_path):
    import tf_keras

    source = tf_keras_model("seed")
    other = tf_keras.Sequential([tf_keras.Input((28, 28)), tf_keras.layers.Flatten(), tf_keras.layers.Dense(64),
                                 tf_keras.layers.Dense(10)])  # fmt: skip
    with pytest.raises(MappingError, match=r"layer '%s': weight .*kernel:0' is float32\[784, 64\].*\[784, 128\]"
                       % other.layers[1].name):  # fmt: skip
        write_saved_model_from_model(other, layout_from_model(source), tmp_path / "sm")


def test_layer_count_mismatch(tmp_path):
    import tf_keras

    other = tf_keras.Sequential([tf_keras.Input((28, 28)), tf_keras.layers.Flatten(), tf_keras.layers.Dense(10)])
    with pytest.raises(MappingError, match=r"model has 1 layers with weights.*source has 2"):
        write_saved_model_from_model(other, layout_from_model(tf_keras_model("seed")), tmp_path / "sm")


def test_keras3_model_refused(tmp_path):
    import keras

    with pytest.raises(MappingError, match=r"a SavedModel is written from a tf_keras model"):
        write_saved_model_from_model(zoo.seed_model(keras), layout_from_model(tf_keras_model("seed")), tmp_path / "s")


def test_writer_satisfies_protocol():
    assert isinstance(SAVED_MODEL_WRITER, Writer) and SAVED_MODEL_WRITER.name == "saved-model"


def test_config_tf_keras_cannot_rebuild(tmp_path):
    layout = layout_from_model(tf_keras_model("seed"))
    broken = {"class_name": "Dense", "config": {"name": "blk"}}  # no units
    with pytest.raises(MappingError, match=r"tf_keras could not rebuild the model .*units.*pass --model"):
        SAVED_MODEL_WRITER.write(_with_layer(layout, broken), tmp_path / "sm", WriteOptions())
