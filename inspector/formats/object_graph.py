"""Decode a checkpoint's TrackableObjectGraph into canonical names, roles, layers and weight order.

The graph (key `_CHECKPOINTABLE_OBJECT_GRAPH`, see FORMATS.md section 2) says
which object owns each variable.  Roles come from walking it: variables under
a layer of the model are weights, variables reachable from the optimizer (or
registered as its slots) are optimizer state, `save_counter`/`global_step`
are counters.  Key patterns are used only where the graph says nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter

from ..errors import CorruptArtifact
from .wire import WireError, read_object_graph

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
_COUNTER_NAMES = ("save_counter", "global_step")
_first = itemgetter(0)
_TF_KERAS_LAYER = re.compile(r"^layer_with_weights-(\d+)$")
_KERAS3_LAYER_LISTS = ("_operations", "_layers")
_KERAS3_MARKERS = ("_functional", "_operations", "_layers", "_tracked")
# A child name that marks a model (the test of `is_model` in `describe`), searched in names joined by
# newlines when no name holds one: a line that is a whole name.
_MODEL_CHILD = re.compile(r"^(?:layer_with_weights-\d+$|layer-|(?:_functional|_operations|_layers|_tracked)$)", re.M)
_NOT_LAYERS = ("optimizer", "keras_api", "save_counter", "global_step")
_KERAS2_MODEL_CHILDREN = ("train_function", "train_tf_function", "keras_api")
# Children of a tf_keras model in a SavedModel that are views or functions, not layers.
_NOT_ATTRIBUTE_LAYERS = frozenset({
    "variables", "trainable_variables", "non_trainable_variables", "regularization_losses", "weights",
    "trainable_weights", "non_trainable_weights", "signatures", "_default_save_signature", "root",
    "_all_variables", "_misc_assets",
})


# What the graph says about one checkpoint key: (name, role, layer or None, index among the layer's
# weights or None).  Plain tuples: a checkpoint of 100,000 variables has as many.
KeyInfo = tuple


@dataclass
class GraphDescription:
    """Everything the manifest takes from an object graph."""

    keys: list[KeyInfo] = field(default_factory=list)  # one per key asked about, in the same order
    layers: list[str] = field(default_factory=list)
    framework: str = "tensorflow"
    node_count: int = 0
    # layer name -> object-graph node id, so callers with more metadata (SavedModel) can rename layers
    layer_nodes: dict[str, int] = field(default_factory=dict)


def parse_graph(data: bytes, where: str):
    """Parse the serialized TrackableObjectGraph, translating protobuf's error."""
    from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

    graph = TrackableObjectGraph()
    try:
        graph.ParseFromString(bytes(data))
    except Exception:
        raise CorruptArtifact(
            f"{where}: the object graph ({OBJECT_GRAPH_KEY}) does not parse as a TrackableObjectGraph; "
            "the checkpoint is damaged"
        ) from None
    return graph


def strip_key(key: str) -> str:
    return key[: -len(VARIABLE_SUFFIX)] if key.endswith(VARIABLE_SUFFIX) else key


