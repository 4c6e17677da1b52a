"""Conversions that need no Keras layer layout: flat targets and the checkpoint passthrough.

A flat target (`safetensors`, `npz`) is a map of name -> tensor; it can hold any
artifact's tensors, Keras or not (tf.Module checkpoints, TF1 Saver checkpoints,
TF Serving exports).  Names are stable and chosen by `--names` (`keras`: canonical
Keras names where the reader placed a tensor in a layer, else the variable's own
path; `keys`: every tensor by its path), as `inspector.namemap.flat_names` says;
`--map` then renames and selects.

A checkpoint converted to a checkpoint keeps its keys and its object graph
(`plan_passthrough`), so the user's own `tf.train.Checkpoint(...).restore()`
matches the output as it matched the input; only `--layout keras` asks for the
tf_keras `save_weights` layout instead (the Keras path in `convert.py`).

Both plans take the manifest and one reader; tensors stream one at a time, and
`verify` re-reads the output with ckit's own reader and compares every tensor.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from inspector.errors import CkitError, CorruptArtifact, UnsupportedFeature
from inspector.formats.object_graph import VARIABLE_SUFFIX
from inspector.formats.tf_bundle import OBJECT_GRAPH_KEY
from inspector.identity import unescape_local_name
from inspector.manifest import Manifest, TensorInfo
from inspector.namemap import NAME_SCHEMES, NameMap, flat_names, path_name
from inspector.verify import array_digest, stored_digest

from .layout import ModelLayout, WeightRef
from .writers.base import WriteOptions, WriteResult

FLAT_TARGETS = frozenset({"safetensors", "npz"})
LAYOUTS = ("keep", "keras")
GRAPH_METADATA = "ckit.object_graph"  # safetensors metadata: the source checkpoint's object graph, base64
# Sources whose keys and object graph a tf-checkpoint output can keep as they are.
_PASSTHROUGH_SOURCES = ("tf-checkpoint", "saved-model")


@dataclass(frozen=True)
class FlatEntry:
    """One tensor of the output: its name there and the source tensor it comes from."""

    name: str
    tensor: TensorInfo

    @property
    def ref(self) -> WeightRef:
        t = self.tensor
        return WeightRef(name=self.name, dtype=t.dtype, shape=t.shape, source_key=t.key)


def select(
    manifest: Manifest, weights_only: bool, keep_other: bool
) -> tuple[list[TensorInfo], list[str]]:
    """The tensors that travel, by role, and notes on those left behind."""
    roles = {"weight"} | ({"other"} if keep_other else set()) | (set() if weights_only else {"optimizer", "counter"})
    kept = [t for t in manifest.tensors if t.role in roles]
    notes = []
    left: dict[str, list[TensorInfo]] = {}
    for tensor in manifest.tensors:
        if tensor.role not in roles and tensor.role != "metadata":
            left.setdefault(tensor.role, []).append(tensor)
    for role, tensors in sorted(left.items()):
        why = "left out as asked (--weights-only)" if role in ("optimizer", "counter") else "not model state"
        notes.append(f"{len(tensors)} {role} tensor(s) {why} (e.g. '{tensors[0].key}')")
    return kept, notes


def _apply_map(entries: list[FlatEntry], name_map: NameMap | None) -> tuple[list[FlatEntry], list[str]]:
    if name_map is None:
        return entries, []
    result = name_map.apply_all([e.name for e in entries])
    kept = [FlatEntry(result[e.name], e.tensor) for e in entries if result[e.name] is not None]
    renamed = sum(1 for e in entries if result[e.name] not in (None, e.name))
    excluded = len(entries) - len(kept)
    return kept, [f"--map {name_map.source}: {renamed} tensor(s) renamed, {excluded} excluded"]


@dataclass
class FlatPlan:
    """What a flat or passthrough conversion writes, and how it proves it afterwards."""

    target: str
    manifest: Manifest
    read: Callable[[str], np.ndarray]
    entries: list[FlatEntry]
    notes: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    graph: bytes | None = None  # the object graph a passthrough checkpoint keeps (rewritten)
    out_keys: dict[str, str] = field(default_factory=dict)  # passthrough: output key per entry name
    digests: dict[str, tuple[str, tuple[int, ...], int]] = field(default_factory=dict)

    @property
    def refs(self) -> list[WeightRef]:
        return [e.ref for e in self.entries]

    def _read(self, key: str) -> np.ndarray:
        value = self.read(key)
        self.digests[key] = array_digest(np.asarray(value))
        return value

    def layout(self) -> ModelLayout:
        """A layer-less layout: only a carrier of `read` for the writers' streaming helpers."""
        return ModelLayout(layers=(), read=self._read, source_format=self.manifest.format,
                           source_producer=dict(self.manifest.producer))

    def write(self, dst: Path, options: WriteOptions) -> WriteResult:
        items = [(e.name, e.ref) for e in self.entries]
        if self.target == "safetensors":
            from .writers.safetensors import write_safetensors

            write_safetensors(Path(dst), items, self.layout(), self.metadata, options)
            return WriteResult(paths=(Path(dst),))
        if self.target == "npz":
            from .writers.npz import write_npz

            return write_npz(items, self.layout(), Path(dst), options)
        from .writers.tf_bundle import write_passthrough

        items = [(self.out_keys[e.name], e.ref) for e in self.entries]
        return write_passthrough(items, self.graph, self.layout(), Path(dst), options)

    def expected_keys(self) -> dict[str, FlatEntry]:
        if self.target == "tf-checkpoint":
            return {self.out_keys[e.name]: e for e in self.entries}
        return {e.name: e for e in self.entries}

    def verify(self, written: Path) -> None:
        """Re-read the output with ckit's reader: the same tensors, every one equal to its source."""
        from inspector.registry import open_artifact

        expected = self.expected_keys()
        try:
            with open_artifact(written, self.target) as reader:
                by_key = {t.key: t for t in reader.manifest.tensors}
                produced = {key for key, t in by_key.items() if t.role != "metadata"}
                if produced != set(expected):
                    extra, missing = sorted(produced - set(expected)), sorted(set(expected) - produced)
                    raise CorruptArtifact(
                        f"verification failed: {written.name} holds other tensors than were written (unexpected "
                        f"{extra[:3]}, missing {missing[:3]}); this is a ckit bug: please report it "
                        "(--no-verify skips the check)"
                    )
                if self.graph is not None:
                    stored = np.asarray(reader.read_tensor(OBJECT_GRAPH_KEY)).reshape(-1)
                    if stored.size != 1 or bytes(stored[0]) != self.graph:
                        raise CorruptArtifact(
                            f"verification failed: the object graph in {written.name} is not the one written; this "
                            "is a ckit bug: please report it (--no-verify skips the check)"
                        )
                for key, entry in expected.items():
                    got = stored_digest(reader, by_key[key])
                    want = self.digests.get(entry.tensor.key)
                    if want is None or got != want:
                        raise CorruptArtifact(
                            f"verification failed: '{key}' in the output differs from source '{entry.tensor.key}' "
                            f"(dtype/shape/CRC32C {got} vs {want}); this is a ckit bug: please report it "
                            "(--no-verify skips the check)"
                        )
        except CkitError:
            raise
        except Exception as exc:  # the output must be readable by ckit itself
            raise CorruptArtifact(f"verification failed: ckit cannot re-read its own output {written.name}: {exc}") from exc


