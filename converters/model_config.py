"""Where an artifact's Keras model config and training config are, and which schema they follow.

Readers put what they find into `manifest.metadata` ("model_config", "keras_config", "config",
"training_config"); this module picks the model config out, tags it with its schema ("keras2" for
tf_keras / Keras 1-2, "keras3") and answers the questions the name-mapping layer asks of it.
"""

from __future__ import annotations

import json
from typing import Any

from inspector.manifest import Manifest


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


def training_config_of(manifest: Manifest) -> dict[str, Any] | None:
    """The training config (compile setup) an artifact carries, if any."""
    value = manifest.metadata.get("training_config")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None
