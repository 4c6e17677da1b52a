"""Hostile input (issue 9): isolation of the HDF5 library, bounds before allocation, names that
are not UTF-8, streaming verification, symlinks, signals.  Every input is a real fixture with a
few bytes changed, or a file built the way the finding describes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inspector import links
from inspector.errors import CkitError, CorruptArtifact, UnsafeArtifact, UnsupportedFeature
from inspector.formats import _hdf5
from inspector.protos import BundleEntryProto
from inspector.registry import open_artifact, read_manifest
from inspector.render import escape, render_json, render_table
from inspector.verify import tensor_digest, verify_artifact
from tests.conftest import fixture_path
from tests.inspector.test_qa_readers import _add_entry

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "fixtures" / "bad"


def _cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, timeout=timeout,
                          env=full_env, cwd=ROOT)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.decode("utf-8", "replace").strip()
    assert proc.returncode == 1, (proc.returncode, err)
    assert "\n" not in err and "internal error" not in err and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- HDF5 isolation
def test_hdf5_library_never_loads_in_ckits_process() -> None:
    code = ("import sys; from inspector.registry import open_artifact\n"
            "with open_artifact(sys.argv[1]) as r:\n"
            "    [r.read_tensor(t.key) for t in r.manifest.tensors]\n"
            "print('h5py' in sys.modules)")
    for rel in (("seed", "tf_keras", "model.h5"), ("seed", "keras3", "model.keras"),
                ("seed", "keras3", "sharded", "model.weights.json")):
        out = subprocess.run([sys.executable, "-c", code, str(fixture_path(*rel))], capture_output=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True, timeout=60)
        assert out.stdout.strip() == b"False", rel


def test_hdf5_memory_limit_is_a_one_line_error(tmp_path: Path) -> None:
    # 64 MiB of address space cannot even hold the interpreter with h5py: the worker fails, ckit says so.
    proc = _cli("dump", str(fixture_path("seed", "tf_keras", "weights.h5")), env={"CKIT_HDF5_MEMORY_MB": "64"})
    err = _one_line(proc)
    assert "weights.h5" in err and "CKIT_HDF5_MEMORY_MB" in err


def test_hdf5_time_limit_is_a_one_line_error(slow_h5: Path) -> None:
    # A file that takes the library about a second, under a limit of 0.01 s (0.03 s of wall time),
    # stands in for a file it loops on: the worker is killed and ckit says so.
    proc = _cli("dump", str(slow_h5), env={"CKIT_HDF5_TIMEOUT": "0.01"})
    err = _one_line(proc)
    assert "many.h5: the HDF5 library did not finish reading the file's structure within 0.03 s" in err
    assert "CKIT_HDF5_TIMEOUT" in err


def test_crashed_hdf5_worker_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    f = _hdf5.describe(_hdf5.Source(str(fixture_path("seed", "tf_keras", "weights.h5"))), "weights.h5",
                       keep_worker=True)
    worker = f.worker()
    assert worker._proc is not None
    os.kill(worker._proc.pid, signal.SIGSEGV)
    worker._proc.wait(timeout=10)
    # The next request meets the dead worker's closed pipe: the crash is named, not hidden.
    with pytest.raises(CorruptArtifact) as info:
        worker._read_exact(4, time.monotonic() + 5, "reading dataset 'x'", 5)
    assert "weights.h5: the HDF5 library crashed (SIGSEGV) while reading dataset 'x'" in str(info.value)
    f.close()


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.iterdir() if p.name != "README.md"))
def test_bad_fixtures_give_one_line_errors(name: str) -> None:
    """Files the fuzzer found crashing, hanging, exhausting memory or escaping as internal errors
    (fixtures/bad/README.md)."""
    start = time.monotonic()
    for command in ("dump", "verify"):
        proc = _cli(command, str(BAD / name), timeout=60)
        assert proc.returncode in (0, 1), (command, proc.returncode, proc.stderr[-300:])
        if proc.returncode:
            _one_line(proc)
    assert time.monotonic() - start < 50


# --------------------------------------------------------------------------- validate before allocating
def _safetensors(path: Path, header: dict, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_safetensors_dtype_that_is_not_a_string(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "x.safetensors", {"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}},
                        b"\0" * 4)
    with pytest.raises(UnsupportedFeature, match=r"tensor 'w' has dtype \['F32'\]; expected one of"):
        read_manifest(path)


def test_zero_element_tensor_with_a_huge_dimension_in_safetensors(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "x.safetensors", {"w": {"dtype": "F32", "shape": [0, 2**63 - 1], "data_offsets": [0, 0]}})
    with pytest.raises(CorruptArtifact, match=r"declares shape \[0, 9223372036854775807\].*more than any array can hold"):
        read_manifest(path)
    _one_line(_cli("verify", str(path)))


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    shutil.copytree(fixture_path("seed", "tf_keras", "ckpt"), tmp_path / "ckpt")
    return tmp_path / "ckpt" / "weights"


def test_zero_element_tensor_with_a_huge_dimension_in_a_checkpoint(ckpt: Path) -> None:
    entry = BundleEntryProto(dtype=1, shard_id=0, offset=0, size=0)
    entry.shape.dim.add(size=0)
    entry.shape.dim.add(size=2**63 - 1)
    _add_entry(ckpt, (b"huge", entry))
    err = _one_line(_cli("verify", str(ckpt)))
    assert "tensor 'huge' declares shape [0, 9223372036854775807]" in err


def test_one_tib_tensor_in_a_sparse_shard_is_refused_before_allocating(ckpt: Path) -> None:
    tib = 1 << 40
    entry = BundleEntryProto(dtype=1, shard_id=0, offset=0, size=tib)
    entry.shape.dim.add(size=tib // 4)
    _add_entry(ckpt, (b"big", entry))
    shard = ckpt.with_name("weights.data-00000-of-00001")
    with open(shard, "r+b") as fh:
        fh.truncate(tib)  # sparse: no disk used
    with open_artifact(ckpt) as reader:
        with pytest.raises(UnsupportedFeature, match=r"tensor 'big' is 1.0 TiB, more than this process can hold"):
            reader.read_tensor("big")
        # The same tensor streams in bounded pieces; its first piece arrives at once.
        pieces = reader.read_chunks("big", 1 << 18)
        assert next(pieces).nbytes == 1 << 20
        pieces.close()


# --------------------------------------------------------------------------- names that are not UTF-8
def test_checkpoint_key_that_is_not_utf8_is_escaped_in_tables_and_exact_in_json(ckpt: Path) -> None:
    entry = BundleEntryProto(dtype=1, shard_id=0, offset=0, size=4)
    entry.shape.dim.add(size=1)
    _add_entry(ckpt, (b"bad\xff\x1b[31mname", entry))
    manifest = read_manifest(ckpt)
    table = render_table(manifest)
    assert "bad\\xff\\x1b[31mname" in table
    table.encode("ascii")  # nothing unprintable reaches a terminal
    doc = json.loads(render_json(manifest))
    keys = [t["key"] for t in doc["tensors"]]
    assert "bad\udcff\x1b[31mname" in keys
    assert "bad\udcff\x1b[31mname".encode("utf-8", "surrogateescape") == b"bad\xff\x1b[31mname"
    for env in ({"LC_ALL": "C", "PYTHONIOENCODING": ""}, {"PYTHONIOENCODING": "utf-8"}):
        proc = _cli("dump", str(ckpt), env=env)
        assert proc.returncode == 0, proc.stderr
        assert b"bad\\xff\\x1b[31mname" in proc.stdout and b"\xff" not in proc.stdout
        proc = _cli("verify", str(ckpt), env=env)
        assert b"\xff" not in proc.stdout + proc.stderr and b"internal error" not in proc.stdout + proc.stderr


def test_escape_leaves_ordinary_names_alone() -> None:
    assert escape("dense_1/kernel:0 Ünïcode ✓") == "dense_1/kernel:0 Ünïcode ✓"
    assert escape("a\udc80b\ud800") == "a\\x80b\\ud800"


# --------------------------------------------------------------------------- streaming verification
def test_streamed_digest_equals_digest_of_the_array() -> None:
    from inspector.crc32c import crc32c

    for rel in (("seed", "tf_keras", "ckpt", "weights"), ("seed", "tf_keras", "model.h5"),
                ("seed", "keras3", "model.keras"), ("seed", "keras3", "model.weights.h5")):
        with open_artifact(fixture_path(*rel)) as reader:
            streamed = 0
            for t in reader.manifest.tensors:
                got = tensor_digest(reader, t.key, t.dtype, t.shape)
                if got is None:
                    continue
                value = reader.read_tensor(t.key)
                raw = memoryview(np.ascontiguousarray(value)).cast("B")
                assert got == (value.dtype.str, tuple(value.shape), crc32c(raw)), (rel, t.key)
                streamed += 1
            assert streamed, rel


def test_streamed_verify_catches_a_flipped_byte(ckpt: Path) -> None:
    shard = ckpt.with_name("weights.data-00000-of-00001")
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40
    shard.write_bytes(bytes(data))
    report = verify_artifact(ckpt)
    assert len(report.problems) == 1 and "CRC32C of tensor" in report.problems[0].message


# --------------------------------------------------------------------------- also: shards counted once
def test_truncated_shard_is_called_truncated_with_its_tensors_counted(ckpt: Path) -> None:
    ckpt.with_name("weights.data-00000-of-00001").write_bytes(b"")
    report = verify_artifact(ckpt)
    assert len(report.problems) == 1, report.problems
    assert report.problems[0].message.startswith("file is truncated (0 bytes, less than its tensors need), "
                                                 "so the 11 tensors stored in it (")


def test_missing_shard_is_one_line_with_its_tensors_counted(ckpt: Path) -> None:
    ckpt.with_name("weights.data-00000-of-00001").unlink()
    proc = _cli("verify", str(ckpt))
    entries: list[str] = []  # lines of one entry are wrapped to 80 columns: continuations are indented
    for line in proc.stdout.decode().splitlines():
        if line.startswith(" ") and entries:
            entries[-1] += " " + line.strip()
        else:
            entries.append(line)
    assert [e for e in entries if e.startswith("DAMAGED")] == entries[:1]
    assert "file is missing, so the 11 tensors stored in it (" in entries[0]


# --------------------------------------------------------------------------- symlinks
@pytest.fixture
def linked_saved_model(tmp_path: Path) -> Path:
    src = tmp_path / "sm"
    shutil.copytree(fixture_path("seed", "tf_keras", "saved_model"), src)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    data = src / "variables" / "variables.data-00000-of-00001"
    shutil.move(data, outside / data.name)
    data.symlink_to(outside / data.name)
    return src


def test_symlink_out_of_a_saved_model_is_refused(linked_saved_model: Path) -> None:
    with pytest.raises(UnsafeArtifact, match=r"variables.data-00000-of-00001: a symlink to .*elsewhere.* outside the "
                                             r"artifact's directory .*--follow-links"):
        read_manifest(linked_saved_model)
    err = _one_line(_cli("dump", str(linked_saved_model)))
    assert "--follow-links" in err
    proc = _cli("verify", "--follow-links", str(linked_saved_model))
    assert proc.returncode == 0, proc.stderr


def test_symlink_out_of_a_checkpoint_and_convert_refuses_it(tmp_path: Path, ckpt: Path) -> None:
    shard = ckpt.with_name("weights.data-00000-of-00001")
    moved = tmp_path / "moved.data"
    shutil.move(shard, moved)
    shard.symlink_to(moved)
    with pytest.raises(UnsafeArtifact):
        read_manifest(ckpt)
    out = tmp_path / "out.h5"
    proc = subprocess.run([sys.executable, "-m", "converters.cli", "convert", str(ckpt), str(out), "--to", "h5-weights"],
                          capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert proc.returncode == 1 and b"--follow-links" in proc.stderr and not out.exists()


def test_a_symlink_the_user_names_and_links_inside_the_artifact_are_fine(tmp_path: Path) -> None:
    link = tmp_path / "latest.h5"
    link.symlink_to(fixture_path("seed", "tf_keras", "weights.h5"))
    assert read_manifest(link).tensors
    src = tmp_path / "sm"
    shutil.copytree(fixture_path("seed", "tf_keras", "saved_model"), src)
    data = src / "variables" / "variables.data-00000-of-00001"
    shutil.move(data, src / "moved")
    data.symlink_to(src / "moved")
    assert read_manifest(src).tensors
    # A checkpoint named by its prefix: only its own files count, not a stray link beside it.
    ckpt = tmp_path / "ckpt"
    shutil.copytree(fixture_path("seed", "tf_keras", "ckpt"), ckpt)
    (ckpt / "notes.txt").symlink_to("/etc/hostname")
    assert read_manifest(ckpt / "weights").tensors
    assert links.FOLLOW is False


# --------------------------------------------------------------------------- signals
@pytest.fixture(scope="module")
def slow_h5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import h5py

    # Real HDF5 that takes the library a while to describe: many groups with attributes.
    path = tmp_path_factory.mktemp("slow") / "many.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"a"])
        for i in range(6000):
            g = f.create_group(f"g{i}")
            for j in range(4):
                g.attrs[f"a{j}"] = j
    return path


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_hdf5_parsing_ends_at_once_and_leaves_no_worker(slow_h5: Path, signum: int, code: int) -> None:
    path = slow_h5
    proc = subprocess.Popen([sys.executable, "-m", "inspector", "dump", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    deadline = time.monotonic() + 60
    worker = None
    while worker is None and time.monotonic() < deadline and proc.poll() is None:
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True).stdout.split()
        worker = int(children[0]) if children else None
        time.sleep(0.05)
    assert worker is not None, "the HDF5 worker never started"
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - sent < 1.5
    assert proc.returncode == code, err
    assert (b"terminated by signal 15" if signum == signal.SIGTERM else b"interrupted") in err
    time.sleep(0.2)
    assert not Path(f"/proc/{worker}").exists() or b"zombie" in Path(f"/proc/{worker}/status").read_bytes().lower()


# --------------------------------------------------------------------------- a missing Keras
def test_h5_model_from_keras_archive_without_keras_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['keras'] = None\n"
            "from converters.cli import main\n"
            "sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "x.h5"
    proc = subprocess.run([sys.executable, "-c", code, "convert", str(fixture_path("seed", "keras3", "model.keras")),
                           str(out), "--to", "h5-model"], capture_output=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    err = _one_line(proc)
    assert "needs the Python package 'keras'" in err and "pip install" in err
    assert not out.exists()


def test_bad_fixtures_are_documented() -> None:
    readme = (BAD / "README.md").read_text()
    for path in BAD.iterdir():
        if path.name != "README.md":
            assert path.name in readme, path.name


def test_streamed_digest_covers_every_dtype() -> None:
    """bfloat16, half, bool, int and complex tensors stream too: the same digest as the whole array
    (the buffer protocol knows no ml_dtypes format, so a memoryview cast would fail on bfloat16)."""
    from inspector.verify import array_digest, stored_digest

    with open_artifact(fixture_path("edge", "dtypes")) as reader:
        dtypes = set()
        for t in reader.manifest.tensors:
            if t.dtype == "string":
                continue
            got = tensor_digest(reader, t.key, t.dtype, t.shape)
            assert got is not None, t.key
            assert got == array_digest(np.asarray(reader.read_tensor(t.key))) == stored_digest(reader, t), t.key
            dtypes.add(t.dtype)
        assert "bfloat16" in dtypes and "float16" in dtypes, dtypes
