"""A SavedModel's callable interface read from saved_model.pb, without TensorFlow.

Every MetaGraphDef (TF1 SavedModels may hold several, one per tag set) with its signature
keys, method names and the inputs and outputs of each signature (dtype, shape, graph tensor
name): what `saved_model_cli show --all` prints about signatures.

JSON schema `ckit.signatures/1` (docs/INSPECT.md):

    {"schema": "ckit.signatures/1", "path": "...",
     "meta_graphs": [{"tags": ["serve"], "tensorflow_version": "2.21.0",
                      "signatures": [{"key": "serving_default", "method": "tensorflow/serving/predict",
                                      "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 28, 28] | null,
                                                  "tensor": "serving_default_x:0", "encoding": "dense"}],
                                      "outputs": [...]}]}]}

Shapes use -1 for an unknown dimension and null for an unknown rank; signature keys,
inputs and outputs are sorted by name.  `__saved_model_init_op` is listed as TensorFlow
stores it (saved_model_cli lists it too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dtypes import TF_DTYPE_NAMES
from .errors import CorruptArtifact, UnknownFormat

SCHEMA = "ckit.signatures/1"


@dataclass(frozen=True)
class TensorSpec:
    name: str  # the key in the signature's inputs/outputs map
    dtype: str
    shape: tuple[int, ...] | None  # -1: unknown dimension; None: unknown rank
    tensor: str  # graph tensor name ("serving_default_x:0"); "" for composite tensors
    encoding: str = "dense"  # dense, coo_sparse, composite

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape),
                "tensor": self.tensor, "encoding": self.encoding}


@dataclass(frozen=True)
class Signature:
    key: str
    method: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "method": self.method, "inputs": [i.to_json() for i in self.inputs],
                "outputs": [o.to_json() for o in self.outputs]}


@dataclass(frozen=True)
class MetaGraph:
    tags: tuple[str, ...]
    tensorflow_version: str
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "tensorflow_version": self.tensorflow_version,
                "signatures": [s.to_json() for s in self.signatures]}


@dataclass(frozen=True)
class SignatureReport:
    path: str
    meta_graphs: tuple[MetaGraph, ...]

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "path": self.path, "meta_graphs": [m.to_json() for m in self.meta_graphs]}


def _spec(name: str, info: Any) -> TensorSpec:
    code = int(info.dtype)
    dtype = "invalid" if code == 0 else TF_DTYPE_NAMES.get(code, f"dtype_{code}")  # DT_INVALID: an op, not a tensor
    dims = info.tensor_shape
    shape = None if dims.unknown_rank else tuple(int(d.size) for d in dims.dim)
    kind = info.WhichOneof("encoding")
    if kind == "coo_sparse":
        return TensorSpec(name, dtype, shape, info.coo_sparse.values_tensor_name, "coo_sparse")
    if kind == "composite_tensor":
        return TensorSpec(name, dtype, shape, "", "composite")
    return TensorSpec(name, dtype, shape, info.name)


def read_signatures(path: str | Path) -> SignatureReport:
    """The signatures of the SavedModel at `path` (its directory or its saved_model.pb)."""
    from .formats.saved_model import SAVED_MODEL_PB, _parse
    from .protos import SavedModel
    from .registry import detect

    path = Path(path)
    directory = path.parent if path.name == SAVED_MODEL_PB and path.is_file() else path
    pb = directory / SAVED_MODEL_PB
    if not pb.is_file():
        found = detect(path).name  # raises the precise "not an artifact" error itself
        raise UnknownFormat(
            f"{path}: a {found} artifact has no signatures; expected a SavedModel directory (one holding "
            "saved_model.pb): signatures are what a SavedModel exports for serving"
        )
    saved = _parse(SavedModel, pb, "a SavedModel protobuf")
    if not saved.meta_graphs:
        raise CorruptArtifact(f"{pb}: SavedModel holds no MetaGraphDef; expected at least one")
    graphs = []
    for meta in saved.meta_graphs:
        signatures = []
        for key in sorted(meta.signature_def):
            sig = meta.signature_def[key]
            signatures.append(Signature(
                key=key,
                method=sig.method_name,
                inputs=tuple(_spec(k, v) for k, v in sorted(sig.inputs.items())),
                outputs=tuple(_spec(k, v) for k, v in sorted(sig.outputs.items())),
            ))
        info = meta.meta_info_def
        graphs.append(MetaGraph(tuple(info.tags), info.tensorflow_version, tuple(signatures)))
    return SignatureReport(str(directory), tuple(graphs))
