"""Keras 2 HDF5 writers: the files tf_keras `save_weights("x.h5")` and `save("x.h5")` produce.

The layout follows `tf_keras/src/saving/legacy/hdf5_format.py` exactly, down
to the HDF5 string types, because tf_keras and Keras 3 load these files
positionally and by `weight_names`:

    /                      attrs layer_names, backend, keras_version
    /<layer>               attr weight_names ("dense/kernel:0", ...; empty float64 array if none)
    /<layer>/<weight name> one dataset per weight ("/" in the name makes subgroups)
    /top_level_model_weights  weights owned by the model itself (always empty here)

A full model file puts that tree under `model_weights/`, adds the
`model_config` / `training_config` JSON attributes, and optimizer state under
`optimizer_weights/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from inspector.errors import MappingError, UnsupportedFeature

from ..layout import LayerNode, ModelLayout, WeightRef
from .base import WriteOptions, WriteResult, fetch

# HDF5 cannot hold an object header larger than this, so tf_keras splits long
# attribute lists into name0, name1, ...; readers (tf_keras, Keras 3, ckit) join them.
HDF5_OBJECT_HEADER_LIMIT = 64512
# Loaders only test this for "1" (Keras 1 weight conversions); say what we imitate.
KERAS_VERSION = "2.21.0"
BACKEND = "tensorflow"
TOP_LEVEL_GROUP = "top_level_model_weights"

# Keras 2 stores numpy dtypes h5py understands natively; ml_dtypes (bfloat16, float8) it does not.
_H5_KINDS = frozenset("biufc")


def save_attributes_to_hdf5_group(group: Any, name: str, data: list[bytes]) -> None:
    """Store a list attribute the way tf_keras does, chunked past the object header limit.

    The types follow from tf_keras's own calls: a whole list becomes an h5py
    variable-length ASCII string array, chunks are numpy fixed-length `S` arrays.
    """
    too_long = [x for x in data if len(x) > HDF5_OBJECT_HEADER_LIMIT]
    if too_long:
        raise UnsupportedFeature(
            f"attribute '{name}' holds a name longer than {HDF5_OBJECT_HEADER_LIMIT} bytes "
            f"({too_long[0][:60]!r}...), which HDF5 cannot store; choose another target format"
        )
    data_npy = np.asarray(data)
    num_chunks = 1
    chunked = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > HDF5_OBJECT_HEADER_LIMIT for x in chunked):
        num_chunks += 1
        chunked = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for chunk_id, chunk in enumerate(chunked):
            group.attrs[f"{name}{chunk_id}"] = chunk
    else:
        # An empty list lands as an empty float64 array, as tf_keras writes for weightless layers.
        group.attrs[name] = data


def weight_name(ref: WeightRef) -> str:
    """The TF variable name Keras 2 records: the canonical name plus the output index."""
    return ref.name if ref.name.endswith(":0") else ref.name + ":0"


def keras2_layer_names(config: dict[str, Any]) -> list[str]:
    """Names of `model.layers` for a Keras 2 model config ({"class_name", "config"})."""
    inner = config.get("config") or {}
    layers = inner.get("layers")
    if not isinstance(layers, list):
        return []
    sequential = config.get("class_name") == "Sequential"
    names = []
    for entry in layers:
        # A Sequential config lists its InputLayer, but `model.layers` does not include it.
        if sequential and entry.get("class_name") == "InputLayer":
            continue
        name = entry.get("name") or (entry.get("config") or {}).get("name")
        if name:
            names.append(str(name))
    return names


def layer_names_for(layout: ModelLayout) -> tuple[list[str], list[str]]:
    """All layer names to record, and notes; weightless layers come only from a Keras 2 config."""
    weighted = [layer.name for layer in layout.layers]
    mc = layout.model_config
    if not mc or mc.get("schema") != "keras2":
        return weighted, []
    names = keras2_layer_names(mc.get("config") or {})
    # Loading is positional over the layers that have weights, so the config must agree with the layout.
    if [n for n in names if n in set(weighted)] != weighted:
        return weighted, [
            "the Keras 2 model config lists layers that do not match the weights "
            f"(config: {names}, weighted layers: {weighted}); layer_names lists the weighted layers only"
        ]
    return names, []


def _check_h5_dtype(ref: WeightRef) -> None:
    try:
        dtype = np.dtype(ref.dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in _H5_KINDS:
        raise UnsupportedFeature(
            f"weight '{ref.name}' has dtype {ref.dtype}, which Keras 2 HDF5 files cannot hold; "
            "write it as safetensors or a TensorFlow checkpoint instead"
        )


def _write_dataset(
    group: Any, ref: WeightRef, layout: ModelLayout, options: WriteOptions, name: str | None = None
) -> None:
    """Write one weight at `name` (default: its Keras 2 weight name) inside `group`."""
    value = fetch(layout, ref)
    # h5py turns the "/" of "dense/kernel:0" into a subgroup, exactly as tf_keras relies on.
    dset = group.create_dataset(name or weight_name(ref), value.shape, dtype=value.dtype)
    if value.shape:
        dset[:] = value
    else:
        dset[()] = value
    if options.progress:
        options.progress(ref, int(value.nbytes))


def write_weights_group(f: Any, layout: ModelLayout, options: WriteOptions) -> list[str]:
    """Fill `f` (a file or group) with the `save_weights_to_hdf5_group` tree; returns notes."""
    for ref in layout.flat_weights():
        _check_h5_dtype(ref)
    names, notes = layer_names_for(layout)
    by_name: dict[str, LayerNode] = {layer.name: layer for layer in layout.layers}
    if len(by_name) != len(layout.layers):
        raise MappingError(
            f"the layout names a layer twice ({[n.name for n in layout.layers]}); "
            "HDF5 groups are keyed by layer name: fix the layer mapping"
        )
    save_attributes_to_hdf5_group(f, "layer_names", [n.encode("utf8") for n in names])
    f.attrs["backend"] = BACKEND.encode("utf8")
    f.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
    # tf_keras creates groups sorted by name so that no group name is a prefix issue.
    for name in sorted(names):
        g = f.create_group(name)
        layer = by_name.get(name)
        weights = layer.flat_weights() if layer else []
        save_attributes_to_hdf5_group(g, "weight_names", [weight_name(w).encode("utf8") for w in weights])
        for ref in weights:
            _write_dataset(g, ref, layout, options)
    g = f.create_group(TOP_LEVEL_GROUP)
    save_attributes_to_hdf5_group(g, "weight_names", [])
    return notes


def _legacy_config(obj: Any, in_layers: bool = False) -> Any:
    """A Keras 2 config in the legacy form `save("x.h5")` records.

    tf_keras's legacy serialisation drops `module`, `registered_name` and
    `build_config` from layer entries (and names registered custom layers by
    their registered name) but keeps them on nested objects such as initializers.
    """
    if isinstance(obj, list):
        return [_legacy_config(x, in_layers) for x in obj]
    if not isinstance(obj, dict):
        return obj
    layer_entry = in_layers and "class_name" in obj
    out = {}
    for key, value in obj.items():
        if layer_entry and key in ("module", "registered_name", "build_config", "compile_config"):
            continue
        out[key] = _legacy_config(value, in_layers=(key == "layers"))
    registered = obj.get("registered_name") if layer_entry else None
    if registered and registered != obj.get("class_name"):
        out["class_name"] = registered
    return out


def keras2_model_config(layout: ModelLayout, needs: str = "a Keras 2 full-model file needs one") -> dict[str, Any]:
    """The Keras 2 model config ({"class_name", "config"}) a full-model file needs, or a clear error.

    `needs` says why the architecture is wanted, in the words of the target format.
    The one place to translate other schemas (Keras 3 configs) when ckit learns how.
    """
    mc = layout.model_config
    if not mc:
        raise MappingError(
            f"the source ({layout.source_format or 'unknown format'}) carries weights but no model config, "
            f"and {needs}; pass --model to supply the architecture, "
            "or choose --to h5-weights"
        )
    schema = mc.get("schema")
    config = mc.get("config") or {}
    from ..model_config import keras1_refusal

    refusal = keras1_refusal(mc, "Keras 2 full model")
    if refusal:
        raise UnsupportedFeature(refusal)
    if schema != "keras2":
        raise UnsupportedFeature(
            f"the source's model config uses the {schema!r} schema, but a Keras 2 full-model file needs a "
            "Keras 2 (tf_keras) config; pass --model to supply the architecture, or choose --to h5-weights"
        )
    if "class_name" not in config or "config" not in config:
        raise MappingError(
            f"the Keras 2 model config has keys {sorted(config)}, expected 'class_name' and 'config'; "
            "pass --model to supply the architecture, or choose --to h5-weights"
        )
    return _legacy_config({"class_name": config["class_name"], "config": config["config"]})


def _json_default(obj: Any) -> Any:
    # Configs taken from live objects carry numpy scalars (a float32 learning rate).
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} in a model config is not JSON serialisable")


class H5WeightsWriter:
    """tf_keras `model.save_weights("x.h5")` files."""

    name = "h5-weights"
    description = "Keras 2 (tf_keras) HDF5 weights file, as model.save_weights('x.h5') writes it"
    suffixes = (".h5", ".hdf5")

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        import h5py

        dst = Path(dst)
        notes: list[str] = []
        with h5py.File(dst, "w") as f:
            notes += write_weights_group(f, layout, options)
        if layout.optimizer:
            notes.append(
                f"optimizer state ({len(layout.optimizer)} tensors) dropped: a weights-only HDF5 file cannot "
                "hold it; convert to h5-model (ckconvert convert SRC DST --to h5-model) to keep it"
            )
        return WriteResult(paths=(dst,), notes=tuple(notes))


class H5ModelWriter:
    """tf_keras `model.save("x.h5")` files: config, weights and optimizer state."""

    name = "h5-model"
    description = "Keras 2 (tf_keras) HDF5 full-model file, as model.save('x.h5') writes it"
    suffixes = (".h5", ".hdf5")

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        import h5py

        dst = Path(dst)
        notes: list[str] = []
        if (layout.model_config or {}).get("schema") == "keras3":
            import importlib.util

            if importlib.util.find_spec("tf_keras") is None:  # a Keras 3 only machine: Keras 3's own .h5
                return write_keras3_legacy_h5(layout, dst, options)
            layout, notes = _as_tf_keras_layout(layout)
        config = keras2_model_config(layout)  # refuse before creating any file
        # The config is copied into the file as is: refuse Lambda bytecode and custom classes, exactly
        # as the SavedModel writer does (the raw config still has `module` / `registered_name`).
        from ..config_safety import check_keras2_config

        check_keras2_config((layout.model_config or {}).get("config") or {})
        check_keras2_config(config)
        with h5py.File(dst, "w") as f:
            # tf_keras writes these two as str (UTF-8) and the JSON ones as bytes (ASCII).
            f.attrs["backend"] = BACKEND
            f.attrs["keras_version"] = KERAS_VERSION
            f.attrs["model_config"] = json.dumps(config, default=_json_default).encode("utf8")
            from ..model_config import training_config_problem

            problem = training_config_problem(layout.training_config)
            if problem:
                notes.append(problem)
            elif layout.training_config:
                f.attrs["training_config"] = json.dumps(layout.training_config, default=_json_default).encode("utf8")
            else:
                notes.append("no training config in the source: the model loads uncompiled")
            notes += write_weights_group(f.create_group("model_weights"), layout, options)
            if layout.optimizer and options.include_optimizer:
                # tf_keras restores `optimizer_weights` positionally onto `optimizer.variables`, which
                # does not include the learning rate (a checkpoint has it; the training config keeps it).
                saved = [r for r in layout.optimizer if not (r.attribute == "learning_rate" and not r.shape)]
                for ref in saved:
                    _check_h5_dtype(ref)
                g = f.create_group("optimizer_weights")
                save_attributes_to_hdf5_group(g, "weight_names", [weight_name(r).encode("utf8") for r in saved])
                for ref in saved:
                    _write_dataset(g, ref, layout, options)
            elif layout.optimizer:
                notes.append(
                    f"optimizer state ({len(layout.optimizer)} tensors) left out as asked (include_optimizer off)"
                )
        return WriteResult(paths=(dst,), notes=tuple(notes))


def _as_tf_keras_layout(layout: ModelLayout) -> tuple[ModelLayout, list[str]]:
    """A Keras 3 source's layout with its config and compile config translated for tf_keras."""
    from dataclasses import replace

    from ..keras2_config import tf_keras_model_config

    k2 = tf_keras_model_config(layout)
    notes = list(k2.notes)
    if layout.optimizer:
        notes.append(
            f"optimizer state ({len(layout.optimizer)} tensors) dropped: Keras 3 optimizer variables are not "
            "carried into a tf_keras .h5 model; it loads with a fresh optimizer"
        )
    translated = replace(
        layout,
        model_config={"schema": "keras2", "config": k2.config},
        training_config=k2.training_config,
        optimizer=(),
    )
    return translated, notes


