"""Keras 2 style HDF5: `save_weights("w.h5")` (h5-weights) and `save("m.h5")` (h5-model).

Layout (tf_keras/src/saving/legacy/hdf5_format.py): root attribute
`layer_names`; one group per layer with attribute `weight_names`; the dataset
of weight `n` of layer `L` is `L/n`.  Full models keep that under
`model_weights/`, the optimizer under `optimizer_weights/`, and the configs in
root attributes.  Keras 3 writes the same layout for legacy `.h5`, with
variable paths without `:0` and its own config schema.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import CkitError, CorruptArtifact
from ..keras_names import MODEL_CLASSES, keras1_weight_name, owned_names, strip_tf_suffix, with_cell_level
from ..manifest import Manifest, ShardInfo, TensorInfo
from . import _hdf5
from .base import ReaderBase

_EXPECT_WEIGHTS = "a Keras .h5 weights file (save_weights) with a root 'layer_names' attribute"
_EXPECT_MODEL = "a Keras .h5 model file (model.save) with a 'model_weights' group and a 'model_config' attribute"
# Before the root attributes are read nobody knows which of the two a damaged file was meant to be.
_EXPECT_EITHER = "a Keras .h5 weights or model file (model.save_weights('w.h5') or model.save('m.h5'))"


def _root_kind(f: Any) -> str | None:
    """'h5-model', 'h5-weights' or None, from root attributes and groups only (links are not followed)."""
    if _hdf5.link_kind(f, "model_weights") == "hard" and (
            "model_config" in f.attrs or "layer_names" in f["model_weights"].attrs):
        return "h5-model"
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return "h5-weights"
    return None


def _sniff(path: Path, kind: str) -> bool:
    f = _hdf5.sniff_h5(path)
    try:
        return f is not None and _root_kind(f) == kind
    except Exception:  # sniffing must never raise on foreign files
        return False


def _model_layer_names(config: Any) -> set[str]:
    """Names of the layers inside a model config that are models themselves (nested Sequential/Functional)."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if not isinstance(node, dict):
            return
        cfg = node.get("config") if isinstance(node.get("config"), dict) else {}
        for layer in cfg.get("layers", []) or []:
            if not isinstance(layer, dict):
                continue
            inner = layer.get("config") if isinstance(layer.get("config"), dict) else {}
            if layer.get("class_name") in MODEL_CLASSES or "layers" in inner:
                found.add(inner.get("name") or layer.get("name"))
            visit(layer)

    visit(config)
    return found