def plan_flat(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    target: str,
    *,
    names: str = "keras",
    name_map: NameMap | None = None,
    weights_only: bool = False,
) -> FlatPlan:
    """Any artifact's tensors as a flat safetensors or npz file under stable names."""
    tensors, notes = select(manifest, weights_only, keep_other=False)
    by_key, name_notes = flat_names(manifest, tensors, names)
    entries, map_notes = _apply_map([FlatEntry(by_key[t.key], t) for t in tensors], name_map)
    notes = name_notes + map_notes + notes
    has_graph = any(t.key == OBJECT_GRAPH_KEY for t in manifest.tensors)
    if has_graph and not (names == "keys" and target == "safetensors"):
        notes.append(
            f"the checkpoint's object graph is not carried: {target} holds tensors only "
            "(safetensors with --names keys keeps it, to convert back into the same checkpoint)"
        )
    if not entries:
        raise UnsupportedFeature(
            f"{manifest.path}: no tensors left to write (roles: {manifest.totals['by_role']}); expected at least "
            "one model weight after --weights-only and --map; loosen the map or drop --weights-only"
        )
    from .writers.safetensors import producer_name

    metadata = {"producer": producer_name(), "ckit.names": names, "source_format": manifest.format}
    if manifest.producer:
        metadata["source_producer"] = json.dumps(dict(manifest.producer), sort_keys=True, default=str)
    roles = {e.name: e.tensor.role for e in entries if e.tensor.role != "weight"}
    if roles:
        metadata["ckit.roles"] = json.dumps(roles, sort_keys=True)
    if has_graph and names == "keys" and target == "safetensors":
        # Path names plus the graph are the whole checkpoint: kept in the metadata, the file converts
        # back into a checkpoint that the source's tf.train.Checkpoint code restores.
        renamed = {e.tensor.key: e.name + VARIABLE_SUFFIX for e in entries if e.tensor.key.endswith(VARIABLE_SUFFIX)}
        graph, _ = _rewrite_graph(_graph_bytes(read), renamed, manifest.path)
        metadata[GRAPH_METADATA] = base64.b64encode(graph).decode("ascii")
    layers = _layer_record(manifest, entries)
    if layers is not None:
        # safetensors keeps names, not order: the model's layers and weight order go on record so the
        # file converts onward into Keras formats without guessing.
        metadata["ckit.layers"] = json.dumps(layers)
        metadata["ckit.order"] = json.dumps([name for _, names_ in layers for name in names_])
    return FlatPlan(target=target, manifest=manifest, read=read, entries=entries, notes=notes, metadata=metadata)


