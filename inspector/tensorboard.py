"""Weight histograms and statistics of artifacts as TensorBoard runs (one run per artifact).

Each tensor with numbers gets a histogram (tag: its canonical name, prefixed with the role
for non-weights) and one scalar per statistic (`<tag>/min`, `/max`, `/mean`, `/std`, `/l2`,
`/zeros`, `/nonfinite`), all at one step, so two checkpoints sit side by side in the same
charts.  Tensors are read piece by piece twice (statistics give the bucket range, then the
buckets are counted): memory stays bounded for any size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .chunks import CHUNK_ELEMS, iter_chunks
from .events import EventWriter, Histogram, histogram_value, scalar_value
from .manifest import TensorInfo
from .stats import TensorStats, has_statistics, select, tensor_stats

BUCKETS = 30


@dataclass(frozen=True)
class RunWritten:
    path: str  # the artifact
    run: str  # run directory name under the logdir
    event_file: Path
    tensors: int


def tag_of(tensor: TensorInfo) -> str:
    return tensor.name if tensor.role == "weight" else f"{tensor.role}/{tensor.name}"


def histogram(reader: Any, tensor: TensorInfo, stats: TensorStats, buckets: int = BUCKETS,
              chunk_elems: int = CHUNK_ELEMS) -> Histogram:
    """Equal-width buckets over the finite values' range, counted piece by piece."""
    import numpy as np

    low, high = stats.min, stats.max
    if low is None or high is None:
        return Histogram(0.0, 0.0, 0.0, 0.0, 0.0, (0.0,), (0.0,))
    if low == high:
        edges = np.array([low, high])
    else:
        edges = np.linspace(low, high, buckets + 1)
    counts = np.zeros(len(edges) - 1, dtype=np.int64)
    for piece in iter_chunks(reader, tensor, chunk_elems):
        values = piece.view(np.uint8) if piece.dtype.kind == "b" else piece
        values = values.astype(np.float64)
        values = values[np.isfinite(values)]
        if low == high:
            counts[0] += values.size
        else:
            counts += np.histogram(values, bins=edges)[0]
    n = stats.count - stats.nan - stats.posinf - stats.neginf
    total = (stats.mean or 0.0) * n
    squares = (stats.l2 or 0.0) ** 2
    return Histogram(float(low), float(high), float(n), float(total), float(squares),
                     tuple(float(e) for e in edges[1:]), tuple(float(c) for c in counts))


def run_names(paths: Sequence[str]) -> list[str]:
    """Short distinct run names: the artifact's name, with parent folders added until unique."""
    parts = [Path(p).resolve().parts for p in paths]
    depth = 1
    while True:
        names = ["_".join(p[-depth:]) or "artifact" for p in parts]
        if len(set(names)) == len(names) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def write_runs(paths: Sequence[str], logdir: str | Path, pattern: str | None = None, step: int = 0,
               format: str | None = None, progress: Callable[[int], None] | None = None) -> list[RunWritten]:
    """One TensorBoard run per artifact under `logdir`."""
    from .registry import open_artifact

    written = []
    for path, run in zip(paths, run_names(paths)):
        with open_artifact(path, format) as reader:
            tensors = [t for t in select(reader.manifest.tensors, pattern) if has_statistics(t)]
            values: list[bytes] = []
            for tensor in tensors:
                stats = tensor_stats(reader, tensor, progress=progress)
                tag = tag_of(tensor)
                values.append(histogram_value(tag, histogram(reader, tensor, stats)))
                for name in ("min", "max", "mean", "std", "l2"):
                    value = getattr(stats, name)
                    if value is not None:
                        values.append(scalar_value(f"{tag}/{name}", value))
                values.append(scalar_value(f"{tag}/zeros", float(stats.zeros)))
                values.append(scalar_value(f"{tag}/nonfinite", float(stats.nan + stats.posinf + stats.neginf)))
            writer = EventWriter(Path(logdir) / run)
            writer.add(step, values)
            written.append(RunWritten(path, run, writer.close(), len(tensors)))
    return written
