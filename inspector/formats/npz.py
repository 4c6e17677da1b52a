"""numpy `.npz` archives: a zip of `NAME.npy` members, read without pickle.

The manifest comes from each member's `.npy` header (magic, version, a Python-literal
dict parsed by numpy's own `read_array_header_*`, never evaluated as code); tensor
bytes are read only by `read_tensor`.  Object arrays are refused: numpy stores them
pickled, and ckit never unpickles.  A member's declared shape must fit its stored size.
"""

from __future__ import annotations

import math
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from ..errors import CorruptArtifact, UnknownFormat, UnsafeArtifact
from ..limits import check_fits, check_shape
from ..manifest import Manifest, ShardInfo, TensorInfo
from .base import ReaderBase

_EXPECT = "a numpy .npz archive (zip of NAME.npy members)"
# What zipfile and zlib raise on a damaged member (bad local header, bad stream, unknown method).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)
# DEFLATE cannot expand more than ~1032:1; a member claiming more is a zip bomb, not a tensor.
_MAX_RATIO = 1100


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptArtifact(f"{path}: not a readable zip ({exc}); expected {_EXPECT}") from None


def _header(handle: Any, name: str, where: str) -> tuple[Any, tuple[int, ...], bool]:
    import numpy as np
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = npformat.read_array_header_2_0(handle)
        else:
            raise ValueError(f"npy version {version}")
    except (ValueError, OSError, SyntaxError, EOFError, TypeError, RecursionError, MemoryError,
            tokenize.TokenError, *_ZIP_ERRORS) as exc:  # numpy tokenizes the header dict: any of these means damaged
        raise CorruptArtifact(f"{where}: member '{name}' is not a .npy array ({exc}); expected {_EXPECT}") from None
    if dtype.hasobject:
        raise UnsafeArtifact(
            f"{where}: member '{name}' holds Python objects (dtype {dtype}), which numpy stores pickled; ckit never "
            "unpickles; expected numeric or bool arrays; re-save it without object arrays"
        )
    del np
    return dtype, tuple(int(d) for d in shape), bool(fortran)


class NpzArtifact(ReaderBase):
    """An opened .npz: one tensor per `.npy` member, keyed by the member name without `.npy`."""

    def __init__(self, path: Path) -> None:
        from ..dtypes import dtype_name

        self.path = path
        self._zip = _open_zip(path)
        size = path.stat().st_size
        try:
            self._members: dict[str, zipfile.ZipInfo] = {}
            tensors = []
            for info in self._zip.infolist():
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise CorruptArtifact(f"{path}: member '{info.filename}' is not a .npy file; expected {_EXPECT}")
                if info.compress_type != zipfile.ZIP_STORED and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
                    raise UnsafeArtifact(
                        f"{path}: member '{info.filename}' claims {info.file_size} bytes from {info.compress_size} "
                        "compressed; expected at most ~1000:1 (a zip bomb?); ckit will not expand it"
                    )
                if info.compress_size > size or (info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size):
                    raise CorruptArtifact(
                        f"{path}: member '{info.filename}' claims {info.compress_size} stored bytes "
                        f"({info.file_size} inflated) in a {size}-byte archive; the archive is damaged"
                    )
                key = info.filename[: -len(".npy")]
                try:
                    with self._zip.open(info) as handle:
                        dtype, shape, _ = _header(handle, info.filename, str(path))
                        header_size = handle.tell()
                except _ZIP_ERRORS as exc:
                    raise CorruptArtifact(f"{path}: member '{info.filename}' cannot be read ({exc}); the archive is damaged") from None
                check_shape(shape, dtype.itemsize, f"{path}: member '{info.filename}'")
                nbytes = math.prod(shape) * dtype.itemsize
                if info.file_size - header_size != nbytes:
                    raise CorruptArtifact(
                        f"{path}: member '{info.filename}' declares {dtype} {list(shape)} ({nbytes} bytes) but stores "
                        f"{info.file_size - header_size}; expected them to agree (the file is damaged)"
                    )
                self._members[key] = info
                role = "optimizer" if key.startswith("optimizer/") else "weight"
                tensors.append(TensorInfo(key=key, name=key, dtype=dtype_name(dtype), shape=shape, nbytes=nbytes, role=role))
        except BaseException:
            self._zip.close()
            raise
        self.manifest = Manifest(
            format="npz",
            path=str(path),
            tensors=tuple(tensors),
            producer={"framework": "numpy"},
            shards=(ShardInfo(str(path), path.stat().st_size, True),),
        )

    def read_tensor(self, key: str) -> np.ndarray:
        import numpy as np

        info = self._members[key]  # KeyError for an unknown key, as the contract says
        check_fits(info.file_size, f"{self.path}: member '{info.filename}'")
        try:
            with self._zip.open(info) as handle:
                value = np.lib.format.read_array(handle, allow_pickle=False)
        except zipfile.BadZipFile as exc:  # CRC-32 of the member: zipfile checks it as it reads
            raise CorruptArtifact(f"{self.path}: member '{info.filename}' is damaged ({exc})") from None
        except (ValueError, *_ZIP_ERRORS) as exc:
            raise CorruptArtifact(f"{self.path}: member '{info.filename}' cannot be read ({exc})") from None
        return value

    def close(self) -> None:
        self._zip.close()


class NpzFormat:
    """The `Format` for numpy .npz archives."""

    name = "npz"
    description = "numpy .npz archive (NAME.npy members; read without pickle)"
    suffixes = (".npz",)

    def sniff(self, path: Path) -> bool:
        try:
            if not Path(path).is_file() or not zipfile.is_zipfile(path):
                return False
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
            return bool(names) and all(n.endswith(".npy") for n in names)
        except (OSError, zipfile.BadZipFile, ValueError):
            return False

    def open(self, path: Path) -> NpzArtifact:
        path = Path(path)
        if not path.is_file():
            raise UnknownFormat(f"{path}: not a file; expected {_EXPECT}")
        return NpzArtifact(path)


NPZ = NpzFormat()
