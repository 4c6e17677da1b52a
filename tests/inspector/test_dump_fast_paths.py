"""The fast paths of `dump` on large checkpoints (issue 10) against the plain code they stand for.

Each shortcut (natural keys encoded as strings, the table built a column at a time, TensorInfos
built without `__post_init__`, a manifest already in key order left unsorted, shape checks cached
per distinct shape) must give exactly what the general way gives, on the real fixtures and on the
inputs that force the general way.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path

import pytest

from inspector.errors import CorruptArtifact
from inspector.formats.tf_bundle import BundleReader, bundle_tensors, key_text
from inspector.manifest import Manifest, TensorInfo, trusted_tensor
from inspector.naturalsort import natural_key, natural_keys
from inspector.protos import BundleEntryProto
from inspector.registry import read_manifest
from inspector.render import escape, human_bytes, render_table
from tests.conftest import FIXTURES, fixture_path
from tests.inspector.test_qa_readers import _add_entry

INDEXES = sorted(p for p in FIXTURES.rglob("*.index") if "bad" not in p.parts)
SAVED_MODELS = sorted(p.parent for p in FIXTURES.rglob("saved_model.pb") if "bad" not in p.parts)


def _prefix(index: Path) -> str:
    return str(index)[: -len(".index")]


def _manifests() -> list[Manifest]:
    return [read_manifest(_prefix(p)) for p in INDEXES] + [read_manifest(p) for p in SAVED_MODELS]


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    return _manifests()


# -- natural order --------------------------------------------------------------------------------
def _natural_order(texts: list[str]) -> list[int]:
    return sorted(range(len(texts)), key=lambda i: natural_key(texts[i]))


def _fast_order(texts: list[str]) -> list[int]:
    keys = natural_keys(texts)
    return sorted(range(len(texts)), key=keys.__getitem__)


def test_natural_keys_order_fixture_keys_as_natural_key(manifests):
    for manifest in manifests:
        keys = [t.key for t in manifest.tensors]
        assert all(isinstance(k, str) for k in natural_keys(keys)) or not keys  # the string encoding
        assert _fast_order(keys) == _natural_order(keys), manifest.path


def test_natural_keys_order_random_texts_as_natural_key():
    rng = random.Random(10)
    alphabet = ["0", "00", "1", "2", "9", "10", "007", "99999999999999999999", "a", "b", "/", "_", " ", "~", "-"]
    for _ in range(300):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(6))) for _ in range(rng.randrange(1, 40))]
        assert isinstance(natural_keys(texts)[0], str)
        assert _fast_order(texts) == _natural_order(texts), texts
        # Texts the string encoding cannot hold go the general way, in the same order.
        for odd in ("\x00", "\x01", "é", "\u0663", "\udcff"):  # NUL, the separator, non-ASCII, an Arabic-Indic 3, a byte escape
            mixed = texts + [rng.choice(texts) + odd + rng.choice(alphabet)]
            assert isinstance(natural_keys(mixed)[0], list)
            assert _fast_order(mixed) == _natural_order(mixed), mixed
    assert natural_keys([]) == []


# -- the table ------------------------------------------------------------------------------------
def _reference_rows(manifest: Manifest, width: int = 80) -> list[str]:
    """The table rows as `render` built them one row at a time before the column-wise version."""
    header = ("KEY", "NAME", "DTYPE", "SHAPE", "BYTES", "ROLE")
    rows = [
        (escape(t.key), escape(t.name), t.dtype, "[" + ", ".join(map(str, t.shape)) + "]", human_bytes(t.nbytes), t.role)
        for t in sorted(manifest.tensors, key=lambda t: natural_key(t.key))
    ]
    columns = list(zip(header, *rows))
    widths = [max(map(len, column)) for column in columns]
    fixed = sum(widths[2:]) + 2 * len(widths[2:])
    widths[1] = max([len(n) for n in columns[1] if len(header[0]) + 2 + len(n) + fixed <= width] or [len(header[1])])
    widths[0] = max([len(k) for k in columns[0] if len(k) + 2 + widths[1] + fixed <= width] or [len(header[0])])
    indent = " " * (widths[0] + 2)
    row_format = "  ".join(f"{{:>{w}}}" if i == 4 else f"{{:<{w}}}" for i, w in enumerate(widths))
    out = []
    for row in (header, *rows):
        if len(row[0]) > widths[0]:
            out.append(row[0])
            row = ("", *row[1:])
        if len(row[1]) > widths[1]:
            out.append(indent + row[1])
            row = (row[0], "", *row[2:])
        out.append(row_format.format(*row).rstrip())
    return out


def _table_rows(manifest: Manifest) -> list[str]:
    return render_table(manifest).split("\n\n", 1)[1].split("\n")[: len(_reference_rows(manifest))]


def _edited(manifest: Manifest, change) -> Manifest:
    return dataclasses.replace(manifest, tensors=tuple(dataclasses.replace(t, **change(t)) for t in manifest.tensors))


def test_table_rows_as_built_row_by_row(manifests):
    cases = list(manifests)
    seed = read_manifest(fixture_path("seed", "tf_keras", "ckpt", "weights"))
    # Names too long for their column (the row-by-row way), keys and names to escape, short keys
    # that fit beside their row, an empty manifest.
    cases.append(_edited(seed, lambda t: {"name": t.name * 6}))
    cases.append(_edited(seed, lambda t: {"key": t.key + "\x1b[31m\udcff", "name": "é" + t.name}))
    numbers = iter(range(1000, 0, -1))
    cases.append(_edited(seed, lambda t: {"key": f"v/{next(numbers)}"}))
    cases.append(dataclasses.replace(seed, tensors=()))
    for manifest in cases:
        assert _table_rows(manifest) == _reference_rows(manifest), manifest.path


# -- manifests ------------------------------------------------------------------------------------
def test_trusted_tensor_is_the_tensor_info_built_the_usual_way(manifests):
    count = 0
    for manifest in manifests:
        for t in manifest.tensors:
            fields = dataclasses.asdict(t)
            usual, trusted = TensorInfo(**fields), trusted_tensor(**fields)
            assert trusted == usual and hash(trusted) == hash(usual) and repr(trusted) == repr(usual)
            assert trusted.to_json() == usual.to_json() and trusted.size == usual.size
            with pytest.raises(dataclasses.FrozenInstanceError):
                trusted.role = "other"  # type: ignore[misc]
            count += 1
    assert count > 100


def test_manifest_in_key_order_and_out_of_it():
    def info(key: str) -> TensorInfo:
        return TensorInfo(key=key, name=key, dtype="float32", shape=(1,), nbytes=4)

    keys = ["b/10", "b/2", "a", "\udcff", "é", "z", "_"]  # bytewise: _ after upper case, é and \xff after z
    expected = sorted(keys, key=lambda k: k.encode("utf-8", "surrogateescape"))
    for order in (keys, expected, expected[::-1], sorted(keys)):
        assert [t.key for t in Manifest("npz", "x", tuple(map(info, order))).tensors] == expected
    ascii_keys = sorted(k for k in keys if k.isascii())
    kept = tuple(map(info, ascii_keys))
    assert Manifest("npz", "x", kept).tensors == kept
    for duplicated in (ascii_keys + ascii_keys[:1], ascii_keys[:1] + ascii_keys, keys + ["é"]):
        with pytest.raises(ValueError, match="duplicate"):
            Manifest("npz", "x", tuple(map(info, duplicated)))


# -- checkpoint listing ---------------------------------------------------------------------------
@pytest.mark.parametrize("index", INDEXES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_listing_gives_each_tensor_its_own_spec(index):
    bundle = BundleReader(_prefix(index))
    try:
        tensors = bundle_tensors(bundle)[0]
        keys = bundle.keys()
        assert [t.key for t in tensors] == [key_text(k) for k in keys]
        assert bundle.specs(keys) == [bundle.spec(k) for k in keys]
        for t, key in zip(tensors, keys):
            assert (t.dtype, t.shape, t.nbytes) == bundle.spec(key)
            assert TensorInfo(**dataclasses.asdict(t)) == t  # what __post_init__ would accept
    finally:
        bundle.close()


def test_shape_checked_for_each_dtype_that_shares_it(tmp_path):
    """One shape, two dtypes: [2**59] holds 2**61 bytes of float32, within bounds, and 2**63 bytes of
    complex128, not: the check of a shared shape cannot be skipped for the second."""
    shutil.copytree(fixture_path("seed", "tf_keras", "ckpt"), tmp_path / "ckpt")
    ckpt = tmp_path / "ckpt" / "weights"
    entries = []
    for key, dtype in ((b"a", 1), (b"b", 18)):
        entry = BundleEntryProto(dtype=dtype, shard_id=0, offset=0, size=0)
        entry.shape.dim.add(size=1 << 59)
        entries.append((key, entry))
    shutil.copytree(tmp_path / "ckpt", tmp_path / "float32")
    _add_entry(ckpt, *entries)
    with pytest.raises(CorruptArtifact, match=r"tensor 'b' declares shape \[576460752303423488\]"):
        read_manifest(ckpt)
    _add_entry(tmp_path / "float32" / "weights", entries[0], (b"c", entries[0][1]))
    listed = {t.key: t.shape for t in read_manifest(tmp_path / "float32" / "weights").tensors}
    assert listed["a"] == listed["c"] == (1 << 59,)


@pytest.mark.parametrize("name, is_model", [("layer-1", True), ("layer_with_weights-0", True), ("_layers", True),
                                            ("x\nlayer-1", False), ("layer-1\n", True), ("dense", False), ("_layers_", False)])
def test_model_marker_in_child_names_searched_at_once_or_one_by_one(name, is_model):
    """`is_model` searches a node's child names joined by newlines; a name holding a newline itself
    makes it test them one by one.  A root marked as a model makes its child a layer."""
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    from inspector.formats.object_graph import describe

    graph = TrackableObjectGraph()
    graph.nodes.add().children.add(node_id=1, local_name=name)
    graph.nodes.add().children.add(node_id=2, local_name="kernel")
    graph.nodes.add().attributes.add(name="VARIABLE_VALUE", full_name="dense/kernel", checkpoint_key="k")
    described = describe(graph.SerializeToString(), ["k"], "test")
    assert described.layers == (["dense"] if is_model else [])


def test_keys_decoded_at_once_as_one_by_one():
    from inspector.formats.tf_bundle import key_texts

    rng = random.Random(13)
    pieces = [b"a", b"/", b"7", b"\xc3", b"\xa9", b"\xe2\x82", b"\xac", b"\xff", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\x00"]
    for _ in range(3000):
        keys = [b"".join(rng.choice(pieces) for _ in range(rng.randrange(5))) for _ in range(rng.randrange(6))]
        assert key_texts(keys) == [key_text(k) for k in keys], keys
    for index in INDEXES:
        bundle = BundleReader(_prefix(index))
        assert key_texts(bundle.keys()) == [key_text(k) for k in bundle.keys()]
        bundle.close()


def test_json_as_json_dumps_writes_it(manifests):
    """`render_json` writes the tensor list from a template: byte for byte `json.dumps(..., indent=2)`
    of the manifest, and json's own way for fields of other types."""
    import json

    from inspector.render import _json_tensors, render_json

    seed = read_manifest(fixture_path("seed", "tf_keras", "ckpt", "weights"))
    numbers = iter(range(1000))
    cases = list(manifests) + [
        _edited(seed, lambda t: {"key": t.key + "\udcff\x1b\"\\é\u2028", "name": "名前/" + t.name,
                                 "layer": "dénse", "index": next(numbers)}),
        _edited(seed, lambda t: {"shape": ()}),
        dataclasses.replace(seed, tensors=(), metadata={"nested": {"tensors": [], "x": [1, {"a": None}]}}),
    ]
    for manifest in cases:
        assert render_json(manifest) == json.dumps(manifest.to_json(), indent=2), manifest.path
        assert manifest.tensors == () or _json_tensors(manifest) is not None
    odd = [_edited(seed, lambda t: {"nbytes": float(t.nbytes)}), _edited(seed, lambda t: {"index": True}),
           _edited(seed, lambda t: {"layer": 3})]
    for manifest in odd:
        assert _json_tensors(manifest) is None
        assert render_json(manifest) == json.dumps(manifest.to_json(), indent=2)
