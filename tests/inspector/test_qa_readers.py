"""QA defects in the readers: each damaged copy of a real fixture gets a one-line, precise error."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.errors import ChecksumMismatch, CkitError, CorruptArtifact, MissingData, UnknownFormat
from inspector.formats.sstable import Table
from inspector.formats.tf_bundle import TF_CHECKPOINT, BundleReader
from inspector.protos import BundleEntryProto, BundleHeaderProto
from inspector.registry import detect, open_artifact, read_manifest
from inspector.verify import verify_artifact
from tests.conftest import fixture_path
from tests.inspector.test_read_tf_bundle import write_table


def _one_line_error(call, *args, **kwargs) -> CkitError:
    with pytest.raises(CkitError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


# --------------------------------------------------------------------------- 1. Keras 3 gaps and missing shards
@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    dst = tmp_path / "sharded"
    shutil.copytree(fixture_path("seed", "keras3", "sharded"), dst)
    return dst


def test_missing_keras3_shard_fails_verify_and_keeps_true_indices(sharded: Path) -> None:
    (sharded / "model_00000.weights.h5").unlink()
    manifest = read_manifest(sharded / "model.weights.json")
    absent = [s for s in manifest.shards if not s.present]
    assert [Path(s.path).name for s in absent] == ["model_00000.weights.h5"]
    assert any("shard model_00000.weights.h5 named in the weight_map is missing" in n and "/layers/dense/vars" in n
               for n in manifest.notes)
    dense = [t for t in manifest.tensors if t.layer == "dense"]
    # The kernel is gone; the bias keeps its own position and name: nothing is renumbered.
    assert [(t.name, t.index) for t in dense] == [("dense/bias", 1)]
    report = verify_artifact(sharded / "model.weights.json")
    assert not report.ok
    assert [(Path(p.key).name, p.message.split(",")[0]) for p in report.problems] == [
        ("model_00000.weights.h5", "file is missing")]


def _delete(path: Path, dataset: str) -> None:
    with h5py.File(path, "r+") as f:
        del f[dataset]


def test_weights_h5_with_a_gap_in_vars_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.weights.h5"
    shutil.copy(fixture_path("seed", "keras3", "model.weights.h5"), path)
    _delete(path, "layers/dense/vars/0")
    err = _one_line_error(open_artifact, path)
    assert isinstance(err, CorruptArtifact)
    assert "group '/layers/dense/vars' has no dataset '/layers/dense/vars/0' but holds '/layers/dense/vars/1'" in str(err)
    assert "expected consecutive datasets 0..1" in str(err)


def _keras_with_damaged_weights(tmp_path: Path, dataset: str) -> Path:
    src = fixture_path("seed", "keras3", "model.keras")
    member = tmp_path / "member.h5"
    with zipfile.ZipFile(src) as zin:
        member.write_bytes(zin.read("model.weights.h5"))
        _delete(member, dataset)
        dst = tmp_path / "damaged.keras"
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
            for info in zin.infolist():
                data = member.read_bytes() if info.filename == "model.weights.h5" else zin.read(info.filename)
                zout.writestr(info.filename, data)
    return dst


def test_keras_archive_with_a_gap_is_refused(tmp_path: Path) -> None:
    path = _keras_with_damaged_weights(tmp_path, "layers/dense/vars/0")
    err = _one_line_error(open_artifact, path)
    assert "group '/layers/dense/vars' has no dataset '/layers/dense/vars/0'" in str(err)


def test_keras_archive_with_too_few_variables_is_refused(tmp_path: Path) -> None:
    path = _keras_with_damaged_weights(tmp_path, "layers/dense/vars/1")
    err = _one_line_error(open_artifact, path)
    assert isinstance(err, CorruptArtifact)
    assert ("group '/layers/dense/vars' holds 1 variable(s) but the config's Dense layer 'dense' has 2 (kernel, bias)"
            in str(err))


def test_shard_presence_is_true_for_complete_artifacts() -> None:
    for rel in (("seed", "tf_keras", "ckpt", "weights"), ("seed", "keras3", "sharded", "model.weights.json"),
                ("seed", "keras3", "model.keras"), ("seed", "tf_keras", "saved_model")):
        manifest = read_manifest(fixture_path(*rel))
        assert manifest.shards and all(s.present for s in manifest.shards), rel


def test_missing_tf_data_shard_fails_verify(tmp_path: Path) -> None:
    shutil.copytree(fixture_path("seed", "tf_keras", "ckpt"), tmp_path / "ckpt")
    (tmp_path / "ckpt" / "weights.data-00000-of-00001").unlink()
    manifest = read_manifest(tmp_path / "ckpt" / "weights")
    assert [s.present for s in manifest.shards] == [False]
    report = verify_artifact(tmp_path / "ckpt" / "weights")
    assert any(p.key.endswith("weights.data-00000-of-00001") and p.message.startswith("file is missing, so the 11 tensors stored in it")
               for p in report.problems)


# --------------------------------------------------------------------------- 2. CRC-32 of a stored .keras member
def _member_span(path: Path) -> tuple[int, int]:
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.weights.h5")
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_flipped_byte_in_stored_keras_member_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    shutil.copy(fixture_path("seed", "keras3", "model.keras"), path)
    start, size = _member_span(path)
    with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as f:
        kernel_offset = f["layers/dense/vars/0"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[start + kernel_offset + 1000] ^= 0x40
    path.write_bytes(bytes(data))
    manifest = read_manifest(path)  # listing does not pay for the checksum
    assert manifest.tensors
    with open_artifact(path) as reader:
        with pytest.raises(ChecksumMismatch, match=r"model\.keras: CRC-32 of archive member model\.weights\.h5 is "
                                                   r"0x[0-9a-f]{8}; expected 0x[0-9a-f]{8} from the zip directory"):
            reader.read_tensor(manifest.tensors[0].key)
        with pytest.raises(ChecksumMismatch, match="CRC-32 of archive member"):  # every later read too
            reader.read_tensor(manifest.tensors[1].key)
    report = verify_artifact(path)
    assert len(report.problems) == 1 and "CRC-32 of archive member model.weights.h5" in report.problems[0].message


def test_intact_keras_archive_verifies_with_checksums() -> None:
    report = verify_artifact(fixture_path("seed", "keras3", "model.keras"))
    assert report.ok and report.checksums and report.notes == ()


# --------------------------------------------------------------------------- 3./4. bundle index sizes
def _rewrite_index(prefix: Path, edit) -> None:
    index = prefix.with_name(prefix.name + ".index")
    items = [(bytes(k), bytes(v)) for k, v in Table.open(index).items()]
    write_table(index, edit(items))


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    shutil.copytree(fixture_path("seed", "tf_keras", "ckpt"), tmp_path / "ckpt")
    return tmp_path / "ckpt" / "weights"


def test_absurd_num_shards_is_refused(ckpt: Path) -> None:
    def edit(items):
        out = []
        for key, value in items:
            if key == b"":
                header = BundleHeaderProto()
                header.ParseFromString(value)
                header.num_shards = 2**31 - 1
                value = header.SerializeToString()
            out.append((key, value))
        return out

    _rewrite_index(ckpt, edit)
    err = _one_line_error(TF_CHECKPOINT.open, ckpt)
    assert isinstance(err, CorruptArtifact)
    assert "header says 2147483647 data shards but the index has only" in str(err)
    assert "expected at most" in str(err)


def _add_entry(ckpt: Path, *entries: tuple[bytes, BundleEntryProto]) -> None:
    _rewrite_index(ckpt, lambda items: items + [(k, e.SerializeToString()) for k, e in entries])


def test_string_tensor_claiming_more_elements_than_bytes(ckpt: Path) -> None:
    entry = BundleEntryProto(dtype=7, shard_id=0, offset=0, size=10)
    entry.shape.dim.add(size=2**31)
    _add_entry(ckpt, (b"bomb", entry))
    with TF_CHECKPOINT.open(ckpt) as reader:
        err = _one_line_error(reader.read_tensor, "bomb")
    assert isinstance(err, CorruptArtifact)
    assert "string tensor 'bomb' claims shape [2147483648] (2147483648 elements) but stores only 10 bytes" in str(err)


def _sliced_entry(shape: tuple[int, ...]) -> BundleEntryProto:
    entry = BundleEntryProto(dtype=1)
    for d in shape:
        entry.shape.dim.add(size=d)
    piece = entry.slices.add()
    for _ in shape:
        piece.extent.add()  # no length: the full dimension
    return entry


def test_sliced_entry_without_slice_is_refused_before_allocating(ckpt: Path) -> None:
    _add_entry(ckpt, (b"huge", _sliced_entry((2**24, 784))))
    with TF_CHECKPOINT.open(ckpt) as reader:
        err = _one_line_error(reader.read_tensor, "huge")
    assert isinstance(err, CorruptArtifact)
    assert "slice [(0, -1), (0, -1)] of partitioned variable 'huge' has no entry" in str(err)


def test_sliced_entry_with_short_slice_is_refused_before_allocating(ckpt: Path) -> None:
    from inspector.formats.tf_bundle import slice_key

    sub = BundleEntryProto(dtype=1, shard_id=0, offset=0, size=16)
    sub.shape.dim.add(size=2**24)
    sub.shape.dim.add(size=784)
    _add_entry(ckpt, (b"huge", _sliced_entry((2**24, 784))), (slice_key(b"huge", [(0, -1), (0, -1)]), sub))
    with TF_CHECKPOINT.open(ckpt) as reader:
        err = _one_line_error(reader.read_tensor, "huge")
    assert "slice [(0, -1), (0, -1)] of 'huge' stores 16 bytes; expected 52613349376 for float32 [16777216, 784]" in str(err)


# --------------------------------------------------------------------------- 5. SavedModel without variables/
def test_saved_model_without_variables_fails_verify(tmp_path: Path) -> None:
    dst = tmp_path / "sm"
    shutil.copytree(fixture_path("seed", "tf_keras", "saved_model"), dst)
    shutil.rmtree(dst / "variables")
    manifest = read_manifest(dst)
    assert [(Path(s.path).name, s.present) for s in manifest.shards] == [("variables.index", False)]
    assert any("variables/variables.index is missing but saved_model.pb has 14 variable(s)" in n for n in manifest.notes)
    report = verify_artifact(dst)
    assert not report.ok
    assert report.problems[0].key.endswith("variables/variables.index")
    assert "file is missing, so the tensors stored in it cannot be read" in report.problems[0].message


# --------------------------------------------------------------------------- 6. null dataspace, deep JSON
def test_null_dataspace_dataset(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    shutil.copy(fixture_path("seed", "tf_keras", "weights.h5"), path)
    with h5py.File(path, "r+") as f:
        f.create_dataset("x", shape=None, dtype="f4")
    err = _one_line_error(open_artifact, path)
    assert isinstance(err, CorruptArtifact)
    assert "dataset '/x' has a null dataspace (no shape and no data, h5py.Empty); expected an array of weights" in str(err)


def test_deeply_nested_safetensors_header(tmp_path: Path) -> None:
    path = tmp_path / "deep.safetensors"
    header = b"[" * 100000
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    err = _one_line_error(open_artifact, path)
    assert isinstance(err, CorruptArtifact) and "the header nests JSON too deeply to parse" in str(err)


def test_deeply_nested_weight_map(tmp_path: Path) -> None:
    path = tmp_path / "model.weights.json"
    path.write_bytes(b"[" * 100000)
    err = _one_line_error(open_artifact, path)
    assert isinstance(err, CorruptArtifact) and "JSON nested too deeply to parse" in str(err)


# --------------------------------------------------------------------------- 7. detection keeps the precise error
def test_truncated_index_given_as_prefix(ckpt: Path) -> None:
    index = ckpt.with_name("weights.index")
    index.write_bytes(index.read_bytes()[:-60])
    assert detect(ckpt).name == "tf-checkpoint"
    err = _one_line_error(open_artifact, ckpt)
    assert "weights.index: footer magic is" in str(err)


def test_junk_appended_index_given_as_directory(ckpt: Path) -> None:
    index = ckpt.with_name("weights.index")
    index.write_bytes(index.read_bytes() + b"junk" * 10)
    assert detect(ckpt.parent).name == "tf-checkpoint"
    err = _one_line_error(open_artifact, ckpt.parent)
    assert "weights.index: footer magic is" in str(err)


def test_checkpoint_file_naming_a_missing_prefix(ckpt: Path) -> None:
    (ckpt.parent / "checkpoint").write_text('model_checkpoint_path: "gone"\n')
    err = _one_line_error(open_artifact, ckpt.parent)
    assert isinstance(err, MissingData) and "no index file" in str(err) and "gone.index" in str(err)


def test_directory_with_two_index_files(ckpt: Path) -> None:
    (ckpt.parent / "checkpoint").unlink()
    shutil.copy(ckpt.with_name("weights.index"), ckpt.with_name("other.index"))
    err = _one_line_error(open_artifact, ckpt.parent)
    assert "directory has 2 .index files; expected a checkpoint directory with a 'checkpoint' file" in str(err)


def test_other_data_file_name_targets_checkpoint(ckpt: Path) -> None:
    data = ckpt.with_name("weights.data-00000-of-00002")
    data.write_bytes(b"x")
    ckpt.with_name("weights.index").unlink()
    assert detect(data).name == "tf-checkpoint"
    err = _one_line_error(open_artifact, data)
    assert "no index file" in str(err)


@pytest.mark.parametrize("name, message", [
    ("x.h5", "x.h5: is a directory; expected a file, a Keras .h5 weights or model file"),
    ("x.keras", "x.keras: is a directory; expected a file, a Keras .keras archive"),
    ("x.weights.h5", "x.weights.h5: is a directory; expected a file, a Keras 3 weights file"),
    ("x.safetensors", "x.safetensors: is a directory; expected a file, a safetensors file"),
    ("x.weights.json", "x.weights.json: is a directory; expected a file, a Keras 3 sharded weights index"),
])
def test_directory_named_like_a_file(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / name).mkdir()
    err = _one_line_error(open_artifact, tmp_path / name)
    assert message in str(err)


def test_plain_directory(tmp_path: Path) -> None:
    err = _one_line_error(open_artifact, tmp_path)
    assert isinstance(err, UnknownFormat) and "a directory with no saved_model.pb" in str(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("fmt", [None, "h5-weights", "safetensors", "keras3-model", "keras3-weights", "tf-checkpoint"])
def test_fifo_never_blocks(tmp_path: Path, fmt: str | None) -> None:
    path = tmp_path / "pipe.h5"
    os.mkfifo(path)
    err = _one_line_error(open_artifact, path, fmt)
    assert "not a regular file or directory (a FIFO, socket or device)" in str(err)


def test_damaged_keras2_weights_wording(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    path.write_bytes(fixture_path("seed", "tf_keras", "weights.h5").read_bytes()[:5000])
    err = _one_line_error(open_artifact, path)
    assert "expected a Keras .h5 weights or model file" in str(err)


# --------------------------------------------------------------------------- 8. big-endian HDF5
def test_big_endian_dataset_reads_little_endian(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    shutil.copy(fixture_path("seed", "tf_keras", "weights.h5"), path)
    with h5py.File(path, "r+") as f:
        key = "dense/dense/kernel:0"
        value = f[key][()]
        del f[key]
        f.create_dataset(key, data=value.astype(">f4"))
    with open_artifact(path) as reader:
        info = reader.manifest[f"/{key}"]
        assert info.dtype == "float32"
        got = reader.read_tensor(f"/{key}")
    assert got.dtype.str == "<f4"
    assert got.tobytes() == value.astype("<f4").tobytes()


# --------------------------------------------------------------------------- 9. verify says what it cannot check
@pytest.mark.parametrize("rel", [("seed", "tf_keras", "weights.h5"), ("seed", "tf_keras", "model.h5"),
                                 ("seed", "keras3", "model.weights.h5")])
def test_verify_on_hdf5_says_there_are_no_checksums(rel) -> None:
    report = verify_artifact(fixture_path(*rel))
    assert report.ok and report.checksums is False
    assert report.notes == ("HDF5 keeps no checksums for these datasets: damage inside tensor data cannot be detected",)
    assert report.to_json()["checksums"] is False and report.to_json()["notes"] == list(report.notes)


def test_verify_on_checkpoint_has_checksums() -> None:
    report = verify_artifact(fixture_path("seed", "tf_keras", "ckpt", "weights"))
    assert report.ok and report.checksums is True and report.notes == ()


def test_one_shard_opened_alone_points_at_the_index() -> None:
    err = _one_line_error(open_artifact, fixture_path("seed", "keras3", "sharded", "model_00001.weights.h5"))
    assert "group '/layers/dense/vars' has no dataset '/layers/dense/vars/0'" in str(err)
    assert "this looks like one shard of a sharded save: open its .weights.json index instead" in str(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_in_place_of_index_or_data_never_blocks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "w.index")
    err = _one_line_error(open_artifact, tmp_path / "w")
    assert "w.index: not a regular file (a FIFO, socket or device); expected the '.index' file" in str(err)
    shutil.copytree(fixture_path("seed", "tf_keras", "ckpt"), tmp_path / "ckpt")
    data = tmp_path / "ckpt" / "weights.data-00000-of-00001"
    data.unlink()
    os.mkfifo(data)
    manifest = read_manifest(tmp_path / "ckpt" / "weights")
    assert [s.present for s in manifest.shards] == [False]
    report = verify_artifact(tmp_path / "ckpt" / "weights")
    assert any("data shard 0 is not a regular file" in p.message for p in report.problems)
