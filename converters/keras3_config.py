"""Keras 3 model configs for Keras 3 writers: taken as is, or translated from a Keras 2 (tf_keras) config.

Translation lets Keras 3 itself rebuild the model from the legacy config (the
path `keras.models.load_model` takes for a legacy `.h5`), then serializes the
rebuilt model.  The rebuilt model is returned as well: it is the authority for
the weight paths Keras 3 will look up (`layers/<snake_case class>/vars/<i>`).
Before anything is deserialized the config is checked, so a Lambda layer or a
custom class is refused by name instead of being executed or guessed at.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from inspector.errors import MappingError, UnsupportedFeature, first_line, require

from .config_safety import check_config_safe  # noqa: F401 - one home for the check, re-exported
from .layout import ModelLayout

_PASS_MODEL = "pass --model module:function (e.g. --model yourpkg.models:build, a function that builds your training model) to name the architecture"


@dataclass(frozen=True)
class Keras3Config:
    """A Keras 3 serialized model and the Keras 3 model it describes."""

    config: dict[str, Any]  # {"module", "class_name", "config", "registered_name", "build_config", ...}
    model: Any  # keras.Model rebuilt from `config` (uncompiled)


def keras3_model_config(layout: ModelLayout) -> Keras3Config:
    """Return the Keras 3 config of the layout's model, translating a Keras 2 config when needed."""
    model_config = layout.model_config
    if not model_config or not model_config.get("config"):
        raise MappingError(
            f"the {layout.source_format or 'source'} artifact carries no model config, and a Keras 3 "
            f"model archive needs one; {_PASS_MODEL}"
        )
    schema = model_config.get("schema")
    from .model_config import keras1_refusal

    refusal = keras1_refusal(model_config, "Keras 3 model")
    if refusal:
        raise UnsupportedFeature(refusal)
    config = _decode_json_markers(model_config["config"])
    if schema not in ("keras2", "keras3"):
        raise MappingError(
            f"model config schema {schema!r} is unknown; expected 'keras2' or 'keras3'; {_PASS_MODEL}"
        )
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise MappingError(
            f"the {schema} model config is not a serialized Keras model (no 'class_name'/'config' keys); "
            f"{_PASS_MODEL}"
        )
    check_config_safe(config)
    keras = require("keras", "tf", "Writing Keras 3 files")
    from keras.src.saving import serialization_lib

    from keras.src.legacy.saving import saving_options, saving_utils

    if schema == "keras3" and "module" in config:
        try:
            model = keras.saving.deserialize_keras_object(copy.deepcopy(config), safe_mode=True)
        except (TypeError, ValueError, KeyError) as exc:
            raise MappingError(
                f"Keras 3 could not rebuild the model from its keras3 config ({type(exc).__name__}: "
                f"{first_line(exc)}); {_PASS_MODEL}"
            ) from exc
        return Keras3Config(config=copy.deepcopy(config), model=model)
    # Keras 2 configs, and Keras 3 configs in the legacy form (no "module" keys) that
    # Keras 3 writes into `.h5` model files, go through Keras 3's legacy loader.

    legacy = copy.deepcopy(config)
    _fix_legacy_layers(legacy)
    try:
        with saving_options.keras_option_scope(use_legacy_config=True), serialization_lib.SafeModeScope(True):
            model = saving_utils.model_from_config(legacy)
    except (TypeError, ValueError, KeyError) as exc:
        raise MappingError(
            f"Keras 3 could not rebuild the model from its {schema} config ({type(exc).__name__}: "
            f"{first_line(exc)}); {_PASS_MODEL}"
        ) from exc
    with serialization_lib.ObjectSharingScope():
        serialized = serialization_lib.serialize_keras_object(model)
    return Keras3Config(config=serialized, model=model)


_KERAS2_HARD_SIGMOID = "clip(0.2*x + 0.5, 0, 1)"
_KERAS3_HARD_SIGMOID = "clip(x/6 + 0.5, 0, 1)"