def describe(data: bytes, keys: list[str], where: str, layer_names: dict[int, str] | None = None) -> GraphDescription:
    """Names, roles and layer positions for `keys` from the serialized graph `data`.

    `layer_names` maps object-graph node ids to layer names known from elsewhere
    (the SavedModel's keras_metadata), used before any name guessed from the graph.
    """
    try:
        graph = read_object_graph(bytes(data))  # plain tuples: no protobuf import on `dump`'s path
    except WireError as exc:
        raise CorruptArtifact(
            f"{where}: the object graph ({OBJECT_GRAPH_KEY}) does not parse as a TrackableObjectGraph ({exc}); "
            "the checkpoint is damaged"
        ) from None
    kids = graph.children
    count = len(kids)
    layer_names = layer_names or {}

    # Children out of range are dropped once: the walks below visit nodes many times.
    ids = list(map(_first, chain.from_iterable(kids)))
    if ids and (min(ids) < 0 or max(ids) >= count):
        kids = [[c for c in k if 0 <= c[0] < count] for k in kids]

    def children(node_id: int) -> list[tuple[int, str]]:
        return kids[node_id]

    def child(node_id: int, name: str) -> int | None:
        return next((c for c, n in children(node_id) if n == name), None)

    def walk(start: int, skip: set[int]) -> list[int]:
        """Depth-first, children in stored order (the order Keras lists a layer's weights)."""
        seen: set[int] = set()
        order: list[int] = []
        stack = [start]
        while stack:
            node_id = stack.pop()
            if node_id in seen or node_id in skip:
                continue
            seen.add(node_id)
            order.append(node_id)
            stack.extend(map(_first, reversed(kids[node_id])))
        return order

    def reach(start: int, skip: set[int]) -> set[int]:
        """The nodes `walk` visits, as a set: a level at a time, each level's children gathered by
        C loops (map, chain, set) rather than a Python step per node."""
        if start in skip:
            return set()
        seen = level = {start}
        while level:
            level = set(map(_first, chain.from_iterable(map(kids.__getitem__, level))))
            level -= seen
            level -= skip
            seen |= level
        return seen

    # Checkpoint keys and full names of the variable nodes.
    key_node: dict[str, int] = {}
    full_name: dict[int, str] = {}
    for node_id, attribute_full_name, checkpoint_key in graph.attributes:
        key_node[checkpoint_key] = node_id
        if attribute_full_name and node_id not in full_name:
            full_name[node_id] = attribute_full_name
    variables = set(key_node.values())

    def is_model(node_id: int) -> bool:
        names = [n for _, n in children(node_id)]
        joined = "\n".join(names)
        if joined.count("\n") == len(names) - 1:  # one search of all names (a list node may hold 100,000)
            return _MODEL_CHILD.search(joined) is not None
        return any(_TF_KERAS_LAYER.match(n) or n.startswith("layer-") or n in _KERAS3_MARKERS for n in names)

    if count == 0:
        return GraphDescription(keys=[_without_graph(key) for key in keys], node_count=0)
    model: int | None = None
    if is_model(0):
        model = 0
    elif child(0, "model") is not None:
        model = child(0, "model")
    else:
        model = next((c for c, n in children(0) if n not in _NOT_LAYERS and is_model(c)), None)
    subclassed = False
    if model is None and any(n in _KERAS2_MODEL_CHILDREN for _, n in children(0)):
        # A subclassed tf_keras model: layers are attributes of the root.
        model, subclassed = 0, True
    if model is None:
        found = _subclassed_model(children, full_name, variables)
        if found is not None:
            model, subclassed = found, True

    optimizer_roots = {c for c, n in children(0) if n == "optimizer" or _is_optimizer(children(c))}
    if model is not None:
        optimizer_roots |= {c for c, n in children(model) if n == "optimizer"}
    # Nodes holding optimizer slot variables are optimizer state, and so are the slots.
    optimizer_roots |= {node_id for node_id, _ in graph.slots}
    slot_nodes = {slot for _, slot in graph.slots}
    optimizer_nodes: set[int] = set(slot_nodes)
    for root in optimizer_roots:
        optimizer_nodes |= reach(root, set())

    # The model's weight-owning layers, in model order.
    layer_list: list[tuple[int, str]] = []  # (node id, fallback label)
    framework = "tensorflow"
    if model is not None:
        numbered = sorted(
            (int(m.group(1)), c) for c, n in children(model) if (m := _TF_KERAS_LAYER.match(n))
        )
        if numbered:
            framework = "tf_keras"
            layer_list = [(c, f"layer_with_weights-{k}") for k, c in numbered]
        else:
            container = None
            for node_id in walk(model, optimizer_roots):
                container = next((c for c, n in children(node_id) if n in _KERAS3_LAYER_LISTS), None)
                if container is not None:
                    break
            if container is not None:
                framework = "keras3"
                items = sorted(children(container), key=lambda cn: int(cn[1]) if cn[1].isdigit() else 1 << 30)
                layer_list = [(c, f"layer-{n}") for c, n in items]
            else:
                if subclassed:
                    framework = "tf_keras"
                layer_list = [
                    (c, n) for c, n in children(model)
                    if n not in _NOT_LAYERS and n not in _KERAS2_MODEL_CHILDREN and c != model and c not in variables
                    and not (subclassed and _not_a_layer(n))
                ]

    infos: dict[int, tuple[str, int]] = {}  # weight node -> (layer, index)
    layers: list[str] = []
    layer_nodes: dict[str, int] = {}
    owned: list[tuple[int, str, list[int]]] = []
    claimed: set[int] = set()
    for layer_node, label in layer_list:
        weights = [
            n for n in walk(layer_node, optimizer_roots)
            if n in variables and n not in claimed and "seed_generator" not in full_name.get(n, "")
        ]
        if weights:
            claimed |= set(weights)
            owned.append((layer_node, label, weights))

    # Keras 3 variable paths start with the model's name ("sequential/dense/kernel"); drop it.
    drop = 0
    if framework == "keras3" or subclassed:
        firsts = {full_name.get(w, "").split("/")[0] for _, _, ws in owned for w in ws}
        if len(firsts) == 1 and all(full_name.get(w, "").count("/") >= 2 for _, _, ws in owned for w in ws):
            drop = 1
    for k, (layer_node, label, weights) in enumerate(owned):
        first = full_name.get(weights[0], "")
        if layer_node in layer_names:
            name = layer_names[layer_node]
        elif subclassed:
            name = label  # the attribute the model tracks the layer under (`self.enc`)
        elif is_model(layer_node) or not first:
            name = label
        else:
            name = first.split("/")[drop] if "/" in first else label
        if name in layer_nodes:
            name = f"{name}@{label}"
        layers.append(name)
        layer_nodes[name] = layer_node
        for index, node_id in enumerate(weights):
            infos[node_id] = (name, index)

    model_nodes = reach(model if model is not None else 0, optimizer_roots)
    counter_nodes = {c for c, n in children(0) if n in _COUNTER_NAMES}
    if model is not None:
        counter_nodes |= {c for c, n in children(model) if n in _COUNTER_NAMES}

    result: list[KeyInfo] = []
    append = result.append
    for key in keys:
        if key == OBJECT_GRAPH_KEY:
            append((key, "metadata", None, None))
            continue
        node_id = key_node.get(key)
        name = full_name.get(node_id, "") if node_id is not None else ""
        name = name or strip_key(key)
        if node_id is None:
            role = "other"
        elif node_id in infos:
            layer, index = infos[node_id]
            if subclassed and drop and name.count("/") >= 2:
                # `net/dense/kernel` -> `dense/kernel`: the Keras variable name without the model's
                # own name, as tf_keras' weights.h5 and the Keras 3 readers name the same weight.
                name = name.split("/", 1)[1]
            append((name, "weight", layer, index))
            continue
        elif node_id in optimizer_nodes:
            role = "optimizer"
        elif node_id in counter_nodes or name in _COUNTER_NAMES:
            role = "counter"
        elif "seed_generator" in name:
            role = "other"  # Keras 3 RNG state (dropout, random layers): not a model weight
        elif node_id in model_nodes and not owned:
            role = "weight"  # a model without a layer list (plain tf.Module, tf.train.Checkpoint of variables)
        else:
            role = "other"
        append((name, role, None, None))
    return GraphDescription(
        keys=result, layers=layers, framework=framework, node_count=count, layer_nodes=layer_nodes
    )


