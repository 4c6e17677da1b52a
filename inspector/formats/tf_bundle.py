"""TensorFlow tensor bundles (TF2/TF1 checkpoints): `P.index` + `P.data-NNNNN-of-NNNNN`.

`BundleReader` opens one bundle by prefix and is shared with the SavedModel
reader (whose variables are a bundle).  The index is parsed eagerly (it is
small); data shards are memory-mapped on first read and every tensor's CRC32C
is verified before its bytes are returned.  See ../shared/FORMATS.md section 1
and tensorflow/core/util/tensor_bundle/tensor_bundle.cc.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads only when tensor values are read: `dump` never needs it
    import numpy as np

import math
import mmap
import ntpath
import os
import re
import struct
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Iterable, Iterator


from ..crc32c import crc32c, unmask
from ..dtypes import TF_DTYPE_NAMES, itemsize, numpy_dtype
from ..errors import ChecksumMismatch, CkitError, CorruptArtifact, MissingData, UnsupportedFeature
from ..limits import MAX_ELEMENTS, check_fits, check_shape, too_large
from ..manifest import Manifest, ShardInfo, TensorInfo, trusted_tensor
from .base import ReaderBase
from .object_graph import strip_key
from .sstable import Table, has_table_magic, read_varint
from .wire import BundleEntry, WireError, decode_entry, decode_header

HEADER_KEY = ""
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
INDEX_SUFFIX = ".index"
DATA_SUFFIX_RE = re.compile(r"\.data-(\d{5})-of-(\d{5})$")
# tensor_bundle.h: kTensorBundleVersion; bundles whose min_consumer exceeds it need a newer reader.
BUNDLE_VERSION = 1
_SLICE_KEY_PREFIX = b"\x00"  # OrderedCode WriteNumIncreasing(0): every TF1 slice key starts with it
_STRING = 7


def _prefix_text(prefix: str | Path) -> str:
    # A prefix is text, not a file name: "run/" (an empty base name, as some TF1 projects save)
    # names "run/.index", which pathlib cannot express as a name to append to.
    return prefix if isinstance(prefix, str) else str(prefix)


def data_path(prefix: str | Path, shard: int, num_shards: int) -> Path:
    """tensorflow/core/util/tensor_bundle/naming.cc: DataFilename."""
    return Path(f"{_prefix_text(prefix)}.data-{shard:05d}-of-{num_shards:05d}")


def index_path(prefix: str | Path) -> Path:
    return Path(_prefix_text(prefix) + INDEX_SUFFIX)


def prefix_of(file: Path, suffix_start: int) -> str | Path:
    """The prefix of a bundle file whose name's suffix starts at `suffix_start` ("run/.index" -> "run/")."""
    if suffix_start == 0:
        return os.path.join(str(file.parent), "")
    return file.with_name(file.name[:suffix_start])


STATE_FILE = "checkpoint"


def _state_paths(directory: Path) -> list[str]:
    """`model_checkpoint_path` (else the last of `all_model_checkpoint_paths`) of `directory/checkpoint`."""
    state = directory / STATE_FILE
    try:
        if not state.is_file():
            return []
        text = state.read_text("utf-8", errors="replace")
    except OSError:
        return []
    found = {}
    for key in ("model_checkpoint_path", "all_model_checkpoint_paths"):
        values = re.findall(rf'^\s*{key}\s*:\s*"((?:[^"\\]|\\.)*)"', text, re.M)
        found[key] = [v.encode("latin-1", "backslashreplace").decode("unicode_escape") for v in values]
    return found["model_checkpoint_path"][:1] or found["all_model_checkpoint_paths"][-1:]


def _foreign_base(recorded: str) -> str:
    """The base name of a recorded path written on any OS ("C:\\runs\\ckpt-3", "/home/x/ckpt-3" -> "ckpt-3")."""
    return ntpath.basename(recorded.replace("/", "\\"))


def _checkpoint_file_target(directory: Path) -> tuple[str | Path, str | None] | None:
    """The prefix named by `directory/checkpoint`, resolved as TensorFlow resolves it, and a note.

    TensorFlow joins a relative path to the state file's directory and takes an absolute one as it
    is.  A path written on another machine (absolute elsewhere, or a Windows path) names nothing
    here; when a checkpoint of that base name lies beside the state file, that one is meant.
    """
    recorded = _state_paths(directory)
    if not recorded:
        return None
    value = recorded[0]
    if value.endswith(("/", "\\")) or not value:
        target: str | Path = os.path.join(str(directory / value) if not os.path.isabs(value) else value, "")
    else:
        target = Path(value) if os.path.isabs(value) else directory / value
    if index_path(target).is_file():
        return target, None
    base = _foreign_base(value)
    beside: str | Path = directory / base if base else os.path.join(str(directory), "")
    if index_path(beside).is_file():
        return beside, (
            f"the 'checkpoint' state file names '{value}', which does not exist here; read the checkpoint "
            f"of that name beside it: {beside}"
        )
    return target, None


