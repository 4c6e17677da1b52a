"""The tensor-bundle reader against TensorFlow's own reader, plus hand-made damaged bundles."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, fixture_path
from inspector.crc32c import crc32c, mask
from inspector.errors import ChecksumMismatch, CorruptArtifact, MissingData, UnsupportedFeature
from inspector.formats.sstable import TABLE_MAGIC, Table
from inspector.formats.tf_bundle import TF_CHECKPOINT, BundleReader, resolve_prefix, slice_key
from inspector.protos import BundleEntryProto, BundleHeaderProto

CHECKPOINTS = [
    "seed/tf_keras/ckpt/weights",
    "cnn/tf_keras/ckpt/weights",
    "lstm/tf_keras/ckpt/weights",
    "edge/dtypes/ckpt-1",
    "edge/multi_shard/ckpt-1",
    "edge/multi_shard_sliced/ckpt-1",
    "edge/subclassed/weights",
    "edge/tf1_partitioned/model.ckpt-42",
    "edge/keras3_tf_checkpoint/ckpt-1",
    "edge/legacy_optimizer/ckpt/weights",
    "seed/tf_keras/saved_model/variables/variables",
    "cnn/tf_keras/saved_model/variables/variables",
    "lstm/tf_keras/saved_model/variables/variables",
    "seed/keras3/export/variables/variables",
]
_TF_NAMES = {"half": "float16", "bool": "bool"}


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


@pytest.mark.parametrize("relative", CHECKPOINTS)
def test_matches_tensorflow_reader(relative, tf):
    prefix = fixture_path(*relative.split("/"))
    oracle = tf.train.load_checkpoint(str(prefix))
    shapes = oracle.get_variable_to_shape_map()
    dtypes = oracle.get_variable_to_dtype_map()
    with TF_CHECKPOINT.open(prefix) as reader:
        manifest = reader.manifest
        assert sorted(t.key for t in manifest) == sorted(shapes)
        for tensor in manifest:
            assert tensor.shape == tuple(shapes[tensor.key]), tensor.key
            assert tensor.dtype == _TF_NAMES.get(dtypes[tensor.key].name, dtypes[tensor.key].name), tensor.key
            ours = reader.read_tensor(tensor.key)
            theirs = oracle.get_tensor(tensor.key)
            assert ours.shape == tuple(shapes[tensor.key])
            if tensor.dtype == "string":
                assert ours.reshape(-1).tolist() == np.asarray(theirs, dtype=object).reshape(-1).tolist()
            else:
                theirs = np.asarray(theirs)
                assert ours.dtype == theirs.dtype, tensor.key
                assert ours.tobytes() == theirs.tobytes(), tensor.key  # bit-identical, NaNs included
        assert all(s.present for s in manifest.shards)
        assert manifest.notes == () or all("read as the checkpoint prefix" not in n for n in manifest.notes)


def test_multi_shard_lists_every_shard():
    with TF_CHECKPOINT.open(fixture_path("edge", "multi_shard", "ckpt-1")) as reader:
        manifest = reader.manifest
    assert len(manifest.shards) == 3 and manifest.metadata["num_shards"] == 3


def test_partitioned_variable_listed_once_with_full_shape():
    with TF_CHECKPOINT.open(fixture_path("edge", "tf1_partitioned")) as reader:
        keys = [t.key for t in reader.manifest]
        assert all(k.isprintable() for k in keys), keys  # no binary slice keys
        assert reader.manifest.producer["framework"] == "tensorflow (TF1 Saver)"
        assert reader.manifest["global_step"].role == "counter"
        partitioned = reader.manifest.metadata["partitioned_variables"]
        assert partitioned and reader.read_tensor(partitioned[0]).shape == reader.manifest[partitioned[0]].shape


@pytest.mark.parametrize(
    "model, expected_layers",
    [
        ("seed", ["dense", "dense_1"]),
        ("cnn", ["conv2d", "batch_normalization", "conv2d_1", "batch_normalization_1", "layer_with_weights-4"]),
        ("lstm", ["embedding", "lstm", "dense"]),
    ],
)
def test_roles_layers_and_order_follow_hdf5_weight_names(model, expected_layers):
    h5py = pytest.importorskip("h5py")
    manifest = TF_CHECKPOINT.open(fixture_path(model, "tf_keras", "ckpt")).manifest
    assert manifest.producer["framework"] == "tf_keras"
    assert manifest.metadata["object_graph_nodes"] > 0
    assert manifest["_CHECKPOINTABLE_OBJECT_GRAPH"].role == "metadata"
    with h5py.File(fixture_path(model, "tf_keras", "weights.h5"), "r") as h5:
        h5_layers = []
        for name in h5.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            weight_names = [w.decode() if isinstance(w, bytes) else w for w in h5[name].attrs["weight_names"]]
            if weight_names:
                h5_layers.append((name, [(w.split(":")[0], h5[name][w].shape) for w in weight_names]))
    ours = manifest.layer_weights()
    assert len(ours) == len(h5_layers)
    # Weight names follow the h5 file (tf_keras uniquifies layer names per process, so compare suffixes).
    for (layer, tensors), (h5_name, h5_weights) in zip(ours, h5_layers):
        assert [t.index for t in tensors] == list(range(len(tensors)))
        assert [t.name.split("/")[-1] for t in tensors] == [w.split("/")[-1] for w, _ in h5_weights], layer
        assert [t.shape for t in tensors] == [tuple(shape) for _, shape in h5_weights], layer
    assert len(manifest.layers) == len(expected_layers)
    for ours_name, want in zip(manifest.layers, expected_layers):
        if not want.startswith("layer_with_weights"):
            assert ours_name.rstrip("_0123456789") == want.rstrip("_0123456789")
        else:
            assert ours_name == want
    optimizer = manifest.by_role("optimizer")
    assert optimizer and all(t.key.startswith("optimizer/") for t in optimizer)


def test_keras3_weights_found_through_the_graph_not_the_key():
    manifest = TF_CHECKPOINT.open(fixture_path("edge", "keras3_tf_checkpoint")).manifest
    assert manifest.producer["framework"] == "keras3"
    weights = manifest.by_role("weight")
    assert weights and all(t.key.startswith("optimizer/_trainable_variables/") for t in weights)
    assert list(manifest.layers) == ["dense", "dense_1"]
    assert manifest["save_counter/.ATTRIBUTES/VARIABLE_VALUE"].role == "counter"


def test_legacy_optimizer_slots_are_optimizer_state():
    manifest = TF_CHECKPOINT.open(fixture_path("edge", "legacy_optimizer", "ckpt")).manifest
    slots = [t for t in manifest if ".OPTIMIZER_SLOT" in t.key]
    assert slots and all(t.role == "optimizer" for t in slots)


def test_subclassed_model_layers_from_attributes():
    manifest = TF_CHECKPOINT.open(fixture_path("edge", "subclassed")).manifest
    assert manifest.layers and all(t.layer for t in manifest.by_role("weight"))


@pytest.mark.parametrize("form", ["prefix", "index", "data", "directory"])
def test_path_forms(form):
    prefix = fixture_path("seed", "tf_keras", "ckpt", "weights")
    path = {
        "prefix": prefix,
        "index": prefix.with_name("weights.index"),
        "data": prefix.with_name("weights.data-00000-of-00001"),
        "directory": prefix.parent,
    }[form]
    assert resolve_prefix(path) == prefix
    assert TF_CHECKPOINT.sniff(path)
    assert TF_CHECKPOINT.open(path).manifest.path == str(prefix)


def test_checkpoint_file_with_absolute_path(tmp_path):
    src = fixture_path("seed", "tf_keras", "ckpt")
    for f in src.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "checkpoint").write_text(f'model_checkpoint_path: "{tmp_path / "weights"}"\n')
    assert resolve_prefix(tmp_path) == tmp_path / "weights"


def test_sniff_is_false_for_foreign_files(tmp_path):
    (tmp_path / "x.index").write_bytes(b"not a table at all" * 10)
    assert not TF_CHECKPOINT.sniff(tmp_path / "x.index")
    assert not TF_CHECKPOINT.sniff(tmp_path / "nothing")
    assert not TF_CHECKPOINT.sniff(fixture_path("seed", "tf_keras", "weights.h5"))


# -- hand-made bundles ----------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def write_table(path: Path, items: list[tuple[bytes, bytes]], snappy: bool = False) -> None:
    """A minimal LevelDB table writer (one data block, restart interval 1) for crafting bad inputs."""

    def block(entries):
        body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
        restarts = []
        pos = 0
        for k, v in entries:
            restarts.append(pos)
            pos += len(_varint(0) + _varint(len(k)) + _varint(len(v))) + len(k) + len(v)
        return body + b"".join(struct.pack("<I", r) for r in restarts or [0]) + struct.pack("<I", len(restarts) or 1)

    out = bytearray()

    def emit(contents: bytes, compress: bool) -> bytes:
        kind = 0
        if compress:
            import cramjam

            contents, kind = bytes(cramjam.snappy.compress_raw(contents)), 1
        handle = _varint(len(out)) + _varint(len(contents))
        out.extend(contents)
        out.append(kind)
        out.extend(struct.pack("<I", mask(crc32c(contents + bytes([kind])))))
        return handle

    data_handle = emit(block(sorted(items)), snappy)
    meta_handle = emit(block([]), False)
    index_handle = emit(block([(max(k for k, _ in items) + b"\xff", data_handle)]), False)
    footer = (meta_handle + index_handle).ljust(40, b"\x00") + struct.pack("<Q", TABLE_MAGIC)
    out.extend(footer)
    path.write_bytes(bytes(out))


def make_bundle(tmp_path: Path, tensors: dict[bytes, np.ndarray], snappy: bool = False, endianness: int = 0) -> Path:
    prefix = tmp_path / "hand"
    data = bytearray()
    items = []
    codes = {"float32": 1, "int32": 3, "float64": 2}
    for key, value in tensors.items():
        raw = np.ascontiguousarray(value).tobytes()
        entry = BundleEntryProto(dtype=codes[value.dtype.name], offset=len(data), size=len(raw), crc32c=mask(crc32c(raw)))
        for d in value.shape:
            entry.shape.dim.add(size=d)
        data.extend(raw)
        items.append((key, entry.SerializeToString()))
    header = BundleHeaderProto(num_shards=1, endianness=endianness)
    header.version.producer = 1
    items.append((b"", header.SerializeToString()))
    write_table(prefix.with_name("hand.index"), items, snappy=snappy)
    prefix.with_name("hand.data-00000-of-00001").write_bytes(bytes(data))
    return prefix


def test_hand_made_bundle_and_snappy(tmp_path):
    for snappy in (False, True):
        prefix = make_bundle(tmp_path, {b"a": np.arange(6, dtype=np.float32).reshape(2, 3), b"b": np.int32([7])}, snappy)
        with TF_CHECKPOINT.open(prefix) as reader:
            assert reader.manifest.producer["framework"] == "tensorflow (TF1 Saver)"
            assert reader.read_tensor("a").tolist() == [[0, 1, 2], [3, 4, 5]]
            assert reader.read_tensor("b").tolist() == [7]


def test_non_utf8_key_does_not_crash(tmp_path):
    prefix = make_bundle(tmp_path, {b"ok": np.float32([1]), b"bad\xff\xfe": np.float32([2])})
    with TF_CHECKPOINT.open(prefix) as reader:
        key = next(t.key for t in reader.manifest if t.key != "ok")
        assert reader.read_tensor(key).tolist() == [2.0]
        reader.manifest.to_json()


def test_slice_key_encoding_matches_tensorflow():
    raw = [k for k, _ in Table.open(fixture_path("edge", "tf1_partitioned", "model.ckpt-42.index")).items() if k[:1] == b"\x00"]
    reader = BundleReader(fixture_path("edge", "tf1_partitioned", "model.ckpt-42"))
    ours = set()
    for key in reader.keys():
        for piece in reader.entries[key].slices:
            ours.add(slice_key(key, [(start, length) if length is not None else (0, -1) for start, length in piece]))
    assert ours == set(raw)
    assert slice_key(b"x", [(0, -1), (1000, 70000), (-5, 3)])  # multi-byte and negative paths run


def test_big_endian_refused(tmp_path):
    prefix = make_bundle(tmp_path, {b"a": np.float32([1])}, endianness=1)
    with pytest.raises(UnsupportedFeature, match=r"hand\.index: bundle is big-endian; ckit reads little-endian"):
        TF_CHECKPOINT.open(prefix)


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    src = fixture_path("seed", "tf_keras", "ckpt")
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    return dst / "weights"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"weights\.index: file is empty; expected a LevelDB-format table"),
        (b"\x00" * 20, r"weights\.index: file is 20 bytes, shorter than the 48-byte table footer"),
        (os.urandom(4096), r"weights\.index: footer magic is 0x[0-9a-f]{16}; expected 0xdb4775248b80fb57"),
    ],
)
def test_bad_index_files(seed_copy, content, message):
    seed_copy.with_name("weights.index").write_bytes(content)
    with pytest.raises(CorruptArtifact, match=message):
        TF_CHECKPOINT.open(seed_copy)


def test_truncated_index(seed_copy):
    index = seed_copy.with_name("weights.index")
    index.write_bytes(index.read_bytes()[:-60])
    with pytest.raises(CorruptArtifact, match=r"weights\.index: footer magic is .*; expected 0xdb4775248b80fb57"):
        TF_CHECKPOINT.open(seed_copy)


def test_flipped_byte_in_index(seed_copy):
    index = seed_copy.with_name("weights.index")
    data = bytearray(index.read_bytes())
    data[10] ^= 0x01
    index.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch, match=r"weights\.index: CRC32C of data block 0 at offset 0 is 0x[0-9a-f]{8}; expected"):
        TF_CHECKPOINT.open(seed_copy)


def test_bad_offset_in_index(seed_copy):
    # Footer handle pointing past the end: bounds are checked before any read.
    index = seed_copy.with_name("weights.index")
    data = bytearray(index.read_bytes())
    footer = _varint(0) + _varint(10) + _varint(1 << 40) + _varint(100)
    data[-48:-8] = footer.ljust(40, b"\x00")
    index.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifact, match=r"index block at offset 1099511627776 with size 100 .* runs past the table"):
        TF_CHECKPOINT.open(seed_copy)


def test_flipped_byte_in_data(seed_copy):
    shard = seed_copy.with_name("weights.data-00000-of-00001")
    reader = BundleReader(seed_copy)
    key = b"layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"
    offset = reader.entries[key].offset
    reader.close()
    data = bytearray(shard.read_bytes())
    data[offset + 5] ^= 0x40
    shard.write_bytes(bytes(data))
    with TF_CHECKPOINT.open(seed_copy) as reader:
        reader.read_tensor("layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE")  # others still read
        with pytest.raises(
            ChecksumMismatch,
            match=r"weights\.data-00000-of-00001: CRC32C of tensor 'layer_with_weights-0/kernel/\.ATTRIBUTES/VARIABLE_VALUE' is",
        ):
            reader.read_tensor(key.decode())


def test_missing_shard_lists_everything(seed_copy):
    seed_copy.with_name("weights.data-00000-of-00001").unlink()
    with TF_CHECKPOINT.open(seed_copy) as reader:
        manifest = reader.manifest
        assert len(manifest) == 11
        assert manifest.shards[0].present is False
        assert any("weights.data-00000-of-00001 is missing" in n for n in manifest.notes)
        with pytest.raises(MissingData, match=r"weights\.data-00000-of-00001: data shard 0 of 1 is missing; tensor '.*' is stored"):
            reader.read_tensor("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")


def test_short_shard(seed_copy):
    shard = seed_copy.with_name("weights.data-00000-of-00001")
    shard.write_bytes(shard.read_bytes()[:1000])
    with TF_CHECKPOINT.open(seed_copy) as reader:
        assert any("truncated" in n for n in reader.manifest.notes)
        with pytest.raises(MissingData, match=r"weights\.data-00000-of-00001: data shard is 1000 bytes but tensor"):
            for tensor in reader.manifest:
                reader.read_tensor(tensor.key)


def test_missing_index(tmp_path):
    with pytest.raises(MissingData, match=r"nope: no index file .*nope\.index; expected a TensorFlow checkpoint"):
        TF_CHECKPOINT.open(tmp_path / "nope")


def test_directory_without_checkpoint_file(tmp_path):
    with pytest.raises(MissingData, match=r"directory has no 'checkpoint' file and no \.index file"):
        TF_CHECKPOINT.open(tmp_path)


def test_read_returns_small_arrays_not_the_shard():
    with TF_CHECKPOINT.open(fixture_path("seed", "tf_keras", "ckpt")) as reader:
        array = reader.read_tensor("layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE")
        base = array.base
        while getattr(base, "base", None) is not None:
            base = base.base
        assert len(memoryview(base).cast("B")) == array.nbytes
    np.testing.assert_array_equal(array, array.copy())  # still valid after close


def test_dump_without_tensorflow_or_h5py(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["tensorflow"] = None
        sys.modules["keras"] = None
        sys.modules["tf_keras"] = None
        sys.path.insert(0, {str(ROOT)!r})
        from inspector import open_artifact
        with open_artifact({str(fixture_path("cnn", "tf_keras", "ckpt"))!r}) as reader:
            for tensor in reader.manifest:
                reader.read_tensor(tensor.key)
        with open_artifact({str(fixture_path("seed", "tf_keras", "saved_model"))!r}) as reader:
            for tensor in reader.manifest:
                reader.read_tensor(tensor.key)
        loaded = [m for m in ("tensorflow", "keras", "tf_keras", "h5py") if sys.modules.get(m) is not None]
        assert not loaded, loaded
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