def write_keras3_legacy_h5(layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
    """The Keras 3 flavour of a full-model `.h5`, as Keras 3 `model.save("x.h5")` writes it.

    tf_keras cannot rebuild a Keras 3 config, so a Keras 3 source keeps its own schema: the config
    as `model.get_config()`, weight names as variable paths (no ":0"), every layer listed.
    `keras.models.load_model(path)` reads it; tf_keras's `load_weights` reads its weights.
    """
    import h5py

    from inspector.errors import require

    # A missing Keras is the user's setup, not a ckit bug: say which extra installs it.
    keras = require("keras", "tf", "Writing a Keras 3 source as an h5-model")

    from ..keras3_config import keras3_model_config
    from ..live import WeightPair, pair_weights

    k3 = keras3_model_config(layout)
    model = k3.model
    by_layer: dict[str, list[WeightPair]] = {}
    for pair in pair_weights(layout, model):
        by_layer.setdefault(pair.layer.name, []).append(pair)
    notes: list[str] = []
    with h5py.File(dst, "w") as f:
        f.attrs["backend"] = BACKEND
        f.attrs["keras_version"] = keras.__version__
        f.attrs["model_config"] = json.dumps(
            {"class_name": k3.config["class_name"], "config": k3.config["config"]}, default=_json_default
        )
        if layout.training_config:
            f.attrs["training_config"] = json.dumps(layout.training_config, default=_json_default)
        weights_group = f.create_group("model_weights")
        weights_group.attrs["backend"] = BACKEND
        weights_group.attrs["keras_version"] = keras.__version__
        save_attributes_to_hdf5_group(weights_group, "layer_names", [layer.name.encode("utf8") for layer in model.layers])
        for layer in model.layers:
            group = weights_group.create_group(layer.name)
            pairs = by_layer.get(layer.name, [])
            paths = [pair.variable.path for pair in pairs]
            save_attributes_to_hdf5_group(group, "weight_names", [p.encode("utf8") for p in paths])
            for path, pair in zip(paths, pairs):
                _check_h5_dtype(pair.ref)
                _write_dataset(group, pair.ref, layout, options, name=path)  # Keras 3 names it by variable path
        save_attributes_to_hdf5_group(weights_group.create_group(TOP_LEVEL_GROUP), "weight_names", [])
    notes.append(
        "Keras 3 source: written in Keras 3's own .h5 schema; open it with keras.models.load_model, or pass "
        "--model built with tf_keras for a tf_keras full model"
    )
    if layout.optimizer:
        notes.append(
            f"optimizer state ({len(layout.optimizer)} tensors) dropped: ckit does not write Keras 3 optimizer "
            "state into an .h5 model; it loads with a fresh optimizer"
        )
    return WriteResult(paths=(dst,), notes=tuple(notes))


H5_WEIGHTS_WRITER = H5WeightsWriter()
H5_MODEL_WRITER = H5ModelWriter()