def refuse_keras2_only_activations(layout: ModelLayout) -> None:
    """Refuse a Keras 2 config whose activation Keras 3 defines differently under the same name.

    Keras 2 (and tf_keras) `hard_sigmoid` is clip(0.2*x + 0.5, 0, 1); Keras 3's is clip(x/6 + 0.5, 0, 1)
    (relu6-based), and Keras 3 has no built-in equal to the old one. Keras 3 rebuilds a Keras 2 config
    naming 'hard_sigmoid' without complaint, so a `.keras` written from it would load and predict
    something else (LSTM/GRU gates defaulted to it up to Keras 2.2). Every other activation both define
    computes the same values. Only model files need this: a weights file carries no activations.
    """
    model_config = layout.model_config or {}
    if model_config.get("schema") != "keras2":
        return
    found = _hard_sigmoid_argument(_decode_json_markers(model_config.get("config")))
    if found:
        raise UnsupportedFeature(
            f"{found} is Keras 2's 'hard_sigmoid', {_KERAS2_HARD_SIGMOID}; Keras 3's 'hard_sigmoid' is "
            f"{_KERAS3_HARD_SIGMOID} and Keras 3 has no built-in equal to the old one, so a .keras model would "
            "predict other values; convert to h5-model or saved-model (tf_keras keeps it), or to keras3-weights, "
            "tf-checkpoint or safetensors (weights only)"
        )


def refuse_keras3_only_activations(config: dict[str, Any]) -> None:
    """The other way: a Keras 3 config's 'hard_sigmoid' would become tf_keras's other function."""
    found = _hard_sigmoid_argument(config)
    if found:
        raise UnsupportedFeature(
            f"{found} is Keras 3's 'hard_sigmoid', {_KERAS3_HARD_SIGMOID}; tf_keras's 'hard_sigmoid' is "
            f"{_KERAS2_HARD_SIGMOID} and tf_keras has no built-in equal to Keras 3's, so a tf_keras model would "
            "predict other values; convert to keras3-model or saved-model (Keras 3 keeps it), or to h5-weights, "
            "tf-checkpoint or safetensors (weights only)"
        )


def _hard_sigmoid_argument(config: Any) -> str | None:
    """"layer 'x' argument 'y'" for the first activation argument naming Keras's own 'hard_sigmoid'."""
    from .config_safety import activation_arguments

    for layer_name, argument, value in activation_arguments(config):
        name = value if isinstance(value, str) else value.get("config") if isinstance(value, dict) else None
        module = value.get("module") if isinstance(value, dict) else None
        if name == "hard_sigmoid" and (module is None or str(module).startswith(("keras", "tf_keras"))):
            where = f"layer {layer_name!r}" if layer_name else "the model config"
            return f"{where} argument {argument!r}"
    return None


def _decode_json_markers(node: Any) -> Any:
    """Undo tf_keras's JSON encoder markers (`{"class_name": "__tuple__", "items": [...]}`) as Keras does.

    Configs read raw from a `.h5` `model_config` attribute carry them; the
    Keras 3 deserializer expects plain lists.  Returns a new structure.
    """
    if isinstance(node, list):
        return [_decode_json_markers(item) for item in node]
    if isinstance(node, dict):
        if node.get("class_name") == "__tuple__" and isinstance(node.get("items"), list):
            return [_decode_json_markers(item) for item in node["items"]]
        return {key: _decode_json_markers(value) for key, value in node.items()}
    return node


def _fix_legacy_layers(node: Any) -> None:
    """Apply Keras 3's legacy fix-ups to every layer, not just the top one.

    `saving_utils.model_from_config` rewrites `batch_input_shape` and a one-item
    `axis` list only on the config it is handed; layers inside a Sequential or
    Functional config that carry a "module" key (every tf_keras >= 2.13 config)
    go through the Keras 3 deserializer untouched and fail
    (`Embedding(batch_input_shape=...)`, `BatchNormalization(axis=[3])`).
    """
    if isinstance(node, list):
        for item in node:
            _fix_legacy_layers(item)
        return
    if not isinstance(node, dict):
        return
    inner = node.get("config")
    if isinstance(node.get("class_name"), str) and isinstance(inner, dict):
        layers = inner.get("layers")
        if node["class_name"] == "Sequential" and isinstance(layers, list) and layers:
            _sequential_input(inner, layers)
        if node["class_name"] == "InputLayer":
            if "batch_input_shape" in inner:
                inner["batch_shape"] = inner.pop("batch_input_shape")
        elif isinstance(inner.get("batch_input_shape"), list) and "layers" not in inner:
            # The model's InputLayer (added by _sequential_input when missing) carries the shape.
            inner.pop("batch_input_shape")
        axis = inner.get("axis")
        if isinstance(axis, list) and len(axis) == 1 and isinstance(axis[0], int):
            inner["axis"] = axis[0]
        if "time_major" in inner:
            if inner["time_major"]:
                raise UnsupportedFeature(
                    f"layer {inner.get('name')!r} is time-major (time_major=True), which Keras 3 RNN layers do "
                    f"not support; {_PASS_MODEL}"
                )
            del inner["time_major"]  # tf_keras-only switch, always False by default
        if isinstance(layers, list) and ("output_layers" in inner or "input_layers" in inner):
            _fix_nested_model_nodes(inner, layers)
    for value in node.values():
        _fix_legacy_layers(value)


