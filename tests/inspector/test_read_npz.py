"""The npz reader: numpy's own files read without pickle; damage, objects and lies refused in one line."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from inspector.cli import main
from inspector.errors import CorruptArtifact, UnsafeArtifact
from inspector.registry import detect, open_artifact
from tests.conftest import only_line


def _arrays():
    return {
        "dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
        "scalar": np.float64(2.5),
        "flags": np.array([True, False]),
        "optimizer/iteration": np.int64(7),
    }


def test_numpy_savez_reads_back_exactly(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **_arrays())  # numpy's own writer, compressed too
    compressed = tmp_path / "c.npz"
    np.savez_compressed(compressed, **_arrays())
    for file in (path, compressed):
        assert detect(file).name == "npz"
        with open_artifact(file) as reader:
            roles = {t.key: t.role for t in reader.manifest.tensors}
            assert roles == {"dense/kernel": "weight", "scalar": "weight", "flags": "weight",
                             "optimizer/iteration": "optimizer"}
            for key, value in _arrays().items():
                got = reader.read_tensor(key)
                assert got.dtype == np.asarray(value).dtype and got.shape == np.shape(value)
                assert np.array_equal(got, value)


def test_object_arrays_are_never_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.npz"
    np.savez(path, bad=np.array([object()], dtype=object))
    with pytest.raises(UnsafeArtifact, match="ckit never unpickles"):
        open_artifact(path)
    assert main(["dump", str(path)]) == 1
    assert "holds Python objects" in only_line(capsys.readouterr().err)


def test_damaged_member_is_caught_by_its_crc(tmp_path, capsys):
    path = tmp_path / "w.npz"
    np.savez(path, kernel=np.arange(1000, dtype=np.float32))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # inside the stored array bytes
    path.write_bytes(bytes(raw))
    with open_artifact(path) as reader:
        with pytest.raises(CorruptArtifact, match="member 'kernel.npy' is damaged"):
            reader.read_tensor("kernel")
    assert main(["verify", str(path)]) == 1
    assert "DAMAGED  kernel" in capsys.readouterr().out


def test_a_shape_that_does_not_fit_the_member_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    buffer = np.lib.format.header_data_from_array_1_0(np.zeros(4, np.float32))
    buffer["shape"] = (1 << 40,)
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("big.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, buffer)
            member.write(np.zeros(4, np.float32).tobytes())
    with pytest.raises(CorruptArtifact, match="declares float32 \\[1099511627776\\]"):
        open_artifact(path)
