"""Users' own models, as a user-scenario QA met them: subclassed tf_keras models, Bidirectional
RNNs, Keras 3 layers with custom names, and `--model` factories that misbehave.

Every model is built here with tf_keras or Keras 3, saved by the framework, converted with
`converters.convert.convert`, reloaded with the framework's own loader and compared weight by
weight (bit for bit) and on outputs.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from converters.convert import convert
from inspector.errors import MappingError

pytestmark = pytest.mark.tf

# The users' code: a module --model imports.  A subclassed model tracks its layers by attribute.
USER_MODULE = '''
import numpy as np

CALLS = []


def _net_class(keras):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.enc = keras.layers.Dense(8, activation="relu")
            self.dec = keras.layers.Dense(6, activation="tanh")
            self.head = keras.layers.Dense(3)

        def call(self, x):
            return self.head(self.dec(self.enc(x)))

    return Net


def subclassed(keras):
    CALLS.append("subclassed")
    model = _net_class(keras)()
    model(np.zeros((1, 4), np.float32))
    return model


def with_list_and_rnn(keras):
    class Stack(keras.Model):  # layers in a list (tracked as blocks/0, blocks/1) and an RNN (rnn/cell)
        def __init__(self):
            super().__init__()
            self.blocks = [keras.layers.Dense(5), keras.layers.Dense(4)]
            self.rnn = keras.layers.LSTM(3)
            self.out = keras.layers.Dense(2)

        def call(self, x):
            x = self.rnn(x)
            for block in self.blocks:
                x = block(x)
            return self.out(x)

    model = Stack()
    model(np.zeros((1, 6, 3), np.float32))
    return model


def no_argument():
    import tf_keras

    CALLS.append("no_argument")
    return subclassed(tf_keras)


def raises_type_error(keras):
    CALLS.append("raises_type_error")
    return keras.layers.Dense(units="eight", bogus=1)


def needs_two(keras, k):
    CALLS.append("needs_two")
    return None


def raises_value_error(keras):
    CALLS.append("raises_value_error")
    raise ValueError("weights file\\nnot found")


def returns_text(keras):
    return "not a model"


def keras3_for_tf_keras(keras):
    import keras as keras3

    return keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(3)])
'''


@pytest.fixture
def user(tmp_path, monkeypatch):
    """The user's module, importable as `usermodels` (as --model usermodels:function)."""
    (tmp_path / "usermodels.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usermodels", None)
    import usermodels

    yield usermodels
    sys.modules.pop("usermodels", None)


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _randomize(model, seed=1):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()])


def _assert_same_weights(got_model, want_model):
    got, want = got_model.get_weights(), want_model.get_weights()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


def _assert_same_outputs(got_model, want_model, inputs):
    np.testing.assert_array_equal(np.asarray(got_model(inputs, training=False)),
                                  np.asarray(want_model(inputs, training=False)))


def _one_line(message: str) -> str:
    assert "\n" not in message, message
    return message


# -- 1. the --model factory contract ------------------------------------------------------------


@pytest.fixture
def source_h5(user, tmp_path):
    import tf_keras

    model = user.subclassed(tf_keras)
    _randomize(model)
    model.save_weights(str(tmp_path / "sub.h5"))
    user.CALLS.clear()
    return tmp_path / "sub.h5", model


def test_factory_type_error_is_the_users_and_called_once(user, source_h5, tmp_path):
    src, _ = source_h5
    with pytest.raises(MappingError) as info:
        convert(src, tmp_path / "o" / "ck", to="tf-checkpoint", model="usermodels:raises_type_error")
    message = _one_line(str(info.value))
    assert message.startswith("--model 'usermodels:raises_type_error': the factory raised TypeError: ")
    assert "expected it to build and return a Keras model" in message
    assert "internal error" not in message and "report it" not in message
    assert user.CALLS == ["raises_type_error"]  # not retried as factory()


def test_factory_with_two_parameters_gets_one_call_and_a_clear_message(user, source_h5, tmp_path):
    src, _ = source_h5
    with pytest.raises(MappingError) as info:
        convert(src, tmp_path / "o" / "ck", to="tf-checkpoint", model="usermodels:needs_two")
    message = _one_line(str(info.value))
    assert "the factory raised TypeError: " in message and "'k'" in message
    assert user.CALLS == []  # Python refused the call before the body ran; no retry without arguments


def test_factory_other_exception_is_reported_as_the_factorys(user, source_h5, tmp_path):
    src, _ = source_h5
    with pytest.raises(MappingError) as info:
        convert(src, tmp_path / "o" / "ck", to="tf-checkpoint", model="usermodels:raises_value_error")
    message = _one_line(str(info.value))
    assert "the factory raised ValueError: weights file not found;" in message
    assert user.CALLS == ["raises_value_error"]


