"""Placement-checked verification: prove that the target's own loader puts every source tensor into
the variable it came from.

Comparing output and source weights position by position proves bytes, not placement: a
TimeDistributed kernel written as `layer_with_weights-3/kernel` (tf_keras looks for
`layer_with_weights-3/layer/kernel`) or a MultiHeadAttention with query and key swapped reads
back in the same positions and passes.  So verification works by identity instead:

1. For every source weight, the identity the target loader resolves it to is derived here from the
   source's own facts (its layer, the class its config or name gives, the variable's name and
   shape) by the tracking rules of tf_keras and Keras 3 - not from the writer's plan, so a
   writer's or a mapping's mistake is not repeated.
2. The output is re-read and each tensor's identity resolved from the file itself, as the loader
   would (`inspector.identity`): the object graph of a TF checkpoint, `layer_names` +
   `weight_names` of a Keras 2 `.h5`, group paths of a Keras 3 store.
3. The tensor at each expected identity must hold exactly the bytes the writer was handed for that
   source tensor (dtype, shape, CRC32C), every written weight must be claimed, and a recurrent
   cell's bias must have the width the target cell expects.

Where the target file cannot tell the order back - a bare Keras 3 `.weights.h5` written from a
source without a model config records no layer classes or order - ckit's own layer plan is the
authority for which `layers/<class>_N` group is which layer, and a note says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from inspector import identity
from inspector import keras_names as kn
from inspector.errors import CkitError, CorruptArtifact
from inspector.manifest import Manifest, TensorInfo
from inspector.registry import open_artifact
from inspector.verify import Digest, stored_digest

from .layout import LayerNode, ModelLayout, WeightRef, python_class


_BUG = "this is a ckit bug: please report it (--no-verify skips the check)"
_LOADER = {
    "tf-checkpoint": "tf_keras load_weights",
    "saved-model": "the SavedModel loader",
    "h5-weights": "tf_keras load_weights",
    "h5-model": "load_model",
    "keras3-weights": "Keras 3 load_weights",
    "keras3-model": "keras.models.load_model",
    "safetensors": "a safetensors reader",
}
KERAS3_TARGETS = frozenset({"keras3-weights", "keras3-model"})
H5_TARGETS = frozenset({"h5-weights", "h5-model"})
PATH_TARGETS = frozenset({"tf-checkpoint", "saved-model"})

# tf_keras MultiHeadAttention tracks its projections as `_query_dense`, ...; Keras 3 groups them as
# `query_dense`, ...; the variables are named after the einsum scope (`query/kernel`).  Order: the
# layer's own `weights` order (creation order in `_build_from_signature` / `build`).
_MHA_PARTS = (("query", "_query_dense", "query_dense"), ("key", "_key_dense", "key_dense"),
              ("value", "_value_dense", "value_dense"), ("attention_output", "_output_dense", "output_dense"))
_MHA_BY_SCOPE = {scope: (tf, k3, rank) for rank, (scope, tf, k3) in enumerate(_MHA_PARTS)}
_RNN_LAYERS = frozenset({*kn.RNN_CELLS, "RNN"})
_CUDNN = frozenset({"CuDNNLSTM", "CuDNNGRU"})
_KNOWN_CLASSES = frozenset({*kn.LAYER_VARIABLES, *_RNN_LAYERS, *kn.MODEL_CLASSES, *kn.WRAPPER_CLASSES, *_CUDNN,
                            *kn.WEIGHTLESS_CLASSES, "MultiHeadAttention"})
# Classes whose Keras 3 counterpart has another name (the group name follows the Keras 3 class).
_KERAS3_CLASS = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU", "Convolution1D": "Conv1D", "Convolution2D": "Conv2D",
                 "Convolution3D": "Conv3D", "Deconvolution2D": "Conv2DTranspose", "AtrousConvolution2D": "Conv2D",
                 "SeparableConvolution2D": "SeparableConv2D"}


@dataclass(frozen=True)
class Slot:
    """Where one source weight must land."""

    ref: WeightRef
    layer: str  # the top-level layer's name
    tf_path: tuple[str, ...]  # below the top-level layer, as tf_keras tracks it: ("layer", "kernel")
    k3_owner: tuple[str, ...]  # Keras 3 groups below the layer's own group: ("cell",), ("query_dense",)
    k3_index: int  # position in that owner's `vars`
    h5_index: int  # position in the layer's `weights` (what `weight_names` pairs by position)
    gates_width: int | None = None  # a recurrent cell's bias must be this wide (gates * units)


# --- what the source says each weight is --------------------------------------------------------------


def _layer_configs(config: Any) -> list[Mapping[str, Any]]:
    inner = config.get("config") if isinstance(config, Mapping) else None
    layers = inner.get("layers") if isinstance(inner, Mapping) else inner if isinstance(inner, list) else None
    if layers is None and isinstance(config, Mapping) and isinstance(config.get("layers"), list):
        layers = config["layers"]
    return [layer for layer in (layers or []) if isinstance(layer, Mapping)]


def _name_of(entry: Mapping[str, Any]) -> str | None:
    cfg = entry.get("config") if isinstance(entry.get("config"), Mapping) else {}
    name = cfg.get("name") or entry.get("name")
    return str(name) if name else None


def _find_config(config: Any, name: str) -> Mapping[str, Any] | None:
    for entry in _layer_configs(config):
        if _name_of(entry) == name:
            return entry
    return None


def _inner(entry: Mapping[str, Any] | None, key: str = "layer") -> Mapping[str, Any] | None:
    cfg = entry.get("config") if entry and isinstance(entry.get("config"), Mapping) else {}
    inner = cfg.get(key)
    return inner if isinstance(inner, Mapping) else None


def _relative(ref: WeightRef, layer: str) -> list[str]:
    """The variable's name below its layer: `bidirectional/forward_lstm/lstm_cell/kernel` ->
    [forward_lstm, lstm_cell, kernel]; a name that does not start with the layer keeps its tail."""
    parts = ref.name.split("/")
    if layer in parts[:-1]:
        return parts[parts.index(layer) + 1:]
    return parts[1:] if len(parts) > 1 else parts


def _class_of(node: LayerNode, entry: Mapping[str, Any] | None) -> str | None:
    """The layer's class: its config says, else the mapping's class, else its default name, else its
    variables (a `recurrent_kernel` makes a recurrent layer, `forward_*` scopes a Bidirectional)."""
    found = (entry or {}).get("class_name") or node.class_name or kn.class_for_group(node.name)
    if found in _CUDNN and node.class_name and node.class_name != found:
        # The source's CuDNN layer re-laid for the target's standard layer (or back): the target's
        # class decides where its variables go, and the bias rule below checks the re-laying.
        found = node.class_name
    if found and found in _KNOWN_CLASSES:
        return str(found)
    # No class, or one ckit has no rule for (a user's LSTM subclass): the variables say what it holds.
    guessed = _class_from_variables(node)
    return guessed or (str(found) if found else None)


def _class_from_variables(node: LayerNode) -> str | None:
    refs = node.flat_weights()
    firsts = {(_relative(r, node.name) or [""])[0] for r in refs}
    if firsts and all(f.startswith(("forward_", "backward_")) for f in firsts):
        return "Bidirectional"
    if firsts and firsts <= set(_MHA_BY_SCOPE):
        return "MultiHeadAttention"
    if any(r.attribute == "recurrent_kernel" for r in refs) and len(node.children) <= 1:
        return "RNN"  # the layer itself, or it and its one cell
    return None


def _var_order(class_name: str | None, refs: Sequence[WeightRef]) -> list[WeightRef]:
    """A layer's own variables in its `weights` order: the class's order where every name is known,
    else as the source lists them."""
    names = kn.LAYER_VARIABLES.get(class_name or "")
    if names and all(r.attribute in names for r in refs):
        return sorted(refs, key=lambda r: names.index(r.attribute))
    return list(refs)


def _cell_slots(refs: Sequence[WeightRef], cell_class: str | None) -> list[tuple[WeightRef, tuple[str, ...], int]]:
    ordered = _var_order(cell_class or "LSTMCell", refs)
    return [(r, ("cell", r.attribute), i) for i, r in enumerate(ordered)]


def _gates_width(refs: Sequence[WeightRef]) -> int | None:
    recurrent = next((r for r in refs if r.attribute == "recurrent_kernel" and len(r.shape) == 2), None)
    return recurrent.shape[1] if recurrent is not None else None


@dataclass
class _Built:
    tf: tuple[str, ...]
    k3: tuple[str, ...]
    k3_index: int
    gates: int | None = None


def _layer_slots(node: LayerNode, entry: Mapping[str, Any] | None, target: str,
                 nested_groups: Callable[[LayerNode, Mapping[str, Any] | None], list[str]]) -> list[tuple[WeightRef, _Built]]:
    """The node's weights in its `weights` order, each with its path below the node."""
    cls = _class_of(node, entry)
    if cls in _CUDNN and not (entry and entry.get("class_name") in _CUDNN) and target not in H5_TARGETS:
        # CuDNN weights known only from their shapes (a weights-only file): a TF checkpoint or Keras 3
        # file is read by today's standard LSTM/GRU, whose cell takes gates x units of bias.  Only a
        # config (the source's, or the --model's) that names a CuDNN layer keeps it one.
        cls = "LSTM" if cls == "CuDNNLSTM" else "GRU"
    refs = node.flat_weights()
    if cls in kn.MODEL_CLASSES or (node.is_container and node.children):
        out: list[tuple[WeightRef, _Built]] = []
        groups = nested_groups(node, entry)
        own = _var_order(None, node.weights)
        out += [(r, _Built((r.attribute,), (), i)) for i, r in enumerate(own)]
        for j, child in enumerate(node.children):
            child_entry = _find_config(entry, child.name) if entry else None
            edge = tuple((child.tracked_as or f"layer_with_weights-{j}").split("/"))
            for ref, built in _layer_slots(child, child_entry, target, nested_groups):
                out.append((ref, _Built(edge + built.tf, ("layers", groups[j]) + built.k3, built.k3_index, built.gates)))
        return out
    if cls == "Bidirectional":
        inner = _inner(entry)
        backward = _inner(entry, "backward_layer") or inner
        parts: dict[str, list[WeightRef]] = {"forward_layer": [], "backward_layer": []}
        owners = {id(r): c.name for c in node.children for r in c.flat_weights()}
        for ref in refs:
            scope = (_relative(ref, node.name) or [""])[0]
            if not scope.startswith(("forward_", "backward_")):
                scope = owners.get(id(ref), "").rsplit("/", 1)[-1]
            direction = "backward_layer" if scope.startswith("backward_") else "forward_layer"
            parts[direction].append(ref)
        out = []
        for direction, sub_entry in (("forward_layer", inner), ("backward_layer", backward)):
            out += _wrapped(direction, parts[direction], sub_entry, target)
        return out
    if cls == "TimeDistributed":
        return _wrapped("layer", refs, _inner(entry), target)
    if cls == "MultiHeadAttention":
        def rank(ref: WeightRef) -> tuple[int, int]:
            scope = (_relative(ref, node.name) or [""])[0]
            part = _MHA_BY_SCOPE.get(scope)
            return (part[2] if part else len(_MHA_PARTS), 0 if ref.attribute == "kernel" else 1)

        out = []
        counts: dict[str, int] = {}
        for ref in sorted(refs, key=rank):
            scope = (_relative(ref, node.name) or [""])[0]
            tf_name, k3_name, _ = _MHA_BY_SCOPE.get(scope, (scope, scope, 0))
            i = counts.get(k3_name, 0)
            counts[k3_name] = i + 1
            out.append((ref, _Built((tf_name, ref.attribute), (k3_name,), i)))
        return out
    if cls in _RNN_LAYERS:
        width = _gates_width(refs)
        cell = kn.cell_class(cls, (entry or {}).get("config") if entry else None)
        return [(r, _Built(tf, ("cell",), i, width if r.attribute == "bias" else None))
                for r, tf, i in _cell_slots(refs, cell if isinstance(cell, str) else None)]
    # A CuDNN layer (tf_keras's compat.v1 CuDNNLSTM/CuDNNGRU) owns its variables itself, no cell,
    # and keeps two biases (input and recurrent): its variables go as plain ones below.
    ordered = _var_order(cls, refs)
    return [(r, _Built((r.attribute,), (), i)) for i, r in enumerate(ordered)]