def _layer_record(manifest: Manifest, entries: list[FlatEntry]) -> list[list[Any]] | None:
    """[[layer, [output names in weight order]], ...] when every placed weight travels, else None."""
    out_name = {e.tensor.key: e.name for e in entries}
    record = []
    for layer, tensors in manifest.layer_weights():
        if not tensors:
            continue
        if any(t.key not in out_name for t in tensors):
            return None
        record.append([layer, [out_name[t.key] for t in tensors]])
    return record or None


def wants_passthrough(manifest: Manifest, target: str, layout: str | None, model: str | None) -> bool:
    """A checkpoint (or a non-Keras SavedModel's variables) written as a checkpoint keeps its own layout."""
    if target != "tf-checkpoint" or layout == "keras" or model is not None:
        return False
    if manifest.format == "tf-checkpoint":
        return True
    if manifest.format in FLAT_TARGETS and layout is None and (not manifest.layers or _has_recorded_graph(manifest)):
        # A checkpoint ckit flattened with its graph goes back to that checkpoint; flat tensors no Keras
        # model owns become a name-based checkpoint, as a TF1 Saver reads it.
        return True
    return manifest.format == "saved-model" and (layout == "keep" or not manifest.layers)


def plan_passthrough(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    *,
    name_map: NameMap | None = None,
    weights_only: bool = False,
) -> FlatPlan:
    """A checkpoint's tensors under their own keys, with its object graph (pruned/renamed to match)."""
    tensors, notes = select(manifest, weights_only, keep_other=True)
    entries = [FlatEntry(path_name(t), t) for t in tensors]
    entries, map_notes = _apply_map(entries, name_map)
    notes = map_notes + notes
    if not entries:
        raise UnsupportedFeature(
            f"{manifest.path}: no tensors left to write; expected at least one after --weights-only and --map; "
            "loosen the map or drop --weights-only"
        )
    # A TF2 key is `<path>/.ATTRIBUTES/VARIABLE_VALUE`: a renamed path keeps the suffix.
    keys = {e.name: e.name + VARIABLE_SUFFIX if e.tensor.key.endswith(VARIABLE_SUFFIX) else e.name for e in entries}
    graph = None
    recorded = _recorded_graph(manifest)
    if recorded is not None:
        # A flat file ckit wrote with path names keeps the checkpoint's graph: the keys it lists come back.
        listed = _attribute_keys(recorded, manifest.path)
        keys = {e.name: e.name + VARIABLE_SUFFIX if e.name + VARIABLE_SUFFIX in listed else e.name for e in entries}
        graph, _ = _rewrite_graph(recorded, {k: k for k in keys.values()}, manifest.path)
        notes.append(f"the object graph recorded in the {manifest.format} file is restored with its keys")
    elif any(t.key == OBJECT_GRAPH_KEY for t in manifest.tensors):
        graph, graph_note = _rewrite_graph(
            _graph_bytes(read), {e.tensor.key: keys[e.name] for e in entries}, manifest.path
        )
        if graph_note:
            notes.append(graph_note)
    elif manifest.format == "saved-model":
        notes.append("the SavedModel's variables have no object graph: written as a name-based (TF1) checkpoint")
    elif manifest.format in FLAT_TARGETS and recorded is None:
        notes.append(
            f"{manifest.format} holds no object graph: written as a name-based (TF1) checkpoint keyed by the "
            "tensor names (tf.compat.v1.train.Saver and tf.train.load_checkpoint read it)"
        )
    partitioned = manifest.metadata.get("partitioned_variables") or manifest.metadata.get("variables_partitioned_variables")
    if partitioned:
        notes.append(f"{len(partitioned)} partitioned variable(s) written whole (e.g. '{partitioned[0]}')")
    return FlatPlan(target="tf-checkpoint", manifest=manifest, read=read, entries=entries, notes=notes, graph=graph,
                    out_keys=keys)


