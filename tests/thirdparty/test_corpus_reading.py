"""ckit reads every third-party artifact exactly as the frameworks' own readers do.

The oracles: h5py for HDF5 files (every dataset path, dtype, shape and byte), TensorFlow's
`tf.train.load_checkpoint` for the SavedModel's variables (one subprocess for all of them), and
the committed bytes themselves, whose sha256 PROVENANCE.json records from the registry packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from inspector.cli import main as ckinspect
from inspector.registry import open_artifact
from tests.thirdparty.corpus import SUPPORT_FILES, SUPPORT_NAMES, THIRDPARTY, artifacts, load_provenance

ARTIFACTS = artifacts()
H5 = [a for a in ARTIFACTS if a.format != "saved-model"]
SAVED_MODELS = [a for a in ARTIFACTS if a.format == "saved-model"]


def test_every_recorded_file_is_committed_with_its_recorded_bytes():
    for art in ARTIFACTS:
        for entry in art.record["files"]:
            path = THIRDPARTY / entry["path"]
            assert path.is_file(), f"{entry['path']} is recorded in PROVENANCE.json but missing"
            data = path.read_bytes()
            assert len(data) == entry["bytes"], entry["path"]
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{entry['path']} changed"
        for licence in art.record["licence_files"]:
            assert (THIRDPARTY / licence).is_file(), licence
        assert art.record["licence"] in ("MIT", "Apache-2.0", "BSD-3-Clause", "CC-BY-4.0"), art.name


def test_nothing_unrecorded_sits_in_the_corpus():
    recorded = {e["path"] for a in ARTIFACTS for e in a.record["files"]}
    for path in THIRDPARTY.rglob("*"):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(THIRDPARTY).as_posix()
        assert rel in recorded or rel in SUPPORT_FILES or path.name in SUPPORT_NAMES, f"{rel} has no provenance record"


def test_corpus_spans_eras_and_stays_small():
    versions = {a.record["written_by"].get("keras_version") or a.record["written_by"]["tensorflow_version"]
                for a in ARTIFACTS}
    assert len(ARTIFACTS) >= 6 and len(versions) >= 5, versions
    total = sum(e["bytes"] for a in ARTIFACTS for e in a.record["files"])
    assert total < 20 * 2**20, total


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.parametrize("art", H5, ids=lambda a: a.name)
def test_hdf5_manifest_agrees_with_h5py_key_by_key(art):
    import h5py

    with h5py.File(art.path, "r") as f:
        attrs = dict(f.attrs)
        # The recorded writer is what the file itself says.
        assert _text(attrs["keras_version"]) == art.record["written_by"]["keras_version"]
        assert _text(attrs["backend"]) == art.record["written_by"]["backend"]
        datasets: dict[str, np.ndarray] = {}
        f.visititems(lambda name, obj: datasets.__setitem__("/" + name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    with open_artifact(art.path) as reader:
        manifest = reader.manifest
        assert manifest.format == art.format
        assert manifest.producer.get("keras_version") == art.record["written_by"]["keras_version"]
        keys = {t.key: t for t in manifest.tensors}
        assert set(keys) == set(datasets), sorted(set(keys) ^ set(datasets))
        for key, expected in datasets.items():
            info = keys[key]
            assert info.dtype == expected.dtype.name, key
            assert info.shape == expected.shape, key
            assert info.nbytes == expected.nbytes, key
            got = reader.read_tensor(key)
            assert got.dtype == expected.dtype and got.shape == expected.shape, key
            assert got.tobytes() == expected.tobytes(), key


_TF_ORACLE = r"""
import json, sys
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
out = {}
for sm_dir, values in zip(sys.argv[1::2], sys.argv[2::2]):
    pb = saved_model_pb2.SavedModel()
    pb.ParseFromString(open(sm_dir + "/saved_model.pb", "rb").read())
    reader = tf.train.load_checkpoint(sm_dir + "/variables/variables")
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    arrays = {}
    for i, key in enumerate(sorted(dtypes)):
        if dtypes[key] != tf.string:
            arrays[str(i)] = reader.get_tensor(key)
    np.savez(values, **arrays)
    out[sm_dir] = {"tensorflow_version": pb.meta_graphs[0].meta_info_def.tensorflow_version,
                   "keys": sorted(dtypes),
                   "dtypes": {k: dtypes[k].name for k in dtypes},
                   "shapes": {k: list(shapes[k]) for k in shapes}}
print(json.dumps(out))
"""


@pytest.mark.tf
def test_saved_model_variables_agree_with_tensorflow(tmp_path):
    args = []
    for i, art in enumerate(SAVED_MODELS):
        args += [str(art.path), str(tmp_path / f"v{i}.npz")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, "-c", _TF_ORACLE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    oracle = json.loads(done.stdout.strip().splitlines()[-1])
    for i, art in enumerate(SAVED_MODELS):
        truth = oracle[str(art.path)]
        assert truth["tensorflow_version"] == art.record["written_by"]["tensorflow_version"]
        values = np.load(tmp_path / f"v{i}.npz")
        with open_artifact(art.path) as reader:
            manifest = reader.manifest
            assert manifest.producer.get("tensorflow_version") == truth["tensorflow_version"]
            keys = {t.key: t for t in manifest.tensors}
            assert set(keys) == set(truth["keys"]), sorted(set(keys) ^ set(truth["keys"]))
            for j, key in enumerate(truth["keys"]):
                info = keys[key]
                assert list(info.shape) == truth["shapes"][key], key
                if truth["dtypes"][key] == "string":
                    assert info.dtype == "string" and info.role == "metadata", key
                    continue
                assert info.dtype == truth["dtypes"][key], key
                got = reader.read_tensor(key)
                expected = values[str(j)]
                assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), key


@pytest.mark.parametrize("art", ARTIFACTS, ids=lambda a: a.name)
def test_ckinspect_dump_and_verify_exit_0(art, capsys):
    assert ckinspect(["verify", str(art.path)]) == 0
    verified = capsys.readouterr()
    assert verified.out.startswith("OK:"), verified.out
    assert "Traceback" not in verified.err
    assert ckinspect(["dump", "--json", str(art.path)]) == 0
    dumped = json.loads(capsys.readouterr().out)
    assert dumped["format"] == art.format
    with open_artifact(art.path) as reader:
        assert [t["key"] for t in dumped["tensors"]] == [t.key for t in reader.manifest.tensors]
