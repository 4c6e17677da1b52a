"""One home for ckit's config safety checks: refuse Lambda layers and custom classes before anything runs.

Every writer that rebuilds or copies a model config (SavedModel, Keras 2 full-model `.h5`, Keras 3
archives and legacy `.h5`) calls these first, so code in a config is never executed nor carried
into a file that ckit then calls verified.

- `check_config_is_safe(config, tf_keras)`: a Keras 2 (tf_keras) config, against tf_keras's own layers.
- `check_config_safe(config)`: a Keras 2 or 3 config, against the classes Keras 3 resolves itself.
- `check_keras2_config(config)`: the first when tf_keras is installed, else the second.
"""

from __future__ import annotations

from typing import Any, Iterator

from inspector.errors import UnsafeArtifact, require

_PASS_MODEL = "pass --model module:function (e.g. --model yourpkg.models:build, a function that builds your training model) to name the architecture"

# Modules a Keras 2 or 3 config names for Keras's own classes.
_KERAS_MODULE_PREFIXES = ("keras", "tf_keras")

# Layer classes tf_keras rebuilds from a config that `tf_keras.layers` does not export by name.
_BUILTIN_EXTRA = frozenset({"Sequential", "Functional", "Model", "InputLayer", "TFOpLambda", "SlicingOpLambda"})
_CODE_CLASSES = frozenset({"Lambda"})


