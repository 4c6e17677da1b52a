"""`ckconvert` end to end: the commands, their messages, and that nothing is ever lost."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from converters.cli import main, parse_size
from inspector import read_manifest
from tests.conftest import FIXTURES, flip_byte_in_tensor, only_line

SEED_H5 = FIXTURES / "seed/tf_keras/weights.h5"
SEED_CKPT = FIXTURES / "seed/tf_keras/ckpt/weights"


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
    line = only_line(capsys.readouterr().err)
    assert "already exists" in line and "pass --force" in line
    assert dst.read_bytes() == b"precious"
    # The fix the message suggests works.
    assert main(["tf-to-h5", "--force", str(SEED_CKPT), str(dst)]) == 0
    assert read_manifest(dst).format == "h5-weights"


def test_wrong_source_for_h5_to_tf_points_to_convert(tmp_path, capsys):
    assert main(["h5-to-tf", str(SEED_CKPT), str(tmp_path / "w")]) == 1
    line = only_line(capsys.readouterr().err)
    assert "is tf-checkpoint" in line and "ckconvert convert" in line


def test_unknown_suffix_asks_for_to_and_to_works(tmp_path, capsys):
    dst = tmp_path / "weights.bin"
    assert main(["convert", str(SEED_H5), str(dst)]) == 1
    line = only_line(capsys.readouterr().err)
    assert "pass --to" in line
    assert main(["convert", str(SEED_H5), str(dst), "--to", "safetensors"]) == 0
    assert read_manifest(dst, "safetensors").format == "safetensors"


def test_unknown_target_lists_targets(tmp_path, capsys):
    assert main(["convert", str(SEED_H5), str(tmp_path / "x"), "--to", "onnx"]) == 2
    line = only_line(capsys.readouterr().err)
    assert "'onnx' is not one of" in line and "'keras3-weights'" in line


def test_corrupt_source_leaves_nothing_behind(tmp_path, capsys):
    ckpt = tmp_path / "src"
    shutil.copytree(SEED_CKPT.parent, ckpt)
    flip_byte_in_tensor(ckpt / "weights")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert", str(ckpt / "weights"), str(out / "w.weights.h5")]) == 1
    line = only_line(capsys.readouterr().err)
    assert "checksum" in line.lower() or "crc" in line.lower()
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("nope", re.escape("is not of the form module:function")),
        ("no_such_module_xyz:build", re.escape("cannot import module 'no_such_module_xyz'")),
        ("converters.zoo:no_such_factory", re.escape("has no function 'no_such_factory'")),
        # Keras numbers layer names per process ("conv2d_24" after other tests built models).
        ("converters.zoo:cnn_model", r"of the --model expects \[3, 3, 1, 8\] for 'conv2d(_\d+)?/kernel'"),
    ],
)
def test_bad_model_factory_messages(tmp_path, capsys, spec, expected):
    assert main(["convert", str(SEED_H5), str(tmp_path / "w.weights.h5"), "--model", spec]) == 1
    line = only_line(capsys.readouterr().err)
    assert re.search(expected, line), line
    assert list(tmp_path.iterdir()) == []


def test_model_factory_is_the_authority(tmp_path):
    assert main(["convert", str(SEED_H5), str(tmp_path / "w.weights.h5"), "--model", "converters.zoo:seed_model"]) == 0
    assert read_manifest(tmp_path / "w.weights.h5").format == "keras3-weights"


def test_bad_shard_size_is_a_usage_error(tmp_path, capsys):
    assert main(["convert", str(SEED_H5), str(tmp_path / "w.weights.json"), "--max-shard-size", "lots"]) == 2
    line = only_line(capsys.readouterr().err)
    assert "Invalid value for '--max-shard-size': 'lots' is not a size" in line


def test_parse_size_units():
    assert parse_size("100MB") == 100_000_000
    assert parse_size("64MiB") == 64 * 2**20
    assert parse_size("512") == 512
    assert parse_size("1e9") == 10**9
    assert parse_size(None) is None


def _big_h5(path, count: int = 24, rows: int = 2048) -> None:
    """A Keras 2 layout weights file big enough that converting it takes a moment."""
    import h5py
    import numpy as np

    value = np.ones((rows, rows), np.float32)
    names = [f"dense_{i}" for i in range(count)]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.21.0"
        for name in names:
            group = f.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()])
            group.create_dataset(f"{name}/kernel:0", data=value)


@pytest.mark.parametrize("signal_name,code", [("INT", 130), ("TERM", 143)])
def test_interrupted_conversion_leaves_nothing(tmp_path, signal_name, code):
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "big.h5"
    _big_h5(src)
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "converters.cli", "convert", str(src), str(out / "w.safetensors")],
        stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 20
    while not any(out.iterdir()) and time.monotonic() < deadline:  # wait until the staging dir exists
        time.sleep(0.01)
    child.send_signal(getattr(signal, f"SIG{signal_name}"))
    _, err = child.communicate(timeout=60)
    if child.returncode == 0:
        pytest.skip("the conversion finished before the signal arrived")
    # Killed by the signal itself (-2) reads as 130 in a shell too; what matters is what is left.
    assert child.returncode in (code, -(code - 128)), err
    assert "nothing was written" in err
    assert list(out.iterdir()) == []


def test_model_factory_is_imported_from_the_current_directory(tmp_path):
    """The README's `--model mypkg.models:build`, run beside mypkg/ with no PYTHONPATH for it, as
    `ckconvert validate` does; started like the console script (sys.path[0] is not the cwd)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    work = tmp_path / "work"
    (work / "mypkg").mkdir(parents=True)
    (work / "mypkg" / "__init__.py").write_text("")
    (work / "mypkg" / "models.py").write_text(
        "def build(keras):\n"
        "    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),\n"
        "                              keras.layers.Dense(128, activation='relu'), keras.layers.Dense(10)])\n"
        "    model.compile(optimizer='rmsprop', loss='sparse_categorical_crossentropy')\n"
        "    return model\n"
    )
    launcher = tmp_path / "bin" / "ckconvert"
    launcher.parent.mkdir()
    launcher.write_text("import sys\nfrom converters.cli import main\nsys.exit(main())\n")
    env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, str(launcher), "convert", str(SEED_H5), "w.weights.h5", "--model", "mypkg.models:build"]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("wrote keras3-weights w.weights.h5: 4 tensors (4 weights)")
    assert (work / "w.weights.h5").is_file()
    # Elsewhere the module is not found: a one-line error that says where it looks, never ckit's zoo.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([*command[:3], str(SEED_H5), "x.weights.h5", *command[5:]], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    line = only_line(done.stderr)
    assert "cannot import module 'mypkg.models'" in line and "zoo" not in line
