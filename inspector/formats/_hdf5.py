"""HDF5 plumbing shared by the Keras readers: magic check, isolated parsing, safe walking, attributes.

HDF5 input is treated as hostile, as Keras does (keras/src/saving/saving_lib.py):
soft and external links, external and virtual datasets, and datasets whose
declared size dwarfs what is stored are refused before any byte is read.

The HDF5 library never runs in ckit's own process (`_h5isolate`): a child
process parses the file under a time and memory limit and describes it (every
group, link, attribute and dataset's metadata); the readers walk that
description (`Group`, `Dataset` below, a small read-only subset of h5py's
API) and ckit reads contiguous tensor data from the file itself.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np

from ..errors import CorruptArtifact, UnsafeArtifact
from ..limits import check_fits, check_shape
from ..manifest import TensorInfo
from ..naturalsort import natural_key
from . import _h5isolate

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# The superblock sits at 0 or after a user block of 512, 1024, 2048, ... bytes.
_MAGIC_OFFSETS = (0,) + tuple(512 << i for i in range(20))

# Same guard as Keras (CVE-2026-0897): a dataset declaring more than 4 GiB
# must have at least 1/1000 of that on disk, else it is a shape bomb.
BOMB_FLOOR_BYTES = 1 << 32
BOMB_MAX_EXPANSION = 1000
_MAX_DEPTH = 64


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


# -- where the HDF5 bytes are -------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """An HDF5 file: a path, a window onto a file (a stored zip member), or bytes in memory."""

    path: str
    offset: int = 0
    size: int | None = None  # None: the whole file
    data: bytes | None = None  # an inflated zip member

    @functools.cached_property  # asked once per dataset: a stat each time cost 10% of a diff
    def length(self) -> int:
        if self.data is not None:
            return len(self.data)
        if self.size is not None:
            return self.size
        return os.path.getsize(self.path)


class Attrs:
    """A read-only mapping of decoded attribute values (bytes as text, arrays as lists)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def keys(self):
        return self._values.keys()

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, name: str) -> Any:
        value = self._values[name]
        if isinstance(value, dict):
            if "__error__" in value:
                raise OSError(value["__error__"])
            raise TypeError(f"unsupported attribute type {value.get('__unsupported__')}")
        return value

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._values else default


class H5Object:
    def __init__(self, file: "H5File", oid: str, name: str) -> None:
        self.file = file
        self.id = oid  # identity of the HDF5 object (two hard links to one object share it)
        self.name = name or "/"
        self._node = file.tree["objects"][oid]
        self.attrs = Attrs(self._node.get("attrs") or {})


class Group(H5Object):
    def _links(self) -> list[list[Any]]:
        return self._node.get("links") or []

    def keys(self) -> list[str]:
        return [link[0] for link in self._links()]

    def __contains__(self, name: object) -> bool:
        return self._link(str(name)) is not None and self._link(str(name))[1] == "hard"

    def _link(self, name: str) -> list[Any] | None:
        by_name = self.__dict__.get("_by_name")
        if by_name is None:
            # Looked up by name once per child: a dict, not a scan (a group of 10,000 layers made
            # listing the file quadratic).  The first link of a name wins, as a scan would find it.
            by_name = self.__dict__["_by_name"] = {}
            for link in self._links():
                by_name.setdefault(link[0], link)
        return by_name.get(name)

    def link_kind(self, name: str) -> str:
        """'hard', 'soft link', 'external link', 'broken' or 'missing'."""
        link = self._link(name)
        return "missing" if link is None else link[1]

    def child(self, name: str) -> "H5Object":
        link = self._link(name)
        if link is None:
            raise KeyError(f"no object named {name!r}")
        if link[1] != "hard":
            raise OSError(link[2] or f"{name!r} is a {link[1]}")
        return self.file.make(link[2], f"{self.name.rstrip('/')}/{name}")

    def __getitem__(self, path: str) -> "H5Object":
        current: H5Object = self
        for part in [p for p in path.split("/") if p]:
            if not isinstance(current, Group):
                raise KeyError(path)
            current = current.child(part)
        return current

    @property
    def too_deep(self) -> bool:
        return bool(self._node.get("too_deep"))


