"""Names in the order people (and Keras) count: `_variables/2` before `_variables/10`.

Manifests and JSON keep their documented bytewise order; tables sort with `natural_key`, and so do
the readers where a file's numbered names stand for an order (HDF5 `vars/2` before `vars/10`,
optimizer `_variables/N`).
"""

from __future__ import annotations

import re

_SPLIT = re.compile(r"(\d+)").split


def natural_key(text: str) -> list:
    """Sort key that compares runs of digits as numbers: 'a/2' < 'a/10' < 'b'.

    The split always alternates text, number, text, ... so equal positions hold equal types
    and lists compare without a type error.
    """
    parts = _SPLIT(text)
    parts[1::2] = map(int, parts[1::2])
    return parts
