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
from .model_config import config_layers, model_config_of, training_config_of


def weight_ref(tensor: TensorInfo) -> WeightRef:
    return WeightRef(name=tensor.name, dtype=tensor.dtype, shape=tensor.shape, source_key=tensor.key)


def class_from_layer_name(layer_name: str) -> str | None:
    """Guess a Keras class from a default layer name ("batch_normalization_3" -> BatchNormalization)."""
    from inspector.keras_names import class_for_group

    return class_for_group(layer_name)


# -- manifest -> layout ----------------------------------------------------


def _node_for(layer_name: str, class_name: str | None, refs: list[WeightRef]) -> LayerNode:
    """Build one top-level LayerNode from its weights in order.

    Canonical names tell the structure when the class does not: a plain
    layer's weights are "<layer>/<var>", an RNN layer's "<layer>/<cell>/<var>",
    a nested model's "<inner layer>/<var>" (grouped by inner layer, in order).
    """
    prefixes = [r.name.split("/", 1)[0] for r in refs]
    nested_guess = class_name is None and len(set(prefixes)) > 1
    if class_name in CONTAINER_CLASSES or nested_guess:
        children = tuple(
            _node_for(prefix, class_from_layer_name(prefix), group)
            for prefix, group in _group_in_order(refs, lambda r: r.name.split("/", 1)[0])
        )
        # Nothing in a weights-only file tells a nested Sequential from a nested Functional model;
        # Sequential (the usual head or block) is the guess, and --model settles it.
        return LayerNode(name=layer_name, class_name=class_name or "Sequential", children=children)
    deep = all(r.name.count("/") >= 2 for r in refs)
    if deep and (class_name in RNN_CLASSES or class_name is None):
        from inspector.keras_names import cell_class, rnn_class_from_shapes

        groups = _group_in_order(refs, lambda r: r.name.split("/")[1])
        if class_name in RNN_CLASSES or (len(groups) == 1 and rnn_class_from_shapes([r.shape for r in refs])):
            class_name = class_name or rnn_class_from_shapes([r.shape for r in refs])
            cell_name = refs[0].name.split("/")[1]
            return LayerNode(
                name=layer_name,
                class_name=class_name,
                children=(LayerNode(name=cell_name, class_name=cell_class(class_name), weights=tuple(refs)),),
            )
        # Sub-layers held by attribute (a wrapper's or an attention layer's): the layout rules place them.
        return LayerNode(
            name=layer_name,
            class_name=class_name,
            children=tuple(LayerNode(name=sub, weights=tuple(group)) for sub, group in groups),
        )
    return LayerNode(name=layer_name, class_name=class_name, weights=tuple(refs))


def _group_in_order(items: Iterable[WeightRef], key: Callable[[WeightRef], str]):
    groups: dict[str, list[WeightRef]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return list(groups.items())


def layout_from_manifest(
    manifest: Manifest, read: Callable[[str], np.ndarray], target: str | None = None
) -> ModelLayout:
    """The layout an artifact describes on its own (no training model given), with each layer
    refined by the layout rules (`converters.layouts`) for the `target` format when one is given."""
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
        _node_for(name, _class_of(name, tensors, classes), [weight_ref(t) for t in tensors])
        for name, tensors in grouped
    )
    if manifest.format in ("tf-checkpoint", "saved-model"):
        layers = _with_tracked_names(layers, [tensors for _, tensors in grouped])
    layers, read = _refined(manifest, layers, read, config, target)
    notes = []
    if manifest.metadata.get("layer_order") == "guessed":
        notes.append(
            "layer order was guessed (the file does not record it); pass --model to be certain"
        )
    return _layout(manifest, read, layers, config, tuple(notes))