def _graph_bytes(read: Callable[[str], np.ndarray]) -> bytes:
    return bytes(np.asarray(read(OBJECT_GRAPH_KEY)).reshape(-1)[0])


def _has_recorded_graph(manifest: Manifest) -> bool:
    return bool((manifest.metadata.get("safetensors_metadata") or {}).get(GRAPH_METADATA))


def _recorded_graph(manifest: Manifest) -> bytes | None:
    """The object graph a ckit safetensors file recorded in its metadata (None when there is none)."""
    text = (manifest.metadata.get("safetensors_metadata") or {}).get(GRAPH_METADATA)
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CorruptArtifact(
            f"{manifest.path}: metadata '{GRAPH_METADATA}' is not base64; expected the object graph ckit recorded; "
            "convert from the original checkpoint, or to a flat target"
        ) from None


def _attribute_keys(data: bytes, where: str) -> set[str]:
    from inspector.formats.object_graph import parse_graph

    return {a.checkpoint_key for node in parse_graph(data, where).nodes for a in node.attributes}


def _rename_edges(graph: Any, renamed: dict[str, str]) -> tuple[int, str | None]:
    """Rename the object-graph edges along each renamed key's path, so the objects are tracked under
    the new names; (edges renamed, None), or (0, why not) when the renames do not follow the paths."""
    wanted: dict[tuple[int, int], str] = {}
    for old, new in renamed.items():
        if old == new or not old.endswith(VARIABLE_SUFFIX):
            continue
        old_parts, new_parts = old[: -len(VARIABLE_SUFFIX)].split("/"), new[: -len(VARIABLE_SUFFIX)].split("/")
        if len(old_parts) != len(new_parts):
            return 0, f"'{old_parts and '/'.join(old_parts)}' becomes a path of another depth"
        node = 0
        for old_part, new_part in zip(old_parts, new_parts):
            children = graph.nodes[node].children
            index = next((i for i, c in enumerate(children) if c.local_name == unescape_local_name(old_part)), None)
            if index is None:
                return 0, f"the key '{old}' does not follow the object graph's names"
            if wanted.setdefault((node, index), unescape_local_name(new_part)) != unescape_local_name(new_part):
                return 0, f"objects along '{old}' would need two names"
            node = children[index].node_id
    changed = 0
    for (node, index), name in wanted.items():
        edge = graph.nodes[node].children[index]
        if edge.local_name != name:
            if any(c.local_name == name for c in graph.nodes[node].children):
                return 0, f"an object is already tracked as '{name}'"
            edge.local_name = name
            changed += 1
    return changed, None


def _rewrite_graph(data: bytes, renamed: dict[str, str], where: str) -> tuple[bytes, str | None]:
    """The object graph with each variable's checkpoint key renamed, dropped variables removed, and a note.

    Objects and ids stay as they are; where keys were renamed along their paths, the edges of those
    paths take the new names (so `tf.train.Checkpoint(policy=...)` restores what `actor` was saved as);
    an attribute whose tensor did not travel is removed, and `has_checkpoint_values` is recomputed
    so TensorFlow does not look for values that are gone.
    """
    from inspector.formats.object_graph import parse_graph

    graph = parse_graph(data, where)
    note = None
    if any(old != new for old, new in renamed.items()):
        changed, why_not = _rename_edges(parse_graph(data, where), renamed)
        if why_not is None:
            _rename_edges(graph, renamed)
            note = (
                f"the object graph follows the map ({changed} object name(s) changed): restore with "
                "tf.train.Checkpoint(...) under the new names"
            )
        else:
            note = (
                f"objects keep their names in the object graph ({why_not}); the renamed keys are recorded there, so "
                "the source's tf.train.Checkpoint code restores the output"
            )
    holds: set[int] = set()
    for node_id, node in enumerate(graph.nodes):
        kept = [a for a in node.attributes if a.checkpoint_key in renamed]
        for attribute in kept:
            attribute.checkpoint_key = renamed[attribute.checkpoint_key]
        if len(kept) != len(node.attributes):
            del node.attributes[:]
            for attribute in kept:
                node.attributes.add().CopyFrom(attribute)
        if kept:
            holds.add(node_id)
    # A node has values when one of its descendants holds one: walk the edges backwards.
    parents: dict[int, list[int]] = {}
    for node_id, node in enumerate(graph.nodes):
        for child in node.children:
            parents.setdefault(child.node_id, []).append(node_id)
    has_values = set(holds)
    stack = list(holds)
    while stack:
        for parent in parents.get(stack.pop(), []):
            if parent not in has_values:
                has_values.add(parent)
                stack.append(parent)
    for node_id, node in enumerate(graph.nodes):
        if node.HasField("has_checkpoint_values") or node_id not in has_values:
            node.has_checkpoint_values.value = node_id in has_values
        kept_slots = [s for s in node.slot_variables if s.slot_variable_node_id in holds]
        if len(kept_slots) != len(node.slot_variables):
            del node.slot_variables[:]
            for slot in kept_slots:
                node.slot_variables.add().CopyFrom(slot)
    return graph.SerializeToString(deterministic=True), note


