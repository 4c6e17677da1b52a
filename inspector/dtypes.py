"""Dtype names shared by every format: TensorFlow DataType codes <-> numpy dtypes.

ckit names dtypes the numpy way ("float32", "bfloat16", "string").  The
extension types (bfloat16, float8_*, int4) come from ml_dtypes so that tensor
bytes can be viewed without copying.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import UnsupportedFeature

if TYPE_CHECKING:  # numpy is imported where arrays are made, not to list a manifest
    import numpy as np

# tensorflow/core/framework/types.proto
TF_DTYPE_NAMES: dict[int, str] = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    8: "complex64",
    9: "int64",
    10: "bool",
    11: "qint8",
    12: "quint8",
    13: "qint32",
    14: "bfloat16",
    15: "qint16",
    16: "quint16",
    17: "uint16",
    18: "complex128",
    19: "float16",
    20: "resource",
    21: "variant",
    22: "uint32",
    23: "uint64",
    24: "float8_e5m2",
    25: "float8_e4m3fn",
    29: "int4",
    30: "uint4",
}
TF_DTYPE_CODES: dict[str, int] = {name: code for code, name in TF_DTYPE_NAMES.items()}

# Quantized types are stored as their plain integer counterparts.
_STORAGE_ALIASES = {"qint8": "int8", "quint8": "uint8", "qint32": "int32", "qint16": "int16", "quint16": "uint16"}
_ML_DTYPES = {"bfloat16", "float8_e5m2", "float8_e4m3fn", "int4", "uint4"}


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype that holds tensors of ckit dtype `name` (little-endian)."""
    import numpy as np

    name = _STORAGE_ALIASES.get(name, name)
    if name in _ML_DTYPES:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, name))
    if name in ("string", "resource", "variant"):
        return np.dtype(object)
    try:
        return np.dtype(name).newbyteorder("<") if np.dtype(name).itemsize > 1 else np.dtype(name)
    except TypeError:
        raise UnsupportedFeature(f"dtype '{name}' has no numpy equivalent; ckit cannot read such tensors") from None


def dtype_name(dtype: np.dtype) -> str:
    """ckit's name for a numpy dtype (object and bytes dtypes count as 'string')."""
    import numpy as np

    dtype = np.dtype(dtype)
    if dtype.kind in ("O", "S", "U"):
        return "string"
    return dtype.name


def itemsize(name: str) -> int | None:
    """Bytes per element, or None where elements have no fixed size (strings)."""
    if name in ("string", "resource", "variant"):
        return None
    if name in ("int4", "uint4"):
        return 1  # TF stores one 4-bit value per byte in bundles
    size = _ITEMSIZES.get(_STORAGE_ALIASES.get(name, name))
    return size if size is not None else numpy_dtype(name).itemsize


# Listing a manifest needs sizes, not numpy: the common ones are known without importing it.
_ITEMSIZES = {
    "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "complex64": 8, "complex128": 16,
    "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8,
    "bool": 1, "float8_e5m2": 1, "float8_e4m3fn": 1,
}