def _fix_nested_model_nodes(inner: dict[str, Any], layers: list[Any]) -> None:
    """Renumber references to nested models' nodes the way Keras 3 counts them.

    tf_keras gives a nested model built on its own `Input` an internal node 0
    and refers to its first call in the outer model as node 1 (e.g.
    `output_layers: [["head", 1, 0]]`) while listing only that one call in
    `inbound_nodes`; Keras 3 has no internal node, so the call is node 0.
    """
    calls = {}
    for layer in layers:
        if isinstance(layer, dict) and layer.get("class_name") in ("Sequential", "Functional", "Model"):
            nodes = layer.get("inbound_nodes")
            name = layer.get("name") or (layer.get("config") or {}).get("name")
            if isinstance(nodes, list) and name:
                calls[name] = len(nodes)

    def fix(ref: Any) -> None:
        if (
            isinstance(ref, list)
            and len(ref) >= 3
            and ref[0] in calls
            and isinstance(ref[1], int)
            and 0 < ref[1]
            and ref[1] >= calls[ref[0]]
        ):
            ref[1] -= 1

    for key in ("input_layers", "output_layers"):
        refs = inner.get(key)
        if isinstance(refs, list):
            if refs and isinstance(refs[0], str):
                fix(refs)
            for ref in refs:
                fix(ref)
    for layer in layers:
        for node in (layer.get("inbound_nodes") or []) if isinstance(layer, dict) else []:
            if isinstance(node, list):
                for ref in node:
                    fix(ref)


def _sequential_input(inner: dict[str, Any], layers: list[Any]) -> None:
    """Give a Keras 2 Sequential that was built from `input_shape=` an explicit InputLayer."""
    first = layers[0]
    if not isinstance(first, dict) or first.get("class_name") == "InputLayer":
        return
    shape = (first.get("config") or {}).get("batch_input_shape") or inner.get("build_input_shape")
    if not isinstance(shape, list):
        return
    dtype = (first.get("config") or {}).get("dtype")
    layer_config = {"batch_shape": shape, "name": f"{inner.get('name', 'sequential')}_input"}
    if isinstance(dtype, str):
        layer_config["dtype"] = dtype
    layers.insert(0, {"class_name": "InputLayer", "config": layer_config})



# --- tf_keras training configs -> Keras 3 compile configs ---------------------------------------------

# tf_keras optimizer switches with no bearing on the update rule, which Keras 3 optimizers do not take.
_TF_KERAS_RUNTIME_ARGS = frozenset({"is_legacy_optimizer", "jit_compile", "mesh"})