def load_name_map(name_map: str | Path | NameMap | None) -> NameMap | None:
    if name_map is None or isinstance(name_map, NameMap):
        return name_map
    return NameMap.load(name_map)


def plan_conversion(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    target: str,
    *,
    model: str | None = None,
    names: str = "keras",
    name_map: NameMap | None = None,
    layout: str | None = None,
    weights_only: bool = False,
) -> FlatPlan | None:
    """The plan for a conversion that needs no Keras layout, or None for the Keras path.

    Options that only these conversions honour are refused elsewhere, rather than ignored.
    """
    if names not in NAME_SCHEMES:
        raise UnsupportedFeature(f"--names {names!r} is not known; expected one of: {', '.join(NAME_SCHEMES)}")
    if layout is not None and layout not in LAYOUTS:
        raise UnsupportedFeature(f"--layout {layout!r} is not known; expected one of: {', '.join(LAYOUTS)}")
    if layout is not None and target != "tf-checkpoint":
        raise UnsupportedFeature(
            f"--layout {layout} was given, but the target is {target}; --layout chooses a tf-checkpoint's layout "
            "only; drop it or convert to a tf-checkpoint"
        )
    if layout == "keep" and manifest.format not in _PASSTHROUGH_SOURCES:
        raise UnsupportedFeature(
            f"--layout keep was given, but {manifest.path} is {manifest.format}, which has no checkpoint layout to "
            "keep; expected a tf-checkpoint or saved-model source; drop --layout"
        )
    plan = None
    if target in FLAT_TARGETS and model is None:
        plan = plan_flat(manifest, read, target, names=names, name_map=name_map, weights_only=weights_only)
    elif wants_passthrough(manifest, target, layout, model):
        plan = plan_passthrough(manifest, read, name_map=name_map, weights_only=weights_only)
    if plan is not None:
        if manifest.metadata.get("state_file_note"):
            plan.notes.insert(0, str(manifest.metadata["state_file_note"]))
        return plan
    for given, option in ((name_map is not None, "--map"), (names != "keras", f"--names {names}")):
        if given:
            raise UnsupportedFeature(
                f"{option} was given, but {target} output from {manifest.format} is laid out as a Keras model, "
                "whose names Keras decides; expected a safetensors, npz or checkpoint-to-checkpoint conversion; "
                f"drop {option.split()[0]}"
            )
    return None


def layout_change_notes(manifest: Manifest, target: str, layout: str | None) -> tuple[str, ...]:
    """Say so when a checkpoint source is rewritten into the save_weights layout (only on request)."""
    if target == "tf-checkpoint" and layout == "keras" and manifest.format in _PASSTHROUGH_SOURCES:
        return (
            "layout changed as asked (--layout keras): written as tf_keras model.save_weights lays it out "
            "(layer_with_weights-N); restore it with model.load_weights, not the source's tf.train.Checkpoint code",
        )
    return ()


__all__ = [
    "FLAT_TARGETS", "LAYOUTS", "NAME_SCHEMES", "FlatEntry", "FlatPlan", "layout_change_notes", "load_name_map",
    "plan_conversion", "plan_flat", "plan_passthrough", "wants_passthrough",
]
