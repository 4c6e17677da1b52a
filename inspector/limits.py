"""Bounds every reader checks before it allocates: shapes, byte counts, the machine's memory.

A file states shapes and sizes; numpy believes them.  So a reader checks a
declared shape here before it makes any array: no dimension product numpy
cannot even represent, no tensor larger than the memory this process may use
(such a tensor is verified in bounded chunks instead, see `inspector.verify`).
"""

from __future__ import annotations

import math
import os
from typing import Iterable

from .errors import CorruptArtifact, UnsupportedFeature

# numpy refuses arrays whose dimension product (zeros left out) passes intp; stay well below.
MAX_ELEMENTS = 1 << 62


def check_shape(shape: Iterable[int], itemsize: int, where: str) -> tuple[int, ...]:
    """`shape` as a tuple after checking that numpy can represent it (even with a zero dimension)."""
    dims = tuple(int(d) for d in shape)
    if any(d < 0 for d in dims):
        raise CorruptArtifact(f"{where} has negative dimension in shape {list(dims)}; the file is damaged")
    nonzero = math.prod(d for d in dims if d)
    if nonzero * max(itemsize, 1) > MAX_ELEMENTS:
        raise CorruptArtifact(
            f"{where} declares shape {list(dims)}, whose dimensions multiply to {nonzero} elements: more than any "
            "array can hold; the file is damaged"
        )
    return dims


def memory_ceiling() -> int:
    """Bytes one tensor may take in memory: physical memory, or less under an address-space limit."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 1 << 62
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            physical = min(physical, soft)
    except (ImportError, ValueError, OSError):
        pass
    return physical


def human(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def too_large(where: str, nbytes: int) -> UnsupportedFeature:
    return UnsupportedFeature(
        f"{where} is {human(nbytes)}, more than this process can hold in memory ({human(memory_ceiling())}); "
        "`ckinspect verify` checks it in bounded chunks, but reading it whole needs a machine with more memory"
    )


def check_fits(nbytes: int, where: str) -> None:
    """Refuse, before allocating, a tensor larger than the memory this process may use."""
    if nbytes > memory_ceiling():
        raise too_large(where, nbytes)