def _without_graph(key: str) -> KeyInfo:
    """A key of a graph without nodes: named after its key, role metadata for the graph itself."""
    return (key, "metadata", None, None) if key == OBJECT_GRAPH_KEY else (key.replace("/.ATTRIBUTES/VARIABLE_VALUE", ""), "other", None, None)


def _is_optimizer(children: list[tuple[int, str]]) -> bool:
    """An optimizer tracked under a name of the user's choosing (`actor_optimizer` in a custom training
    loop's tf.train.Checkpoint): tf_keras >= 2.11 and Keras 3 optimizers track `_iterations` and
    `_variables`, tf_keras' OptimizerV2 tracks `iter`."""
    names = {n for _, n in children}
    return {"_iterations", "_variables"} <= names or ("iter" in names and bool(names & {"learning_rate", "decay"}))


def _not_a_layer(local_name: str) -> bool:
    """Children of a subclassed tf_keras model that are variable lists, functions or signatures."""
    return (local_name in _NOT_ATTRIBUTE_LAYERS or local_name.startswith("__")
            or local_name.startswith("call_and_return") or local_name.endswith("_function"))


def _subclassed_model(children, full_name: dict[int, str], variables: set[int]) -> int | None:
    """The node of a subclassed Keras model saved without Keras' own markers (model.save_weights of a
    subclassed tf_keras model, or tf.train.Checkpoint(net=model)): attribute children that own
    variables named `<model>/<layer>/<var>`, all under one model name.

    From the root, a single child that owns no variable itself is stepped into (`net` in
    tf.train.Checkpoint(net=model)); the node reached is the model if its variables carry Keras names.
    """
    def owns(node_id: int) -> bool:
        return any(c in variables for c, _ in children(node_id))

    def is_list(node_id: int) -> bool:
        names = [n for _, n in children(node_id)]
        return bool(names) and all(n.isdigit() for n in names)  # a ListWrapper of variables, not a layer

    def under(node_id: int) -> list[int]:
        seen, stack, found = set(), [node_id], []
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in variables:
                found.append(n)
            stack.extend(c for c, name in children(n) if name not in _NOT_LAYERS)
        return found

    node = 0
    for _ in range(8):
        kids = [c for c, n in children(node) if n not in _NOT_LAYERS and not _not_a_layer(n) and c != node]
        holders = [c for c in kids if c not in variables and not is_list(c) and under(c)]
        if len(holders) == 1 and not owns(holders[0]) and not owns(node):
            node = holders[0]
            continue
        break
    kids = [c for c, n in children(node) if n not in _NOT_LAYERS and not _not_a_layer(n) and c != node]
    layer_kids = [c for c in kids if c not in variables and not is_list(c) and under(c)]
    if not layer_kids or owns(node):
        return None
    names = [full_name.get(v, "") for c in layer_kids for v in under(c)]
    if not names or any(n.count("/") < 2 for n in names) or len({n.split("/")[0] for n in names}) != 1:
        return None
    return node
