"""Keras variable names per layer class, and the path naming rules of Keras 2 and Keras 3.

Keras 3 files store variables by position (`layers/dense/vars/0`) and Keras 2
files by TF name (`dense/kernel:0`); this table is the one place that says
which position is which name.  Pure Python: the converters import it too.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

# Variables in `layer.weights` order (creation order) for the default config.
# Optional variables are dropped by `variable_names` according to the config.
LAYER_VARIABLES: dict[str, tuple[str, ...]] = {
    "Dense": ("kernel", "bias"),
    "EinsumDense": ("kernel", "bias"),
    "Conv1D": ("kernel", "bias"),
    "Conv2D": ("kernel", "bias"),
    "Conv3D": ("kernel", "bias"),
    "Conv1DTranspose": ("kernel", "bias"),
    "Conv2DTranspose": ("kernel", "bias"),
    "Conv3DTranspose": ("kernel", "bias"),
    "DepthwiseConv1D": ("depthwise_kernel", "bias"),
    "DepthwiseConv2D": ("depthwise_kernel", "bias"),
    "SeparableConv1D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
    "GroupNormalization": ("gamma", "beta"),
    "RMSNormalization": ("scale",),
    "Embedding": ("embeddings",),
    "Attention": ("scale", "concat_score_weight"),
    "AdditiveAttention": ("scale",),
    "PReLU": ("alpha",),
    "Normalization": ("mean", "variance", "count"),
    "LSTMCell": ("kernel", "recurrent_kernel", "bias"),
    # Keras 2 CuDNN layers hold their variables themselves, without a cell (and a CuDNN layout).
    "CuDNNLSTM": ("kernel", "recurrent_kernel", "bias"),
    "CuDNNGRU": ("kernel", "recurrent_kernel", "bias"),
    "GRUCell": ("kernel", "recurrent_kernel", "bias"),
    "SimpleRNNCell": ("kernel", "recurrent_kernel", "bias"),
    "ConvLSTM1DCell": ("kernel", "recurrent_kernel", "bias"),
    "ConvLSTM2DCell": ("kernel", "recurrent_kernel", "bias"),
    "ConvLSTM3DCell": ("kernel", "recurrent_kernel", "bias"),
}

# One order consistent with every row above, for formats that keep names but not order
# (safetensors files are laid out by dtype and name, not by model order).
VARIABLE_ORDER: tuple[str, ...] = (
    "depthwise_kernel", "pointwise_kernel", "kernel", "recurrent_kernel", "bias", "embeddings", "concat_score_weight",
    "gamma", "beta", "moving_mean", "moving_variance", "scale", "alpha", "mean", "variance", "count",
)

# Config switches that remove a variable from the default list.
_OPTIONAL: dict[str, str] = {"bias": "use_bias", "gamma": "scale", "beta": "center"}
# Switches that are off by default, per class (Attention has no `scale` unless `use_scale`).
_OPT_IN: dict[tuple[str, str], Any] = {
    ("Attention", "scale"): lambda c: c.get("use_scale") is True,
    ("Attention", "concat_score_weight"): lambda c: c.get("score_mode") == "concat",
    ("EinsumDense", "bias"): lambda c: bool(c.get("bias_axes")),
}

# RNN layers own their variables through a cell stored under the attribute "cell".
RNN_CELLS: dict[str, str] = {
    "LSTM": "LSTMCell",
    "GRU": "GRUCell",
    "SimpleRNN": "SimpleRNNCell",
    "ConvLSTM1D": "ConvLSTM1DCell",
    "ConvLSTM2D": "ConvLSTM2DCell",
    "ConvLSTM3D": "ConvLSTM3DCell",
}

# Classes whose children sit under a `layers/` container (Keras 3) and whose
# Keras 2 variable names do not include the container's own name.
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})

# Wrappers whose wrapped layers are attributes (Keras 3 groups `forward_layer`, `backward_layer`, `layer`).
WRAPPER_CLASSES = frozenset({"Bidirectional", "TimeDistributed"})

# Layers that own sub-layers by attribute and hold no variables themselves: per class, each
# sub-layer as (Keras 3 group name, tf_keras checkpoint attribute, class, default layer name), in the
# order the layer creates them, which is its `weights` order (query, key, value, output).
COMPOSITE_LAYERS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    cls: (
        ("query_dense", "_query_dense", "EinsumDense", "query"),
        ("key_dense", "_key_dense", "EinsumDense", "key"),
        ("value_dense", "_value_dense", "EinsumDense", "value"),
        ("output_dense", "_output_dense", "EinsumDense", "attention_output"),
    )
    for cls in ("MultiHeadAttention", "GroupedQueryAttention")
}

# Attribute sub-layers in the order the owning layer tracks them (its `weights` order).  Keras 3
# saves attributes in dir() order (alphabetical), so file order cannot be trusted for these.
ATTRIBUTE_ORDER: tuple[str, ...] = ("cell", "forward_layer", "backward_layer", "layer") + tuple(
    part[0] for part in COMPOSITE_LAYERS["MultiHeadAttention"]
)


def composite_part(owner_class: str | None, group: str) -> tuple[str, str, str, str] | None:
    """The sub-layer entry of a composite layer for a Keras 3 group name (`query_dense`)."""
    for part in COMPOSITE_LAYERS.get(owner_class or "", ()):
        if part[0] == group:
            return part
    return None


def composite_class_from_parts(sub_layer_names: Iterable[str]) -> str | None:
    """The composite class whose default sub-layer names these are (`query`, `key`, ... -> MultiHeadAttention)."""
    names = list(sub_layer_names)
    default = [part[3] for part in COMPOSITE_LAYERS["MultiHeadAttention"]]
    return "MultiHeadAttention" if names and sorted(names) == sorted(default) else None

WEIGHTLESS_CLASSES = frozenset(
    {"InputLayer", "Flatten", "Dropout", "Reshape", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
     "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
     "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
     "GlobalMaxPooling3D", "Activation", "ReLU", "Softmax", "Add", "Concatenate", "Multiply"}
)


def to_snake_case(name: str) -> str:
    """Keras' own snake_case rule (keras/src/utils/naming.py): `Conv2D` -> `conv2d`, `RMSprop` -> `rm_sprop`."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_CLASS_BY_SNAKE: dict[str, str] = {
    to_snake_case(cls): cls
    for cls in (*LAYER_VARIABLES, *RNN_CELLS, *MODEL_CLASSES, *WRAPPER_CLASSES, *WEIGHTLESS_CLASSES, *COMPOSITE_LAYERS)
}