def _wrapped(attribute: str, refs: Sequence[WeightRef], entry: Mapping[str, Any] | None,
             target: str) -> list[tuple[WeightRef, _Built]]:
    """The weights of a layer a wrapper holds as `attribute` (`layer`, `forward_layer`, ...)."""
    cls = (entry or {}).get("class_name")
    recurrent = cls in _RNN_LAYERS or cls in _CUDNN or (cls is None and any(r.attribute == "recurrent_kernel" for r in refs))
    if recurrent:
        width = _gates_width(refs)
        return [(r, _Built((attribute,) + tf, (attribute, "cell"), i, width if r.attribute == "bias" else None))
                for r, tf, i in _cell_slots(refs, None)]
    ordered = _var_order(str(cls) if cls else None, refs)
    return [(r, _Built((attribute, r.attribute), (attribute,), i)) for i, r in enumerate(ordered)]


# --- Keras 3 group names ----------------------------------------------------------------------------


def _keras3_class(class_name: str | None) -> str:
    return python_class(_KERAS3_CLASS.get(class_name or "", class_name or ""))


def _container_groups(entries: list[Mapping[str, Any]], sequential: bool) -> dict[str, str]:
    """Layer name -> Keras 3 group (`dense_1`) for one container's config: numbered per class over
    all its layers in order, weightless ones included (a Sequential's InputLayer is not a layer)."""
    if sequential:
        entries = [e for e in entries if e.get("class_name") != "InputLayer"]
    classes = [_keras3_class(str(e.get("class_name", ""))) for e in entries]
    return {(_name_of(e) or ""): group for e, group in zip(entries, kn.unique_group_names(classes))}


