"""The name-mapping layer: from a source manifest to a `ModelLayout` any writer accepts.

Readers already tell, per tensor, its canonical Keras 2 variable name
("dense_1/kernel"), the top-level layer that owns it and its position among
that layer's weights.  This module groups that flat list into one node per
top-level layer (nested models, RNN cells) and attaches the model config; the
rules of each layout family (Keras 1, CuDNN, wrappers, composite layers, TF
checkpoint paths) live in `converters.layouts`, one module each, and the
`--model` path in `converters.live`.  When the artifact alone cannot decide, a training
model given with `--model module:function` be the authority.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from inspector.errors import MappingError
from inspector.manifest import Manifest, TensorInfo
from inspector.naturalsort import natural_key

from .layout import CONTAINER_CLASSES, RNN_CLASSES, LayerNode, ModelLayout, WeightRef
from .layouts.checkpoint import tracked_paths, with_tracked_names
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
        layers = with_tracked_names(layers, [tensors for _, tensors in grouped])
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
    tracked = tracked_paths(manifest)
    out = []
    for node in layers:
        ctx = Context(config=configs.get(node.name), keras_version=str(version) if version else None,
                      target=target, derived=derived, tracked_paths=tracked)
        out.append(refine(node, ctx))
    return tuple(out), (derived.reader(read) if derived else read)


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
    return sorted(
        manifest.by_role("optimizer"),
        key=lambda t: (t.index is None, t.index if t.index is not None else 0, natural_key(t.key)),
    )


# -- the training model as the authority -----------------------------------


def load_model_factory(spec: str) -> Callable[..., Any]:
    """Resolve "package.module:function" to the callable (the user's own code, imported on purpose).

    The module is looked up in the current directory too, as `ckconvert validate` does (its worker
    gets the current directory on PYTHONPATH): `--model mypkg.models:build` run beside `mypkg/` works
    without setting PYTHONPATH.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise MappingError(
            f"--model '{spec}' is not of the form module:function; expected e.g. --model yourpkg.models:build "
            "(a function in yourpkg/models.py that builds the training model)"
        )
    try:
        with _current_directory_importable():
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


@contextlib.contextmanager
def _current_directory_importable() -> Iterator[None]:
    """The current directory on sys.path while the user's module is imported (a console script's
    sys.path[0] is its bin directory, not the directory it was run from)."""
    cwd = os.getcwd()
    present = any(os.path.abspath(entry or os.curdir) == cwd for entry in sys.path)
    if not present:
        sys.path.insert(0, cwd)  # first, as in validate's worker (`python -m` puts the current directory first)
    try:
        yield
    finally:
        if not present:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


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
    with _current_directory_importable():  # the factory may import its own package's modules when called
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


# The --model path (a live model as the authority) lives with the other live-model pairing.
from .live import layout_from_model  # noqa: E402,F401  re-exported for callers of naming