def strip_number(name: str) -> str:
    """`dense_3` -> `dense`: the base of a Keras auto-numbered name."""
    return re.sub(r"_\d+$", "", name)


def number_of(name: str) -> int:
    """`dense_3` -> 3, `dense` -> 0: for ordering auto-numbered names naturally."""
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def class_for_group(group_name: str) -> str | None:
    """The layer class a Keras 3 group name (`batch_normalization_1`) was made from, if known."""
    return _CLASS_BY_SNAKE.get(group_name) or _CLASS_BY_SNAKE.get(strip_number(group_name))


def unique_group_names(class_names: Iterable[str]) -> list[str]:
    """Keras 3 container naming: snake_case class name, repeated ones numbered `_1`, `_2`, ... in order."""
    used: dict[str, int] = {}
    names = []
    for cls in class_names:
        base = to_snake_case(cls)
        if base in used:
            used[base] += 1
            names.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            names.append(base)
    return names


def variable_names(class_name: str | None, config: Mapping[str, Any] | None = None) -> tuple[str, ...] | None:
    """Names of a layer's own variables in order, or None when the class is not in the table."""
    if class_name is None or class_name not in LAYER_VARIABLES:
        return None
    names = LAYER_VARIABLES[class_name]
    if config:
        names = tuple(n for n in names if config.get(_OPTIONAL.get(n, ""), True) is not False
                      and _OPT_IN.get((class_name, n), lambda c: True)(config))
    elif class_name == "Attention":  # both variables are opt-in: the default layer has none
        names = ()
    return names


def variable_names_for_count(class_name: str | None, count: int,
                             config: Mapping[str, Any] | None = None) -> tuple[str, ...] | None:
    """`variable_names`, or without the bias when that alone makes the count match (a layer built with
    `use_bias=False` whose config is not at hand); None when the names cannot be told."""
    names = variable_names(class_name, config)
    if names is None:
        return None
    if len(names) == count:
        return names
    without_bias = tuple(n for n in names if n != "bias")
    if config is None and len(without_bias) == count and len(without_bias) < len(names):
        return without_bias
    full = LAYER_VARIABLES[class_name]
    return full if config is None and len(full) == count else None


