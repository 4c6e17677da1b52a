"""The contract every writer fulfils: turn a `ModelLayout` into files at one destination.

Writers write only inside `dst.parent` (the conversion pipeline hands them a
temporary directory and moves the files into place after verifying them) and
return every path they created.  They stream: one tensor in memory at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from ..layout import ModelLayout, WeightRef


@dataclass(frozen=True)
class WriteOptions:
    include_optimizer: bool = True  # carry optimizer state where the target format can hold it
    max_shard_size: int | None = None  # bytes; sharded output where the format supports it
    progress: Callable[[WeightRef, int], None] | None = None  # called after each tensor (ref, nbytes)


@dataclass(frozen=True)
class WriteResult:
    paths: tuple[Path, ...]  # every file or directory created, inside dst.parent
    notes: tuple[str, ...] = ()  # what the user should know: dropped optimizer state, ...


@runtime_checkable
class Writer(Protocol):
    name: str  # format id, as in inspector.registry (plus "safetensors")
    description: str
    suffixes: tuple[str, ...]

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult: ...


def fetch(layout: ModelLayout, ref: WeightRef) -> "np.ndarray":
    """Read one tensor for a writer and check it is what the layout promised.

    Writers size their output (headers, datasets) from `WeightRef` before
    reading values, so a value of another shape or dtype would corrupt it.
    """
    import numpy as np

    from inspector.dtypes import _STORAGE_ALIASES, dtype_name
    from inspector.errors import MappingError

    value = np.asarray(layout.read(ref.source_key))
    # Quantized TF types ("qint8") arrive as their storage integers.
    expected = _STORAGE_ALIASES.get(ref.dtype, ref.dtype)
    if tuple(value.shape) != tuple(ref.shape) or dtype_name(value.dtype) != expected:
        raise MappingError(
            f"tensor '{ref.name}' (source key '{ref.source_key}') read as {dtype_name(value.dtype)}"
            f"{list(value.shape)}, but the layout declares {ref.dtype}{list(ref.shape)}; "
            "the source changed or its manifest is wrong: re-inspect it and convert again"
        )
    return value
