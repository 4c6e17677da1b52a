"""The hand-written protobuf decoders of `dump`'s path (inspector/formats/wire.py) against protobuf's own.

Every BundleHeaderProto, BundleEntryProto and TrackableObjectGraph among the fixtures (written by
TensorFlow, tf_keras, Keras 3 and the third-party corpus) must decode to exactly what the protobuf
runtime reads; messages protobuf writes in other encodings (packed, reordered, unknown fields,
multi-byte varints, negative numbers) too; and damaged bytes may only raise `WireError`.
"""

from __future__ import annotations

import random

import pytest

from inspector.formats import wire
from inspector.formats.object_graph import OBJECT_GRAPH_KEY
from inspector.formats.sstable import Table
from inspector.formats.tf_bundle import BundleReader, key_bytes
from inspector.protos import BundleEntryProto, BundleHeaderProto
from tests.conftest import FIXTURES

INDEXES = sorted(p for p in FIXTURES.rglob("*.index") if "bad" not in p.parts)


def _entry_from_protobuf(message: BundleEntryProto) -> wire.BundleEntry:
    return wire.BundleEntry(
        message.dtype, tuple(d.size for d in message.shape.dim), message.shard_id, message.offset, message.size,
        message.crc32c,
        tuple(tuple((e.start, e.length if e.HasField("length") else None) for e in s.extent) for s in message.slices),
    )


def _graph_from_protobuf(data: bytes) -> list[tuple]:
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    graph = TrackableObjectGraph.FromString(data)
    return [
        ([(c.node_id, c.local_name) for c in node.children],
         [(a.full_name, a.checkpoint_key) for a in node.attributes],
         [s.slot_variable_node_id for s in node.slot_variables])
        for node in graph.nodes
    ]


def _graph_from_wire(data: bytes) -> list[tuple]:
    """`wire.read_object_graph` (kept by field) regrouped node by node, as protobuf reads it."""
    graph = wire.read_object_graph(data)
    nodes = [(list(children), [], []) for children in graph.children]
    for node, full_name, key in graph.attributes:
        nodes[node][1].append((full_name, key))
    for node, slot in graph.slots:
        nodes[node][2].append(slot)
    return nodes


def _read_graph(prefix) -> bytes:
    bundle = BundleReader(prefix)
    try:
        return bundle.read_strings(OBJECT_GRAPH_KEY)[0]
    finally:
        bundle.close()


def test_fixtures_cover_the_messages():
    assert len(INDEXES) >= 20
    assert any("tf1_partitioned" in str(p) for p in INDEXES)  # entries with slices


