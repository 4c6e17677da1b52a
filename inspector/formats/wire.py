"""The protobuf wire format, read by hand for the three messages listing a checkpoint needs.

`ckinspect dump` of a TF checkpoint decodes one `BundleHeaderProto`, one `BundleEntryProto` per
tensor and the `TrackableObjectGraph`.  With the protobuf runtime that costs its import and the
building of the message classes (about 20 ms, a third of the command's start-up) plus an attribute
access per field read back (most of the per-tensor cost on a checkpoint of 20,000 variables).  The
wire format is small and frozen (https://protobuf.dev/programming-guides/encoding/), and so are
these messages (tensor_bundle.proto, trackable_object_graph.proto, tensor_shape.proto, versions.proto),
so the dump path reads them here into plain tuples; everything else (SavedModels, the writers, the
converters' object-graph edits) keeps the protobuf runtime.  tests/inspector/test_wire.py checks these
decoders against protobuf's on every fixture and on edited messages.

Like protobuf: unknown fields are skipped, a repeated scalar field may be packed, the last value of a
singular scalar wins.  Unlike it: groups (wire types 3 and 4, unused by these messages) and anything
malformed raise `WireError`, which callers turn into a one-line error naming the file.
"""

from __future__ import annotations

import re


class WireError(ValueError):
    """The bytes are not a well-formed message of the expected type."""


_MASK64 = (1 << 64) - 1


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end and buf[pos] < 0x80:  # most tags, lengths and small numbers: one byte
        return buf[pos], pos + 1
    result = 0
    shift = 0
    while shift < 70:
        if pos >= end:
            raise WireError("varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
    raise WireError("varint longer than 10 bytes")


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def fields(buf: bytes, pos: int = 0, end: int | None = None) -> list[tuple[int, int, int]]:
    """The fields of the message in `buf[pos:end]` as (number, wire type, value) in stored order.

    The value is the integer for varint (0), fixed64 (1) and fixed32 (5) fields and, for
    length-delimited fields (2), the offset of the payload, whose end is the next item's `start`:
    each length-delimited field is followed by a (0, 2, end) marker so that callers can slice.
    """
    end = len(buf) if end is None else end
    out: list[tuple[int, int, int]] = []
    append = out.append
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            start = pos
            tag, pos = _varint(buf, pos, end)
            if tag >> 32 or pos - start > 5:  # protobuf reads a tag as a varint of 32 bits at most
                raise WireError(f"field tag of {pos - start} bytes (value {tag}); expected a 32-bit varint")
        number, kind = tag >> 3, tag & 7
        if number == 0:
            raise WireError("field number 0")
        if kind == 0:
            value, pos = _varint(buf, pos, end)
            append((number, 0, value))
        elif kind == 2:
            length, pos = _varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise WireError(f"field {number} claims {length} bytes, {end - pos} left in its message")
            append((number, 2, pos))
            append((0, 2, stop))
            pos = stop
        elif kind == 5:
            if pos + 4 > end:
                raise WireError(f"fixed32 field {number} runs past the end of its message")
            append((number, 5, int.from_bytes(buf[pos : pos + 4], "little")))
            pos += 4
        elif kind == 1:
            if pos + 8 > end:
                raise WireError(f"fixed64 field {number} runs past the end of its message")
            append((number, 1, int.from_bytes(buf[pos : pos + 8], "little")))
            pos += 8
        else:
            raise WireError(f"field {number} has wire type {kind}; expected 0, 1, 2 or 5")
    return out


def _submessages(items: list[tuple[int, int, int]], number: int) -> list[tuple[int, int]]:
    """(start, end) of every length-delimited occurrence of field `number`."""
    return [(value, items[i + 1][2]) for i, (n, kind, value) in enumerate(items) if n == number and kind == 2]


def _text(buf: bytes, start: int, end: int) -> str:
    try:
        return buf[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("string field is not UTF-8") from None


def _repeated_varints(buf: bytes, items: list[tuple[int, int, int]], number: int) -> list[int]:
    """A repeated integer field, packed or not."""
    values: list[int] = []
    for i, (n, kind, value) in enumerate(items):
        if n != number:
            continue
        if kind == 0:
            values.append(value)
        elif kind == 2:
            pos, end = value, items[i + 1][2]
            while pos < end:
                item, pos = _varint(buf, pos, end)
                values.append(item)
    return values


# -- tensor_bundle.proto --------------------------------------------------------------------------

# Plain classes with __slots__ rather than NamedTuples: building a NamedTuple class costs about a
# millisecond of start-up each.
class BundleHeader:
    __slots__ = ("num_shards", "endianness", "producer", "min_consumer")

    def __init__(self, num_shards: int, endianness: int, producer: int, min_consumer: int) -> None:
        self.num_shards = num_shards
        self.endianness = endianness
        self.producer = producer  # VersionDef.producer
        self.min_consumer = min_consumer


def decode_header(buf: bytes) -> BundleHeader:
    num_shards = endianness = producer = min_consumer = 0
    items = fields(buf)
    for i, (number, kind, value) in enumerate(items):
        if number == 1 and kind == 0:
            num_shards = _int32(value)
        elif number == 2 and kind == 0:
            endianness = _int32(value)
        elif number == 3 and kind == 2:  # VersionDef {producer = 1; min_consumer = 2; bad_consumers = 3}
            for n, k, v in fields(buf, value, items[i + 1][2]):
                if n == 1 and k == 0:
                    producer = _int32(v)
                elif n == 2 and k == 0:
                    min_consumer = _int32(v)
    return BundleHeader(num_shards, endianness, producer, min_consumer)


class BundleEntry:
    """One BundleEntryProto; `slices` holds each TensorSliceProto as (start, length or None) per dimension."""

    __slots__ = ("dtype", "dims", "shard_id", "offset", "size", "crc32c", "slices")

    def __init__(self, dtype: int, dims: tuple[int, ...], shard_id: int, offset: int, size: int, crc32c: int,
                 slices: tuple[tuple[tuple[int, int | None], ...], ...]) -> None:
        self.dtype = dtype
        self.dims = dims  # TensorShapeProto dims; () also for unknown rank
        self.shard_id = shard_id
        self.offset = offset
        self.size = size
        self.crc32c = crc32c
        self.slices = slices

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BundleEntry) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self) -> str:
        return "BundleEntry(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__) + ")"