def _refined(
    manifest: Manifest,
    layers: tuple[LayerNode, ...],
    read: Callable[[str], np.ndarray],
    config: dict[str, Any] | None,
    target: str | None,
) -> tuple[tuple[LayerNode, ...], Callable[[str], np.ndarray]]:
    """Each top-level layer through the layout rules; the reader extended to the values they derive."""
    from .layouts import Context, Derived, layer_configs, refine

    configs = layer_configs(config["config"]) if config else {}
    derived = Derived()
    version = manifest.producer.get("keras_version")
    tracked = _tracked_paths(manifest)
    out = []
    for node in layers:
        ctx = Context(config=configs.get(node.name), keras_version=str(version) if version else None,
                      target=target, derived=derived, tracked_paths=tracked)
        out.append(refine(node, ctx))
    return tuple(out), (derived.reader(read) if derived else read)


def _tracked_paths(manifest: Manifest) -> dict[str, list[str]]:
    """Source key -> the object path below its top-level layer, for TF checkpoint keys
    (`layer_with_weights-0/layer/kernel/.ATTRIBUTES/...` -> `["layer", "kernel"]`)."""
    if manifest.format not in ("tf-checkpoint", "saved-model"):
        return {}
    out = {}
    for tensor in manifest.model_weights():
        if "/.ATTRIBUTES/" in tensor.key:
            path = [_unescape_local_name(p) for p in tensor.key.split("/.ATTRIBUTES/", 1)[0].split("/")]
            out[tensor.key] = path[1:]
    return out


_KERAS3_GROUP = re.compile(r"/?layers/([^/]+)/")


def _class_of(name: str, tensors: list[TensorInfo], classes: dict[str, str]) -> str | None:
    """A top-level layer's class: from the config, else the Keras 3 group its weights sit in, else
    its default name, else the default name its variables were created under (a subclassed
    model's checkpoint tracks `rnn/cell/kernel` for the variable `lstm/lstm_cell/kernel`)."""
    found = classes.get(name) or _class_from_group(tensors) or class_from_layer_name(name)
    if found:
        return found
    prefixes = {t.name.split("/", 1)[0] for t in tensors if "/" in t.name}
    if len(prefixes) == 1 and all("/" in t.name for t in tensors):
        return class_from_layer_name(prefixes.pop())
    return None


def _class_from_group(tensors: list[TensorInfo]) -> str | None:
    """The class a Keras 3 file's group path tells (`/layers/conv2d/vars/0` -> Conv2D), when all of a
    layer's tensors sit in one such group: Keras 3 names the group after the class, not the layer."""
    groups = set()
    for tensor in tensors:
        match = _KERAS3_GROUP.match(tensor.key)
        if match is None or "/vars/" not in tensor.key:
            return None
        groups.add(match.group(1))
    if len(groups) != 1:
        return None
    from inspector.keras_names import class_for_group

    return class_for_group(groups.pop())


def _unescape_local_name(name: str) -> str:
    """Undo trackable_utils.escape_local_name ("." -> "..", "/" -> ".S")."""
    return re.sub(r"\.(\.|S)", lambda m: "." if m.group(1) == "." else "/", name)


def _with_tracked_names(layers: tuple[LayerNode, ...], tensors: list[list[TensorInfo]]) -> tuple[LayerNode, ...]:
    """Keep the names a TF checkpoint tracks its top-level layers under (a subclassed model's
    attributes: `enc/kernel/.ATTRIBUTES/...`), so a checkpoint written from it matches the model.
    Position-based names (`layer_with_weights-N`) are what the writer derives anyway."""
    from dataclasses import replace

    edges = [_edge_at([(t.key, t.name) for t in layer_tensors], 0) for layer_tensors in tensors]
    named = [e for e in edges if e is not None]
    if len(set(named)) != len(named):  # one object holds several layers (tf.train.Checkpoint(model=...))
        return layers
    out = []
    for node, edge in zip(layers, edges):
        if edge and node.is_container and node.children:
            # Layers the file groups under one attribute: a list of layers (`blocks/0/kernel/...`).
            inner = [_edge_at([(w.source_key, w.name) for w in child.flat_weights()], 1) for child in node.children]
            if all(inner) and len(set(inner)) == len(inner):
                node = replace(node, children=tuple(replace(c, tracked_as=e) for c, e in zip(node.children, inner)))
        out.append(replace(node, tracked_as=edge) if edge else node)
    return tuple(out)


