"""Oracle loaders for tests: load an artifact with the framework's own API, as a user would."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from converters import zoo  # noqa: E402


@dataclass
class Loaded:
    loader: str  # what a user would call
    logits: np.ndarray
    layer_weights: list[list[np.ndarray]] | None  # per weighted layer, in model order (None: no Keras model)


def _layer_weights(model: Any) -> list[list[np.ndarray]]:
    return [[np.asarray(w) for w in layer.get_weights()] for layer in model.layers if layer.weights]


def _predict(model: Any, inputs: np.ndarray) -> np.ndarray:
    return np.asarray(model(inputs, training=False))


def _h5_is_keras3(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version", b"")
    return (version.decode() if isinstance(version, bytes) else str(version)).startswith("3.")


def load(target: str, path: Path, model_name: str, inputs: np.ndarray) -> Loaded:
    """Restore the model from `path` (a `target` artifact) with its framework's own loader."""
    factory = zoo.MODELS[model_name]
    path = Path(path)
    if target in ("h5-weights", "tf-checkpoint"):
        import tf_keras

        model = factory(tf_keras)
        status = model.load_weights(str(path))
        if target == "tf-checkpoint":
            # Optimizer variables of the compiled model may stay unrestored; every model weight must not.
            status.expect_partial()
        return Loaded("tf_keras model.load_weights", _predict(model, inputs), _layer_weights(model))
    if target == "h5-model" and _h5_is_keras3(path):
        import keras

        model = keras.models.load_model(str(path), compile=False)
        return Loaded("keras.models.load_model", _predict(model, inputs), _layer_weights(model))
    if target == "h5-model" or (target == "saved-model" and (path / "keras_metadata.pb").exists()):
        import tf_keras

        model = tf_keras.models.load_model(str(path), compile=False)
        return Loaded("tf_keras.models.load_model", _predict(model, inputs), _layer_weights(model))
    if target == "saved-model":
        import tensorflow as tf

        served = tf.saved_model.load(str(path)).signatures["serving_default"]
        outputs = served(tf.constant(inputs))
        return Loaded("tf.saved_model.load serving_default", np.asarray(next(iter(outputs.values()))), None)
    if target == "keras3-weights":
        import keras

        model = factory(keras)
        model.load_weights(str(path))
        return Loaded("keras model.load_weights", _predict(model, inputs), _layer_weights(model))
    if target == "keras3-model":
        import keras

        model = keras.models.load_model(str(path), compile=False)
        return Loaded("keras.models.load_model", _predict(model, inputs), _layer_weights(model))
    raise ValueError(f"no oracle loader for {target}")
