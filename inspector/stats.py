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

from .chunks import CHUNK_ELEMS, helper_pool, iter_chunks
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
# Elements per np.dot call: OpenBLAS runs a dot of at most 10,000 elements on the calling
# thread.  A larger one wakes its thread pool, which on a busy machine cost 20x more than it saved.
_DOT = 8192
# Pieces at least this large are split between two threads (numpy releases the GIL in its loops).
_SPLIT = 4 * BLOCK


class Accumulator:
    """Running statistics over pieces of one tensor.

    Sums are taken of `x - shift`, the shift being the mean of the first block: the variance
    then comes from shifted sums without the cancellation of the plain sum-of-squares formula
    (Welford's concern).  Per block: min and max (which also reveal NaN and Inf, so the masks
    are only paid for when one is there), zeros (only when 0 lies between min and max), one
    cast into a float64 scratch block that stays in cache, the shift, its sum and its dot
    with itself.
    """

    def __init__(self, shift: float | None = None) -> None:
        self.count = 0  # all elements
        self.n = 0  # finite elements
        self.shift = shift
        self.s1 = 0.0  # sum of (x - shift) over finite x
        self.s2 = 0.0  # sum of (x - shift)**2
        self.min: float | None = None
        self.max: float | None = None
        self.zeros = self.nan = self.posinf = self.neginf = 0
        self._scratch: np.ndarray | None = None
        self._flags: np.ndarray | None = None
        self._helper: Accumulator | None = None  # the sums of the blocks another thread took

    def add(self, piece: np.ndarray, pool: Any = None) -> None:
        """Count `piece` in.  With `pool` (an executor with one thread) the first half of a large
        piece runs on that thread while this one takes the second half."""
        import numpy as np

        self.count += piece.size
        if piece.dtype.kind == "b":
            piece = piece.view(np.uint8)
        start = 0
        with np.errstate(over="ignore", invalid="ignore"):  # float64 extremes square to inf, as in numpy
            while self.shift is None and start < piece.size:  # the shift is fixed before any split
                self._blocks(piece, start, start + BLOCK)
                start += BLOCK
            if pool is None or piece.size - start < _SPLIT:
                self._blocks(piece, start, piece.size)
                return
            if self._helper is None:
                self._helper = Accumulator(self.shift)
            middle = start + (piece.size - start) // (2 * BLOCK) * BLOCK
            done = pool.submit(self._helper._blocks_apart, piece, start, middle)
            try:
                self._blocks(piece, middle, piece.size)
            finally:
                done.result()  # the piece may be overwritten once add() returns

    def _blocks(self, piece: np.ndarray, start: int, stop: int) -> None:
        for first in range(start, stop, BLOCK):
            self._block(piece[first : min(first + BLOCK, stop)])

    def _blocks_apart(self, piece: np.ndarray, start: int, stop: int) -> None:
        import numpy as np

        with np.errstate(over="ignore", invalid="ignore"):  # error state is per thread
            self._blocks(piece, start, stop)

    def _fold(self) -> None:
        # The helper's sums join this accumulator's once, at the end, always in the same order:
        # the result does not depend on which thread finished first.
        other, self._helper = self._helper, None
        if other is None:
            return
        self.n += other.n
        self.s1 += other.s1
        self.s2 += other.s2
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
            self.max = other.max if self.max is None else max(self.max, other.max)
        self.zeros += other.zeros
        self.nan += other.nan
        self.posinf += other.posinf
        self.neginf += other.neginf

    def _block(self, block: np.ndarray) -> None:
        import numpy as np

        if block.dtype.kind not in "iuf":  # ml_dtypes (bfloat16, float8) are kind "V": no native reductions
            block = block.astype(np.float32)  # exact for every ml_dtypes float
        if self._scratch is None:
            self._scratch = np.empty(BLOCK, dtype=np.float64)
            self._flags = np.empty(BLOCK, dtype=bool)
        low, high = float(np.minimum.reduce(block)), float(np.maximum.reduce(block))
        finite = math.isfinite(low) and math.isfinite(high)  # NaN and Inf propagate into min/max
        if not finite or low <= 0 <= high:  # else the block holds no zero
            self.zeros += int(np.count_nonzero(np.equal(block, 0, out=self._flags[: block.size])))
        if not finite:  # only now pay for the masks
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
        # The cast and the shift in place in float64 scratch, then a sum and dots over it while
        # it is still in cache.
        shifted = self._scratch[: block.size]
        np.copyto(shifted, block, casting="unsafe")
        np.subtract(shifted, self.shift, out=shifted)
        self.s1 += float(np.add.reduce(shifted))
        self.s2 += _sum_of_squares(shifted)
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
        self._fold()
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


def _sum_of_squares(values: np.ndarray) -> float:
    """Sum of squares of float64 `values` by BLAS dots of at most _DOT elements (all on this thread)."""
    import numpy as np

    whole = values.size - values.size % _DOT
    total = 0.0
    if whole:
        rows = values[:whole].reshape(-1, _DOT)
        rowdot = getattr(np, "vecdot", None)  # numpy >= 2: one call, one dot per row
        if rowdot is not None:
            total = float(np.add.reduce(rowdot(rows, rows)))
        else:
            total = sum(float(np.dot(row, row)) for row in rows)
    if whole < values.size:
        tail = values[whole:]
        total += float(np.dot(tail, tail))
    return total


def has_statistics(tensor: TensorInfo) -> bool:
    """Numbers to count: not strings, not complex, not opaque handles."""
    return tensor.dtype not in ("string", "resource", "variant") and not tensor.dtype.startswith("complex")


def tensor_stats(reader: Any, tensor: TensorInfo, chunk_elems: int = CHUNK_ELEMS,
                 progress: Callable[[int], None] | None = None, threads: bool | None = None) -> TensorStats:
    """Statistics of one tensor of an opened artifact, read piece by piece.

    `threads`: whether large pieces are split between two threads (None: as CKIT_THREADS says,
    `chunks.helper_pool`).  The figures agree either way to float64 rounding.
    """
    if not has_statistics(tensor):
        return TensorStats(tensor=tensor, count=tensor.size)
    acc = Accumulator()
    pool = None
    for piece in iter_chunks(reader, tensor, chunk_elems):
        if pool is None and piece.size >= _SPLIT and threads is not False:
            pool = helper_pool(force=threads is True)
        acc.add(piece, pool)
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