def _edge_at(keys: list[tuple[str, str]], depth: int) -> str | None:
    """The object name all these checkpoint keys (with their variables' names) share at `depth`,
    unless it is position-based.  Only keys that end in the variable's own attribute
    (`enc/kernel/.ATTRIBUTES/...` for `dense/kernel`) track layers by name; a SavedModel's
    `variables/12/...` lists variables, not layers."""
    if not keys or not all("/.ATTRIBUTES/" in key for key, _ in keys):
        return None
    paths = [key.split("/.ATTRIBUTES/", 1)[0].split("/") for key, _ in keys]
    if any(len(path) <= depth + 1 for path in paths):  # the name must be an object above the variable
        return None
    if any(_unescape_local_name(path[-1]) != name.rsplit("/", 1)[-1] for path, (_, name) in zip(paths, keys)):
        return None
    names = {path[depth] for path in paths}
    name = names.pop() if len(names) == 1 else None
    if name is None or _POSITIONAL_EDGE.fullmatch(name):
        return None
    return _unescape_local_name(name)


def _layout(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    layers: tuple[LayerNode, ...],
    config: dict[str, Any] | None,
    notes: tuple[str, ...] = (),
) -> ModelLayout:
    from .layouts.legacy_optimizer import unplaceable

    optimizer = tuple(weight_ref(t) for t in optimizer_in_order(manifest))
    legacy = unplaceable(optimizer, dict(manifest.producer))
    if legacy is not None:
        optimizer, notes = (), (*notes, legacy)
    return ModelLayout(
        layers=layers,
        read=read,
        optimizer=optimizer,
        model_config=config,
        training_config=training_config_of(manifest),
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


def call_factory(factory: Callable[..., Any], keras_module: Any) -> Any:
    """The one calling rule for model factories: the Keras module if it takes a positional parameter."""
    return factory(keras_module) if _wants_module(factory) else factory()


def _wants_module(factory: Callable[..., Any]) -> bool:
    """Whether a factory takes the Keras module: it has at least one positional parameter."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # a callable Python cannot describe (a builtin): give it the module
        return True
    kinds = inspect.Parameter
    positional = (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD, kinds.VAR_POSITIONAL)
    return any(p.kind in positional for p in parameters)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def build_model(spec: str, keras_module: Any) -> Any:
    """Call a model factory once, with the Keras module when it takes a positional parameter.

    Whatever the factory raises is the user's code failing, said as such; what it returns must be
    a model of the framework it was given (`tf_keras.Model` for Keras 2 targets, `keras.Model`).
    """
    factory = load_model_factory(spec)
    module_name = getattr(keras_module, "__name__", "keras")
    try:
        model = call_factory(factory, keras_module)
    except Exception as exc:  # noqa: BLE001 - a user's factory can raise anything
        raise MappingError(
            f"--model '{spec}': the factory raised {_one_line(exc)}; expected it to build and return a Keras "
            f"model (it is called as {getattr(factory, '__name__', 'factory')}({module_name}) when it takes a "
            "parameter, else with no argument); fix the factory and convert again"
        ) from exc
    expected = getattr(keras_module, "Model", None)
    if expected is None or not isinstance(model, expected):
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        raise MappingError(
            f"--model '{spec}': the factory returned a {kind}, not a {module_name}.Model; it was given the "
            f"{module_name} module ({_MODULE_FOR.get(module_name, 'the Keras module for this target')}); "
            f"expected it to build the model with that module and return it"
        )
    return model


_MODULE_FOR = {
    "tf_keras": "tf_keras for Keras 2 targets: h5-weights, h5-model, tf-checkpoint, saved-model",
    "keras": "Keras 3 for Keras 3 targets: keras3-weights, keras3-model",
}


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


_POSITIONAL_EDGE = re.compile(r"layer_with_weights-\d+")
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
                if known is None or (_POSITIONAL_EDGE.fullmatch(name) and not _POSITIONAL_EDGE.fullmatch(known)):
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