def resolve_prefix_noted(path: str | Path) -> tuple[str | Path, str | None]:
    """The bundle prefix for a prefix, `.index` path, `.data-…` path, `checkpoint` state file or
    checkpoint directory, and a note when a state file's path had to be found beside it."""
    path = Path(path)
    name = path.name
    if name.endswith(INDEX_SUFFIX) and path.is_file():
        return prefix_of(path, len(name) - len(INDEX_SUFFIX)), None
    match = DATA_SUFFIX_RE.search(name)
    if match and path.is_file():
        return prefix_of(path, match.start()), None
    if name == STATE_FILE and path.is_file() and _state_paths(path.parent):
        path = path.parent  # the state file stands for its directory, as TF's latest_checkpoint reads it
    if path.is_dir():
        found = _checkpoint_file_target(path)
        if found is not None:
            return found
        indexes = sorted(p for p in path.iterdir() if p.name.endswith(INDEX_SUFFIX) and p.is_file())
        if len(indexes) == 1:
            return prefix_of(indexes[0], len(indexes[0].name) - len(INDEX_SUFFIX)), None
        found_text = f"{len(indexes)} .index files" if indexes else "no 'checkpoint' file and no .index file"
        raise MissingData(
            f"{path}: directory has {found_text}; expected a checkpoint directory with a 'checkpoint' file "
            "(pass the checkpoint prefix, e.g. DIR/weights, instead)"
        )
    return path, None


def resolve_prefix(path: str | Path) -> str | Path:
    """The bundle prefix for a prefix, `.index` path, `.data-…` path or checkpoint directory."""
    return resolve_prefix_noted(path)[0]


# -- OrderedCode (tensorflow/core/lib/strings/ordered_code.cc) ----------------------------
def _ordered_string(value: bytes) -> bytes:
    out = bytearray()
    for byte in value:  # names are short; escapes keep 0x00/0xff from ending the string early
        out += b"\x00\xff" if byte == 0 else b"\xff\x00" if byte == 0xFF else bytes([byte])
    return bytes(out) + b"\x00\x01"


