"""The one form every conversion passes through: a model's weights as a layer tree.

Readers (in `inspector`) describe what a file holds; `converters.naming` turns
a manifest into a `ModelLayout`; writers (in `converters.writers`) turn a
`ModelLayout` into files.  N readers and M writers meet here, never N x M.

Values are not held here: each `WeightRef` names the source tensor, and
writers fetch it through `ModelLayout.read` one tensor at a time so memory
stays bounded by the largest tensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # values flow through as numpy arrays; describing a layout needs no numpy
    import numpy as np

# Class names of layers that contain other layers as a list (their children are
# layers, named by position) and of layers that hold one RNN cell.
CONTAINER_CLASSES = frozenset({"Sequential", "Functional", "Model"})
RNN_CLASSES = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN"})


def python_class(class_name: str) -> str:
    """The class name Keras 3 numbers a layer's group by (`layers/<snake_case>`): a registered custom
    class is recorded as 'package>Name', and Keras 3 takes the Python class's own name."""
    return class_name.rsplit(">", 1)[-1]


@dataclass(frozen=True)
class WeightRef:
    """One model variable, ready to be written anywhere."""

    name: str  # canonical variable name, Keras 2 style: "dense_1/kernel", "lstm/lstm_cell/kernel"
    dtype: str
    shape: tuple[int, ...]
    source_key: str  # key of the value in the source artifact (ModelLayout.read fetches it)

    @property
    def attribute(self) -> str:
        """The variable's own short name ("kernel"), as objects track it."""
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class LayerNode:
    """A layer that owns weights, directly or through sub-layers.

    `weights` are the layer's own variables in `layer.weights` order;
    `children` are sub-layers that own weights (the layers of a nested model,
    the cell of an RNN layer).  `flat_weights()` gives the order in which
    Keras lists the layer's weights (own first, then children in order),
    which is the order HDF5 `weight_names` and Keras 3 `vars/<i>` use.
    """

    name: str  # Keras layer name, e.g. "dense_1"
    class_name: str | None = None  # "Dense" when known
    weights: tuple[WeightRef, ...] = ()
    children: tuple["LayerNode", ...] = ()
    # The name under which the parent tracks this layer in a TF checkpoint, when it is not the
    # position-based `layer_with_weights-N` of a Functional/Sequential model: a subclassed model's
    # attribute ("enc"); a path through containers that hold no weights is joined with "/" ("blocks/0").
    tracked_as: str | None = None

    def flat_weights(self) -> list[WeightRef]:
        out = list(self.weights)
        for child in self.children:
            out.extend(child.flat_weights())
        return out

    @property
    def is_container(self) -> bool:
        return self.class_name in CONTAINER_CLASSES

    @property
    def is_rnn(self) -> bool:
        return self.class_name in RNN_CLASSES


@dataclass(frozen=True)
class ModelLayout:
    """What a writer needs: weighted layers in model order, plus what else may travel."""

    layers: tuple[LayerNode, ...]
    read: Callable[[str], np.ndarray]  # source_key -> array (one tensor at a time)
    optimizer: tuple[WeightRef, ...] = ()  # optimizer state, carried only where the target can hold it
    model_config: dict[str, Any] | None = None  # {"schema": "keras2"|"keras3", "config": {...}} when known
    training_config: dict[str, Any] | None = None
    source_format: str = ""
    source_producer: dict[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()  # human-readable notes of what the mapping could not carry

    def flat_weights(self) -> list[WeightRef]:
        return [w for layer in self.layers for w in layer.flat_weights()]
