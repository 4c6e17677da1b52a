"""`ckinspect` end to end: every fixture format, JSON, verify, and one-line errors on bad input."""

from __future__ import annotations

import json
import shutil

import pytest

from inspector.cli import main
from tests.conftest import FIXTURES, flip_byte_in_tensor

ARTIFACTS = [
    ("seed/tf_keras/weights.h5", "h5-weights"),
    ("seed/tf_keras/model.h5", "h5-model"),
    ("seed/tf_keras/ckpt/weights", "tf-checkpoint"),
    ("seed/tf_keras/ckpt/weights.index", "tf-checkpoint"),
    ("seed/tf_keras/ckpt/weights.data-00000-of-00001", "tf-checkpoint"),
    ("seed/tf_keras/ckpt", "tf-checkpoint"),
    ("seed/tf_keras/saved_model", "saved-model"),
    ("seed/keras3/model.weights.h5", "keras3-weights"),
    ("seed/keras3/sharded/model.weights.json", "keras3-weights"),
    ("seed/keras3/model.keras", "keras3-model"),
    ("seed/keras3/legacy.h5", "h5-model"),
]


@pytest.mark.parametrize("relative,expected_format", ARTIFACTS)
def test_dump_json_names_format_and_weights(capsys, relative, expected_format):
    assert main(["dump", "--json", str(FIXTURES / relative)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "ckit.manifest/1"
    assert document["format"] == expected_format
    weights = [t for t in document["tensors"] if t["role"] == "weight"]
    # The seed model: Dense(784->128) and Dense(128->10), kernel and bias each.
    assert sorted(tuple(t["shape"]) for t in weights) == [(10,), (128,), (128, 10), (784, 128)]
    assert document["totals"]["parameters"] == 784 * 128 + 128 + 128 * 10 + 10


@pytest.mark.parametrize("relative,expected_format", ARTIFACTS)
def test_dump_table_lists_every_tensor_in_80_columns(capsys, relative, expected_format):
    from inspector.registry import read_manifest

    assert main(["dump", str(FIXTURES / relative)]) == 0
    out = capsys.readouterr().out
    assert f"format:     {expected_format}" in out
    assert "parameters: 101,770" in out
    lines = out.splitlines()
    table = lines[lines.index(next(line for line in lines if line.startswith("KEY "))):]
    # Every line in 80 columns, but for a single word longer than that (a path is never cut).
    assert all(len(line) <= 80 or " " not in line.strip() for line in lines), max(lines, key=len)
    # Every key whole (users copy them), once, in natural order; each row holds its tensor's name.
    keys = [t.key for t in read_manifest(str(FIXTURES / relative)).tensors]
    starts = [line.split()[0] for line in table[1:] if not line.startswith((" ", "note: "))]
    assert sorted(starts) == sorted(keys)
    assert starts == sorted(keys, key=lambda k: [int(p) if p.isdigit() else p for p in __import__("re").split(r"(\\d+)", k)])


def test_dump_header_of_a_third_party_saved_model_in_80_columns(capsys):
    # basic-pitch's SavedModel (TF 2.4): a long producer line and a signature with three outputs.
    assert main(["dump", str(FIXTURES / "thirdparty/basic_pitch/nmp")]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 or " " not in line.strip() for line in out.splitlines()), max(out.splitlines(), key=len)
    assert "  serving_default(input_2: float32 [None, 43844, 1]) ->\n" in out
    for output in ("contour: float32 [None, 172, 264]", "note: float32 [None, 172, 88]", "onset: float32 [None, 172, 88]"):
        assert output in out  # each argument whole on one line
    assert "keras_version=2.4.0" in out and "tensorflow_version=2.4.1" in out


@pytest.mark.parametrize("command", ["dump", "verify", "tree", "stats"])
def test_human_output_of_a_long_path_in_80_columns(capsys, command):
    # inaSpeechSegmenter's Keras 2.3 model: a long path, an HDF5 note, many layers.
    path = FIXTURES / "thirdparty/inaspeechsegmenter/keras_speech_music_noise_cnn.hdf5"
    assert main([command, str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 or " " not in line.strip() for line in lines), max(lines, key=len)
    assert any(line.strip().startswith(str(path)) for line in lines)  # the path whole, never cut


def test_dump_table_sorts_numbers_as_numbers(capsys):
    assert main(["dump", str(FIXTURES / "seed/tf_keras/ckpt/weights")]) == 0
    out = capsys.readouterr().out
    assert out.index("optimizer/_variables/2/") < out.index("optimizer/_variables/4/")


def test_verify_good_checkpoint(capsys):
    assert main(["verify", str(FIXTURES / "seed/tf_keras/ckpt/weights")]) == 0
    assert capsys.readouterr().out.startswith("OK: tf-checkpoint")


def test_verify_names_the_damaged_tensor(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(FIXTURES / "seed/tf_keras/ckpt", ckpt)
    flip_byte_in_tensor(ckpt / "weights")
    assert main(["verify", str(ckpt / "weights")]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED  layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in out
    assert "FAILED (1 damaged)" in out


def test_dump_lists_index_when_data_is_missing(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(FIXTURES / "seed/tf_keras/ckpt", ckpt)
    (ckpt / "weights.data-00000-of-00001").unlink()
    assert main(["dump", str(ckpt / "weights")]) == 0
    out = capsys.readouterr().out
    assert "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE" in out
    assert "data shard missing or incomplete" in out
    assert main(["verify", str(ckpt / "weights")]) == 1


@pytest.mark.parametrize(
    "content,expected",
    [
        (b"", "not a recognised artifact"),
        (b"\x00" * 100, "not a recognised artifact"),
        (bytes(range(256)) * 40, "not a recognised artifact"),
    ],
    ids=["empty", "zeros", "random"],
)
def test_bad_input_is_one_line_error(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    assert main(["dump", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("ckinspect: error: ") and expected in err and str(path) in err


def test_truncated_index_is_one_line_error(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(FIXTURES / "seed/tf_keras/ckpt", ckpt)
    index = ckpt / "weights.index"
    index.write_bytes(index.read_bytes()[:-10])
    assert main(["dump", "--format", "tf-checkpoint", str(ckpt / "weights")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights.index" in err


def test_unknown_format_name_lists_the_known_ones(capsys):
    assert main(["dump", "--format", "onnx", str(FIXTURES / "seed/tf_keras/weights.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "'onnx' is not one of" in err and "'tf-checkpoint'" in err and "see 'ckinspect dump --help'" in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_traceback(tmp_path, where):
    path = tmp_path / "bad.bin"
    path.write_bytes(b"junk")
    argv = ["--debug", "dump", str(path)] if where == "before" else ["dump", str(path), "--debug"]
    with pytest.raises(Exception, match="not a recognised artifact"):
        main(argv)


def test_usage_error_is_one_line_and_exits_2(capsys):
    assert main(["dump"]) == 2
    err = capsys.readouterr().err
    assert err == "ckinspect: error: Missing argument 'PATH'. (see 'ckinspect dump --help')\n"


def test_dump_of_checkpoint_imports_neither_tensorflow_nor_h5py():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; sys.modules['tf_keras'] = None\n"
        "from inspector.cli import main\n"
        f"rc = main(['dump', {str(FIXTURES / 'seed/tf_keras/ckpt/weights')!r}])\n"
        "assert rc == 0, rc\n"
        "assert 'h5py' not in sys.modules, 'h5py imported for a TF checkpoint'\n"
        "assert 'google.protobuf' not in sys.modules, 'protobuf imported for a TF checkpoint (start-up)'\n"
        "assert 'numpy' not in sys.modules, 'numpy imported for a TF checkpoint listing'\n"
        "assert 'inspector.formats._h5isolate' not in sys.modules, 'HDF5 worker machinery imported for a TF checkpoint'\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("clean")


def test_hdf5_dump_works_without_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; sys.modules['tf_keras'] = None\n"
        "from inspector.cli import main\n"
        f"for p in {[str(FIXTURES / a) for a, _ in ARTIFACTS]!r}:\n"
        "    assert main(['dump', '--json', p]) == 0, p\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("clean")


def test_verify_of_hdf5_says_damage_inside_data_cannot_be_seen(capsys):
    assert main(["verify", str(FIXTURES / "seed/tf_keras/weights.h5")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: h5-weights")
    assert "note: HDF5 keeps no checksums for these datasets" in out


def test_command_exits_with_mains_code_and_all_of_its_output(tmp_path):
    """`ckinspect` (inspector.cli.entry) leaves through os._exit after main: everything main printed
    arrives, the exit status is main's, and a reader that stops early causes no noise."""
    import os
    import subprocess
    import sys

    from inspector.registry import read_manifest
    from inspector.render import render_json

    env = dict(os.environ, PYTHONPATH=str(FIXTURES.parent))
    ckpt = str(FIXTURES / "seed/tf_keras/ckpt/weights")

    def run(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, env=env, **kw)

    done = run("dump", "--json", ckpt)
    assert done.returncode == 0 and done.stdout.decode() == render_json(read_manifest(ckpt)) + "\n"
    assert json.loads(done.stdout)["schema"] == "ckit.manifest/1"
    missing = run("dump", str(tmp_path / "absent"))
    assert missing.returncode == 1 and missing.stderr.decode().count("\n") == 1
    assert run("dump").returncode == 2
    crashed = run("--debug", "dump", str(tmp_path / "absent"))
    assert crashed.returncode == 1 and b"Traceback" in crashed.stderr  # --debug: the usual exit
    # A listing larger than a pipe's buffer, whose reader stops after the first bytes (`| head`).
    import numpy as np

    from converters.writers.tf_bundle import BundleWriter

    with BundleWriter(tmp_path / "many") as writer:
        for i in range(3000):
            writer.add(f"layer_{i}/kernel", np.zeros((2, 2), np.float32))
    with subprocess.Popen([sys.executable, "-m", "inspector", "dump", str(tmp_path / "many")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as head:
        assert head.stdout.read(10)
        head.stdout.close()  # the reader goes away early
        assert head.wait(timeout=60) == 0
        assert head.stderr.read() == b""  # no "Exception ignored ... BrokenPipeError"
