"""The common tensor manifest: what an artifact holds, independent of its format.

A manifest is a small immutable value.  Building one never reads tensor bytes;
readers fill it from indexes, attributes and headers only.  Its JSON form
(`to_json`) is a stable, versioned document that scripts may rely on:

    {
      "schema": "ckit.manifest/1",
      "format": "tf-checkpoint",            # one of the format ids
      "path": "...",                        # as given by the user, resolved
      "producer": {"framework": "tf_keras", "version": "2.21.0", ...},
      "metadata": {...},                    # format-specific extras (signatures, config, ...)
      "layers": ["dense", "dense_1"],       # layers that own weights, in model order ([] if unknown)
      "tensors": [                          # sorted by key
        {"key": "...", "name": "dense/kernel", "dtype": "float32", "shape": [784, 128],
         "nbytes": 401408, "role": "weight", "layer": "dense", "index": 0}
      ],
      "shards": [{"path": "...", "bytes": 123, "present": true}],
      "notes": ["..."],                     # things the reader wants the user to know
      "totals": {"tensors": 7, "parameters": 101770, "bytes": 407080, "shards": 1,
                 "by_role": {"weight": 4, "optimizer": 3}}
    }

Roles (the vocabulary of `TensorInfo.role`):
    weight     a model variable, trainable or not (kernels, biases, BN statistics)
    optimizer  optimizer state: slots (momentum, rms, ...), iterations, learning rate
    counter    bookkeeping counters outside the optimizer (save_counter, global_step)
    metadata   serialized structure stored as a tensor (the checkpoint object graph)
    other      anything else (metric variables, RNG seed state, unowned variables)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

SCHEMA = "ckit.manifest/1"
ROLES = ("weight", "optimizer", "counter", "metadata", "other")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of an artifact: where it is, what it is called, what it holds."""

    key: str  # the format's own address: checkpoint key, or HDF5 dataset path starting with "/"
    name: str  # canonical cross-format name, e.g. "dense/kernel" (Keras 2 variable name, no ":0")
    dtype: str  # numpy-style name: float32, bfloat16, int64, bool, string, ...
    shape: tuple[int, ...]
    nbytes: int  # bytes of the stored value (for strings: the payload as stored)
    role: str = "weight"
    layer: str | None = None  # top-level layer that owns this weight, canonical layer name
    index: int | None = None  # position among that layer's weights (layer.weights order)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} is not one of {ROLES}")
        object.__setattr__(self, "shape", tuple(map(int, self.shape)))

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f'<tensor "{self.key}": {self.dtype} {list(self.shape)}, role {self.role}>'

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nbytes": self.nbytes,
            "role": self.role,
            "layer": self.layer,
            "index": self.index,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TensorInfo":
        return cls(
            key=data["key"],
            name=data["name"],
            dtype=data["dtype"],
            shape=tuple(data["shape"]),
            nbytes=int(data["nbytes"]),
            role=data.get("role", "weight"),
            layer=data.get("layer"),
            index=data.get("index"),
        )


def trusted_tensor(key: str, name: str, dtype: str, shape: tuple[int, ...], nbytes: int, role: str = "weight",
                   layer: str | None = None, index: int | None = None) -> TensorInfo:
    """`TensorInfo(...)` for a reader listing many tensors whose values it has checked already:
    `shape` a tuple of ints, `role` one of ROLES.  It skips `__post_init__` and the frozen
    dataclass's attribute-by-attribute `__init__` (a sixth of the cost, at 100,000 tensors); the
    result equals, hashes and behaves as the TensorInfo built the usual way."""
    info = _new(TensorInfo)
    fields = info.__dict__
    fields["key"] = key
    fields["name"] = name
    fields["dtype"] = dtype
    fields["shape"] = shape
    fields["nbytes"] = nbytes
    fields["role"] = role
    fields["layer"] = layer
    fields["index"] = index
    return info


_new = object.__new__


@dataclass(frozen=True)
class ShardInfo:
    """A file that holds tensor bytes (a data shard, an HDF5 shard)."""

    path: str
    bytes: int  # size on disk (0 when absent)
    present: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "present": self.present}


