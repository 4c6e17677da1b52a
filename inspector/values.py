"""One tensor's values: found by key or canonical name, summarised numpy-style or in full, saved as .npy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import OutputExists
from .manifest import Manifest, TensorInfo

if TYPE_CHECKING:
    import numpy as np


_ATTRIBUTE_TAIL = "/.ATTRIBUTES/VARIABLE_VALUE"


class UnknownTensor(KeyError):
    """No tensor of the artifact has that key or canonical name (the message lists near matches)."""

    def __str__(self) -> str:
        return str(self.args[0])


def find_tensor(manifest: Manifest, key: str) -> TensorInfo:
    """The tensor stored under `key` (a TF2 key may drop its /.ATTRIBUTES/VARIABLE_VALUE tail), else
    the one whose canonical name is `key` (when unique)."""
    for tensor in manifest.tensors:
        if tensor.key == key:
            return tensor
    # TF2 checkpoint keys without their "/.ATTRIBUTES/VARIABLE_VALUE" tail name the variable too.
    short = [t for t in manifest.tensors if t.key.endswith(_ATTRIBUTE_TAIL) and t.key[: -len(_ATTRIBUTE_TAIL)] == key]
    if len(short) == 1:
        return short[0]
    named = [t for t in manifest.tensors if t.name == key]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        keys = ", ".join(t.key for t in named[:5])
        raise UnknownTensor(f"{len(named)} tensors are named '{key}' ({keys}); pass one of their keys instead")
    import difflib

    close = difflib.get_close_matches(key, [t.key for t in manifest.tensors] + [t.name for t in manifest.tensors], 3)
    hint = f"; did you mean {' or '.join(repr(c) for c in dict.fromkeys(close))}?" if close else (
        "; `ckinspect dump PATH` lists every key and name")
    raise UnknownTensor(f"{manifest.path}: no tensor has key or name '{key}'{hint}")


def format_values(value: np.ndarray, full: bool = False) -> str:
    """numpy's own rendering: summarised with `...` unless `full`."""
    import numpy as np

    if full:
        return np.array2string(value, threshold=value.size + 1, max_line_width=80)
    return np.array2string(value, threshold=200, edgeitems=3, max_line_width=80)


def save_npy(value: np.ndarray, out: str | Path, force: bool = False) -> Path:
    """Write `value` to `out` as .npy (whole or not at all; never over an existing file without force)."""
    import numpy as np

    out = Path(out)
    if out.exists() and not force:
        raise OutputExists(f"{out} exists; pass --force to replace it, or choose another path")
    if value.dtype == object:
        # Strings come back as bytes objects; np.save would pickle them.  A fixed-width bytes array does not.
        value = value.astype(bytes)
    staging = out.with_name(f".{out.name}.partial")
    try:
        with open(staging, "wb") as handle:
            np.save(handle, _plain(value), allow_pickle=False)
        os.replace(staging, out)
    finally:
        if staging.exists():
            staging.unlink()
    return out


def _plain(value: Any) -> Any:
    # ml_dtypes' bfloat16 and float8 are not .npy dtypes numpy can read back without ml_dtypes:
    # they are saved as float32, which holds every one of their values exactly.
    import numpy as np

    if value.dtype.kind == "V" or value.dtype.name in ("bfloat16", "float8_e5m2", "float8_e4m3fn"):
        return value.astype(np.float32)
    return value
