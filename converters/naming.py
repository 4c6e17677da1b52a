"""The name-mapping layer: from a source manifest to a `ModelLayout` any writer accepts.

Readers already tell, per tensor, its canonical Keras 2 variable name
("dense_1/kernel"), the top-level layer that owns it and its position among
that layer's weights.  This module turns that flat list into the layer tree
writers need (nested models, RNN cells), attaches the model config where the
source has one, and - when the artifact alone cannot decide - lets a training
model given with `--model module:function` be the authority.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any, Callable, Iterable

import numpy as np

from inspector.errors import MappingError
from inspector.manifest import Manifest, TensorInfo

from .layout import CONTAINER_CLASSES, RNN_CLASSES, LayerNode, ModelLayout, WeightRef

def weight_ref(tensor: TensorInfo) -> WeightRef:
    return WeightRef(name=tensor.name, dtype=tensor.dtype, shape=tensor.shape, source_key=tensor.key)


# -- model configs ---------------------------------------------------------


def model_config_of(manifest: Manifest) -> dict[str, Any] | None:
    """The model config an artifact carries, tagged with its schema ("keras2" or "keras3")."""
    metadata = manifest.metadata
    producer = manifest.producer
    for key in ("model_config", "keras_config", "config"):
        config = metadata.get(key)
        if isinstance(config, str):
            try:
                config = json.loads(config)
            except ValueError:
                continue
        if isinstance(config, dict) and config.get("class_name"):
            return {"schema": _config_schema(config, producer), "config": config}
    return None


def _config_schema(config: dict[str, Any], producer: dict[str, Any]) -> str:
    # Keras 3 serialises objects with a "module" entry; tf_keras configs have none.
    if "module" in config or str(producer.get("framework", "")).startswith("keras3"):
        return "keras3"
    return "keras2"


def config_layers(config: dict[str, Any] | None) -> dict[str, str]:
    """Layer name -> class name for the top level of a model config (both schemas)."""
    if not config:
        return {}
    inner = config.get("config", {})
    layers = inner.get("layers", []) if isinstance(inner, dict) else []
    out: dict[str, str] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        name = (layer.get("config") or {}).get("name") or layer.get("name")
        if name:
            out[name] = layer.get("class_name", "")
    return out


def class_from_layer_name(layer_name: str) -> str | None:
    """Guess a Keras class from a default layer name ("batch_normalization_3" -> BatchNormalization)."""
    from inspector.keras_names import class_for_group

    return class_for_group(layer_name)


# -- manifest -> layout ----------------------------------------------------


def _node_for(layer_name: str, class_name: str | None, tensors: list[TensorInfo]) -> LayerNode:
    """Build one top-level LayerNode from its weights in order.

    Canonical names tell the structure when the class does not: a plain
    layer's weights are "<layer>/<var>", an RNN layer's "<layer>/<cell>/<var>",
    a nested model's "<inner layer>/<var>" (grouped by inner layer, in order).
    """
    refs = [weight_ref(t) for t in tensors]
    prefixes = [r.name.split("/", 1)[0] for r in refs]
    nested_guess = class_name is None and len(set(prefixes)) > 1
    if class_name in CONTAINER_CLASSES or nested_guess:
        children = tuple(
            _node_for(prefix, class_from_layer_name(prefix), [_as_tensor(r) for r in group])
            for prefix, group in _group_in_order(refs, lambda r: r.name.split("/", 1)[0])
        )
        # Nothing in a weights-only file tells a nested Sequential from a nested Functional model;
        # Sequential (the usual head or block) is the guess, and --model settles it.
        return LayerNode(name=layer_name, class_name=class_name or "Sequential", children=children)
    deep = all(r.name.count("/") >= 2 for r in refs)
    if deep and (class_name in RNN_CLASSES or class_name is None):
        from inspector.keras_names import cell_class

        cell_name = refs[0].name.split("/")[1]
        return LayerNode(
            name=layer_name,
            class_name=class_name,
            children=(LayerNode(name=cell_name, class_name=cell_class(class_name), weights=tuple(refs)),),
        )
    return LayerNode(name=layer_name, class_name=class_name, weights=tuple(refs))


def _as_tensor(ref: WeightRef) -> TensorInfo:
    return TensorInfo(key=ref.source_key, name=ref.name, dtype=ref.dtype, shape=ref.shape, nbytes=0)


def _group_in_order(items: Iterable[WeightRef], key: Callable[[WeightRef], str]):
    groups: dict[str, list[WeightRef]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.items())


def layout_from_manifest(manifest: Manifest, read: Callable[[str], np.ndarray]) -> ModelLayout:
    """The layout an artifact describes on its own (no training model given)."""
    grouped = [(name, tensors) for name, tensors in manifest.layer_weights() if tensors]
    unowned = [t for t in manifest.tensors if t.role == "weight" and t.layer is None]
    if unowned:
        raise MappingError(
            f"{manifest.path}: {len(unowned)} model weight(s) (e.g. '{unowned[0].key}') belong to no layer "
            f"that ckit can place; expected a Keras model artifact; pass --model module:function to "
            "name the training model"
        )
    if not grouped:
        raise MappingError(
            f"{manifest.path}: found no model weights in this {manifest.format} artifact; expected at "
            "least one layer with weights; check that it is a Keras model artifact"
        )
    config = model_config_of(manifest)
    classes = config_layers(config["config"] if config else None)
    layers = tuple(
        _node_for(name, classes.get(name) or class_from_layer_name(name), tensors) for name, tensors in grouped
    )
    notes = []
    if manifest.metadata.get("layer_order") == "guessed":
        notes.append(
            "layer order was guessed from names (the file does not record it); pass --model to be certain"
        )
    return _layout(manifest, read, layers, config, tuple(notes))


def _layout(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    layers: tuple[LayerNode, ...],
    config: dict[str, Any] | None,
    notes: tuple[str, ...] = (),
) -> ModelLayout:
    return ModelLayout(
        layers=layers,
        read=read,
        optimizer=tuple(weight_ref(t) for t in optimizer_in_order(manifest)),
        model_config=config,
        training_config=_training_config(manifest),
        source_format=manifest.format,
        source_producer=dict(manifest.producer),
        dropped=notes,
    )


def optimizer_in_order(manifest: Manifest) -> list[TensorInfo]:
    """Optimizer tensors in the optimizer's own order.

    A reader's `index` gives it where the file lists it (HDF5 `weight_names`); otherwise keys like
    `optimizer/_variables/10` are ordered by their numbers, not as text (which puts 10 before 2).
    """
    def natural(key: str) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]

    return sorted(
        manifest.by_role("optimizer"),
        key=lambda t: (t.index is None, t.index if t.index is not None else 0, natural(t.key)),
    )


def _training_config(manifest: Manifest) -> dict[str, Any] | None:
    value = manifest.metadata.get("training_config")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


# -- the training model as the authority -----------------------------------


def load_model_factory(spec: str) -> Callable[..., Any]:
    """Resolve "package.module:function" to the callable (the user's own code, imported on purpose)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise MappingError(
            f"--model '{spec}' is not of the form module:function; expected e.g. converters.zoo:seed_model"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MappingError(
            f"--model '{spec}': cannot import module '{module_name}' ({exc}); expected an importable "
            "module: run from the directory that holds it or add it to PYTHONPATH"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise MappingError(
            f"--model '{spec}': module '{module_name}' has no function '{attribute}'; expected a function "
            "that builds the training model"
        )
    return factory


def build_model(spec: str, keras_module: Any) -> Any:
    """Call a model factory with the given Keras module (factories may also take no argument)."""
    factory = load_model_factory(spec)
    try:
        return factory(keras_module)
    except TypeError:
        return factory()


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
    source = [t for _, tensors in manifest.layer_weights() for t in tensors]
    if not source:
        source = [t for t in manifest.tensors if t.role == "weight"]
    nodes: list[LayerNode] = []
    position = 0
    for layer in _weighted_layers(model):
        node, position = _model_node(layer, source, position, manifest.path)
        nodes.append(node)
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


def _model_node(layer: Any, source: list[TensorInfo], position: int, path: str) -> tuple[LayerNode, int]:
    class_name = type(layer).__name__
    sub_layers = [l for l in getattr(layer, "layers", []) if l.weights] if class_name in CONTAINER_CLASSES else []
    if sub_layers:
        children = []
        for sub in sub_layers:
            child, position = _model_node(sub, source, position, path)
            children.append(child)
        return LayerNode(name=layer.name, class_name=class_name, children=tuple(children)), position
    refs = []
    for variable in layer.weights:
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
        return LayerNode(name=layer.name, class_name=class_name, children=(cell,)), position
    return LayerNode(name=layer.name, class_name=class_name, weights=tuple(refs)), position


def _live_config(model: Any, schema: str) -> dict[str, Any] | None:
    try:
        if schema == "keras3":
            import keras

            return {"schema": "keras3", "config": keras.saving.serialize_keras_object(model)}
        return {"schema": "keras2", "config": json.loads(model.to_json())}
    except Exception:  # a model without a serialisable config still converts weights
        return None
