"""Where an artifact's Keras model config and training config are, and which schema they follow.

Readers put what they find into `manifest.metadata` ("model_config", "keras_config", "config",
"training_config"); this module picks the model config out, tags it with its schema ("keras2" for
tf_keras / Keras 1-2, "keras3") and answers the questions the name-mapping layer asks of it.

Every Keras version's config is normalised here, once, to the form today's tf_keras writes, so
nothing downstream meets the older shapes (tf_keras's own `Sequential.from_config` and
`reconstruct_from_config` still accept them, which is what makes the rewrite safe):

- Keras 1.x and 2.0-2.1 store a `Sequential` config as a bare list of layer configs (Keras 2.2
  added `{"name", "layers"}`); nested Sequential models inside a `Model` do the same.
- Keras 1 configs get their own schema, "keras1": their layer arguments (`output_dim`, `init`,
  `border_mode`, ...) are ones tf_keras no longer accepts, so full-model targets refuse them by name
  (`keras1_refusal`) while weights targets still use their layer names and classes.
"""

from __future__ import annotations

import json
from typing import Any

from inspector.manifest import Manifest


def model_config_of(manifest: Manifest) -> dict[str, Any] | None:
    """The model config an artifact carries, normalised and tagged with its schema ("keras1", "keras2"
    or "keras3")."""
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
            schema = _config_schema(config, producer)
            if schema == "keras3":
                return {"schema": schema, "config": config}
            found = {"schema": schema, "config": normalize_keras2_config(config)}
            if schema == "keras1":
                found["keras_version"] = str(producer.get("keras_version"))
            return found
    return None


def normalize_keras2_config(config: dict[str, Any]) -> dict[str, Any]:
    """A Keras 1/2 model config in today's tf_keras form (see the module docstring); a new structure."""
    return _normalized(config, top=True)


_SEQUENTIAL_CLASSES = frozenset({"Sequential"})


def _normalized(node: Any, top: bool = False) -> Any:
    if isinstance(node, list):
        return [_normalized(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _normalized(value) for key, value in node.items()}
    inner = out.get("config")
    if out.get("class_name") in _SEQUENTIAL_CLASSES and isinstance(inner, list):
        # Keras <= 2.1: the layer list itself; the name lived only on the enclosing layer entry.
        name = out.get("name") or ("sequential" if top else None)
        out["config"] = inner = {"name": name or "sequential", "layers": inner}
    return out


def keras1_refusal(model_config: dict[str, Any] | None, target: str) -> str | None:
    """The one-line reason a full-model `target` cannot carry a Keras 1 config; None for other schemas."""
    if not model_config or model_config.get("schema") != "keras1":
        return None
    version = model_config.get("keras_version") or "1.x"
    return (
        f"the source's model config was written by Keras {version}, whose layer arguments (output_dim, init, "
        f"border_mode, ...) tf_keras and Keras 3 no longer accept, so a {target} built from it would not load; "
        "pass --model module:function to supply the architecture, or choose a weights target "
        "(--to h5-weights, tf-checkpoint, keras3-weights)"
    )


def _config_schema(config: dict[str, Any], producer: dict[str, Any]) -> str:
    # Keras 3 serialises objects with a "module" entry; tf_keras configs have none.
    if "module" in config or str(producer.get("framework", "")).startswith("keras3"):
        return "keras3"
    if str(producer.get("keras_version") or "").startswith("1."):
        return "keras1"
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


def training_config_of(manifest: Manifest) -> dict[str, Any] | None:
    """The training config (compile setup) an artifact carries, if any."""
    value = manifest.metadata.get("training_config")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return _without_sharing(value) if isinstance(value, dict) else None


def _without_sharing(node: Any) -> Any:
    """Drop `shared_object_id` markers: a SavedModel's metadata is written inside tf_keras's
    SharedObjectSavingScope, an `.h5` training config never is (its loader ignores them either way)."""
    if isinstance(node, dict):
        return {k: _without_sharing(v) for k, v in node.items() if k != "shared_object_id"}
    if isinstance(node, list):
        return [_without_sharing(v) for v in node]
    return node


def training_config_problem(training_config: dict[str, Any] | None) -> str | None:
    """Why a loader could not compile from this training config, or None.

    A loss or metric that was a Python lambda is recorded as the string "<lambda>" (tf.keras 2.x
    SavedModels and .h5 files alike); `load_model` then fails with "Unknown loss function".
    """
    if not training_config:
        return None
    found: list[str] = []

    def visit(node: Any, where: str) -> None:
        if node == "<lambda>":
            found.append(where)
        elif isinstance(node, dict):
            for key, value in node.items():
                visit(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                visit(value, f"{where}[{i}]")

    for key in ("loss", "metrics", "weighted_metrics"):
        visit(training_config.get(key), key)
    if not found:
        return None
    return (
        f"training config not carried: {', '.join(found[:3])} {'is' if len(found) == 1 else 'are'} a Python "
        "lambda, which no loader can rebuild; the model loads uncompiled"
    )

