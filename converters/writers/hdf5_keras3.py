"""Writer for Keras 3 weight files: `X.weights.h5`, or sharded `X.weights.json` plus `X_0000N.weights.h5`.

Keras 3 loads these by path, not by layer name: each layer's variables live
at `layers/<snake_case class, numbered _1, _2 per container>/vars/<i>`, nested
models under `.../layers/...`, an RNN's under `.../cell/vars`.  Every layer,
with weights or not, gets a `vars` group whose `name` attribute is the layer's
own name, and the model itself gets the root `vars`; that is what
`model.save_weights` writes in Keras 3.15, and we write the same.

When the layout carries a model config, the Keras 3 model rebuilt from it
(`converters.keras3_config`) is the authority: Keras's own state walk is run
against a recording store to learn every group path.  Without a config the
paths are derived from the layer classes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from inspector.dtypes import itemsize
from inspector.errors import MappingError, UnsafeArtifact, UnsupportedFeature, require

from inspector.keras_names import (
    LAYER_VARIABLES,
    RNN_CELLS,
    WEIGHTLESS_CLASSES,
    class_for_group,
    default_cell_name,
    strip_number,
    to_snake_case,
    unique_group_names,
)

from ..layout import CONTAINER_CLASSES, RNN_CLASSES, LayerNode, ModelLayout, WeightRef, python_class
from ..live import pair_weights
from .base import WriteOptions, WriteResult

# Keras's default `max_shard_size` for `save_weights("X.weights.json")` is 5 GB (GiB).
DEFAULT_SHARD_BYTES = 5 * 1024**3

OPTIMIZER_NOTE = (
    "optimizer state was dropped: Keras 3 optimizers keep different variables than tf_keras's, "
    "so the target starts training with a fresh optimizer"
)

_PASS_MODEL = "pass --model module:function (e.g. --model yourpkg.models:build, a function that builds your training model) to name the architecture"


@dataclass(frozen=True)
class GroupPlan:
    """One `vars` group of a Keras 3 weights file."""

    path: str  # "layers/dense_1" ("" for the model's own root `vars`)
    name: str | None  # the layer's own name, stored as the group's `name` attribute
    weights: tuple[WeightRef, ...]  # written as vars/0, vars/1, ... in this order


class Keras3WeightsWriter:
    """`keras3-weights`: what Keras 3 `model.save_weights` writes, minus optimizer state."""

    name = "keras3-weights"
    description = "Keras 3 weights (.weights.h5, or sharded .weights.json + .weights.h5 shards)"
    suffixes = (".weights.h5", ".weights.json")

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        dst = Path(dst)
        if not dst.name.endswith(self.suffixes):
            raise UnsupportedFeature(
                f"keras3-weights writes files named '*.weights.h5' or '*.weights.json' (Keras 3 refuses "
                f"other names), got '{dst.name}'; rename the destination"
            )
        plan, notes = plan_for_layout(layout)
        notes += optimizer_notes(layout)
        if options.max_shard_size is not None and not dst.name.endswith(".weights.json"):
            raise UnsupportedFeature(sharded_name_message(dst.name))
        if not dst.name.endswith(".weights.json"):
            write_h5(plan, layout.read, dst, options.progress)
            return WriteResult(paths=(dst,), notes=tuple(notes))
        index = dst
        limit = options.max_shard_size or DEFAULT_SHARD_BYTES
        paths = write_sharded(plan, layout.read, index, limit, options.progress)
        return WriteResult(paths=tuple(paths), notes=tuple(notes))


KERAS3_WEIGHTS_WRITER = Keras3WeightsWriter()


def sharded_name_message(name: str) -> str:
    """Why `--max-shard-size` cannot write to `name`: Keras 3 names sharded weights X.weights.json."""
    stem = name[: -len(".weights.h5")] if name.endswith(".weights.h5") else name.rsplit(".", 1)[0]
    return (
        f"DST '{name}' names a single Keras 3 weights file, but --max-shard-size asks for shards; sharded "
        f"Keras 3 weights are an index X.weights.json plus X_00000.weights.h5, ... shards, so DST must end "
        f"with .weights.json: rename DST (e.g. {stem}.weights.json) or drop --max-shard-size"
    )


def optimizer_notes(layout: ModelLayout) -> list[str]:
    if not layout.optimizer:
        return []
    return [f"{OPTIMIZER_NOTE} ({len(layout.optimizer)} optimizer tensors not carried)"]


def plan_for_layout(layout: ModelLayout) -> tuple[list[GroupPlan], list[str]]:
    """Group plan from the rebuilt Keras 3 model when a config travels, else from the layer classes."""
    if layout.model_config and layout.model_config.get("config"):
        if _plain_config(layout):
            # Layers whose Keras 3 groups the class alone decides (`layers/dense_1/vars`): the same
            # groups Keras writes, without importing it (which would load TensorFlow or JAX for seconds).
            return plan_from_config(layout), []
        from ..keras3_config import keras3_model_config

        try:
            k3 = keras3_model_config(layout)
        except (UnsafeArtifact, MappingError, UnsupportedFeature) as exc:
            # A weights file never runs the config, so fall back to class-derived paths: Keras's own
            # layers are placed by class numbering, which weightless custom layers do not shift.
            _refuse_unknown_variable_order(layout)
            plan = plan_from_classes(layout)
            return plan, [f"model config not used for Keras 3 weight paths ({exc}); paths derived from layer classes"]
        return plan_from_model(layout, k3.model), []
    return plan_from_classes(layout), []


def _refuse_unknown_variable_order(layout: ModelLayout) -> None:
    """Refuse a layer of a class Keras 3 does not know that holds several variables of its own.

    Keras 3 saves a layer's own variables in the order its code creates them (trainable first);
    for a custom class that code is the user's Keras 3 port, which ckit never sees, so the order
    of `vars/0..N-1` would be a guess. One variable has one order, and a layer without variables
    is only an empty group: both are placed. The classes come from the model config, so a wrapped
    layer (TimeDistributed's) or an RNN cell, which the config nests, is never mistaken for one."""
    from ..config_safety import is_custom
    from ..layouts import layer_configs

    configs = layer_configs((layout.model_config or {}).get("config"))

    def visit(nodes: Sequence[LayerNode]) -> None:
        for node in nodes:
            entry = configs.get(node.name)
            if entry is not None and len(node.weights) > 1 and is_custom(dict(entry)):
                cls = str(entry.get("class_name"))
                raise MappingError(
                    f"layer '{node.name}' has class '{cls}', which Keras 3 does not know, and holds "
                    f"{len(node.weights)} variables ({', '.join(w.attribute for w in node.weights)}); Keras 3 "
                    f"saves them in the order its own code for the class creates them "
                    f"(layers/{to_snake_case(python_class(cls))}/vars/0..{len(node.weights) - 1}), which ckit "
                    f"cannot see; pass --model module:function with your Keras 3 build of the model, or convert "
                    f"to a flat target (safetensors, npz) or tf-checkpoint, which keep the names"
                )
            if node.is_container:
                visit(node.children)

    visit(layout.layers)


# Classes whose Keras 3 group is `<snake_case class>[_N]/vars` (or `.../cell/vars` for an RNN) with
# the variables in the table's order: their paths need no Keras model.
_PLAIN_CLASSES = frozenset({*LAYER_VARIABLES, *WEIGHTLESS_CLASSES, *RNN_CELLS, "InputLayer"}) - {
    cell for cell in LAYER_VARIABLES if cell.endswith("Cell")} - {"EinsumDense"}


def _plain_config(layout: ModelLayout) -> bool:
    """Whether the model config holds only plain layers and nested models, and the layout's weighted
    layers are exactly its layers of those classes (so class numbering over them is Keras's)."""
    config = (layout.model_config or {}).get("config") or {}

    def entries(node: Any) -> list[dict] | None:
        inner = node.get("config") if isinstance(node, dict) else None
        layers = inner.get("layers") if isinstance(inner, dict) else None
        return [e for e in layers if isinstance(e, dict)] if isinstance(layers, list) else None

    def plain(container: Any, nodes: Sequence[LayerNode]) -> bool:
        layers = entries(container)
        if layers is None:
            return False
        weighted = []
        for entry in layers:
            cls = entry.get("class_name")
            if cls in CONTAINER_CLASSES:
                weighted.append(entry)
            elif cls not in _PLAIN_CLASSES:
                return False
            elif cls not in WEIGHTLESS_CLASSES and cls != "InputLayer":
                weighted.append(entry)
        if len(weighted) != len(nodes):
            return False
        for entry, node in zip(weighted, nodes):
            cls = entry.get("class_name")
            name = (entry.get("config") or {}).get("name") or entry.get("name")
            if name != node.name or (node.class_name or cls) != cls:
                return False
            if cls in CONTAINER_CLASSES and not plain(entry, node.children):
                return False
        return True

    return plain(config, layout.layers)


def _entries_of(container: dict) -> list[dict]:
    layers = [e for e in ((container.get("config") or {}).get("layers") or []) if isinstance(e, dict)]
    if container.get("class_name") == "Sequential":  # Sequential.layers leaves its InputLayer out
        layers = [e for e in layers if e.get("class_name") != "InputLayer"]
    return layers


def plan_from_config(layout: ModelLayout) -> list[GroupPlan]:
    """The groups Keras 3's `save_weights` writes for a plain-layer model (`_plain_config`): every
    layer of every container in config order, weightless ones as empty `vars` groups, each named."""
    config = (layout.model_config or {}).get("config") or {}
    plan = [GroupPlan(path="", name=(config.get("config") or {}).get("name"), weights=())]

    def container(entry: dict, nodes: Sequence[LayerNode], prefix: str) -> None:
        entries = _entries_of(entry)
        weighted = iter(nodes)
        for layer, group in zip(entries, unique_group_names([str(e.get("class_name")) for e in entries])):
            cls = layer.get("class_name")
            name = (layer.get("config") or {}).get("name") or layer.get("name")
            path = f"{prefix}/{group}"
            if cls in WEIGHTLESS_CLASSES or cls == "InputLayer":
                plan.append(GroupPlan(path=path, name=name, weights=()))
                continue
            node = next(weighted)
            if cls in CONTAINER_CLASSES:
                plan.append(GroupPlan(path=path, name=name, weights=tuple(node.weights)))
                container(layer, node.children, f"{path}/layers")
                continue
            cell = RNN_CELLS.get(str(cls))
            expected = LAYER_VARIABLES.get(cell or str(cls), ())
            weights = tuple(node.flat_weights())
            known = [n for n in expected if (layer.get("config") or {}).get(_OPTIONAL_SWITCH.get(n, ""), True) is not False]
            if len(weights) != len(known):
                raise MappingError(
                    f"the Keras 3 model's layer '{name}' has {len(known)} weights, the source's layer '{node.name}' "
                    f"has {len(weights)}; {_PASS_MODEL}"
                )
            if cell:
                cell_name = node.children[0].name if len(node.children) == 1 else default_cell_name(str(cls))
                plan.append(GroupPlan(path=path, name=name, weights=()))
                plan.append(GroupPlan(path=f"{path}/cell", name=str(cell_name).rsplit("/", 1)[-1], weights=weights))
            else:
                plan.append(GroupPlan(path=path, name=name, weights=weights))

    container(config, layout.layers, "layers")
    return plan


# Config switches that leave a variable out (Dense(use_bias=False), BatchNormalization(scale=False)).
_OPTIONAL_SWITCH = {"bias": "use_bias", "gamma": "scale", "beta": "center"}


# --- paths learned from a Keras 3 model ---------------------------------------------------------


def plan_from_model(layout: ModelLayout, model: Any) -> list[GroupPlan]:
    """Run Keras's own save walk against a recording store and place each layout weight in it."""
    groups = _record_groups(model)
    slot_of: dict[int, tuple[int, int]] = {}
    for g, (_, _, values) in enumerate(groups):
        for i, value in enumerate(values):
            slot_of[id(value)] = (g, i)
    filled: list[list[WeightRef | None]] = [[None] * len(values) for _, _, values in groups]

    for pair in pair_weights(layout, model):
        var = pair.variable
        if id(var) not in slot_of:
            raise MappingError(
                f"Keras 3 does not save variable '{var.path}' of layer '{pair.layer.name}' as a plain "
                f"variable, so weight '{pair.ref.name}' has nowhere to go; {_PASS_MODEL}"
            )
        g, i = slot_of[id(var)]
        filled[g][i] = pair.ref

    plan = []
    for (path, name, _), refs in zip(groups, filled):
        missing = [i for i, r in enumerate(refs) if r is None]
        if missing:
            raise MappingError(
                f"the Keras 3 model expects {len(refs)} variables at '{path}/vars' but the source has no "
                f"value for vars/{missing[0]}; check the model config matches the weights"
            )
        plan.append(GroupPlan(path=path, name=name, weights=tuple(refs)))  # type: ignore[arg-type]
    return plan


def _record_groups(model: Any) -> list[tuple[str, str | None, list[Any]]]:
    """(path, name attribute, saved values) for each `vars` group Keras would write, in Keras's order."""
    from keras.src.saving import saving_lib

    class _RecordingStore(saving_lib.H5IOStore):
        # Subclassed only to pass `_save_state`'s isinstance check; no file is opened.
        def __init__(self) -> None:
            self.groups: list[tuple[str, str | None, list[Any]]] = []

        def __bool__(self) -> bool:
            return True

        def make(self, path, metadata=None):  # noqa: ANN001 - Keras's signature
            self.groups.append((path, (metadata or {}).get("name"), []))
            return self

        def __setitem__(self, key, value):  # noqa: ANN001
            values = self.groups[-1][2]
            if key != str(len(values)):
                raise MappingError(f"Keras 3 saved a variable under key '{key}'; ckit expects keys 0, 1, ...")
            values.append(value)

        def close(self) -> None:
            pass

    store = _RecordingStore()
    # Optimizer, loss and metric state are not carried; skip them in the walk.
    skip = {id(obj) for obj in (getattr(model, "optimizer", None),) if obj is not None}
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=skip)
    return store.groups


