"""Pairing a layout's weights with the variables of a live Keras model (tf_keras or Keras 3).

Two directions meet here.  `layout_from_model` (`--model`) builds the layout from the training
model itself: the model decides names, classes, nesting and config, the artifact only supplies
values in the order it lists its model weights (re-laid by `converters.layouts` where the source's
layout differs: Keras 1 gates, CuDNN weights).  Writers that rebuild the model (SavedModel, Keras 3 files, Keras 3 flavoured
`.h5`) all need the same answer: which source weight goes into which model
variable.  Layers pair by name when every source layer name exists in the
model, else by position over the layers that have weights (how Keras 2
loads HDF5 weights); within a layer, weights pair by position.  Counts,
shapes and dtypes are checked before any value is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from inspector.errors import MappingError
from inspector.manifest import Manifest, TensorInfo

from .layout import CONTAINER_CLASSES, RNN_CLASSES, LayerNode, ModelLayout, WeightRef
from .layouts.checkpoint import POSITIONAL_EDGE

if TYPE_CHECKING:  # values are only passed through
    import numpy as np

FIX = "pass --model with the architecture the weights were trained with"


@dataclass(frozen=True)
class WeightPair:
    ref: WeightRef
    variable: Any  # tf.Variable or keras.Variable
    layer: Any  # the model layer that owns `variable` (top level)


def pair_layers(nodes: Sequence[LayerNode], layers: Sequence[Any]) -> list[tuple[LayerNode, Any]]:
    """Source layers matched to model layers: by name when all names exist, else by position."""
    weighted = [layer for layer in layers if layer.weights]
    by_name = {layer.name: layer for layer in weighted}
    if all(node.name in by_name for node in nodes) and len(nodes) == len(weighted):
        return [(node, by_name[node.name]) for node in nodes]
    if len(weighted) != len(nodes):
        raise MappingError(
            f"the model has {len(weighted)} layers with weights ({', '.join(layer.name for layer in weighted)}), "
            f"the source has {len(nodes)} ({', '.join(node.name for node in nodes)}); {FIX}"
        )
    return list(zip(nodes, weighted))


def _dtype_name(variable: Any) -> str:
    # tf.Variable.dtype is a DType; a Keras 3 variable's dtype is already a string.
    return str(getattr(variable.dtype, "name", variable.dtype))


def pair_weights(layout: ModelLayout, model: Any) -> list[WeightPair]:
    """Every layout weight with the model variable it fills, checked for count, shape and dtype."""
    pairs: list[WeightPair] = []
    for node, layer in pair_layers(layout.layers, model.layers):
        refs = node.flat_weights()
        variables = list(layer.weights)
        if len(refs) != len(variables):
            raise MappingError(
                f"layer '{layer.name}' has {len(variables)} weights, the source's layer '{node.name}' has "
                f"{len(refs)}; {FIX}"
            )
        for ref, variable in zip(refs, variables):
            shape, dtype = tuple(int(d) for d in variable.shape), _dtype_name(variable)
            if shape != tuple(ref.shape) or dtype != ref.dtype:
                raise MappingError(
                    f"layer '{layer.name}': weight '{getattr(variable, 'path', variable.name)}' is "
                    f"{dtype}{list(shape)}, the source's '{ref.name}' is {ref.dtype}{list(ref.shape)}; {FIX}"
                )
            pairs.append(WeightPair(ref, variable, layer))
    return pairs


# --- the live model as the authority for a layout (--model) ---------------------------------------

def layout_from_model(
    model: Any,
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    schema: str,
) -> ModelLayout:
    """Match the source's weights to a live model's weights in order, checking every shape.

    The model decides names, classes, nesting and config; the artifact only
    supplies values, taken in the order the source lists its model weights.
    """
    from .layouts import Derived
    from .naming import _layout, layout_from_manifest  # naming re-exports this function

    source = manifest.model_weights()
    if manifest.metadata.get("keras1_layout"):
        # Keras 1 keeps an LSTM's gates in 12 tensors: pair the model with the merged weights instead.
        merged = layout_from_manifest(manifest, read)
        source = [TensorInfo(key=r.source_key, name=r.name, dtype=r.dtype, shape=r.shape, nbytes=0)
                  for r in merged.flat_weights()]
        read = merged.read
    nodes: list[LayerNode] = []
    position = 0
    tracked = _tracked_names(model) if schema == "keras2" else {}
    derived = Derived()
    for layer in _weighted_layers(model):
        node, position = _model_node(layer, source, position, manifest.path, tracked, schema, derived)
        nodes.append(node)
    if derived:
        read = derived.reader(read)
    if position != len(source):
        raise MappingError(
            f"{manifest.path}: the artifact has {len(source)} model weights but the model given with --model "
            f"has {position}; expected the same architecture; check the --model factory"
        )
    layout = _layout(manifest, read, tuple(nodes), _live_config(model, schema))
    if layout.training_config is None and schema == "keras2":
        # The factory compiled the model: its training setup is the user's statement of it.
        from dataclasses import replace

        layout = replace(layout, training_config=_live_training_config(model))
    return layout


def _live_training_config(model: Any) -> dict[str, Any] | None:
    """tf_keras's own record of how a compiled model trains (what `save("x.h5")` stores)."""
    try:
        from tf_keras.src.saving.legacy import saving_utils

        metadata = saving_utils.model_metadata(model, include_optimizer=True, require_config=False)
        return json.loads(json.dumps(metadata.get("training_config"), default=_json_scalar)) or None
    except Exception:  # an uncompiled model, or a tf_keras without this helper: nothing to carry
        return None


