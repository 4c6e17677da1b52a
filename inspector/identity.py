"""Where a framework's own loader finds each tensor of an artifact: its identity in the target.

Readers name tensors canonically (`dense/kernel`); loaders do not look tensors up by that name.
Each format's loader has its own rule, and this module resolves an opened artifact's tensors by it:

- TF checkpoints (tf_keras `load_weights`, `tf.train.Checkpoint.restore`) match objects by
  their path in the object graph: `layer_with_weights-2/forward_layer/cell/kernel`,
  `optimizer/_variables/3`.  A variable reachable along several paths (a SavedModel lists
  variables under `variables/N` too) has every one of them.
- Keras 2 HDF5 (`load_weights("w.h5")`, `load_model("m.h5")`) matches layers by position among
  the `layer_names` that hold weights, and weights by position in `weight_names`.
- Keras 3 weights (`.weights.h5`, `.keras`) are read by group path: `layers/dense_1/vars/0`.

Pure Python over what readers already expose; no framework import.
"""

from __future__ import annotations

from typing import Callable, Iterable

from .errors import CorruptArtifact
from .manifest import Manifest, TensorInfo

VARIABLE_VALUE = "VARIABLE_VALUE"
# Object paths are enumerated through every edge; these bound a hostile or cyclic graph.
_MAX_DEPTH = 24
_MAX_PATHS = 200_000


def unescape_local_name(name: str) -> str:
    """Undo trackable_utils.escape_local_name ("." -> "..", "/" -> ".S") for display and matching."""
    out = []
    i = 0
    while i < len(name):
        if name[i] == "." and i + 1 < len(name) and name[i + 1] in ".S":
            out.append("." if name[i + 1] == "." else "/")
            i += 2
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def checkpoint_paths(graph_bytes: bytes, where: str) -> dict[str, str]:
    """Object path (local names joined by "/") -> checkpoint key, for every variable in the graph.

    This is how a restore finds a variable: from the root, child by child by local name; the
    checkpoint key is only where the bytes are stored.
    """
    from .formats.object_graph import parse_graph

    graph = parse_graph(graph_bytes, where)
    nodes = graph.nodes
    count = len(nodes)
    paths: dict[str, str] = {}
    if count == 0:
        return paths
    stack: list[tuple[int, tuple[str, ...], frozenset[int]]] = [(0, (), frozenset({0}))]
    visited_paths = 0
    while stack:
        node_id, path, seen = stack.pop()
        visited_paths += 1
        if visited_paths > _MAX_PATHS:
            raise CorruptArtifact(
                f"{where}: the object graph has more than {_MAX_PATHS} object paths; expected a Keras model's "
                "checkpoint; the graph is damaged or hostile"
            )
        node = nodes[node_id]
        for attribute in node.attributes:
            if attribute.name == VARIABLE_VALUE and path:
                paths.setdefault("/".join(path), attribute.checkpoint_key)
        if len(path) >= _MAX_DEPTH:
            continue
        for child in node.children:
            if 0 <= child.node_id < count and child.node_id not in seen:
                stack.append((child.node_id, path + (unescape_local_name(child.local_name),), seen | {child.node_id}))
    return paths


def h5_positions(manifest: Manifest) -> tuple[dict[str, TensorInfo], list[str]]:
    """`<layer>#<i>` -> tensor for the model weights of a Keras 2 style `.h5`, and the layers that hold
    weights in `layer_names` order: the loader pairs the k-th of those with the model's k-th layer
    that has weights, and that layer's weights with `weight_names` by position."""
    slots: dict[str, TensorInfo] = {}
    for tensor in manifest.tensors:
        if tensor.role == "weight" and tensor.layer is not None and tensor.index is not None:
            slots[f"{tensor.layer}#{tensor.index}"] = tensor
    return slots, list(manifest.layers)


def keras3_paths(manifest: Manifest) -> dict[str, TensorInfo]:
    """`layers/dense_1/vars/0` -> tensor: a Keras 3 weights store is read by group path."""
    return {t.key.lstrip("/"): t for t in manifest.tensors if "/vars/" in "/" + t.key.lstrip("/")}


def object_graph_of(manifest: Manifest, read: Callable[[str], object], where: str) -> bytes | None:
    """The serialized object graph of a checkpoint-like artifact, or None when it has none."""
    from .formats.object_graph import OBJECT_GRAPH_KEY

    key = next((t.key for t in manifest.tensors if t.key.endswith(OBJECT_GRAPH_KEY)), None)
    if key is None:
        return None
    value = read(key)
    items = list(getattr(value, "reshape", lambda *_: [value])(-1))
    data = items[0] if items else b""
    return bytes(data) if not isinstance(data, str) else data.encode("latin-1")


def tensors_by_key(tensors: Iterable[TensorInfo]) -> dict[str, TensorInfo]:
    return {t.key: t for t in tensors}
