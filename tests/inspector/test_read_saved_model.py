"""The SavedModel reader against TensorFlow's own protos and checkpoint reader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from inspector.errors import CorruptArtifact, UnknownFormat
from inspector.formats.saved_model import SAVED_MODEL
from inspector.registry import detect
from tests.conftest import fixture_path

SAVED_MODELS = [
    ("seed", "tf_keras", "saved_model"),
    ("cnn", "tf_keras", "saved_model"),
    ("lstm", "tf_keras", "saved_model"),
    ("seed", "keras3", "export"),
]


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


@pytest.mark.parametrize("parts", SAVED_MODELS, ids="/".join)
def test_variables_and_signatures_match_tensorflow(parts, tf):
    from tensorflow.core.protobuf import saved_model_pb2

    directory = fixture_path(*parts)
    assert detect(directory).name == "saved-model"
    oracle = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
    shapes = oracle.get_variable_to_shape_map()
    with SAVED_MODEL.open(directory) as reader:
        manifest = reader.manifest
        assert sorted(t.key for t in manifest) == sorted(shapes)
        for tensor in manifest:
            assert tensor.shape == tuple(shapes[tensor.key])
            ours = reader.read_tensor(tensor.key)
            if tensor.dtype != "string":
                assert ours.tobytes() == np.asarray(oracle.get_tensor(tensor.key)).tobytes()
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((directory / "saved_model.pb").read_bytes())
    meta_graph = proto.meta_graphs[0]
    assert manifest.producer["tensorflow_version"] == meta_graph.meta_info_def.tensorflow_version
    signatures = manifest.metadata["signatures"]
    expected = {k for k in meta_graph.signature_def if not k.startswith("__")}
    assert set(signatures) == expected
    for name, sig in signatures.items():
        for tensor_name, info in meta_graph.signature_def[name].inputs.items():
            ours = sig["inputs"][tensor_name]
            assert ours["dtype"] == tf.dtypes.as_dtype(info.dtype).name
            assert ours["shape"] == [d.size if d.size >= 0 else None for d in info.tensor_shape.dim]
        assert set(sig["outputs"]) == set(meta_graph.signature_def[name].outputs)


@pytest.mark.parametrize("model, class_name", [("seed", "Sequential"), ("cnn", "Functional"), ("lstm", "Sequential")])
def test_tf_keras_metadata(model, class_name):
    import tf_keras

    manifest = SAVED_MODEL.open(fixture_path(model, "tf_keras", "saved_model")).manifest
    assert manifest.producer["framework"] == "tf_keras"
    assert manifest.producer["keras_version"] == tf_keras.__version__
    assert manifest.metadata["keras_config"]["class_name"] == class_name
    config_layers = [layer["config"]["name"] for layer in manifest.metadata["keras_config"]["config"]["layers"]]
    # Layer names come from keras_metadata, so they match the model config (incl. the nested "head").
    assert set(manifest.layers) <= set(config_layers)
    weights = manifest.by_role("weight")
    assert weights and all(t.layer in manifest.layers and t.index is not None for t in weights)
    assert all(t.role == "other" for t in manifest if t.key.startswith("keras_api/metrics/"))
    if model == "cnn":
        assert "head" in manifest.layers


def test_keras3_export_roles():
    manifest = SAVED_MODEL.open(fixture_path("seed", "keras3", "export")).manifest
    assert manifest.producer["framework"] == "keras3 (model.export)"
    assert "keras_config" not in manifest.metadata
    duplicates = [t for t in manifest if t.key.startswith("_all_variables/")]
    assert duplicates and all(t.role == "other" for t in duplicates)
    assert any("duplicate" in note for note in manifest.notes)
    seed_state = [t for t in manifest if "seed_generator" in t.name]
    assert seed_state and all(t.role == "other" for t in seed_state)
    assert manifest.totals["parameters"] == 784 * 128 + 128 + 128 * 10 + 10
    assert list(manifest.layers) == ["dense", "dense_1"]


def test_saved_model_without_variables(tmp_path, tf):
    module = tf.Module()
    module.f = tf.function(lambda x: x * 2, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures=module.f)
    shutil.rmtree(tmp_path / "sm" / "variables", ignore_errors=True)
    with SAVED_MODEL.open(tmp_path / "sm") as reader:
        assert reader.manifest.shards == ()
        assert "serving_default" in reader.manifest.metadata["signatures"]
        assert any("no variables" in note for note in reader.manifest.notes)
        with pytest.raises(KeyError):
            reader.read_tensor("anything")


def test_accepts_saved_model_pb_path():
    path = fixture_path("seed", "tf_keras", "saved_model") / "saved_model.pb"
    assert SAVED_MODEL.sniff(path)
    assert SAVED_MODEL.open(path).manifest.path == str(path.parent)


def test_damaged_saved_model_pb(tmp_path):
    shutil.copytree(fixture_path("seed", "tf_keras", "saved_model"), tmp_path / "sm")
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(CorruptArtifact, match=r"saved_model\.pb: does not parse as a SavedModel protobuf; the file is damaged"):
        SAVED_MODEL.open(tmp_path / "sm")


def test_damaged_keras_metadata(tmp_path):
    shutil.copytree(fixture_path("seed", "tf_keras", "saved_model"), tmp_path / "sm")
    (tmp_path / "sm" / "keras_metadata.pb").write_bytes(b"\xff\xff\xff garbage")
    with pytest.raises(CorruptArtifact, match=r"keras_metadata\.pb: does not parse as tf_keras SavedMetadata"):
        SAVED_MODEL.open(tmp_path / "sm")


def test_not_a_saved_model(tmp_path):
    assert not SAVED_MODEL.sniff(tmp_path)
    with pytest.raises(UnknownFormat, match=r"no saved_model\.pb found; expected a SavedModel directory"):
        SAVED_MODEL.open(tmp_path)
