"""An architecture JSON given beside an artifact (`--config ARCH.json`): read, checked, put in place.

A common Keras 2 pattern keeps `model.to_json()` in one file and `model.save_weights("w.h5")` in
another. The JSON is hostile input like any artifact: it is read with `json` only (size-checked
first), must be a Keras model config, and goes through the same safety checks as a config an
artifact embeds (no Lambda layer or custom class is ever deserialised). It then takes the place of
the artifact's own config in the manifest, so naming, writers and placement verification use it
exactly as they would an embedded one; a config that differs from an embedded one wins, with a note
(the user named it on purpose).

Whether the JSON describes these weights is proved, not assumed: every layer with weights in the
artifact must be a layer of the config, and the model the framework rebuilds from the config must
have, layer by layer, weights of the shapes the artifact holds (`check_layout_matches`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from inspector.errors import CorruptArtifact, MappingError, MissingData, UnsafeArtifact, UnsupportedFeature, first_line
from inspector.manifest import Manifest

from .layout import ModelLayout
from .model_config import config_layers, model_config_of

# `model.to_json()` of a large model is a few MiB; anything far larger is not a config.
MAX_CONFIG_BYTES = 64 * 1024 * 1024
_MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
_EXPECTED = "expected an architecture JSON as model.to_json() writes it"


def read_model_config_file(path: str | Path) -> dict[str, Any]:
    """The Keras model config in an architecture JSON, parsed with `json` only; nothing in it is run."""
    path = Path(path)
    try:
        if not path.is_file():
            raise FileNotFoundError(2, "not a regular file" if path.exists() else "No such file or directory")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise UnsupportedFeature(
                f"--config {path} is {size} bytes; {_EXPECTED}, at most {_limit()}; "
                "pass the model's own architecture file"
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise MissingData(f"--config {path} cannot be read ({exc.strerror or exc}); {_EXPECTED}; check the path") from None
    if len(raw) > MAX_CONFIG_BYTES:  # it grew since it was measured
        raise UnsupportedFeature(f"--config {path} is larger than {_limit()}; {_EXPECTED}")
    if raw.startswith(b"\x89HDF"):
        raise CorruptArtifact(
            f"--config {path} is an HDF5 file, not JSON; {_EXPECTED}; pass the weights file as SRC and its "
            "architecture JSON with --config"
        )
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())[:120]
        raise CorruptArtifact(f"--config {path} is not JSON ({reason}); {_EXPECTED}; pass that file") from None
    problem = _not_a_model_config(config)
    if problem:
        raise UnsupportedFeature(
            f"--config {path} holds {problem}; {_EXPECTED} (class_name Sequential, Functional or Model, with "
            "its layers); pass the architecture saved with the weights"
        )
    return config


def _limit() -> str:
    return f"{MAX_CONFIG_BYTES >> 20} MiB" if MAX_CONFIG_BYTES >= 1 << 20 else f"{MAX_CONFIG_BYTES} bytes"


def _not_a_model_config(config: Any) -> str | None:
    """What was found instead of a model config, or None for a model config."""
    if isinstance(config, list):
        return f"a JSON list of {len(config)} item(s)"
    if not isinstance(config, dict):
        return f"a JSON {type(config).__name__}"
    class_name = config.get("class_name")
    if not isinstance(class_name, str):
        keys = ", ".join(sorted(map(str, config))[:5]) or "none"
        return f"a JSON object without class_name (keys: {keys})"
    if class_name not in _MODEL_CLASSES:
        return f"the config of a single {class_name!r} object, not of a model"
    inner = config.get("config")
    # Keras <= 2.1 wrote a Sequential's config as the bare list of its layers.
    layers = inner if isinstance(inner, list) else inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        return f"a {class_name} config without a list of layers"
    return None


def with_model_config(manifest: Manifest, config: dict[str, Any], where: str) -> tuple[Manifest, list[str]]:
    """The manifest with `config` as the model config `model_config_of` finds; notes say what it replaced."""
    embedded = model_config_of(manifest)
    metadata = {k: v for k, v in manifest.metadata.items() if k not in ("model_config", "keras_config", "config")}
    metadata["model_config"] = config
    producer = dict(manifest.producer)
    if config.get("keras_version") and not producer.get("keras_version"):
        producer["keras_version"] = config["keras_version"]  # the config's era, where the weights do not say
    replaced = replace(manifest, metadata=metadata, producer=producer)
    given = model_config_of(replaced)
    notes = []
    if embedded is not None and given is not None and embedded["config"] != given["config"]:
        notes.append(f"the model config in {manifest.path} was replaced by --config {where} (they differ)")
    return replaced, notes


def check_layout_matches(layout: ModelLayout, where: str, source: str) -> list[str]:
    """Refuse a config that does not describe the source's weights, naming the first layer that differs.

    Names first (no framework needed); then the framework that owns the config's schema rebuilds it,
    after the same safety checks an embedded config gets, and each of its layers must have weights of
    the shapes the source holds for that layer, in order. A config ckit must not build (a Lambda layer,
    a custom class) or that today's frameworks no longer build (Keras 1) is checked by names only, with
    a note: weights targets take their names from it as from an embedded one, full-model targets refuse it.
    """
    model_config = layout.model_config or {}
    config = model_config.get("config") or {}
    in_config = config_layers(config)
    for node in layout.layers:
        if node.name not in in_config:
            raise MappingError(
                f"--config {where} does not describe {source}: the artifact holds weights of layer '{node.name}', "
                f"and the config has no layer of that name ({_some(in_config)}); pass the architecture JSON "
                "saved with these weights"
            )
    built, unchecked = _built_shapes(config, model_config.get("schema"), where)
    if built is None:
        return [f"--config {where}: weight shapes not checked against the model it describes ({unchecked})"]
    held = {node.name: [tuple(w.shape) for w in node.flat_weights()] for node in layout.layers}
    for name, shapes in built.items():
        if shapes and held.get(name, []) != shapes:
            have = held.get(name)
            raise MappingError(
                f"--config {where} does not describe {source}: its layer '{name}' ({in_config.get(name) or '?'}) "
                f"builds weights of shapes {_shapes(shapes)}, the artifact holds "
                f"{_shapes(have) if have else 'no weights for it'}; pass the architecture JSON saved with these weights"
            )
    return []


def _built_shapes(config: dict[str, Any], schema: str | None,
                  where: str) -> tuple[dict[str, list[tuple[int, ...]]] | None, str]:
    """Layer name -> its weights' shapes in the model the config's own framework rebuilds; or None and why
    it was not built."""
    from .config_safety import check_config_is_safe, check_config_safe

    if schema == "keras1":
        return None, "a Keras 1 config, which today's Keras no longer builds"
    try:
        if schema == "keras3":
            check_config_safe(config)
            import keras

            framework, build = "Keras 3", keras.models.model_from_json
        else:
            try:
                import tf_keras
            except ImportError:
                return None, "tf_keras, which builds a Keras 2 config, is not installed"
            check_config_is_safe(config, tf_keras)
            framework, build = "tf_keras", tf_keras.models.model_from_json
    except UnsafeArtifact as exc:  # never built; full-model targets refuse it with this same reason
        return None, f"ckit does not build it: {exc}"
    try:
        model = build(json.dumps(config))
    except Exception as exc:  # noqa: BLE001 - a framework raises many types on a config it cannot build
        raise MappingError(
            f"--config {where}: {framework} cannot build the model it describes ({type(exc).__name__}: "
            f"{first_line(exc)[:200]}); expected a config that framework loads; pass the architecture JSON "
            "saved with these weights"
        ) from None
    return {layer.name: [tuple(int(d) for d in w.shape) for w in layer.weights] for layer in model.layers}, ""


def _some(names: dict[str, str]) -> str:
    listed = ", ".join(sorted(names)[:4]) or "none"
    return f"it has {listed}{', ...' if len(names) > 4 else ''}"


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join(str(list(s)) for s in shapes)
