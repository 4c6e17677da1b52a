"""Keras 3 -> tf_keras full models: `ckconvert convert model.keras m.h5` gives an .h5 tf_keras opens.

Ground truth is the frameworks themselves: Keras 3 predicts on the source, `tf_keras.models.load_model`
on the output, and the two must agree; the compile setup must come back as tf_keras objects.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from converters.convert import convert
from converters.keras2_config import translate_compile_config, translate_model_config
from inspector.errors import UnsafeArtifact, UnsupportedFeature

from tests.conftest import fixture_path

pytestmark = pytest.mark.tf


def _predict(model, inputs):
    return np.asarray(model(inputs, training=False))


@pytest.mark.parametrize("model", ["seed", "cnn", "lstm"])
@pytest.mark.parametrize("source", ["model.keras", "legacy.h5"])
def test_fixture_keras3_models_load_in_tf_keras_with_their_compile_setup(tmp_path, model, source):
    import tf_keras

    out = tmp_path / "m.h5"
    result = convert(fixture_path(model, "keras3", source), out, "h5-model")
    assert any("optimizer state" in note and "dropped" in note for note in result.notes)
    assert not any("training config" in note for note in result.notes), result.notes
    ref = np.load(fixture_path(model, "reference.npz"))
    loaded = tf_keras.models.load_model(out)
    np.testing.assert_allclose(_predict(loaded, ref["inputs"]), ref["logits_keras3"], atol=1e-5)
    assert type(loaded.optimizer).__name__ == "RMSprop"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(1e-3)
    assert type(loaded.loss).__name__ == "SparseCategoricalCrossentropy" and loaded.loss.get_config()["from_logits"]


def _rich_keras3_model(keras):
    """Two inputs, shared and nested layers, RNN wrappers, attention and a schedule: the translation's corners."""
    tokens = keras.Input(shape=(12,), dtype="int32", name="tokens")
    extra = keras.Input(shape=(12, 4), name="extra")
    x = keras.layers.Embedding(50, 8, mask_zero=False, name="embed")(tokens)
    x = keras.layers.Concatenate(name="join")([x, extra])
    x = keras.layers.Conv1D(16, 3, padding="same", activation="relu",
                            kernel_regularizer=keras.regularizers.L2(1e-4),
                            kernel_constraint=keras.constraints.MaxNorm(3.0), name="conv")(x)
    x = keras.layers.LayerNormalization(name="norm")(x)
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(x, x)
    x = keras.layers.Add(name="residual")([x, attended])
    x = keras.layers.TimeDistributed(keras.layers.Dense(8, kernel_initializer="he_normal"), name="td")(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True), name="bilstm")(x)
    x = keras.layers.GRU(5, name="gru")(x)
    x = keras.layers.Dropout(0.1, seed=3, name="drop")(x)
    block_in = keras.Input(shape=(5,))
    block = keras.Model(block_in, keras.layers.Dense(7, activation="tanh")(block_in), name="block")
    x = block(x)
    outputs = keras.layers.Dense(3, name="out")(x)
    model = keras.Model({"tokens": tokens, "extra": extra}, outputs, name="rich")
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=100, decay_rate=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=keras.losses.MeanSquaredError(),
                  metrics=[keras.metrics.MeanAbsoluteError()])
    return model


def test_a_rich_keras3_model_loads_in_tf_keras_and_predicts_the_same(tmp_path):
    import keras
    import tf_keras

    keras.utils.set_random_seed(7)
    model = _rich_keras3_model(keras)
    rng = np.random.default_rng(0)
    inputs = {"tokens": rng.integers(0, 50, size=(4, 12)).astype("int32"),
              "extra": rng.random((4, 12, 4), dtype=np.float32)}
    src = tmp_path / "rich.keras"
    model.save(src)
    from converters.convert import resolve_target
    from inspector import read_manifest

    assert resolve_target(tmp_path / "m.h5", None, read_manifest(src)) == "h5-model"  # what `ckconvert convert` picks
    convert(src, tmp_path / "m.h5")
    loaded = tf_keras.models.load_model(tmp_path / "m.h5")
    np.testing.assert_allclose(_predict(loaded, inputs), _predict(model, inputs), atol=1e-5)
    assert type(loaded.optimizer).__name__ == "Adam"
    assert loaded.optimizer.get_config()["learning_rate"]["class_name"] == "ExponentialDecay"
    assert type(loaded.loss).__name__ == "MeanSquaredError"
    with h5py.File(tmp_path / "m.h5", "r") as f:
        config = json.loads(f.attrs["model_config"])
    assert "module" not in json.dumps(config)  # tf_keras's legacy form
    block = next(layer for layer in config["config"]["layers"] if layer["name"] == "block")
    out = next(layer for layer in config["config"]["layers"] if layer["name"] == "out")
    # tf_keras counts the nested model's first call as node 1 (node 0 is its own Input)
    assert out["inbound_nodes"] == [[["block", 1, 0, {}]]] and block["class_name"] == "Functional"


def test_layers_without_a_tf_keras_counterpart_are_refused_by_name(tmp_path):
    import keras

    inputs = keras.Input(shape=(6,))
    x = keras.layers.RMSNormalization(name="rms")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(x))
    src = tmp_path / "rms.keras"
    model.save(src)
    with pytest.raises(UnsupportedFeature) as refused:
        convert(src, tmp_path / "m.h5", "h5-model")
    line = str(refused.value)
    assert "\n" not in line
    assert "'rms' (RMSNormalization)" in line and "no tf_keras counterpart" in line and "--to keras3-model" in line
    assert not (tmp_path / "m.h5").exists()


def test_keras3_only_arguments_are_dropped_at_their_default_and_refused_otherwise():
    import keras

    def config_with(**dense_kwargs):
        inputs = keras.Input(shape=(4,))
        model = keras.Model(inputs, keras.layers.Dense(2, name="d", **dense_kwargs)(inputs))
        return keras.saving.serialize_keras_object(model)

    plain = translate_model_config(config_with())
    dense = plain["config"]["layers"][1]["config"]
    assert "lora_rank" not in dense and "quantization_config" not in dense
    assert dense["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {"seed": None}}
    assert dense["dtype"] == "float32"
    with pytest.raises(UnsupportedFeature, match=r"layer 'd' \(Dense\) sets lora_rank=2, which tf_keras has no argument for"):
        translate_model_config(config_with(lora_rank=2))


def test_lambda_layers_are_refused_as_today(tmp_path):
    import keras

    inputs = keras.Input(shape=(3,))
    doubled = keras.layers.Lambda(lambda t: t * 2, name="double")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(doubled))
    src = tmp_path / "lambda.keras"
    model.save(src)
    with pytest.raises(UnsafeArtifact, match="Lambda"):
        convert(src, tmp_path / "m.h5", "h5-model")
    assert not (tmp_path / "m.h5").exists()


def test_compile_config_that_tf_keras_cannot_take_is_left_out_with_a_note():
    training, note = translate_compile_config({
        "optimizer": {"module": "keras.optimizers", "class_name": "Adam",
                      "config": {"learning_rate": 0.01, "gradient_accumulation_steps": 4}, "registered_name": None},
        "loss": "mse", "metrics": None, "loss_weights": None, "weighted_metrics": None,
    })
    assert training is None
    assert note.startswith("training config not carried (optimizer Adam sets gradient_accumulation_steps=4")
    training, note = translate_compile_config({
        "optimizer": "adam", "loss": "mse", "metrics": ["mae"], "loss_weights": None, "weighted_metrics": None,
    })
    assert note is None and training["optimizer_config"]["config"]["is_legacy_optimizer"] is False
