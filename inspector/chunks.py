"""Tensors read a piece at a time, so stats and diff hold bounded memory for any tensor size.

A reader that can stream offers `read_chunks(key, chunk_elems)`: an iterator of flat pieces
(C order, `chunk_elems` elements each, the last may be shorter), with its checksum checked
after the last piece; or None when that tensor cannot be streamed (strings, partitioned
variables), and then the whole tensor is read once and cut into the same pieces.  A piece may
be overwritten when the next one is asked for (readers reuse one buffer): use or copy it first.  Equal piece
boundaries on both sides let diff compare two artifacts in lockstep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import numpy as np

    from .manifest import TensorInfo

# 4 MiB of float32 per piece: large enough that numpy's per-call cost vanishes, small enough
# that a handful of float64 temporaries per piece stays far under the memory goal.
CHUNK_ELEMS = 1 << 20


def iter_chunks(reader: Any, tensor: TensorInfo, chunk_elems: int = CHUNK_ELEMS) -> Iterator[np.ndarray]:
    """Flat pieces of `tensor` as read by `reader` (an opened artifact)."""
    stream = getattr(reader, "read_chunks", None)
    pieces = stream(tensor.key, chunk_elems) if stream is not None else None
    if pieces is not None:
        yield from pieces
        return
    flat = reader.read_tensor(tensor.key).reshape(-1)
    for start in range(0, max(flat.size, 1), chunk_elems):
        if flat.size:
            yield flat[start : start + chunk_elems]
