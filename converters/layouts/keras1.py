"""Keras 1 weights (files without a keras_version), converted as tf_keras's own loader converts them.

The readers already name each Keras 1 weight in today's terms (`dense_1_W` -> `dense_1/kernel`);
what remains is the layout (tf_keras `preprocess_weights_for_loading`, `original_keras_version == "1"`):
an LSTM kept one tensor per gate and kind (12 tensors, gates in the order i, c, f, o), which today is
three tensors with the gates in the order i, f, c, o; a GRU kept 9 (z, r, h), today 3, with the reset
gate applied before the recurrent kernel (GRU(reset_after=False)).

Convolution kernels are refused: a Keras 1 file does not record the backend that trained it, and a
Theano-trained kernel is flipped against TensorFlow's (Theano convolves, TensorFlow correlates), so
neither copying nor flipping is known to be right.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from inspector.errors import UnsupportedFeature

from ..layout import LayerNode, WeightRef
from . import Context

_KINDS = ("kernel", "recurrent_kernel", "bias")
# Gate order of today's layers; Keras 1 stored LSTM gates as i, c, f, o (tf_keras reorders them).
_FAMILIES = {"LSTM": ("i", "f", "c", "o"), "GRU": ("z", "r", "h")}


def is_keras1(ctx: Context) -> bool:
    version = ctx.keras_version or ""
    return version == "1" or version.startswith("1.")


def refine(node: LayerNode, ctx: Context) -> LayerNode:
    if not is_keras1(ctx):
        return node
    refs = node.flat_weights()
    deep = [r for r in refs if len(r.shape) >= 3 and r.attribute.split("_")[0] in ("kernel", "depthwise", "pointwise")]
    if deep:
        raise UnsupportedFeature(
            f"layer '{node.name}' ({node.class_name or 'convolution'}) holds a Keras 1 convolution kernel "
            f"('{deep[0].name}', shape {list(deep[0].shape)}); Keras 1 files do not record the backend that trained "
            "them and Theano kernels are flipped against TensorFlow's, so ckit cannot tell whether to flip it; "
            "re-save it from Keras 2 on TensorFlow (flipping Theano kernels with convert_all_kernels_in_model)"
        )
    gated: dict[tuple[str, str], WeightRef] = {}
    for ref in refs:
        kind, _, gate = ref.attribute.rpartition("_")
        if kind in _KINDS and len(gate) == 1:
            gated[(kind, gate)] = ref
    if not gated:
        return node
    gates = {gate for _, gate in gated}
    family = next((f for f, order in _FAMILIES.items() if gates == set(order)), None)
    if family is None or len(gated) != len(refs) or len(gated) != 3 * len(gates):
        raise UnsupportedFeature(
            f"layer '{node.name}' holds Keras 1 gate weights ({', '.join(r.attribute for r in refs)}) that "
            "are neither an LSTM's (i, c, f, o) nor a GRU's (z, r, h), each with W, U and b; ckit cannot "
            "merge them into today's layout"
        )
    cell = f"{family.lower()}_cell"
    merged = []
    for kind in _KINDS:
        parts = [gated[(kind, gate)] for gate in _FAMILIES[family]]
        shape = (*parts[0].shape[:-1], sum(p.shape[-1] for p in parts))
        merged.append(ctx.derived.add(f"{node.name}/{cell}/{kind}", parts[0].dtype, shape, parts,
                                      lambda values: np.concatenate([np.asarray(v) for v in values], axis=-1)))
    child = LayerNode(name=cell, class_name=f"{family}Cell", weights=tuple(merged))
    return replace(node, class_name=family, weights=(), children=(child,))
