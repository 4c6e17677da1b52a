"""Test helper: `ModelLayout`s built from live tf_keras models, the oracle for the Keras 2 writers.

Not a test module (pytest collects only test_*.py); the writer tests import it
as `tests.converters.keras2_layouts`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from converters import zoo
from converters.layout import LayerNode, ModelLayout, WeightRef


def tf_keras_model(name: str, seed: int = 0, optimizer: bool = True) -> Any:
    """A zoo model built with tf_keras, every variable (optimizer slots too) set to non-default values."""
    import tf_keras

    model = zoo.MODELS[name](tf_keras)
    if optimizer:
        model.optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(seed)
    variables = list(model.weights) + (list(model.optimizer.variables) if optimizer else [])
    for var in variables:
        shape = tuple(var.shape)
        if var.dtype.is_integer:
            value = rng.integers(1, 50, size=shape).astype(var.dtype.as_numpy_dtype)
        else:
            # Positive values keep BatchNormalization's moving_variance meaningful.
            value = (np.abs(rng.normal(size=shape)) + 0.5).astype(var.dtype.as_numpy_dtype)
        var.assign(value)
    return model


def _ref(var: Any) -> WeightRef:
    name = var.name[:-2] if var.name.endswith(":0") else var.name
    return WeightRef(name=name, dtype=var.dtype.name, shape=tuple(var.shape), source_key=var.name)


def _node(layer: Any) -> LayerNode:
    import tf_keras

    class_name = type(layer).__name__
    if isinstance(layer, tf_keras.Model):
        children = tuple(_node(sub) for sub in layer.layers if sub.weights)
        return LayerNode(layer.name, class_name, (), children)
    if isinstance(layer, tf_keras.layers.RNN):
        return LayerNode(layer.name, class_name, (), (_node(layer.cell),))
    return LayerNode(layer.name, class_name, tuple(_ref(v) for v in layer.weights))


def layout_from_model(model: Any, *, config: bool = True, optimizer: bool = True) -> ModelLayout:
    """The layout `converters.naming` would build for this model, reading values from the live variables."""
    values = {v.name: v.numpy() for v in model.weights}
    opt_refs: tuple[WeightRef, ...] = ()
    if optimizer and model.optimizer is not None:
        opt_vars = list(model.optimizer.variables)
        values.update({v.name: v.numpy() for v in opt_vars})
        opt_refs = tuple(_ref(v) for v in opt_vars)
    layers = tuple(_node(layer) for layer in model.layers if layer.weights)
    model_config = training_config = None
    if config:
        model_config = {"schema": "keras2", "config": json.loads(model.to_json())}
        from tf_keras.src.saving.legacy import saving_utils

        # What tf_keras itself records in a full-model file's training_config attribute.
        training_config = saving_utils.model_metadata(model, include_optimizer=True).get("training_config")
    return ModelLayout(
        layers=layers,
        read=lambda key: values[key],
        optimizer=opt_refs,
        model_config=model_config,
        training_config=training_config,
        source_format="tf_keras-live",
        source_producer={"framework": "tf_keras", "version": "2.21.0"},
    )
