"""Pause CPython's cyclic garbage collector while a manifest is built or printed.

Listing a checkpoint of 20,000 variables creates a few hundred thousand small objects (decoded
index entries, object-graph nodes, TensorInfos, table rows) and keeps most of them until the
manifest is done.  None of them can form a garbage cycle, but the collector does not know that:
it scans the growing heap again and again as allocations pile up, about a fifth of `dump`'s
time at that size.  Reference counting still frees everything as usual while paused.
"""

from __future__ import annotations

import gc


class paused:
    """`with paused(): ...` runs the block with the cyclic collector off, then restores it as it
    was found (nested uses and callers that disabled it themselves are left alone)."""

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was_enabled:
            gc.enable()