def _config_classes(config: Any) -> dict[str, str]:
    """Layer name -> class name at any depth of a (Keras 1) model config."""
    found: dict[str, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            cfg = node.get("config")
            if isinstance(node.get("class_name"), str) and isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
                found.setdefault(cfg["name"], node["class_name"])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    visit(value)

    visit(config)
    return found


def _config_classes_cached(reader: Any, metadata: dict[str, Any]) -> dict[str, str]:
    if not hasattr(reader, "_classes"):
        reader._classes = _config_classes(metadata.get("model_config"))
    return reader._classes


def canonical_weight_name(weight_name: str, layer: str, nested_models: set[str] = frozenset()) -> str:
    """Keras 2 style name for a stored weight name.

    tf_keras names (`dense/kernel:0`) only lose `:0`.  Keras 3 paths may carry
    the model's name in front (`sequential_1/dense_4/kernel`) and nested models'
    names (`head/dense_2/kernel`), which Keras 2 names do not.
    """
    name = strip_tf_suffix(weight_name)
    parts = name.split("/")
    if layer in parts[:-1]:
        parts = parts[parts.index(layer):]
    while len(parts) > 2 and parts[0] in nested_models:
        parts = parts[1:]
    return "/".join(parts)


class KerasH5Reader(ReaderBase):
    """An opened Keras 2 style .h5 file (weights-only or full model)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.display = str(path)
        expected = _EXPECT_MODEL if kind == "h5-model" else _EXPECT_WEIGHTS
        self._file = _hdf5.open_h5(path, self.display, _EXPECT_EITHER)
        try:
            self.manifest = self._build(kind, expected)
        except CkitError:
            self._file.close()
            raise
        except Exception as exc:  # a damaged description: any attribute may be missing or odd
            self._file.close()
            raise CorruptArtifact(f"{self.display}: cannot read the HDF5 structure ({exc}); expected {expected}") from None

    def _build(self, kind: str, expected: str) -> Manifest:
        f = self._file
        # Walk everything first: links anywhere are refused before any of them is followed.
        everything = {path: obj for path, obj in _hdf5.walk(f, self.display)
                      if isinstance(obj, _hdf5.Dataset)}
        found = _root_kind(f)
        if found is None:
            attrs = sorted(f.attrs.keys())
            groups = sorted(f.keys())[:8]
            raise CorruptArtifact(
                f"{self.display}: an HDF5 file without Keras layer attributes (root attributes {attrs}, "
                f"groups {groups}); expected {_EXPECT_EITHER}"
            )
        if found != kind:
            other = "h5-model" if kind == "h5-weights" else "h5-weights"
            raise CorruptArtifact(
                f"{self.display}: this is a Keras {found} file, not {kind}; expected {expected}; "
                f"open it with --format {other} or let ckit detect the format"
            )
        weights_root = f["model_weights"] if kind == "h5-model" else f
        prefix = "/model_weights" if kind == "h5-model" else ""
        version = _hdf5.decode(weights_root.attrs.get("keras_version", f.attrs.get("keras_version")))
        backend = _hdf5.decode(weights_root.attrs.get("backend", f.attrs.get("backend")))
        framework = "keras3" if str(version or "").startswith("3") else "tf_keras"
        metadata: dict[str, Any] = {"flavour": framework, "layer_order": "model"}
        if kind == "h5-model":
            for attr in ("model_config", "training_config"):
                raw = _hdf5.read_attr(f, attr, self.display)
                if raw is None:
                    continue
                if isinstance(raw, list) and all(isinstance(part, str) for part in raw):
                    raw = "".join(raw)  # stored in chunks (`model_config0`, `model_config1`, ...): one JSON text
                try:
                    metadata[attr] = json.loads(raw)
                except (TypeError, ValueError, RecursionError):
                    raise CorruptArtifact(f"{self.display}: attribute '{attr}' is not valid JSON; expected a Keras config") from None
        nested = _model_layer_names(metadata.get("model_config")) if framework == "keras3" else set()
        # tf_keras reads a weights group without keras_version as Keras 1 (`dense_1_W` names, gates apart).
        keras1 = "keras_version" not in weights_root.attrs
        classes = _config_classes(metadata.get("model_config")) if keras1 else {}
        keras1_seen = False

        tensors: list[TensorInfo] = []
        layers: list[str] = []
        self._datasets: dict[str, Any] = {}
        layer_names = _hdf5.as_list(_hdf5.read_attr(weights_root, "layer_names", self.display))
        for layer in layer_names:
            group = _hdf5.get_object(weights_root, layer, self.display)
            if group is None or not isinstance(group, _hdf5.Group):
                raise CorruptArtifact(
                    f"{self.display}: layer '{layer}' is listed in layer_names but has no group at "
                    f"'{prefix}/{layer}'; expected one group per listed layer"
                )
            weight_names = _hdf5.as_list(_hdf5.read_attr(group, "weight_names", self.display))
            for index, weight_name in enumerate(weight_names):
                key = f"{prefix}/{layer}/{weight_name}"
                ds = self._dataset(group, weight_name, key)
                name = keras1_weight_name(layer, weight_name, classes.get(layer)) if keras1 else None
                keras1_seen = keras1_seen or name is not None
                name = name or canonical_weight_name(weight_name, layer, nested)
                tensors.append(_hdf5.tensor_info(ds, key, name, "weight", layer, index))
            if weight_names:
                layers.append(layer)
                own = tensors[len(tensors) - len(weight_names):]
                cls = classes.get(layer) if keras1 else _config_classes_cached(self, metadata).get(layer)
                named = owned_names(layer, [t.name for t in own], cls)
                named = with_cell_level(layer, named, [t.shape for t in own], cls)
                tensors[len(tensors) - len(own):] = [replace(t, name=n) for t, n in zip(own, named)]

        if kind == "h5-model" and "optimizer_weights" in f:
            opt = _hdf5.get_object(f, "optimizer_weights", self.display)
            for index, weight_name in enumerate(_hdf5.as_list(_hdf5.read_attr(opt, "weight_names", self.display))):
                key = f"/optimizer_weights/{weight_name}"
                ds = self._dataset(opt, weight_name, key)
                tensors.append(_hdf5.tensor_info(ds, key, strip_tf_suffix(weight_name), "optimizer", None, index))

        # Datasets no weight_names list points at; walking also refuses links anywhere in the file.
        listed = {t.key for t in tensors}
        notes: list[str] = []
        for path, obj in everything.items():
            if path not in listed:
                _hdf5.check_dataset(obj, self.display)
                self._datasets[path] = obj
                tensors.append(_hdf5.tensor_info(obj, path, path.lstrip("/"), "other", None, None))
                notes.append(f"dataset '{path}' is not listed in any weight_names attribute")

        if keras1_seen:
            metadata["keras1_layout"] = True  # converters.layouts.keras1 merges the gates
            version = version or "1"
        producer = {"framework": framework, "keras_version": version, "backend": backend}
        return Manifest(
            format=kind,
            path=str(self.path),
            tensors=tuple(tensors),
            producer=producer,
            metadata=metadata,
            layers=tuple(layers),
            shards=(ShardInfo(str(self.path), self.path.stat().st_size, True),),
            notes=tuple(notes),
        )

    def _dataset(self, group: Any, weight_name: str, key: str) -> Any:
        ds = _hdf5.get_object(group, weight_name, self.display)
        if ds is None or not isinstance(ds, _hdf5.Dataset):
            raise CorruptArtifact(
                f"{self.display}: weight '{weight_name}' is listed in weight_names but '{key}' is "
                f"{'missing' if ds is None else 'not a dataset'}; expected a dataset for every listed weight"
            )
        _hdf5.check_dataset(ds, self.display)
        self._datasets[key] = ds
        return ds

    def read_tensor(self, key: str) -> np.ndarray:
        if key not in self._datasets:
            raise KeyError(key)
        return _hdf5.read_dataset(self._datasets[key], self.display)

    def read_chunks(self, key: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
        if key not in self._datasets:
            raise KeyError(key)
        return _hdf5.dataset_chunks(self._datasets[key], self.display, chunk_elems)

    def close(self) -> None:
        try:
            self._file.close()
        except Exception:  # closing an already-broken file must not mask the real error
            pass


class _KerasH5Format:
    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        self.suffixes: tuple[str, ...] = (".h5", ".hdf5")

    def sniff(self, path: Path) -> bool:
        return _sniff(Path(path), self.name)

    def open(self, path: Path) -> KerasH5Reader:
        return KerasH5Reader(Path(path), self.name)

    def __repr__(self) -> str:
        return f"<format {self.name}>"


H5_WEIGHTS = _KerasH5Format("h5-weights", "Keras 2 style HDF5 weights (model.save_weights('w.h5'))")
H5_MODEL = _KerasH5Format("h5-model", "Keras HDF5 full model (model.save('m.h5'), tf_keras or Keras 3 legacy)")
