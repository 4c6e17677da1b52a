"""Every shape of checkpoint path: read as TensorFlow resolves it, or refused in one line; never an internal error."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from inspector.cli import main
from tests.conftest import FIXTURES, only_line

NONKERAS = FIXTURES / "nonkeras"


def _copy(tmp_path, name):
    return shutil.copytree(NONKERAS / name, tmp_path / name)


def _state(directory, path):
    (directory / "checkpoint").write_text(
        f"model_checkpoint_path: {json.dumps(path)}\nall_model_checkpoint_paths: {json.dumps(path)}\n"
    )
    return directory


# (label, how to build the path from tmp_path, the prefix read or None for a one-line refusal)
SHAPES = [
    ("prefix", lambda t: _copy(t, "module_ckpt") / "ckpt-1", "module_ckpt/ckpt-1"),
    (".index file", lambda t: _copy(t, "module_ckpt") / "ckpt-1.index", "module_ckpt/ckpt-1"),
    (".data file", lambda t: _copy(t, "module_ckpt") / "ckpt-1.data-00000-of-00001", "module_ckpt/ckpt-1"),
    ("directory", lambda t: _copy(t, "module_ckpt"), "module_ckpt/ckpt-1"),
    ("directory with slash", lambda t: str(_copy(t, "module_ckpt")) + "/", "module_ckpt/ckpt-1"),
    ("state file itself", lambda t: _copy(t, "manager") / "checkpoint", "manager/ckpt-2"),
    ("manager directory", lambda t: _copy(t, "manager"), "manager/ckpt-2"),
    ("foreign absolute path", lambda t: _copy(t, "foreign_posix"), "foreign_posix/ckpt-1"),
    ("windows path", lambda t: _copy(t, "foreign_windows"), "foreign_windows/ckpt-1"),
    ("windows path, forward slashes", lambda t: _state(_copy(t, "foreign_posix"), "D:/runs/ckpt-1"), "foreign_posix/ckpt-1"),
    ("relative path with ..", lambda t: _state(_copy(t, "foreign_posix"), "../foreign_posix/ckpt-1"), "foreign_posix/ckpt-1"),
    ("empty base name directory", lambda t: _copy(t, "empty_basename"), "empty_basename/"),
    ("empty base name .index", lambda t: _copy(t, "empty_basename") / ".index", "empty_basename/"),
    ("empty base name .data", lambda t: _copy(t, "empty_basename") / ".data-00000-of-00001", "empty_basename/"),
    ("state file naming an empty base name", lambda t: _state(_copy(t, "empty_basename"), "/elsewhere/run/"), "empty_basename/"),
    ("state file naming nothing that exists", lambda t: _state(_copy(t, "foreign_posix"), "/gone/other-7"), None),
    ("state file with an empty path", lambda t: _state(_copy(t, "foreign_posix"), ""), None),
    ("garbage state file", lambda t: (_copy(t, "foreign_posix") / "checkpoint").write_bytes(b"\xff\x00junk") and t / "foreign_posix", "foreign_posix/ckpt-1"),
    ("missing path", lambda t: t / "nope" / "ckpt-1", None),
    ("empty directory", lambda t: (t / "empty").mkdir() or t / "empty", None),
    ("NUL byte", lambda t: str(t / "a\x00b"), None),
    ("overlong name", lambda t: t / ("x" * 5000), None),
]


@pytest.mark.parametrize("label, make, expected", SHAPES, ids=[s[0] for s in SHAPES])
def test_path_shapes(tmp_path, capsys, label, make, expected):
    path = make(tmp_path)
    code = main(["dump", "--json", str(path)])
    out, err = capsys.readouterr()
    if expected is None:
        assert code in (1, 2)
        line = only_line(err)
        assert "internal error" not in line, line
        return
    assert code == 0, err
    manifest = json.loads(out)
    # TensorFlow joins a relative state-file path to the directory as it is ("run/../run/ckpt-1").
    assert os.path.normpath(manifest["path"]) == os.path.normpath(tmp_path / expected)
    assert manifest["path"].endswith("/") == expected.endswith("/")
    assert manifest["totals"]["tensors"] > 0


def test_foreign_path_is_noted(tmp_path, capsys):
    assert main(["dump", str(_copy(tmp_path, "foreign_posix"))]) == 0
    out = " ".join(capsys.readouterr().out.split())  # notes are wrapped to 80 columns
    assert (
        "note: the 'checkpoint' state file names '/home/someone/experiments/run7/ckpt-1', which does not exist here; "
        f"read the checkpoint of that name beside it: {tmp_path / 'foreign_posix' / 'ckpt-1'}"
    ) in out


def test_signatures_of_non_keras_saved_models(capsys):
    assert main(["dump", str(NONKERAS / "module_saved_model")]) == 0
    assert "  serving_default(features: float32 [None, 4]) -> scores: float32 [None, 2]" in capsys.readouterr().out
    assert main(["dump", "--json", str(NONKERAS / "tf1_saved_model")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["metadata"]["tags"] == ["serve"]
    signature = manifest["metadata"]["signatures"]["serving_default"]
    assert signature["method"] == "tensorflow/serving/predict"
    assert signature["inputs"]["x"]["dtype"] == "float32" and signature["inputs"]["x"]["shape"] == [None, 4]
    assert signature["outputs"]["logits"]["shape"] == [None, 3]


def test_dump_map_shows_what_convert_writes(tmp_path, capsys):
    name_map = tmp_path / "map.json"
    name_map.write_text(json.dumps({"rename": {"^net/": "model/"}, "exclude": ["Adam", "power$"]}))
    assert main(["dump", "--json", "--map", str(name_map), str(NONKERAS / "tf1_saver")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert sorted(t["name"] for t in manifest["tensors"]) == [
        "global_step", "model/hidden/bias", "model/hidden/kernel", "model/logits/bias", "model/logits/kernel",
    ]
    assert manifest["notes"][-1] == f"--map {name_map}: 4 tensor(s) renamed, 10 excluded"
    assert main(["dump", "--map", str(tmp_path / "absent.yaml"), str(NONKERAS / "tf1_saver")]) == 1
    assert "cannot read the name map" in only_line(capsys.readouterr().err)


def test_tf_module_optimizers_have_the_optimizer_role(capsys):
    assert main(["dump", "--json", str(NONKERAS / "module_ckpt")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    roles = {t["key"].split("/")[0]: t["role"] for t in manifest["tensors"]}
    assert roles["actor_optimizer"] == roles["critic_optimizer"] == "optimizer"
    assert roles["actor"] == roles["critic"] == roles["step"] == "weight" and roles["save_counter"] == "counter"
