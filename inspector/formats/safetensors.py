"""safetensors files: an 8-byte little-endian header length, a JSON header, then raw tensor bytes.

Parsed here without the safetensors package so that every bound is checked
with a message of ours: header length within the file, offsets within the
data area, sizes matching dtype x shape, no overlapping tensors.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .. import keras_names as kn
from ..dtypes import itemsize, numpy_dtype
from ..errors import CorruptArtifact, MissingData, UnsupportedFeature
from ..limits import check_fits, check_shape, too_large
from ..manifest import Manifest, ShardInfo, TensorInfo
from .base import ReaderBase

_EXPECT = "a safetensors file (8-byte header length, JSON header, tensor data)"
MAX_HEADER_BYTES = 100 << 20  # the safetensors library's own limit

# safetensors dtype tag -> ckit dtype name
DTYPES: dict[str, str] = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "U32": "uint32",
    "I32": "int32",
    "U64": "uint64",
    "I64": "int64",
    "F16": "float16",
    "BF16": "bfloat16",
    "F32": "float32",
    "F64": "float64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def _header(path: Path, display: str) -> tuple[dict[str, Any], int, int]:
    """(header, header length, file size), with the length checked against the file."""
    if path.is_dir():
        raise CorruptArtifact(f"{display}: is a directory; expected a file, {_EXPECT}")
    if path.exists() and not path.is_file():
        raise CorruptArtifact(f"{display}: not a regular file (a FIFO, socket or device); expected {_EXPECT}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if size == 0:
                raise CorruptArtifact(f"{display}: the file is empty; expected {_EXPECT}")
            if len(head) < 8:
                raise CorruptArtifact(f"{display}: {size} bytes is shorter than the 8-byte header length; expected {_EXPECT}")
            (length,) = struct.unpack("<Q", head)
            if length < 2 or length > MAX_HEADER_BYTES or 8 + length > size:
                raise CorruptArtifact(
                    f"{display}: header length {length} does not fit a {size}-byte file (limit {MAX_HEADER_BYTES}); "
                    f"expected {_EXPECT}"
                )
            raw = fh.read(length)
    except OSError as exc:
        raise MissingData(f"{display}: cannot be read ({exc.strerror}); expected {_EXPECT}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise CorruptArtifact(f"{display}: the header nests JSON too deeply to parse; expected {_EXPECT}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptArtifact(f"{display}: the header is not valid JSON ({exc}); expected {_EXPECT}") from None
    if not isinstance(header, dict):
        raise CorruptArtifact(f"{display}: the header is a JSON {type(header).__name__}, not an object; expected {_EXPECT}")
    return header, length, size


class SafetensorsReader(ReaderBase):
    """An opened .safetensors file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = str(path)
        header, length, size = _header(path, self.display)
        self._data_start = 8 + length
        data_len = size - self._data_start
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise CorruptArtifact(f"{self.display}: __metadata__ must map strings to strings; expected {_EXPECT}")
        self._entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
        for key, entry in header.items():
            self._entries[key] = self._check(key, entry, data_len)
        # File order is model order for the writers we know; it also drives layer order and index.
        ordered = sorted(self._entries, key=lambda k: (self._entries[k][2], self._entries[k][3], k))
        for first, second in zip(ordered, ordered[1:]):
            if self._entries[second][2] < self._entries[first][3]:
                raise CorruptArtifact(
                    f"{self.display}: tensors '{first}' and '{second}' overlap in the data area; expected disjoint spans"
                )
        # The file keeps names, not model order: a layer is the first name segment, and its
        # weights are ordered the Keras way (kernel before bias, ...) as far as the names say.
        roles = {k: "optimizer" if k.startswith("optimizer/") else "weight" for k in ordered}
        roles.update(_recorded_roles(metadata.get("ckit.roles"), self._entries))
        members: dict[str, list[str]] = {}
        # Names ckit wrote as variable paths (--names keys) are no Keras layers: nothing to guess.
        guess = metadata.get("ckit.names") != "keys"
        for key in ordered:
            if guess and roles[key] == "weight" and "/" in key:
                members.setdefault(key.split("/")[0], []).append(key)
        position = {k: i for i, k in enumerate(ordered)}
        place: dict[str, tuple[str, int]] = {}
        for layer, keys in members.items():
            keys.sort(key=lambda k: (k.rsplit("/", 1)[0], kn.variable_rank(k), position[k]))
            place.update((k, (layer, i)) for i, k in enumerate(keys))
        recorded = _recorded_layers(metadata.get("ckit.layers"), self._entries)
        if recorded is not None:
            # Written by ckit: the model's layer order and each layer's weight order are on record.
            members = dict(recorded)
            place = {k: (layer, i) for layer, keys in recorded for i, k in enumerate(keys)}
        tensors = []
        for key in ordered:
            dtype, shape, begin, end = self._entries[key]
            layer, index = place.get(key, (None, None))
            tensors.append(TensorInfo(key=key, name=key, dtype=dtype, shape=shape, nbytes=end - begin,
                                      role=roles[key], layer=layer, index=index))
        self.manifest = Manifest(
            format="safetensors",
            path=str(path),
            tensors=tuple(tensors),
            producer={"framework": metadata.get("framework", "safetensors")},
            metadata={"safetensors_metadata": metadata, "layer_order": "model" if recorded is not None else "guessed"},
            layers=tuple(members),
            shards=(ShardInfo(str(path), size, True),),
        )

    def _check(self, key: str, entry: Any, data_len: int) -> tuple[str, tuple[int, ...], int, int]:
        where = f"{self.display}: tensor '{key}'"
        if not isinstance(entry, dict):
            raise CorruptArtifact(f"{where} has a {type(entry).__name__} entry; expected {{dtype, shape, data_offsets}}")
        tag = entry.get("dtype")
        if not isinstance(tag, str) or tag not in DTYPES:
            raise UnsupportedFeature(f"{where} has dtype {tag!r}; expected one of {', '.join(DTYPES)}")
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise CorruptArtifact(f"{where} has shape {shape!r}; expected a list of non-negative integers")
        offsets = entry.get("data_offsets")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise CorruptArtifact(f"{where} has data_offsets {offsets!r}; expected [begin, end]")
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            raise CorruptArtifact(
                f"{where} spans bytes [{begin}, {end}) but the data area holds {data_len}; the file is truncated or damaged"
            )
        dtype = DTYPES[tag]
        check_shape(shape, itemsize(dtype) or 1, where)
        expected = math.prod(shape) * (itemsize(dtype) or 0)
        if end - begin != expected:
            raise CorruptArtifact(f"{where} holds {end - begin} bytes but {dtype} {shape} needs {expected}")
        return dtype, tuple(shape), begin, end

    def read_tensor(self, key: str) -> np.ndarray:
        if key not in self._entries:
            raise KeyError(key)
        dtype, shape, begin, end = self._entries[key]
        where = f"{self.display}: tensor {key!r}"
        check_fits(end - begin, where)
        try:
            out = np.empty(shape, dtype=numpy_dtype(dtype))
        except MemoryError:
            raise too_large(where, end - begin) from None
        try:
            with open(self.path, "rb", buffering=0) as fh:
                fh.seek(self._data_start + begin)
                got = fh.readinto(out.reshape(-1).view(np.uint8)) if end > begin else 0  # ml_dtypes have no buffer format
        except OSError as exc:
            raise MissingData(f"{self.display}: cannot be read ({exc.strerror})") from None
        if got != end - begin:
            raise CorruptArtifact(f"{where} is cut short; the file is truncated")
        return out

    def read_chunks(self, key: str, chunk_elems: int) -> Iterator[np.ndarray]:
        if key not in self._entries:
            raise KeyError(key)
        return self._pieces(key, chunk_elems)

    def _pieces(self, key: str, chunk_elems: int) -> Iterator[np.ndarray]:
        dtype, _, begin, end = self._entries[key]
        numpy = numpy_dtype(dtype)
        step = chunk_elems * numpy.itemsize
        try:
            with open(self.path, "rb", buffering=0) as fh:
                fh.seek(self._data_start + begin)
                for start in range(begin, end, step):
                    out = np.empty((min(step, end - start)) // numpy.itemsize, dtype=numpy)
                    if fh.readinto(memoryview(out).cast("B")) != out.nbytes:
                        raise CorruptArtifact(f"{self.display}: tensor '{key}' is cut short; the file is truncated")
                    yield out
        except OSError as exc:
            raise MissingData(f"{self.display}: cannot be read ({exc.strerror})") from None


class _SafetensorsFormat:
    name = "safetensors"
    description = "safetensors file (.safetensors)"
    suffixes: tuple[str, ...] = (".safetensors",)

    def sniff(self, path: Path) -> bool:
        try:
            path = Path(path)
            if not path.is_file():
                return False
            size = path.stat().st_size
            with open(path, "rb") as fh:
                head = fh.read(9)
            if len(head) < 9:
                return False
            (length,) = struct.unpack("<Q", head[:8])
            return 2 <= length <= min(MAX_HEADER_BYTES, size - 8) and head[8:9] == b"{"
        except Exception:  # sniffing must never raise on foreign files
            return False

    def open(self, path: Path) -> SafetensorsReader:
        return SafetensorsReader(Path(path))

    def __repr__(self) -> str:
        return f"<format {self.name}>"


SAFETENSORS = _SafetensorsFormat()


def _recorded_layers(text: str | None, entries: dict[str, Any]) -> list[tuple[str, list[str]]] | None:
    """The layer record ckit's writer leaves in `__metadata__`, if present and consistent with the file."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    layers: list[tuple[str, list[str]]] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], list)):
            return None
        if not all(isinstance(k, str) and k in entries for k in item[1]):
            return None
        layers.append((item[0], list(item[1])))
    return layers



def _recorded_roles(text: str | None, entries: dict[str, Any]) -> dict[str, str]:
    """Roles ckit recorded for tensors that are not model weights (`{"save_counter": "counter"}`).

    A record that does not parse or names unknown tensors or roles is ignored, not trusted.
    """
    from ..manifest import ROLES

    if not text:
        return {}
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if k in entries and v in ROLES and v != "metadata"}
