"""TensorFlow SavedModel directories: signatures and Keras metadata, variables via the bundle reader.

Layout (FORMATS.md section 3): `saved_model.pb` (SavedModel wrapper around
MetaGraphDefs), `variables/variables.{index,data-*}` (a tensor bundle read by
`tf_bundle.BundleReader`), and for tf_keras models `keras_metadata.pb`.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import numpy as np

from ..dtypes import TF_DTYPE_NAMES
from ..errors import CorruptArtifact, UnknownFormat
from ..manifest import Manifest, ShardInfo
from .base import ReaderBase
from .tf_bundle import BundleReader, bundle_tensors, index_path

SAVED_MODEL_PB = "saved_model.pb"
KERAS_METADATA_PB = "keras_metadata.pb"
VARIABLES_PREFIX = ("variables", "variables")
_LAYER_PATH = re.compile(r"^root\.(layer_with_weights-\d+)$")


def _directory(path: Path) -> Path:
    # Accept the saved_model.pb file itself as a name for its directory.
    return path.parent if path.name == SAVED_MODEL_PB and path.is_file() else path


def _parse(message_cls: type, path: Path, what: str) -> Any:
    message = message_cls()
    try:
        message.ParseFromString(path.read_bytes())
    except OSError as exc:
        raise CorruptArtifact(f"{path}: cannot read {what} ({exc.strerror}); expected a readable file") from None
    except Exception:
        raise CorruptArtifact(f"{path}: does not parse as {what}; the file is damaged or not a SavedModel") from None
    return message


def _tensor_spec(info: Any) -> dict[str, Any]:
    shape = None if info.tensor_shape.unknown_rank else [int(d.size) if d.size >= 0 else None for d in info.tensor_shape.dim]
    return {"dtype": TF_DTYPE_NAMES.get(int(info.dtype), f"dtype_{int(info.dtype)}"), "shape": shape, "name": info.name}


def _signatures(meta_graph: Any) -> dict[str, Any]:
    result = {}
    for name in sorted(meta_graph.signature_def):
        if name.startswith("__"):  # __saved_model_init_op is plumbing, not a callable signature
            continue
        sig = meta_graph.signature_def[name]
        result[name] = {
            "method": sig.method_name,
            "inputs": {k: _tensor_spec(v) for k, v in sorted(sig.inputs.items())},
            "outputs": {k: _tensor_spec(v) for k, v in sorted(sig.outputs.items())},
        }
    return result


class SavedModelArtifact(ReaderBase):
    """An opened SavedModel: manifest of its variables plus signatures and Keras config."""

    def __init__(self, path: Path) -> None:
        from ..protos import SavedModel

        self.directory = _directory(Path(path))
        pb = self.directory / SAVED_MODEL_PB
        if not pb.is_file():
            raise UnknownFormat(
                f"{path}: no {SAVED_MODEL_PB} found; expected a SavedModel directory (the folder that holds saved_model.pb)"
            )
        saved = _parse(SavedModel, pb, "a SavedModel protobuf")
        if not saved.meta_graphs:
            raise CorruptArtifact(f"{pb}: SavedModel holds no MetaGraphDef; expected at least one")
        meta_graph = saved.meta_graphs[0]
        producer: dict[str, Any] = {}
        metadata: dict[str, Any] = {"signatures": _signatures(meta_graph)}
        info = meta_graph.meta_info_def
        if info.tensorflow_version:
            producer["tensorflow_version"] = info.tensorflow_version
        if info.tensorflow_git_version:
            producer["tensorflow_git_version"] = info.tensorflow_git_version
        metadata["tags"] = list(info.tags)
        metadata["saved_object_graph_nodes"] = len(meta_graph.object_graph_def.nodes)
        notes: list[str] = []
        if len(saved.meta_graphs) > 1:
            # A TF1 SavedModel may hold one graph per tag set (serve, train, ...): list them all.
            metadata["meta_graphs"] = [
                {"tags": list(graph.meta_info_def.tags), "signatures": sorted(_signatures(graph))}
                for graph in saved.meta_graphs
            ]
            notes.append(f"SavedModel has {len(saved.meta_graphs)} meta graphs; signatures are from the first")

        layer_names: dict[int, str] = {}
        keras_pb = self.directory / KERAS_METADATA_PB
        records, where = _keras_records(keras_pb, meta_graph, pb)
        for node_id, node_path, identifier, text in records:
            try:
                record = json.loads(text) if text else {}
            except (ValueError, RecursionError):
                raise CorruptArtifact(
                    f"{where}: Keras metadata of node {node_path!r} is not JSON; the file is damaged"
                ) from None
            if not isinstance(record, dict):
                raise CorruptArtifact(
                    f"{where}: Keras metadata of node {node_path!r} is not a JSON object; the file is damaged"
                )
            if node_path == "root":
                producer["framework"] = "tf_keras"
                if record.get("keras_version"):
                    producer["keras_version"] = record["keras_version"]
                metadata["keras_config"] = {"class_name": record.get("class_name"), "config": record.get("config")}
                if isinstance(record.get("training_config"), dict):
                    metadata["training_config"] = record["training_config"]
                metadata["keras_identifier"] = identifier
                metadata["keras_metadata_in"] = KERAS_METADATA_PB if where == keras_pb else "object graph (TF 2.0-2.4)"
            elif _LAYER_PATH.match(node_path) and record.get("name"):
                layer_names[node_id] = record["name"]

        self.bundle: BundleReader | None = None
        prefix = self.directory.joinpath(*VARIABLES_PREFIX)
        tensors: list = []
        layers: list[str] = []
        shards: tuple = ()
        if index_path(prefix).exists():
            self.bundle = BundleReader(prefix)
            try:
                tensors, layers, bundle_producer, bundle_meta = bundle_tensors(self.bundle, layer_names)
            except BaseException:
                self.bundle.close()
                raise
            for key, value in bundle_producer.items():
                producer.setdefault(key, value)
            metadata.update({f"variables_{k}": v for k, v in bundle_meta.items()})
            notes.extend(self.bundle.problems())
            if "object_graph_error" in bundle_meta:
                notes.append("the object graph could not be read: roles and names are guessed from the keys")
            shards = tuple(self.bundle.shards())
        else:
            variables = sum(1 for node in meta_graph.object_graph_def.nodes if node.WhichOneof("kind") == "variable")
            if variables:
                # The graph restores variables from a bundle that is not there: the data is missing.
                missing = index_path(prefix)
                notes.append(
                    f"{missing} is missing but saved_model.pb has {variables} variable(s): their values cannot be read "
                    "(copy the complete SavedModel directory, including variables/)"
                )
                shards = (ShardInfo(str(missing), 0, False),)
            else:
                notes.append("SavedModel has no variables (variables/variables.index is absent)")

        root_children = {c.local_name for c in meta_graph.object_graph_def.nodes[0].children} if meta_graph.object_graph_def.nodes else set()
        if not keras_pb.is_file() and "_all_variables" in root_children:
            producer["framework"] = "keras3 (model.export)"
            tensors, layers, more = _keras3_export_roles(tensors)
            notes.extend(more)
        self.manifest = Manifest(
            format="saved-model",
            path=str(self.directory),
            tensors=tuple(tensors),
            producer=producer,
            metadata=metadata,
            layers=tuple(layers),
            shards=shards,
            notes=tuple(notes),
        )

    def read_tensor(self, key: str) -> np.ndarray:
        if self.bundle is None:
            raise KeyError(key)
        return self.bundle.read(key)

    def read_chunks(self, key: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
        if self.bundle is None:
            raise KeyError(key)
        return self.bundle.read_chunks(key, chunk_elems)

    def close(self) -> None:
        if self.bundle is not None:
            self.bundle.close()


def _keras3_export_roles(tensors: list) -> tuple[list, list[str], list[str]]:
    """Keras 3 export tracks each variable twice (`variables/N`, `_all_variables/N`) and adds RNG state.

    The `variables/N` copies are the model's weights (layer taken from the
    variable path `model/layer/weight`); `_all_variables/N` copies become
    role "other" so parameters are not counted twice.
    """
    out, layers, notes = [], [], []
    counters: dict[str, int] = {}
    duplicates = 0
    ordered = sorted(tensors, key=lambda t: (t.key.split("/")[0], int(t.key.split("/")[1]) if t.key.split("/")[1:2] and t.key.split("/")[1].isdigit() else 0))
    for tensor in ordered:
        head = tensor.key.split("/", 1)[0]
        if head == "_all_variables":
            duplicates += 1
            out.append(replace(tensor, role="other", layer=None, index=None))
        elif head == "variables" and tensor.role == "weight" and "seed_generator" not in tensor.name:
            parts = tensor.name.split("/")
            layer = parts[-2] if len(parts) >= 2 else None
            if layer is not None:
                if layer not in counters:
                    counters[layer] = 0
                    layers.append(layer)
                out.append(replace(tensor, layer=layer, index=counters[layer]))
                counters[layer] += 1
            else:
                out.append(tensor)
        elif "seed_generator" in tensor.name:
            out.append(replace(tensor, role="other"))
        else:
            out.append(tensor)
    if duplicates:
        notes.append(
            f"Keras 3 export: {duplicates} tensors under _all_variables/ duplicate those under variables/ "
            "(listed with role 'other')"
        )
    return out, layers, notes


def _keras_records(keras_pb: Path, meta_graph: Any, pb: Path) -> tuple[list[tuple[int, str, str, str]], Path]:
    """(node id, node path, identifier, metadata JSON) of every Keras object, and the file they came from.

    tf_keras >= 2.5 writes them to `keras_metadata.pb`; TF 2.0-2.4 kept the same JSON in the object
    graph itself, in each Keras object's `SavedUserObject.metadata` (tf_keras's loader still falls back
    to it: `_read_legacy_metadata`).  Only the root and its direct `layer_with_weights-N` children are
    needed, so paths are built for those alone.
    """
    if keras_pb.is_file():
        from ..protos import SavedMetadata

        keras_meta = _parse(SavedMetadata, keras_pb, "tf_keras SavedMetadata (keras_metadata.pb)")
        return [(n.node_id, n.node_path, n.identifier, n.metadata) for n in keras_meta.nodes], keras_pb
    nodes = meta_graph.object_graph_def.nodes
    if not nodes:
        return [], pb
    records = []
    wanted = [(0, "root")] + [
        (child.node_id, f"root.{child.local_name}") for child in nodes[0].children if _LAYER_PATH.match(f"root.{child.local_name}")
    ]
    for node_id, node_path in wanted:
        if not 0 <= node_id < len(nodes) or nodes[node_id].WhichOneof("kind") != "user_object":
            continue
        user = nodes[node_id].user_object
        if user.identifier.startswith(_KERAS_IDENTIFIER_PREFIX) and user.metadata:
            records.append((node_id, node_path, user.identifier, user.metadata))
    if records and records[0][1] != "root":  # a layer's metadata without the model's is not a Keras model
        return [], pb
    return records, pb


_KERAS_IDENTIFIER_PREFIX = "_tf_keras_"


class SavedModelFormat:
    """The `Format` for TensorFlow SavedModel directories."""

    name = "saved-model"
    description = "TensorFlow SavedModel directory (saved_model.pb + variables/)"
    suffixes = ("saved_model.pb",)

    def sniff(self, path: Path) -> bool:
        try:
            directory = _directory(Path(path))
            return directory.is_dir() and (directory / SAVED_MODEL_PB).is_file()
        except OSError:
            return False

    def open(self, path: Path) -> SavedModelArtifact:
        return SavedModelArtifact(Path(path))


SAVED_MODEL = SavedModelFormat()
