"""Layout rules: how each family of Keras layers holds its weights, one module per family.

`converters.naming` builds one plain `LayerNode` per top-level layer from the readers' canonical
names.  Each rule module here has one entry point, `refine(node, ctx) -> LayerNode`, that rewrites
the nodes of its family into the layout the target's loader expects, and `refine` runs them in order:

- `keras1`: Keras 1 weight names and layouts (`dense_1_W`, LSTM gates stored apart)
- `cudnn`: CuDNNLSTM / CuDNNGRU weights to and from the standard LSTM / GRU layout
- `wrappers`: RNN cells, `TimeDistributed` (its layer tracked as `layer`)
- `composite`: layers that own sub-layers by attribute (MultiHeadAttention), in their own order

A rule that cannot convert a layer faithfully raises `UnsupportedFeature` naming the layer; nothing
is written then.  Values that a rule computes (a merged LSTM kernel, a re-laid CuDNN bias) are
`Derived` weights: the layout's reader computes them from their source tensors on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..layout import LayerNode, WeightRef

# Targets whose loader is Keras 3 (which has no CuDNN layers and converts nothing on load).
KERAS3_TARGETS = frozenset({"keras3-weights", "keras3-model"})


class Derived:
    """Weights computed from source tensors: each gets a key that the layout's reader resolves."""

    PREFIX = "ckit-derived:"

    def __init__(self) -> None:
        self._ops: dict[str, tuple[tuple[str, ...], Callable[[list[Any]], Any]]] = {}

    def add(self, name: str, dtype: str, shape: Sequence[int], sources: Sequence[WeightRef],
            op: Callable[[list[Any]], Any]) -> WeightRef:
        key = f"{self.PREFIX}{len(self._ops)}:{name}"
        self._ops[key] = (tuple(s.source_key for s in sources), op)
        return WeightRef(name=name, dtype=dtype, shape=tuple(int(d) for d in shape), source_key=key)

    def __bool__(self) -> bool:
        return bool(self._ops)

    def reader(self, read: Callable[[str], Any]) -> Callable[[str], Any]:
        """`read`, extended to the derived keys (one derived value at a time, like any tensor)."""
        ops = dict(self._ops)

        def derived_read(key: str) -> Any:
            if key in ops:
                sources, op = ops[key]
                return op([derived_read(s) for s in sources])
            return read(key)

        return derived_read


@dataclass
class Context:
    """What a rule may know about one top-level layer besides its weights."""

    config: Mapping[str, Any] | None = None  # the layer's own config (`{"class_name", "config"}`), when known
    keras_version: str | None = None  # of the source file ("1" for Keras 1 files, which record none)
    target: str | None = None  # the format being written, when the caller says
    derived: Derived = field(default_factory=Derived)
    # source key -> the object path below the top-level layer in a TF checkpoint (`["layer", "kernel"]`)
    tracked_paths: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def layer_config(self) -> Mapping[str, Any]:
        inner = (self.config or {}).get("config")
        return inner if isinstance(inner, Mapping) else {}


def refine(node: LayerNode, ctx: Context) -> LayerNode:
    """Run every rule family over one top-level layer (and, through the rules, its sub-layers)."""
    from . import composite, cudnn, keras1, wrappers

    for rule in (keras1, cudnn, wrappers, composite):
        node = rule.refine(node, ctx)
    return node


def layer_configs(model_config: Any) -> dict[str, Mapping[str, Any]]:
    """Layer name -> its `{"class_name", "config"}` entry, for every layer of a model config at any
    depth (nested models included; Keras <= 2.1 Sequential configs are bare lists of layers)."""
    found: dict[str, Mapping[str, Any]] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            layers = node
        elif isinstance(node, Mapping):
            inner = node.get("config")
            layers = inner if isinstance(inner, list) else (inner.get("layers") if isinstance(inner, Mapping) else None)
        else:
            return
        for layer in layers or []:
            if not isinstance(layer, Mapping):
                continue
            cfg = layer.get("config") if isinstance(layer.get("config"), Mapping) else {}
            name = cfg.get("name") or layer.get("name")
            if isinstance(name, str):
                found.setdefault(name, layer)
            if isinstance(cfg.get("layers"), list) or layer.get("class_name") in ("Sequential", "Functional", "Model"):
                visit(layer)

    visit(model_config)
    return found


def wrapped_config(config: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The config of the layer a wrapper (TimeDistributed, Bidirectional) wraps."""
    inner = ((config or {}).get("config") or {}).get("layer") if isinstance((config or {}).get("config"), Mapping) else None
    return inner if isinstance(inner, Mapping) else None
