"""A reader for LevelDB-format tables, the container of TensorFlow's `.index` files.

Layout (tensorflow/core/lib/io/{format.cc,block_builder.cc,table_builder.cc}):
data blocks, a metaindex block, an index block, then a 48-byte footer holding
two block handles and the magic number.  Each block is followed by a 5-byte
trailer: a compression byte and a masked CRC32C of block + compression byte.
The whole file is read into memory: index files are small (one entry per
tensor), and the tensor bytes live in the separate data shards.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

from ..crc32c import crc32c, unmask
from ..errors import ChecksumMismatch, CorruptArtifact, MissingDependency

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48  # two max-size block handles (2 * 2 * 10 bytes) padded to 40, + 8-byte magic
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION = 0
SNAPPY_COMPRESSION = 1

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def encode_varint(value: int) -> bytes:
    """Little-endian base-128 varint (LevelDB's PutVarint32/64, protobuf's wire varint).

    A negative value is written as protobuf writes an int64: its 64-bit two's complement (ten bytes).
    """
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(buf: bytes | memoryview, pos: int, limit: int, what: str, path: object, max_bytes: int = 10) -> tuple[int, int]:
    """Decode a little-endian base-128 varint at `pos`; returns (value, next position)."""
    result = 0
    shift = 0
    for i in range(max_bytes):
        if pos >= limit:
            break
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise CorruptArtifact(f"{path}: bad varint in {what} at byte {pos}; expected a valid LevelDB table (file is damaged)")


def has_table_magic(path: Path) -> bool:
    """Cheap check: does the file end with the LevelDB table magic?  Never raises."""
    try:
        if not Path(path).is_file():  # never open a FIFO or device: it could block
            return False
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            if size < FOOTER_SIZE:
                return False
            handle.seek(size - 8)
            return _U64.unpack(handle.read(8))[0] == TABLE_MAGIC
    except OSError:
        return False


class Table:
    """An immutable sorted key/value table read from one file (all entries in memory)."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self._data = data
        self._view = memoryview(data)

    @classmethod
    def open(cls, path: str | Path) -> "Table":
        path = Path(path)
        if path.exists() and not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
            raise CorruptArtifact(f"{path}: {kind}; expected the '.index' file of a TensorFlow checkpoint")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            from ..errors import MissingData

            raise MissingData(f"{path}: index file not found; expected the '.index' file of a TensorFlow checkpoint") from None
        except OSError as exc:
            raise CorruptArtifact(f"{path}: cannot read the index file ({exc.strerror}); expected a readable file") from None
        return cls(path, data)

    # -- footer and blocks -------------------------------------------------
    def _footer(self) -> tuple[tuple[int, int], tuple[int, int]]:
        size = len(self._data)
        if size == 0:
            raise CorruptArtifact(f"{self.path}: file is empty; expected a LevelDB-format table (a checkpoint .index file)")
        if size < FOOTER_SIZE:
            raise CorruptArtifact(
                f"{self.path}: file is {size} bytes, shorter than the {FOOTER_SIZE}-byte table footer; "
                "expected a LevelDB-format table (the file is truncated or not a checkpoint index)"
            )
        magic = _U64.unpack_from(self._data, size - 8)[0]
        if magic != TABLE_MAGIC:
            raise CorruptArtifact(
                f"{self.path}: footer magic is 0x{magic:016x}; expected 0x{TABLE_MAGIC:016x} "
                "(not a LevelDB-format table: the file is truncated, damaged or of another kind)"
            )
        start = size - FOOTER_SIZE
        metaindex_offset, pos = read_varint(self._view, start, size - 8, "footer", self.path)
        metaindex_size, pos = read_varint(self._view, pos, size - 8, "footer", self.path)
        index_offset, pos = read_varint(self._view, pos, size - 8, "footer", self.path)
        index_size, pos = read_varint(self._view, pos, size - 8, "footer", self.path)
        return (metaindex_offset, metaindex_size), (index_offset, index_size)

    def _block(self, offset: int, size: int, what: str) -> memoryview:
        """The contents of the block at (offset, size), trailer verified and decompressed."""
        limit = len(self._data) - FOOTER_SIZE
        if offset < 0 or size < 0 or offset + size + BLOCK_TRAILER_SIZE > limit:
            raise CorruptArtifact(
                f"{self.path}: {what} at offset {offset} with size {size} (+{BLOCK_TRAILER_SIZE}-byte trailer) "
                f"runs past the table contents ({limit} bytes); the file is truncated or damaged"
            )
        end = offset + size
        kind = self._data[end]
        stored = unmask(_U32.unpack_from(self._data, end + 1)[0])
        actual = crc32c(self._data[offset : end + 1])
        if stored != actual:
            raise ChecksumMismatch(
                f"{self.path}: CRC32C of {what} at offset {offset} is 0x{actual:08x}; expected 0x{stored:08x} "
                "from the block trailer (the index file is damaged)"
            )
        block = self._view[offset:end]
        if kind == NO_COMPRESSION:
            return block
        if kind == SNAPPY_COMPRESSION:
            try:
                import cramjam
            except ImportError:
                raise MissingDependency(
                    f"{self.path}: {what} is snappy-compressed and reading it needs the Python package 'cramjam'; "
                    "install it with: pip install cramjam"
                ) from None
            try:
                return memoryview(bytes(cramjam.snappy.decompress_raw(bytes(block))))
            except Exception as exc:  # cramjam raises its own DecompressionError
                raise CorruptArtifact(
                    f"{self.path}: snappy data of {what} at offset {offset} does not decompress ({exc}); "
                    "the index file is damaged"
                ) from None
        raise CorruptArtifact(
            f"{self.path}: {what} at offset {offset} has compression type {kind}; expected 0 (none) or 1 (snappy)"
        )

    def _entries(self, block: memoryview, what: str) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs of one block, shared key prefixes expanded."""
        n = len(block)
        if n < 4:
            raise CorruptArtifact(f"{self.path}: {what} is {n} bytes; expected at least the 4-byte restart count")
        num_restarts = _U32.unpack_from(block, n - 4)[0]
        limit = n - 4 - 4 * num_restarts
        if num_restarts > n // 4 or limit < 0:
            raise CorruptArtifact(
                f"{self.path}: {what} claims {num_restarts} restart points, more than its {n} bytes can hold; "
                "the index file is damaged"
            )
        pos = 0
        key = b""
        block = bytes(block)  # one copy of the block: indexing and slicing bytes is cheaper than a view
        while pos < limit:
            # The three lengths are almost always below 128 (one byte each): decode those inline.
            shared, non_shared, value_len = block[pos : pos + 3] if pos + 3 <= limit else (0x80, 0, 0)
            if shared < 0x80 and non_shared < 0x80 and value_len < 0x80:
                pos += 3
            else:
                shared, pos = read_varint(block, pos, limit, what, self.path, 5)
                non_shared, pos = read_varint(block, pos, limit, what, self.path, 5)
                value_len, pos = read_varint(block, pos, limit, what, self.path, 5)
            if shared > len(key) or pos + non_shared + value_len > limit:
                raise CorruptArtifact(
                    f"{self.path}: entry at byte {pos} of {what} overruns the block (shared {shared}, "
                    f"key {non_shared}, value {value_len} bytes); the index file is damaged"
                )
            key = key[:shared] + block[pos : pos + non_shared]
            pos += non_shared
            yield key, block[pos : pos + value_len]
            pos += value_len

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) in key order; raises CorruptArtifact on structural damage."""
        _, (index_offset, index_size) = self._footer()
        index = self._block(index_offset, index_size, "index block")
        previous: bytes | None = None
        for number, (_, handle) in enumerate(self._entries(index, "index block")):
            offset, pos = read_varint(handle, 0, len(handle), "block handle", self.path)
            size, _ = read_varint(handle, pos, len(handle), "block handle", self.path)
            what = f"data block {number}"
            for key, value in self._entries(self._block(offset, size, what), what):
                if previous is not None and key <= previous:
                    raise CorruptArtifact(
                        f"{self.path}: key {key!r} in {what} is not greater than the key before it; "
                        "expected strictly increasing keys (the index file is damaged)"
                    )
                previous = key
                yield key, value
