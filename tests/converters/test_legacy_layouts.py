"""Legacy and composite layouts (issue 7 items 2, 3), on fixtures/legacy written by the frameworks.

Every conversion is reloaded with the target framework's own loader (tf_keras `load_weights`,
Keras 3 `load_weights`) into the model the fixture was written from, and must predict what the
source model predicted; layouts that cannot be converted faithfully are refused by message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from converters.convert import convert  # noqa: E402
from inspector.errors import CkitError  # noqa: E402
from inspector.registry import read_manifest  # noqa: E402
from tests.conftest import fixture_path  # noqa: E402
from tests.converters import legacy_models as lm  # noqa: E402

LEGACY = fixture_path("legacy")
MODELS = "tests.converters.legacy_models"
DST = {"keras3-weights": "out.weights.h5", "h5-weights": "out.h5", "tf-checkpoint": "ckpt/out"}


def _reference(group: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(LEGACY / group / "reference.npz") as ref:
        return ref["inputs"], ref[key]


def _reload(target: str, path: Path, factory, inputs: np.ndarray):
    """The target framework's own loader, into the architecture the fixture was written from."""
    if target == "keras3-weights":
        import keras

        model = factory(keras)
        model.load_weights(str(path))
    else:
        import tf_keras

        model = factory(tf_keras)
        status = model.load_weights(str(path))
        if target == "tf-checkpoint":
            status.assert_existing_objects_matched()  # every model variable restored from the file
    return model, np.asarray(model(inputs, training=False))


def _convert(src: Path, tmp_path: Path, target: str, model: str | None = None) -> Path:
    dst = tmp_path / DST[target]
    result = convert(src, dst, to=target, model=f"{MODELS}:{model}" if model else None)
    assert result.verified
    return dst


# -- composite layers: a Keras 3 transformer block --------------------------------------------------

TRANSFORMER = LEGACY / "transformer" / "keras3"


@pytest.mark.parametrize("source", ["model.keras", "model.weights.h5", "model.h5"])
@pytest.mark.parametrize("target", ["keras3-weights", "h5-weights", "tf-checkpoint"])
def test_transformer_block_converts_exactly(source, target, tmp_path):
    inputs, expected = _reference("transformer", "keras3")
    dst = _convert(TRANSFORMER / source, tmp_path, target)
    _, got = _reload(target, dst, lm.transformer_model, inputs)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("source", ["model.keras", "model.weights.h5"])
def test_keras3_reader_lists_attention_sublayers_in_model_order(source):
    manifest = read_manifest(TRANSFORMER / source)
    names = [t.name for t in manifest.model_weights() if t.layer == "attention"]
    assert names == [f"attention/{sub}/{var}" for sub in ("query", "key", "value", "attention_output")
                     for var in ("kernel", "bias")]


def test_correct_model_is_not_blamed_for_attention_order(tmp_path):
    inputs, expected = _reference("transformer", "keras3")
    dst = _convert(TRANSFORMER / "model.weights.h5", tmp_path, "h5-weights", model="transformer_model")
    _, got = _reload("h5-weights", dst, lm.transformer_model, inputs)
    np.testing.assert_allclose(got, expected, atol=1e-5)


# -- TimeDistributed + Bidirectional (tf_keras) -------------------------------------------------------

TIME_DISTRIBUTED = LEGACY / "time_distributed" / "tf_keras"


@pytest.mark.parametrize("source,model", [("model.h5", None), ("ckpt/ckpt", None), ("weights.h5", "time_distributed_model")])
@pytest.mark.parametrize("target", ["tf-checkpoint", "h5-weights", "keras3-weights"])
def test_time_distributed_converts_exactly(source, model, target, tmp_path):
    inputs, expected = _reference("time_distributed", "tf_keras")
    dst = _convert(TIME_DISTRIBUTED / source, tmp_path, target, model)
    _, got = _reload(target, dst, lm.time_distributed_model, inputs)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("source", ["model.keras", "model.weights.h5"])
