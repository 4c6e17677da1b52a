"""The HDF5 library's side of ckit: runs in a child process, never in ckit's own.

The HDF5 C library parses metadata (object headers, B-trees, heaps, attribute
messages) with loops and offsets taken from the file.  One changed byte can
make it read out of bounds (SIGSEGV), loop forever (no Python signal handler
runs meanwhile) or allocate gigabytes.  So ckit never calls it in-process:
`inspector/formats/_hdf5.py` starts this script with a memory limit, asks it
for a description of the file (every group, link, attribute and dataset's
metadata) and reads contiguous tensor data from the file itself.  Only data
h5py has to decode (chunked, filtered or string datasets) is read here and
sent back.

Standalone on purpose: it imports only the standard library, numpy and
h5py, so its start-up is the h5py import and nothing of ckit.

Protocol (stdin/stdout, one request at a time): a message is a 4-byte
little-endian header length, a JSON header, then `header["nbytes"]` raw
bytes.  Requests: `open` (source: `path` [+ `offset`, `size`: a window onto
a file, e.g. a stored zip member], or the file's bytes as payload),
`read` (one dataset's value).  Replies: `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`.
"""

from __future__ import annotations

import io
import json
import math
import os
import resource
import signal
import struct
import sys

MAX_DEPTH = 64
MAX_OBJECTS = 1_000_000


def _send(out, header: dict, payload: bytes | memoryview = b"") -> None:
    header = dict(header, nbytes=len(payload))
    raw = json.dumps(header, ensure_ascii=True, default=str).encode("ascii")
    out.write(struct.pack("<I", len(raw)))
    out.write(raw)
    if len(payload):
        out.write(payload)
    out.flush()


def _recv(inp) -> tuple[dict, bytes] | None:
    head = inp.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack("<I", head)
    header = json.loads(inp.read(size))
    payload = inp.read(header.get("nbytes", 0)) if header.get("nbytes") else b""
    return header, payload


