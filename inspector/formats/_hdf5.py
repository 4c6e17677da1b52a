"""HDF5 plumbing shared by the Keras readers: magic check, safe opening, safe walking, attributes.

HDF5 input is treated as hostile, as Keras does (keras/src/saving/saving_lib.py):
soft and external links, external and virtual datasets, and datasets whose
declared size dwarfs what is stored are refused before any byte is read.
h5py is imported lazily so that non-HDF5 formats never load it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from ..errors import CorruptArtifact, UnsafeArtifact, require
from ..manifest import TensorInfo

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# The superblock sits at 0 or after a user block of 512, 1024, 2048, ... bytes.
_MAGIC_OFFSETS = (0,) + tuple(512 << i for i in range(20))

# Same guard as Keras (CVE-2026-0897): a dataset declaring more than 4 GiB
# must have at least 1/1000 of that on disk, else it is a shape bomb.
BOMB_FLOOR_BYTES = 1 << 32
BOMB_MAX_EXPANSION = 1000
_MAX_DEPTH = 64


def h5py():
    """The h5py module, imported on first use."""
    return require("h5py", "hdf5", "reading HDF5 files")


def has_hdf5_magic(source: str | Path | BinaryIO) -> bool:
    """True when an HDF5 superblock signature sits at offset 0 or a user-block offset."""
    try:
        if isinstance(source, (str, Path)):
            with open(source, "rb") as fh:
                return _magic_in(fh)
        position = source.tell()
        try:
            return _magic_in(source)
        finally:
            source.seek(position)
    except (OSError, ValueError):
        return False


def _magic_in(fh: BinaryIO) -> bool:
    end = fh.seek(0, 2)
    for offset in _MAGIC_OFFSETS:
        if offset + len(HDF5_MAGIC) > end:
            return False
        fh.seek(offset)
        if fh.read(len(HDF5_MAGIC)) == HDF5_MAGIC:
            return True
    return False


def open_h5(source: str | Path | BinaryIO, display: str, expected: str):
    """Open an HDF5 file read-only; anything h5py rejects becomes a one-line CorruptArtifact."""
    mod = h5py()
    if isinstance(source, (str, Path)):
        if Path(source).is_dir():
            raise CorruptArtifact(f"{display}: is a directory; expected a file, {expected}")
        if Path(source).exists() and not Path(source).is_file():
            raise CorruptArtifact(f"{display}: not a regular file (a FIFO, socket or device); expected {expected}")
        try:
            size = Path(source).stat().st_size
        except OSError as exc:
            raise CorruptArtifact(f"{display}: cannot be read ({exc.strerror}); expected {expected}") from None
        if size == 0:
            raise CorruptArtifact(f"{display}: the file is empty; expected {expected}")
    if not has_hdf5_magic(source):
        raise CorruptArtifact(f"{display}: no HDF5 signature found (not an HDF5 file); expected {expected}")
    try:
        return mod.File(source, "r")
    except (OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptArtifact(
            f"{display}: HDF5 signature present but the file cannot be opened ({reason}); "
            f"expected {expected}; the file may be truncated or damaged"
        ) from None


def _refuse_link(kind: str, where: str, display: str) -> None:
    raise UnsafeArtifact(f"{display}: '{where}' is an HDF5 {kind}; ckit refuses links, expected plain groups and datasets")


def _open_member(group: Any, name: str, path: str, display: str) -> Any:
    try:
        return group[name]
    except (KeyError, OSError, ValueError) as exc:
        raise CorruptArtifact(f"{display}: cannot open HDF5 object '{path}' ({exc}); the file may be damaged") from None


def _link_kind(group: Any, name: str) -> str:
    mod = h5py()
    link = group.get(name, default=None, getlink=True)
    if isinstance(link, mod.SoftLink):
        return "soft link"
    if isinstance(link, mod.ExternalLink):
        return "external link"
    return "hard" if link is not None else "missing"


def get_object(root: Any, path: str, display: str):
    """The object at `path` below `root`, refusing soft/external links on the way; None when absent."""
    current = root
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        if not isinstance(current, h5py().Group):
            return None
        kind = _link_kind(current, part)
        if kind == "missing":
            return None
        if kind != "hard":
            base = getattr(root, "name", None) or ""
            _refuse_link(kind, base.rstrip("/") + "/" + "/".join(parts[: i + 1]), display)
        current = _open_member(current, part, path, display)
    return current


def check_dataset(ds: Any, display: str) -> None:
    """Refuse external, virtual and shape-bomb datasets (metadata only; reads no data)."""
    if ds.external:
        raise UnsafeArtifact(
            f"{display}: dataset '{ds.name}' stores its data in external file(s) {ds.external[0][0]!r}; "
            "ckit refuses external datasets, expected data inside the file"
        )
    if ds.shape is None:
        raise CorruptArtifact(
            f"{display}: dataset '{ds.name}' has a null dataspace (no shape and no data, h5py.Empty); "
            "expected an array of weights; the file is damaged or was not written by Keras"
        )
    if ds.is_virtual:
        raise UnsafeArtifact(
            f"{display}: dataset '{ds.name}' is a virtual dataset; ckit refuses virtual datasets, "
            "expected data inside the file"
        )
    declared = math.prod(ds.shape or ()) * ds.dtype.itemsize
    if declared > BOMB_FLOOR_BYTES:
        stored = ds.id.get_storage_size()
        if declared > BOMB_MAX_EXPANSION * stored:
            raise UnsafeArtifact(
                f"{display}: dataset '{ds.name}' declares {declared} bytes (shape {tuple(ds.shape)}) but stores "
                f"only {stored}; refusing a potential shape/decompression bomb"
            )


def walk(root: Any, display: str) -> Iterator[tuple[str, Any]]:
    """Every (path, object) below `root`, groups before their children, names in natural order.

    Links other than hard links are refused wherever they are; hard-link
    cycles are visited once.
    """
    mod = h5py()
    seen: set[Any] = set()

    def visit(group: Any, prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
        if depth > _MAX_DEPTH:
            raise CorruptArtifact(f"{display}: groups nested deeper than {_MAX_DEPTH} levels at '{prefix}'")
        for name in sorted(group.keys(), key=natural_key):
            path = f"{prefix}/{name}"
            kind = _link_kind(group, name)
            if kind not in ("hard", "missing"):
                _refuse_link(kind, path, display)
            obj = _open_member(group, name, path, display)
            if obj.id in seen:
                continue
            seen.add(obj.id)
            yield path, obj
            if isinstance(obj, mod.Group):
                yield from visit(obj, path, depth + 1)

    yield from visit(root, "", 0)


def natural_key(name: str) -> tuple:
    """Sort key putting `vars/2` before `vars/10` and `dense_2` before `dense_10`."""
    import re

    return tuple((0, int(tok), "") if tok.isdigit() else (1, 0, tok) for tok in re.split(r"(\d+)", name))


def decode(value: Any) -> Any:
    """Attribute value as Python: bytes/np.bytes_ -> str, arrays of strings -> list of str."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in ("S", "O", "U"):
            return [decode(v) for v in value.reshape(-1).tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attr(obj: Any, name: str, display: str) -> Any:
    """Attribute `name` decoded, joining Keras' chunked form (`name0`, `name1`, ...); None when absent.

    Keras splits a list attribute larger than 64512 bytes over numbered
    attributes (hdf5_format.save_attributes_to_hdf5_group).
    """
    try:
        attrs = obj.attrs
        if name in attrs:
            return decode(attrs[name])
        if f"{name}0" not in attrs:
            return None
        joined: list[Any] = []
        chunk = 0
        while f"{name}{chunk}" in attrs:
            part = decode(attrs[f"{name}{chunk}"])
            joined.extend(part if isinstance(part, list) else [part])
            chunk += 1
        return joined
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise CorruptArtifact(f"{display}: cannot read attribute '{name}' of '{obj.name}' ({exc})") from None


def as_list(value: Any) -> list[str]:
    """An attribute that should be a list of names; empty float arrays (Keras' 'no weights') become []."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)]


def dataset_dtype(ds: Any) -> str:
    """ckit dtype name of a dataset, honouring Keras' `dtype="bfloat16"` marker attribute."""
    from ..dtypes import dtype_name

    marker = ds.attrs.get("dtype") if "dtype" in ds.attrs else None
    if marker is not None and decode(marker) == "bfloat16" and ds.dtype.itemsize == 2:
        return "bfloat16"
    if h5py().check_string_dtype(ds.dtype) is not None or ds.dtype.kind in ("S", "O", "U"):
        return "string"
    return dtype_name(ds.dtype)


def dataset_nbytes(ds: Any, dtype: str) -> int:
    """Bytes of the stored value without reading it (variable-length strings: bytes on disk)."""
    if dtype == "string" and h5py().check_string_dtype(ds.dtype) is not None and ds.dtype.kind == "O":
        return int(ds.id.get_storage_size())
    return int(math.prod(ds.shape or ()) * ds.dtype.itemsize)


def tensor_info(ds: Any, key: str, name: str, role: str, layer: str | None, index: int | None) -> TensorInfo:
    """The manifest entry of one dataset, from its metadata only."""
    dtype = dataset_dtype(ds)
    return TensorInfo(key=key, name=name, dtype=dtype, shape=tuple(ds.shape or ()),
                      nbytes=dataset_nbytes(ds, dtype), role=role, layer=layer, index=index)


def _read_contiguous(ds: Any, display: str) -> np.ndarray | None:
    """Read an unfiltered, contiguous numeric dataset straight from its bytes in the file.

    Keras writes weights this way.  h5py's general read path costs about three times a plain
    read of the same bytes, which made it the slowest step of a conversion.  Anything unusual
    (chunks, filters, a user block, a non-file driver, big-endian data) takes h5py's path.
    """
    f = ds.file
    if f.driver != "sec2" or f.userblock_size or ds.chunks is not None or ds.dtype.kind not in "biufc":
        return None
    if ds.dtype.byteorder == ">" or ds.id.get_create_plist().get_nfilters():
        return None
    offset = ds.id.get_offset()
    nbytes = int(math.prod(ds.shape or ())) * ds.dtype.itemsize
    if offset is None or nbytes == 0:
        return None  # never written (all fill value) or empty: h5py knows what to return
    size = os.path.getsize(f.filename)
    if offset < 0 or offset + nbytes > size:
        raise CorruptArtifact(
            f"{display}: dataset '{ds.name}' claims bytes {offset}..{offset + nbytes} of a {size}-byte file; "
            "the file is truncated or damaged"
        )
    out = np.empty(ds.shape or (), dtype=ds.dtype)
    with open(f.filename, "rb", buffering=0) as handle:
        handle.seek(offset)
        got = handle.readinto(memoryview(out).cast("B"))
    if got != nbytes:
        raise CorruptArtifact(f"{display}: dataset '{ds.name}' ends after {got} of {nbytes} bytes; the file is truncated")
    return out


def read_dataset(ds: Any, display: str) -> np.ndarray:
    """A dataset's value as numpy (strings as an object array of bytes), after the safety checks."""
    check_dataset(ds, display)
    dtype = dataset_dtype(ds)
    try:
        if dtype == "string":
            raw = ds[()]
            arr = np.asarray(raw, dtype=object) if not isinstance(raw, bytes) else np.array(raw, dtype=object)
            flat = [bytes(v) if isinstance(v, (bytes, np.bytes_)) else str(v).encode("utf-8") for v in arr.reshape(-1)]
            out = np.empty(len(flat), dtype=object)
            out[:] = flat
            return out.reshape(arr.shape)
        value = _read_contiguous(ds, display)
        if value is None:
            value = np.asarray(ds[()])
    except (OSError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptArtifact(f"{display}: cannot read dataset '{ds.name}' ({reason}); the file may be truncated or damaged") from None
    if value.dtype.byteorder == ">":
        # Callers compare bytes across formats: hand out native little-endian values.
        value = value.astype(value.dtype.newbyteorder("<"))
    if dtype == "bfloat16":
        import ml_dtypes

        value = value.view(ml_dtypes.bfloat16) if value.dtype.itemsize == 2 else value.astype(ml_dtypes.bfloat16)
    return value


def dataset_chunks(ds: Any, display: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
    """A numeric dataset as flat pieces of `chunk_elems` elements, read from the file piece by piece;
    None when `read_dataset` must take it whole (strings, bfloat16 markers, scalars, odd dtypes).

    Stats and diff of a dataset larger than memory hold one piece at a time: contiguous datasets
    (what Keras writes) are read straight from their bytes, anything else by leading-axis rows.
    """
    check_dataset(ds, display)
    if dataset_dtype(ds) in ("string", "bfloat16") or ds.dtype.kind not in "biuf" or not ds.shape:
        return None
    return _dataset_pieces(ds, display, chunk_elems)


def _dataset_pieces(ds: Any, display: str, chunk_elems: int) -> Iterator[np.ndarray]:
    total = int(math.prod(ds.shape))
    native = ds.dtype.newbyteorder("<") if ds.dtype.byteorder == ">" else ds.dtype
    f = ds.file
    offset = ds.id.get_offset() if ds.chunks is None else None
    plain = (f.driver == "sec2" and not f.userblock_size and ds.chunks is None and ds.dtype.byteorder != ">"
             and not ds.id.get_create_plist().get_nfilters() and offset is not None and total)
    try:
        if plain:
            nbytes = total * ds.dtype.itemsize
            if offset < 0 or offset + nbytes > os.path.getsize(f.filename):
                raise CorruptArtifact(
                    f"{display}: dataset '{ds.name}' claims bytes {offset}..{offset + nbytes} of a "
                    f"{os.path.getsize(f.filename)}-byte file; the file is truncated or damaged"
                )
            with open(f.filename, "rb", buffering=0) as handle:
                handle.seek(offset)
                for start in range(0, total, chunk_elems):
                    out = np.empty(min(chunk_elems, total - start), dtype=ds.dtype)
                    got = handle.readinto(memoryview(out).cast("B"))
                    if got != out.nbytes:
                        raise CorruptArtifact(f"{display}: dataset '{ds.name}' is cut short; the file is truncated")
                    yield out
            return
        row = int(math.prod(ds.shape[1:]))
        rows = max(1, chunk_elems // max(row, 1))
        pending = np.empty(0, dtype=native)
        for start in range(0, ds.shape[0], rows):
            block = np.asarray(ds[start : start + rows], dtype=native).reshape(-1)
            pending = np.concatenate([pending, block]) if pending.size else block
            while pending.size >= chunk_elems:
                yield pending[:chunk_elems]
                pending = pending[chunk_elems:]
        if pending.size:
            yield pending
    except (OSError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorruptArtifact(f"{display}: cannot read dataset '{ds.name}' ({reason}); the file may be truncated or damaged") from None
