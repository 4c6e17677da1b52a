"""Keras 2 -> Keras 3 model-config translation, checked by letting Keras 3 rebuild and run the result."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from converters import zoo
from converters.keras3_config import check_config_safe, keras3_model_config
from converters.layout import ModelLayout
from inspector.errors import MappingError, UnsafeArtifact, UnsupportedFeature

keras = pytest.importorskip("keras")
tf_keras = pytest.importorskip("tf_keras")

pytestmark = pytest.mark.tf


def _layout(config, schema="keras2") -> ModelLayout:
    model_config = None if config is None else {"schema": schema, "config": config}
    return ModelLayout(layers=(), read=lambda key: None, model_config=model_config, source_format="test")


def _tf_config(model) -> dict:
    return json.loads(model.to_json())


@pytest.mark.parametrize("name", ["seed", "cnn", "lstm"])
def test_keras2_config_rebuilds_same_model(name):
    tf_model = zoo.MODELS[name](tf_keras)
    k3 = keras3_model_config(_layout(_tf_config(tf_model)))
    native = keras.saving.serialize_keras_object(zoo.MODELS[name](keras))
    assert (k3.config["module"], k3.config["class_name"]) == (native["module"], native["class_name"])
    # The serialized config is what load_model reads: it must rebuild with safe_mode on.
    rebuilt = keras.saving.deserialize_keras_object(json.loads(json.dumps(k3.config)), safe_mode=True)
    assert [w.shape for w in rebuilt.weights] == [tuple(w.shape) for w in tf_model.weights]
    assert [layer.name for layer in k3.model.layers if layer.weights] == [
        layer.name for layer in tf_model.layers if layer.weights
    ]
    # Same architecture: equal weights give equal logits.
    k3.model.set_weights([w.numpy() for w in tf_model.weights])
    inputs = zoo.sample_inputs(name, count=4)
    np.testing.assert_allclose(np.asarray(k3.model(inputs)), tf_model(inputs).numpy(), rtol=1e-5, atol=1e-5)


def test_nested_model_node_index_renumbered():
    config = _tf_config(zoo.cnn_model(tf_keras))
    assert config["config"]["output_layers"] == [["head", 1, 0]]  # tf_keras counts the head's own Input node
    k3 = keras3_model_config(_layout(config))
    assert k3.config["config"]["output_layers"] == ["head", 0, 0] or k3.config["config"]["output_layers"] == [
        ["head", 0, 0]
    ]
    assert config["config"]["output_layers"] == [["head", 1, 0]], "the layout's config must not be mutated"


def test_sequential_without_input_layer_gets_one():
    model = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,)), tf_keras.layers.Dense(2)])
    config = _tf_config(model)
    config["config"]["layers"] = [l for l in config["config"]["layers"] if l["class_name"] != "InputLayer"]
    config["config"]["layers"][0]["config"]["batch_input_shape"] = [None, 4]
    k3 = keras3_model_config(_layout(config))
    assert [tuple(w.shape) for w in k3.model.weights] == [(4, 3), (3,), (3, 2), (2,)]
    assert k3.config["config"]["layers"][0]["class_name"] == "InputLayer"


def test_keras3_config_passes_through():
    native = keras.saving.serialize_keras_object(zoo.seed_model(keras))
    native = json.loads(json.dumps(native))
    k3 = keras3_model_config(_layout(native, schema="keras3"))
    assert k3.config == native
    assert [tuple(w.shape) for w in k3.model.weights] == [(784, 128), (128,), (128, 10), (10,)]


# --- error paths --------------------------------------------------------------------------------


def test_no_config():
    with pytest.raises(MappingError, match=r"the test artifact carries no model config.*pass --model module:function"):
        keras3_model_config(_layout(None))


def test_unknown_schema():
    with pytest.raises(MappingError, match=r"model config schema 'keras9' is unknown; expected 'keras2' or 'keras3'"):
        keras3_model_config(_layout({"class_name": "Sequential", "config": {}}, schema="keras9"))


def test_not_a_model_config():
    with pytest.raises(MappingError, match=r"the keras2 model config is not a serialized Keras model"):
        keras3_model_config(_layout({"layers": []}))


def _with_layer(layer_config: dict) -> dict:
    config = _tf_config(zoo.seed_model(tf_keras))
    config["config"]["layers"].append(layer_config)
    return config


def test_lambda_refused_by_name():
    model = tf_keras.Sequential([tf_keras.Input(shape=(4,)), tf_keras.layers.Lambda(lambda x: x + 1, name="plus_one")])
    with pytest.raises(UnsafeArtifact, match=r"layer 'plus_one' is a Lambda layer.*will not run.*pass --model"):
        keras3_model_config(_layout(_tf_config(model)))


@pytest.mark.parametrize(
    "layer",
    [
        {"module": "my_pkg.layers", "class_name": "Scale", "config": {"name": "scale"}, "registered_name": None},
        {"module": None, "class_name": "Dense", "config": {"name": "d", "units": 2}, "registered_name": "Custom>Dense"},
        {"class_name": "MysteryLayer", "config": {"name": "mystery", "trainable": True}},
    ],
    ids=["foreign-module", "registered-custom", "unknown-class"],
)
def test_custom_classes_refused(layer):
    name = layer["config"]["name"]
    with pytest.raises(UnsafeArtifact, match=rf"layer '{name}' uses class '[^']+', which is not a built-in Keras class"):
        check_config_safe(_with_layer(layer))


def test_time_major_refused():
    config = _tf_config(zoo.lstm_model(tf_keras))
    lstm = next(l for l in config["config"]["layers"] if l["class_name"] == "LSTM")
    lstm["config"]["time_major"] = True
    with pytest.raises(UnsupportedFeature, match=rf"layer '{lstm['config']['name']}' is time-major.*pass --model"):
        keras3_model_config(_layout(config))


def test_config_keras_cannot_rebuild():
    config = _tf_config(zoo.seed_model(tf_keras))
    broken = copy.deepcopy(config)
    dense = next(l for l in broken["config"]["layers"] if l["class_name"] == "Dense")
    dense["config"]["units"] = "many"
    with pytest.raises(MappingError, match=r"Keras 3 could not rebuild the model from its keras2 config.*pass --model"):
        keras3_model_config(_layout(broken))


def test_tuple_markers_from_h5_attributes_decoded():
    config = _tf_config(zoo.seed_model(tf_keras))
    first = config["config"]["layers"][0]
    assert first["class_name"] == "InputLayer"
    first["config"]["batch_input_shape"] = {"class_name": "__tuple__", "items": [None, 28, 28]}
    k3 = keras3_model_config(_layout(config))
    assert list(k3.config["config"]["layers"][0]["config"]["batch_shape"]) == [None, 28, 28]


def test_keras3_legacy_h5_config_goes_through_legacy_loader(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "legacy.h5"
    zoo.cnn_model(keras).save(path)
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
    assert "module" not in config  # Keras 3 writes .h5 configs in the legacy form
    k3 = keras3_model_config(_layout(config, schema="keras3"))
    assert k3.config["module"] == keras.saving.serialize_keras_object(zoo.cnn_model(keras))["module"]
    assert len(k3.model.weights) == len(zoo.cnn_model(keras).weights)


def test_keras3_config_keras_cannot_rebuild():
    native = json.loads(json.dumps(keras.saving.serialize_keras_object(zoo.seed_model(keras))))
    dense = next(l for l in native["config"]["layers"] if l["class_name"] == "Dense")
    dense["config"]["units"] = "many"
    with pytest.raises(MappingError, match=r"Keras 3 could not rebuild the model from its keras3 config.*pass --model"):
        keras3_model_config(_layout(native, schema="keras3"))