def test_factory_without_parameters_is_called_without_argument(user, source_h5, tmp_path):
    import tf_keras

    src, want = source_h5
    convert(src, tmp_path / "o" / "ck", to="tf-checkpoint", model="usermodels:no_argument")
    assert user.CALLS[0] == "no_argument"
    got = user.subclassed(tf_keras)
    got.load_weights(str(tmp_path / "o" / "ck")).assert_existing_objects_matched()
    _assert_same_weights(got, want)


def test_factory_returning_no_model_is_refused(user, source_h5, tmp_path):
    src, _ = source_h5
    with pytest.raises(MappingError) as info:
        convert(src, tmp_path / "o" / "ck", to="tf-checkpoint", model="usermodels:returns_text")
    message = _one_line(str(info.value))
    assert "returned a builtins.str, not a tf_keras.Model" in message and "tf_keras module" in message


def test_factory_building_keras3_for_a_keras2_target_is_refused(user, source_h5, tmp_path):
    src, _ = source_h5
    with pytest.raises(MappingError) as info:
        convert(src, tmp_path / "o" / "ck", to="tf-checkpoint", model="usermodels:keras3_for_tf_keras")
    message = _one_line(str(info.value))
    assert "not a tf_keras.Model" in message and "given the tf_keras module" in message
    assert not (tmp_path / "o").exists()


# -- 2. subclassed tf_keras models -> tf-checkpoint ------------------------------------------------


def _restore_checkpoint(user, prefix):
    import tf_keras

    model = user.subclassed(tf_keras)
    status = model.load_weights(str(prefix))
    status.assert_existing_objects_matched()
    return model


def test_subclassed_weights_h5_to_checkpoint_with_model(user, source_h5, tmp_path):
    import tensorflow as tf

    src, want = source_h5
    dst = tmp_path / "o" / "ck"
    convert(src, dst, to="tf-checkpoint", model="usermodels:subclassed")
    keys = {k for k, _ in tf.train.list_variables(str(dst))}
    want.save_weights(str(tmp_path / "own"))  # tf_keras's own keys for the same model
    assert keys == {k for k, _ in tf.train.list_variables(str(tmp_path / "own"))}
    got = _restore_checkpoint(user, dst)
    _assert_same_weights(got, want)
    _assert_same_outputs(got, want, _inputs((5, 4)))


def test_subclassed_checkpoint_to_checkpoint(user, source_h5, tmp_path):
    src, want = source_h5
    want.save_weights(str(tmp_path / "own"))
    dst = tmp_path / "o" / "ck"
    convert(tmp_path / "own", dst, to="tf-checkpoint")
    got = _restore_checkpoint(user, dst)
    _assert_same_weights(got, want)
    _assert_same_outputs(got, want, _inputs((5, 4)))


@pytest.mark.parametrize("source", ["weights.h5 with --model", "ckpt"])
def test_subclassed_list_and_rnn_to_checkpoint(user, tmp_path, source):
    import tensorflow as tf
    import tf_keras

    want = user.with_list_and_rnn(tf_keras)
    _randomize(want)
    want.save_weights(str(tmp_path / "own"))
    if source == "ckpt":
        src, model = tmp_path / "own", None
    else:
        src, model = tmp_path / "src.h5", "usermodels:with_list_and_rnn"
        want.save_weights(str(src))
    dst = tmp_path / "o" / "ck"
    convert(src, dst, to="tf-checkpoint", model=model)
    assert {k for k, _ in tf.train.list_variables(str(dst))} == {
        k for k, _ in tf.train.list_variables(str(tmp_path / "own"))
    }
    got = user.with_list_and_rnn(tf_keras)
    got.load_weights(str(dst)).assert_existing_objects_matched()
    _assert_same_weights(got, want)
    _assert_same_outputs(got, want, _inputs((2, 6, 3)))


# -- 3. Bidirectional -> tf-checkpoint -------------------------------------------------------------


def _bidirectional(keras):
    return keras.Sequential([
        keras.Input((5, 3)),
        keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True)),
        keras.layers.Bidirectional(keras.layers.GRU(2)),
        keras.layers.Dense(2),
    ])  # fmt: skip