def decode_entry(buf: bytes) -> BundleEntry:
    # TensorFlow writes `08 dtype 12 len <shape> [18 shard] [20 offset] [28 size] 35 <crc32c>`, and
    # many tensors share a dtype and shape: the first two fields (the head) are decoded once per
    # distinct head, the rest matched by `_ENTRY_TAIL` (C speed) where they follow in that form.
    if len(buf) > 9 and buf[-5] == 0x35 and buf[3] <= len(buf) - 9:
        head = _heads.get(buf[: 4 + buf[3]])
        if head is not None:
            tail = _ENTRY_TAIL.fullmatch(buf, 4 + buf[3], len(buf) - 5)
            if tail is not None:
                shard, offset, size = tail.groups()
                # (varints of up to three bytes, most sizes and offsets, decoded inline)
                if offset:
                    n = len(offset)
                    offset = (offset[0] if n == 1 else (offset[0] & 0x7F) | offset[1] << 7 if n == 2
                              else (offset[0] & 0x7F) | (offset[1] & 0x7F) << 7 | offset[2] << 14 if n == 3
                              else _uvarint(offset))
                if size:
                    n = len(size)
                    size = (size[0] if n == 1 else (size[0] & 0x7F) | size[1] << 7 if n == 2
                            else (size[0] & 0x7F) | (size[1] & 0x7F) << 7 | size[2] << 14 if n == 3 else _uvarint(size))
                return BundleEntry(head[0], head[1], shard[0] if shard else 0, offset or 0, size or 0,
                                   int.from_bytes(buf[-4:], "little"), ())
    try:
        entry = _decode_entry_inline(buf)
    except IndexError:  # every read is bounds-checked; this only keeps a missed case a one-line error
        raise WireError("message ends inside a field") from None
    if (len(buf) > 9 and buf[0] == 0x08 and buf[1] < 0x80 and buf[2] == 0x12 and buf[3] < 0x80 and buf[-5] == 0x35
            and buf[3] <= len(buf) - 9 and _ENTRY_TAIL.fullmatch(buf, 4 + buf[3], len(buf) - 5) and len(_heads) < 4096):
        _heads[buf[: 4 + buf[3]]] = (entry.dtype, entry.dims)  # a head in that form: its fields alone
    return entry


# Heads (`08 dtype 12 len <shape>`, one-byte lengths) seen in the form `decode_entry` reads in place,
# and their (dtype, dims); a key of another form or length can never equal one of them.
_heads: dict[bytes, tuple[int, tuple[int, ...]]] = {}
# shard_id (one byte), offset, size (varints of at most 9 bytes: below 2**63, no sign to restore).
_ENTRY_TAIL = re.compile(rb"(?:\x18([\x00-\x7f]))?(?:\x20([\x80-\xff]{0,8}[\x00-\x7f]))?(?:\x28([\x80-\xff]{0,8}[\x00-\x7f]))?")