# --- expected slots -----------------------------------------------------------------------------------


def _as_named_by_source(layout: ModelLayout, source_names: Mapping[str, str]) -> ModelLayout:
    """The layout with each weight named as the SOURCE names the tensor it reads, where that name says
    which variable it is: a mapping that paired a name with another tensor's value (query with key,
    forward with backward) is then placed by what the value is, not by what it was called."""
    def rename(ref: WeightRef) -> WeightRef:
        name = source_names.get(ref.source_key)
        # Only a name that ends in the same variable (`kernel`) speaks for it; `vars/3` or a Keras 1
        # `dense_1_W` says nothing the mapping's name does not.
        if not name or _GENERIC.search(name) or name.rsplit("/", 1)[-1] != ref.attribute:
            return ref
        return replace(ref, name=name)

    def walk(node: LayerNode) -> LayerNode:
        return replace(node, weights=tuple(rename(r) for r in node.weights), children=tuple(walk(c) for c in node.children))

    return replace(layout, layers=tuple(walk(n) for n in layout.layers))


_GENERIC = re.compile(r"(^|/)vars/\d+$")


def expected_slots(layout: ModelLayout, config: Mapping[str, Any] | None, target: str,
                   source_names: Mapping[str, str] | None = None) -> tuple[list[Slot], dict[str, str], list[str]]:
    """Every layout weight's slot, the Keras 3 group of each top-level layer, and notes."""
    notes: list[str] = []
    if source_names:
        layout = _as_named_by_source(layout, source_names)
    top_entries = _layer_configs(config) if config else []
    top_groups = _container_groups(top_entries, (config or {}).get("class_name") == "Sequential") if top_entries else {}
    planned = [node.name for node in layout.layers if node.name not in top_groups]
    if planned and target in KERAS3_TARGETS:
        # No config names these layers' classes and order: ckit's own plan (classes from the mapping,
        # in the source's order) decides their groups.
        classes = [_keras3_class(_class_of(n, None)) for n in layout.layers]
        fallback = dict(zip([n.name for n in layout.layers], kn.unique_group_names(classes)))
        for name in planned:
            top_groups[name] = fallback[name]
        if target == "keras3-weights":
            notes.append(
                "verified against ckit's layer plan for the Keras 3 group names (layers/<class>_N): the source "
                "records no model config, and a bare .weights.h5 does not record which layer each group is"
            )

    def nested_groups(node: LayerNode, entry: Mapping[str, Any] | None) -> list[str]:
        entries = _layer_configs(entry) if entry else []
        by_name = _container_groups(entries, (entry or {}).get("class_name") == "Sequential") if entries else {}
        if all(child.name in by_name for child in node.children):
            return [by_name[child.name] for child in node.children]
        classes = [_keras3_class(_class_of(child, None)) for child in node.children]
        return kn.unique_group_names(classes)

    slots: list[Slot] = []
    for node in layout.layers:
        entry = _find_config(config, node.name) if config else None
        for i, (ref, built) in enumerate(_layer_slots(node, entry, target, nested_groups)):
            slots.append(Slot(ref=ref, layer=node.name, tf_path=built.tf, k3_owner=built.k3,
                              k3_index=built.k3_index, h5_index=i, gates_width=built.gates))
    return slots, top_groups, notes


