"""Model and training configs of every Keras era, wherever the artifact keeps them.

Old-era files are made from the real tf_keras fixtures by rewriting only their config attributes into
the form older Keras wrote (weights untouched):

- Keras <= 2.1 (keras/models.py `Sequential.get_config` returned `copy.deepcopy(config)` of the layer
  list): a Sequential config is the bare list of layer configs, no InputLayer entry, the first layer
  carrying `batch_input_shape`; a nested Sequential inside a `Model` is the same list.
- Keras 1.2 / 2.0 functional models: class name `Model`, inbound nodes `[name, node, tensor]`
  without the call kwargs.
- Keras <= 2.2 training configs: `optimizer_config` with `lr` and `decay`, string losses and metrics.

Each conversion is then loaded by the framework's own loader and must predict what the source did.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from converters.convert import convert
from converters.model_config import model_config_of, normalize_keras2_config
from inspector import read_manifest
from inspector.errors import UnsafeArtifact, UnsupportedFeature

from tests.conftest import ROOT, fixture_path

pytestmark = pytest.mark.tf

KERAS21_TRAINING_CONFIG = {
    "optimizer_config": {"class_name": "RMSprop", "config": {"lr": 0.001, "rho": 0.9, "epsilon": 1e-07, "decay": 0.0}},
    "loss": "sparse_categorical_crossentropy",
    "metrics": ["accuracy"],
    "sample_weight_mode": None,
    "loss_weights": None,
}


def _as_list_sequential(entry: dict) -> None:
    """Rewrite one Sequential config ({"class_name": "Sequential", "config": {...}}) in place as Keras 2.1 did."""
    layers = entry["config"]["layers"]
    if layers and layers[0]["class_name"] == "InputLayer":
        first_input = layers.pop(0)["config"]
        layers[0]["config"]["batch_input_shape"] = first_input["batch_input_shape"]
    entry["config"] = layers


def _old_config(config: dict) -> dict:
    """A tf_keras 2.21 model config in the Keras <= 2.1 form (see the module docstring)."""
    config = json.loads(json.dumps(config))
    if config["class_name"] == "Sequential":
        _as_list_sequential(config)
        return config
    config["class_name"] = "Model"
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Sequential":
            _as_list_sequential(layer)
        for node in layer.get("inbound_nodes", []):
            for i, ref in enumerate(node):
                if len(ref) == 4 and not ref[3]:
                    node[i] = ref[:3]
    return config


def old_h5(tmp_path: Path, model: str, keras_version: str = "2.1.6") -> Path:
    """fixtures/MODEL/tf_keras/model.h5 with its configs in the form Keras `keras_version` wrote."""
    dst = tmp_path / f"{model}_keras{keras_version}.h5"
    shutil.copy(fixture_path(model, "tf_keras", "model.h5"), dst)
    with h5py.File(dst, "r+") as f:
        f.attrs["model_config"] = json.dumps(_old_config(json.loads(f.attrs["model_config"]))).encode()
        f.attrs["training_config"] = json.dumps(KERAS21_TRAINING_CONFIG).encode()
        for group in (f, f["model_weights"]):
            group.attrs["keras_version"] = keras_version.encode()
    return dst


def _reference(model: str) -> tuple[np.ndarray, np.ndarray]:
    ref = np.load(fixture_path(model, "reference.npz"))
    return ref["inputs"], ref["logits_tf_keras"]


def _predict(model, inputs) -> np.ndarray:
    return np.asarray(model(inputs, training=False))


def test_old_sequential_list_config_is_the_form_tf_keras_itself_accepts(tmp_path):
    """The normalised config rebuilds in tf_keras exactly like the raw Keras 2.1 list config does."""
    import tf_keras

    path = old_h5(tmp_path, "cnn")
    with h5py.File(path, "r") as f:
        raw = json.loads(f.attrs["model_config"])
    assert isinstance(raw["config"]["layers"][-1]["config"], list)  # the nested head is a bare list
    normal = normalize_keras2_config(raw)
    head = normal["config"]["layers"][-1]
    assert head["config"]["name"] == "head" and isinstance(head["config"]["layers"], list)
    own = tf_keras.models.model_from_json(json.dumps(raw))
    ours = tf_keras.models.model_from_json(json.dumps(normal))
    assert [(type(l).__name__, l.count_params()) for l in ours.layers] == [
        (type(l).__name__, l.count_params()) for l in own.layers
    ]
    # tf_keras names a list-config Sequential afresh ("sequential"); the entry's own name is the model's.
    assert [l.name for l in ours.layers][-1] == "head"
    manifest = read_manifest(path)
    assert model_config_of(manifest)["config"] == normal


@pytest.mark.parametrize("model", ["seed", "lstm", "cnn"])
def test_old_config_to_h5_model_loads_in_tf_keras_with_its_training_setup(tmp_path, model):
    import tf_keras

    out = tmp_path / "out.h5"
    result = convert(old_h5(tmp_path, model), out, "h5-model")
    assert not any("no training config" in note for note in result.notes)
    inputs, logits = _reference(model)
    loaded = tf_keras.models.load_model(out)  # compiles from the Keras 2.1 training config
    np.testing.assert_allclose(_predict(loaded, inputs), logits, atol=1e-5)
    assert loaded.optimizer is not None and type(loaded.optimizer).__name__ == "RMSprop"
    assert loaded.loss.__name__ == "sparse_categorical_crossentropy"


@pytest.mark.parametrize("model", ["seed", "cnn"])
def test_old_config_to_h5_weights_and_saved_model(tmp_path, model):
    import tf_keras

    from converters import zoo

    inputs, logits = _reference(model)
    src = old_h5(tmp_path, model)
    convert(src, tmp_path / "w.h5", "h5-weights")
    fresh = zoo.MODELS[model](tf_keras)
    fresh.load_weights(tmp_path / "w.h5")
    np.testing.assert_allclose(_predict(fresh, inputs), logits, atol=1e-5)
    convert(src, tmp_path / "sm", "saved-model")
    loaded = tf_keras.models.load_model(tmp_path / "sm", compile=False)
    np.testing.assert_allclose(_predict(loaded, inputs), logits, atol=1e-5)


def test_old_config_to_keras3_model(tmp_path):
    import keras

    inputs, logits = _reference("cnn")
    result = convert(old_h5(tmp_path, "cnn"), tmp_path / "m.keras", "keras3-model")
    assert not any("training config" in note or "uncompiled" in note for note in result.notes), result.notes
    loaded = load_compiled_keras3(tmp_path / "m.keras")
    np.testing.assert_allclose(_predict(loaded, inputs), logits, atol=1e-5)
    # Keras 2.1's RMSprop(lr=0.001, decay=0.0) compiles as Keras 3's RMSprop(learning_rate=0.001)
    assert type(loaded.optimizer).__name__ == "RMSprop"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(1e-3)
    assert loaded.loss == "sparse_categorical_crossentropy"


def load_compiled_keras3(path):
    """keras.models.load_model, compiling from the archive's compile config.  The optimizer starts fresh,
    which Keras 3 says as it does for its own untrained compiled models."""
    import keras

    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):
        return keras.models.load_model(path)


def test_tf_keras_training_config_becomes_a_keras3_compile_config(tmp_path):
    inputs, logits = _reference("seed")
    result = convert(fixture_path("seed", "tf_keras", "model.h5"), tmp_path / "m.keras", "keras3-model")
    assert not any("uncompiled" in note for note in result.notes), result.notes
    loaded = load_compiled_keras3(tmp_path / "m.keras")
    np.testing.assert_allclose(_predict(loaded, inputs), logits, atol=1e-5)
    assert type(loaded.optimizer).__name__ == "RMSprop"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(1e-3)
    assert loaded.loss.get_config()["from_logits"] is True


def test_a_decaying_learning_rate_is_not_carried_into_keras3(tmp_path):
    import keras

    src = old_h5(tmp_path, "seed")
    with h5py.File(src, "r+") as f:
        config = json.loads(f.attrs["training_config"])
        config["optimizer_config"]["config"]["decay"] = 1e-4
        f.attrs["training_config"] = json.dumps(config).encode()
    result = convert(src, tmp_path / "m.keras", "keras3-model")
    assert any(
        note.startswith("training config not carried (optimizer RMSprop decays its learning rate (decay=0.0001)")
        for note in result.notes
    ), result.notes
    assert getattr(keras.models.load_model(tmp_path / "m.keras"), "optimizer", None) is None


def test_old_config_crash_is_gone_on_the_command_line(tmp_path):
    """The reported failure: `internal error: AttributeError: 'list' object has no attribute 'get'`."""
    src = old_h5(tmp_path, "seed")
    run = subprocess.run(
        [sys.executable, "-m", "converters.cli", "convert", str(src), str(tmp_path / "w.h5"), "--to", "h5-weights"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert "internal error" not in run.stderr and "wrote h5-weights" in run.stdout


def test_keras1_config_refused_for_full_models_by_name(tmp_path):
    src = old_h5(tmp_path, "seed", keras_version="1.2.2")
    manifest = read_manifest(src)
    assert model_config_of(manifest)["schema"] == "keras1"
    for target, name in (("h5-model", "m.h5"), ("keras3-model", "m.keras")):
        with pytest.raises(UnsupportedFeature, match=r"written by Keras 1\.2\.2, whose layer arguments .* no longer accept"):
            convert(src, tmp_path / name, target)
        assert not (tmp_path / name).exists()
    with pytest.raises(UnsupportedFeature) as refused:
        convert(src, tmp_path / "sm", "saved-model")
    line = str(refused.value)
    assert "\n" not in line and "Keras 1.2.2" in line and "--to h5-weights" in line


def test_keras1_config_still_converts_weights(tmp_path):
    import tf_keras

    from converters import zoo

    inputs, logits = _reference("seed")
    convert(old_h5(tmp_path, "seed", keras_version="1.2.2"), tmp_path / "w.h5", "h5-weights")
    fresh = zoo.seed_model(tf_keras)
    fresh.load_weights(tmp_path / "w.h5")
    np.testing.assert_allclose(_predict(fresh, inputs), logits, atol=1e-5)


# --- SavedModels: keras_metadata.pb (TF >= 2.5) and the object graph (TF 2.0-2.4) -------------------

TF24_RMSPROP = {
    "class_name": "RMSprop",
    "config": {"name": "RMSprop", "learning_rate": 0.001, "decay": 0.0, "rho": 0.9, "momentum": 0.0,
               "epsilon": 1e-07, "centered": False},
}


def tf24_saved_model(tmp_path: Path, model: str = "cnn") -> Path:
    """fixtures/MODEL/tf_keras/saved_model laid out as TF 2.0-2.4 wrote it.

    TF 2.4's `saved_model/save.py` stored each Keras object's metadata JSON in its object-graph node
    (`SavedUserObject.metadata`) and wrote no keras_metadata.pb (nor fingerprint.pb); the model's
    record had `save_spec` but not yet `full_save_spec`, and its optimizer was an OptimizerV2 whose
    config has no `is_legacy_optimizer`.  Weights and functions are untouched.
    """
    from inspector.protos import SavedMetadata, SavedModel

    dst = tmp_path / f"{model}_tf24"
    shutil.copytree(fixture_path(model, "tf_keras", "saved_model"), dst)
    keras_meta = SavedMetadata()
    keras_meta.ParseFromString((dst / "keras_metadata.pb").read_bytes())
    saved = SavedModel()
    saved.ParseFromString((dst / "saved_model.pb").read_bytes())
    nodes = saved.meta_graphs[0].object_graph_def.nodes
    for entry in keras_meta.nodes:
        record = json.loads(entry.metadata)
        if entry.node_path == "root":
            record.pop("full_save_spec", None)
            record["training_config"]["optimizer_config"] = TF24_RMSPROP
        user = nodes[entry.node_id].user_object
        assert user.identifier == entry.identifier
        user.metadata = json.dumps(record)
    (dst / "saved_model.pb").write_bytes(saved.SerializeToString())
    (dst / "keras_metadata.pb").unlink()
    (dst / "fingerprint.pb").unlink()
    return dst


def test_tf24_saved_model_config_is_read_from_the_object_graph(tmp_path):
    import tf_keras

    src = tf24_saved_model(tmp_path)
    inputs, logits = _reference("cnn")
    own = tf_keras.models.load_model(src)  # tf_keras's own legacy path (_read_legacy_metadata)
    np.testing.assert_allclose(_predict(own, inputs), logits, atol=1e-5)
    manifest = read_manifest(src)
    assert manifest.metadata["keras_metadata_in"] == "object graph (TF 2.0-2.4)"
    config = manifest.metadata["keras_config"]
    assert (config["class_name"], config["config"]["name"]) == ("Functional", "cnn")
    assert [layer["name"] for layer in config["config"]["layers"]] == [layer.name for layer in own.layers]
    assert manifest.metadata["training_config"]["optimizer_config"] == TF24_RMSPROP
    assert model_config_of(manifest)["schema"] == "keras2"


def test_tf24_saved_model_to_keras3_and_h5_model(tmp_path):
    """Keras 3 targets were refused ("carries no model config") before the object graph was read."""
    import keras
    import tf_keras

    src = tf24_saved_model(tmp_path)
    inputs, logits = _reference("cnn")
    convert(src, tmp_path / "m.keras", "keras3-model")
    np.testing.assert_allclose(_predict(load_compiled_keras3(tmp_path / "m.keras"), inputs), logits, atol=1e-5)
    result = convert(src, tmp_path / "m.h5", "h5-model")
    assert not any("training config" in note for note in result.notes), result.notes
    loaded = tf_keras.models.load_model(tmp_path / "m.h5")
    np.testing.assert_allclose(_predict(loaded, inputs), logits, atol=1e-5)
    assert type(loaded.optimizer).__name__ == "RMSprop"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(1e-3)


@pytest.mark.parametrize("model", ["seed", "lstm"])
def test_saved_model_training_config_reaches_h5_model(tmp_path, model):
    """keras_metadata.pb's training_config was dropped: "no training config in the source"."""
    import tf_keras

    result = convert(fixture_path(model, "tf_keras", "saved_model"), tmp_path / "m.h5", "h5-model")
    assert not any("training config" in note for note in result.notes), result.notes
    with h5py.File(tmp_path / "m.h5", "r") as f:
        written = json.loads(f.attrs["training_config"])
    with h5py.File(fixture_path(model, "tf_keras", "model.h5"), "r") as f:
        own = json.loads(f.attrs["training_config"])  # what tf_keras's own save("m.h5") records
    assert written["loss"] == own["loss"] and written["optimizer_config"] == own["optimizer_config"]
    loaded = tf_keras.models.load_model(tmp_path / "m.h5")
    inputs, logits = _reference(model)
    np.testing.assert_allclose(_predict(loaded, inputs), logits, atol=1e-5)
    assert type(loaded.optimizer).__name__ == "RMSprop" and loaded.loss.get_config()["from_logits"]