def _json_scalar(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def _weighted_layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if layer.weights]


def _variable_name(variable: Any) -> str:
    # tf_keras: "dense/kernel:0"; Keras 3: variable.path "dense/kernel".
    name = getattr(variable, "path", None) or variable.name
    return name[:-2] if name.endswith(":0") else name


# Objects that hold tracked layers without being layers: lists and dicts of layers on a subclassed model.
_MAX_WRAPPER_DEPTH = 3


def _tracked_names(model: Any) -> dict[int, str]:
    """id(layer) -> the child name (a "/" path through list/dict wrappers) under which `model`
    tracks it in a TF checkpoint (tf_keras `_trackable_children`): a subclassed model's attribute
    ("enc"), a Functional or Sequential model's `layer_with_weights-N`."""
    found: dict[int, str] = {}

    def visit(obj: Any, prefix: str, depth: int) -> None:
        try:
            children = obj._trackable_children()
        except Exception:  # noqa: BLE001 - not a trackable of this TF, or one that cannot list children
            return
        for name, child in children.items():
            edge = f"{prefix}{name}"
            if type(child).__name__.endswith("Wrapper"):  # ListWrapper, _DictWrapper (they list weights too)
                if depth < _MAX_WRAPPER_DEPTH:
                    visit(child, edge + "/", depth + 1)
            elif hasattr(child, "weights") and hasattr(child, "trainable_weights"):  # a layer
                known = found.get(id(child))
                # Functional models track each layer twice ("layer-3", "layer_with_weights-1"): the
                # checkpoint keys use the latter, and a subclassed model's first attribute otherwise.
                if known is None or (POSITIONAL_EDGE.fullmatch(name) and not POSITIONAL_EDGE.fullmatch(known)):
                    found[id(child)] = edge

    visit(model, "", 0)
    return found