@pytest.mark.parametrize("target", ["tf-checkpoint", "h5-weights", "keras3-weights"])
def test_keras3_time_distributed_converts_exactly(source, target, tmp_path):
    with np.load(LEGACY / "time_distributed" / "keras3" / "reference.npz") as ref:
        inputs, expected = ref["inputs"], ref["keras3"]
    dst = _convert(LEGACY / "time_distributed" / "keras3" / source, tmp_path, target)
    _, got = _reload(target, dst, lm.time_distributed_model, inputs)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_keras3_time_distributed_weights_are_named_as_tf_keras_names_them():
    names = [t.name for t in read_manifest(LEGACY / "time_distributed" / "keras3" / "model.keras").model_weights()]
    assert names[:2] == ["frames/kernel", "frames/bias"]  # Keras 3 says frames/dense/kernel


def test_time_distributed_layer_is_tracked_as_layer_in_checkpoint(tmp_path):
    dst = _convert(TIME_DISTRIBUTED / "model.h5", tmp_path, "tf-checkpoint")
    keys = {t.key.split("/.ATTRIBUTES/")[0] for t in read_manifest(dst).model_weights()}
    assert {"layer_with_weights-0/layer/kernel", "layer_with_weights-2/layer/bias",
            "layer_with_weights-1/forward_layer/cell/kernel"} <= keys


# -- CuDNN layouts -----------------------------------------------------------------------------------

CUDNN = LEGACY / "cudnn"


def test_fixture_holds_cudnn_layout():
    shapes = {t.name: t.shape for t in read_manifest(CUDNN / "cudnn.h5").model_weights()}
    assert shapes["encoder/bias"] == (8 * 4,) and shapes["decoder/bias"] == (6 * 3,)


@pytest.mark.parametrize("target,model", [("keras3-weights", None), ("h5-weights", None),
                                          ("tf-checkpoint", "standard_rnn_model")])
