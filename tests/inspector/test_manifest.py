"""The manifest value: immutability, deterministic order, JSON round trip, totals."""

from __future__ import annotations

import dataclasses
import json

import pytest

import inspector
from inspector.manifest import SCHEMA, Manifest, ShardInfo, TensorInfo


def _manifest() -> Manifest:
    return Manifest(
        format="tf-checkpoint",
        path="x",
        tensors=(
            TensorInfo("b", "dense/bias", "float32", (10,), 40, "weight", "dense", 1),
            TensorInfo("a", "dense/kernel", "float32", (4, 10), 160, "weight", "dense", 0),
            TensorInfo("c", "iter", "int64", (), 8, "optimizer"),
        ),
        producer={"framework": "tf_keras"},
        layers=("dense",),
        shards=(ShardInfo("x.data-00000-of-00001", 208),),
    )


def test_tensors_are_sorted_by_key_and_frozen():
    manifest = _manifest()
    assert [t.key for t in manifest] == ["a", "b", "c"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.format = "other"  # type: ignore[misc]


def test_totals_count_parameters_of_weights_only():
    totals = _manifest().totals
    assert totals == {"tensors": 3, "parameters": 50, "bytes": 208, "shards": 1,
                      "by_role": {"optimizer": 1, "weight": 2}}


def test_json_round_trip_keeps_everything():
    manifest = _manifest()
    document = json.loads(json.dumps(manifest.to_json()))
    assert document["schema"] == SCHEMA
    assert Manifest.from_json(document) == manifest


def test_layer_weights_follow_index_not_key():
    assert [[t.name for t in ts] for _, ts in _manifest().layer_weights()] == [["dense/kernel", "dense/bias"]]


def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="role 'bogus' is not one of"):
        TensorInfo("k", "n", "float32", (), 4, "bogus")


def test_duplicate_keys_are_refused():
    t = TensorInfo("k", "n", "float32", (), 4)
    with pytest.raises(ValueError, match="duplicate tensor keys"):
        Manifest(format="h5-weights", path="p", tensors=(t, t))


def test_public_api_is_pinned():
    assert sorted(inspector.__all__) == sorted([
        "SCHEMA", "FORMAT_IDS", "ChecksumMismatch", "CkitError", "CorruptArtifact", "Manifest", "MappingError",
        "MissingData", "MissingDependency", "OutputExists", "ShardInfo", "TensorInfo", "UnknownFormat",
        "UnsafeArtifact", "UnsupportedFeature", "detect", "get_format", "open_artifact", "read_manifest",
        "Artifact", "open", "diff",
    ])
    assert inspector.FORMAT_IDS[:6] == (
        "tf-checkpoint", "saved-model", "keras3-model", "keras3-weights", "h5-model", "h5-weights",
    )


def test_errors_inherit_builtins():
    assert issubclass(inspector.CorruptArtifact, ValueError)
    assert issubclass(inspector.ChecksumMismatch, inspector.CorruptArtifact)
    assert issubclass(inspector.MissingData, FileNotFoundError)
    assert issubclass(inspector.OutputExists, FileExistsError)


def test_model_weights_follow_layers_then_fall_back_to_role():
    assert [t.name for t in _manifest().model_weights()] == ["dense/kernel", "dense/bias"]
    bare = Manifest(format="safetensors", path="p", tensors=(
        TensorInfo("b", "b", "float32", (1,), 4), TensorInfo("a", "a", "float32", (1,), 4),
        TensorInfo("o", "o", "int64", (), 8, "optimizer"),
    ))
    assert [t.key for t in bare.model_weights()] == ["a", "b"]
