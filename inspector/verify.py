"""Read every tensor of an artifact and report each one that is damaged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import os
from typing import TYPE_CHECKING, Iterator, Tuple

from .errors import CkitError, CorruptArtifact
from .manifest import Manifest, ShardInfo, TensorInfo
from .registry import open_artifact

if TYPE_CHECKING:  # verify hands numpy arrays around, but importing this module must not load numpy
    import numpy as np

# Formats whose tensor bytes carry no checksum at all: a flipped data byte reads back as a valid value.
_NO_CHECKSUMS = {
    "h5-weights": "HDF5 keeps no checksums for these datasets: damage inside tensor data cannot be detected",
    "h5-model": "HDF5 keeps no checksums for these datasets: damage inside tensor data cannot be detected",
    "keras3-weights": "HDF5 keeps no checksums for these datasets: damage inside tensor data cannot be detected",
    "safetensors": "safetensors keeps no checksums: damage inside tensor data cannot be detected",
}


@dataclass(frozen=True)
class TensorProblem:
    key: str
    message: str


@dataclass(frozen=True)
class VerifyReport:
    manifest: Manifest
    checked: int
    bytes_read: int
    problems: tuple[TensorProblem, ...] = field(default_factory=tuple)
    # False when the format stores no checksum over tensor data (HDF5, safetensors): "OK" then
    # means "structure and sizes are sound", not "bytes are as written".
    checksums: bool = True
    # One-line things the user must know about what verify could and could not check.
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {
            "format": self.manifest.format,
            "path": self.manifest.path,
            "ok": self.ok,
            "checked": self.checked,
            "bytes_read": self.bytes_read,
            "checksums": self.checksums,
            "notes": list(self.notes),
            "problems": [{"key": p.key, "message": p.message} for p in self.problems],
        }


# Elements per piece when a tensor is streamed (4 MiB of float32): memory stays near this.
CHUNK_ELEMS = 1 << 20


def stream_tensor(reader: object, key: str, chunk_elems: int = CHUNK_ELEMS) -> Iterator[np.ndarray] | None:
    """Tensor `key` as flat pieces (the readers' `read_chunks`), its checksum checked after the last.

    None when the reader cannot stream this tensor (strings, partitioned variables, HDF5 data the
    library must decode): read it whole with `read_tensor`.
    """
    stream = getattr(reader, "read_chunks", None)
    return None if stream is None else stream(key, chunk_elems)


Digest = Tuple[str, Tuple[int, ...], int]


def _crc_of(array: "np.ndarray", crc: int = 0) -> int:
    """CRC32C of an array's little-endian bytes (any dtype numpy holds, bfloat16 and float8 included)."""
    from .crc32c import crc32c

    import numpy as np

    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.dtype.byteorder == ">" or (flat.dtype.byteorder == "=" and not np.little_endian):
        # The same numbers stored big-endian (an HDF5 file from another machine) are the same weights:
        # compare values, not byte order.
        flat = flat.astype(flat.dtype.newbyteorder("<"))
    # A uint8 view, not memoryview(...).cast: the buffer protocol has no format code for ml_dtypes.
    return crc32c(flat.view(np.uint8), crc)


def array_digest(value: "np.ndarray") -> Digest:
    """(numpy dtype string, shape, CRC32C of the little-endian bytes): what every conversion is verified by."""
    from .crc32c import crc32c

    if value.dtype == object:
        payload = b"".join(bytes(v) if not isinstance(v, str) else v.encode() for v in value.reshape(-1))
        return ("string", tuple(value.shape), crc32c(payload))
    dtype = value.dtype.newbyteorder("<") if value.dtype.byteorder == ">" else value.dtype
    return (dtype.str, tuple(value.shape), _crc_of(value))


def tensor_digest(reader: object, key: str, dtype: str, shape: tuple[int, ...]) -> Digest | None:
    """`array_digest` of a stored tensor, computed piece by piece in bounded memory.

    None when the tensor cannot be streamed (strings, partitioned variables, HDF5 data the library
    must decode).
    """
    from .dtypes import numpy_dtype

    pieces = stream_tensor(reader, key)
    if pieces is None:
        return None
    crc = 0
    for piece in pieces:
        crc = _crc_of(piece, crc)
    return numpy_dtype(dtype).str, tuple(shape), crc


def stored_digest(reader: object, tensor: TensorInfo) -> Digest:
    """The digest of a tensor as stored: streamed where the reader can, else read whole."""
    streamed = tensor_digest(reader, tensor.key, tensor.dtype, tensor.shape)
    if streamed is not None:
        return streamed
    import numpy as np

    return array_digest(np.asarray(reader.read_tensor(tensor.key)))


def _missing_or_truncated(shard: ShardInfo, keys: list[str] | None = None) -> str:
    """One line for an absent shard, with the tensors it holds counted when they are known."""
    path = Path(shard.path)
    which = f"the {_count(keys)} stored in it ({_listed(keys)})" if keys else "the tensors stored in it"
    if path.is_file():
        size = path.stat().st_size
        return (f"file is truncated ({size} bytes, less than its tensors need), so {which} cannot be read; "
                "copy the complete file again")
    return (f"file is missing, so {which} cannot be read; expected every file the artifact names to be present "
            "(copy the complete artifact)")


def verify_artifact(path: str | Path, format: str | None = None) -> VerifyReport:
    """Read every tensor (checking every checksum the format has); collect what fails.

    Tensors are streamed where the reader can (peak memory near one piece of CHUNK_ELEMS). A cause shared
    by many tensors (a missing or truncated shard) is reported once, with the tensors counted.
    """
    problems: list[TensorProblem] = []
    checked = 0
    bytes_read = 0
    with open_artifact(path, format) as reader:
        manifest = reader.manifest
        # Missing files first: their tensors may not even be listed (a lost Keras 3 shard).
        absent: dict[str, int] = {}  # shard path -> index in problems
        for shard in manifest.shards:
            if not shard.present:
                if not os.path.lexists(shard.path) or os.path.isfile(shard.path):
                    absent[shard.path] = len(problems)  # missing or truncated: its tensors' errors fold into this line
                problems.append(TensorProblem(shard.path, _missing_or_truncated(shard)))
        # Whole-file checks the format offers (a .keras member's CRC-32), once, before the tensors.
        integrity = getattr(reader, "check_integrity", None)
        if integrity is not None:
            try:
                integrity()
            except CkitError as exc:
                # Every tensor lives in the damaged file: one problem says it, not one per tensor.
                problems.append(TensorProblem(manifest.path, str(exc)))
        tensors = () if problems and integrity is not None and problems[-1].key == manifest.path else manifest.tensors
        causes: dict[str, list[str]] = {}  # one message with the tensor's name taken out -> tensors
        for tensor in tensors:
            try:
                got = _check_tensor(reader, tensor)
            except CkitError as exc:
                message = str(exc)
                cause = message.replace(repr(tensor.key), "{tensor}").replace(tensor.key, "{tensor}")
                causes.setdefault(cause, []).append(tensor.key)
                continue
            checked += 1
            bytes_read += got[0]
            if got[1] is not None and tuple(got[1]) != tensor.shape:
                problems.append(
                    TensorProblem(tensor.key, f"read shape {list(got[1])}, manifest says {list(tensor.shape)}")
                )
        folded: dict[str, list[str]] = {}  # an absent shard -> tensors that failed because of it
        for cause, keys in causes.items():
            shard = next((p for p in absent if cause.startswith(f"{p}:")), None)
            if shard is not None:
                folded.setdefault(shard, []).extend(keys)
            else:
                problems.append(_grouped(cause, keys))
        by_path = {shard.path: shard for shard in manifest.shards}
        for shard, keys in folded.items():
            problems[absent[shard]] = TensorProblem(shard, _missing_or_truncated(by_path[shard], keys))
    note = _NO_CHECKSUMS.get(manifest.format)
    return VerifyReport(manifest=manifest, checked=checked, bytes_read=bytes_read, problems=tuple(problems),
                        checksums=note is None, notes=(note,) if note else ())


def _check_tensor(reader: object, tensor: TensorInfo) -> tuple[int, tuple[int, ...] | None]:
    """(bytes read, shape read or None when streamed) of one tensor; raises CkitError on damage."""
    pieces = stream_tensor(reader, tensor.key)
    if pieces is None:
        value = reader.read_tensor(tensor.key)  # type: ignore[attr-defined]
        return int(getattr(value, "nbytes", 0)), tuple(value.shape)
    count = 0
    for piece in pieces:
        count += piece.nbytes
    if count != tensor.nbytes:
        raise CorruptArtifact(f"tensor {tensor.key!r}: read {count} bytes; the manifest says {tensor.nbytes}")
    return count, None


def _count(keys: list[str]) -> str:
    from .text import plural

    return plural(len(keys), "tensor")


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _grouped(cause: str, keys: list[str]) -> TensorProblem:
    """One problem for every tensor that failed the same way."""
    if len(keys) == 1:
        return TensorProblem(keys[0], cause.replace("{tensor}", repr(keys[0])))
    message = cause.replace("tensor {tensor}", _count(keys)).replace("{tensor}", "(each tensor)")
    return TensorProblem(keys[0], f"{message} [{_count(keys)}: {_listed(keys)}]")
