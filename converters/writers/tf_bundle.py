"""Writes TensorFlow checkpoints (tensor bundles) natively, and tf_keras `save_weights` checkpoints from a layout.

Two levels:

- `BundleWriter(prefix)` streams tensors into `prefix.data-NNNNN-of-NNNNN`
  in the order they are added and, on `finish()`, writes `prefix.index`: a
  LevelDB table holding the `BundleHeaderProto` under key "" and one
  `BundleEntryProto` per tensor, in key order (tensor_bundle.cc).
- `TF_CHECKPOINT_WRITER` turns a `ModelLayout` into what tf_keras
  `model.save_weights(prefix)` writes: the variables under
  `layer_with_weights-k/<attribute>/.ATTRIBUTES/VARIABLE_VALUE`, the
  `_CHECKPOINTABLE_OBJECT_GRAPH` that `load_weights` needs to match them,
  and the `checkpoint` state file.

No TensorFlow import: the protos come from tensorboard and `inspector.protos`.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from inspector.crc32c import crc32c, mask
from inspector.dtypes import TF_DTYPE_CODES, dtype_name, numpy_dtype
from inspector.errors import MappingError, MissingData, OutputExists, UnsupportedFeature
from inspector.formats.tf_bundle import OBJECT_GRAPH_KEY, data_path, index_path
from inspector.protos import BundleEntryProto, BundleHeaderProto

from ..layout import LayerNode, ModelLayout, WeightRef
from .base import WriteOptions, WriteResult
from .sstable import TableBuilder, encode_varint

HEADER_KEY = b""
VARIABLE_VALUE = "VARIABLE_VALUE"
_ATTRIBUTES_SUFFIX = "/.ATTRIBUTES/" + VARIABLE_VALUE
BUNDLE_VERSION = 1  # kTensorBundleVersion: the producer version TF stamps into the header

# Types without a fixed byte layout in a bundle (handles, variants) cannot be written from numpy.
_UNWRITABLE = frozenset({"resource", "variant"})
_U32_MAX = 0xFFFFFFFF


def _string_payload(array: np.ndarray) -> tuple[list[bytes], int]:
    """The elements of a string tensor as bytes, and their total size."""
    items: list[bytes] = []
    for item in array.reshape(-1).tolist():
        if isinstance(item, str):
            item = item.encode("utf-8")
        elif not isinstance(item, (bytes, bytearray, memoryview)):
            raise UnsupportedFeature(
                f"string tensor element of type {type(item).__name__}; expected bytes or str; "
                "convert the elements before writing"
            )
        items.append(bytes(item))
    return items, sum(len(b) for b in items)


@dataclass
class _Shard:
    path: Path  # temporary name until finish() knows the shard count
    handle: Any
    size: int = 0


class BundleWriter:
    """Streams tensors into a TensorFlow tensor bundle at `prefix`.

    Use as a context manager, or call `finish()` (returns the paths written)
    or `abort()` (removes them).  With `max_shard_size`, a new data shard is
    started whenever the next tensor would push the current one past that
    many bytes; a single tensor is never split.
    """

    def __init__(self, prefix: Path | str, max_shard_size: int | None = None) -> None:
        self.prefix = Path(prefix)
        if max_shard_size is not None and max_shard_size <= 0:
            raise ValueError(f"max_shard_size must be a positive number of bytes, got {max_shard_size}")
        self.max_shard_size = max_shard_size
        if not self.prefix.parent.is_dir():
            raise MissingData(
                f"{self.prefix.parent} is not an existing directory; BundleWriter writes the checkpoint "
                "into an existing directory; create it first"
            )
        existing = index_path(self.prefix)
        if existing.exists():
            raise OutputExists(
                f"{existing} already exists; BundleWriter never overwrites a checkpoint; "
                "remove it or choose another prefix"
            )
        stale = sorted(glob.glob(glob.escape(str(self.prefix)) + ".data-*"))
        if stale:
            raise OutputExists(
                f"{stale[0]} already exists (data shard without index); BundleWriter never overwrites "
                "checkpoint files; remove it or choose another prefix"
            )
        self._entries: dict[bytes, Any] = {}
        self._shards: list[_Shard] = []
        self._finished = False
        self._new_shard()

    def _new_shard(self) -> None:
        path = Path(f"{self.prefix}.data-{len(self._shards):05d}.partial")
        self._shards.append(_Shard(path, open(path, "wb")))

    def add(self, key: str | bytes, value: Any, dtype: str | None = None) -> int:
        """Append one tensor under `key`; returns the bytes it took in the data shard.

        `dtype` is ckit's dtype name; by default it follows the array's dtype
        (object, bytes and str arrays are DT_STRING).
        """
        if self._finished:
            raise ValueError(f"BundleWriter for {self.prefix} is finished; no more tensors can be added")
        raw_key = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if raw_key == HEADER_KEY:
            raise MappingError("tensor key '' is reserved for the bundle header; give the tensor a name")
        if raw_key in self._entries:
            raise MappingError(
                f"duplicate tensor key {key!r}: a bundle holds one tensor per key; "
                "rename one of the tensors or drop the duplicate"
            )
        array = np.asarray(value)
        name = dtype or dtype_name(array.dtype)
        if name in _UNWRITABLE or name not in TF_DTYPE_CODES:
            writable = ", ".join(sorted(set(TF_DTYPE_CODES) - _UNWRITABLE))
            raise UnsupportedFeature(
                f"cannot write tensor {key!r} of dtype '{name}' into a TensorFlow bundle; "
                f"supported dtypes: {writable}; cast the tensor first"
            )

        shard = self._shards[-1]
        if name == "string":
            items, payload = _string_payload(array)
            lengths = b"".join(encode_varint(len(b)) for b in items)
            nbytes = len(lengths) + 4 + payload
        else:
            array = array.astype(numpy_dtype(name), order="C", copy=False)
            nbytes = array.nbytes
        if self.max_shard_size is not None and shard.size > 0 and shard.size + nbytes > self.max_shard_size:
            self._new_shard()
            shard = self._shards[-1]

        if name == "string":
            # tensor_bundle.cc WriteStringTensor: the checksum covers each length as a
            # little-endian uint32 (uint64 past 4 GiB), then the masked length checksum, then the bytes.
            crc = 0
            for b in items:
                size = len(b)
                crc = crc32c(size.to_bytes(4 if size <= _U32_MAX else 8, "little"), crc)
            length_checksum = mask(crc).to_bytes(4, "little")
            crc = crc32c(length_checksum, crc)
            shard.handle.write(lengths)
            shard.handle.write(length_checksum)
            for b in items:
                shard.handle.write(b)
                crc = crc32c(b, crc)
        else:
            view = memoryview(array.reshape(-1).view(np.uint8))
            crc = crc32c(view)
            shard.handle.write(view)

        entry = BundleEntryProto(dtype=TF_DTYPE_CODES[name], crc32c=mask(crc))
        entry.shape.SetInParent()  # scalars still carry an (empty) shape, as TF writes them
        for dim in array.shape:
            entry.shape.dim.add(size=int(dim))
        entry.shard_id = len(self._shards) - 1
        entry.offset = shard.size
        entry.size = nbytes
        self._entries[raw_key] = entry
        shard.size += nbytes
        return nbytes

    def finish(self) -> tuple[Path, ...]:
        """Close the shards under their final names and write the index; returns every path written."""
        if self._finished:
            raise ValueError(f"BundleWriter for {self.prefix} is already finished")
        self._finished = True
        try:
            num_shards = len(self._shards)
            paths = []
            for i, shard in enumerate(self._shards):
                shard.handle.close()
                final = data_path(self.prefix, i, num_shards)
                os.replace(shard.path, final)
                shard.path = final
                paths.append(final)
            header = BundleHeaderProto(num_shards=num_shards, endianness=0)
            header.version.producer = BUNDLE_VERSION
            index = index_path(self.prefix)
            with open(index, "xb") as handle:
                table = TableBuilder(handle)
                table.add(HEADER_KEY, header.SerializeToString(deterministic=True))
                for key in sorted(self._entries):
                    table.add(key, self._entries[key].SerializeToString(deterministic=True))
                table.finish()
            paths.append(index)
        except BaseException:
            self._remove_files()
            raise
        return tuple(paths)

    def abort(self) -> None:
        """Remove whatever was written; the prefix is left as it was."""
        self._finished = True
        self._remove_files()

    def _remove_files(self) -> None:
        for shard in self._shards:
            if not shard.handle.closed:
                shard.handle.close()
            shard.path.unlink(missing_ok=True)
        index_path(self.prefix).unlink(missing_ok=True)

    def __enter__(self) -> "BundleWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            if not self._finished:
                self.abort()
        elif not self._finished:
            self.finish()


# --- tf_keras checkpoints -------------------------------------------------------------------------


def escape_local_name(name: str) -> str:
    """Escape one path element of a checkpoint key (trackable_utils.escape_local_name)."""
    return name.replace(".", "..").replace("/", ".S")


def checkpoint_key(path: Iterable[str]) -> str:
    return "/".join(escape_local_name(p) for p in path) + _ATTRIBUTES_SUFFIX


@dataclass
class _Obj:
    """One node of the object graph being built."""

    children: list[tuple[str, "_Obj"]] = field(default_factory=list)
    variable: WeightRef | None = None
    key: str = ""
    constant: np.ndarray | None = None  # value known without reading the source (learning rate from config)

    def add(self, name: str, child: "_Obj") -> "_Obj":
        if any(existing == name for existing, _ in self.children):
            raise MappingError(
                f"two objects named '{name}' under one layer; tf_keras tracks one object per name; "
                "check the layout's weight names"
            )
        self.children.append((name, child))
        return child

    def child(self, name: str) -> "_Obj":
        """The child named `name`, created when absent (a list or dict of layers on a subclassed model)."""
        for existing, child in self.children:
            if existing == name:
                return child
        return self.add(name, _Obj())


_TO_HDF5 = "write this model to HDF5 (h5-weights, h5-model) or .keras instead"


def _add_variables(parent: _Obj, path: list[str], weights: Iterable[WeightRef], layer: str = "") -> None:
    seen: dict[str, str] = {}
    for ref in weights:
        if ref.attribute in seen:
            raise MappingError(
                f"layer '{layer}' has two weights named '{ref.attribute}' ('{seen[ref.attribute]}' and "
                f"'{ref.name}'): it holds sub-layers whose tf_keras attribute names ckit does not know, and a "
                f"TF checkpoint tracks one object per name; {_TO_HDF5}"
            )
        seen[ref.attribute] = ref.name
        parent.add(ref.attribute, _Obj(variable=ref, key=checkpoint_key(path + [ref.attribute])))


_DIRECTIONS = (("forward_", "forward_layer"), ("backward_", "backward_layer"))


def _direction(name: str) -> str | None:
    for prefix, attribute in _DIRECTIONS:
        if name.startswith(prefix):
            return attribute
    return None


def _bidirectional_parts(node: LayerNode) -> dict[str, list[tuple[list[str], WeightRef]]] | None:
    """A Bidirectional layer's weights by the attribute tf_keras tracks them under
    (`forward_layer` / `backward_layer`), each with the path below that attribute
    (`["cell", "kernel"]` for an RNN); None when the names do not say."""
    owners: list[tuple[WeightRef, str | None]] = [(ref, None) for ref in node.weights]
    for child in node.children:
        owners += [(ref, child.name.rsplit("/", 1)[-1]) for ref in child.flat_weights()]
    parts: dict[str, list[tuple[list[str], WeightRef]]] = {}
    for ref, owner in owners:
        names = ref.name.split("/")
        index = next((i for i, part in enumerate(names[:-1]) if _direction(part)), None)
        if index is not None:
            attribute, below = _direction(names[index]), names[index + 1 :]
        elif owner and _direction(owner):
            attribute, below = _direction(owner), names[-2:] if len(names) >= 2 else names
        else:
            return None
        if len(below) == 2:  # <cell>/<variable>: the wrapped RNN tracks its cell as `cell`
            below = ["cell", below[1]]
        elif len(below) != 1:
            return None
        parts.setdefault(attribute, []).append((below, ref))
    return parts if set(parts) == {"forward_layer", "backward_layer"} else None


def _is_bidirectional(node: LayerNode) -> bool:
    if node.class_name == "Bidirectional":
        return True
    return node.class_name is None and _bidirectional_parts(node) is not None


def _add_bidirectional(obj: _Obj, here: list[str], node: LayerNode) -> None:
    """tf_keras tracks a Bidirectional layer's RNNs as `forward_layer` and `backward_layer`, each
    holding its cell as `cell`: `<layer>/forward_layer/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE`."""
    parts = _bidirectional_parts(node)
    if parts is None:
        raise UnsupportedFeature(
            f"layer '{node.name}' (Bidirectional): ckit cannot tell which of its weights "
            f"({', '.join(ref.name for ref in node.flat_weights()[:4])}, ...) belong to its forward and its "
            f"backward layer, which a TF checkpoint tracks as forward_layer and backward_layer; {_TO_HDF5}"
        )
    for attribute in ("forward_layer", "backward_layer"):
        direction = obj.add(attribute, _Obj())
        for below, ref in parts[attribute]:
            target, path = direction, here + [attribute]
            for name in below[:-1]:
                target, path = target.child(name), path + [name]
            if any(existing == below[-1] for existing, _ in target.children):
                raise UnsupportedFeature(
                    f"layer '{node.name}' (Bidirectional): two weights named '{below[-1]}' in its {attribute}; "
                    f"ckit cannot place them in a TF checkpoint; {_TO_HDF5}"
                )
            target.add(below[-1], _Obj(variable=ref, key=checkpoint_key(path + [below[-1]])))


_RNN_VARIABLES = (("kernel", "recurrent_kernel", "bias"), ("kernel", "recurrent_kernel"))


def _subclassed_rnn(node: LayerNode) -> bool:
    """A layer whose class a config names but Keras does not define (rnnmorph's `ReversedLSTM(LSTM)`)
    holding exactly an RNN cell's variables: a subclass of a Keras RNN, which tracks them under `cell`
    as the RNN it extends does (placement derives the same from the variables). A CuDNN layer holds
    its weights itself."""
    from inspector.keras_names import rnn_class_from_shapes, rnn_layout

    if node.class_name is None or node.class_name in ("CuDNNLSTM", "CuDNNGRU") or node.children:
        return False
    shapes = [tuple(ref.shape) for ref in node.weights]
    return (tuple(ref.attribute for ref in node.weights) in _RNN_VARIABLES and rnn_class_from_shapes(shapes) is not None
            and (rnn_layout(shapes) or ("", ""))[1] != "cudnn")


def _add_layer(parent: _Obj, path: list[str], local_name: str, node: LayerNode) -> None:
    # A subclassed model tracks its layers by attribute ("enc"), possibly through a list ("blocks/0").
    *through, last = (node.tracked_as or local_name).split("/")
    for name in through:
        parent, path = parent.child(name), path + [name]
    obj = parent.add(last, _Obj())
    here = path + [last]
    if node.is_rnn or _subclassed_rnn(node):
        # tf_keras RNN layers own no variables themselves: the cell does, tracked as `cell`.
        cell = obj.add("cell", _Obj())
        _add_variables(cell, here + ["cell"], node.flat_weights(), node.name)
        return
    if _is_bidirectional(node):
        _add_bidirectional(obj, here, node)
        return
    _add_variables(obj, here, node.weights, node.name)
    if node.is_container:
        for j, child in enumerate(node.children):
            _add_layer(obj, here, f"layer_with_weights-{j}", child)
    elif node.children and all(child.tracked_as for child in node.children):
        # Sub-layers held by attribute (TimeDistributed's `layer`, MultiHeadAttention's `_query_dense`).
        for child in node.children:
            _add_layer(obj, here, str(child.tracked_as), child)
    elif node.children:
        raise MappingError(
            f"layer '{node.name}' ({node.class_name or 'unknown class'}) has sub-layers "
            f"{[c.name for c in node.children]} whose tf_keras attribute names are not known; "
            "the TF checkpoint writer places sub-layers only for nested models, RNN cells and Bidirectional "
            f"wrappers; {_TO_HDF5}"
        )


_ITERATION_NAMES = frozenset({"iteration", "iterations", "iter"})
_LEARNING_RATE_NAMES = frozenset({"learning_rate", "lr"})


def _optimizer_slots(layout: ModelLayout, slots: list[WeightRef]) -> str | None:
    """Why `slots` do not map onto tf_keras's `optimizer/_variables/N`, or None when they do.

    tf_keras (>= 2.11) names a slot `<slot>/<variable>` and numbers `_variables`
    in build order: iteration first, then each slot kind over the trainable
    variables in model order.  Anything else (Keras 3 names, legacy
    `Opt/<variable>/<slot>` names, another order) would restore slots onto the
    wrong variables, so it is refused.
    """
    weights = {ref.name: (n, ref) for n, ref in enumerate(layout.flat_weights())}
    last: dict[str, int] = {}
    for ref in slots:
        parts = ref.name.split("/")
        # tf_keras scopes slot names with the optimizer's name ("RMSprop/velocity/dense/kernel").
        split = next((i for i in (1, 2) if "/".join(parts[i:]) in weights), None)
        if split is None:
            return f"slot '{ref.name}' does not name a model variable as '[<optimizer>/]<slot>/<variable>'"
        kind, target = "/".join(parts[:split]), "/".join(parts[split:])
        position, weight = weights[target]
        if tuple(weight.shape) != tuple(ref.shape):
            return f"slot '{ref.name}' has shape {tuple(ref.shape)}, its variable {tuple(weight.shape)}"
        if position <= last.get(kind, -1):
            return f"slots '{kind}/...' are not in model variable order"
        last[kind] = position
    return None


def _configured_learning_rate(layout: ModelLayout) -> float | None:
    """The optimizer's constant learning rate from the training config (None for schedules or when absent)."""
    config = (layout.training_config or {}).get("optimizer_config") or {}
    rate = (config.get("config") or {}).get("learning_rate")
    if isinstance(rate, (int, float, np.floating)) and not isinstance(rate, bool):
        return float(rate)
    return None


def _add_optimizer(root: _Obj, layout: ModelLayout) -> tuple[bool, str | None]:
    """Place the layout's optimizer state as tf_keras does; returns (any written, note on what was dropped)."""
    refs = list(layout.optimizer)
    iterations = [r for r in refs if r.attribute in _ITERATION_NAMES and not r.shape]
    rates = [r for r in refs if r.attribute in _LEARNING_RATE_NAMES and not r.shape]
    slots = [r for r in refs if r not in iterations and r not in rates]
    if len(iterations) != 1 or len(rates) > 1:
        return False, (
            f"optimizer state dropped ({len(refs)} variables): expected one iteration counter, found "
            f"{[r.name for r in iterations] or 'none'}; the model will load with a fresh optimizer"
        )
    reason = _optimizer_slots(layout, slots) if slots else None
    optimizer = root.add("optimizer", _Obj())
    variables = optimizer.add("_variables", _Obj())
    counter = optimizer.add("_iterations", _Obj(variable=iterations[0], key=checkpoint_key(["optimizer", "_iterations"])))
    variables.add("0", counter)  # tf_keras lists the counter first in `_variables`
    rate_key = checkpoint_key(["optimizer", "_learning_rate"])
    if rates:
        optimizer.add("_learning_rate", _Obj(variable=rates[0], key=rate_key))
    else:
        # tf_keras saves the learning rate as a variable but does not list it among the optimizer's
        # weights, so HDF5 sources lack it; the training config still says what it was.
        rate = _configured_learning_rate(layout)
        if rate is not None:
            ref = WeightRef(name="learning_rate", dtype="float32", shape=(), source_key="")
            optimizer.add("_learning_rate", _Obj(variable=ref, key=rate_key, constant=np.array(rate, np.float32)))
    if reason is not None:
        return True, (
            f"optimizer slots dropped ({len(slots)} variables): {reason}; tf_keras would restore them onto "
            "the wrong variables; the iteration count was kept, the slots start fresh"
        )
    for n, ref in enumerate(slots, start=1):
        variables.add(str(n), _Obj(variable=ref, key=checkpoint_key(["optimizer", "_variables", str(n)])))
    return True, None


def build_object_graph(
    layout: ModelLayout, include_optimizer: bool = False
) -> tuple[Any, list[tuple[str, WeightRef, np.ndarray | None]], list[str]]:
    """The `TrackableObjectGraph` of tf_keras `save_weights`, what to write in order, and notes.

    Each item to write is (key, weight, constant): `constant` is the value when
    the writer knows it without reading the source, else None.
    """
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    root = _Obj()
    for k, node in enumerate(layout.layers):
        _add_layer(root, [], f"layer_with_weights-{k}", node)
    notes = []
    if include_optimizer and layout.optimizer:
        _, note = _add_optimizer(root, layout)
        if note:
            notes.append(note)

    # Breadth-first ids, as TF numbers objects; root is node 0; a shared object keeps its first id.
    order = [root]
    ids = {id(root): 0}
    for obj in order:
        for _, child in obj.children:
            if id(child) not in ids:
                ids[id(child)] = len(order)
                order.append(child)

    has_values = [False] * len(order)
    # Children get larger ids than their first parent; the one shared object (the iteration
    # counter) holds a variable itself, so one pass from the leaves up is enough.
    for i in reversed(range(len(order))):
        obj = order[i]
        has_values[i] = obj.variable is not None or any(has_values[ids[id(c)]] for _, c in obj.children)
    graph = TrackableObjectGraph()
    variables = []
    for i, obj in enumerate(order):
        proto = graph.nodes.add()
        for name, child in obj.children:
            proto.children.add(node_id=ids[id(child)], local_name=name)
        if obj.variable is not None:
            proto.attributes.add(name=VARIABLE_VALUE, full_name=obj.variable.name, checkpoint_key=obj.key)
            variables.append((obj.key, obj.variable, obj.constant))
        proto.has_checkpoint_values.value = has_values[i]
    rank = {id(ref): n for n, ref in enumerate(layout.flat_weights() + list(layout.optimizer))}
    variables.sort(key=lambda item: rank.get(id(item[1]), len(rank)))
    return graph, variables, notes


def _text_proto_string(value: str) -> str:
    from google.protobuf import text_encoding

    return '"' + text_encoding.CEscape(value, as_utf8=True) + '"'


# --- the `checkpoint` state file -----------------------------------------------------------------

_STATE_LINE = re.compile(r"^\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_STATE_STRINGS = ("model_checkpoint_path", "all_model_checkpoint_paths")
_STATE_NUMBERS = ("all_model_checkpoint_timestamps", "last_preserved_timestamp")


@dataclass
class CheckpointState:
    """TF's `CheckpointState` proto, as the text file `checkpoint` beside a checkpoint holds it."""

    model_checkpoint_path: str = ""
    all_model_checkpoint_paths: list[str] = field(default_factory=list)
    all_model_checkpoint_timestamps: list[float] = field(default_factory=list)
    last_preserved_timestamp: float | None = None

    def to_text(self) -> str:
        lines = [f"model_checkpoint_path: {_text_proto_string(self.model_checkpoint_path)}"]
        lines += [f"all_model_checkpoint_paths: {_text_proto_string(p)}" for p in self.all_model_checkpoint_paths]
        lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in self.all_model_checkpoint_timestamps]
        if self.last_preserved_timestamp is not None:
            lines.append(f"last_preserved_timestamp: {self.last_preserved_timestamp!r}")
        return "\n".join(lines) + "\n"


def parse_checkpoint_state(text: str, where: str = "checkpoint") -> CheckpointState:
    """Parse a `checkpoint` state file; a CorruptArtifact naming the line when it is not one."""
    from google.protobuf import text_encoding

    from inspector.errors import CorruptArtifact

    state = CheckpointState()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _STATE_LINE.match(line)
        key, value = (match.group(1), match.group(2)) if match else (None, "")
        try:
            if key in _STATE_STRINGS and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                text_value = text_encoding.CUnescape(value[1:-1]).decode("utf-8")
                if key == "model_checkpoint_path":
                    state.model_checkpoint_path = text_value
                else:
                    state.all_model_checkpoint_paths.append(text_value)
                continue
            if key in _STATE_NUMBERS:
                if key == "last_preserved_timestamp":
                    state.last_preserved_timestamp = float(value)
                else:
                    state.all_model_checkpoint_timestamps.append(float(value))
                continue
        except (ValueError, UnicodeDecodeError):
            pass
        raise CorruptArtifact(
            f"{where} line {number} ({line.strip()[:60]!r}) is not part of a TensorFlow checkpoint state file; "
            "expected lines like 'model_checkpoint_path: \"prefix\"'; move the file away and convert again"
        )
    return state


def merge_checkpoint_state(
    existing: CheckpointState, new_prefix: str, now: float, directory: Path | None = None
) -> CheckpointState:
    """`existing` updated for a new save at `new_prefix`, as TF's CheckpointManager updates it.

    The new prefix becomes `model_checkpoint_path` and the last of `all_model_checkpoint_paths`
    (moved there if it was listed, relative or as an absolute path into `directory`); every other
    listed checkpoint stays, with its timestamp.
    """
    def same(path: str) -> bool:
        if path == new_prefix:
            return True
        return directory is not None and os.path.isabs(path) and (
            os.path.normpath(path) == os.path.normpath(os.path.join(os.path.abspath(directory), new_prefix))
        )

    paths = list(existing.all_model_checkpoint_paths)
    if not paths and existing.model_checkpoint_path:
        paths = [existing.model_checkpoint_path]
    stamps = list(existing.all_model_checkpoint_timestamps)
    timed = bool(stamps) and len(stamps) == len(paths)
    kept = [(p, stamps[i] if timed else None) for i, p in enumerate(paths) if not same(p)]
    kept.append((new_prefix, now if timed else None))
    return CheckpointState(
        model_checkpoint_path=new_prefix,
        all_model_checkpoint_paths=[p for p, _ in kept],
        all_model_checkpoint_timestamps=[t for _, t in kept if t is not None] if timed else stamps,
        last_preserved_timestamp=existing.last_preserved_timestamp,
    )


class TFCheckpointWriter:
    """tf_keras `save_weights(prefix)` checkpoints: `prefix.index`, `prefix.data-*`, and `checkpoint`."""

    name = "tf-checkpoint"
    description = "TensorFlow checkpoint as tf_keras model.save_weights(prefix) writes it"
    suffixes: tuple[str, ...] = ()

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        dst = Path(dst)
        graph, variables, notes = build_object_graph(layout, include_optimizer=options.include_optimizer)
        with BundleWriter(dst, max_shard_size=options.max_shard_size) as bundle:
            for key, ref, constant in variables:
                value = layout.read(ref.source_key) if constant is None else constant
                if tuple(np.shape(value)) != tuple(ref.shape):
                    raise MappingError(
                        f"tensor '{ref.source_key}' has shape {tuple(np.shape(value))}, but the layout "
                        f"declares {tuple(ref.shape)} for '{ref.name}'; the source and its layout disagree"
                    )
                nbytes = bundle.add(key, value, dtype=ref.dtype)
                del value
                if options.progress is not None:
                    options.progress(ref, nbytes)
            bundle.add(OBJECT_GRAPH_KEY, np.array(graph.SerializeToString(), dtype=object), dtype="string")
            paths = list(bundle.finish())
        paths.append(write_state_file(dst))
        return WriteResult(paths=tuple(paths), notes=tuple(notes))


def write_state_file(dst: Path) -> Path:
    """The `checkpoint` state file TF2 writes next to a checkpoint: relative paths, so the directory can move."""
    state = dst.parent / "checkpoint"
    basename = _text_proto_string(dst.name)
    state.write_text(f"model_checkpoint_path: {basename}\nall_model_checkpoint_paths: {basename}\n")
    return state


def write_passthrough(
    items: list[tuple[str, WeightRef]], graph: bytes | None, layout: ModelLayout, dst: Path, options: WriteOptions
) -> WriteResult:
    """A checkpoint's tensors under the given (output key, tensor) pairs, plus its (rewritten) object
    graph: the source's own layout, so the restore code written for the source restores the output."""
    from .base import fetch

    dst = Path(dst)
    with BundleWriter(dst, max_shard_size=options.max_shard_size) as bundle:
        for key, ref in sorted(items, key=lambda item: item[0].encode("utf-8", "surrogateescape")):
            value = fetch(layout, ref)
            nbytes = bundle.add(key, value, dtype=ref.dtype)
            del value
            if options.progress is not None:
                options.progress(ref, nbytes)
        if graph is not None:
            bundle.add(OBJECT_GRAPH_KEY, np.array(graph, dtype=object), dtype="string")
        paths = list(bundle.finish())
    paths.append(write_state_file(dst))
    return WriteResult(paths=tuple(paths))


TF_CHECKPOINT_WRITER = TFCheckpointWriter()
