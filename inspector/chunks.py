"""Tensors read a piece at a time, so stats and diff hold bounded memory for any tensor size.

A reader that can stream offers `read_chunks(key, chunk_elems)`: an iterator of flat pieces
(C order, `chunk_elems` elements each, the last may be shorter), with its checksum checked
after the last piece; or None when that tensor cannot be streamed (strings, partitioned
variables), and then the whole tensor is read once and cut into the same pieces.  A piece may
be overwritten when the next one is asked for (a reader may reuse one buffer; checkpoints and
`.h5` files give read-only views of a map): use or copy it first, never write to it.  Equal
piece boundaries on both sides let diff compare two artifacts in lockstep.

`helper_pool()` is the one extra thread stats and diff can use (CKIT_THREADS=2): numpy, file reads
and the CRC release the GIL, so a second artifact's next piece is read, or half a piece's
statistics computed, while this thread does the rest.
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


_POOL: Any = None


def helper_pool(force: bool = False) -> Any:
    """An executor with one thread, shared by all callers, when CKIT_THREADS=2 asks for it (or
    `force`); else None.

    Off by default: on the 2-CPU machine the benchmarks run on, the second thread showed no
    reliable gain (interleaved runs 2% faster, others 20% slower; README, bench_stats).  Never
    on a single CPU, where a second thread would only take turns with the first.
    """
    import os

    global _POOL
    if not force and os.environ.get("CKIT_THREADS") != "2":
        return None
    if _POOL is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if cpus < 2 and not force:
            return None
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ckit-pieces")
    return _POOL


_END = object()


def lockstep(a: Iterator[np.ndarray], b: Iterator[np.ndarray], pool: Any = None) -> Iterator[tuple[Any, Any]]:
    """Pairs of pieces of two iterators until both end; an iterator that ends first gives None.

    With `pool`, `b`'s next piece is read on the pool's thread while `a`'s is read on this one
    (`b` is only ever advanced there, one step at a time).  A pair stays valid until the next
    pair is asked for.
    """
    while True:
        if pool is None:
            pa, pb = next(a, _END), next(b, _END)
        else:
            future = pool.submit(next, b, _END)
            try:
                pa = next(a, _END)
            except BaseException:
                _settle(future)  # never leave `b` running on the other thread
                raise
            pb = future.result()
        if pa is _END and pb is _END:
            return
        yield (None if pa is _END else pa), (None if pb is _END else pb)


def _settle(future: Any) -> None:
    try:
        future.result()
    except BaseException:  # the first error is the one to report
        pass
