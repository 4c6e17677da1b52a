"""The `.keras` archive (keras3-model): a zip of metadata.json, config.json and model.weights.h5.

The weights member is read in place: a stored (uncompressed) member is handed
to the HDF5 worker as a window onto the zip file; a deflated one is read into
memory after checking its declared size and compression ratio.  Nothing is extracted
to disk, and `model.weights.npz` (whose values are pickles) is never loaded.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import numpy as np

from ..errors import ChecksumMismatch, CkitError, CorruptArtifact, MissingData, UnsafeArtifact, UnsupportedFeature
from ..manifest import Manifest, ShardInfo
from . import _hdf5
from .base import ReaderBase
from .hdf5_keras3 import Keras3Layout, make_manifest

_EXPECT = "a Keras .keras archive (zip with config.json, metadata.json and model.weights.h5)"
_WEIGHTS = "model.weights.h5"
_WEIGHTS_NPZ = "model.weights.npz"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# Same rule as Keras (_reject_zip_bomb): DEFLATE cannot exceed ~1032:1, Keras stores members 1:1.
MAX_EXPANSION = 100
MAX_JSON_BYTES = 64 << 20
MAX_IN_MEMORY_BYTES = 4 << 30


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in _ZIP_MAGICS
    except OSError:
        return False


class KerasArchiveReader(ReaderBase):
    """An opened `.keras` archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = str(path)
        self._zip: zipfile.ZipFile | None = None
        self._h5: Any = None
        self._crc_checked = False
        self._crc_error: CkitError | None = None
        try:
            self.manifest = self._open()
        except CkitError:
            self.close()
            raise
        except Exception as exc:  # zipfile and a damaged description raise many types
            self.close()
            raise CorruptArtifact(f"{self.display}: cannot read the archive ({exc}); expected {_EXPECT}") from None

    def _open(self) -> Manifest:
        if self.path.is_dir():
            raise CorruptArtifact(f"{self.display}: is a directory; expected a file, {_EXPECT}")
        if not self.path.is_file():
            if self.path.exists():
                raise CorruptArtifact(f"{self.display}: not a regular file (a FIFO, socket or device); expected {_EXPECT}")
            raise MissingData(f"{self.display}: no such file; expected {_EXPECT}")
        if self.path.stat().st_size == 0:
            raise CorruptArtifact(f"{self.display}: the file is empty; expected {_EXPECT}")
        try:
            self._zip = zipfile.ZipFile(self.path, "r")
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CorruptArtifact(f"{self.display}: not a readable zip archive ({exc}); expected {_EXPECT}") from None
        names = self._zip.namelist()
        for name in names:
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise UnsafeArtifact(
                    f"{self.display}: archive member '{name}' points outside the archive (absolute or '..' path); "
                    "ckit refuses such archives (zip-slip), expected plain relative member names"
                )
        metadata = self._json("metadata.json", required=False) or {}
        config = self._json("config.json", required=False)
        if _WEIGHTS not in names:
            if _WEIGHTS_NPZ in names:
                raise UnsupportedFeature(
                    f"{self.display}: the weights are in {_WEIGHTS_NPZ}, whose values are pickled Python objects; "
                    "ckit never unpickles, expected model.weights.h5; re-save the model with Keras to get an .h5 member"
                )
            raise CorruptArtifact(
                f"{self.display}: the archive has no {_WEIGHTS} (members: {', '.join(names[:8]) or 'none'}); "
                f"expected {_EXPECT}"
            )
        self._h5 = _hdf5.open_h5(self._weights_file(), f"{self.display}!{_WEIGHTS}", "an HDF5 weights member")
        version = metadata.get("keras_version") if isinstance(metadata, dict) else None
        framework = "keras3" if str(version or "").startswith("3") else ("tf_keras" if version else "keras3")
        producer = {"framework": framework, "keras_version": version,
                    "backend": metadata.get("backend") if isinstance(metadata, dict) else None}
        self._layout = Keras3Layout([(self._h5, None)], self.display, config, framework)
        info = self._zip.getinfo(_WEIGHTS)
        shards = [ShardInfo(f"{self.path}!{_WEIGHTS}", info.file_size, True)]
        meta: dict[str, Any] = {}
        if config is not None:
            meta["model_config"] = config
        if isinstance(metadata, dict):
            meta["keras_metadata"] = metadata
        notes = [] if config is not None else ["archive has no config.json; layer names come from the weights file"]
        return make_manifest("keras3-model", self.path, self._layout, producer, meta, shards, notes)

    def _check_member(self, name: str, limit: int | None) -> zipfile.ZipInfo:
        assert self._zip is not None
        info = self._zip.getinfo(name)
        ratio_bomb = info.file_size > (1 << 20) and info.file_size > MAX_EXPANSION * max(info.compress_size, 1)
        if ratio_bomb or (limit is not None and info.file_size > limit):
            raise UnsafeArtifact(
                f"{self.display}: archive member '{name}' declares {info.file_size} bytes from "
                f"{info.compress_size} compressed (limit {limit} bytes, ratio {MAX_EXPANSION}:1); "
                "refusing a potential decompression bomb"
            )
        return info

    def _json(self, name: str, required: bool) -> Any:
        assert self._zip is not None
        if name not in self._zip.namelist():
            if required:
                raise CorruptArtifact(f"{self.display}: the archive has no {name}; expected {_EXPECT}")
            return None
        info = self._check_member(name, MAX_JSON_BYTES)
        with self._zip.open(info) as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
        try:
            return json.loads(raw)
        except RecursionError:
            raise CorruptArtifact(f"{self.display}: member {name} nests JSON too deeply to parse; expected {_EXPECT}") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptArtifact(f"{self.display}: member {name} is not valid JSON ({exc}); expected {_EXPECT}") from None

    def _weights_file(self) -> _hdf5.Source:
        assert self._zip is not None
        info = self._zip.getinfo(_WEIGHTS)
        if info.flag_bits & 0x1:
            raise UnsupportedFeature(f"{self.display}: member {_WEIGHTS} is encrypted; expected {_EXPECT}")
        # A stored member is read in place, so only a deflated one needs the in-memory cap.
        stored = info.compress_type == zipfile.ZIP_STORED
        self._check_member(_WEIGHTS, None if stored else MAX_IN_MEMORY_BYTES)
        if stored:
            start = self._data_offset(info)
            if start + info.file_size > self.path.stat().st_size:
                raise CorruptArtifact(
                    f"{self.display}: member {_WEIGHTS} runs past the end of the file; the archive is truncated"
                )
            return _hdf5.Source(str(self.path), start, info.file_size)
        try:
            with self._zip.open(info) as fh:
                data = fh.read(info.file_size + 1)
        except zipfile.BadZipFile as exc:
            cls = ChecksumMismatch if "CRC" in str(exc) else CorruptArtifact
            raise cls(f"{self.display}: archive member {_WEIGHTS} does not inflate cleanly ({exc}); "
                      "the archive is damaged: copy or re-save it") from None
        except (zlib.error, EOFError) as exc:
            raise CorruptArtifact(f"{self.display}: archive member {_WEIGHTS} does not inflate ({exc}); "
                                  "the archive is damaged: copy or re-save it") from None
        if len(data) != info.file_size:
            raise CorruptArtifact(
                f"{self.display}: member {_WEIGHTS} inflates to {len(data)} bytes, not the declared {info.file_size}"
            )
        return _hdf5.Source(str(self.path), data=data)

    def _data_offset(self, info: zipfile.ZipInfo) -> int:
        # The local header repeats name and extra field with its own lengths.
        with open(self.path, "rb") as fh:
            fh.seek(info.header_offset)
            header = fh.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise CorruptArtifact(f"{self.display}: bad local header for member {_WEIGHTS}; the archive is damaged")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_len + extra_len

    def check_integrity(self) -> None:
        """Check the weights member's CRC-32 against the zip directory, once (streamed; a few ms per 10 MB).

        A deflated member was checked by zipfile when it was inflated; a stored one is read in
        place, so nothing else would notice a flipped byte inside it.
        """
        if self._crc_error is not None:
            raise ChecksumMismatch(str(self._crc_error)) from None
        if self._crc_checked or self._zip is None:
            return
        info = self._zip.getinfo(_WEIGHTS)
        if info.compress_type == zipfile.ZIP_STORED:
            start = self._data_offset(info)
            crc, remaining = 0, info.file_size
            with open(self.path, "rb") as fh:
                fh.seek(start)
                while remaining:
                    chunk = fh.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise CorruptArtifact(
                            f"{self.display}: member {_WEIGHTS} runs past the end of the file; the archive is truncated"
                        )
                    crc = zlib.crc32(chunk, crc)
                    remaining -= len(chunk)
            if crc != info.CRC:
                self._crc_error = ChecksumMismatch(
                    f"{self.display}: CRC-32 of archive member {_WEIGHTS} is 0x{crc:08x}; expected 0x{info.CRC:08x} "
                    "from the zip directory (the archive is damaged: copy or re-save it)"
                )
                raise ChecksumMismatch(str(self._crc_error)) from None
        self._crc_checked = True

    def read_tensor(self, key: str) -> np.ndarray:
        self.check_integrity()
        return self._layout.read(key)

    def read_chunks(self, key: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
        self.check_integrity()
        return self._layout.read_chunks(key, chunk_elems)

    def close(self) -> None:
        for closer in (self._h5, self._zip):
            if closer is not None:
                try:
                    closer.close()
                except Exception:  # closing a broken file must not mask the real error
                    pass
        self._h5 = self._zip = None


class _KerasArchiveFormat:
    name = "keras3-model"
    description = "Keras .keras archive (model.save('m.keras'), Keras 3 or tf_keras)"
    suffixes: tuple[str, ...] = (".keras",)

    def sniff(self, path: Path) -> bool:
        path = Path(path)
        try:
            if not path.is_file() or not _is_zip(path):
                return False
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
            return bool(names & {"config.json", "metadata.json"}) and bool(names & {_WEIGHTS, _WEIGHTS_NPZ})
        except Exception:  # sniffing must never raise on foreign files
            return False

    def open(self, path: Path) -> KerasArchiveReader:
        return KerasArchiveReader(Path(path))

    def __repr__(self) -> str:
        return f"<format {self.name}>"


KERAS3_MODEL = _KerasArchiveFormat()