class _Window(io.RawIOBase):
    """Read-only view of bytes [offset, offset + size) of a file (a stored zip member)."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._fh = open(path, "rb")
        self._start, self._size, self._pos = offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        count = max(0, min(len(view), self._size - self._pos))
        if count == 0:
            return 0
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(count)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


def _value(value):
    """An attribute value as JSON: bytes as text (invalid UTF-8 replaced, as ckit shows HDF5 names)."""
    import numpy as np

    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in ("S", "O", "U"):
            return [_value(v) for v in value.reshape(-1).tolist()]
        if value.dtype.kind == "c":
            return [str(v) for v in value.reshape(-1).tolist()]
        if value.dtype.kind not in "biuf":
            return {"__unsupported__": str(value.dtype)}
        return value.tolist()
    if isinstance(value, np.generic):
        return _value(value.item()) if value.dtype.kind != "c" else str(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    if isinstance(value, complex):
        return str(value)
    if type(value).__name__ == "Empty":  # h5py.Empty: a null dataspace
        return None
    return {"__unsupported__": type(value).__name__}


def _attrs(obj) -> dict:
    out = {}
    for name in obj.attrs.keys():
        try:
            out[name] = _value(obj.attrs[name])
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            out[name] = {"__error__": (str(exc).splitlines() or [type(exc).__name__])[0]}
    return out


def _dataset(ds) -> dict:
    import h5py

    info: dict = {"t": "d", "attrs": _attrs(ds)}
    info["shape"] = None if ds.shape is None else list(ds.shape)
    dtype = ds.dtype
    info["dtype"] = dtype.str
    info["vlen_string"] = h5py.check_string_dtype(dtype) is not None and dtype.kind == "O"
    info["string"] = h5py.check_string_dtype(dtype) is not None or dtype.kind in ("S", "O", "U")
    info["external"] = ds.external[0][0] if ds.external else None
    if isinstance(info["external"], bytes):
        info["external"] = info["external"].decode("utf-8", "replace")
    info["virtual"] = bool(ds.is_virtual)
    info["chunks"] = list(ds.chunks) if ds.chunks is not None else None
    info["nfilters"] = ds.id.get_create_plist().get_nfilters()
    info["storage_size"] = int(ds.id.get_storage_size())
    info["offset"] = ds.id.get_offset()
    return info


def describe(f) -> dict:
    """Every object reachable from the root: {"objects": {id: node}, "root": id, ...}."""
    import h5py

    objects: dict = {}
    ids: dict = {}  # HDF5 object address -> our id

    def ident(obj) -> tuple[str, bool]:
        addr = h5py.h5o.get_info(obj.id).addr
        if addr in ids:
            return ids[addr], False
        if len(ids) >= MAX_OBJECTS:
            raise ValueError(f"more than {MAX_OBJECTS} objects")
        ids[addr] = str(len(ids))
        return ids[addr], True

    def visit(group, depth: int) -> str:
        gid, new = ident(group)
        if not new:
            return gid
        node: dict = {"t": "g", "attrs": _attrs(group), "links": []}
        objects[gid] = node
        if depth > MAX_DEPTH:
            node["too_deep"] = True
            return gid
        for name in group.keys():
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.SoftLink):
                node["links"].append([name, "soft link", None])
                continue
            if isinstance(link, h5py.ExternalLink):
                node["links"].append([name, "external link", None])
                continue
            if link is None:
                node["links"].append([name, "missing", None])
                continue
            try:
                child = group[name]
            except (KeyError, OSError, ValueError, RuntimeError) as exc:
                node["links"].append([name, "broken", (str(exc).splitlines() or [type(exc).__name__])[0]])
                continue
            if isinstance(child, h5py.Group):
                node["links"].append([name, "hard", visit(child, depth + 1)])
            elif isinstance(child, h5py.Dataset):
                cid, new_ds = ident(child)
                if new_ds:
                    objects[cid] = _dataset(child)
                node["links"].append([name, "hard", cid])
            else:  # a named datatype: neither group nor data
                cid, new_obj = ident(child)
                if new_obj:
                    objects[cid] = {"t": "other", "attrs": {}}
                node["links"].append([name, "hard", cid])
        return gid

    root = visit(f, 0)
    return {"root": root, "objects": objects, "driver": f.driver, "userblock_size": int(f.userblock_size)}


def _read(f, path: str) -> tuple[dict, bytes]:
    import h5py
    import numpy as np

    ds = f[path]
    if h5py.check_string_dtype(ds.dtype) is not None or ds.dtype.kind in ("S", "O", "U"):
        raw = ds[()]
        arr = np.asarray(raw, dtype=object) if not isinstance(raw, bytes) else np.array(raw, dtype=object)
        items = [bytes(v) if isinstance(v, (bytes, np.bytes_)) else str(v).encode("utf-8") for v in arr.reshape(-1)]
        return {"ok": True, "strings": [len(v) for v in items], "shape": list(arr.shape)}, b"".join(items)
    value = np.ascontiguousarray(ds[()])
    return {"ok": True, "dtype": value.dtype.str, "shape": list(value.shape)}, memoryview(value).cast("B")


def _limit_memory(limit: int) -> None:
    """Soft address-space limit: metadata parsing gets a fixed budget, a data read its size on top."""
    if limit > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _limit_cpu(seconds: float) -> None:
    """CPU-time limit for the next request: a loop in the C library ends with SIGXCPU.

    CPU time rather than wall time, so a busy machine slows a request without failing it.
    """
    if seconds > 0:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = usage.ru_utime + usage.ru_stime
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = int(used + seconds) + 1
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def main() -> int:
    # The parent handles Ctrl-C and kills this process; a terminal's SIGINT must not race it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # Linux: die with the parent, whatever the parent dies of
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            return 0
    except (OSError, AttributeError):
        pass
    _limit_memory(int(os.environ.get("CKIT_H5_WORKER_AS", "0")))
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies on the pipe
    import h5py

    _send(out, {"ok": True, "ready": h5py.version.version})
    f = None
    while True:
        message = _recv(inp)
        if message is None:
            return 0
        request, payload = message
        try:
            _limit_memory(int(request.get("memory", 0)))
            _limit_cpu(float(request.get("cpu", 0)))
            if request["op"] == "open":
                source = request["source"]
                if payload:
                    fileobj = io.BytesIO(payload)
                elif source.get("size") is not None:
                    fileobj = _Window(source["path"], source["offset"], source["size"])
                else:
                    fileobj = source["path"]
                f = h5py.File(fileobj, "r")
                _send(out, {"ok": True, "tree": describe(f)})
            elif request["op"] == "read":
                header, data = _read(f, request["path"])
                _send(out, header, data)
            else:
                _send(out, {"ok": False, "error": f"unknown request {request['op']!r}"})
        except MemoryError:
            _send(out, {"ok": False, "error": "out of memory", "memory": True})
        except RecursionError:
            _send(out, {"ok": False, "error": "structure nested too deeply"})
        except Exception as exc:  # the HDF5 library's many exception types: all mean "damaged"
            _send(out, {"ok": False, "error": (str(exc).splitlines() or [type(exc).__name__])[0]})


if __name__ == "__main__":
    sys.exit(main())