def cell_class(rnn_class: str | None, config: Mapping[str, Any] | None = None) -> str | None:
    """The cell class of an RNN layer, from its config when it names one, else the table."""
    if config and isinstance(config.get("cell"), Mapping):
        return config["cell"].get("class_name")
    return RNN_CELLS.get(rnn_class or "")


def default_cell_name(rnn_class: str | None) -> str | None:
    """The name Keras gives an RNN layer's internal cell (`LSTM` -> `lstm_cell`)."""
    cell = RNN_CELLS.get(rnn_class or "")
    return to_snake_case(cell) if cell else None


def strip_tf_suffix(name: str) -> str:
    """`dense/kernel:0` -> `dense/kernel`: canonical names carry no TF output index."""
    return re.sub(r":\d+$", "", name)


def variable_rank(name: str) -> int:
    """Position of a variable's base name (`dense/kernel` -> `kernel`) in `VARIABLE_ORDER`; unknown last."""
    base = strip_tf_suffix(name).rsplit("/", 1)[-1]
    return VARIABLE_ORDER.index(base) if base in VARIABLE_ORDER else len(VARIABLE_ORDER)


def rnn_class_from_shapes(shapes: list[tuple[int, ...]]) -> str | None:
    """The RNN layer class whose cell holds variables of these shapes (kernel, recurrent_kernel, bias).

    The gate count shows in the recurrent kernel (units, gates * units): 4 LSTM, 3 GRU, 1 SimpleRNN.
    """
    if len(shapes) not in (2, 3) or len(shapes[1]) != 2:
        return None
    units, width = shapes[1]
    if units <= 0 or width % units:
        return None
    return {4: "LSTM", 3: "GRU", 1: "SimpleRNN"}.get(width // units)


def wrapped_names(bidirectional_config: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(forward, backward) layer names of a Bidirectional from its config, as Keras names them."""
    if not isinstance(bidirectional_config, Mapping):
        return None, None
    inner = bidirectional_config.get("layer")
    name = inner.get("config", {}).get("name") if isinstance(inner, Mapping) and isinstance(inner.get("config"), Mapping) else None
    back = bidirectional_config.get("backward_layer")
    back_name = back.get("config", {}).get("name") if isinstance(back, Mapping) and isinstance(back.get("config"), Mapping) else None
    if not isinstance(name, str) or not name:
        return None, back_name if isinstance(back_name, str) else None
    base = name[len("forward_"):] if name.startswith("forward_") else name
    forward = name if name.startswith("forward_") else f"forward_{name}"
    return forward, back_name if isinstance(back_name, str) and back_name else f"backward_{base}"


# Keras 1 stored weights as `<layer>_<short name>` (`dense_1_W`, `lstm_1_U_i`); tf_keras reads such a
# file (it records no keras_version) as Keras 1.  What each short name is, in today's names.
_KERAS1_NAMES: dict[str, str] = {
    "W": "kernel", "b": "bias", "U": "recurrent_kernel", "gamma": "gamma", "beta": "beta",
    "running_mean": "moving_mean", "running_std": "moving_variance",  # Keras 1 kept the variance there
    "depthwise_W": "depthwise_kernel", "pointwise_W": "pointwise_kernel", "alphas": "alpha",
}
_KERAS1_GATES = frozenset({"i", "c", "f", "o", "z", "r", "h"})


def keras1_weight_name(layer: str, weight_name: str, class_name: str | None = None) -> str | None:
    """Today's canonical name of a Keras 1 weight (`dense_1_W` -> `dense_1/kernel`); a weight of one
    gate keeps the gate (`lstm_1_W_i` -> `lstm_1/kernel_i`), since only the layer's gates together
    make one variable.  None when `weight_name` is not a Keras 1 name of `layer`."""
    if "/" in weight_name or ":" in weight_name or not weight_name.startswith(layer + "_"):
        return None
    short = weight_name[len(layer) + 1:]
    gate = None
    base, _, last = short.rpartition("_")
    if base in ("W", "U", "b") and last in _KERAS1_GATES:
        short, gate = base, last
    name = _KERAS1_NAMES.get(short)
    if name is None:
        return None
    if name == "kernel" and (class_name or class_for_group(layer)) == "Embedding":
        name = "embeddings"
    return f"{layer}/{name}_{gate}" if gate else f"{layer}/{name}"


def rnn_layout(shapes: list[tuple[int, ...]]) -> tuple[str, str] | None:
    """(family "LSTM"/"GRU", layout) of an RNN's (kernel, recurrent_kernel, bias) shapes, as tf_keras's
    loader tells them apart by the bias: layout "cudnn" (CuDNNLSTM 8 x units, CuDNNGRU 6 x units),
    "standard" (LSTM 4 x units), "gru-reset-after" ((2, 3 x units)) or "gru-reset-before" (3 x units)."""
    if len(shapes) != 3 or len(shapes[1]) != 2 or shapes[1][0] <= 0:
        return None
    units, width = shapes[1]
    bias = tuple(shapes[2])
    if width == 4 * units:
        return {(8 * units,): ("LSTM", "cudnn"), (4 * units,): ("LSTM", "standard")}.get(bias)
    if width == 3 * units:
        return {(6 * units,): ("GRU", "cudnn"), (2, 3 * units): ("GRU", "gru-reset-after"),
                (3 * units,): ("GRU", "gru-reset-before")}.get(bias)
    return None


_CELL_VARIABLES = (("kernel", "recurrent_kernel", "bias"), ("kernel", "recurrent_kernel"))


def with_cell_level(layer: str, names: list[str], shapes: list[tuple[int, ...]],
                    class_name: str | None = None) -> list[str]:
    """Keras <= 2.2 named an RNN's weights without its cell (`lstm_1/kernel`); today's tf_keras
    variable is `lstm_1/lstm_cell/kernel`.  The class comes from the config or the layer's default
    name, else from the shapes (never for a CuDNN layout: CuDNN layers hold their weights themselves)."""
    if len(names) in (4, 6) and all(n.count("/") == 2 for n in names):
        # Bidirectional of Keras <= 2.1: `bidirectional_1/forward_lstm_1/kernel`, then the backward half.
        half = len(names) // 2
        parts = [names[:half], names[half:]]
        subs = [{n.split("/")[1] for n in part} for part in parts]
        if all(len(sub) == 1 and next(iter(sub)).lower().startswith(("forward_", "backward_")) for sub in subs):
            out = []
            for part, sub, shape in zip(parts, subs, (shapes[:half], shapes[half:])):
                inner = next(iter(sub))
                named = with_cell_level(inner, [n.partition("/")[2] for n in part], shape,
                                        class_for_group(inner.split("_", 1)[1].lower()))
                out += [f"{layer}/{n}" for n in named]
            return out
    if tuple(n.rpartition("/")[2] for n in names) not in _CELL_VARIABLES or any(n.count("/") != 1 for n in names):
        return names
    if class_name is None:
        class_name = class_for_group(layer)
    if class_name is None:
        found = rnn_layout(shapes) if len(shapes) == 3 else None
        class_name = found[0] if found and found[1] != "cudnn" else (
            "SimpleRNN" if rnn_class_from_shapes(shapes) == "SimpleRNN" else None)
    cell = default_cell_name(class_name)
    if cell is None or class_name not in RNN_CELLS:
        return names
    return [f"{n.partition('/')[0]}/{cell}/{n.rpartition('/')[2]}" for n in names]


def owned_names(layer: str, names: list[str], class_name: str | None = None) -> list[str]:
    """Names of a layer's own weights as tf_keras names its variables, where an old Keras wrote
    another scope: Keras 2.0 uniquified name scopes (`conv2d_1_1/kernel` in layer `conv2d_1`), and
    Keras <= 2.1 named a TimeDistributed layer's weights after the wrapped layer
    (`chars_embeddings/embeddings` in `time_distributed_1`); tf_keras names both after the layer."""
    wrapper = (class_name or class_for_group(layer)) == "TimeDistributed"
    out = []
    for name in names:
        scope, _, rest = name.partition("/")
        if rest and "/" not in rest and scope != layer and (
                wrapper or re.fullmatch(re.escape(layer) + r"_\d+", scope)):
            name = f"{layer}/{rest}"
        out.append(name)
    return out