def _objects(obj: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every serialised object ({"class_name": ...}) in a config, with where it sits."""
    if isinstance(obj, dict):
        if "class_name" in obj:
            yield path, obj
        for key, value in obj.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _objects(value, f"{path}[{i}]")


def check_config_is_safe(config: dict[str, Any], tf_keras: Any) -> None:
    """Refuse configs that would run code on deserialisation or need classes tf_keras lacks."""
    builtin = {n for n in dir(tf_keras.layers) if not n.startswith("_")} | _BUILTIN_EXTRA
    for path, obj in _objects(config):
        class_name = str(obj.get("class_name"))
        where = f"'{(obj.get('config') or {}).get('name') or path or 'model'}'"
        if class_name in _CODE_CLASSES:
            raise UnsafeArtifact(
                f"layer {where} is a {class_name} layer, whose config carries Python code that rebuilding "
                "would execute; ckit refuses to run it: pass --model with code you trust to build the model"
            )
        registered = obj.get("registered_name")
        module = obj.get("module")
        custom = ">" in class_name or (registered and registered != class_name) or (
            module and not str(module).startswith(("keras", "tf_keras"))
        )
        # Entries under a "layers" list (and RNN cells, wrapped layers) must be tf_keras's own layers.
        is_layer = path.endswith("]") and "/layers[" in path or path.endswith(("/cell", "/layer", "/backward_layer"))
        if custom or (is_layer and class_name not in builtin):
            raise UnsafeArtifact(
                f"object {where} has class '{registered or class_name}', which is not a built-in tf_keras class; "
                "ckit does not import custom code: pass --model with the code that defines it"
            )


def check_config_safe(config: dict[str, Any]) -> None:
    """Refuse Lambda layers and classes Keras would have to import from outside Keras."""
    _check_activation_functions(config)
    known = _known_class_names()
    for obj, layer_name in _serialized_objects(config, None):
        class_name = obj["class_name"]
        where = f"layer {layer_name!r}" if layer_name else "the model config"
        if class_name in ("Lambda", "__lambda__"):
            raise UnsafeArtifact(
                f"{where} is a Lambda layer, whose config holds Python bytecode that ckit will not run; "
                f"rebuild the model in code and {_PASS_MODEL}"
            )
        if is_custom(obj, known):
            registered = obj.get("registered_name")
            raise UnsafeArtifact(
                f"{where} uses class {registered or class_name!r}, which is not a built-in Keras class; "
                f"ckit does not import custom code from a config; {_PASS_MODEL}"
            )


_WEIGHTS_ONLY = "convert to keras3-weights, tf-checkpoint or safetensors instead (weights only, loaded into the model your code builds)"


def _check_activation_functions(config: dict[str, Any]) -> None:
    """Refuse an activation argument that names a function Keras 3 does not define itself.

    Keras serialises an activation as its name ("relu") or, for a function it does not own, as
    {"module": "builtins", "class_name": "function", "config": "<registered name>", ...} (Keras 3,
    tf_keras >= 2.13); older tf.keras writes a custom function's name as a plain string. Either way
    the class is "function", so the generic class check would blame a class named 'function':
    name the layer, the argument and the function instead.
    """
    builtin = _activation_names()
    for layer_name, argument, value in activation_arguments(config):
        name = _function_name(value)
        if name is None or name in builtin and not _foreign_module(value):
            continue
        where = f"layer {layer_name!r}" if layer_name else "the model config"
        raise UnsafeArtifact(
            f"{where} argument {argument!r} is the function {name!r}, not a built-in Keras activation "
            f"(expected a name such as 'sigmoid' or 'tanh'); Keras 3 can rebuild it only with the code that "
            f"registers it imported, which ckit never does; {_WEIGHTS_ONLY}, or pass --model with a "
            "model whose activations are built-in"
        )


def activation_arguments(config: Any) -> Iterator[tuple[str | None, str, Any]]:
    """(layer name, argument, value) for every activation argument (`activation`,
    `recurrent_activation`, ...) of every layer in a config, wrapped and nested layers included."""
    for obj, layer_name in _serialized_objects(config, None):
        inner = obj.get("config")
        if not isinstance(inner, dict) or not _looks_like_layer(obj):
            continue
        for key, value in inner.items():
            if isinstance(key, str) and key.endswith("activation") and value is not None:
                yield layer_name, key, value


def _function_name(value: Any) -> str | None:
    """The function an activation argument records: a name string or a serialised function's name."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("class_name") == "function":
        return str(value.get("config"))
    return None  # an activation layer object ({"class_name": "ReLU", ...}): the class check judges it


def _foreign_module(value: Any) -> bool:
    module = value.get("module") if isinstance(value, dict) else None
    return isinstance(module, str) and not module.startswith(_KERAS_MODULE_PREFIXES)


_ACTIVATIONS: frozenset[str] | None = None


def _activation_names() -> frozenset[str]:
    """Activation names Keras 3 resolves itself."""
    global _ACTIVATIONS
    if _ACTIVATIONS is None:
        keras = require("keras", "tf", "Writing Keras 3 files")
        _ACTIVATIONS = frozenset(
            n for n in dir(keras.activations) if not n.startswith("_") and n not in ("get", "serialize", "deserialize")
        )
    return _ACTIVATIONS


def is_custom(obj: dict[str, Any], known: frozenset[str] | None = None) -> bool:
    """Whether a serialized object's class is one Keras 3 would have to import from outside Keras."""
    class_name = obj.get("class_name")
    module = obj.get("module")
    registered = obj.get("registered_name")
    return (
        (isinstance(module, str) and not module.startswith(_KERAS_MODULE_PREFIXES))
        or (isinstance(registered, str) and registered != class_name)
        or class_name not in (known if known is not None else _known_class_names())
    )


def _serialized_objects(node: Any, layer_name: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every serialized Keras object in a config, with the name of the layer that holds it."""
    if isinstance(node, dict):
        if isinstance(node.get("class_name"), str) and "config" in node:
            inner = node["config"]
            if isinstance(inner, dict) and isinstance(inner.get("name"), str) and _looks_like_layer(node):
                layer_name = inner["name"]
            yield node, layer_name
            yield from _serialized_objects(inner, layer_name)
            return
        for value in node.values():
            yield from _serialized_objects(value, layer_name)
    elif isinstance(node, list):
        for value in node:
            yield from _serialized_objects(value, layer_name)


# Serialized objects that carry a "name" in their config but are not layers.
_NON_LAYER_MODULES = tuple(
    f"{root}.{kind}"
    for root in ("keras", "keras.src", "tf_keras")
    for kind in ("initializers", "regularizers", "constraints", "optimizers", "losses", "metrics", "dtype_policies")
)


def _looks_like_layer(node: dict[str, Any]) -> bool:
    module = node.get("module")
    if isinstance(module, str) and module.startswith(_NON_LAYER_MODULES):
        return False
    return not node["class_name"].endswith("Policy")


_KNOWN: frozenset[str] | None = None


def _known_class_names() -> frozenset[str]:
    """Class names Keras 3 resolves itself (layers, models, initializers, ...)."""
    global _KNOWN
    if _KNOWN is None:
        keras = require("keras", "tf", "Writing Keras 3 files")
        names: set[str] = {"Functional", "Model", "Sequential", "DTypePolicy", "FloatDTypePolicy", "Policy"}
        for namespace in (
            keras.layers,
            keras.initializers,
            keras.regularizers,
            keras.constraints,
            keras.activations,
            keras.dtype_policies,
            keras.optimizers,
            keras.losses,
            keras.metrics,
        ):
            names.update(n for n in dir(namespace) if not n.startswith("_"))
        _KNOWN = frozenset(names)
    return _KNOWN


def check_keras2_config(config: dict[str, Any]) -> None:
    """Check a Keras 2 config with tf_keras's class list when tf_keras is installed, else Keras 3's."""
    try:
        import tf_keras
    except ImportError:
        check_config_safe(config)
        return
    check_config_is_safe(config, tf_keras)
