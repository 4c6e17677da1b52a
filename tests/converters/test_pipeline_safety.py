"""The conversion pipeline never loses data: what it refuses, what --force may replace, what it cleans up.

Each test checks the one-line message and the state of the file system afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from converters.cli import main
from converters.convert import convert
from inspector.verify import array_digest
from converters.writers.base import WriteResult
from converters.writers.tf_bundle import parse_checkpoint_state
from inspector import read_manifest
from inspector.errors import CkitError, CorruptArtifact, MissingData, OutputExists
from inspector.registry import open_artifact
from tests.conftest import FIXTURES, only_line

SEED_H5 = FIXTURES / "seed/tf_keras/weights.h5"
SEED_MODEL_H5 = FIXTURES / "seed/tf_keras/model.h5"
SEED_CKPT = FIXTURES / "seed/tf_keras/ckpt/weights"
SEED_SAVED_MODEL = FIXTURES / "seed/tf_keras/saved_model"


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` with its bytes (None for directories)."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return out


def _fails(args: list[str], capsys) -> str:
    assert main(args) == 1
    return only_line(capsys.readouterr().err)


def _values(path: Path, fmt: str | None = None) -> list[np.ndarray]:
    with open_artifact(path, fmt) as reader:
        tensors = reader.manifest.model_weights()
        return [np.asarray(reader.read_tensor(t.key)) for t in tensors]


# --- 1. a `checkpoint` that is not TF's state file is never replaced ---------------------------------


@pytest.mark.parametrize("force", [False, True])
def test_checkpoint_directory_beside_prefix_is_never_replaced(tmp_path, capsys, force):
    out = tmp_path / "p"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "keep").write_text("x")
    before = _tree(out)
    line = _fails(["h5-to-tf", str(SEED_H5), str(out / "weights")] + (["--force"] if force else []), capsys)
    assert "checkpoint is a directory" in line and "state file" in line and "will not replace it" in line
    assert _tree(out) == before


def test_checkpoint_state_file_that_is_not_one_is_kept(tmp_path, capsys):
    (tmp_path / "checkpoint").write_text("my notes about checkpoints\n")
    line = _fails(["h5-to-tf", str(SEED_H5), str(tmp_path / "w")], capsys)
    assert "is not part of a TensorFlow checkpoint state file" in line and "move the file away" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert (tmp_path / "checkpoint").read_text() == "my notes about checkpoints\n"


# --- 2. --force replaces files, and directories only when a SavedModel replaces a SavedModel -----------


@pytest.mark.parametrize(
    "name, extra",
    [("d.safetensors", []), ("d.h5", []), ("d", ["--to", "tf-checkpoint"]), ("d", ["--to", "saved-model"])],
)
def test_force_never_deletes_a_directory_that_is_not_a_saved_model(tmp_path, capsys, name, extra):
    dst = tmp_path / name
    dst.mkdir()
    (dst / "keep").write_text("precious")
    if extra == ["--to", "tf-checkpoint"]:
        dst = tmp_path / "d"
        (tmp_path / "d.index").mkdir()  # the prefix's index path is a directory
        (tmp_path / "d.index" / "keep").write_text("precious")
    before = _tree(tmp_path)
    line = _fails(["convert", str(SEED_H5), str(dst), "--force", *extra], capsys)
    assert "is a directory that is not a SavedModel" in line and "will not delete it, even with --force" in line
    assert _tree(tmp_path) == before


def test_force_does_not_replace_a_saved_model_with_a_file(tmp_path, capsys):
    dst = tmp_path / "d.h5"
    shutil.copytree(SEED_SAVED_MODEL, dst)
    before = _tree(tmp_path)
    line = _fails(["convert", str(SEED_H5), str(dst), "--force"], capsys)
    assert "is a SavedModel directory, which h5-weights output does not replace" in line
    assert _tree(tmp_path) == before


def test_force_replaces_a_saved_model_with_a_saved_model(tmp_path, capsys):
    pytest.importorskip("tf_keras")
    dst = tmp_path / "sm"
    shutil.copytree(SEED_SAVED_MODEL, dst)
    (dst / "old_marker").write_text("old")
    line = _fails(["convert", str(SEED_MODEL_H5), str(dst), "--to", "saved-model"], capsys)
    assert "already exists" in line and "--force" in line
    assert (dst / "old_marker").exists()
    assert main(["convert", str(SEED_MODEL_H5), str(dst), "--to", "saved-model", "--force", "-q"]) == 0
    assert not (dst / "old_marker").exists() and (dst / "saved_model.pb").is_file()
    assert read_manifest(dst).format == "saved-model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]


def test_force_replaces_a_file(tmp_path):
    dst = tmp_path / "w.safetensors"
    dst.write_bytes(b"old")
    assert main(["convert", str(SEED_H5), str(dst), "--force", "-q"]) == 0
    assert read_manifest(dst, "safetensors").format == "safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


# --- 3. the `checkpoint` state file and old shards of a replaced prefix ---------------------------------


def test_new_prefix_keeps_the_other_checkpoints_listed(tmp_path):
    assert main(["h5-to-tf", "-q", str(SEED_H5), str(tmp_path / "a")]) == 0
    assert main(["h5-to-tf", "-q", str(SEED_H5), str(tmp_path / "b")]) == 0
    state = parse_checkpoint_state((tmp_path / "checkpoint").read_text())
    assert state.model_checkpoint_path == "b"
    assert state.all_model_checkpoint_paths == ["a", "b"]
    assert (tmp_path / "a.index").exists() and (tmp_path / "b.index").exists()
    # Writing `a` again (--force) makes it the latest without dropping `b`.
    assert main(["h5-to-tf", "-q", "--force", str(SEED_H5), str(tmp_path / "a")]) == 0
    state = parse_checkpoint_state((tmp_path / "checkpoint").read_text())
    assert state.model_checkpoint_path == "a" and state.all_model_checkpoint_paths == ["b", "a"]


def test_state_file_timestamps_are_kept_and_extended(tmp_path):
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "ckpt-2"\n'
        'all_model_checkpoint_paths: "ckpt-1"\n'
        'all_model_checkpoint_paths: "ckpt-2"\n'
        "all_model_checkpoint_timestamps: 1700000000.5\n"
        "all_model_checkpoint_timestamps: 1700000100.25\n"
        "last_preserved_timestamp: 1690000000.0\n"
    )
    assert main(["h5-to-tf", "-q", str(SEED_H5), str(tmp_path / "w")]) == 0
    state = parse_checkpoint_state((tmp_path / "checkpoint").read_text())
    assert state.model_checkpoint_path == "w"
    assert state.all_model_checkpoint_paths == ["ckpt-1", "ckpt-2", "w"]
    assert state.all_model_checkpoint_timestamps[:2] == [1700000000.5, 1700000100.25]
    assert len(state.all_model_checkpoint_timestamps) == 3 and state.all_model_checkpoint_timestamps[2] > 1.7e9
    assert state.last_preserved_timestamp == 1690000000.0


def test_state_file_absolute_entry_for_the_same_prefix_is_not_doubled(tmp_path):
    from converters.writers.tf_bundle import CheckpointState, merge_checkpoint_state

    existing = CheckpointState(str(tmp_path / "w"), [str(tmp_path / "v"), str(tmp_path / "w")])
    merged = merge_checkpoint_state(existing, "w", 1.0, tmp_path)
    assert merged.all_model_checkpoint_paths == [str(tmp_path / "v"), "w"]
    assert merged.all_model_checkpoint_timestamps == []  # none before, none invented


def test_force_over_a_prefix_removes_its_old_shards_only(tmp_path):
    assert main(["h5-to-tf", "-q", "--max-shard-size", "100KB", str(SEED_H5), str(tmp_path / "w")]) == 0
    old_shards = sorted(p.name for p in tmp_path.glob("w.data-*"))
    assert len(old_shards) > 1
    # Files of other prefixes, and look-alikes, stay.
    (tmp_path / "w2.data-00000-of-00001").write_bytes(b"other prefix")
    (tmp_path / "w.data-notes").write_text("not a shard")
    assert main(["h5-to-tf", "-q", str(SEED_H5), str(tmp_path / "w")]) == 1  # exists: needs --force
    assert sorted(p.name for p in tmp_path.glob("w.data-0*")) == old_shards
    assert main(["h5-to-tf", "-q", "--force", str(SEED_H5), str(tmp_path / "w")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint", "w.data-00000-of-00001", "w.data-notes", "w.index", "w2.data-00000-of-00001"
    ]
    assert (tmp_path / "w2.data-00000-of-00001").read_bytes() == b"other prefix"
    for ours, theirs in zip(_values(tmp_path / "w"), _values(SEED_H5)):
        np.testing.assert_array_equal(ours, theirs)


def test_stale_shards_without_index_need_force(tmp_path, capsys):
    (tmp_path / "w.data-00000-of-00002").write_bytes(b"stale")
    line = _fails(["h5-to-tf", str(SEED_H5), str(tmp_path / "w")], capsys)
    assert "w.data-00000-of-00002 already exists" in line and "pass --force" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.data-00000-of-00002"]


# --- 4. a failed conversion leaves no directory it created ----------------------------------------------


def test_failed_conversion_removes_the_directories_it_created(tmp_path, capsys):
    (tmp_path / "there").mkdir()
    line = _fails(["convert", str(SEED_H5), str(tmp_path / "there/nd2/sub/x.h5"), "--to", "h5-model"], capsys)
    assert "no model config" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there"]
    assert list((tmp_path / "there").iterdir()) == []


def test_successful_conversion_creates_missing_directories(tmp_path):
    assert main(["convert", "-q", str(SEED_H5), str(tmp_path / "a/b/x.safetensors")]) == 0
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["x.safetensors"]


# --- 5. missing data is named as missing data ------------------------------------------------------------


def test_missing_data_shard_is_reported_as_missing(tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(SEED_CKPT.parent, src)
    (src / "weights.data-00000-of-00001").unlink()
    out = tmp_path / "out"
    out.mkdir()
    line = _fails(["convert", str(src / "weights"), str(out / "w.h5")], capsys)
    assert "weights.data-00000-of-00001' is missing or truncated" in line
    assert "copy the complete artifact" in line and "belong to no layer" not in line
    assert list(out.iterdir()) == []
    with pytest.raises(MissingData):
        convert(src / "weights", out / "w.h5")


# --- 6. big-endian sources verify -------------------------------------------------------------------------


def _big_endian_copy(path: Path) -> None:
    shutil.copy(SEED_H5, path)
    with h5py.File(path, "r+") as f:
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            value = f[name][()]
            del f[name]
            f.create_dataset(name, data=value.astype(value.dtype.newbyteorder(">")))


def test_digest_ignores_byte_order():
    value = np.arange(6, dtype="<f4").reshape(2, 3)
    assert array_digest(value.astype(">f4")) == array_digest(value)


@pytest.mark.parametrize("name", ["o.safetensors", "o", "o.h5", "o.weights.h5"])
def test_big_endian_hdf5_converts_and_verifies(tmp_path, name):
    src = tmp_path / "be.h5"
    _big_endian_copy(src)
    out = tmp_path / "out"
    assert main(["convert", "-q", str(src), str(out / name)]) == 0
    fmt = "safetensors" if name.endswith(".safetensors") else None
    for ours, theirs in zip(_values(out / name, fmt), _values(SEED_H5)):
        np.testing.assert_array_equal(ours, theirs)


# --- 7. Lambda layers and custom classes are not copied into a full-model .h5 -----------------------------

_LAMBDA = {
    "class_name": "Lambda",
    "config": {
        "name": "plus_one",
        "trainable": True,
        "dtype": "float32",
        "function": ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAfABkARcAUwApAk7pAQAAAA==", None, None],
        "function_type": "lambda",
        "module": "__main__",
        "output_shape": None,
        "output_shape_type": "raw",
        "output_shape_module": None,
        "arguments": {},
    },
}
_CUSTOM = {"class_name": "MyScale", "module": "my_project.layers", "config": {"name": "scale", "trainable": True}}


def _model_h5_with(path: Path, layer: dict) -> None:
    shutil.copy(SEED_MODEL_H5, path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"].insert(2, layer)
        f.attrs["model_config"] = json.dumps(config).encode("utf8")


@pytest.mark.parametrize("layer, expected", [(_LAMBDA, "is a Lambda layer"), (_CUSTOM, "'MyScale', which is not a built-in")])
@pytest.mark.parametrize("extra", [["--to", "h5-model"], []])
def test_h5_model_output_refuses_unsafe_configs(tmp_path, capsys, layer, expected, extra):
    src = tmp_path / "src" / "lambda.h5"
    src.parent.mkdir()
    _model_h5_with(src, layer)
    out = tmp_path / "out"
    out.mkdir()
    line = _fails(["convert", str(src), str(out / "o.h5"), *extra], capsys)
    assert expected in line and "--model" in line
    assert list(out.iterdir()) == []


def test_one_home_for_config_checks():
    from converters import config_safety, keras3_config
    from converters.writers import saved_model

    assert keras3_config.check_config_safe is config_safety.check_config_safe
    assert saved_model.check_config_is_safe is config_safety.check_config_is_safe


# --- 8. sharding: only formats that shard, and sharded Keras 3 weights are X.weights.json ------------------


def test_sharded_keras3_weights_need_a_json_name(tmp_path, capsys):
    line = _fails(["convert", str(SEED_H5), str(tmp_path / "o.weights.h5"), "--max-shard-size", "100KB"], capsys)
    assert "must end with .weights.json" in line and "o.weights.json" in line
    assert list(tmp_path.iterdir()) == []
    assert main(["convert", "-q", str(SEED_H5), str(tmp_path / "o.weights.json"), "--max-shard-size", "100KB"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    shards = [n for n in names if n != "o.weights.json"]
    assert "o.weights.json" in names and len(shards) > 1
    assert all(n.startswith("o_0000") and n.endswith(".weights.h5") for n in shards)


@pytest.mark.parametrize(
    "name, to",
    [("o.safetensors", None), ("o.h5", None), ("o.h5", "h5-model"), ("o.keras", None), ("o", "saved-model")],
)
def test_max_shard_size_is_refused_for_formats_that_cannot_shard(tmp_path, capsys, name, to):
    src = SEED_MODEL_H5
    args = ["convert", str(src), str(tmp_path / name), "--max-shard-size", "100KB"] + (["--to", to] if to else [])
    line = _fails(args, capsys)
    assert "cannot be split into shards" in line and "tf-checkpoint and keras3-weights" in line
    assert list(tmp_path.iterdir()) == []


# --- 9. DST's suffix must fit the target -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, name, expected",
    [
        (["convert", "--to", "h5-weights"], "out.keras", "named like a keras3-model file but the target is h5-weights"),
        (["convert", "--to", "h5-model"], "out.weights.h5", "named like a keras3-weights file but the target is h5-model"),
        (["convert", "--to", "h5-weights"], "out.safetensors", "named like a safetensors file"),
        (["convert", "--to", "safetensors"], "out.h5", "named like an h5-weights or h5-model file"),
        (["convert", "--to", "safetensors"], "out", "has no suffix"),
        (["convert", "--to", "tf-checkpoint"], "out.keras", "but the target is tf-checkpoint"),
        (["tf-to-h5"], "x.weights.h5", "named like a keras3-weights file but the target is h5-weights"),
        (["h5-to-tf"], "x.safetensors", "but the target is tf-checkpoint"),
    ],
)
def test_destination_suffix_must_match_the_target(tmp_path, capsys, command, name, expected):
    src = SEED_CKPT if command == ["tf-to-h5"] else SEED_H5
    line = _fails([*command, str(src), str(tmp_path / name)], capsys)
    assert expected in line and "rename DST (e.g. " in line
    assert list(tmp_path.iterdir()) == []


def test_unknown_suffix_is_the_users_choice(tmp_path):
    assert main(["convert", "-q", str(SEED_H5), str(tmp_path / "model.ckpt-10"), "--to", "tf-checkpoint"]) == 0
    assert (tmp_path / "model.ckpt-10.index").exists()


# --- 10. messages name what the user can do and never ckit's staging directory ------------------------------


def test_h5_weights_note_suggests_a_command_that_exists(tmp_path):
    result = convert(SEED_MODEL_H5, tmp_path / "w.h5", "h5-weights")
    notes = [n for n in result.notes if "optimizer" in n]
    assert notes and "ckconvert convert SRC DST --to h5-model" in notes[0]
    assert "choose --to h5-model" not in notes[0]


def test_saved_model_from_weights_only_says_what_is_missing(tmp_path, capsys):
    pytest.importorskip("tf_keras")
    line = _fails(["convert", str(SEED_H5), str(tmp_path / "sm"), "--to", "saved-model"], capsys)
    assert "a SavedModel needs the model's architecture" in line and "full-model file" not in line
    assert list(tmp_path.iterdir()) == []


class _FailingWriter:
    name = "safetensors"
    description = "fails"
    suffixes = (".safetensors",)

    def __init__(self, exc_for):
        self.exc_for = exc_for

    def write(self, layout, dst, options) -> WriteResult:
        dst.write_bytes(b"partial")
        raise self.exc_for(dst)


@pytest.mark.parametrize(
    "exc_for, kind",
    [
        (lambda dst: OSError(28, "No space left on device", str(dst)), CkitError),
        (lambda dst: CorruptArtifact(f"{dst} cannot be read (No such file: {dst.parent}/other)"), CorruptArtifact),
    ],
)
def test_errors_from_staging_name_the_destination(tmp_path, monkeypatch, exc_for, kind):
    import converters.convert as pipeline

    monkeypatch.setattr(pipeline, "get_writer", lambda name: _FailingWriter(exc_for))
    dst = tmp_path / "out" / "w.weights.h5"  # a Keras-layout target: flat targets do not use get_writer's writers
    with pytest.raises(kind) as info:
        convert(SEED_H5, dst)
    message = str(info.value)
    assert ".ckit-" not in message and str(dst) in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


def test_verification_failure_is_restated_without_staging(tmp_path, monkeypatch):
    import converters.convert as pipeline

    def bad_verify(layout, recording, written, target, source=None):
        raise CorruptArtifact(f"verification failed: ckit cannot re-read its own output {written}: boom")

    monkeypatch.setattr(pipeline, "_verify_output", bad_verify)
    dst = tmp_path / "w.weights.h5"  # a Keras-layout target (flat targets verify in converters.flat)
    with pytest.raises(CorruptArtifact) as info:
        convert(SEED_H5, dst)
    assert ".ckit-" not in str(info.value) and str(dst) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_move_into_place_failure_puts_everything_back(tmp_path, monkeypatch):
    """A failure while moving files into place restores what was there (all or nothing)."""
    import converters.convert as pipeline

    assert main(["h5-to-tf", "-q", str(SEED_H5), str(tmp_path / "w")]) == 0
    before = _tree(tmp_path)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 4:  # part-way through
            raise OSError(5, "Input/output error", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(pipeline.os, "replace", flaky_replace)
    with pytest.raises(CkitError) as info:
        convert(SEED_H5, tmp_path / "w", "tf-checkpoint", force=True)
    monkeypatch.setattr(pipeline.os, "replace", real_replace)
    assert "nothing was changed" in str(info.value) and ".ckit-" not in str(info.value)
    assert not isinstance(info.value, OutputExists)
    assert _tree(tmp_path) == before


def test_truncated_data_shard_is_reported_as_missing_data(tmp_path, capsys):
    from converters.cli import main

    ckpt = tmp_path / "ckpt"
    shutil.copytree(SEED_CKPT.parent, ckpt)
    data = ckpt / "weights.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    assert main(["convert", str(ckpt / "weights"), str(tmp_path / "w.h5")]) == 1
    line = only_line(capsys.readouterr().err)
    assert "weights.data-00000-of-00001" in line and "truncated" in line
    assert not (tmp_path / "w.h5").exists()