# --- paths derived from layer classes -----------------------------------------------------------


def plan_from_classes(layout: ModelLayout) -> list[GroupPlan]:
    """Keras 3 paths from LayerNode classes (or names), for weighted layers only.

    Groups of weightless layers are left out: Keras 3 loads a missing group as
    empty, and numbering is per class, so weightless layers of other classes
    do not shift it.
    """
    plan = [GroupPlan(path="", name=None, weights=())]
    _plan_container(layout.layers, "layers", plan)
    return plan


def _plan_container(nodes: Sequence[LayerNode], prefix: str, plan: list[GroupPlan], at: str | None = None) -> None:
    """Plan `nodes`, the members of a `layers` container under `prefix`, or one attribute layer `at` a path."""
    # An attribute layer's path is its attribute, whatever its class (which then matters only for a cell).
    classes = [python_class(node.class_name) if node.class_name else (
        _class_or_none(node.name) if at else class_from_layer_name(node.name)) for node in nodes]
    for node, class_name, group in zip(nodes, classes, unique_group_names([c or "layer" for c in classes])):
        path = at or f"{prefix}/{group}"
        if class_name in CONTAINER_CLASSES:
            plan.append(GroupPlan(path=path, name=node.name, weights=tuple(node.weights)))
            _plan_container(node.children, f"{path}/layers", plan)
        elif class_name in RNN_CLASSES:
            if node.weights and node.children:
                raise MappingError(
                    f"RNN layer '{node.name}' has weights both on itself and on a cell; Keras 3 keeps them on "
                    f"the cell only; {_PASS_MODEL}"
                )
            cell_weights = tuple(node.flat_weights())
            cell_name = node.children[0].name if len(node.children) == 1 else default_cell_name(class_name) or "cell"
            if len(node.children) > 1:
                raise MappingError(
                    f"RNN layer '{node.name}' has {len(node.children)} cells; ckit maps one cell "
                    f"(StackedRNNCells needs the model); {_PASS_MODEL}"
                )
            plan.append(GroupPlan(path=path, name=node.name, weights=()))
            plan.append(GroupPlan(path=f"{path}/cell", name=cell_name.rsplit("/", 1)[-1], weights=cell_weights))
        elif node.children and all(child.tracked_as for child in node.children):
            # Sub-layers held by attribute: Keras 3 saves each under the attribute's name without the
            # leading underscore (`query_dense`, `layer`), in the layer's own order.
            plan.append(GroupPlan(path=path, name=node.name, weights=tuple(node.weights)))
            for child in node.children:
                _plan_container([child], "", plan, f"{path}/{str(child.tracked_as).lstrip('_')}")
        elif node.children:
            raise MappingError(
                f"layer '{node.name}' ({class_name}) holds sub-layers, whose Keras 3 paths depend on its "
                f"attributes; {_PASS_MODEL}"
            )
        else:
            plan.append(GroupPlan(path=path, name=node.name, weights=tuple(node.weights)))