def _uvarint(data: bytes) -> int:
    """A varint already delimited (by `_ENTRY_TAIL`): every byte but the last has its high bit set."""
    if len(data) == 1:
        return data[0]
    if len(data) == 2:
        return (data[0] & 0x7F) | data[1] << 7
    value = 0
    for shift, byte in enumerate(data):
        value |= (byte & 0x7F) << (7 * shift)
    return value


def _decode_entry_inline(buf: bytes) -> BundleEntry:
    """One BundleEntryProto.  TensorFlow writes its fields in number order with one-byte tags; that
    form (shape dims included) is decoded inline, anything else through `_decode_entry`."""
    scalars = [0] * 7  # by field number
    dims: list[int] = []
    pos, end = 0, len(buf)
    while pos < end:
        tag = buf[pos]
        pos += 1
        if tag == 0x08 or tag == 0x18 or tag == 0x20 or tag == 0x28:
            value = buf[pos] if pos < end else 0x80
            if value < 0x80:
                pos += 1
            elif pos + 1 < end and buf[pos + 1] < 0x80:  # offsets and sizes below 16 KiB
                value = (value & 0x7F) | (buf[pos + 1] << 7)
                pos += 2
            elif pos + 2 < end and buf[pos + 1] >= 0x80 and buf[pos + 2] < 0x80:  # below 2 MiB
                value = (value & 0x7F) | ((buf[pos + 1] & 0x7F) << 7) | (buf[pos + 2] << 14)
                pos += 3
            else:
                value, pos = _varint(buf, pos, end)
            scalars[tag >> 3] = value
        elif tag == 0x12 and not dims:
            length, pos = _varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                return _decode_entry(buf)
            while pos < stop:  # Dim {int64 size = 1}: `12 len 08 size`
                if buf[pos] != 0x12 or pos + 2 >= stop or buf[pos + 2] != 0x08:
                    return _decode_entry(buf)
                dim_end = pos + 2 + buf[pos + 1]
                if buf[pos + 1] == 2 and dim_end <= stop and buf[pos + 3] < 0x80:  # a dim below 128: one byte
                    dims.append(buf[pos + 3])
                    pos = dim_end
                    continue
                size_value, at = _varint(buf, pos + 3, stop)
                if at != dim_end:
                    return _decode_entry(buf)
                dims.append(_int64(size_value))
                pos = dim_end
        elif tag == 0x35 and pos + 4 <= end:
            scalars[6] = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        else:
            return _decode_entry(buf)  # slices, unknown fields, repeats, damage: the general way
    return _entry(scalars, dims, ())


def _entry(scalars: list[int], dims: list[int], slices: tuple) -> BundleEntry:
    """The entry from its raw scalar fields, by field number: dtype 1, shard_id 3 (int32), offset 4,
    size 5 (int64), crc32c 6 (fixed32)."""
    return BundleEntry(_int32(scalars[1]), tuple(dims), _int32(scalars[3]), _int64(scalars[4]), _int64(scalars[5]),
                       scalars[6], slices)


def _decode_entry(buf: bytes) -> BundleEntry:
    scalars = [0] * 7
    dims: list[int] = []
    slices = []
    items = fields(buf)
    for i, (number, kind, value) in enumerate(items):
        if kind == 0:
            if number in (1, 3, 4, 5):
                scalars[number] = value
        elif kind == 2:
            if number == 2:  # TensorShapeProto {repeated Dim dim = 2 {int64 size = 1; string name = 2}}
                shape = fields(buf, value, items[i + 1][2])
                for start, stop in _submessages(shape, 2):
                    dim = 0
                    for n, k, v in fields(buf, start, stop):
                        if n == 1 and k == 0:
                            dim = _int64(v)
                    dims.append(dim)
            elif number == 7:  # TensorSliceProto {repeated Extent extent = 1 {int64 start = 1; int64 length = 2}}
                extents = []
                for start, stop in _submessages(fields(buf, value, items[i + 1][2]), 1):
                    first, length = 0, None
                    for n, k, v in fields(buf, start, stop):
                        if n == 1 and k == 0:
                            first = _int64(v)
                        elif n == 2 and k == 0:
                            length = _int64(v)
                    extents.append((first, length))
                slices.append(tuple(extents))
        elif kind == 5 and number == 6:
            scalars[6] = value
    return _entry(scalars, dims, tuple(slices))


