"""RNN layers and their cells, and `TimeDistributed`: where tf_keras and Keras 3 track the weights.

tf_keras names a TimeDistributed layer's weights after the wrapper (`td/kernel`) but tracks the
wrapped layer as `layer` (`layer_with_weights-0/layer/kernel` in a checkpoint); an RNN layer's
weights live on its cell (`.../cell/kernel`), even when an old file names them without the cell
(`encoder/kernel`, Keras <= 2.1), so the RNN must be known from its shapes when no class is.
"""

from __future__ import annotations

from dataclasses import replace

from inspector.keras_names import cell_class, rnn_class_from_shapes, rnn_layout

from ..layout import RNN_CLASSES, LayerNode
from . import Context, wrapped_config

_RNN_VARIABLES = (("kernel", "recurrent_kernel", "bias"), ("kernel", "recurrent_kernel"))


_DIRECTIONS = ("forward_layer", "backward_layer")


def refine(node: LayerNode, ctx: Context) -> LayerNode:
    if node.class_name == "TimeDistributed" or (node.class_name is None and _tracked_under(node, ctx, "layer")):
        return _time_distributed(node, ctx)
    if node.class_name in (None, "Bidirectional"):
        split = _bidirectional(node, ctx)
        if split is not None:
            return split
    return rnn(node, ctx)


def _bidirectional(node: LayerNode, ctx: Context) -> LayerNode | None:
    """A Bidirectional layer as its two wrapped RNNs, tracked as `forward_layer` / `backward_layer`:
    from the checkpoint's object paths, else from the `forward_` / `backward_` names Keras gives them."""
    if len(node.children) == 2 and all(c.tracked_as in _DIRECTIONS for c in node.children):
        return node
    parts: dict[str, list] = {}
    names: dict[str, str] = {}
    for ref in node.flat_weights():
        path = ctx.tracked_paths.get(ref.source_key)
        components = ref.name.split("/")
        sub = next((c for c in components[1:-1] if c.startswith(("forward_", "backward_"))), None)
        attribute = path[0] if path and path[0] in _DIRECTIONS else (
            "forward_layer" if sub and sub.startswith("forward_") else "backward_layer" if sub else None)
        if attribute is None:
            return None
        parts.setdefault(attribute, []).append(ref)
        names.setdefault(attribute, sub or attribute)
    if set(parts) != set(_DIRECTIONS):
        return None
    children = tuple(rnn(LayerNode(name=names[a], weights=tuple(parts[a]), tracked_as=a)) for a in _DIRECTIONS)
    return replace(node, class_name="Bidirectional", weights=(), children=children)


def rnn(node: LayerNode, ctx: Context | None = None) -> LayerNode:
    """An RNN layer known from its weights' names and shapes when nothing names its class."""
    if node.class_name is None and not node.children and node.weights:
        names = tuple(ref.attribute for ref in node.weights)
        shapes = [tuple(ref.shape) for ref in node.weights]
        cudnn = (rnn_layout(shapes) or ("", ""))[1] == "cudnn"  # a CuDNN layer holds its weights itself
        if names in _RNN_VARIABLES and not cudnn:
            found = rnn_class_from_shapes(shapes)
            if found:
                return replace(node, class_name=found)
    if node.class_name is None and len(node.children) == 1 and not node.weights:
        cell = node.children[0]
        found = rnn_class_from_shapes([tuple(ref.shape) for ref in cell.weights])
        if found and tuple(ref.attribute for ref in cell.weights) in _RNN_VARIABLES:
            return replace(node, class_name=found, children=(replace(cell, class_name=cell_class(found)),))
    return node


def _tracked_under(node: LayerNode, ctx: Context, attribute: str) -> bool:
    paths = [ctx.tracked_paths.get(ref.source_key) for ref in node.flat_weights()]
    return bool(paths) and all(p is not None and len(p) >= 2 and p[0] == attribute for p in paths)


def _time_distributed(node: LayerNode, ctx: Context) -> LayerNode:
    """One child, the wrapped layer, tracked as `layer`; the weights keep their tf_keras names."""
    if len(node.children) == 1 and node.children[0].tracked_as == "layer":
        return node  # already shaped
    inner_config = wrapped_config(ctx.config)
    inner_cfg = (inner_config or {}).get("config") or {}
    inner_class = (inner_config or {}).get("class_name") if inner_config else None
    weights = node.flat_weights()
    inner_name = inner_cfg.get("name") if isinstance(inner_cfg.get("name"), str) else None
    inner = LayerNode(name=inner_name or node.name, class_name=inner_class, weights=tuple(weights), tracked_as="layer")
    if inner_class in RNN_CLASSES or inner_class is None:
        inner = rnn(inner)
    return replace(node, class_name="TimeDistributed", weights=(), children=(inner,))