def class_from_layer_name(name: str) -> str:
    """Keras class of a layer from its auto-generated name ("dense_1" -> "Dense")."""
    base = strip_number(name.rsplit("/", 1)[-1])
    found = class_for_group(base) or _snake_to_class().get(base)
    if found:
        return found
    raise MappingError(
        f"layer '{name}' has no class recorded and '{base}' is not the default name of a Keras layer "
        f"class, so its Keras 3 path (layers/<class>/vars) is unknown; {_PASS_MODEL}"
    )


def _class_or_none(name: str) -> str | None:
    try:
        return class_from_layer_name(name)
    except MappingError:
        return None


_SNAKE_TO_CLASS: dict[str, str] | None = None


def _snake_to_class() -> dict[str, str]:
    """Every keras.layers class by its snake_case name, for classes inspector.keras_names does not list."""
    global _SNAKE_TO_CLASS
    if _SNAKE_TO_CLASS is None:
        keras = require("keras", "tf", "Writing Keras 3 files")
        table: dict[str, str] = {}
        for attr in dir(keras.layers):
            obj = getattr(keras.layers, attr)
            if isinstance(obj, type) and obj.__name__ == attr:
                table.setdefault(to_snake_case(attr), attr)
        _SNAKE_TO_CLASS = table
    return _SNAKE_TO_CLASS