def _ordered_unsigned(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return bytes([len(body)]) + body


_HEADER_BITS = {1: (0x80, 0), 2: (0xC0, 0), 3: (0xE0, 0), 4: (0xF0, 0), 5: (0xF8, 0), 6: (0xFC, 0), 7: (0xFE, 0),
                8: (0xFF, 0), 9: (0xFF, 0x80), 10: (0xFF, 0xC0)}


def _ordered_signed(value: int) -> bytes:
    x = ~value if value < 0 else value
    if x < 64:
        return bytes([(0x80 ^ value) & 0xFF])
    length = x.bit_length() // 7 + 1
    raw = bytearray(value.to_bytes(10, "big", signed=True)[10 - length :])
    raw[0] ^= _HEADER_BITS[length][0]
    raw[1] ^= _HEADER_BITS[length][1]
    return bytes(raw)


def slice_key(name: bytes, extents: Iterable[tuple[int, int]]) -> bytes:
    """saved_tensor_slice_util.cc EncodeTensorNameSlice: the key a TF1 slice is stored under."""
    extents = list(extents)
    out = [_SLICE_KEY_PREFIX, _ordered_string(name), _ordered_unsigned(len(extents))]
    for start, length in extents:
        out.append(_ordered_signed(start))
        out.append(_ordered_signed(length))
    return b"".join(out)


def key_text(key: bytes) -> str:
    # Non-UTF-8 keys survive as surrogate escapes; the manifest sorts by the same encoding.
    return key.decode("utf-8", "surrogateescape")


def key_texts(keys: list[bytes]) -> list[str]:
    """`key_text` of every key, decoded in one call: NUL cannot sit inside a UTF-8 sequence, so the
    keys joined by it decode as each alone (invalid bytes escaped the same way)."""
    joined = b"\x00".join(keys)
    if joined.count(b"\x00") == len(keys) - 1 and keys:
        return joined.decode("utf-8", "surrogateescape").split("\x00")
    return [key_text(key) for key in keys]


def key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def dtype_label(code: int) -> str:
    return TF_DTYPE_NAMES.get(code, f"dtype_{code}")


class _ShardPaths(Sequence):
    """The data file names of a bundle, computed on demand (never a list of num_shards paths up front)."""

    def __init__(self, prefix: str | Path, num_shards: int) -> None:
        self._prefix, self._count = prefix, max(num_shards, 0)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return data_path(self._prefix, index, self._count)


def _needs_shape_checks(dims: tuple[int, ...]) -> bool:
    """Whether a listed shape must go through `BundleReader.shape`'s checks: a negative dimension, or
    one large enough to near the element limit.  Dimensions below 2**14 in rank <= 4 cannot reach it,
    so only other shapes pay for the product."""
    return bool(dims) and (min(dims) < 0 or ((max(dims) >= 1 << 14 or len(dims) > 4)
                                            and math.prod(d for d in dims if d) > MAX_ELEMENTS // 16))


class BundleReader:
    """One tensor bundle opened by prefix: its index entries, and tensors read on demand."""

    def __init__(self, prefix: str | Path) -> None:
        self.prefix = prefix if isinstance(prefix, str) and prefix.endswith(("/", os.sep)) else Path(prefix)
        self.index_path = index_path(self.prefix)
        self.table = Table.open(self.index_path)
        # One pass over the table: entries are decoded as they come (a checkpoint of 100,000 tensors
        # has as many), a damaged one reported only after the header's own checks, as before.
        header: bytes | None = None
        self.entries: dict[bytes, BundleEntry] = {}
        damaged: tuple[bytes, WireError] | None = None
        for key, value in self.table.items():
            if not key:
                header = value  # keys strictly increase: the empty key comes first
                continue
            try:
                self.entries[key] = decode_entry(value)
            except WireError as exc:
                if damaged is None:
                    damaged = key, exc
                self.entries[key] = None  # type: ignore[assignment]  # (counted; the reader is refused below)
        if header is None:
            raise CorruptArtifact(
                f"{self.index_path}: no bundle header (key \"\"); expected a TensorFlow tensor-bundle index"
            )
        try:
            self.header = decode_header(header)
        except WireError as exc:
            raise CorruptArtifact(
                f"{self.index_path}: bundle header does not parse as BundleHeaderProto ({exc}); the index is damaged"
            ) from None
        if self.header.endianness != 0:
            raise UnsupportedFeature(
                f"{self.index_path}: bundle is big-endian; ckit reads little-endian bundles only "
                "(re-save the checkpoint on a little-endian machine)"
            )
        if self.header.min_consumer > BUNDLE_VERSION:
            raise UnsupportedFeature(
                f"{self.index_path}: bundle needs reader version {self.header.min_consumer}; "
                f"ckit reads bundle version {BUNDLE_VERSION} (written by a newer TensorFlow)"
            )
        count = len(self.entries)
        self.num_shards = int(self.header.num_shards)
        if self.num_shards < 1 and count:
            raise CorruptArtifact(f"{self.index_path}: header says {self.num_shards} data shards; expected at least 1")
        if self.num_shards > count + 1:
            # Every shard holds at least one entry (TF writes no empty shards beyond the first).
            raise CorruptArtifact(
                f"{self.index_path}: header says {self.num_shards} data shards but the index has only {count} "
                f"entries; expected at most {count + 1} shards (the index is damaged: copy it again)"
            )
        if damaged is not None:
            key, exc = damaged
            raise CorruptArtifact(
                f"{self.index_path}: entry for key {key_text(key)!r} does not parse as BundleEntryProto ({exc}); "
                "the index is damaged"
            )
        self.shard_paths = _ShardPaths(self.prefix, self.num_shards)
        self._maps: dict[int, mmap.mmap | None] = {}

    # -- listing ----------------------------------------------------------------
    def keys(self) -> list[bytes]:
        """Tensor keys as `tf.train.list_variables` shows them: no header, no slice keys."""
        return [k for k in self.entries if not k.startswith(_SLICE_KEY_PREFIX)]

    def shape(self, key: bytes) -> tuple[int, ...]:
        entry = self.entries[key]
        dims = entry.dims
        if any(d < 0 for d in dims):
            raise CorruptArtifact(f"{self.index_path}: tensor {key_text(key)!r} has negative dimension in shape {list(dims)}")
        size = itemsize(self.dtype(key)) if int(entry.dtype) in TF_DTYPE_NAMES and int(entry.dtype) != _STRING else 1
        return check_shape(dims, size or 1, f"{self.index_path}: tensor {key_text(key)!r}")

    def dtype(self, key: bytes) -> str:
        return dtype_label(int(self.entries[key].dtype))

    def spec(self, key: bytes) -> tuple[str, tuple[int, ...], int]:
        """dtype, shape and stored bytes of `key` at once (what `dtype`, `shape`, `nbytes` give one by one):
        listing a checkpoint of many variables reads each entry once."""
        entry = self.entries[key]
        dims = entry.dims
        if _needs_shape_checks(dims):
            dims = self.shape(key)  # the checks with their one-line errors; only odd shapes pay for them
        dtype = dtype_label(entry.dtype)
        return dtype, dims, (self.nbytes(key) if entry.slices else entry.size)

    def specs(self, keys: Iterable[bytes]) -> list[tuple[str, tuple[int, ...], int]]:
        """`spec` of each key, checking each distinct shape once: many tensors share a shape."""
        entries = self.entries
        labels: dict[int, str] = {}
        plain: set[tuple[int, ...]] = set()  # shapes that pass spec's checks as they are
        out = []
        append = out.append
        for key in keys:
            entry = entries[key]
            dims = entry.dims
            if dims not in plain:
                if _needs_shape_checks(dims):
                    dims = self.shape(key)  # as in `spec`: the checks, whose outcome depends on the dtype
                else:
                    plain.add(dims)
            dtype = labels.get(entry.dtype)
            if dtype is None:
                dtype = labels[entry.dtype] = dtype_label(entry.dtype)
            append((dtype, dims, self.nbytes(key) if entry.slices else entry.size))
        return out

    def nbytes(self, key: bytes) -> int:
        entry = self.entries[key]
        if entry.slices:
            size = itemsize(self.dtype(key)) if self.dtype(key) in TF_DTYPE_NAMES.values() else None
            return math.prod(self.shape(key)) * size if size else 0
        return int(entry.size)

    def shards(self) -> list[ShardInfo]:
        """Each data shard, present only when it is a regular file holding every byte the index places there."""
        needed = self._bytes_needed()
        infos = []
        for shard_id, path in enumerate(self.shard_paths):
            try:
                present = path.is_file()  # a directory or FIFO in its place holds no tensor bytes
                size = path.stat().st_size if present else 0
            except OSError:
                present, size = False, 0
            # A truncated shard cannot serve its tensors either: it counts as absent.
            infos.append(ShardInfo(str(path), size, present and size >= needed.get(shard_id, 0)))
        return infos

    def _bytes_needed(self) -> dict[int, int]:
        """Per shard, the end of the last tensor the index places there (computed once: the index is fixed)."""
        cached = getattr(self, "_needed", None)
        if cached is not None:
            return cached
        needed: dict[int, int] = {}
        for entry in self.entries.values():
            if not entry.slices:
                end = entry.offset + entry.size
                if end > needed.get(entry.shard_id, -1):
                    needed[entry.shard_id] = end
        self._needed = needed
        return needed

    def problems(self) -> list[str]:
        """Notes about data that cannot be read, found from the index and file sizes only."""
        notes = []
        shards = self.shards()
        needed = self._bytes_needed()
        for info in shards:
            if not info.present and info.bytes == 0:
                notes.append(f"data shard {info.path} is missing: tensors stored there cannot be read")
        for shard_id, end in sorted(needed.items()):
            if 0 <= shard_id < len(shards) and 0 < shards[shard_id].bytes < end:
                notes.append(
                    f"data shard {shards[shard_id].path} is {shards[shard_id].bytes} bytes but the index needs {end}: "
                    "it is truncated"
                )
        return notes

    # -- reading ------------------------------------------------------------------
    # Tensors are copied out of a read-only map; the pages touched are then released (see _release).
    def _map(self, shard_id: int, key: bytes) -> mmap.mmap | None:
        if shard_id in self._maps:
            return self._maps[shard_id]
        path = self.shard_paths[shard_id]
        if path.exists() and not path.is_file():
            raise CorruptArtifact(
                f"{path}: data shard {shard_id} is not a regular file (a directory, FIFO or device); "
                f"expected the data file holding tensor {key_text(key)!r}"
            )
        try:
            handle = open(path, "rb")
        except FileNotFoundError:
            raise MissingData(
                f"{path}: data shard {shard_id} of {self.num_shards} is missing; tensor {key_text(key)!r} is stored "
                "there (copy the complete checkpoint: the .index and every .data file)"
            ) from None
        except OSError as exc:
            raise MissingData(f"{path}: cannot open data shard ({exc.strerror}); tensor {key_text(key)!r} is stored there") from None
        with handle:
            size = path.stat().st_size
            # mmap refuses empty files; an empty shard can only serve empty tensors.  The map keeps
            # its own descriptor, so the file object can be closed at once.
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        self._maps[shard_id] = mapped
        return mapped

    def _span(self, key: bytes, entry: Any) -> tuple[int, int, int]:
        """An entry's (shard, offset, size), after checking the shard id and that neither is negative."""
        shard_id, offset, size = int(entry.shard_id), int(entry.offset), int(entry.size)
        if not 0 <= shard_id < self.num_shards:
            raise CorruptArtifact(
                f"{self.index_path}: tensor {key_text(key)!r} is in shard {shard_id}; expected 0..{self.num_shards - 1}"
            )
        if offset < 0 or size < 0:
            raise CorruptArtifact(f"{self.index_path}: tensor {key_text(key)!r} has offset {offset} and size {size}; expected non-negative")
        return shard_id, offset, size

    def _stored_span(self, key: bytes, entry: Any) -> tuple[int, int, int, Any]:
        """(shard, offset, size, map) of an entry, checked against the shard and the declared dtype x shape."""
        shard_id, offset, size = self._span(key, entry)
        code = int(entry.dtype)
        if code != _STRING and code in TF_DTYPE_NAMES and not entry.slices:
            name = dtype_label(code)
            width = itemsize(name) if name not in ("resource", "variant") else None
            expected = math.prod(self.shape(key)) * width if width else None
            if expected is not None and size != expected:
                raise CorruptArtifact(
                    f"{self.index_path}: tensor {key_text(key)!r} ({name} {list(self.shape(key))}) has {size} stored "
                    f"bytes; expected {expected}"
                )
        mapped = self._map(shard_id, key)
        available = len(mapped) if mapped is not None else 0
        if offset + size > available:
            raise MissingData(
                f"{self.shard_paths[shard_id]}: data shard is {available} bytes but tensor {key_text(key)!r} needs "
                f"bytes {offset}..{offset + size}; the shard is truncated (copy it again)"
            )
        return shard_id, offset, size, mapped

    def _raw(self, key: bytes, entry: Any) -> bytes:
        shard_id, offset, size, mapped = self._stored_span(key, entry)
        check_fits(size, f"{self.shard_paths[shard_id]}: tensor {key_text(key)!r}")
        try:
            data = mapped[offset : offset + size] if size else b""
        except MemoryError:
            raise too_large(f"{self.shard_paths[shard_id]}: tensor {key_text(key)!r}", size) from None
        _release(mapped, offset, size)
        if int(entry.dtype) == _STRING:
            return data  # its checksum covers a re-encoding of the lengths: verified while decoding
        actual = crc32c(data)
        if actual != unmask(entry.crc32c):
            raise ChecksumMismatch(
                f"{self.shard_paths[shard_id]}: CRC32C of tensor {key_text(key)!r} is 0x{actual:08x}; expected "
                f"0x{unmask(entry.crc32c):08x} from the index (the data shard is damaged)"
            )
        return data

    def read(self, key: str | bytes) -> np.ndarray:
        """The full value of tensor `key` (assembled from slices for partitioned variables)."""
        bkey = key_bytes(key) if isinstance(key, str) else key
        if bkey not in self.entries or bkey.startswith(_SLICE_KEY_PREFIX):
            raise KeyError(key_text(bkey))
        entry = self.entries[bkey]
        if entry.slices:
            return self._read_sliced(bkey, entry)
        return self._decode(bkey, entry, self.shape(bkey), self._raw(bkey, entry))

    def read_chunks(self, key: str | bytes, chunk_elems: int) -> Iterator[np.ndarray] | None:
        """Tensor `key` as flat pieces of `chunk_elems` elements, CRC32C checked over the whole after the
        last piece; None when it cannot be streamed (strings, partitioned, odd dtypes): use `read`.
        A piece is overwritten by the next: use (or copy) it before asking for more.

        Stats and diff of a tensor larger than memory hold one piece at a time.
        """
        bkey = key_bytes(key) if isinstance(key, str) else key
        entry = self.entries.get(bkey)
        if entry is None or entry.slices or int(entry.dtype) not in TF_DTYPE_NAMES:
            return None
        name = dtype_label(int(entry.dtype))
        size_of = itemsize(name) if int(entry.dtype) != _STRING and name not in ("resource", "variant") else None
        shape = self.shape(bkey)
        if not size_of or int(entry.size) != math.prod(shape) * size_of:
            return None  # `read` raises the precise error
        shard_id, offset, size = self._span(bkey, entry)
        mapped = self._map(shard_id, bkey)
        if offset + size > (len(mapped) if mapped is not None else 0):
            return None
        return self._chunks(bkey, entry, mapped, offset, size, numpy_dtype(name), chunk_elems * size_of)

    def _chunks(self, key: bytes, entry: Any, mapped: Any, offset: int, size: int, dtype: Any, step: int) -> Iterator[np.ndarray]:
        # Pieces are read-only views of a map of this tensor's bytes: no copy (a read into a
        # buffer cost a sixth of `stats`).  The map is this generator's own, so a piece kept past
        # the reader's close() breaks nothing; each piece's pages leave this process's resident
        # memory when the next is asked for (they stay in the OS page cache).
        import numpy as np

        path = self.shard_paths[int(entry.shard_id)]
        crc = 0
        if size:
            start = offset - offset % mmap.ALLOCATIONGRANULARITY
            try:
                with open(path, "rb") as handle:
                    view = mmap.mmap(handle.fileno(), offset + size - start, offset=start, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # ValueError: the shard is shorter than the index says
                raise MissingData(f"{path}: data shard ends inside tensor {key_text(key)!r}; the shard is truncated (copy it again)") from None
            data = np.frombuffer(view, dtype=np.uint8, count=size, offset=offset - start)
            for first in range(0, size, step):
                raw = data[first : first + step]
                crc = crc32c(raw, crc)
                yield raw.view(dtype)
                _release(view, offset - start + first, raw.size)
        if crc != unmask(entry.crc32c):
            raise ChecksumMismatch(
                f"{path}: CRC32C of tensor {key_text(key)!r} is 0x{crc:08x}; "
                f"expected 0x{unmask(entry.crc32c):08x} from the index (the data shard is damaged)"
            )

    def _decode(self, key: bytes, entry: Any, shape: tuple[int, ...], data: bytes) -> np.ndarray:
        code = int(entry.dtype)
        name = dtype_label(code)
        if code == _STRING:
            return self._decode_strings(key, entry, shape, data)
        if code not in TF_DTYPE_NAMES or name in ("resource", "variant"):
            raise UnsupportedFeature(
                f"{self.index_path}: tensor {key_text(key)!r} has dtype {name}; ckit reads numeric, bool and string tensors only"
            )
        import numpy as np

        dtype = numpy_dtype(name)
        expected = math.prod(shape) * itemsize(name)
        if len(data) != expected:
            raise CorruptArtifact(
                f"{self.index_path}: tensor {key_text(key)!r} ({name} {list(shape)}) has {len(data)} stored bytes; "
                f"expected {expected}"
            )
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    def _decode_strings(self, key: bytes, entry: Any, shape: tuple[int, ...], data: bytes) -> np.ndarray:
        import numpy as np

        elements = self._string_elements(key, entry, shape, data)  # checks the claimed count first
        out = np.empty(len(elements), dtype=object)
        out[:] = elements
        return out.reshape(shape)

    def read_strings(self, key: str | bytes) -> list[bytes]:
        """The elements of a string tensor, checked, without building a numpy array."""
        bkey = key_bytes(key) if isinstance(key, str) else key
        entry = self.entries[bkey]
        return self._string_elements(bkey, entry, self.shape(bkey), self._raw(bkey, entry))

    def _string_elements(self, key: bytes, entry: Any, shape: tuple[int, ...], data: bytes) -> list[bytes]:
        count = math.prod(shape)
        if count > len(data):
            # Each element needs at least one byte (its varint length), so the shape cannot be true.
            raise CorruptArtifact(
                f"{self.index_path}: string tensor {key_text(key)!r} claims shape {list(shape)} ({count} elements) "
                f"but stores only {len(data)} bytes; expected at least one byte per element (the index is damaged)"
            )
        view = memoryview(data)
        lengths = []
        pos = 0
        for _ in range(count):
            value, pos = read_varint(view, pos, len(data), f"string lengths of tensor {key_text(key)!r}", self.index_path)
            lengths.append(value)
        if pos + 4 > len(data) and count:
            raise CorruptArtifact(f"{self.index_path}: string tensor {key_text(key)!r} ends inside its length table")
        where = self.shard_paths[int(entry.shard_id)]
        entry_crc = 0
        # TF writes the 4-byte length checksum even for a tensor with no elements.
        if count or len(data) - pos == 4:
            if len(data) - pos < 4:
                raise CorruptArtifact(f"{self.index_path}: string tensor {key_text(key)!r} ends before its length checksum")
            as_u32 = struct.pack(f"<{count}I", *(n & 0xFFFFFFFF for n in lengths))
            stored = unmask(struct.unpack_from("<I", data, pos)[0])
            actual = crc32c(as_u32)
            if stored != actual:
                raise ChecksumMismatch(
                    f"{where}: CRC32C of the string lengths of tensor {key_text(key)!r} is 0x{actual:08x}; "
                    f"expected 0x{stored:08x} (the data shard is damaged)"
                )
            entry_crc = crc32c(data[pos : pos + 4], crc32c(as_u32))
            pos += 4
        # tensor_bundle.cc: the entry checksum covers lengths as uint32, the length checksum, then the bytes.
        entry_crc = crc32c(view[pos:], entry_crc)  # (a view: the payload is not copied for its checksum)
        if entry_crc != unmask(entry.crc32c):
            raise ChecksumMismatch(
                f"{where}: CRC32C of tensor {key_text(key)!r} is 0x{entry_crc:08x}; expected "
                f"0x{unmask(entry.crc32c):08x} from the index (the data shard is damaged)"
            )
        if pos + sum(lengths) != len(data):
            raise CorruptArtifact(
                f"{self.index_path}: string tensor {key_text(key)!r} has {len(data) - pos} payload bytes; "
                f"expected {sum(lengths)} from its lengths"
            )
        elements = []
        for n in lengths:
            elements.append(bytes(data[pos : pos + n]))
            pos += n
        return elements

    def _check_span(self, key: bytes, entry: Any) -> None:
        """Shard id and byte span of an entry checked against the shard's size on disk (reads nothing)."""
        shard_id, offset, size = self._span(key, entry)
        path = self.shard_paths[shard_id]
        try:
            available = path.stat().st_size
        except OSError:
            raise MissingData(
                f"{path}: data shard {shard_id} of {self.num_shards} is missing; tensor {key_text(key)!r} is stored "
                "there (copy the complete checkpoint: the .index and every .data file)"
            ) from None
        if offset + size > available:
            raise MissingData(
                f"{path}: data shard is {available} bytes but tensor {key_text(key)!r} needs "
                f"bytes {offset}..{offset + size}; the shard is truncated (copy it again)"
            )

    def _read_sliced(self, key: bytes, entry: Any) -> np.ndarray:
        shape = self.shape(key)
        name = dtype_label(int(entry.dtype))
        if int(entry.dtype) == _STRING:
            raise UnsupportedFeature(f"{self.index_path}: partitioned string variable {key_text(key)!r}; ckit cannot assemble it")
        if int(entry.dtype) not in TF_DTYPE_NAMES or name in ("resource", "variant"):
            raise UnsupportedFeature(
                f"{self.index_path}: tensor {key_text(key)!r} has dtype {name}; ckit reads numeric, bool and string tensors only"
            )
        import numpy as np

        # Check every slice (extent, entry, stored size) before allocating the full tensor.
        pieces = self._slice_pieces(key, shape, entry)
        check_fits(math.prod(shape) * itemsize(name), f"{self.index_path}: tensor {key_text(key)!r}")
        result = np.zeros(shape, dtype=numpy_dtype(name))
        for skey, sub, index, part_shape in pieces:
            result[index] = self._decode(skey, sub, part_shape, self._raw(skey, sub))
        return result

    def _slice_pieces(self, key: bytes, shape: tuple[int, ...], entry: Any) -> list[tuple[bytes, Any, tuple, tuple[int, ...]]]:
        name = dtype_label(int(entry.dtype))
        size = itemsize(name)
        pieces = []
        covered = 0
        stored = 0
        for piece in entry.slices:
            if len(piece) != len(shape):
                raise CorruptArtifact(
                    f"{self.index_path}: slice of {key_text(key)!r} has rank {len(piece)}; expected {len(shape)}"
                )
            extents, index = [], []
            for dim, (first, count) in zip(shape, piece):
                full = count is None  # an extent without `length` spans the whole dimension
                start, length = (0, dim) if full else (first, count)
                if start < 0 or length < 0 or start + length > dim:
                    raise CorruptArtifact(
                        f"{self.index_path}: slice [{start}:{start + length}] of {key_text(key)!r} lies outside dimension {dim}"
                    )
                extents.append((0, -1) if full else (start, length))
                index.append(slice(start, start + length))
            skey = slice_key(key, extents)
            sub = self.entries.get(skey)
            if sub is None:
                raise CorruptArtifact(
                    f"{self.index_path}: slice {extents} of partitioned variable {key_text(key)!r} has no entry; "
                    "the index is incomplete"
                )
            part_shape = tuple(s.stop - s.start for s in index)
            if int(sub.dtype) != int(entry.dtype):
                raise CorruptArtifact(
                    f"{self.index_path}: slice {extents} of {key_text(key)!r} has dtype {dtype_label(int(sub.dtype))}; "
                    f"expected {name} like its variable (the index is damaged)"
                )
            want = math.prod(part_shape) * size
            if int(sub.size) != want:
                raise CorruptArtifact(
                    f"{self.index_path}: slice {extents} of {key_text(key)!r} stores {int(sub.size)} bytes; expected "
                    f"{want} for {name} {list(part_shape)} (the index is damaged)"
                )
            self._check_span(skey, sub)
            pieces.append((skey, sub, tuple(index), part_shape))
            covered += math.prod(part_shape)
            stored += int(sub.size)
        full = math.prod(shape)
        if covered != full or stored != full * size:
            raise CorruptArtifact(
                f"{self.index_path}: slices of {key_text(key)!r} cover {covered} of {full} elements "
                f"({stored} of {full * size} bytes); expected slices that add up to the full {name} {list(shape)} "
                "(the index is damaged or incomplete)"
            )
        return pieces

    def close(self) -> None:
        for mapped in self._maps.values():
            if mapped is not None:
                mapped.close()
        self._maps.clear()


_PAGE = mmap.PAGESIZE


def _release(mapped: mmap.mmap | None, offset: int, size: int) -> None:
    """Drop the pages of a tensor already copied out of the map.

    Touched pages of a file map count towards the process's resident memory until unmapped, so
    reading every tensor of a large checkpoint would otherwise end with the whole shard resident.
    The pages stay in the OS page cache; only this process's claim on them goes.
    """
    if mapped is None or not size or not hasattr(mapped, "madvise"):
        return
    start = offset - offset % _PAGE
    mapped.madvise(mmap.MADV_DONTNEED, start, offset + size - start)


def _has_optimizer_suffix(name: str) -> bool:
    # TF1 slot variables are named <var>/<OptimizerName>[_N] (tf.compat.v1.train.Optimizer._get_or_make_slot).
    return bool(
        re.search(r"/(Adam|Adagrad|AdagradDA|Adadelta|RMSProp|Momentum|Ftrl|ProximalAdagrad|Nadam|Adamax)(_\d+)?(/|$)", name)
        or re.match(r"^(beta1_power|beta2_power)(_\d+)?$", name)
    )


def tf1_role(name: str) -> str:
    """Role of a variable in a checkpoint without an object graph (TF1 Saver), from its name."""
    if name == "global_step" or name.endswith("/global_step"):
        return "counter"
    if _has_optimizer_suffix(name):
        return "optimizer"
    return "weight"


def tf2_key_role(key: str) -> str:
    """Role of a TF2 key when its object graph cannot be read: key patterns are all that is left."""
    if key == OBJECT_GRAPH_KEY:
        return "metadata"
    if key.startswith("optimizer/") or "/.OPTIMIZER_SLOT/" in key:
        return "optimizer"
    if key.split("/", 1)[0] in ("save_counter", "global_step"):
        return "counter"
    if key.startswith("keras_api/"):
        return "other"
    return "weight"


def bundle_tensors(
    bundle: BundleReader, layer_names: dict[int, str] | None = None
) -> tuple[list[TensorInfo], list[str], dict[str, Any], dict[str, Any]]:
    """TensorInfos of a bundle (roles from its object graph if any), layers, producer and metadata.

    `layer_names` maps object-graph node ids to layer names known from other metadata.
    """
    from .object_graph import describe

    keys = bundle.keys()
    graph_bytes: bytes | None = None
    tensors: list[TensorInfo] = []
    producer: dict[str, Any] = {}
    metadata: dict[str, Any] = {"bundle_version": bundle.header.producer, "num_shards": bundle.num_shards}
    layers: list[str] = []
    has_graph = key_bytes(OBJECT_GRAPH_KEY) in bundle.entries
    if has_graph:
        # The object graph is the one tensor read to build the manifest: it is the map of the rest.
        try:
            graph_bytes = bundle.read_strings(OBJECT_GRAPH_KEY)[0]
        except CkitError as exc:
            metadata["object_graph_error"] = str(exc)
    if graph_bytes is not None:
        texts = key_texts(keys)
        described = describe(graph_bytes, texts, str(bundle.index_path), layer_names)
        producer["framework"] = described.framework
        metadata["object_graph_nodes"] = described.node_count
        layers = described.layers
        tensors = [
            trusted_tensor(text, name, dtype, shape, nbytes, role, layer, index)
            for text, (dtype, shape, nbytes), (name, role, layer, index) in zip(texts, bundle.specs(keys), described.keys)
        ]
    else:
        producer["framework"] = "tensorflow" if has_graph or not keys else "tensorflow (TF1 Saver)"
        # (TF1 Saver checkpoints of many variables are listed the same way as those with a graph)
        role_of = tf2_key_role if has_graph else tf1_role
        tensors = [
            trusted_tensor(text, strip_key(text), dtype, shape, nbytes, role_of(text))
            for text, (dtype, shape, nbytes) in zip(key_texts(keys), bundle.specs(keys))
        ]
        if any(bundle.entries[k].slices for k in keys):
            metadata["partitioned_variables"] = sorted(key_text(k) for k in keys if bundle.entries[k].slices)
    return tensors, layers, producer, metadata


class BundleArtifact(ReaderBase):
    """An opened TF checkpoint: manifest from the index, tensors from the data shards."""

    def __init__(self, path: Path) -> None:
        self.prefix, found_beside = resolve_prefix_noted(path)
        if not index_path(self.prefix).exists():
            raise MissingData(
                f"{path}: no index file {index_path(self.prefix)}; expected a TensorFlow checkpoint "
                "(pass the prefix, the .index file, a .data file or the checkpoint directory)"
            )
        self.bundle = BundleReader(self.prefix)
        try:
            tensors, layers, producer, metadata = bundle_tensors(self.bundle)
        except BaseException:
            self.bundle.close()
            raise
        notes = self.bundle.problems()
        if "object_graph_error" in metadata:
            notes.append("the object graph could not be read: roles and names are guessed from the keys")
        if found_beside:
            notes.append(found_beside)
            metadata["state_file_note"] = found_beside  # conversions repeat it: the user must know what was read
        given = Path(path)
        if given.name.endswith(INDEX_SUFFIX) or DATA_SUFFIX_RE.search(given.name):
            notes.append(f"read as the checkpoint prefix {self.prefix} (the path named one of its files)")
        self.manifest = Manifest(
            format="tf-checkpoint",
            path=str(self.prefix),
            tensors=tuple(tensors),
            producer=producer,
            metadata=metadata,
            layers=tuple(layers),
            shards=tuple(self.bundle.shards()),
            notes=tuple(notes),
        )

    def read_tensor(self, key: str) -> np.ndarray:
        return self.bundle.read(key)

    def read_chunks(self, key: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
        return self.bundle.read_chunks(key, chunk_elems)

    def close(self) -> None:
        self.bundle.close()


class TFCheckpointFormat:
    """The `Format` for TensorFlow checkpoints (tensor bundles)."""

    name = "tf-checkpoint"
    description = "TensorFlow checkpoint (tensor bundle: PREFIX.index + PREFIX.data-*)"
    suffixes = (".index", ".data-00000-of-00001")

    def sniff(self, path: Path) -> bool:
        try:
            prefix = resolve_prefix(path)
        except (CkitError, OSError):
            return False
        return has_table_magic(index_path(prefix))

    def open(self, path: Path) -> BundleArtifact:
        return BundleArtifact(Path(path))


TF_CHECKPOINT = TFCheckpointFormat()