@pytest.mark.parametrize("source", ["weights.h5", "ckpt", "keras3.keras"])
def test_bidirectional_to_checkpoint(tmp_path, source):
    import tensorflow as tf
    import tf_keras

    want = _bidirectional(tf_keras)
    _randomize(want)
    src = tmp_path / {"weights.h5": "bi.h5", "ckpt": "bick", "keras3.keras": "bi.keras"}[source]
    if source == "keras3.keras":  # the same weights, saved by Keras 3
        import keras

        keras3 = _bidirectional(keras)
        keras3.set_weights(want.get_weights())
        keras3.save(str(src))
    else:
        want.save_weights(str(src))
    want.save_weights(str(tmp_path / "own"))
    dst = tmp_path / "o" / "ck"
    convert(src, dst, to="tf-checkpoint")
    assert {k for k, _ in tf.train.list_variables(str(dst))} == {
        k for k, _ in tf.train.list_variables(str(tmp_path / "own"))
    }
    got = _bidirectional(tf_keras)
    got.load_weights(str(dst)).assert_existing_objects_matched()
    _assert_same_weights(got, want)
    _assert_same_outputs(got, want, _inputs((2, 5, 3)))


def test_bidirectional_that_cannot_be_split_is_refused_up_front():
    from converters.layout import LayerNode, ModelLayout, WeightRef
    from converters.writers.tf_bundle import build_object_graph
    from inspector.errors import UnsupportedFeature

    refs = tuple(WeightRef(f"bidirectional/lstm_cell/{n}", "float32", (2,), n) for n in ("kernel", "bias"))
    layout = ModelLayout(layers=(LayerNode("bidirectional", "Bidirectional", weights=refs),), read=lambda k: None)
    with pytest.raises(UnsupportedFeature, match=r"^layer 'bidirectional' \(Bidirectional\): .*forward_layer and "
                       r"backward_layer; write this model to HDF5 \(h5-weights, h5-model\) or \.keras instead$"):
        build_object_graph(layout)


# -- 4. Keras 3 custom layer names, resharded without --model -------------------------------------


def test_keras3_custom_names_reshard_without_model(tmp_path):
    import keras

    def build():
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, name="stem")(inputs)
        x = keras.layers.Flatten()(x)
        return keras.Model(inputs, keras.layers.Dense(5, name="classifier")(x))

    want = build()
    _randomize(want)
    want.save_weights(str(tmp_path / "src.weights.h5"))
    dst = tmp_path / "o" / "model.weights.json"
    convert(tmp_path / "src.weights.h5", dst, max_shard_size=400)
    assert len(list((tmp_path / "o").glob("*.weights.h5"))) > 1  # really sharded
    got = build()
    got.load_weights(str(dst))
    _assert_same_weights(got, want)
    _assert_same_outputs(got, want, _inputs((2, 8, 8, 3)))


# -- 5. Keras 3 source -> h5-model opens in tf_keras (translated config) and in Keras 3 -----------------


def test_keras3_source_to_h5_model_opens_in_tf_keras_and_keras3(tmp_path):
    import keras
    import tf_keras

    want = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu"), keras.layers.Dense(2)])
    want.compile(optimizer="adam", loss="mse")
    want.fit(_inputs((8, 4)), _inputs((8, 2), seed=2), epochs=1, verbose=0)
    want.save(str(tmp_path / "src.keras"))
    result = convert(tmp_path / "src.keras", tmp_path / "o" / "model.h5", to="h5-model")
    notes = " | ".join(result.notes)
    assert "optimizer state" in notes and "dropped" in notes
    got = keras.models.load_model(str(tmp_path / "o" / "model.h5"), compile=False)
    _assert_same_weights(got, want)
    _assert_same_outputs(got, want, _inputs((3, 4)))
    legacy = tf_keras.models.load_model(str(tmp_path / "o" / "model.h5"))
    np.testing.assert_allclose(legacy(_inputs((3, 4))).numpy(), np.asarray(want(_inputs((3, 4)))), atol=1e-5)
    assert type(legacy.optimizer).__name__ == "Adam"


# -- 6. subclassed tf_keras -> saved-model with --model ------------------------------------------------


def test_subclassed_to_saved_model_uses_the_model_given(user, source_h5, tmp_path):
    import tensorflow as tf
    import tf_keras

    src, want = source_h5
    dst = tmp_path / "o" / "sm"
    convert(src, dst, to="saved-model", model="usermodels:subclassed")
    loaded = tf_keras.models.load_model(str(dst), compile=False)
    for attribute in ("enc", "dec", "head"):  # the revived model keeps the attributes it was tracked by
        for got, expected in zip(getattr(loaded, attribute).get_weights(), getattr(want, attribute).get_weights(),
                                 strict=True):
            assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
    inputs = _inputs((5, 4))
    # Bit-identical weights; the revived model runs traced functions, which may fuse ops (1 ulp apart).
    np.testing.assert_allclose(np.asarray(loaded(inputs, training=False)), np.asarray(want(inputs, training=False)),
                               rtol=0, atol=1e-5)
    served = tf.saved_model.load(str(dst))
    assert served is not None