# -- trackable_object_graph.proto -----------------------------------------------------------------

class ObjectGraph:
    """A TrackableObjectGraph by field rather than by node (a graph of 100,000 variables has as many
    nodes, and `describe` reads each field across all of them): `children[n]` holds node n's
    ObjectReferences as (node_id, local_name) in stored order (a list, or () for none); `attributes` every SerializedTensor as
    (node, full_name, checkpoint_key) and `slots` every SlotVariableReference as
    (node, slot_variable_node_id), in node order and stored order within a node."""

    __slots__ = ("children", "attributes", "slots")

    def __init__(self, children: list[list[tuple[int, str]]], attributes: list[tuple[int, str, str]],
                 slots: list[tuple[int, int]]) -> None:
        self.children = children
        self.attributes = attributes
        self.slots = slots


def read_object_graph(buf: bytes) -> ObjectGraph:
    try:
        return _decode_graph(buf)
    except UnicodeDecodeError:
        raise WireError("string field is not UTF-8") from None
    except IndexError:  # every read is bounds-checked; this only keeps a missed case a one-line error
        raise WireError("message ends inside a field") from None


def _decode_graph(buf: bytes) -> ObjectGraph:
    graph = ObjectGraph([], [], [])
    add_node, add_attribute = graph.children.append, graph.attributes.append
    pos, end = 0, len(buf)
    while pos < end:
        if buf[pos] != 0x0A:  # not `repeated TrackableObject nodes = 1` alone: the general way
            for start, stop in _submessages(fields(buf, pos, end), 1):
                _decode_node(buf, start, stop, graph)
            break
        length = buf[pos + 1] if pos + 1 < end else 0x80
        if length < 0x80:
            start = pos + 2
        elif pos + 2 < end and buf[pos + 2] < 0x80:
            length, start = (length & 0x7F) | (buf[pos + 2] << 7), pos + 3
        else:
            length, start = _varint(buf, pos + 1, end)
        stop = start + length
        if stop > end:
            raise WireError(f"object graph node claims {length} bytes, {end - start} left")
        pos = stop
        # Most nodes of a large graph are variables, which TensorFlow writes as one attribute
        # `12 len 0a 0e VARIABLE_VALUE 12 len full_name 1a len checkpoint_key` (lengths of one
        # byte) and `has_checkpoint_values` `2a 02 08 01`: read in place when they tile the node.
        if stop - start > 19 and buf[start] == 0x12 and buf.startswith(_VARIABLE_VALUE, start + 2):
            attribute_end = start + 2 + buf[start + 1]
            key = start + 22 + buf[start + 19]  # the key, after the full name, its tag and length byte
            if (buf[start + 1] < 0x80 and buf[start + 19] < 0x80 and key <= attribute_end <= stop
                    and buf[key - 2] == 0x1A and buf[key - 1] < 0x80 and key + buf[key - 1] == attribute_end
                    and (attribute_end == stop or buf[attribute_end:stop] == _HAS_VALUES)):
                add_attribute((len(graph.children), buf[start + 20 : key - 2].decode(), buf[key:attribute_end].decode()))
                add_node(())
                continue
        _decode_node(buf, start, stop, graph)
    return graph


_VARIABLE_VALUE = b"\x0a\x0eVARIABLE_VALUE\x12"
_HAS_VALUES = b"\x2a\x02\x08\x01"


