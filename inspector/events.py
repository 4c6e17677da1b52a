"""TensorBoard event files written without TensorFlow or tensorboard: one home for ckit's writer.

An event file is a sequence of TFRecords (length, masked CRC32C of the length, data, masked
CRC32C of the data), each holding one serialized `Event` proto.  The few messages needed
(Event, Summary, Summary.Value, HistogramProto) are encoded here by hand, field numbers as in
tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto, so writing an
event file imports neither TensorFlow (whose EventFileWriter tensorboard loads when it is
installed, 3 s) nor protobuf.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .crc32c import masked_crc32c
from .formats.sstable import encode_varint

FILE_VERSION = "brain.Event:2"


def tfrecord(data: bytes) -> bytes:
    """One TFRecord: length (uint64 LE), masked CRC32C of the length, data, masked CRC32C of the data."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


# -- protobuf wire format: just what the messages below use ---------------------------------
def _key(field: int, wire: int) -> bytes:
    return encode_varint(field << 3 | wire)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + encode_varint(len(payload)) + payload


def _double(field: int, value: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", value)


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


def _int64(field: int, value: int) -> bytes:
    return _key(field, 0) + encode_varint(value)


def _packed_doubles(field: int, values: Sequence[float]) -> bytes:
    return _bytes_field(field, struct.pack(f"<{len(values)}d", *values))


@dataclass(frozen=True)
class Histogram:
    """HistogramProto: bucket i counts values in (limit[i-1], limit[i]]; the last limit is +max."""

    min: float
    max: float
    num: float
    sum: float
    sum_squares: float
    bucket_limit: tuple[float, ...]
    bucket: tuple[float, ...]

    def encode(self) -> bytes:
        return (_double(1, self.min) + _double(2, self.max) + _double(3, self.num) + _double(4, self.sum)
                + _double(5, self.sum_squares) + _packed_doubles(6, self.bucket_limit)
                + _packed_doubles(7, self.bucket))


def scalar_value(tag: str, value: float) -> bytes:
    """A Summary.Value holding a scalar (tag = 1, simple_value = 2)."""
    return _bytes_field(1, tag.encode("utf-8")) + _float(2, value)


def histogram_value(tag: str, histogram: Histogram) -> bytes:
    """A Summary.Value holding a histogram (tag = 1, histo = 5)."""
    return _bytes_field(1, tag.encode("utf-8")) + _bytes_field(5, histogram.encode())


def event(step: int, wall_time: float, *, values: Iterable[bytes] = (), file_version: str | None = None) -> bytes:
    """An Event (wall_time = 1, step = 2, file_version = 3, summary = 5 holding Value = 1 each)."""
    out = _double(1, wall_time) + _int64(2, step)
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    summary = b"".join(_bytes_field(1, v) for v in values)
    if summary or file_version is None:
        out += _bytes_field(5, summary)
    return out


class EventWriter:
    """Writes one event file into `logdir` (created), named as TensorBoard expects.

    The file appears complete or not at all: it is written under a temporary name and renamed.
    """

    def __init__(self, logdir: str | Path, suffix: str = ".ckit") -> None:
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = self.logdir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}{suffix}"
        self._records = [tfrecord(event(0, now, file_version=FILE_VERSION))]

    def add(self, step: int, values: Iterable[bytes]) -> None:
        self._records.append(tfrecord(event(step, time.time(), values=list(values))))

    def close(self) -> Path:
        staging = self.path.with_name(f".{self.path.name}.partial")
        try:
            with open(staging, "wb") as handle:
                for record in self._records:
                    handle.write(record)
            os.replace(staging, self.path)
        finally:
            if staging.exists():
                staging.unlink()
        return self.path
