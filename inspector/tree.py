"""An artifact as a tree: model -> layers (nested models, cells, wrappers) -> weights.

Built from the manifest alone (no tensor bytes): layers in model order, each weight placed
under its owning layer by the rest of its canonical name (`lstm/lstm_cell/kernel` gives the
node `lstm_cell`), layer classes and a few telling config fields where the artifact records
a Keras config (`.h5` models, `.keras`, tf_keras SavedModels).  Optimizer state and other
bookkeeping hang apart from the model, so the model's parameter count is what Keras's
`count_params()` says.  Parameters (weights only) and bytes roll up to every node.

JSON schema `ckit.tree/1` (docs/INSPECT.md):

    {"schema": "ckit.tree/1", "format": "...", "path": "...",
     "root": NODE, "optimizer": NODE | null, "other": NODE | null}
    NODE = {"name", "kind": "model"|"layer"|"group"|"weight", "class": str | null,
            "config": {field: value}, "params": int, "bytes": int, "tensors": int,
            "children": [NODE], and for weights "key", "dtype", "shape", "role"}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .manifest import Manifest, TensorInfo

SCHEMA = "ckit.tree/1"
# Config fields worth a glance in a summary (Keras's own summary shows none, users look these up).
KEY_FIELDS = ("units", "filters", "kernel_size", "strides", "pool_size", "activation", "rate", "input_dim",
              "output_dim", "num_heads", "key_dim", "return_sequences", "axis", "merge_mode", "padding",
              "batch_input_shape", "batch_shape", "target_shape")
_CONTAINERS = {"Sequential", "Functional", "Model"}


@dataclass
class Node:
    name: str
    kind: str  # model, layer, group, weight
    class_name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    children: list["Node"] = field(default_factory=list)
    tensor: TensorInfo | None = None
    # Names of the configs nested in this layer's config (cells, wrapped layers) -> class names.
    sub_classes: dict[str, str] = field(default_factory=dict)

    def child(self, name: str, kind: str = "group") -> "Node":
        for node in self.children:
            if node.name == name and node.kind != "weight":
                return node
        node = Node(name, kind)
        self.children.append(node)
        return node

    @property
    def params(self) -> int:
        if self.tensor is not None:
            return self.tensor.size if self.tensor.role == "weight" else 0
        return sum(c.params for c in self.children)

    @property
    def bytes(self) -> int:
        if self.tensor is not None:
            return self.tensor.nbytes
        return sum(c.bytes for c in self.children)

    @property
    def tensors(self) -> int:
        return 1 if self.tensor is not None else sum(c.tensors for c in self.children)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "class": self.class_name, "config": self.config,
                               "params": self.params, "bytes": self.bytes, "tensors": self.tensors}
        if self.tensor is not None:
            t = self.tensor
            out.update(key=t.key, dtype=t.dtype, shape=list(t.shape), role=t.role)
        out["children"] = [c.to_json() for c in self.children]
        return out


@dataclass(frozen=True)
class Tree:
    manifest: Manifest
    root: Node
    optimizer: Node | None
    other: Node | None

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "format": self.manifest.format, "path": self.manifest.path,
                "root": self.root.to_json(), "optimizer": self.optimizer.to_json() if self.optimizer else None,
                "other": self.other.to_json() if self.other else None}


def _model_config(manifest: Manifest) -> dict[str, Any] | None:
    for key in ("model_config", "keras_config"):
        value = manifest.metadata.get(key)
        if isinstance(value, dict) and isinstance(value.get("config"), dict):
            return value
    return None


def _name(entry: dict[str, Any]) -> str | None:
    config = entry.get("config")
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) else entry.get("name") if isinstance(entry.get("name"), str) else None


def _summary(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        return {}
    out = {}
    for key in KEY_FIELDS:
        value = config.get(key)
        if isinstance(value, dict) and value.get("class_name") == "__tuple__":
            value = value.get("items")
        if isinstance(value, (str, int, float, bool)) or (isinstance(value, list) and len(value) <= 8):
            out[key] = value
    return out


def _sub_classes(config: Any, found: dict[str, str]) -> dict[str, str]:
    """Names of configs nested in a layer's config (cells, wrapped layers) -> class names."""
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str) and _name(config):
            found.setdefault(_name(config), config["class_name"])
        for value in config.values():
            _sub_classes(value, found)
    elif isinstance(config, list):
        for value in config:
            _sub_classes(value, found)
    return found


def _add_layers(parent: Node, entries: Iterable[Any], index: dict[str, Node]) -> None:
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name = _name(entry)
        if name is None:
            continue
        class_name = entry.get("class_name") if isinstance(entry.get("class_name"), str) else None
        config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        node = Node(name, "model" if class_name in _CONTAINERS else "layer", class_name, _summary(config))
        parent.children.append(node)
        index.setdefault(name, node)
        if isinstance(config.get("layers"), list):
            _add_layers(node, config["layers"], index)
        node.sub_classes = _sub_classes({k: v for k, v in config.items() if k != "layers"}, {})


def _place(root: Node, tensor: TensorInfo, first: str | None = None, strip: str | None = None) -> None:
    """Hang a tensor under `root` along its canonical name's path."""
    parts = [p for p in tensor.name.split("/") if p] or [tensor.key]
    if first is not None:
        # Below its layer: the path after the layer's own name ("sequential/dense/kernel" under
        # dense -> kernel); a subclassed model's variable scope ("dense/kernel" under "hidden")
        # says nothing the layer node does not, so only the weight's own name remains.
        parts = parts[parts.index(first) + 1:] if first in parts[:-1] else parts[-1:]
    elif strip is not None and parts[0] == strip and len(parts) > 1:
        parts = parts[1:]
    node = root
    classes = root.sub_classes
    for part in parts[:-1]:
        node = node.child(part)
        if node.class_name is None and part in classes:
            node.class_name = classes[part]
    node.children.append(Node(parts[-1], "weight", tensor=tensor))


def build_tree(manifest: Manifest) -> Tree:
    config = _model_config(manifest)
    index: dict[str, Node] = {}
    if config is not None:
        inner = config["config"]
        root = Node(inner.get("name") or "model", "model", config.get("class_name"), {})
        _add_layers(root, inner.get("layers") or [], index)
    else:
        root = Node("model", "model", None)
    for name in manifest.layers:
        if name not in index:
            index[name] = Node(name, "layer")
            root.children.append(index[name])
    optimizer = Node("optimizer", "group")
    other = Node("other", "group")
    for tensor in manifest.model_weights():
        if tensor.layer is not None:
            if tensor.layer not in index:
                index[tensor.layer] = root.child(tensor.layer, "layer")
            _place(index[tensor.layer], tensor, tensor.layer)
        else:
            _place(root, tensor)
    placed = {t.key for t in manifest.model_weights()}
    for tensor in manifest.tensors:
        if tensor.key in placed:
            continue
        if tensor.role == "weight":
            _place(root, tensor)
        elif tensor.role == "optimizer":
            _place(optimizer, tensor, strip="optimizer")
        else:
            _place(other, tensor)
    from .naturalsort import natural_key

    for group in (optimizer, other):
        _sort(group, natural_key)
    return Tree(manifest, root, optimizer if optimizer.children else None, other if other.children else None)


def _sort(node: Node, key: Any) -> None:
    node.children.sort(key=lambda c: key(c.name))
    for child in node.children:
        _sort(child, key)


def read_tree(path: str, format: str | None = None) -> Tree:
    from .registry import read_manifest

    return build_tree(read_manifest(path, format))