def _decode_node(buf: bytes, pos: int, end: int, graph: ObjectGraph) -> None:
    """One TrackableObject, added to `graph`.  Its children and attributes are most of a large graph:
    the usual encodings (fields in number order, one-byte tags and lengths) are decoded inline,
    anything else through `fields`."""
    node = len(graph.children)
    children: list[tuple[int, str]] = []
    graph.children.append(children)
    while pos < end:
        tag = buf[pos]
        if tag not in (0x0A, 0x12, 0x1A, 0x22, 0x2A):
            break  # not the common form: the rest of the node goes the general way
        length = buf[pos + 1] if pos + 1 < end else 0x80
        if length < 0x80:
            start = pos + 2
        else:  # a long checkpoint key makes its attribute longer than 127 bytes
            length, start = _varint(buf, pos + 1, end)
        stop = start + length
        if stop > end:
            raise WireError(f"field {tag >> 3} claims {length} bytes, {end - start} left in its message")
        if tag == 0x0A:
            # ObjectReference {int32 node_id = 1; string local_name = 2}: `08 id 12 len name`
            if length >= 4 and buf[start] == 0x08:  # (an empty reference, all defaults, is valid too)
                node_id = buf[start + 1]
                if node_id < 0x80:
                    at = start + 2
                elif buf[start + 2] < 0x80:  # ids below 16384 (start + 2 < stop: length >= 4)
                    node_id, at = (node_id & 0x7F) | (buf[start + 2] << 7), start + 3
                elif start + 3 < stop and buf[start + 3] < 0x80:  # below 2**21
                    node_id, at = (node_id & 0x7F) | (buf[start + 2] & 0x7F) << 7 | buf[start + 3] << 14, start + 4
                else:
                    node_id, at = _varint(buf, start + 1, stop)
                if at + 2 <= stop and buf[at] == 0x12 and buf[at + 1] == stop - at - 2 and node_id < 1 << 31:
                    children.append((node_id, buf[at + 2 : stop].decode()))
                else:
                    children.append(_reference(buf, start, stop))
            else:
                children.append(_reference(buf, start, stop))
        elif tag == 0x12:
            graph.attributes.append(_attribute_fast(buf, start, stop, node))
        elif tag == 0x1A:
            graph.slots.append((node, _slot(buf, start, stop)))
        # 0x22, 0x2A: registered_saver, has_checkpoint_values, which listing does not use
        pos = stop
    if pos < end:
        items = fields(buf, pos, end)
        for i, (number, kind, value) in enumerate(items):
            if kind != 2 or not 1 <= number <= 3:  # (number 0: the end markers `fields` adds)
                continue
            stop = items[i + 1][2]
            if number == 1:
                children.append(_reference(buf, value, stop))
            elif number == 2:
                graph.attributes.append(_attribute(buf, value, stop, node))
            else:
                graph.slots.append((node, _slot(buf, value, stop)))


def _reference(buf: bytes, start: int, stop: int) -> tuple[int, str]:
    """ObjectReference {int32 node_id = 1; string local_name = 2}"""
    node_id, name = 0, ""
    inner = fields(buf, start, stop)
    for j, (n, k, v) in enumerate(inner):
        if n == 1 and k == 0:
            node_id = _int32(v)
        elif n == 2 and k == 2:
            name = _text(buf, v, inner[j + 1][2])
    return node_id, name


def _attribute_fast(buf: bytes, pos: int, stop: int, node: int) -> tuple[int, str, str]:
    """SerializedTensor as TensorFlow writes it: `0a len name 12 len full_name 1a len key` with
    lengths of one or two bytes (any field may be missing); other encodings go through `_attribute`."""
    texts = ["", "", ""]
    start = pos
    expected = 0x0A
    while pos < stop:
        tag = buf[pos]
        length = buf[pos + 1] if pos + 1 < stop else 0x80
        if length < 0x80:
            at = pos + 2
        elif pos + 2 < stop and buf[pos + 2] < 0x80:  # two-byte length: keys of 128 to 16383 bytes
            length, at = (length & 0x7F) | (buf[pos + 2] << 7), pos + 3
        else:
            return _attribute(buf, start, stop, node)
        if tag < expected or tag > 0x1A or tag & 7 != 2 or at + length > stop:
            return _attribute(buf, start, stop, node)
        texts[(tag >> 3) - 1] = buf[at : at + length].decode()  # (UnicodeDecodeError: see caller)
        expected = tag + 8
        pos = at + length
    return node, texts[1], texts[2]


def _attribute(buf: bytes, start: int, stop: int, node: int) -> tuple[int, str, str]:
    """SerializedTensor {string name = 1; string full_name = 2; string checkpoint_key = 3; ...}"""
    texts = ["", "", ""]
    inner = fields(buf, start, stop)
    for j, (n, k, v) in enumerate(inner):
        if k == 2 and 1 <= n <= 3:
            texts[n - 1] = _text(buf, v, inner[j + 1][2])
    return node, texts[1], texts[2]


def _slot(buf: bytes, start: int, stop: int) -> int:
    """SlotVariableReference {original_variable_node_id = 1; slot_name = 2; slot_variable_node_id = 3}"""
    slot = 0
    inner = fields(buf, start, stop)
    for j, (n, k, v) in enumerate(inner):
        if n == 3 and k == 0:
            slot = _int32(v)
        elif n == 2 and k == 2:
            _text(buf, v, inner[j + 1][2])
    return slot