# --- checking the output ------------------------------------------------------------------------------


def _fail(slot: Slot, where: str, target: str, problem: str) -> CorruptArtifact:
    return CorruptArtifact(
        f"verification failed: source '{slot.ref.source_key}' ({slot.ref.name}) must be at '{where}', where "
        f"{_LOADER.get(target, 'the loader')} looks for it, but {problem}; {_BUG}"
    )


def verify_output(layout: ModelLayout, digests: Mapping[str, Digest], written: Path, target: str,
                  config: Mapping[str, Any] | None,
                  source_names: Mapping[str, str] | None = None) -> tuple[dict[str, int], int, list[str]]:
    """Re-read `written` and prove every layout weight sits where the target loader finds it.

    Returns the output's tensor count by role, their bytes, and notes.  Raises CorruptArtifact naming the
    first misplaced or differing tensor.
    """
    try:
        with open_artifact(written, target) as reader:
            out = reader.manifest
            if target == "keras3-model":
                config = (out.metadata.get("model_config") or out.metadata.get("config") or config)
            slots, groups, notes = expected_slots(layout, config, target, source_names)
            resolve = _resolver(out, reader.read_tensor, target, written, groups, layout)
            claimed: set[str] = set()
            for slot in slots:
                where, tensor, problem = resolve(slot)
                if tensor is None:
                    raise _fail(slot, where, target, problem or "the output has no tensor there")
                if slot.gates_width is not None and tuple(slot.ref.shape) not in ((slot.gates_width,), (2, slot.gates_width)):
                    raise _fail(slot, where, target, (
                        f"its value has shape {list(slot.ref.shape)} and the target cell's bias is "
                        f"[{slot.gates_width}] (gates x units from the recurrent kernel): a CuDNN-layout bias "
                        "must be converted, not copied"))
                got = stored_digest(reader, tensor)
                want = digests.get(slot.ref.source_key)
                if want is None or got != want:
                    raise _fail(slot, where, target, (
                        f"'{tensor.key}' there holds dtype/shape/CRC32C {got}, the source {want}"))
                claimed.add(tensor.key)
            stray = [t for t in out.tensors if t.role == "weight" and t.key not in claimed]
            if stray and target not in PATH_TARGETS:
                raise CorruptArtifact(
                    f"verification failed: the output holds {len(stray)} model weight(s) no source tensor was placed "
                    f"at (e.g. '{stray[0].key}'); expected exactly the source's {len(slots)}; {_BUG}"
                )
            _check_optimizer(out, reader, digests, layout)
            return dict(out.totals["by_role"]), int(out.totals["bytes"]), notes
    except CkitError:
        raise
    except Exception as exc:  # the output must be readable by ckit itself
        raise CorruptArtifact(f"verification failed: ckit cannot re-read its own output {written.name}: {exc}") from exc


