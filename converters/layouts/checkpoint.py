"""TF checkpoint sources: the names a checkpoint tracks its layers under.

A tf_keras checkpoint keys each variable by the object path the loader follows
(`layer_with_weights-0/layer/kernel/.ATTRIBUTES/VARIABLE_VALUE`); those paths tell what a flat list
of canonical names cannot: a subclassed model's attribute names (`enc`), a wrapper's `layer`, an
attention layer's `_query_dense`.  The layout rules read them from here.
"""

from __future__ import annotations

import re
from dataclasses import replace

from inspector.identity import unescape_local_name
from inspector.manifest import Manifest, TensorInfo

from ..layout import LayerNode

POSITIONAL_EDGE = re.compile(r"layer_with_weights-\d+")


def tracked_paths(manifest: Manifest) -> dict[str, list[str]]:
    """Source key -> the object path below its top-level layer, for TF checkpoint keys
    (`layer_with_weights-0/layer/kernel/.ATTRIBUTES/...` -> `["layer", "kernel"]`)."""
    if manifest.format not in ("tf-checkpoint", "saved-model"):
        return {}
    out = {}
    for tensor in manifest.model_weights():
        if "/.ATTRIBUTES/" in tensor.key:
            path = [unescape_local_name(p) for p in tensor.key.split("/.ATTRIBUTES/", 1)[0].split("/")]
            out[tensor.key] = path[1:]
    return out


def with_tracked_names(layers: tuple[LayerNode, ...], tensors: list[list[TensorInfo]]) -> tuple[LayerNode, ...]:
    """Keep the names a TF checkpoint tracks its top-level layers under (a subclassed model's
    attributes: `enc/kernel/.ATTRIBUTES/...`), so a checkpoint written from it matches the model.
    Position-based names (`layer_with_weights-N`) are what the writer derives anyway."""
    edges = [edge_at([(t.key, t.name) for t in layer_tensors], 0) for layer_tensors in tensors]
    named = [e for e in edges if e is not None]
    if len(set(named)) != len(named):  # one object holds several layers (tf.train.Checkpoint(model=...))
        return layers
    out = []
    for node, edge in zip(layers, edges):
        if edge and node.is_container and node.children:
            # Layers the file groups under one attribute: a list of layers (`blocks/0/kernel/...`).
            inner = [edge_at([(w.source_key, w.name) for w in child.flat_weights()], 1) for child in node.children]
            if all(inner) and len(set(inner)) == len(inner):
                node = replace(node, children=tuple(replace(c, tracked_as=e) for c, e in zip(node.children, inner)))
        out.append(replace(node, tracked_as=edge) if edge else node)
    return tuple(out)


def edge_at(keys: list[tuple[str, str]], depth: int) -> str | None:
    """The object name all these checkpoint keys (with their variables' names) share at `depth`,
    unless it is position-based.  Only keys that end in the variable's own attribute
    (`enc/kernel/.ATTRIBUTES/...` for `dense/kernel`) track layers by name; a SavedModel's
    `variables/12/...` lists variables, not layers."""
    if not keys or not all("/.ATTRIBUTES/" in key for key, _ in keys):
        return None
    paths = [key.split("/.ATTRIBUTES/", 1)[0].split("/") for key, _ in keys]
    if any(len(path) <= depth + 1 for path in paths):  # the name must be an object above the variable
        return None
    if any(unescape_local_name(path[-1]) != name.rsplit("/", 1)[-1] for path, (_, name) in zip(paths, keys)):
        return None
    names = {path[depth] for path in paths}
    name = names.pop() if len(names) == 1 else None
    if name is None or POSITIONAL_EDGE.fullmatch(name):
        return None
    return unescape_local_name(name)
