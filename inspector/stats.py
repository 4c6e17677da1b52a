"""Per-tensor statistics computed piece by piece: min, max, mean, std, L2 norm, zeros, NaN, ±Inf.

Pieces come from `chunks.iter_chunks`, so memory stays bounded whatever a tensor's size.
Mean and standard deviation come from float64 sums of the values shifted by the first block's
mean, which keeps float64 accuracy where the naive sum-of-squares formula would cancel; each
block is small enough for its passes to run in the CPU cache.  Statistics cover the finite values; the
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


# Elements per block inside a piece: float64 temporaries of this size stay in the CPU's L2 cache,
# so the few passes over each block run at cache speed instead of memory speed.
BLOCK = 1 << 15


class Accumulator:
    """Running statistics over pieces of one tensor.

    Sums are taken of `x - shift`, the shift being the mean of the first block: the variance
    then comes from shifted sums without the cancellation of the plain sum-of-squares formula
    (Welford's concern), at two passes per block instead of four.
    """

    def __init__(self) -> None:
        self.count = 0  # all elements
        self.n = 0  # finite elements
        self.shift: float | None = None
        self.s1 = 0.0  # sum of (x - shift) over finite x
        self.s2 = 0.0  # sum of (x - shift)**2
        self.min: float | None = None
        self.max: float | None = None
        self.zeros = self.nan = self.posinf = self.neginf = 0
        self._buffer: np.ndarray | None = None

    def add(self, piece: np.ndarray) -> None:
        import numpy as np

        self.count += piece.size
        if piece.dtype.kind == "b":
            piece = piece.view(np.uint8)
        if piece.size == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):  # float64 extremes square to inf, as in numpy
            for start in range(0, piece.size, BLOCK):
                self._block(piece[start : start + BLOCK])

    def _block(self, block: np.ndarray) -> None:
        import numpy as np

        self.zeros += block.size - int(np.count_nonzero(block))

        if block.dtype.kind in "iuf":  # ml_dtypes (bfloat16, float8) are kind "V": no native reductions
            low, high = float(block.min()), float(block.max())
        else:
            block = block.astype(np.float32)  # exact for every ml_dtypes float
            low, high = float(block.min()), float(block.max())
        if not (math.isfinite(low) and math.isfinite(high)):  # NaN propagates into min/max: only now pay for masks
            values = block.astype(np.float64)
            self.nan += int(np.count_nonzero(np.isnan(values)))
            self.posinf += int(np.count_nonzero(values == np.inf))
            self.neginf += int(np.count_nonzero(values == -np.inf))
            block = values[np.isfinite(values)]
            if block.size == 0:
                return
            low, high = float(block.min()), float(block.max())
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)
        if self.shift is None:
            self.shift = float(np.add.reduce(block, dtype=np.float64)) / block.size
        if self._buffer is None:
            self._buffer = np.empty(BLOCK, dtype=np.float64)
        # One pass casts to float64 and shifts, into a buffer that stays in cache for the next two.
        shifted = np.subtract(block, self.shift, out=self._buffer[: block.size], dtype=np.float64, casting="unsafe")
        self.s1 += float(shifted.sum())
        # Squares in place and a plain sum: np.dot would hand large blocks to a multi-threaded BLAS,
        # which on a busy machine costs far more than it saves.
        self.s2 += float(np.multiply(shifted, shifted, out=shifted).sum())
        self.n += block.size

    @property
    def mean(self) -> float:
        return (self.shift or 0.0) + self.s1 / self.n

    @property
    def m2(self) -> float:
        """Sum of squared deviations from the mean."""
        return self.s2 - self.s1 * self.s1 / self.n

    @property
    def sumsq(self) -> float:
        shift = self.shift or 0.0
        return self.s2 + 2 * shift * self.s1 + self.n * shift * shift

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
