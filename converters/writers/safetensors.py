"""safetensors writer: the format written natively, one tensor in memory at a time.

`safetensors.numpy.save_file` needs every tensor in memory at once, so the
header is computed from the layout (dtype, shape) before any value is read:

    8 bytes   little-endian u64 N, the header length
    N bytes   JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}, ...},
              padded with spaces to a multiple of 8
    ...       tensor bytes, little-endian, C order, in data_offsets order

Tensors are laid out as the reference (Rust) writer lays them out: largest
dtype first, then by name, which keeps every tensor naturally aligned for
zero-copy readers and makes our files byte-identical to `save_file`'s.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from inspector.errors import MappingError, UnsupportedFeature

from ..layout import ModelLayout, WeightRef
from .base import WriteOptions, WriteResult, fetch

# ckit dtype name -> safetensors dtype code.  Quantized TF types are stored as their integers.
DTYPE_CODES: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "U8",
    "quint8": "U8",
    "int8": "I8",
    "qint8": "I8",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fn": "F8_E4M3",
    "int16": "I16",
    "qint16": "I16",
    "uint16": "U16",
    "quint16": "U16",
    "float16": "F16",
    "bfloat16": "BF16",
    "int32": "I32",
    "qint32": "I32",
    "uint32": "U32",
    "float32": "F32",
    "complex64": "C64",
    "float64": "F64",
    "int64": "I64",
    "uint64": "U64",
}
# The Rust crate's `Dtype` declaration order; its writer sorts descending by it.
_DTYPE_RANK = {
    code: rank
    for rank, code in enumerate(
        ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
         "I32", "U32", "F32", "C64", "F64", "I64", "U64"]  # fmt: skip
    )
}
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "C64": 8, "F64": 8, "I64": 8, "U64": 8}  # fmt: skip
OPTIMIZER_PREFIX = "optimizer/"
LAYERS_KEY = "ckit.layers"  # JSON [[layer name, [weight names in layer.weights order]], ...]
ORDER_KEY = "ckit.order"  # JSON [weight names in model.weights-by-layer order]


def producer_name() -> str:
    try:
        from importlib.metadata import version

        return f"ckit {version('ckit')}"
    except Exception:  # not installed (running from a checkout): the name alone still says who wrote it
        return "ckit"


def dtype_code(ref: WeightRef) -> str:
    """The safetensors dtype code for a tensor, or a clear refusal."""
    code = DTYPE_CODES.get(ref.dtype)
    if code is None:
        raise UnsupportedFeature(
            f"tensor '{ref.name}' has dtype {ref.dtype}, which safetensors cannot hold "
            f"(it holds {', '.join(sorted(set(DTYPE_CODES.values())))}); "
            "leave this tensor out or choose a TensorFlow checkpoint as the target"
        )
    return code


def build_header(entries: list[tuple[str, WeightRef]], metadata: dict[str, str] | None) -> tuple[bytes, list]:
    """The padded header bytes and the (key, ref) list in the order their bytes follow it."""
    seen: set[str] = set()
    for key, _ in entries:
        if key in seen:
            raise MappingError(
                f"two tensors would both be stored as '{key}' in the safetensors file; "
                "names must be unique: fix the layer mapping"
            )
        seen.add(key)
    codes = {key: dtype_code(ref) for key, ref in entries}
    ordered = sorted(entries, key=lambda e: (-_DTYPE_RANK[codes[e[0]]], e[0]))
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for key, ref in ordered:
        nbytes = int(np.prod(ref.shape, dtype=np.int64)) * _ITEMSIZE[codes[key]]
        header[key] = {"dtype": codes[key], "shape": list(ref.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf8")
    raw += b" " * (-len(raw) % 8)
    return raw, ordered


def write_safetensors(
    path: Path, entries: list[tuple[str, WeightRef]], layout: ModelLayout,
    metadata: dict[str, str] | None, options: WriteOptions,
) -> None:  # fmt: skip
    """Write `entries` (file key, ref) to `path`, streaming values through `layout.read`."""
    header, ordered = build_header(entries, metadata)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for _, ref in ordered:
            value = fetch(layout, ref)
            if value.dtype.byteorder == ">":
                value = value.astype(value.dtype.newbyteorder("<"))
            data = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
            f.write(memoryview(data))
            if options.progress:
                options.progress(ref, int(data.nbytes))


def optimizer_name(name: str) -> str:
    """An optimizer tensor's key: under one `optimizer/` (Keras 3 names already start with it)."""
    return name if name.startswith(OPTIMIZER_PREFIX) else OPTIMIZER_PREFIX + name


class SafetensorsWriter:
    """A flat `name -> tensor` safetensors file keyed by canonical variable names."""

    name = "safetensors"
    description = "safetensors file (flat name -> tensor map, canonical Keras 2 variable names)"
    suffixes = (".safetensors",)

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        dst = Path(dst)
        notes: list[str] = []
        entries = [(ref.name, ref) for ref in layout.flat_weights()]
        if layout.optimizer:
            named = [ref for ref in layout.optimizer if ref.name]
            if options.include_optimizer and named:
                entries += [(optimizer_name(ref.name), ref) for ref in named]
                if len(named) < len(layout.optimizer):
                    notes.append(f"{len(layout.optimizer) - len(named)} unnamed optimizer tensors dropped")
            elif options.include_optimizer:
                notes.append(f"optimizer state ({len(layout.optimizer)} tensors) dropped: its tensors have no names")
            else:
                notes.append(
                    f"optimizer state ({len(layout.optimizer)} tensors) left out as asked (include_optimizer off)"
                )
        metadata = {"producer": producer_name()}
        # safetensors keeps names, not order: record the model's layers and their weight order so
        # ckit (and anyone) can map the file back onto a Keras model without guessing.
        metadata[LAYERS_KEY] = json.dumps([[layer.name, [ref.name for ref in layer.flat_weights()]] for layer in layout.layers])
        metadata[ORDER_KEY] = json.dumps([ref.name for ref in layout.flat_weights()])
        if layout.source_format:
            metadata["source_format"] = layout.source_format
        if layout.source_producer:
            metadata["source_producer"] = json.dumps(layout.source_producer, sort_keys=True, default=str)
        write_safetensors(dst, entries, layout, metadata, options)
        return WriteResult(paths=(dst,), notes=tuple(notes))


SAFETENSORS_WRITER = SafetensorsWriter()