def _freeze(value: Any) -> Any:
    """Deep-copy JSON-like data so later mutation of the caller's dicts cannot leak in."""
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class Manifest:
    """Everything ckit knows about an artifact without reading tensor bytes."""

    format: str
    path: str
    tensors: tuple[TensorInfo, ...]
    producer: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    shards: tuple[ShardInfo, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        tensors = tuple(self.tensors)
        keys = [t.key for t in tensors]
        # Readers mostly list tensors in key order already (a checkpoint index is sorted): ASCII keys
        # that strictly increase as text do so as bytes too, and cannot repeat.
        if not ("".join(keys).isascii() and all(map(str.__lt__, keys, keys[1:]))):
            tensors = tuple(sorted(tensors, key=lambda t: t.key.encode("utf-8", "surrogateescape")))
            keys = [t.key for t in tensors]
            if len(set(keys)) != len(keys):
                raise ValueError("manifest has duplicate tensor keys")
        object.__setattr__(self, "tensors", tensors)
        object.__setattr__(self, "producer", _freeze(dict(self.producer)))
        object.__setattr__(self, "metadata", _freeze(dict(self.metadata)))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "shards", tuple(self.shards))
        object.__setattr__(self, "notes", tuple(self.notes))

    # -- lookups -----------------------------------------------------------
    def __getitem__(self, key: str) -> TensorInfo:
        for tensor in self.tensors:
            if tensor.key == key:
                return tensor
        raise KeyError(key)

    def __iter__(self):
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def by_role(self, *roles: str) -> tuple[TensorInfo, ...]:
        return tuple(t for t in self.tensors if t.role in roles)

    def layer_weights(self) -> list[tuple[str, list[TensorInfo]]]:
        """Model weights grouped by owning layer, layers in model order, weights by index."""
        grouped: dict[str, list[TensorInfo]] = {name: [] for name in self.layers}
        for tensor in self.tensors:
            if tensor.role == "weight" and tensor.layer is not None:
                grouped.setdefault(tensor.layer, []).append(tensor)
        return [
            (name, sorted(items, key=lambda t: (t.index if t.index is not None else 1 << 30, t.key)))
            for name, items in grouped.items()
        ]

    def model_weights(self) -> list[TensorInfo]:
        """Model weights in model order (layer by layer, by index); by key where no layer is known."""
        ordered = [t for _, tensors in self.layer_weights() for t in tensors]
        return ordered or [t for t in self.tensors if t.role == "weight"]

    # -- totals ------------------------------------------------------------
    @property
    def totals(self) -> dict[str, Any]:
        # (column-wise: a checkpoint may hold 100,000 tensors)
        roles = [t.role for t in self.tensors]
        by_role = {role: roles.count(role) for role in set(roles)}
        return {
            "tensors": len(self.tensors),
            "parameters": sum(map(math.prod, [t.shape for t in self.tensors if t.role == "weight"])),
            "bytes": sum([t.nbytes for t in self.tensors]),
            "shards": len(self.shards),
            "by_role": dict(sorted(by_role.items())),
        }

    # -- JSON --------------------------------------------------------------
    def to_json(self, tensors: bool = True) -> dict[str, Any]:
        """The JSON document; with `tensors=False` its "tensors" is None (`render_json` writes the
        list itself)."""
        return {
            "schema": SCHEMA,
            "format": self.format,
            "path": self.path,
            "producer": dict(self.producer),
            "metadata": dict(self.metadata),
            "layers": list(self.layers),
            "tensors": [t.to_json() for t in self.tensors] if tensors else None,
            "shards": [s.to_json() for s in self.shards],
            "notes": list(self.notes),
            "totals": self.totals,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Manifest":
        if data.get("schema") != SCHEMA:
            raise ValueError(f"manifest schema {data.get('schema')!r} is not {SCHEMA!r}")
        return cls(
            format=data["format"],
            path=data["path"],
            tensors=tuple(TensorInfo.from_json(t) for t in data["tensors"]),
            producer=data.get("producer", {}),
            metadata=data.get("metadata", {}),
            layers=tuple(data.get("layers", ())),
            shards=tuple(ShardInfo(**s) for s in data.get("shards", ())),
            notes=tuple(data.get("notes", ())),
        )

    def __repr__(self) -> str:
        t = self.totals
        return f'<manifest {self.format} "{self.path}": {t["tensors"]} tensors, {t["bytes"]} bytes>'