class Dataset(H5Object):
    def __init__(self, file: "H5File", oid: str, name: str) -> None:
        super().__init__(file, oid, name)
        node = self._node
        self.shape: tuple[int, ...] | None = None if node.get("shape") is None else tuple(int(n) for n in node["shape"])
        try:
            self.dtype = np.dtype(node.get("dtype"))
        except (TypeError, ValueError):
            self.dtype = np.dtype("V1")
        self.is_string = bool(node.get("string"))
        self.is_vlen_string = bool(node.get("vlen_string"))
        self.external = node.get("external")
        self.is_virtual = bool(node.get("virtual"))
        self.chunks = node.get("chunks")
        self.nfilters = int(node.get("nfilters") or 0)
        self.storage_size = int(node.get("storage_size") or 0)
        self.offset = node.get("offset")


class Other(H5Object):
    """A named datatype: neither a group nor data."""


class H5File(Group):
    """One HDF5 file as the worker described it; data reads go to the file or back to the worker."""

    def __init__(self, source: Source, display: str, tree: dict[str, Any], worker: "_h5isolate.Worker | None") -> None:
        self.source = source
        self.display = display
        self.tree = tree
        self.driver = tree.get("driver")
        self.userblock_size = int(tree.get("userblock_size") or 0)
        self._worker = worker
        self._objects: dict[tuple[str, str], H5Object] = {}
        Group.__init__(self, self, str(tree["root"]), "/")

    def make(self, oid: str, name: str) -> H5Object:
        key = (oid, name)
        if key not in self._objects:
            node = self.tree["objects"].get(oid)
            if node is None:
                raise OSError(f"object {oid} is not in the description")
            cls = {"g": Group, "d": Dataset}.get(node.get("t"), Other)
            self._objects[key] = cls(self, oid, name)
        return self._objects[key]

    def worker(self) -> "_h5isolate.Worker":
        """The worker with this file open (restarted if it was stopped)."""
        if self._worker is None or self._worker._proc is None:
            self._worker = _h5isolate.Worker(self.display)
            _open_in(self._worker, self.source, self.display)
        return self._worker

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self) -> "H5File":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_in(worker: "_h5isolate.Worker", source: Source, display: str) -> dict[str, Any]:
    header = {"op": "open", "source": {"path": source.path, "offset": source.offset, "size": source.size}}
    try:
        reply, _ = worker.request(header, source.data or b"", seconds=_h5isolate.METADATA_SECONDS,
                                  memory=_h5isolate.METADATA_MEMORY, max_reply=0,
                                  what="reading the file's structure")
    except _h5isolate.WorkerError as exc:
        raise CorruptArtifact(str(exc)) from None
    tree = reply.get("tree")
    if not isinstance(tree, dict) or not isinstance(tree.get("objects"), dict) or str(tree.get("root")) not in tree["objects"]:
        raise CorruptArtifact(f"{display}: the HDF5 reader process returned no description of the file")
    return tree


# One file's outcome cached: format sniffing and opening ask about the same file in a row, and a
# damaged file must not cost a worker start per format that sniffs it.
_CACHE: dict[tuple, dict[str, Any] | str] = {}


