"""The Python API: `inspector.open(path)` and `inspector.diff(a, b)`.

    import inspector

    with inspector.open("ckpt/weights") as art:      # any format; reads the manifest only
        print(art.format, len(art), art.totals["parameters"])
        kernel = art.read("dense/kernel")             # by key or canonical name, read on demand
        for s in art.stats().tensors:                 # piece by piece: bounded memory
            print(s.tensor.name, s.mean, s.std, s.nan)
    report = inspector.diff("weights.h5", "ckpt/weights")
    assert report.equal, report.to_json()

Importing `inspector` stays cheap: numpy and h5py load when tensor values or HDF5 files do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .manifest import Manifest, TensorInfo

if TYPE_CHECKING:
    import numpy as np

    from .compare import DiffReport
    from .stats import StatsReport
    from .tree import Tree


class Artifact:
    """An opened artifact: its manifest (reads no tensor bytes) and tensors read on demand.

    Use as a context manager, or call `close()`: readers hold files and memory maps open.
    """

    def __init__(self, path: str | Path, format: str | None = None) -> None:
        from .registry import open_artifact

        self._reader = open_artifact(path, format)
        self.manifest: Manifest = self._reader.manifest

    # -- the manifest ---------------------------------------------------------------------
    @property
    def format(self) -> str:
        return self.manifest.format

    @property
    def path(self) -> str:
        return self.manifest.path

    @property
    def tensors(self) -> tuple[TensorInfo, ...]:
        return self.manifest.tensors

    @property
    def totals(self) -> dict[str, Any]:
        return self.manifest.totals

    def __len__(self) -> int:
        return len(self.manifest)

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self.manifest)

    def __getitem__(self, key: str) -> TensorInfo:
        """The tensor with this key, or else this canonical name."""
        from .values import find_tensor

        return find_tensor(self.manifest, key)

    def __contains__(self, key: object) -> bool:
        return any(t.key == key or t.name == key for t in self.manifest.tensors)

    # -- values ---------------------------------------------------------------------------
    def read(self, key: str) -> np.ndarray:
        """A tensor's value (by key or canonical name), checksums verified where the format has them."""
        return self._reader.read_tensor(self[key].key)

    def stats(self, pattern: str | None = None, progress: Callable[[int], None] | None = None) -> StatsReport:
        """Statistics of every tensor (or those whose key or name matches `pattern`), piece by piece."""
        from .stats import StatsReport, select, tensor_stats

        chosen = select(self.manifest.tensors, pattern)
        return StatsReport(self.manifest, tuple(tensor_stats(self._reader, t, progress=progress) for t in chosen))

    def tree(self) -> Tree:
        from .tree import build_tree

        return build_tree(self.manifest)

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> "Artifact":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f'<artifact {self.format} "{self.path}": {len(self)} tensors>'


def open(path: str | Path, format: str | None = None) -> Artifact:  # noqa: A001 - the API's name
    """Open the artifact at `path` (format detected unless given)."""
    return Artifact(path, format)


def diff(a: str | Path | Artifact, b: str | Path | Artifact, *, atol: float = 0.0, rtol: float = 0.0,
         weights_only: bool = False, rename: Callable[[str], str | None] | None = None) -> DiffReport:
    """Compare two artifacts (paths or opened `Artifact`s) through canonical identity."""
    from .compare import diff_readers

    opened = [x if isinstance(x, Artifact) else Artifact(x) for x in (a, b)]
    try:
        return diff_readers(opened[0]._reader, opened[1]._reader, atol, rtol, weights_only, rename)
    finally:
        for mine, given in zip(opened, (a, b)):
            if mine is not given:
                mine.close()
