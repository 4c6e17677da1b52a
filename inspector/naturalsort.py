"""Keys in the order people count: `_variables/2` before `_variables/10` (human output only).

Manifests and JSON keep their documented bytewise order; tables sort with `natural_key`.
"""

from __future__ import annotations

import re

_RUNS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Sort key that compares runs of digits as numbers: 'a/2' < 'a/10' < 'b'."""
    parts = _RUNS.split(text)
    # Alternate (text, number) cells; a number cell keeps its digits too so '01' and '1' stay distinct.
    return tuple((int(p), p) if i % 2 else (0, p) for i, p in enumerate(parts))
