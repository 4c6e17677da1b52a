"""CRC32C (Castagnoli) and LevelDB/TensorFlow's masking, backed by google-crc32c's C code.

TensorFlow stores *masked* CRCs (so that a CRC of data containing CRCs stays
well distributed): rotate right by 15 bits and add a constant.
"""

from __future__ import annotations

import google_crc32c

_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of `data`, continuing from `crc` (0 to start)."""
    return google_crc32c.extend(crc, data)


def mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def masked_crc32c(data: bytes | bytearray | memoryview) -> int:
    return mask(crc32c(data))
