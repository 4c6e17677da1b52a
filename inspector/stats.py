"""Per-tensor statistics computed piece by piece: min, max, mean, std, L2 norm, zeros, NaN, ±Inf.

Pieces come from `chunks.iter_chunks`, so memory stays bounded whatever a tensor's size.
Mean and standard deviation are merged across pieces with Chan et al.'s pairwise update
(each piece's own mean and sum of squared deviations), which keeps float64 accuracy where
the naive sum-of-squares formula would cancel.  Statistics cover the finite values; the
non-finite ones are counted apart (`nan`, `posinf`, `neginf`).  Strings carry no statistics.

JSON schema `ckit.stats/1` (docs/INSPECT.md):

    {"schema": "ckit.stats/1", "format": "...", "path": "...",
     "tensors": [{"key", "name", "role", "dtype", "shape", "count", "min", "max", "mean", "std",
                  "l2", "zeros", "nan", "posinf", "neginf", "finite": bool}],   # manifest order
     "nonfinite": ["key", ...]}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .chunks import CHUNK_ELEMS, iter_chunks
from .manifest import Manifest, TensorInfo

if TYPE_CHECKING:
    import numpy as np

SCHEMA = "ckit.stats/1"


@dataclass(frozen=True)
class TensorStats:
    """What one tensor holds, in numbers.  None where a statistic has no meaning (strings, no finite values)."""

    tensor: TensorInfo
    count: int = 0  # elements
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None  # population standard deviation (numpy's default, ddof=0)
    l2: float | None = None
    zeros: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0

    @property
    def finite(self) -> bool:
        return not (self.nan or self.posinf or self.neginf)

    def to_json(self) -> dict[str, Any]:
        t = self.tensor
        return {
            "key": t.key, "name": t.name, "role": t.role, "dtype": t.dtype, "shape": list(t.shape),
            "count": self.count, "min": self.min, "max": self.max, "mean": self.mean, "std": self.std,
            "l2": self.l2, "zeros": self.zeros, "nan": self.nan, "posinf": self.posinf,
            "neginf": self.neginf, "finite": self.finite,
        }


@dataclass(frozen=True)
class StatsReport:
    manifest: Manifest
    tensors: tuple[TensorStats, ...]

    @property
    def nonfinite(self) -> tuple[TensorStats, ...]:
        return tuple(s for s in self.tensors if not s.finite)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "format": self.manifest.format,
            "path": self.manifest.path,
            "tensors": [s.to_json() for s in self.tensors],
            "nonfinite": [s.tensor.key for s in self.nonfinite],
        }


class Accumulator:
    """Running statistics over pieces of one tensor."""

    def __init__(self) -> None:
        self.count = 0  # all elements
        self.n = 0  # finite elements
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the mean
        self.sumsq = 0.0
        self.min: float | None = None
        self.max: float | None = None
        self.zeros = self.nan = self.posinf = self.neginf = 0

    def add(self, piece: np.ndarray) -> None:
        import numpy as np

        self.count += piece.size
        if piece.dtype.kind == "b":
            piece = piece.view(np.uint8)
        if piece.size == 0:
            return
        self.zeros += piece.size - int(np.count_nonzero(piece))
        values = piece.astype(np.float64)  # bfloat16/float8 have no native reductions; float64 is exact for them
        total = float(values.sum())
        if not math.isfinite(total):  # rare: only now pay for the masks
            nan = np.isnan(values)
            self.nan += int(nan.sum())
            self.posinf += int(np.count_nonzero(values == np.inf))
            self.neginf += int(np.count_nonzero(values == -np.inf))
            values = values[np.isfinite(values)]
            if values.size == 0:
                return
            total = float(values.sum())
        with np.errstate(over="ignore", invalid="ignore"):  # float64 extremes square to inf, as in numpy
            self._moments(values, total)

    def _moments(self, values: np.ndarray, total: float) -> None:
        import numpy as np

        n = values.size
        low, high = float(values.min()), float(values.max())
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)
        mean = total / n
        deviations = values - mean
        m2 = float(np.dot(deviations, deviations))
        self.sumsq += float(np.dot(values, values))
        # Chan et al.: merge (n, mean, m2) of the piece into the running ones.
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        combined = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / combined
        self.m2 += m2 + delta * delta * self.n * n / combined
        self.n = combined

    def result(self, tensor: TensorInfo) -> TensorStats:
        some = self.n > 0
        return TensorStats(
            tensor=tensor,
            count=self.count,
            min=self.min,
            max=self.max,
            mean=self.mean if some else None,
            std=math.sqrt(max(self.m2 / self.n, 0.0)) if some else None,
            l2=math.sqrt(self.sumsq) if some else None,
            zeros=self.zeros,
            nan=self.nan,
            posinf=self.posinf,
            neginf=self.neginf,
        )


def has_statistics(tensor: TensorInfo) -> bool:
    """Numbers to count: not strings, not complex, not opaque handles."""
    return tensor.dtype not in ("string", "resource", "variant") and not tensor.dtype.startswith("complex")


def tensor_stats(reader: Any, tensor: TensorInfo, chunk_elems: int = CHUNK_ELEMS,
                 progress: Callable[[int], None] | None = None) -> TensorStats:
    """Statistics of one tensor of an opened artifact, read piece by piece."""
    if not has_statistics(tensor):
        return TensorStats(tensor=tensor, count=tensor.size)
    acc = Accumulator()
    for piece in iter_chunks(reader, tensor, chunk_elems):
        acc.add(piece)
        if progress is not None:
            progress(piece.nbytes)
    return acc.result(tensor)


def select(tensors: Iterable[TensorInfo], pattern: str | None) -> list[TensorInfo]:
    """Tensors whose key or canonical name matches `pattern` (a glob, or a substring when it has no wildcard)."""
    if not pattern:
        return list(tensors)
    import fnmatch

    if any(c in pattern for c in "*?["):
        rule = re.compile(fnmatch.translate(pattern))
        return [t for t in tensors if rule.match(t.key) or rule.match(t.name)]
    return [t for t in tensors if pattern in t.key or pattern in t.name]


def compute_stats(path: str, format: str | None = None, pattern: str | None = None,
                  progress: Callable[[int], None] | None = None) -> StatsReport:
    """Statistics of every tensor of the artifact at `path` (those matching `pattern`)."""
    from .registry import open_artifact

    with open_artifact(path, format) as reader:
        manifest = reader.manifest
        chosen = select(manifest.tensors, pattern)
        return StatsReport(manifest, tuple(tensor_stats(reader, t, progress=progress) for t in chosen))
