"""A LevelDB-format table builder that lays out bytes the way TensorFlow's fork does (for `.index` files).

Mirrors tensorflow/core/lib/io (now xla/tsl/lib/io) {table_builder.cc,
block_builder.cc, format.cc} with the options TF's BundleWriter uses: 256 KiB
blocks, restart interval 16 in data blocks and 1 in the index block, no
compression, an empty metaindex block, and TF's shortest separators as index
keys.  Byte-for-byte equality with TF is not a requirement, but staying that
close keeps every reader (TF's, LevelDB's, ours) on well-trodden paths.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from inspector.crc32c import crc32c, mask
from inspector.formats.sstable import BLOCK_TRAILER_SIZE, FOOTER_SIZE, NO_COMPRESSION, TABLE_MAGIC, encode_varint

BLOCK_SIZE = 256 * 1024  # table_options.h default, which tensor_bundle.cc keeps
BLOCK_RESTART_INTERVAL = 16
_OVERLY_LARGE_BLOCK_RATIO = 2  # table_builder.cc: an entry this many blocks big gets a block of its own

_U32 = struct.Struct("<I")


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key k with start <= k < limit (TF's FindShortestSeparator)."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i >= n:
        return start  # one is a prefix of the other: TF leaves it alone
    byte = start[i]
    if byte < 0xFF and byte + 1 < limit[i]:
        return start[:i] + bytes((byte + 1,))
    return start


def short_successor(key: bytes) -> bytes:
    """A short key >= `key` (TF's FindShortSuccessor), used after the last block."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes((byte + 1,))
    return key


class BlockBuilder:
    """Prefix-compressed sorted entries with a restart array (block_builder.cc)."""

    def __init__(self, restart_interval: int) -> None:
        self.restart_interval = restart_interval
        self.reset()

    def reset(self) -> None:
        self._buffer = bytearray()
        self._restarts = [0]
        self._counter = 0
        self._last_key = b""

    @property
    def empty(self) -> bool:
        return not self._buffer

    def size_estimate(self) -> int:
        return len(self._buffer) + 4 * len(self._restarts) + 4

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self._counter < self.restart_interval:
            last = self._last_key
            limit = min(len(last), len(key))
            while shared < limit and last[shared] == key[shared]:
                shared += 1
        else:
            self._restarts.append(len(self._buffer))
            self._counter = 0
        buf = self._buffer
        buf += encode_varint(shared)
        buf += encode_varint(len(key) - shared)
        buf += encode_varint(len(value))
        buf += key[shared:]
        buf += value
        self._last_key = key
        self._counter += 1

    def finish(self) -> bytes:
        tail = b"".join(_U32.pack(r) for r in self._restarts) + _U32.pack(len(self._restarts))
        return bytes(self._buffer) + tail


def encode_handle(offset: int, size: int) -> bytes:
    return encode_varint(offset) + encode_varint(size)


class TableBuilder:
    """Writes a table to an open binary file; keys must be added in strictly increasing byte order."""

    def __init__(self, file: BinaryIO, block_size: int = BLOCK_SIZE) -> None:
        self._file = file
        self._block_size = block_size
        self._offset = 0
        self._data = BlockBuilder(BLOCK_RESTART_INTERVAL)
        self._index = BlockBuilder(1)
        self._last_key: bytes | None = None
        self._pending_handle: bytes | None = None  # handle of a flushed block awaiting its index key
        self._closed = False

    def add(self, key: bytes, value: bytes) -> None:
        if self._closed:
            raise ValueError("TableBuilder.add() after finish()")
        if self._last_key is not None:
            if key <= self._last_key:
                raise ValueError(f"table keys must be strictly increasing; got {key!r} after {self._last_key!r}")
            if len(key) + len(value) >= _OVERLY_LARGE_BLOCK_RATIO * self._block_size:
                self._flush()
        if self._pending_handle is not None:
            # Deferred until now so the index key can be a short separator, not the full last key.
            self._index.add(shortest_separator(self._last_key or b"", key), self._pending_handle)
            self._pending_handle = None
        self._last_key = key
        self._data.add(key, value)
        if self._data.size_estimate() >= self._block_size:
            self._flush()

    def _flush(self) -> None:
        if self._data.empty:
            return
        self._pending_handle = self._write_block(self._data)

    def _write_block(self, block: BlockBuilder) -> bytes:
        contents = block.finish()
        block.reset()
        type_byte = bytes((NO_COMPRESSION,))
        crc = mask(crc32c(type_byte, crc32c(contents)))
        self._file.write(contents)
        self._file.write(type_byte + _U32.pack(crc))
        handle = encode_handle(self._offset, len(contents))
        self._offset += len(contents) + BLOCK_TRAILER_SIZE
        return handle

    def finish(self) -> int:
        """Write the remaining blocks and the footer; returns the table's size in bytes."""
        self._flush()
        self._closed = True
        metaindex_handle = self._write_block(BlockBuilder(BLOCK_RESTART_INTERVAL))
        if self._pending_handle is not None:
            self._index.add(short_successor(self._last_key or b""), self._pending_handle)
            self._pending_handle = None
        index_handle = self._write_block(self._index)
        handles = metaindex_handle + index_handle
        footer = handles + b"\0" * (FOOTER_SIZE - 8 - len(handles)) + struct.pack("<Q", TABLE_MAGIC)
        self._file.write(footer)
        self._offset += len(footer)
        return self._offset