def _check_optimizer(out: Manifest, reader: Any, digests: Mapping[str, Digest], layout: ModelLayout) -> None:
    """Every optimizer tensor written holds the bytes of a source optimizer tensor (a learning rate
    taken from the training config excepted: it has no tensor in the source)."""
    available: dict[Digest, int] = {}
    for ref in layout.optimizer:
        if ref.source_key in digests:
            d = digests[ref.source_key]
            available[d] = available.get(d, 0) + 1
    for tensor in out.by_role("optimizer"):
        got = stored_digest(reader, tensor)
        if available.get(got, 0) > 0:
            available[got] -= 1
        elif not (tensor.name.rsplit("/", 1)[-1] in ("learning_rate", "lr", "_learning_rate") and not tensor.shape):
            raise CorruptArtifact(
                f"verification failed: optimizer tensor '{tensor.key}' in the output matches no source optimizer "
                f"tensor (dtype/shape/CRC32C {got}); {_BUG}"
            )


def _resolver(out: Manifest, read: Callable[[str], Any], target: str, written: Path, groups: Mapping[str, str],
              layout: ModelLayout) -> Callable[[Slot], tuple[str, TensorInfo | None, str | None]]:
    by_key = identity.tensors_by_key(out.tensors)
    if target in PATH_TARGETS:
        graph = identity.object_graph_of(out, read, written.name)
        if graph is not None and (target == "tf-checkpoint" or out.producer.get("framework") == "tf_keras"):
            paths = identity.checkpoint_paths(graph, written.name)
            by_path = {path: by_key.get(key) for path, key in paths.items()}
            tops = {node.name: tuple((node.tracked_as or f"layer_with_weights-{k}").split("/"))
                    for k, node in enumerate(layout.layers)}

            def at_path(slot: Slot) -> tuple[str, TensorInfo | None, str | None]:
                where = "/".join(tops[slot.layer] + slot.tf_path)
                tensor = by_path.get(where)
                if tensor is None:
                    near = [p for p, t in by_path.items() if t is not None and p.startswith("/".join(tops[slot.layer]) + "/")]
                    return where, None, f"the output's object graph has no variable there (under that layer it tracks {sorted(near)[:6]})"
                return where, tensor, None

            return at_path
        return _by_name(out)  # a SavedModel exported by Keras 3 tracks another graph: names decide
    if target in H5_TARGETS:
        slots, order = identity.h5_positions(out)
        expected_order = [node.name for node in layout.layers]
        if order != expected_order:
            raise CorruptArtifact(
                f"verification failed: the output lists its layers with weights as {order[:8]}, expected "
                f"{expected_order[:8]} (the loader pairs them with the model's layers by position); {_BUG}"
            )

        def at_position(slot: Slot) -> tuple[str, TensorInfo | None, str | None]:
            where = f"layer '{slot.layer}' weight {slot.h5_index}"
            tensor = slots.get(f"{slot.layer}#{slot.h5_index}")
            return where, tensor, None if tensor else "the layer's weight_names list no weight there"

        return at_position
    if target in KERAS3_TARGETS:
        paths = identity.keras3_paths(out)

        def at_group(slot: Slot) -> tuple[str, TensorInfo | None, str | None]:
            group = groups.get(slot.layer)
            where = "/".join(("layers", str(group)) + slot.k3_owner + ("vars", str(slot.k3_index)))
            tensor = paths.get(where)
            if tensor is None:
                prefix = "/".join(("layers", str(group))) + "/"
                near = sorted(p for p in paths if p.startswith(prefix))
                return where, None, f"the output has no dataset there (that layer's group holds {near[:6]})"
            return where, tensor, None

        return at_group
    return _by_name(out)


