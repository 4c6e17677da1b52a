"""SavedModel writer: rebuild the tf_keras model from its Keras 2 config, set its weights, `model.save(dir)`.

A SavedModel holds traced functions, which only TensorFlow can produce, so
this writer imports TensorFlow and tf_keras (lazily; the `tf` extra).  The
architecture comes from the layout's Keras 2 model config, checked for code
before anything is built: Lambda layers carry marshalled Python bytecode and
custom classes would need user code, so both are refused.  Without a config
the pipeline can build the model from `--model` and call
`write_saved_model_from_model`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspector.errors import MappingError, UnsupportedFeature, require

from ..config_safety import check_config_is_safe  # noqa: F401 - one home for the check, re-exported
from ..layout import ModelLayout
from ..live import pair_weights
from .base import WriteOptions, WriteResult, fetch
from .hdf5_keras2 import keras2_model_config



def _tf_keras() -> Any:
    require("tensorflow", "tf", "writing a SavedModel")
    return require("tf_keras", "tf", "writing a SavedModel")


def assign_weights(model: Any, layout: ModelLayout, options: WriteOptions) -> None:
    """Set every model variable from the layout, one tensor at a time, after checking them all."""
    for pair in pair_weights(layout, model):
        value = fetch(layout, pair.ref)
        pair.variable.assign(value)
        if options.progress:
            options.progress(pair.ref, int(value.nbytes))


def write_saved_model_from_model(
    model: Any, layout: ModelLayout, dst: Path, options: WriteOptions | None = None
) -> WriteResult:
    """Set `model`'s weights from `layout` and save it as a tf_keras SavedModel directory at `dst`."""
    tf_keras = _tf_keras()
    options = options or WriteOptions()
    if not isinstance(model, tf_keras.Model):
        raise MappingError(
            f"--model built a {type(model).__module__}.{type(model).__name__}, but a SavedModel is written "
            "from a tf_keras model; make the factory build with tf_keras (zoo factories take the keras module)"
        )
    assign_weights(model, layout, options)
    dst = Path(dst)
    # tf_keras logs a warning about "the loaded model" while tracing an uncompiled model for the
    # SavedModel: it names nothing the user did, so it is held back for the duration of the save.
    import logging

    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        model.save(str(dst), save_format="tf", include_optimizer=False)
    finally:
        tf_logger.setLevel(level)
    notes = []
    if layout.optimizer:
        notes.append(f"optimizer state ({len(layout.optimizer)} tensors) dropped: the SavedModel is for serving")
    if layout.training_config:
        notes.append("training config not carried: the SavedModel loads uncompiled")
    return WriteResult(paths=(dst,), notes=tuple(notes))


class SavedModelWriter:
    """tf_keras `model.save(dir)` SavedModels, rebuilt from the source's Keras 2 config."""

    name = "saved-model"
    description = "TensorFlow SavedModel directory written by tf_keras (serving signature + keras_metadata.pb)"
    suffixes = ()

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        if (layout.model_config or {}).get("schema") == "keras3":
            return write_keras3_export(layout, Path(dst), options)
        config = keras2_model_config(layout, needs="a SavedModel needs the model's architecture")
        tf_keras = _tf_keras()
        # The raw config still has the `module` / `registered_name` fields the legacy form drops.
        check_config_is_safe((layout.model_config or {}).get("config") or {}, tf_keras)
        check_config_is_safe(config, tf_keras)
        from tf_keras.src.saving import serialization_lib

        try:
            # Safe mode makes tf_keras itself refuse anything that would deserialise code.
            with serialization_lib.SafeModeScope(True):
                model = tf_keras.models.model_from_json(json.dumps(config))
        except (ValueError, TypeError, KeyError) as exc:
            raise MappingError(
                f"tf_keras could not rebuild the model from the source's config ({' '.join(str(exc).split())}); "
                "pass --model to supply the architecture"
            ) from None
        return write_saved_model_from_model(model, layout, dst, options)


def write_keras3_export(layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
    """A Keras 3 model (from its own config) exported as an inference SavedModel, as `model.export` does.

    Keras 3 writes SavedModels only through `export()` and only on the TensorFlow backend; tf_keras
    cannot rebuild a Keras 3 config, so this is the one faithful route for Keras 3 sources.
    """
    from ..keras3_config import keras3_model_config

    require("tensorflow", "tf", "writing a SavedModel")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UnsupportedFeature(
            f"a SavedModel from a Keras 3 model needs the TensorFlow backend, but KERAS_BACKEND is "
            f"'{keras.backend.backend()}'; run with KERAS_BACKEND=tensorflow"
        )
    return export_keras3_model(keras3_model_config(layout).model, layout, dst, options)


def is_keras3_model(model: Any) -> bool:
    try:
        import keras
    except ImportError:
        return False
    return isinstance(model, keras.Model) and keras.__version__.startswith("3")


def export_keras3_model(model: Any, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
    """Set a Keras 3 model's weights from `layout` and `export()` it as an inference SavedModel."""
    require("tensorflow", "tf", "writing a SavedModel")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UnsupportedFeature(
            f"a SavedModel from a Keras 3 model needs the TensorFlow backend, but KERAS_BACKEND is "
            f"'{keras.backend.backend()}'; run with KERAS_BACKEND=tensorflow"
        )
    assign_weights(model, layout, options)
    model.export(str(dst), format="tf_saved_model", verbose=False)
    notes = ["Keras 3 source: written with model.export(), an inference-only SavedModel (serving signature)"]
    if layout.optimizer:
        notes.append(f"optimizer state ({len(layout.optimizer)} tensors) dropped: the SavedModel is for serving")
    return WriteResult(paths=(dst,), notes=tuple(notes))


SAVED_MODEL_WRITER = SavedModelWriter()
