"""The Python API (`inspector.open`, `inspector.diff`), `cat`, and the human-output rules."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import inspector
from inspector.cli import main
from inspector.naturalsort import natural_key
from inspector.text import Style, plural
from tests.conftest import FIXTURES, only_line

CKPT = FIXTURES / "seed/tf_keras/ckpt/weights"


def test_importing_inspector_loads_neither_numpy_nor_h5py():
    code = ("import sys, inspector\n"
            "assert callable(inspector.open) and callable(inspector.diff)\n"
            "heavy = {'numpy', 'h5py', 'tensorflow'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=FIXTURES.parent)


def test_open_reads_lazily_by_key_or_name():
    from tensorflow.python.training import py_checkpoint_reader  # the oracle: TensorFlow's own reader

    oracle = py_checkpoint_reader.NewCheckpointReader(str(CKPT))
    with inspector.open(CKPT) as art:
        assert art.format == "tf-checkpoint" and len(art) == 11
        assert "dense/kernel" in art
        by_name = art.read("dense/kernel")
        key = art["dense/kernel"].key
        np.testing.assert_array_equal(by_name, oracle.get_tensor(key))
        np.testing.assert_array_equal(art.read(key), by_name)
        report = art.stats("dense_1/*")
        assert {s.tensor.name for s in report.tensors} == {"dense_1/kernel", "dense_1/bias"}
        kernel = next(s for s in report.tensors if s.tensor.name == "dense_1/kernel")
        assert kernel.mean == pytest.approx(float(oracle.get_tensor(art["dense_1/kernel"].key).astype(np.float64).mean()))
        assert art.tree().root.params == 101_770


def test_diff_takes_paths_or_open_artifacts():
    with inspector.open(FIXTURES / "seed/tf_keras/weights.h5") as a:
        report = inspector.diff(a, CKPT)
        assert report.equal and report.compared == 4
        assert a.read("dense/bias").shape == (128,)  # a caller's artifact stays open


def test_cat_prints_values_and_saves_npy(tmp_path, capsys):
    out = tmp_path / "k.npy"
    assert main(["cat", str(CKPT), "dense_1/bias", "--npy", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE: float32 [10]")
    with inspector.open(CKPT) as art:
        expected = art.read("dense_1/bias")
    np.testing.assert_array_equal(np.load(out, allow_pickle=False), expected)
    assert main(["cat", str(CKPT), "dense_1/bias", "--npy", str(out)]) == 1
    assert "exists; pass --force" in only_line(capsys.readouterr().err)
    assert main(["cat", str(CKPT), "dense/kernel"]) == 0
    assert "..." in capsys.readouterr().out  # numpy's summary for a large tensor
    assert main(["cat", "--full", str(CKPT), "dense/kernel"]) == 0
    assert "..." not in capsys.readouterr().out


def test_cat_unknown_key_suggests_close_names(capsys):
    assert main(["cat", str(CKPT), "dense/kernal"]) == 2
    assert "did you mean 'dense/kernel'" in only_line(capsys.readouterr().err)


def test_cat_strings_save_without_pickle(tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert main(["cat", str(FIXTURES / "edge/dtypes/ckpt-1"), "string_vector", "--npy", str(out)]) == 0
    assert list(np.load(out, allow_pickle=False))[:2] == [b"alpha", b""]


def test_keys_sort_as_numbers_in_human_output():
    keys = ["optimizer/_variables/10", "optimizer/_variables/2", "optimizer/_variables/1", "dense_10", "dense_2"]
    assert sorted(keys, key=natural_key) == ["dense_2", "dense_10", "optimizer/_variables/1",
                                             "optimizer/_variables/2", "optimizer/_variables/10"]


def test_plurals():
    assert plural(1, "tensor") == "1 tensor" and plural(2, "tensor") == "2 tensors" and plural(0, "tensor") == "0 tensors"


class _Tty:
    def isatty(self):
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert Style.for_stream(_Tty()).enabled
    assert not Style.for_stream(sys.stdout).enabled or sys.stdout.isatty()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Style.for_stream(_Tty()).enabled


def test_cli_output_has_no_escape_codes_when_piped(capsys):
    assert main(["stats", str(FIXTURES / "edge/nonfinite/weights.h5")]) == 0
    assert "\x1b[" not in capsys.readouterr().out


def test_progress_bar_only_on_a_terminal_for_large_artifacts():
    import io

    from inspector.clikit import PROGRESS_MIN_BYTES, progress_for

    assert progress_for(10 * PROGRESS_MIN_BYTES, io.StringIO()) is None  # not a terminal

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress_for(PROGRESS_MIN_BYTES - 1, Terminal()) is None  # too small to bother
    screen = Terminal()
    advance = progress_for(4 * PROGRESS_MIN_BYTES, screen)
    advance(PROGRESS_MIN_BYTES)
    assert " 25%" in screen.getvalue()
    advance(3 * PROGRESS_MIN_BYTES)
    assert screen.getvalue().endswith("\r")  # the bar is wiped when done


def test_tensorboard_run_names_are_distinct(tmp_path):
    from inspector.tensorboard import run_names

    a, b = tmp_path / "run1" / "ckpt", tmp_path / "run2" / "ckpt"
    assert run_names([str(a), str(b)]) == ["run1_ckpt", "run2_ckpt"]
    assert run_names([str(a)]) == ["ckpt"]
