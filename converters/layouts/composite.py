"""Layers that own sub-layers by attribute (MultiHeadAttention), in the layer's own order.

Their configs do not list the sub-layers, so the order is the framework's tracking order, the
order `layer.weights` lists them in: query, key, value, output (`inspector.keras_names.COMPOSITE_LAYERS`).
Each sub-layer becomes a child tracked by its tf_keras attribute (`_query_dense`); Keras 3 files
name the same groups without the underscore.
"""

from __future__ import annotations

from dataclasses import replace

from inspector.errors import UnsupportedFeature
from inspector.keras_names import COMPOSITE_LAYERS, composite_class_from_parts, variable_rank

from ..layout import LayerNode, WeightRef
from . import Context


def refine(node: LayerNode, ctx: Context) -> LayerNode:
    cls = node.class_name or _recognised(node, ctx)
    if cls not in COMPOSITE_LAYERS:
        return node
    parts = COMPOSITE_LAYERS[cls]
    by_part: dict[int, list[WeightRef]] = {}
    for ref in node.flat_weights():
        index = _part_of(ref, parts, ctx)
        if index is None:
            raise UnsupportedFeature(
                f"layer '{node.name}' ({cls}): weight '{ref.name}' belongs to none of its sub-layers "
                f"({', '.join(p[3] for p in parts)}); ckit cannot place it in the layer's own order; "
                "pass --model module:function to name the architecture"
            )
        by_part.setdefault(index, []).append(ref)
    children = []
    for index in sorted(by_part):
        _, attribute, sub_class, default = parts[index]
        refs = sorted(by_part[index], key=lambda r: variable_rank(r.name))  # kernel before bias
        sub_name = refs[0].name.split("/")[-2] if refs[0].name.count("/") >= 2 else default
        children.append(LayerNode(name=sub_name, class_name=sub_class, weights=tuple(refs), tracked_as=attribute))
    return replace(node, class_name=cls, weights=(), children=tuple(children))


def _recognised(node: LayerNode, ctx: Context) -> str | None:
    """MultiHeadAttention without a class on record: its sub-layers' names or tracked attributes say so."""
    refs = node.flat_weights()
    if not refs or not all(r.name.count("/") >= 2 for r in refs):
        return None
    found = composite_class_from_parts({r.name.split("/")[1] for r in refs})
    if found:
        return found
    attributes = {tuple(ctx.tracked_paths.get(r.source_key) or ())[:1] for r in refs}
    known = {(p[1],) for p in COMPOSITE_LAYERS["MultiHeadAttention"]}
    return "MultiHeadAttention" if attributes and attributes <= known and len(attributes) > 1 else None


def _part_of(ref: WeightRef, parts, ctx: Context) -> int | None:
    path = ctx.tracked_paths.get(ref.source_key)
    for index, (group, attribute, _, default) in enumerate(parts):
        if path and path[0] in (attribute, group):
            return index
    names = ref.name.split("/")
    sub = names[-2] if len(names) >= 3 else None
    for index, (group, attribute, _, default) in enumerate(parts):
        if sub in (default, group, attribute):
            return index
    return None