# --- writing ------------------------------------------------------------------------------------


def _value(read: Callable[[str], Any], ref: WeightRef):
    import numpy as np

    value = np.asarray(read(ref.source_key))
    if tuple(value.shape) != tuple(ref.shape):
        raise MappingError(
            f"weight '{ref.name}' read with shape {tuple(value.shape)} but the layout says {tuple(ref.shape)}"
        )
    return value


def _put(group: Any, key: str, value: Any) -> None:
    ds = group.create_dataset(key, data=value)
    if value.dtype.name == "bfloat16":
        ds.attrs["dtype"] = "bfloat16"  # how Keras 3 marks bfloat16, which HDF5 cannot name


def _vars_group(h5: Any, path: str, name: str | None) -> Any:
    group = h5.require_group(f"{path}/vars" if path else "vars")
    if name is not None:
        group.attrs["name"] = name
    return group


def write_h5(
    plan: Sequence[GroupPlan],
    read: Callable[[str], Any],
    dst: Path,
    progress: Callable[[WeightRef, int], None] | None,
) -> None:
    """One `.weights.h5` file, tensors streamed one at a time."""
    h5py = require("h5py", None, "Writing Keras 3 weights")
    with h5py.File(dst, "w") as h5:
        for group_plan in plan:
            group = _vars_group(h5, group_plan.path, group_plan.name)
            for i, ref in enumerate(group_plan.weights):
                value = _value(read, ref)
                _put(group, str(i), value)
                if progress:
                    progress(ref, int(value.nbytes))


