"""Keras 3 model configs translated into the tf_keras (Keras 2) schema: the reverse of keras3_config.

A Keras 3 model of standard layers becomes a config `tf_keras.models.load_model` rebuilds, so a
`.keras` (or a Keras 3 legacy `.h5`) converts to a full-model `.h5` or SavedModel that tf_keras
opens, with its compile setup as a tf_keras training config.  The two schemas differ in form, not in
meaning, for the layers both frameworks have:

- every serialized object loses Keras 3's `module`, `registered_name`, `build_config` and
  `compile_config` entries; dtype policies become a dtype name (mixed precision: a `Policy`);
- `InputLayer(batch_shape=...)` is `InputLayer(batch_input_shape=...)`;
- Keras 3 inbound nodes (`{"args": [keras tensors...], "kwargs": {...}}`) become tf_keras node data
  (`[[layer, node, tensor, kwargs], ...]`: the first call argument's tensors, the other arguments
  folded into kwargs under the layer's `call` parameter names, as tf_keras `Node.serialize` does);
- a nested model built on its own Input has an internal node 0 in tf_keras, so calls to it count
  from 1 there (from 0 in Keras 3);
- arguments Keras 3 added (`lora_rank`, `seed` of an LSTM, `use_cudnn`, an initializer's
  `input_axes`, an optimizer's `loss_scale_factor`, ...) are dropped when they hold Keras 3's
  default, which is what tf_keras does without them; any other value is refused by name.

Which arguments each side takes is read from the installed classes (their signatures and the arguments
their `__init__` pops from **kwargs; for Keras 3's defaults also a default instance's config), never from a list kept here, and the result is rebuilt with tf_keras before anything is written: a translation tf_keras
cannot rebuild, or whose weights do not line up with the source's, is refused in one line.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from dataclasses import dataclass
from typing import Any

from inspector.errors import MappingError, UnsupportedFeature, first_line, require

from .layout import ModelLayout

_PASS_MODEL = (
    "pass --model module:function built with tf_keras to supply the architecture, or choose a Keras 3 "
    "target (--to keras3-model)"
)
_KERAS3_ONLY_ENTRIES = ("module", "registered_name", "build_config", "compile_config", "shared_object_id")
_MODEL_CLASSES = ("Functional", "Model", "Sequential")
# Layer-config keys whose value is another layer (wrappers, RNNs).
_LAYER_KEYS = ("layer", "cell", "forward_layer", "backward_layer")
_KIND_BY_SUFFIX = (("_initializer", "initializers"), ("_regularizer", "regularizers"), ("_constraint", "constraints"))


@dataclass(frozen=True)
class Keras2Config:
    """A tf_keras model config, the training config for it (None if none is carried) and notes."""

    config: dict[str, Any]  # {"class_name", "config"}, as tf_keras `model.to_json()` gives it
    training_config: dict[str, Any] | None
    notes: tuple[str, ...]


def tf_keras_model_config(layout: ModelLayout) -> Keras2Config:
    """Translate the layout's Keras 3 config (and compile config) for tf_keras; check it rebuilds."""
    model_config = layout.model_config or {}
    config = model_config.get("config")
    if not isinstance(config, dict) or "class_name" not in config or not isinstance(config.get("config"), dict):
        raise MappingError(
            f"the {layout.source_format or 'source'} artifact carries no Keras 3 model config that tf_keras "
            f"could rebuild; {_PASS_MODEL}"
        )
    from .config_safety import check_config_safe

    check_config_safe(config)  # Lambda and custom classes are refused before anything is built
    from .keras3_config import refuse_keras3_only_activations

    refuse_keras3_only_activations(config)
    translated = translate_model_config(config)
    _check_rebuilds(translated, layout)
    compile_config = config.get("compile_config") or layout.training_config
    training, note = translate_compile_config(compile_config)
    notes = (note,) if note else ()
    return Keras2Config(config=translated, training_config=training, notes=notes)