def test_cudnn_weights_load_into_standard_layers(target, model, tmp_path):
    inputs, expected = _reference("cudnn", "tf_keras")
    dst = _convert(CUDNN / "cudnn.h5", tmp_path, target, model)
    _, got = _reload(target, dst, lm.standard_rnn_model, inputs)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_standard_weights_go_back_to_cudnn_layout_for_a_cudnn_model(tmp_path):
    """A CuDNN model cannot run on CPU: compare its restored variables with what tf_keras's own
    HDF5 loader makes of the same standard-layout weights."""
    import tf_keras

    dst = _convert(CUDNN / "standard.h5", tmp_path, "tf-checkpoint", model="cudnn_tf_keras")
    restored = lm.cudnn_tf_keras(tf_keras)
    restored.load_weights(str(dst)).assert_existing_objects_matched()
    oracle = lm.cudnn_tf_keras(tf_keras)
    oracle.load_weights(str(CUDNN / "standard.h5"))
    for got, want in zip(restored.get_weights(), oracle.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-6)
    truth = lm.cudnn_tf_keras(tf_keras)
    truth.load_weights(str(CUDNN / "cudnn.h5"))  # the original CuDNN values, up to the bias split
    for got, want in zip(restored.get_weights()[:2], truth.get_weights()[:2]):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_cudnn_gru_into_gru_without_reset_after_is_refused(tmp_path, monkeypatch):
    module = tmp_path / "gru_before.py"
    module.write_text(
        "def build(k):\n"
        "    inp = k.Input((6, 5))\n"
        "    x = k.layers.LSTM(4, return_sequences=True, name='encoder')(inp)\n"
        "    return k.Model(inp, k.layers.GRU(3, reset_after=False, name='decoder')(x))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CkitError) as err:
        convert(CUDNN / "cudnn.h5", tmp_path / "out" / "ck", to="tf-checkpoint", model="gru_before:build")
    message = str(err.value)
    assert "'decoder'" in message and "reset_after=True" in message and "\n" not in message
    assert not (tmp_path / "out" / "ck.index").exists()
    sys.modules.pop("gru_before", None)


# -- Keras 1 (fixtures/keras1, written by Keras 1.2.2 on Theano) ----------------------------------------

KERAS1 = LEGACY.parent / "keras1"


@pytest.mark.parametrize("source,target,model", [
    ("weights.h5", "h5-weights", None), ("weights.h5", "tf-checkpoint", None), ("model.h5", "tf-checkpoint", None),
    ("model.h5", "keras3-weights", None), ("weights.h5", "keras3-weights", "keras1_rnn_model"),
])
def test_keras1_rnn_converts_exactly(source, target, model, tmp_path):
    """Every variable as tf_keras's own Keras 1 conversion sets it; tf_keras targets also predict what
    Keras 1 predicted (Keras 3's hard_sigmoid is another function, so there only the values are compared)."""
    import tf_keras

    with np.load(KERAS1 / "rnn" / "reference.npz") as ref:
        inputs, expected = ref["inputs"], ref["keras1"]
    oracle = lm.keras1_rnn_model(tf_keras)
    oracle.load_weights(str(KERAS1 / "rnn" / "weights.h5"))
    dst = _convert(KERAS1 / "rnn" / source, tmp_path, target, model)
    restored, got = _reload(target, dst, lm.keras1_rnn_model, inputs)
    for have, want in zip(restored.get_weights(), oracle.get_weights(), strict=True):
        np.testing.assert_array_equal(np.asarray(have), want)
    if target != "keras3-weights":
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_keras1_names_say_what_the_tensors_are():
    names = {t.key.rsplit("/", 1)[-1]: t.name for t in read_manifest(KERAS1 / "rnn" / "weights.h5").model_weights()}
    assert names["dense_W"] == "dense/kernel" and names["embedding_W"] == "embedding/embeddings"
    assert names["bn_running_std"] == "bn/moving_variance" and names["lstm_U_f"] == "lstm/recurrent_kernel_f"


@pytest.mark.parametrize("target", ["h5-weights", "tf-checkpoint", "keras3-weights"])
def test_keras1_convolution_is_refused(target, tmp_path):
    dst = tmp_path / DST[target]
    with pytest.raises(CkitError) as err:
        convert(KERAS1 / "cnn" / "weights.h5", dst, to=target)
    message = str(err.value)
    assert message.startswith("layer 'conv'") and "Theano kernels are flipped" in message and "\n" not in message
    assert not any(p.is_file() for p in tmp_path.rglob("*"))  # nothing written


# -- Keras <= 2.2 RNN names without the cell, on the third-party corpus --------------------------------

def test_rnn_weights_named_without_cell_read_as_tf_keras_names_them():
    thirdparty = LEGACY.parent / "thirdparty"
    names = [t.name for t in read_manifest(thirdparty / "chars2vec" / "weights.h5").model_weights()]
    assert names[:3] == ["lstm_1/lstm_cell/kernel", "lstm_1/lstm_cell/recurrent_kernel", "lstm_1/lstm_cell/bias"]
    # CuDNN layers hold their weights themselves: no cell level is invented for them.
    cudnn = [t.name for t in read_manifest(thirdparty / "textgenrnn" / "textgenrnn_weights.hdf5").model_weights()]
    assert "rnn_1/kernel" in cudnn
    bidirectional = [t.name for t in read_manifest(thirdparty / "rnnmorph" / "eval_model.h5").model_weights()]
    assert "bidirectional_1/forward_LSTM_0/lstm_cell/kernel" in bidirectional


def test_keras_2_0_optimizer_state_is_dropped_with_a_note(tmp_path):
    """fer's Keras 2.0.5 Adam state (105 tensors named Variable_N) cannot be placed: tf_keras's own
    load_model fails on it too; ckit says so and writes a model that loads compiled and whole."""
    import h5py
    import tf_keras

    src = LEGACY.parent / "thirdparty" / "fer" / "emotion_model.hdf5"
    result = convert(src, tmp_path / "m.h5", to="h5-model")
    note = next(n for n in result.notes if n.startswith("optimizer state dropped"))
    assert "105 tensors" in note and "Keras 2.0.5" in note
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert "optimizer_weights" not in f
    model = tf_keras.models.load_model(str(tmp_path / "m.h5"))
    assert model.optimizer is not None  # the training config travelled