def _model_node(
    layer: Any,
    source: list[TensorInfo],
    position: int,
    path: str,
    tracked: dict[int, str] | None = None,
    schema: str = "keras2",
    derived: Any = None,
) -> tuple[LayerNode, int]:
    from .layouts import Context, Derived, refine

    derived = derived if derived is not None else Derived()
    class_name = type(layer).__name__
    tracked_as = (tracked or {}).get(id(layer))
    sub_layers = [l for l in getattr(layer, "layers", []) if l.weights] if class_name in CONTAINER_CLASSES else []
    if sub_layers:
        inner = _tracked_names(layer) if schema == "keras2" else {}
        children = []
        for sub in sub_layers:
            child, position = _model_node(sub, source, position, path, inner, schema, derived)
            children.append(child)
        node = LayerNode(name=layer.name, class_name=class_name, children=tuple(children), tracked_as=tracked_as)
        return node, position
    refs = []
    ctx = Context(config=_live_layer_config(layer), target="live", derived=derived)
    relaid = _relaid_rnn(layer, source[position:position + 3], ctx)
    if relaid is not None:
        refs, position = relaid, position + 3
    for variable in layer.weights[len(refs):]:
        if position >= len(source):
            raise MappingError(
                f"{path}: the model given with --model has more weights than the artifact (ran out at layer "
                f"'{layer.name}'); expected the same architecture; check the --model factory"
            )
        tensor = source[position]
        expected = tuple(int(d) for d in variable.shape)
        if tuple(tensor.shape) != expected:
            raise MappingError(
                f"{path}: tensor '{tensor.key}' has shape {list(tensor.shape)} but layer '{layer.name}' of "
                f"the --model expects {list(expected)} for '{_variable_name(variable)}'; expected the same "
                "architecture; check the --model factory"
            )
        refs.append(WeightRef(_variable_name(variable), tensor.dtype, tensor.shape, tensor.key))
        position += 1
    if class_name in RNN_CLASSES and getattr(layer, "cell", None) is not None:
        cell = LayerNode(name=layer.cell.name, class_name=type(layer.cell).__name__, weights=tuple(refs))
        return LayerNode(name=layer.name, class_name=class_name, children=(cell,), tracked_as=tracked_as), position
    node = LayerNode(name=layer.name, class_name=class_name, weights=tuple(refs), tracked_as=tracked_as)
    # Wrapped and composite layers (TimeDistributed, MultiHeadAttention): where their loaders track them.
    return refine(node, ctx), position


def _live_layer_config(layer: Any) -> dict[str, Any] | None:
    try:
        return {"class_name": type(layer).__name__, "config": layer.get_config()}
    except Exception:  # noqa: BLE001 - a custom layer without get_config: its class still travels
        return {"class_name": type(layer).__name__, "config": {}}


def _relaid_rnn(layer: Any, tensors: list[TensorInfo], ctx: Any) -> list[WeightRef] | None:
    """The source's three RNN tensors re-laid for the model's layer, when one side is CuDNN
    (CuDNNLSTM weights for an LSTM of the --model, or the other way round); None when the layouts match."""
    from .layouts import cudnn
    from .naming import weight_ref

    class_name = type(layer).__name__
    family = {"LSTM": "LSTM", "CuDNNLSTM": "LSTM", "GRU": "GRU", "CuDNNGRU": "GRU"}.get(class_name)
    if family is None or len(tensors) != 3 or len(layer.weights) != 3:
        return None
    found = cudnn.layout_of([tuple(t.shape) for t in tensors])
    if found is None or found[0] != family:
        return None
    if class_name.startswith("CuDNN"):
        wanted = "cudnn"
    elif family == "LSTM":
        wanted = "standard"
    else:
        wanted = "gru-reset-after" if getattr(layer, "reset_after", False) else "gru-reset-before"
    if found[1] == wanted or "cudnn" not in (found[1], wanted):
        return None
    if "gru-reset-before" in (found[1], wanted):
        raise MappingError(
            f"layer '{layer.name}' of the --model is {class_name}{'(reset_after=False)' if wanted != 'cudnn' else ''} "
            f"but the artifact's weights for it are {'CuDNNGRU' if found[1] == 'cudnn' else 'GRU(reset_after=False)'}; "
            "tf_keras converts CuDNNGRU weights only to and from GRU(reset_after=True); build the GRU with "
            "reset_after=True"
        )
    names = [_variable_name(v) for v in layer.weights]
    refs = [weight_ref(t) for t in tensors]
    base = names[0].rsplit("/", 1)[0]
    return cudnn.convert_refs(refs, family, from_cudnn=found[1] == "cudnn", base=base, ctx=ctx)


def _live_config(model: Any, schema: str) -> dict[str, Any] | None:
    try:
        if schema == "keras3":
            import keras

            return {"schema": "keras3", "config": keras.saving.serialize_keras_object(model)}
        return {"schema": "keras2", "config": json.loads(model.to_json())}
    except Exception:  # a model without a serialisable config still converts weights
        return None
