"""CRC32C (Castagnoli) and LevelDB/TensorFlow's masking, backed by the `crc32c` package's C code.

`crc32c` takes any buffer (memoryview, numpy array) without copying and uses
the CPU's CRC32 instructions where present: checksumming a data shard costs
a small fraction of reading it.

TensorFlow stores *masked* CRCs (so that a CRC of data containing CRCs stays
well distributed): rotate right by 15 bits and add a constant.
"""

from __future__ import annotations

import crc32c as _crc32c

_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of `data`, continuing from `crc` (0 to start)."""
    return _crc32c.crc32c(data, crc)


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    return mask(crc32c(data))