def test_real_tf24_saved_model_config_found_and_custom_layers_refused_by_name(tmp_path):
    """basic-pitch 0.4.0's nmp model, written by TensorFlow 2.4.1: its config is in the object graph."""
    src = ROOT / "fixtures" / "thirdparty" / "basic_pitch" / "nmp"
    manifest = read_manifest(src)
    assert manifest.producer["tensorflow_version"] == "2.4.1"
    assert manifest.metadata["keras_metadata_in"] == "object graph (TF 2.0-2.4)"
    config = model_config_of(manifest)
    assert config["schema"] == "keras2" and config["config"]["class_name"] == "Functional"
    assert manifest.metadata["training_config"]["optimizer_config"]["class_name"] == "Adam"
    with pytest.raises(UnsafeArtifact) as refused:  # before: "carries no model config"
        convert(src, tmp_path / "m.keras")
    line = str(refused.value)
    assert "\n" not in line and "FlattenAudioCh" in line and "not a built-in Keras class" in line
    assert not (tmp_path / "m.keras").exists()


def test_lambda_loss_in_training_config_is_not_carried(tmp_path):
    """tf.keras records a lambda loss as "<lambda>", which load_model cannot compile: leave it out, say so."""
    src = tmp_path / "lambda_loss.h5"
    shutil.copy(fixture_path("seed", "tf_keras", "model.h5"), src)
    with h5py.File(src, "r+") as f:
        config = json.loads(f.attrs["training_config"])
        config["loss"] = "<lambda>"
        f.attrs["training_config"] = json.dumps(config).encode()
    result = convert(src, tmp_path / "m.h5", "h5-model")
    assert any("loss is a Python lambda" in note for note in result.notes), result.notes
    import tf_keras

    loaded = tf_keras.models.load_model(tmp_path / "m.h5")  # would raise "Unknown loss function: '<lambda>'"
    assert loaded.optimizer is None


def test_chunked_model_config_attribute_is_joined(tmp_path):
    """A config split over `model_config0`, `model_config1` (the chunking tf_keras applies to long
    attribute lists, save_attributes_to_hdf5_group) reads as the one JSON text it is."""
    src = tmp_path / "chunked.h5"
    shutil.copy(fixture_path("seed", "tf_keras", "model.h5"), src)
    with h5py.File(src, "r+") as f:
        text = f.attrs["model_config"]
        text = text.decode() if isinstance(text, bytes) else text
        del f.attrs["model_config"]
        half = len(text) // 2
        f.attrs["model_config0"] = np.array([text[:half].encode()])
        f.attrs["model_config1"] = np.array([text[half:].encode()])
    assert model_config_of(read_manifest(src))["config"] == json.loads(text)
