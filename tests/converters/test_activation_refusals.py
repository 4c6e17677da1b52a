"""Activations in model configs: a custom function is refused by layer, argument and name, and a
'hard_sigmoid' is never carried between Keras 2 and Keras 3, which define two different functions.

Keras 2 / tf_keras `hard_sigmoid(x)` is clip(0.2*x + 0.5, 0, 1); Keras 3's is clip(x/6 + 0.5, 0, 1).
Both frameworks rebuild a config naming 'hard_sigmoid' with their own, so a converted model would
load and predict other values: these tests measure that on real models and check ckit refuses.
"""

from __future__ import annotations

import numpy as np
import pytest

from converters.cli import main
from converters.convert import convert
from inspector.errors import UnsafeArtifact, UnsupportedFeature
from tests.conftest import FIXTURES, only_line

tf_keras = pytest.importorskip("tf_keras")
keras = pytest.importorskip("keras")

THIRDPARTY = FIXTURES / "thirdparty"
INPUTS = np.random.RandomState(2).normal(0, 1, (4, 5, 3)).astype("float32")


def _set_weights(model) -> None:
    """Unit-variance weights: gate pre-activations then reach where the two hard_sigmoids differ."""
    rng = np.random.RandomState(1)
    model.set_weights([rng.normal(0, 1.0, w.shape).astype("float32") for w in model.get_weights()])


def _lstm(k, activation="hard_sigmoid"):
    inp = k.Input((5, 3), name="inp")
    x = k.layers.LSTM(4, recurrent_activation=activation, name="gates")(inp)
    model = k.Model(inp, k.layers.Dense(2, name="head")(x))
    _set_weights(model)
    return model


@pytest.mark.parametrize("name,path,layer", [
    ("chars2vec", "chars2vec/weights.h5", "lstm_1"),
    ("reactionrnn", "reactionrnn/reactionrnn_weights.hdf5", "rnn"),
])
def test_registered_activation_function_refused_by_layer_argument_and_name(name, path, layer, tmp_path, capsys):
    """The third-party models' Keras 2 hard_sigmoid, a registered function in their Keras 3 build,
    is named as what it is (it used to read "uses class 'function'")."""
    dst = tmp_path / "m.keras"
    assert main(["convert", str(THIRDPARTY / path), str(dst), "--model", f"tests.thirdparty.archs:{name}"]) == 1
    line = only_line(capsys.readouterr().err)
    assert f"layer '{layer}' argument 'recurrent_activation' is the function 'ckit_thirdparty>keras2_hard_sigmoid'" in line
    assert "not a built-in Keras activation" in line and "keras3-weights" in line
    assert "class 'function'" not in line
    assert not dst.exists()


def test_custom_activation_in_a_keras2_file_refused_by_name(tmp_path):
    """A tf_keras `.h5` whose Dense uses the user's own function: named, not blamed on a class."""

    def scaled_tanh(x):
        return 2.0 * tf_keras.activations.tanh(x)

    inp = tf_keras.Input((3,))
    model = tf_keras.Model(inp, tf_keras.layers.Dense(2, activation=scaled_tanh, name="scaled")(inp))
    model.save(tmp_path / "m.h5")
    with pytest.raises(UnsafeArtifact) as refused:
        convert(tmp_path / "m.h5", tmp_path / "m.keras")
    line = str(refused.value)
    assert "\n" not in line
    assert "layer 'scaled' argument 'activation' is the function 'scaled_tanh'" in line
    assert not (tmp_path / "m.keras").exists()


def test_custom_layer_class_keeps_the_class_message(tmp_path):
    """A genuinely custom layer class is still refused as a class (rnnmorph's ReversedLSTM, once its
    activations are built-in)."""
    from converters.config_safety import check_config_safe
    from tests.thirdparty import archs

    inp = keras.Input((5, 3))
    layer = archs.reversed_lstm(keras)(4, recurrent_activation="sigmoid", name="backward")
    config = keras.saving.serialize_keras_object(keras.Model(inp, layer(inp)))
    with pytest.raises(UnsafeArtifact, match=r"^layer 'backward' uses class '[^']*ReversedLSTM', which is not a built-in Keras class"):
        check_config_safe(config)


def test_keras2_hard_sigmoid_differs_from_keras3s_and_is_refused_for_keras3_model(tmp_path):
    """tf_keras LSTM(recurrent_activation='hard_sigmoid') -> .keras: Keras 3 would rebuild it with its
    own hard_sigmoid (measured: max |diff| 0.07 on this model); ckit refuses by layer and argument,
    while h5-model (tf_keras keeps the function) stays exact."""
    source = _lstm(tf_keras)
    source.save(tmp_path / "m.h5")
    expected = source.predict(INPUTS, verbose=0)

    # What a .keras would hold: the same layers, 'hard_sigmoid' resolved by Keras 3, the same weights.
    rebuilt = _lstm(keras)
    rebuilt.set_weights(source.get_weights())
    assert np.abs(np.asarray(rebuilt.predict(INPUTS, verbose=0)) - expected).max() > 0.02

    with pytest.raises(UnsupportedFeature) as refused:
        convert(tmp_path / "m.h5", tmp_path / "m.keras")
    line = str(refused.value)
    assert "\n" not in line
    assert "layer 'gates' argument 'recurrent_activation' is Keras 2's 'hard_sigmoid'" in line
    assert "clip(0.2*x + 0.5, 0, 1)" in line and "clip(x/6 + 0.5, 0, 1)" in line
    assert not (tmp_path / "m.keras").exists()

    convert(tmp_path / "m.h5", tmp_path / "out.h5", to="h5-model")
    reloaded = tf_keras.models.load_model(tmp_path / "out.h5", compile=False)
    np.testing.assert_allclose(reloaded.predict(INPUTS, verbose=0), expected, atol=1e-6)


def test_keras2_sigmoid_gates_still_convert_to_keras3_model(tmp_path):
    """Only hard_sigmoid is refused: the same LSTM with sigmoid gates predicts the same in Keras 3."""
    source = _lstm(tf_keras, "sigmoid")
    source.save(tmp_path / "m.h5")
    convert(tmp_path / "m.h5", tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(np.asarray(loaded.predict(INPUTS, verbose=0)), source.predict(INPUTS, verbose=0),
                               atol=1e-5)


def test_keras3_hard_sigmoid_refused_for_tf_keras_targets(tmp_path):
    """The other way: a Keras 3 .keras with hard_sigmoid gates would become tf_keras's function."""
    source = _lstm(keras)
    source.save(tmp_path / "k3.keras")
    expected = np.asarray(source.predict(INPUTS, verbose=0))

    rebuilt = _lstm(tf_keras)
    rebuilt.set_weights(source.get_weights())
    assert np.abs(rebuilt.predict(INPUTS, verbose=0) - expected).max() > 0.02

    with pytest.raises(UnsupportedFeature) as refused:
        convert(tmp_path / "k3.keras", tmp_path / "out.h5", to="h5-model")
    line = str(refused.value)
    assert "\n" not in line
    assert "layer 'gates' argument 'recurrent_activation' is Keras 3's 'hard_sigmoid'" in line
    assert not (tmp_path / "out.h5").exists()
