"""Pairing a layout's weights with the variables of a live Keras model (tf_keras or Keras 3).

Writers that rebuild the model (SavedModel, Keras 3 files, Keras 3 flavoured
`.h5`) all need the same answer: which source weight goes into which model
variable.  Layers pair by name when every source layer name exists in the
model, else by position over the layers that have weights (how Keras 2
loads HDF5 weights); within a layer, weights pair by position.  Counts,
shapes and dtypes are checked before any value is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from inspector.errors import MappingError

from .layout import LayerNode, ModelLayout, WeightRef

FIX = "pass --model with the architecture the weights were trained with"


@dataclass(frozen=True)
class WeightPair:
    ref: WeightRef
    variable: Any  # tf.Variable or keras.Variable
    layer: Any  # the model layer that owns `variable` (top level)


def pair_layers(nodes: Sequence[LayerNode], layers: Sequence[Any]) -> list[tuple[LayerNode, Any]]:
    """Source layers matched to model layers: by name when all names exist, else by position."""
    weighted = [layer for layer in layers if layer.weights]
    by_name = {layer.name: layer for layer in weighted}
    if all(node.name in by_name for node in nodes) and len(nodes) == len(weighted):
        return [(node, by_name[node.name]) for node in nodes]
    if len(weighted) != len(nodes):
        raise MappingError(
            f"the model has {len(weighted)} layers with weights ({', '.join(layer.name for layer in weighted)}), "
            f"the source has {len(nodes)} ({', '.join(node.name for node in nodes)}); {FIX}"
        )
    return list(zip(nodes, weighted))


def _dtype_name(variable: Any) -> str:
    # tf.Variable.dtype is a DType; a Keras 3 variable's dtype is already a string.
    return str(getattr(variable.dtype, "name", variable.dtype))


def pair_weights(layout: ModelLayout, model: Any) -> list[WeightPair]:
    """Every layout weight with the model variable it fills, checked for count, shape and dtype."""
    pairs: list[WeightPair] = []
    for node, layer in pair_layers(layout.layers, model.layers):
        refs = node.flat_weights()
        variables = list(layer.weights)
        if len(refs) != len(variables):
            raise MappingError(
                f"layer '{layer.name}' has {len(variables)} weights, the source's layer '{node.name}' has "
                f"{len(refs)}; {FIX}"
            )
        for ref, variable in zip(refs, variables):
            shape, dtype = tuple(int(d) for d in variable.shape), _dtype_name(variable)
            if shape != tuple(ref.shape) or dtype != ref.dtype:
                raise MappingError(
                    f"layer '{layer.name}': weight '{getattr(variable, 'path', variable.name)}' is "
                    f"{dtype}{list(shape)}, the source's '{ref.name}' is {ref.dtype}{list(ref.shape)}; {FIX}"
                )
            pairs.append(WeightPair(ref, variable, layer))
    return pairs