# --- model configs ----------------------------------------------------------------------------------


def translate_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """A Keras 3 model config ({"class_name", "config", ...}) in tf_keras's schema; a new structure."""
    translator = _Translator()
    out = translator.model(copy.deepcopy(config))
    if translator.missing:
        names = ", ".join(f"'{name}' ({cls})" for name, cls in translator.missing[:6])
        more = f" and {len(translator.missing) - 6} more" if len(translator.missing) > 6 else ""
        raise UnsupportedFeature(
            f"layer(s) {names}{more} have no tf_keras counterpart, so tf_keras cannot rebuild this Keras 3 "
            f"model; {_PASS_MODEL}"
        )
    return {"class_name": out["class_name"], "config": out["config"]}


class _Translator:
    def __init__(self) -> None:
        self.tf_keras = require("tf_keras", "tf", "Translating a Keras 3 config for tf_keras")
        self.keras = require("keras", "tf", "Reading a Keras 3 config")
        self.missing: list[tuple[str, str]] = []

    # models ------------------------------------------------------------------------------------------

    def model(self, entry: dict[str, Any]) -> dict[str, Any]:
        class_name = entry.get("class_name")
        inner = entry.get("config") or {}
        if class_name == "Sequential":
            layers = [self.layer(layer) for layer in inner.get("layers") or []]
            config: dict[str, Any] = {"name": inner.get("name"), "layers": layers}
            if inner.get("build_input_shape") is not None:
                config["build_input_shape"] = inner["build_input_shape"]
            return {"class_name": "Sequential", "config": config}
        layers = inner.get("layers") or []
        skips = {
            _entry_name(layer) for layer in layers if isinstance(layer, dict) and _has_internal_node(layer)
        }
        out_layers = []
        for layer in layers:
            translated = self.layer(layer)
            translated["name"] = _entry_name(layer)
            translated["inbound_nodes"] = [
                self.node(node, layer.get("class_name"), skips) for node in layer.get("inbound_nodes") or []
            ]
            if translated.get("class_name") == "MultiHeadAttention":
                _attention_shapes(translated["config"], layer.get("inbound_nodes") or [])
            out_layers.append(translated)
        config = {
            "name": inner.get("name"),
            "trainable": inner.get("trainable", True),
            "layers": out_layers,
            "input_layers": _shift_refs(inner.get("input_layers"), skips),
            "output_layers": _shift_refs(inner.get("output_layers"), skips),
        }
        return {"class_name": "Functional", "config": config}

    def node(self, node: Any, class_name: str | None, skips: set[str]) -> list[Any]:
        """One Keras 3 call record as tf_keras node data (see tf_keras `Node.serialize`)."""
        if not isinstance(node, dict):  # already tf_keras node data
            return _shift_refs(node, skips)
        args = list(node.get("args") or [])
        kwargs = dict(node.get("kwargs") or {})
        if len(args) > 1:
            names = self._call_arg_names(class_name)
            if len(names) < len(args):
                raise UnsupportedFeature(
                    f"a call of a {class_name} layer passes {len(args)} positional arguments, more than tf_keras's "
                    f"{class_name}.call names; {_PASS_MODEL}"
                )
            kwargs.update(zip(names[1 : len(args)], args[1:]))
        kwargs = _tensor_refs(kwargs, skips)
        first = args[0] if args else None

        def one(tensor: Any) -> list[Any]:
            ref = _tensor_ref(tensor, skips)
            if ref is None:
                raise UnsupportedFeature(
                    f"a {class_name} layer is called on a constant, not on a layer's output; ckit translates only "
                    f"calls on layer outputs; {_PASS_MODEL}"
                )
            return [*ref, kwargs]

        if isinstance(first, list):
            return [one(t) for t in first]
        if isinstance(first, dict) and first.get("class_name") != "__keras_tensor__":
            return [one(t) for t in first.values()]
        return [one(first)]

    def _call_arg_names(self, class_name: str | None) -> list[str]:
        cls = getattr(self.tf_keras.layers, str(class_name), None)
        if cls is None:
            return []
        params = list(inspect.signature(cls.call).parameters.values())
        return [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    # layers ------------------------------------------------------------------------------------------

    def layer(self, entry: Any) -> dict[str, Any]:
        if not isinstance(entry, dict):
            return entry
        class_name = entry.get("class_name")
        if class_name in _MODEL_CLASSES:
            return self.model(entry)
        inner = dict(entry.get("config") or {})
        name = inner.get("name") or entry.get("name") or "?"
        tf_cls = getattr(self.tf_keras.layers, str(class_name), None)
        k3_cls = getattr(self.keras.layers, str(class_name), None)
        if tf_cls is None or not isinstance(tf_cls, type):
            self.missing.append((name, str(class_name)))
            return {"class_name": class_name, "config": inner}
        if "batch_shape" in inner:
            inner["batch_input_shape"] = inner.pop("batch_shape")
        for key, value in list(inner.items()):
            inner[key] = self.value(key, value)
        accepted = _accepted_layer_args(tf_cls, self.tf_keras)
        inner = _drop_keras3_defaults(inner, accepted, k3_cls, f"layer '{name}' ({class_name})")
        return {"class_name": class_name, "config": inner}

    def value(self, key: str, value: Any) -> Any:
        """A layer argument in tf_keras's form: nested layers, initializers, dtype policies, ..."""
        if key == "dtype" and isinstance(value, dict):
            return _dtype(value)
        if key in _LAYER_KEYS and isinstance(value, dict):
            return self.layer(value)
        if key == "cells" and isinstance(value, list):
            return [self.layer(v) for v in value]
        for suffix, kind in _KIND_BY_SUFFIX:
            if key.endswith(suffix) and isinstance(value, dict):
                return self.obj(value, kind, key)
        if isinstance(value, dict) and "class_name" in value:
            return _strip(value)
        return value

    def obj(self, value: dict[str, Any], kind: str, key: str) -> dict[str, Any]:
        """An initializer / regularizer / constraint: tf_keras's class of that name, its arguments."""
        class_name = value.get("class_name")
        tf_cls = getattr(getattr(self.tf_keras, kind), str(class_name), None)
        k3_cls = getattr(getattr(self.keras, kind), str(class_name), None)
        config = dict(value.get("config") or {})
        if tf_cls is None or not isinstance(tf_cls, type):
            raise UnsupportedFeature(
                f"{key} is a Keras 3 {class_name}, which tf_keras has no {kind[:-1]} class for; {_PASS_MODEL}"
            )
        accepted = accepted_args(tf_cls)
        config = _drop_keras3_defaults(config, accepted, k3_cls, f"{key} ({class_name})")
        return {"class_name": class_name, "config": config}


def _attention_shapes(config: dict[str, Any], nodes: list[Any]) -> None:
    """tf_keras's MultiHeadAttention config records the shapes of its first call (query, value, key) and
    its `from_config` requires them, to create the weights before they are loaded; Keras 3 keeps them in
    the call record instead."""
    if "query_shape" in config:
        return
    first = nodes[0] if nodes and isinstance(nodes[0], dict) else {}
    args = list(first.get("args") or [])
    kwargs = dict(first.get("kwargs") or {})
    query = args[0] if args else kwargs.get("query")
    value = args[1] if len(args) > 1 else kwargs.get("value")
    key = args[2] if len(args) > 2 else kwargs.get("key")

    def shape(tensor: Any) -> Any:
        if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
            return (tensor.get("config") or {}).get("shape")
        return None

    config["query_shape"] = shape(query)
    config["value_shape"] = shape(value)
    config["key_shape"] = shape(key) if key is not None else shape(value)


def _entry_name(layer: dict[str, Any]) -> str:
    return layer.get("name") or (layer.get("config") or {}).get("name")


def _has_internal_node(layer: dict[str, Any]) -> bool:
    """Whether tf_keras gives this nested model an internal node 0 (tf_keras `_should_skip_first_node`):
    every Functional model, and a Sequential whose first layer is (or brings) its Input."""
    class_name = layer.get("class_name")
    if class_name in ("Functional", "Model"):
        return True
    if class_name != "Sequential":
        return False
    layers = (layer.get("config") or {}).get("layers") or []
    if not layers or not isinstance(layers[0], dict):
        return False
    first = layers[0]
    config = first.get("config") or {}
    return first.get("class_name") == "InputLayer" or "batch_shape" in config or "batch_input_shape" in config


def _tensor_ref(tensor: Any, skips: set[str]) -> list[Any] | None:
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        history = (tensor.get("config") or {}).get("keras_history")
        if isinstance(history, list) and len(history) == 3:
            name, node, index = history
            return [name, node + 1 if name in skips else node, index]
    return None


def _tensor_refs(value: Any, skips: set[str]) -> Any:
    """Keras tensors inside call kwargs become tf_keras `[layer, node, tensor]` references."""
    ref = _tensor_ref(value, skips)
    if ref is not None:
        return ref
    if isinstance(value, dict):
        return {k: _tensor_refs(v, skips) for k, v in value.items()}
    if isinstance(value, list):
        return [_tensor_refs(v, skips) for v in value]
    return value


def _shift_refs(refs: Any, skips: set[str]) -> Any:
    """`[layer, node, tensor]` references (input_layers, output_layers) with tf_keras's node numbers."""
    if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str) and isinstance(refs[1], int):
        return [refs[0], refs[1] + 1 if refs[0] in skips else refs[1], refs[2]]
    if isinstance(refs, list):
        return [_shift_refs(r, skips) for r in refs]
    return refs


