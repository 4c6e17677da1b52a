"""`ckconvert` end to end: the commands, their messages, and that nothing is ever lost."""

from __future__ import annotations

import shutil

import pytest

from converters.cli import main, parse_size
from inspector import read_manifest
from tests.conftest import FIXTURES, flip_byte_in_tensor

SEED_H5 = FIXTURES / "seed/tf_keras/weights.h5"
SEED_CKPT = FIXTURES / "seed/tf_keras/ckpt/weights"


def _only_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_h5_to_tf_writes_prefix_and_checkpoint_file(tmp_path, capsys):
    assert main(["h5-to-tf", str(SEED_H5), str(tmp_path / "w")]) == 0
    assert "wrote tf-checkpoint" in capsys.readouterr().out
    assert (tmp_path / "w.index").exists() and (tmp_path / "w.data-00000-of-00001").exists()
    assert 'model_checkpoint_path: "w"' in (tmp_path / "checkpoint").read_text()
    assert read_manifest(tmp_path / "w").format == "tf-checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "w.data-00000-of-00001", "w.index"]


def test_tf_to_h5(tmp_path):
    assert main(["tf-to-h5", str(SEED_CKPT), str(tmp_path / "w.h5")]) == 0
    assert read_manifest(tmp_path / "w.h5").format == "h5-weights"


def test_existing_destination_needs_force(tmp_path, capsys):
    dst = tmp_path / "w.h5"
    dst.write_bytes(b"precious")
    assert main(["tf-to-h5", str(SEED_CKPT), str(dst)]) == 1
    line = _only_line(capsys.readouterr().err)
    assert "already exists" in line and "pass --force" in line
    assert dst.read_bytes() == b"precious"
    # The fix the message suggests works.
    assert main(["tf-to-h5", "--force", str(SEED_CKPT), str(dst)]) == 0
    assert read_manifest(dst).format == "h5-weights"


def test_wrong_source_for_h5_to_tf_points_to_convert(tmp_path, capsys):
    assert main(["h5-to-tf", str(SEED_CKPT), str(tmp_path / "w")]) == 1
    line = _only_line(capsys.readouterr().err)
    assert "is tf-checkpoint" in line and "ckconvert convert" in line


def test_unknown_suffix_asks_for_to_and_to_works(tmp_path, capsys):
    dst = tmp_path / "weights.bin"
    assert main(["convert", str(SEED_H5), str(dst)]) == 1
    line = _only_line(capsys.readouterr().err)
    assert "pass --to" in line
    assert main(["convert", str(SEED_H5), str(dst), "--to", "safetensors"]) == 0
    assert read_manifest(dst, "safetensors").format == "safetensors"


def test_unknown_target_lists_targets(tmp_path, capsys):
    assert main(["convert", str(SEED_H5), str(tmp_path / "x"), "--to", "onnx"]) == 1
    line = _only_line(capsys.readouterr().err)
    assert "cannot write format 'onnx'" in line and "keras3-weights" in line


def test_corrupt_source_leaves_nothing_behind(tmp_path, capsys):
    ckpt = tmp_path / "src"
    shutil.copytree(SEED_CKPT.parent, ckpt)
    flip_byte_in_tensor(ckpt / "weights")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert", str(ckpt / "weights"), str(out / "w.weights.h5")]) == 1
    line = _only_line(capsys.readouterr().err)
    assert "checksum" in line.lower() or "crc" in line.lower()
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("nope", "is not of the form module:function"),
        ("no_such_module_xyz:build", "cannot import module 'no_such_module_xyz'"),
        ("converters.zoo:no_such_factory", "has no function 'no_such_factory'"),
        ("converters.zoo:cnn_model", "of the --model expects [3, 3, 1, 8] for 'conv2d/kernel'"),
    ],
)
def test_bad_model_factory_messages(tmp_path, capsys, spec, expected):
    assert main(["convert", str(SEED_H5), str(tmp_path / "w.weights.h5"), "--model", spec]) == 1
    line = _only_line(capsys.readouterr().err)
    assert expected in line
    assert list(tmp_path.iterdir()) == []


def test_model_factory_is_the_authority(tmp_path):
    assert main(["convert", str(SEED_H5), str(tmp_path / "w.weights.h5"), "--model", "converters.zoo:seed_model"]) == 0
    assert read_manifest(tmp_path / "w.weights.h5").format == "keras3-weights"


def test_bad_shard_size_is_a_usage_error(tmp_path, capsys):
    assert main(["convert", str(SEED_H5), str(tmp_path / "w.weights.json"), "--max-shard-size", "lots"]) == 2
    assert "is not a size" in capsys.readouterr().err


def test_parse_size_units():
    assert parse_size("100MB") == 100_000_000
    assert parse_size("64MiB") == 64 * 2**20
    assert parse_size("512") == 512
    assert parse_size(None) is None
