"""The contract every format module fulfils: detect cheaply, open, list, read one tensor.

A format module (one per on-disk format, e.g. `tf_bundle.py`) exposes one
object satisfying `Format`.  `Format.open` returns an `ArtifactReader`, a
context manager whose `manifest` is built without reading tensor bytes and
whose `read_tensor` reads exactly one tensor, verifying checksums where the
format has them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # readers hand out numpy arrays, but listing a manifest must not import numpy
    import numpy as np

from ..manifest import Manifest


@runtime_checkable
class ArtifactReader(Protocol):
    """An opened artifact.  Use as a context manager; `close` releases files and maps."""

    manifest: Manifest

    def read_tensor(self, key: str) -> np.ndarray:
        """The tensor stored under manifest key `key`, as a numpy array.

        Strings come back as an object array of `bytes`.  Raises
        `ChecksumMismatch`/`CorruptArtifact` when the stored bytes are damaged,
        `MissingData` when the file holding them is absent, `KeyError` for an
        unknown key.
        """

    def close(self) -> None: ...

    def __enter__(self) -> "ArtifactReader": ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Format(Protocol):
    """A registered artifact format."""

    name: str  # the format id users pass to --format ("tf-checkpoint", ...)
    description: str  # one line for help texts and error messages
    suffixes: tuple[str, ...]  # lower-case path endings that suggest this format

    def sniff(self, path: Path) -> bool:
        """True when the content at `path` is this format.  Cheap; never raises for foreign files."""

    def open(self, path: Path) -> ArtifactReader:
        """Open `path` for reading.  Raises a `CkitError` subclass on bad input."""


class ReaderBase:
    """Convenience base for readers: context-manager plumbing and a default `close`."""

    manifest: Manifest

    def read_tensor(self, key: str) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