def _by_name(out: Manifest) -> Callable[[Slot], tuple[str, TensorInfo | None, str | None]]:
    """Formats that store tensors by canonical name (safetensors): the name is the identity."""
    weights = [t for t in out.tensors if t.role == "weight"]
    names: dict[str, TensorInfo | None] = {}
    tails: dict[str, TensorInfo | None] = {}
    for tensor in weights:
        names[tensor.name] = None if tensor.name in names else tensor  # a name twice decides nothing
        parts = tensor.name.split("/")
        # A model's or nested model's name in front (`sequential/dense/kernel`, `head/dense/kernel`):
        # Keras 3 exports name variables by path.
        for i in range(1, len(parts) - 1):
            tail = "/".join(parts[i:])
            tails[tail] = None if tail in tails else tensor

    def by_name(slot: Slot) -> tuple[str, TensorInfo | None, str | None]:
        name = slot.ref.name
        tensor = names[name] if name in names else tails.get(name)
        if tensor is None and name.count("/") >= 2:  # the source's path had the model's name in front
            short = name.split("/", 1)[1]
            tensor = names[short] if short in names else tails.get(short)
        return slot.ref.name, tensor, None if tensor else "no tensor of the output has that name once"

    return by_name


def output_counts(written: Path, target: str) -> tuple[dict[str, int], int] | None:
    """Tensors by role and bytes of an output that was not verified (its manifest only; no bytes read)."""
    try:
        with open_artifact(written, target) as reader:
            totals = reader.manifest.totals
            return dict(totals["by_role"]), int(totals["bytes"])
    except Exception:  # noqa: BLE001 - counting must not fail a conversion the user chose not to verify
        return None