def write_sharded(
    plan: Sequence[GroupPlan],
    read: Callable[[str], Any],
    index: Path,
    max_shard_bytes: int,
    progress: Callable[[WeightRef, int], None] | None,
) -> list[Path]:
    """`X.weights.json` and its shards, split the way Keras 3's ShardedH5IOStore splits them."""
    h5py = require("h5py", None, "Writing Keras 3 weights")
    base = index.name[: -len(".weights.json")]
    shards: list[Path] = []
    weight_map: dict[str, Any] = {}
    total = 0.0
    current_size = 0
    h5 = None

    def new_shard() -> Any:
        path = index.with_name(f"{base}_{len(shards):05}.weights.h5")
        shards.append(path)
        return h5py.File(path, "w")

    try:
        h5 = new_shard()
        for group_plan in plan:
            # Keras creates the named group in the shard that is open when the layer is visited.
            group = _vars_group(h5, group_plan.path, group_plan.name)
            for i, ref in enumerate(group_plan.weights):
                nbytes = math.prod(ref.shape) * (itemsize(ref.dtype) or 0)
                total += nbytes
                current_size += nbytes
                if current_size > max_shard_bytes and current_size != nbytes:
                    h5.close()
                    h5 = new_shard()
                    current_size = nbytes
                    group = h5.require_group(f"{group_plan.path}/vars" if group_plan.path else "vars")
                value = _value(read, ref)
                _put(group, str(i), value)
                entry, filename = group.name, shards[-1].name
                if entry not in weight_map:
                    weight_map[entry] = filename
                else:
                    listed = weight_map[entry] if isinstance(weight_map[entry], list) else [weight_map[entry]]
                    if filename not in listed:
                        listed.append(filename)
                    weight_map[entry] = listed
                if progress:
                    progress(ref, int(value.nbytes))
    finally:
        if h5 is not None:
            h5.close()
    index.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=4))
    return [index, *shards]


def _itemsize(dtype: str) -> int:
    import numpy as np

    if dtype == "bfloat16":
        return 2
    return np.dtype(dtype).itemsize