def keras3_compile_config(training_config: dict[str, Any] | None, model: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A tf_keras training config as the Keras 3 compile config `model` compiles from, or None and why not.

    The result is tried on `model` itself (`compile_from_config`, what `keras.models.load_model` runs),
    so what is written is known to compile.
    """
    if not isinstance(training_config, dict):
        return None, None
    import keras

    try:
        compile_config = {
            "optimizer": _k3_optimizer(training_config.get("optimizer_config"), keras),
            "loss": _k3_objects(training_config.get("loss"), "losses", keras),
            "metrics": _k3_metrics(training_config.get("metrics"), keras),
            "weighted_metrics": _k3_metrics(training_config.get("weighted_metrics"), keras),
            "loss_weights": training_config.get("loss_weights"),
        }
        trial = keras.models.clone_model(model)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a config Keras 3 only half understands is not carried
            trial.compile_from_config(copy.deepcopy(compile_config))
    except Exception as exc:  # noqa: BLE001 - whatever Keras raises, the config would not compile
        return None, (
            f"training config not carried ({first_line(exc)}); the model is saved uncompiled: call "
            "model.compile(...) after loading"
        )
    return compile_config, None


def _serialized(module: str, class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _k3_class(namespace: Any, name: str) -> tuple[str, Any]:
    name = name.split(">", 1)[1] if name.startswith("Custom>") else name  # tf_keras registers its optimizers so
    if isinstance(getattr(namespace, name, None), type):
        return name, getattr(namespace, name)
    for candidate in dir(namespace):
        if candidate.lower() == name.lower() and isinstance(getattr(namespace, candidate), type):
            return candidate, getattr(namespace, candidate)
    raise UnsupportedFeature(f"Keras 3 has no class {name!r}")


def _k3_args(config: dict[str, Any], cls: Any, tf_cls: Any, what: str, runtime: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Keep what the Keras 3 class takes; drop a tf_keras-only argument only where it is at tf_keras's default."""
    from .keras2_config import NO_DEFAULT, accepted_args, default_arg

    accepted = accepted_args(cls)
    out = {}
    for key, value in config.items():
        if key in accepted:
            out[key] = value
        elif key in runtime:
            continue
        elif (default := default_arg(tf_cls, key)) is not NO_DEFAULT and default == value:
            continue
        else:
            raise UnsupportedFeature(f"{what} sets {key}={value!r}, which Keras 3 has no argument for")
    return out


def _tf_keras_class(kind: str, name: str) -> Any:
    try:
        import tf_keras
    except ImportError:
        return None
    name = name.split(">", 1)[1] if name.startswith("Custom>") else name
    namespace = getattr(tf_keras, kind)
    return next((getattr(namespace, n) for n in dir(namespace) if n.lower() == name.lower()), None)


def _k3_optimizer(value: Any, keras: Any) -> Any:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or "class_name" not in value:
        raise UnsupportedFeature("no optimizer in the training config")
    class_name, cls = _k3_class(keras.optimizers, str(value["class_name"]))
    config = dict(value.get("config") or {})
    if "lr" in config:  # Keras <= 2.2 spelling
        config.setdefault("learning_rate", config.pop("lr"))
        config.pop("lr", None)
    if config.get("decay"):
        raise UnsupportedFeature(f"optimizer {class_name} decays its learning rate (decay={config['decay']}), which Keras 3 optimizers do not")
    config.pop("decay", None)
    rate = config.get("learning_rate")
    if isinstance(rate, dict):
        schedule, schedule_cls = _k3_class(keras.optimizers.schedules, str(rate.get("class_name")))
        config["learning_rate"] = _serialized(
            "keras.optimizers.schedules", schedule,
            _k3_args(dict(rate.get("config") or {}), schedule_cls, _tf_keras_class("optimizers", schedule), f"schedule {schedule}"),
        )
    tf_cls = _tf_keras_class("optimizers", class_name)
    return _serialized("keras.optimizers", class_name,
                       _k3_args(config, cls, tf_cls, f"optimizer {class_name}", _TF_KERAS_RUNTIME_ARGS))


def _k3_objects(value: Any, kind: str, keras: Any) -> Any:
    """Losses (or metrics) as Keras 3 serializes them; strings (built-in names) stay strings."""
    if isinstance(value, list):
        return [_k3_objects(v, kind, keras) for v in value]
    if isinstance(value, dict) and "class_name" not in value:
        return {k: _k3_objects(v, kind, keras) for k, v in value.items()}
    if not isinstance(value, dict):
        return value
    class_name, cls = _k3_class(getattr(keras, kind), str(value["class_name"]))
    config = dict(value.get("config") or {})
    config.pop("fn", None)  # a built-in loss class fixes its function; tf_keras records it anyway
    if config.get("reduction") == "auto":  # tf_keras's "auto" is Keras 3's default reduction
        config["reduction"] = "sum_over_batch_size"
    return _serialized(f"keras.{kind}", class_name,
                       _k3_args(config, cls, _tf_keras_class(kind, class_name), f"{kind[:-1]} {class_name}"))


def _k3_metrics(value: Any, keras: Any) -> Any:
    """tf_keras records compiled metrics per output, as objects (`MeanMetricWrapper` named "accuracy");
    Keras 3 takes the names a user passes to compile for those."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]  # one output
    if isinstance(value, list):
        return [_k3_metrics(v, keras) for v in value]
    if isinstance(value, dict) and value.get("class_name") == "MeanMetricWrapper":
        name = (value.get("config") or {}).get("name")
        if isinstance(name, str):
            return name
    return _k3_objects(value, "metrics", keras)
