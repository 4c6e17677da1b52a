"""CuDNNLSTM / CuDNNGRU weights (Keras 2, `tf.compat.v1.keras.layers`) to and from the standard layout.

The rules are tf_keras's own (`hdf5_format._convert_rnn_weights`), which tf_keras applies only when
it loads an HDF5 file: per gate, a CuDNN input kernel is the standard one transposed and re-read in
Fortran order and a recurrent kernel is transposed; a CuDNNLSTM keeps two biases per gate (8 x units),
which sum to the standard one (4 x units); a CuDNNGRU's 6 x units bias is GRU(reset_after=True)'s
(2, 3 x units).  A GRU with reset_after=False has no CuDNN counterpart, so that pairing is refused.

Which layout to write follows the layer the target loads into: Keras 3 has no CuDNN layers, so
Keras 3 targets get the standard layout; tf_keras targets keep a layer's CuDNN layout only where the
config (or the layer's default name) says the layer is CuDNN (a CuDNNLSTM tracks its variables
without a cell), and give any other layer the standard layout.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from inspector.errors import UnsupportedFeature
from inspector.keras_names import rnn_layout

from ..layout import LayerNode, WeightRef
from . import KERAS3_TARGETS, Context

GATES = {"LSTM": 4, "GRU": 3}
CUDNN_CLASS = {"LSTM": "CuDNNLSTM", "GRU": "CuDNNGRU"}
_NAMES = ("kernel", "recurrent_kernel", "bias")


def layout_of(shapes: list[tuple[int, ...]]) -> tuple[str, str] | None:
    """(family, layout) of (kernel, recurrent_kernel, bias) shapes (`inspector.keras_names.rnn_layout`)."""
    return rnn_layout(shapes)


def _rnn_weights(node: LayerNode) -> list[WeightRef] | None:
    refs = node.flat_weights()
    if len(refs) != 3 or tuple(r.attribute for r in refs) != _NAMES:
        return None
    if node.weights and node.children:
        return None
    return refs


def refine(node: LayerNode, ctx: Context) -> LayerNode:
    refs = _rnn_weights(node)
    if refs is None or node.class_name not in (None, "LSTM", "GRU", "CuDNNLSTM", "CuDNNGRU"):
        return node
    found = layout_of([tuple(r.shape) for r in refs])
    if found is None or found[1] != "cudnn":
        return node
    family = found[0]
    if ctx.target is None:
        return node
    if node.class_name == CUDNN_CLASS[family] and ctx.target not in KERAS3_TARGETS:
        return node  # the model (rebuilt from the config, or the user's) has the CuDNN layer itself
    # Keras 3 has no CuDNN layers, and a layer the file does not name as CuDNN is taken to be the
    # standard one: CuDNNLSTM ran only on a GPU, where today's LSTM uses cuDNN by itself.  (tf_keras
    # would convert an HDF5 file on load too, but Keras 3 reading the same .h5 would not.)
    return to_standard(node, refs, family, ctx)


def to_standard(node: LayerNode, refs: list[WeightRef], family: str, ctx: Context) -> LayerNode:
    """The node as a standard LSTM / GRU(reset_after=True) with its cell, values derived from the CuDNN ones."""
    cfg = ctx.layer_config
    if family == "GRU" and node.class_name == "GRU" and cfg.get("reset_after") is False:
        raise UnsupportedFeature(
            f"layer '{node.name}' (GRU, reset_after=False) holds CuDNNGRU weights (bias of 6 x units); "
            "tf_keras converts CuDNNGRU weights only to GRU(reset_after=True); rebuild the model with "
            "reset_after=True or keep the CuDNNGRU layer"
        )
    cell = f"{family.lower()}_cell"
    base = f"{node.name}/{cell}"
    derived = convert_refs(refs, family, from_cudnn=True, base=base, ctx=ctx)
    child = LayerNode(name=cell, class_name=f"{family}Cell", weights=tuple(derived))
    return replace(node, class_name=family, weights=(), children=(child,))


def convert_refs(refs: list[WeightRef], family: str, from_cudnn: bool, base: str, ctx: Context) -> list[WeightRef]:
    """Derived (kernel, recurrent_kernel, bias) refs in the other layout, named under `base`."""
    gates = GATES[family]
    kernel, recurrent, bias = refs
    units = recurrent.shape[0]
    if family == "LSTM":
        bias_shape = (4 * units,) if from_cudnn else (8 * units,)
        bias_op = _lstm_bias_from_cudnn if from_cudnn else _lstm_bias_to_cudnn
    else:
        bias_shape = (2, 3 * units) if from_cudnn else (6 * units,)
        bias_op = _gru_bias_from_cudnn if from_cudnn else _gru_bias_to_cudnn
    order = "F" if from_cudnn else "C"
    return [
        ctx.derived.add(f"{base}/kernel", kernel.dtype, kernel.shape, [kernel],
                        lambda v, g=gates, o=order: _per_gate(v[0], g, lambda k: k.T.reshape(k.shape, order=o))),
        ctx.derived.add(f"{base}/recurrent_kernel", recurrent.dtype, recurrent.shape, [recurrent],
                        lambda v, g=gates: _per_gate(v[0], g, lambda k: k.T)),
        ctx.derived.add(f"{base}/bias", bias.dtype, bias_shape, [bias], lambda v: bias_op(v[0])),
    ]


def _per_gate(kernels: Any, gates: int, func: Any) -> np.ndarray:
    kernels = np.asarray(kernels)
    return np.ascontiguousarray(np.hstack([func(k) for k in np.hsplit(kernels, gates)]))


def _lstm_bias_from_cudnn(bias: Any) -> np.ndarray:
    return np.sum(np.split(np.asarray(bias), 2, axis=0), axis=0).astype(np.asarray(bias).dtype)


def _lstm_bias_to_cudnn(bias: Any) -> np.ndarray:
    bias = np.asarray(bias)
    return np.tile(bias * bias.dtype.type(0.5), 2)


def _gru_bias_from_cudnn(bias: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(bias).reshape((2, -1)))


def _gru_bias_to_cudnn(bias: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(bias).reshape(-1))