def _dtype(value: dict[str, Any]) -> Any:
    """A Keras 3 DTypePolicy as tf_keras records a layer's dtype."""
    name = (value.get("config") or {}).get("name")
    if not isinstance(name, str):
        raise UnsupportedFeature(f"a dtype policy {value.get('class_name')!r} without a name; {_PASS_MODEL}")
    if name.startswith("mixed_"):
        return {"class_name": "Policy", "config": {"name": name}}
    if "_from_" in name or name.startswith(("int8", "int4", "float8")):
        raise UnsupportedFeature(f"dtype policy '{name}' (quantized) has no tf_keras counterpart; {_PASS_MODEL}")
    return name


def _strip(value: Any) -> Any:
    """Any other serialized object without Keras 3's extra entries."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _KERAS3_ONLY_ENTRIES}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# --- which arguments each side takes ----------------------------------------------------------------

_SIGNATURES: dict[type, frozenset[str]] = {}


_POPPED = re.compile(r"kwargs\.(?:pop|get)\(\s*[\"'](\w+)[\"']")


def accepted_args(cls: type) -> frozenset[str]:
    """Named `__init__` parameters along the class's MRO (subclasses pass **kwargs on), and the
    arguments an `__init__` takes out of **kwargs itself (tf_keras RNN's `zero_output_for_mask`)."""
    if cls not in _SIGNATURES:
        names: set[str] = set()
        for klass in inspect.getmro(cls):
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            try:
                params = inspect.signature(init).parameters.values()
            except (TypeError, ValueError):
                continue
            names.update(p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
            if any(p.kind == p.VAR_KEYWORD for p in params):
                try:
                    names.update(_POPPED.findall(inspect.getsource(init)))
                except (OSError, TypeError):
                    pass
        _SIGNATURES[cls] = frozenset(names)
    return _SIGNATURES[cls]


def _accepted_layer_args(cls: type, tf_keras: Any) -> frozenset[str]:
    # tf_keras `Layer.__init__` takes these through **kwargs (base_layer.py `allowed_kwargs`).
    base = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights", "activity_regularizer",
            "autocast", "implementation"}
    return accepted_args(cls) | base


NO_DEFAULT = object()


def default_arg(cls: type | None, key: str) -> Any:
    if cls is None:
        return NO_DEFAULT
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            param = inspect.signature(init).parameters.get(key)
        except (TypeError, ValueError):
            continue
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    # Arguments a Keras 3 class pops from **kwargs (LayerNormalization's deprecated `rms_scaling`) are in
    # no signature: a default instance's own config tells them, where the class needs no arguments.
    return _default_instance_config(cls).get(key, NO_DEFAULT)


_DEFAULT_CONFIGS: dict[type, dict[str, Any]] = {}


def _default_instance_config(cls: type) -> dict[str, Any]:
    if cls not in _DEFAULT_CONFIGS:
        try:
            _DEFAULT_CONFIGS[cls] = dict(cls().get_config())
        except Exception:  # noqa: BLE001 - a class with required arguments has no default instance
            _DEFAULT_CONFIGS[cls] = {}
    return _DEFAULT_CONFIGS[cls]


def _same(value: Any, default: Any) -> bool:
    if isinstance(default, tuple):
        default = list(default)
    return value == default


def _drop_keras3_defaults(config: dict[str, Any], accepted: frozenset[str], k3_cls: type | None, what: str) -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        if key in accepted:
            out[key] = value
            continue
        default = default_arg(k3_cls, key)
        if default is not NO_DEFAULT and _same(value, default):
            continue  # a Keras 3 argument left at its default: tf_keras behaves that way without it
        raise UnsupportedFeature(
            f"{what} sets {key}={json.dumps(value, default=str)[:60]}, which tf_keras has no argument for; "
            f"{_PASS_MODEL}"
        )
    return out


# --- compile configs -> training configs -------------------------------------------------------------


def translate_compile_config(compile_config: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """A Keras 3 compile config as a tf_keras training config, or None and the reason it is not carried."""
    if not isinstance(compile_config, dict):
        return None, None
    optimizer = compile_config.get("optimizer", compile_config.get("optimizer_config"))
    try:
        tf_keras = require("tf_keras", "tf", "Translating a Keras 3 compile config")
        keras = require("keras", "tf", "Reading a Keras 3 compile config")
        training = {
            "loss": _compile_objects(compile_config.get("loss"), "losses", tf_keras, keras),
            "metrics": _compile_objects(compile_config.get("metrics"), "metrics", tf_keras, keras),
            "weighted_metrics": _compile_objects(compile_config.get("weighted_metrics"), "metrics", tf_keras, keras),
            "loss_weights": compile_config.get("loss_weights"),
            "optimizer_config": _optimizer(optimizer, tf_keras, keras),
        }
        _check_compiles(training, tf_keras)
    except (UnsupportedFeature, MappingError) as exc:
        return None, f"training config not carried ({exc}); the model loads uncompiled"
    return training, None


def _compile_objects(value: Any, kind: str, tf_keras: Any, keras: Any) -> Any:
    if isinstance(value, list):
        return [_compile_objects(v, kind, tf_keras, keras) for v in value]
    if isinstance(value, dict) and "class_name" not in value:  # per-output dict
        return {k: _compile_objects(v, kind, tf_keras, keras) for k, v in value.items()}
    if isinstance(value, dict):
        class_name = value.get("class_name")
        tf_cls = getattr(getattr(tf_keras, kind), str(class_name), None)
        if not isinstance(tf_cls, type):
            raise UnsupportedFeature(f"tf_keras has no {kind[:-1]} class {class_name!r}")
        k3_cls = getattr(getattr(keras, kind), str(class_name), None)
        config = _drop_keras3_defaults(
            dict(value.get("config") or {}), accepted_args(tf_cls) | {"name", "reduction", "dtype"}, k3_cls,
            f"{kind[:-1]} {class_name}",
        )
        return {"class_name": class_name, "config": config}
    return value


def _optimizer(value: Any, tf_keras: Any, keras: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = {"class_name": value, "config": {}}
    if not isinstance(value, dict) or "class_name" not in value:
        raise UnsupportedFeature("the compile config has no optimizer")
    class_name = _case_insensitive(tf_keras.optimizers, str(value["class_name"]))
    tf_cls = getattr(tf_keras.optimizers, class_name, None)
    if not isinstance(tf_cls, type):
        raise UnsupportedFeature(f"tf_keras has no optimizer class {class_name!r}")
    config = dict(value.get("config") or {})
    rate = config.get("learning_rate")
    if isinstance(rate, dict):
        schedule = rate.get("class_name")
        tf_schedule = getattr(tf_keras.optimizers.schedules, str(schedule), None)
        if not isinstance(tf_schedule, type):
            raise UnsupportedFeature(f"tf_keras has no learning-rate schedule {schedule!r}")
        k3_schedule = getattr(keras.optimizers.schedules, str(schedule), None)
        config["learning_rate"] = {
            "class_name": schedule,
            "config": _drop_keras3_defaults(
                dict(rate.get("config") or {}), accepted_args(tf_schedule), k3_schedule, f"schedule {schedule}"
            ),
        }
    k3_cls = getattr(keras.optimizers, class_name, None)
    config = _drop_keras3_defaults(config, accepted_args(tf_cls), k3_cls, f"optimizer {class_name}")
    config["is_legacy_optimizer"] = False  # tf_keras treats a config without it as a legacy optimizer
    return {"class_name": class_name, "config": config}


def _case_insensitive(namespace: Any, name: str) -> str:
    """The class name as `namespace` spells it ("adam" -> "Adam"), as tf_keras's deserialiser matches it."""
    if hasattr(namespace, name):
        return name
    return next((n for n in dir(namespace) if n.lower() == name.lower() and isinstance(getattr(namespace, n), type)), name)


def _check_compiles(training: dict[str, Any], tf_keras: Any) -> None:
    """tf_keras's own deserialisers must accept what will be written (what `load_model` calls)."""
    from tf_keras.src.saving.legacy import saving_utils

    try:
        saving_utils.compile_args_from_training_config(copy.deepcopy(training))
    except Exception as exc:  # noqa: BLE001 - whatever tf_keras raises, the config would not compile
        raise UnsupportedFeature(f"tf_keras cannot compile from it: {first_line(exc)}") from None


# --- the rebuild check -------------------------------------------------------------------------------


def _check_rebuilds(config: dict[str, Any], layout: ModelLayout) -> None:
    """tf_keras must rebuild the translated config, with weights the shapes of the source's, in order."""
    import tf_keras

    from .config_safety import check_config_is_safe

    check_config_is_safe(config, tf_keras)
    try:
        model = tf_keras.models.model_from_json(json.dumps(config))
    except Exception as exc:  # noqa: BLE001 - tf_keras raises many types on a config it cannot build
        raise MappingError(
            f"tf_keras could not rebuild the translated Keras 3 model ({type(exc).__name__}: {first_line(exc)}); "
            f"{_PASS_MODEL}"
        ) from exc
    built = [tuple(int(d) for d in w.shape) for layer in model.layers for w in layer.weights]
    source = [tuple(w.shape) for w in layout.flat_weights()]
    if built != source:
        raise MappingError(
            f"the tf_keras model rebuilt from the translated config has {len(built)} weights whose shapes "
            f"differ from the source's {len(source)} (first difference at weight "
            f"{next((i for i, (a, b) in enumerate(zip(built, source)) if a != b), min(len(built), len(source)))}); "
            f"{_PASS_MODEL}"
        )