@pytest.mark.parametrize("index", INDEXES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_decodes_as_protobuf_reads_it(index):
    items = dict(Table.open(index).items())
    raw_header = items.pop(b"")
    header, ours = BundleHeaderProto.FromString(raw_header), wire.decode_header(raw_header)
    assert (ours.num_shards, ours.endianness, ours.producer, ours.min_consumer) == (
        header.num_shards, header.endianness, header.version.producer, header.version.min_consumer)
    for key, value in items.items():
        assert wire.decode_entry(value) == _entry_from_protobuf(BundleEntryProto.FromString(value)), key
    graph_key = key_bytes(OBJECT_GRAPH_KEY)
    if graph_key in items:
        data = _read_graph(str(index)[: -len(".index")])
        assert _graph_from_wire(data) == _graph_from_protobuf(data)


def test_other_encodings_of_an_entry():
    message = BundleEntryProto(dtype=14, shard_id=-2, offset=1 << 40, size=(1 << 63) - 1, crc32c=0xDEADBEEF)
    for size, name in ((3, ""), (-1, "batch"), (1 << 35, "")):
        message.shape.dim.add(size=size, name=name)
    piece = message.slices.add()
    piece.extent.add(start=1, length=2)
    piece.extent.add()
    data = message.SerializeToString()
    assert wire.decode_entry(data) == _entry_from_protobuf(message)
    # Fields in reverse order, an unknown field of each wire type, a repeated singular field (last wins)
    # and a shape given in two parts (messages merge): what protobuf accepts, we read the same way.
    parts = [bytes([0x08, 0x01]), bytes([0x2A, 0x04, 0x12, 0x02, 0x08, 0x07]), bytes([0x28, 0x10]),
             bytes([0xF8, 0x07, 0x05]), bytes([0xF9, 0x07]) + bytes(8), bytes([0xFD, 0x07]) + bytes(4),
             bytes([0xFA, 0x07, 0x02, 0x61, 0x62]), bytes([0x12, 0x04, 0x12, 0x02, 0x08, 0x05]),
             bytes([0x08, 0x03]), bytes([0x12, 0x04, 0x12, 0x02, 0x08, 0x06])]
    for encoding in (b"".join(parts), b"".join(reversed(parts))):
        assert wire.decode_entry(encoding) == _entry_from_protobuf(BundleEntryProto.FromString(encoding))


def test_other_encodings_of_a_graph():
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    graph = TrackableObjectGraph()
    root = graph.nodes.add()
    root.children.add(node_id=1, local_name="net")
    root.children.add(node_id=70000, local_name="é" * 200)  # three-byte id, two-byte length
    root.children.add(node_id=-1, local_name="")
    node = graph.nodes.add()
    node.attributes.add(name="VARIABLE_VALUE", full_name="dense/kernel", checkpoint_key="net/kernel/.ATTRIBUTES/VARIABLE_VALUE")
    node.attributes.add(checkpoint_key="only-a-key")
    node.attributes.add(name="x" * 300, full_name="y" * 300, checkpoint_key="z" * 300)
    node.slot_variables.add(original_variable_node_id=1, slot_name="m", slot_variable_node_id=2)
    node.has_checkpoint_values.value = True
    node.registered_saver.name = "saver"
    data = graph.SerializeToString()
    assert _graph_from_wire(data) == _graph_from_protobuf(data)
    # Messages with every field at its default are empty on the wire, and valid, even at the very end.
    for build in (lambda n: n.children.add(), lambda n: n.attributes.add(), lambda n: n.slot_variables.add(),
                  lambda n: None):
        sparse = TrackableObjectGraph()
        build(sparse.nodes.add())
        encoded = sparse.SerializeToString()
        assert _graph_from_wire(encoded) == _graph_from_protobuf(encoded), encoded
    assert wire.decode_entry(b"") == _entry_from_protobuf(BundleEntryProto())
    assert wire.decode_entry(b"\x12\x00") == _entry_from_protobuf(BundleEntryProto.FromString(b"\x12\x00"))
    assert wire.decode_entry(b"\x12\x02\x12\x00") == _entry_from_protobuf(BundleEntryProto.FromString(b"\x12\x02\x12\x00"))
    # An unknown field inside an attribute and at the top level (newer TensorFlow adds fields).
    attribute = bytes([0x12, 0x07, 0x1A, 0x01, 0x6B, 0x20, 0x01, 0x0A, 0x00])
    extended = data + bytes([0x0A, len(attribute)]) + attribute + bytes([0x10, 0x05])
    assert _graph_from_wire(extended) == _graph_from_protobuf(extended)
    assert _graph_from_wire(extended)[-1][1] == [("", "k")]


def _damaged(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        choice = rng.random()
        at = rng.randrange(len(out)) if out else 0
        if choice < 0.5 and out:
            out[at] = rng.randrange(256)
        elif choice < 0.8:
            del out[at:]
        else:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(out)


def test_damaged_messages_raise_only_wire_errors_and_never_disagree_with_protobuf():
    from google.protobuf.message import DecodeError

    rng = random.Random(20261204)
    seed = FIXTURES / "seed" / "tf_keras" / "ckpt" / "weights"
    items = dict(Table.open(seed.with_suffix(".index")).items())
    graph = _read_graph(seed)
    samples = [("entry", v) for k, v in items.items() if k] + [("graph", graph)]
    agreed = 0
    for _ in range(600):
        kind, data = rng.choice(samples)
        bad = _damaged(data, rng)
        try:
            ours = wire.decode_entry(bad) if kind == "entry" else _graph_from_wire(bad)
        except wire.WireError:
            ours = None
        try:
            theirs = (_entry_from_protobuf(BundleEntryProto.FromString(bad)) if kind == "entry"
                      else _graph_from_protobuf(bad))
        except DecodeError:
            theirs = None
        if ours is not None and theirs is not None:
            assert ours == theirs, bad
            agreed += 1
        elif ours is not None:  # we read what protobuf refuses: only its UTF-8 check on unused text may differ
            assert kind == "graph", bad
    assert agreed > 100


def test_random_valid_messages_decode_as_protobuf_reads_them():
    """Messages protobuf itself writes, with fields left at their defaults (absent on the wire),
    long and short strings, ids and sizes of every varint length: both decoders agree."""
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    rng = random.Random(4)

    def number(bits: int) -> int:
        return rng.choice([0, 1, 127, 128, 16383, 16384, (1 << rng.randrange(1, bits)) + rng.randrange(100)])

    def text() -> str:
        return rng.choice(["", "k", "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", "é" * rng.randrange(200)])

    for _ in range(300):
        graph = TrackableObjectGraph()
        for _ in range(rng.randrange(4)):
            node = graph.nodes.add()
            for _ in range(rng.randrange(3)):
                node.children.add(**{k: v for k, v in (("node_id", number(31)), ("local_name", text())) if rng.random() < 0.7})
            for _ in range(rng.randrange(3)):
                node.attributes.add(**{k: text() for k in ("name", "full_name", "checkpoint_key") if rng.random() < 0.7})
            for _ in range(rng.randrange(2)):
                node.slot_variables.add(original_variable_node_id=number(31), slot_name=text(),
                                        slot_variable_node_id=number(31))
        data = graph.SerializeToString()
        assert _graph_from_wire(data) == _graph_from_protobuf(data), data

        entry = BundleEntryProto(**{k: v for k, v in (("dtype", rng.randrange(30)), ("shard_id", number(31)),
                                                       ("offset", number(62)), ("size", number(62)),
                                                       ("crc32c", number(32))) if rng.random() < 0.8})
        for _ in range(rng.randrange(4)):
            entry.shape.dim.add(size=rng.choice([number(62), -1]))
        if rng.random() < 0.2:
            extent = entry.slices.add().extent.add(start=number(40))
            if rng.random() < 0.5:
                extent.length = number(40)
        data = entry.SerializeToString()
        assert wire.decode_entry(data) == _entry_from_protobuf(entry), data


def test_variable_nodes_read_in_place_and_the_general_way(monkeypatch):
    """Variable nodes in TensorFlow's form are read without `_decode_node`; every other form of the
    same node (empty or long names, other fields, damage) goes the general way: both as protobuf."""
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    general = []
    decode_node = wire._decode_node
    monkeypatch.setattr(wire, "_decode_node", lambda *args: general.append(args[1]) or decode_node(*args))
    rng = random.Random(11)
    graphs = []
    for full in ("", "kernel", "x" * 100, "x" * 130, "é" * 50):
        for key in ("", "k", "layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", "a" * 110):
            for extra in (None, "values", "no_values", "child", "saver", "second"):
                graph = TrackableObjectGraph()
                graph.nodes.add().children.add(node_id=1, local_name="v")
                node = graph.nodes.add()
                node.attributes.add(name="VARIABLE_VALUE", full_name=full, checkpoint_key=key)
                if extra == "values":
                    node.has_checkpoint_values.value = True
                elif extra == "no_values":
                    node.has_checkpoint_values.value = False
                elif extra == "child":
                    node.children.add(node_id=0, local_name="up")
                elif extra == "saver":
                    node.registered_saver.name = "s"
                elif extra == "second":
                    node.attributes.add(name="VARIABLE_VALUE", full_name="b", checkpoint_key="c")
                graphs.append(graph.SerializeToString())
    fast = 0
    for data in graphs:
        general.clear()
        assert _graph_from_wire(data) == _graph_from_protobuf(data), data
        fast += len(general) == 1  # only the root went the general way
    assert 6 <= fast < len(graphs)
    # Damaged variable nodes: protobuf's reading or a WireError, never another reading.
    from google.protobuf.message import DecodeError

    canonical = [d for d in graphs if b"VARIABLE_VALUE" in d and b"*\x02\x08\x01" in d]
    for _ in range(400):
        bad = _damaged(rng.choice(canonical), rng)
        try:
            ours = _graph_from_wire(bad)
        except wire.WireError:
            continue
        try:
            assert ours == _graph_from_protobuf(bad), bad
        except DecodeError:
            pass  # (protobuf's UTF-8 check on text listing does not use)


def test_entries_read_by_their_head_and_the_general_way(monkeypatch):
    """An entry whose head (dtype and shape) was seen before is read from the cache and a match of
    its tail; the first of each head, and any entry of another form, the general way: both as protobuf."""
    from google.protobuf.message import DecodeError

    general = []
    inline = wire._decode_entry_inline
    monkeypatch.setattr(wire, "_decode_entry_inline", lambda buf: general.append(buf) or inline(buf))
    monkeypatch.setattr(wire, "_heads", {})
    rng = random.Random(12)
    messages = []
    for shape in ((), (0,), (4, 4), (784, 128), (53, 4), (-1, 3), (1 << 40,)):
        for dtype in (1, 9, 200):
            for shard, offset, size in ((0, 0, 0), (0, 64, 64), (3, 1 << 20, 127), (200, 1 << 62, 1 << 33), (0, 128, (1 << 63) - 1)):
                entry = BundleEntryProto(dtype=dtype, shard_id=shard, offset=offset, size=size, crc32c=rng.getrandbits(32))
                for d in shape:
                    entry.shape.dim.add(size=d)
                messages.append(entry.SerializeToString())
    # A head alone whose last bytes look like a checksum field (`35` five bytes from the end).
    messages.append(bytes([0x08, 0x01, 0x12, 0x08, 0x12, 0x02, 0x08, 0x35, 0x12, 0x02, 0x08, 0x04]))
    for data in messages * 2:
        general.clear()
        assert wire.decode_entry(data) == _entry_from_protobuf(BundleEntryProto.FromString(data)), data
    assert wire._heads  # heads were cached ...
    hits = 0
    for data in messages:
        general.clear()
        wire.decode_entry(data)
        hits += not general
    assert 40 <= hits < len(messages)  # ... and read from the cache; other forms never were
    for _ in range(1500):
        bad = _damaged(rng.choice(messages), rng)
        try:
            ours = wire.decode_entry(bad)
        except wire.WireError:
            ours = None
        try:
            theirs = _entry_from_protobuf(BundleEntryProto.FromString(bad))
        except DecodeError:
            theirs = None
        assert ours == theirs, bad