def _cache_key(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


def describe(source: Source, display: str, keep_worker: bool = False) -> H5File:
    """Parse `source` in a worker; the description as an `H5File`."""
    _h5isolate.check_h5py()
    key = _cache_key(source.path) if source.data is None and source.size is None else None
    cached = _CACHE.get(key) if key is not None else None
    if isinstance(cached, str):
        raise CorruptArtifact(f"{display}: {cached}")
    if cached is not None:
        return H5File(source, display, cached, None)
    worker = _h5isolate.Worker(display)
    try:
        tree = _open_in(worker, source, display)
    except CorruptArtifact as exc:
        worker.close()
        message = str(exc)
        if message.startswith(f"{display}: "):
            reason = message[len(display) + 2:]
        else:
            reason = (f"HDF5 signature present but the file cannot be opened ({message}); "
                      "the file may be truncated or damaged")
        if key is not None:
            _CACHE.clear()
            _CACHE[key] = reason
        raise CorruptArtifact(f"{display}: {reason}") from None
    except BaseException:
        worker.close()
        raise
    if key is not None:
        _CACHE.clear()
        _CACHE[key] = tree
    if not keep_worker:
        worker.close()
        worker = None
    return H5File(source, display, tree, worker)


def sniff_h5(path: Path) -> H5File | None:
    """The description of `path` when it is a readable HDF5 file, else None (never raises)."""
    try:
        if not path.is_file() or not has_hdf5_magic(path):
            return None
        return describe(Source(str(path)), str(path))
    except Exception:  # sniffing must never raise on foreign or damaged files
        return None


def open_h5(source: str | Path | Source, display: str, expected: str) -> H5File:
    """Open an HDF5 file read-only; anything the HDF5 library rejects becomes a one-line CorruptArtifact."""
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
        source = Source(str(source))
    if not _source_has_magic(source):
        raise CorruptArtifact(f"{display}: no HDF5 signature found (not an HDF5 file); expected {expected}")
    try:
        return describe(source, display)
    except CorruptArtifact as exc:
        message = str(exc)
        if "; expected" in message:
            raise
        raise CorruptArtifact(f"{message}; expected {expected}") from None


def _source_has_magic(source: Source) -> bool:
    import io

    if source.data is not None:
        return has_hdf5_magic(io.BytesIO(source.data))
    if source.size is None:
        return has_hdf5_magic(source.path)
    try:
        with open(source.path, "rb") as fh:
            fh.seek(source.offset)
            return has_hdf5_magic(io.BytesIO(fh.read(min(source.size, 8 + (512 << 19)))))
    except OSError:
        return False


# -- walking -------------------------------------------------------------------------------


def _refuse_link(kind: str, where: str, display: str) -> None:
    raise UnsafeArtifact(f"{display}: '{where}' is an HDF5 {kind}; ckit refuses links, expected plain groups and datasets")


def _open_member(group: Group, name: str, path: str, display: str) -> H5Object:
    try:
        return group.child(name)
    except (KeyError, OSError, ValueError) as exc:
        raise CorruptArtifact(f"{display}: cannot open HDF5 object '{path}' ({exc}); the file may be damaged") from None


def link_kind(group: Any, name: str) -> str:
    """'hard', 'soft link', 'external link', 'broken' or 'missing'."""
    return group.link_kind(name) if isinstance(group, Group) else "missing"


def get_object(root: Any, path: str, display: str):
    """The object at `path` below `root`, refusing soft/external links on the way; None when absent."""
    current = root
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        if not isinstance(current, Group):
            return None
        kind = current.link_kind(part)
        if kind == "missing":
            return None
        if kind not in ("hard", "broken"):
            base = getattr(root, "name", None) or ""
            _refuse_link(kind, base.rstrip("/") + "/" + "/".join(parts[: i + 1]), display)
        current = _open_member(current, part, path, display)
    return current


def check_dataset(ds: Dataset, display: str) -> None:
    """Refuse external, virtual and shape-bomb datasets (metadata only; reads no data)."""
    if ds.external:
        raise UnsafeArtifact(
            f"{display}: dataset '{ds.name}' stores its data in external file(s) {ds.external!r}; "
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
    check_shape(ds.shape, ds.dtype.itemsize, f"{display}: dataset '{ds.name}'")
    declared = math.prod(ds.shape or ()) * ds.dtype.itemsize
    if declared > BOMB_FLOOR_BYTES:
        stored = ds.storage_size
        if declared > BOMB_MAX_EXPANSION * stored:
            raise UnsafeArtifact(
                f"{display}: dataset '{ds.name}' declares {declared} bytes (shape {tuple(ds.shape)}) but stores "
                f"only {stored}; refusing a potential shape/decompression bomb"
            )


def walk(root: Group, display: str) -> Iterator[tuple[str, Any]]:
    """Every (path, object) below `root`, groups before their children, names in natural order.

    Links other than hard links are refused wherever they are; hard-link
    cycles are visited once.
    """
    seen: set[Any] = set()

    def visit(group: Group, prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
        if depth > _MAX_DEPTH or group.too_deep:
            raise CorruptArtifact(f"{display}: groups nested deeper than {_MAX_DEPTH} levels at '{prefix}'")
        for name in sorted(group.keys(), key=natural_key):
            path = f"{prefix}/{name}"
            kind = group.link_kind(name)
            if kind not in ("hard", "missing", "broken"):
                _refuse_link(kind, path, display)
            obj = _open_member(group, name, path, display)
            if obj.id in seen:
                continue
            seen.add(obj.id)
            yield path, obj
            if isinstance(obj, Group):
                yield from visit(obj, path, depth + 1)

    yield from visit(root, "", 0)


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


def dataset_dtype(ds: Dataset) -> str:
    """ckit dtype name of a dataset, honouring Keras' `dtype="bfloat16"` marker attribute."""
    from ..dtypes import dtype_name

    marker = ds.attrs.get("dtype") if "dtype" in ds.attrs else None
    if marker is not None and decode(marker) == "bfloat16" and ds.dtype.itemsize == 2:
        return "bfloat16"
    if ds.is_string or ds.dtype.kind in ("S", "O", "U"):
        return "string"
    if ds.dtype.kind not in "biufc":
        raise CorruptArtifact(
            f"{ds.file.display}: dataset '{ds.name}' has HDF5 type {ds.dtype} (compound, opaque or reference); "
            "expected numbers or strings; the file is damaged or was not written by Keras"
        )
    return dtype_name(ds.dtype)


def dataset_nbytes(ds: Dataset, dtype: str) -> int:
    """Bytes of the stored value without reading it (variable-length strings: bytes on disk)."""
    if dtype == "string" and ds.is_vlen_string:
        return ds.storage_size
    return int(math.prod(ds.shape or ()) * ds.dtype.itemsize)


def tensor_info(ds: Dataset, key: str, name: str, role: str, layer: str | None, index: int | None) -> TensorInfo:
    """The manifest entry of one dataset, from its metadata only."""
    dtype = dataset_dtype(ds)
    return TensorInfo(key=key, name=name, dtype=dtype, shape=tuple(ds.shape or ()),
                      nbytes=dataset_nbytes(ds, dtype), role=role, layer=layer, index=index)


def _plain(dtype: np.dtype) -> bool:
    """Numbers, or opaque fixed-size bytes (how Keras stores bfloat16, marked by an attribute)."""
    return dtype.kind in "biufc" or (dtype.kind == "V" and dtype.fields is None and dtype.subdtype is None)


def _contiguous_span(ds: Dataset, display: str) -> tuple[int, int] | None:
    """(absolute offset, bytes) of an unfiltered, contiguous numeric dataset's data in its file, or None.

    Keras writes weights this way, and ckit reads them straight from the file: h5py's general
    read path costs about three times a plain read, and the HDF5 library stays in its worker.
    Anything unusual (chunks, filters, a user block, big-endian data) is read by the worker.
    """
    source = ds.file.source
    if ds.file.userblock_size or ds.chunks is not None or not _plain(ds.dtype) or ds.is_string:
        return None
    if ds.dtype.byteorder == ">" or ds.nfilters:
        return None
    offset = ds.offset
    nbytes = int(math.prod(ds.shape or ())) * ds.dtype.itemsize
    if offset is None or nbytes == 0:
        return None  # never written (all fill value) or empty: the worker knows what to return
    size = source.length
    if not isinstance(offset, int) or offset < 0 or offset + nbytes > size:
        raise CorruptArtifact(
            f"{display}: dataset '{ds.name}' claims bytes {offset}..{offset + nbytes} of a {size}-byte file; "
            "the file is truncated or damaged"
        )
    return offset, nbytes


def _read_span(ds: Dataset, offset: int, nbytes: int, out: memoryview, display: str) -> None:
    source = ds.file.source
    if source.data is not None:
        out[:] = memoryview(source.data)[offset:offset + nbytes]
        return
    with open(source.path, "rb", buffering=0) as handle:
        handle.seek(source.offset + offset)
        got = handle.readinto(out)
    if got != nbytes:
        raise CorruptArtifact(f"{display}: dataset '{ds.name}' ends after {got} of {nbytes} bytes; the file is truncated")


def _read_in_worker(ds: Dataset, display: str) -> np.ndarray:
    """A dataset h5py must decode (chunked, filtered, strings, fill value), read by the worker."""
    declared = int(math.prod(ds.shape or ())) * max(ds.dtype.itemsize, 1)
    source_size = ds.file.source.length
    # Strings live in the file's heap (never more than the file); numbers are their declared size.
    cap = source_size + (1 << 20) if ds.is_string else declared
    seconds = _h5isolate.METADATA_SECONDS + _h5isolate.READ_SECONDS_PER_GIB * max(cap, 1) / (1 << 30)
    worker = ds.file.worker()
    try:
        reply, data = worker.request({"op": "read", "path": ds.name}, seconds=seconds,
                                     memory=_h5isolate.METADATA_MEMORY + 3 * cap, max_reply=cap,
                                     what=f"reading dataset '{ds.name}'")
    except _h5isolate.WorkerError as exc:
        raise CorruptArtifact(
            f"{display}: cannot read dataset '{ds.name}' ({exc}); the file may be truncated or damaged"
        ) from None
    shape = tuple(int(n) for n in reply.get("shape") or ())
    if shape != tuple(ds.shape or ()):
        raise CorruptArtifact(f"{display}: dataset '{ds.name}' read with shape {list(shape)}, declared {list(ds.shape or ())}")
    if ds.is_string or "strings" in reply:
        lengths = [int(n) for n in reply.get("strings") or []]
        if sum(lengths) != len(data) or len(lengths) != math.prod(shape):
            raise CorruptArtifact(f"{display}: dataset '{ds.name}' read back inconsistent strings")
        out = np.empty(len(lengths), dtype=object)
        pos = 0
        for i, length in enumerate(lengths):
            out[i] = bytes(data[pos:pos + length])
            pos += length
        return out.reshape(shape)
    dtype = np.dtype(str(reply.get("dtype")))
    if not _plain(dtype) or dtype.itemsize != ds.dtype.itemsize or len(data) != math.prod(shape) * dtype.itemsize:
        raise CorruptArtifact(f"{display}: dataset '{ds.name}' read back {len(data)} bytes of {dtype}, not its declared size")
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def read_dataset(ds: Dataset, display: str) -> np.ndarray:
    """A dataset's value as numpy (strings as an object array of bytes), after the safety checks."""
    check_dataset(ds, display)
    dtype = dataset_dtype(ds)
    span = None if dtype == "string" else _contiguous_span(ds, display)
    check_fits(dataset_nbytes(ds, dtype), f"{display}: dataset '{ds.name}'")
    if span is not None:
        offset, nbytes = span
        value = np.empty(ds.shape or (), dtype=ds.dtype)
        _read_span(ds, offset, nbytes, memoryview(value).cast("B"), display)
    else:
        value = _read_in_worker(ds, display)
    if dtype == "string":
        return value
    if value.dtype.byteorder == ">":
        # Callers compare bytes across formats: hand out native little-endian values.
        value = value.astype(value.dtype.newbyteorder("<"))
    if dtype == "bfloat16":
        import ml_dtypes

        value = value.view(ml_dtypes.bfloat16) if value.dtype.itemsize == 2 else value.astype(ml_dtypes.bfloat16)
    return value


def dataset_chunks(ds: Dataset, display: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
    """A numeric dataset as flat pieces of `chunk_elems` elements, read from the file piece by piece;
    None when `read_dataset` must take it whole (strings, bfloat16 markers, scalars, odd dtypes, and
    data the HDF5 library must decode: chunked, filtered or big-endian, read by the worker).

    Stats, diff and verify of a dataset larger than memory hold one piece at a time: contiguous
    datasets (what Keras writes) are read straight from their bytes.  HDF5 keeps no checksum of
    them: the pieces prove only that every byte is there.
    """
    check_dataset(ds, display)
    if dataset_dtype(ds) in ("string", "bfloat16") or ds.dtype.kind not in "biuf" or not ds.shape:
        return None
    span = _contiguous_span(ds, display)
    if span is None:
        return None
    return _dataset_pieces(ds, span, display, chunk_elems)


def _dataset_pieces(ds: Dataset, span: tuple[int, int], display: str, chunk_elems: int) -> Iterator[np.ndarray]:
    offset, nbytes = span
    total = nbytes // ds.dtype.itemsize
    source = ds.file.source
    if source.data is not None:
        for start in range(0, total, chunk_elems):
            out = np.empty(min(chunk_elems, total - start), dtype=ds.dtype)
            _read_span(ds, offset + start * ds.dtype.itemsize, out.nbytes, memoryview(out).cast("B"), display)
            yield out
        return
    # A file: pieces are read-only views of a map of the dataset's bytes (no copy, no open per
    # piece; stats and diff spent half their reading time on both).  The map is this generator's
    # own; each piece's pages leave this process's resident memory when the next is asked for.
    import mmap

    at = source.offset + offset  # checked against the file's size by _contiguous_span
    start_at = at - at % mmap.ALLOCATIONGRANULARITY
    try:
        with open(source.path, "rb") as handle:
            view = mmap.mmap(handle.fileno(), at + nbytes - start_at, offset=start_at, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # ValueError: the file is shorter than that
        raise CorruptArtifact(f"{display}: dataset '{ds.name}' ends past the end of the file; the file is truncated") from None
    data = np.frombuffer(view, dtype=np.uint8, count=nbytes, offset=at - start_at)
    step = chunk_elems * ds.dtype.itemsize
    for first in range(0, nbytes, step):
        raw = data[first : first + step]
        yield raw.view(ds.dtype)
        if hasattr(view, "madvise"):
            page = at - start_at + first
            view.madvise(mmap.MADV_DONTNEED, page - page % mmap.PAGESIZE, raw.size + page % mmap.PAGESIZE)
