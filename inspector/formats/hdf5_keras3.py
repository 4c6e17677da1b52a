"""Keras 3 weights: `.weights.h5` and sharded `.weights.json` + `*_NNNNN.weights.h5` (keras3-weights).

Layout (keras/src/saving/saving_lib.py, H5IOStore / ShardedH5IOStore): every
object with state gets a group `<path>/vars` holding datasets `0`, `1`, ...;
layers sit under `layers/<snake_case class name, numbered _1, _2 ...>`, nested
models under `layers/<name>/layers/...`, RNN cells under `.../cell`, the
optimizer under `optimizer/vars`.  Since Keras 3.6 each `vars` group has a
`name` attribute with the layer's own name.  The same builder serves the
`.keras` archive reader, which adds the model config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .. import keras_names as kn
from ..errors import CkitError, CorruptArtifact, UnsafeArtifact
from ..manifest import Manifest, ShardInfo, TensorInfo
from . import _hdf5
from .base import ReaderBase

_EXPECT = "a Keras 3 weights file (model.save_weights('x.weights.h5')) with 'layers/.../vars' groups"
_EXPECT_JSON = "a Keras 3 sharded weights index (.weights.json) with a 'weight_map' object"
_CONTAINERS = ("layers", "_layer_checkpoint_dependencies")  # the latter: Keras 2.13-era files
_TOP_GROUPS = ("layers", "optimizer", "vars", "_layer_checkpoint_dependencies")
_MAX_JSON_BYTES = 64 << 20
# Top-level trackers of a Keras 3 model that are not layers (metric and loss state, RNG seeds).
_NOT_LAYER_ATTRIBUTES = ("metrics", "compile_metrics", "compile_loss", "loss", "seed_generator")


def looks_like_keras3(f: Any) -> bool:
    """Cheap check on an opened HDF5 file: Keras 3 groups and no Keras 2 `layer_names`."""
    if "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f:
        return False
    return any(name in f for name in _TOP_GROUPS)


@dataclass
class _Entry:
    """What the model config says about one owner path (a group that has `vars`)."""

    class_name: str | None
    config: Mapping[str, Any]
    name: str | None
    ordinal: int


def map_config(model_config: Mapping[str, Any] | None) -> dict[str, _Entry]:
    """Owner paths (`/layers/sequential/layers/dense_1`) predicted from a model config, in model order."""
    entries: dict[str, _Entry] = {}
    if not isinstance(model_config, Mapping):
        return entries

    def visit(node: Mapping[str, Any], base: str) -> None:
        cfg = node.get("config") if isinstance(node.get("config"), Mapping) else {}
        layers = [l for l in (cfg.get("layers") or []) if isinstance(l, Mapping)]
        if node.get("class_name") == "Sequential":
            # Sequential.layers leaves out the InputLayer that its config lists.
            layers = [l for l in layers if l.get("class_name") != "InputLayer"]
        names = kn.unique_group_names(str(l.get("class_name", "")) for l in layers)
        for group, layer in zip(names, layers):
            lcfg = layer.get("config") if isinstance(layer.get("config"), Mapping) else {}
            cls = layer.get("class_name")
            path = f"{base}/layers/{group}"
            entries[path] = _Entry(cls, lcfg, lcfg.get("name") or layer.get("name"), len(entries))
            if cls in kn.MODEL_CLASSES or "layers" in lcfg:
                visit(layer, path)
            add_cell(layer, path)
            add_wrapped(layer, path)

    def add_cell(layer: Mapping[str, Any], path: str) -> None:
        cls = layer.get("class_name")
        lcfg = layer.get("config") if isinstance(layer.get("config"), Mapping) else {}
        cell = kn.cell_class(cls, lcfg)
        if cell:
            ccfg = lcfg.get("cell", {}).get("config", {}) if isinstance(lcfg.get("cell"), Mapping) else {}
            entries[f"{path}/cell"] = _Entry(cell, ccfg, ccfg.get("name") or kn.to_snake_case(cell), len(entries))

    def add_wrapped(layer: Mapping[str, Any], path: str) -> None:
        """Wrapped layers of Bidirectional (forward_layer, backward_layer) and TimeDistributed (layer)."""
        cls = layer.get("class_name")
        lcfg = layer.get("config") if isinstance(layer.get("config"), Mapping) else {}
        inner = lcfg.get("layer")
        if cls not in kn.WRAPPER_CLASSES or not isinstance(inner, Mapping):
            return
        if cls == "Bidirectional":
            forward, backward = kn.wrapped_names(lcfg)
            back = lcfg.get("backward_layer") if isinstance(lcfg.get("backward_layer"), Mapping) else inner
            parts = (("forward_layer", inner, forward), ("backward_layer", back, backward))
        else:
            icfg = inner.get("config") if isinstance(inner.get("config"), Mapping) else {}
            parts = (("layer", inner, icfg.get("name")),)
        for attr, sub, name in parts:
            scfg = sub.get("config") if isinstance(sub.get("config"), Mapping) else {}
            sub_path = f"{path}/{attr}"
            entries[sub_path] = _Entry(sub.get("class_name"), scfg, name or scfg.get("name"), len(entries))
            add_cell(sub, sub_path)
            add_wrapped(sub, sub_path)

    visit(model_config, "")
    return entries


@dataclass
class _Dataset:
    obj: Any
    shard: str | None


class Keras3Layout:
    """Tensors of one Keras 3 weights store (one or more HDF5 files), named and ordered."""

    def __init__(self, files: list[tuple[Any, str | None]], display: str, model_config: Mapping[str, Any] | None,
                 framework: str, incomplete: Mapping[str, str] | None = None) -> None:
        self.display = display
        # owner path -> name of a missing shard that held some of its variables: gaps there are expected
        self.incomplete: dict[str, str] = dict(incomplete or {})
        self.framework = framework
        self.config = map_config(model_config)
        self.root_name = model_config.get("config", {}).get("name") if isinstance(model_config, Mapping) else None
        self.root_class = model_config.get("class_name") if isinstance(model_config, Mapping) else None
        self.datasets: dict[str, _Dataset] = {}
        self.groups: dict[str, list[str]] = {"": []}
        self.name_attrs: dict[str, str] = {}
        self._offsets: dict[str, tuple[int, float]] = {}
        for ordinal, (f, shard) in enumerate(files):
            self._collect(f, shard, ordinal)

    def _collect(self, f: Any, shard: str | None, ordinal: int) -> None:
        for path, obj in _hdf5.walk(f, self.display if shard is None else f"{self.display} (shard {shard})"):
            parent, _, base = path.rpartition("/")
            if isinstance(obj, _hdf5.Dataset):
                if path in self.datasets:
                    raise CorruptArtifact(
                        f"{self.display}: dataset '{path}' appears in shard {self.datasets[path].shard} and in "
                        f"shard {shard}; expected each variable in exactly one shard"
                    )
                _hdf5.check_dataset(obj, self.display)
                self.datasets[path] = _Dataset(obj, shard)
                offset = obj.offset
                self._offsets[path] = (ordinal, float("inf") if offset is None else offset)
            else:
                children = self.groups.setdefault(parent, [])
                if base not in children:
                    children.append(base)
                self.groups.setdefault(path, [])
                if base == "vars" and "name" in obj.attrs:
                    name = _hdf5.decode(obj.attrs["name"])
                    if isinstance(name, str) and name:
                        self.name_attrs.setdefault(parent, name)

    # -- naming ------------------------------------------------------------
    def _class_of(self, owner: str) -> str | None:
        if owner in self.config:
            return self.config[owner].class_name
        parent, _, base = owner.rpartition("/")
        if base == "cell":
            return kn.RNN_CELLS.get(self._class_of(parent) or "")
        if base in ("forward_layer", "backward_layer", "layer") and kn.class_for_group(parent.rpartition("/")[2]) in kn.WRAPPER_CLASSES:
            # A wrapped RNN without a config: its cell's shapes tell LSTM, GRU and SimpleRNN apart.
            shapes = [tuple(self.datasets[k].obj.shape or ()) for _, k in self.var_keys(f"{owner}/cell")]
            return kn.rnn_class_from_shapes(shapes) or kn.class_for_group(self.name_attrs.get(owner, ""))
        part = kn.composite_part(self._class_of(parent), base) if parent else None
        if part is not None:  # MultiHeadAttention's `query_dense`, ...: EinsumDense layers
            return part[2]
        found = kn.class_for_group(base)
        if found is None and owner in self.name_attrs:
            found = kn.class_for_group(self.name_attrs[owner])  # an attribute layer (subclassed model): `enc` named `dense`
        return found

    def layer_name(self, owner: str) -> str:
        """The layer's own name: config, else the `name` attribute Keras 3.6+ stores, else the group name."""
        if owner in self.config and self.config[owner].name:
            return str(self.config[owner].name)
        if owner in self.name_attrs:
            return self.name_attrs[owner]
        parent, _, base = owner.rpartition("/")
        if base == "cell":
            return kn.default_cell_name(self._class_of(parent)) or base
        part = kn.composite_part(self._class_of(parent), base) if parent else None
        if part is not None:  # files before Keras 3.6 keep no name: the sub-layer's default name
            return part[3]
        if base in ("forward_layer", "backward_layer") and kn.class_for_group(parent.rpartition("/")[2]) == "Bidirectional":
            # Keras names the copies `forward_<inner>` / `backward_<inner>`; without a config the inner
            # layer's name is unknown and its class's default name (`lstm`) is the best guess.
            cls = self._class_of(owner)
            if cls:
                return f"{base.split('_')[0]}_{kn.to_snake_case(cls)}"
        return base

    def prefix(self, owner: str) -> str:
        """Keras 2 style name scope of an owner: nested models drop out, attribute children nest."""
        parts = owner.strip("/").split("/")
        prefix = ""
        i = 0
        while i < len(parts):
            if parts[i] in _CONTAINERS and i + 1 < len(parts):
                prefix = self.layer_name("/" + "/".join(parts[: i + 2]))
                i += 2
            else:
                here = "/" + "/".join(parts[: i + 1])
                parent = "/" + "/".join(parts[:i])
                if not (parts[i] == "layer" and i and self._class_of(parent) == "TimeDistributed"):
                    # tf_keras names a TimeDistributed layer's weights after the wrapper (`td/kernel`).
                    prefix = f"{prefix}/{self.layer_name(here)}" if prefix else self.layer_name(here)
                i += 1
        return prefix

    def variable_names(self, owner: str, count: int) -> list[str]:
        entry = self.config.get(owner)
        names = kn.variable_names_for_count(self._class_of(owner), count, entry.config if entry else None)
        if names is None or len(names) != count:
            return [f"vars/{i}" for i in range(count)]
        return list(names)

    # -- order -------------------------------------------------------------
    def _ordered_children(self, path: str) -> list[str]:
        children = [c for c in self.groups.get(path, []) if c != "vars"]
        containers = [c for c in children if c in _CONTAINERS]
        attrs = [c for c in children if c not in _CONTAINERS]

        def attr_key(name: str) -> tuple:
            # The layer's own tracking order where Keras' is known (Keras 3 writes attributes in
            # dir() order, so `backward_layer` lands before `forward_layer`); else where the data sits.
            known = kn.ATTRIBUTE_ORDER.index(name) if name in kn.ATTRIBUTE_ORDER else len(kn.ATTRIBUTE_ORDER)
            entry = self.config.get(f"{path}/{name}")
            return (known, entry.ordinal if entry else 1 << 30, self._first_offset(f"{path}/{name}/"),
                    _hdf5.natural_key(name))

        attrs.sort(key=attr_key)
        ordered: list[str] = []
        for container in containers:
            ordered.extend(f"{path}/{container}/{c}" for c in self._ordered_members(f"{path}/{container}"))
        ordered.extend(f"{path}/{c}" for c in attrs)
        return ordered

    def _ordered_members(self, container: str) -> list[str]:
        members = list(self.groups.get(container, []))

        def key(member: str) -> tuple:
            entry = self.config.get(f"{container}/{member}")
            if entry:
                return (0, entry.ordinal, ())
            # No config: Keras writes layers in model order and HDF5 allocates their data in
            # write order, so the first byte of a layer's data is a good guess of its position.
            return (1, self._first_offset(f"{container}/{member}/"), _hdf5.natural_key(member))

        return sorted(members, key=key)

    def _first_offset(self, prefix: str) -> tuple[int, float]:
        return min((off for key, off in self._offsets.items() if key.startswith(prefix)),
                   default=(1 << 30, float("inf")))

    def owners_in_order(self, path: str) -> list[str]:
        """Every owner (group with `vars`) at or below `path` in Keras' save order: own vars, children, attributes."""
        out = [path] if "vars" in self.groups.get(path, []) else []
        for child in self._ordered_children(path):
            out.extend(self.owners_in_order(child))
        return out

    def var_keys(self, owner: str) -> list[tuple[int | None, str]]:
        prefix = f"{owner}/vars/"
        found = [k for k in self.datasets if k.startswith(prefix) and "/" not in k[len(prefix):]]
        return sorted(((int(k[len(prefix):]) if k[len(prefix):].isdigit() else None, k) for k in found),
                      key=lambda item: (item[0] is None, item[0] or 0, item[1]))

    def checked_var_keys(self, owner: str) -> list[tuple[int | None, str]]:
        """`var_keys`, refusing a `vars` group with a gap (vars/0..n-1 expected) or fewer variables than its class has."""
        keys = self.var_keys(owner)
        if owner in self.incomplete:
            return keys  # listed under their true positions; the missing shard is on record
        group = f"{owner}/vars"
        positions = {p for p, _ in keys if p is not None}
        if positions and positions != set(range(len(positions))):
            missing = min(set(range(max(positions) + 1)) - positions)
            raise CorruptArtifact(
                f"{self.display}: group '{group}' has no dataset '{group}/{missing}' but holds "
                f"'{group}/{max(positions)}'; expected consecutive datasets 0..{max(positions)} (one per variable); "
                f"{self._gap_advice()}"
            )
        entry = self.config.get(owner)
        if entry is not None:
            expected = kn.variable_names(entry.class_name, entry.config)
            if expected is not None and len(keys) < len(expected):
                raise CorruptArtifact(
                    f"{self.display}: group '{group}' holds {len(keys)} variable(s) but the config's {entry.class_name} "
                    f"layer '{entry.name}' has {len(expected)} ({', '.join(expected)}); expected one dataset per "
                    f"variable (missing '{group}/{len(keys)}'); the weights are damaged: re-save the model with Keras"
                )
        return keys

    def _gap_advice(self) -> str:
        name = Path(self.display).name
        if re.search(r"_\d{5}\.weights\.h5$", name):
            return ("this looks like one shard of a sharded save: open its .weights.json index instead, "
                    "with every shard beside it")
        return "the file is damaged or a variable was deleted: re-save the weights with Keras"

    def _names_for(self, owner: str, keys: list[tuple[int | None, str]]) -> list[str]:
        if owner not in self.incomplete:
            return self.variable_names(owner, len(keys))
        # Some variables are in a missing shard: keep every name at its true position, never renumber.
        entry = self.config.get(owner)
        known = kn.variable_names(self._class_of(owner), entry.config if entry else None)
        return [known[p] if (known and p is not None and p < len(known)) else (f"vars/{p}" if p is not None else k.rsplit("/", 1)[-1])
                for p, k in keys]

    # -- manifest pieces -----------------------------------------------------
    def build(self) -> tuple[list[TensorInfo], list[str], bool]:
        """(tensors, top-level layers with weights in order, whether the order is the model's)."""
        tensors: list[TensorInfo] = []
        named: set[str] = set()
        layers: list[str] = []
        tops = [(f"/{container}/{member}", None) for container in _CONTAINERS
                for member in self._ordered_members(f"/{container}")]
        tops += [(top, top.lstrip("/")) for top in self.attribute_layers()]
        for top, attribute in tops:
            layer = attribute or self.layer_name(top)
            index = 0
            for owner in self.owners_in_order(top):
                keys = self.checked_var_keys(owner)
                names = self._names_for(owner, keys)
                prefix = self.prefix(owner)
                base = index
                for (position, key), var in zip(keys, names):
                    if owner in self.incomplete and position is not None:
                        index = max(index, base + position)  # a gap stays a gap
                    tensors.append(self._info(key, f"{prefix}/{var}", "weight", layer, index))
                    named.add(key)
                    index += 1
            if index and layer not in layers:
                layers.append(layer)
        opt_index = 0
        for owner in self.owners_in_order("/optimizer"):
            for position, key in self.checked_var_keys(owner):
                tensors.append(self._info(key, self._optimizer_name(owner, position, key), "optimizer", None, opt_index))
                named.add(key)
                opt_index += 1
        root = self.root_name or self.name_attrs.get("") or "model"
        for position, key in self.checked_var_keys(""):
            tensors.append(self._info(key, f"{root}/vars/{position}", "weight", None, position))
            named.add(key)
        for key in self.datasets:
            if key not in named:
                tensors.append(self._info(key, key.lstrip("/"), "other", None, None))
        order_known = bool(self.config) and not self.attribute_layers()
        return tensors, layers, order_known

    def attribute_layers(self) -> list[str]:
        """Top-level groups other than Keras' own that hold `vars` with data: the layers of a subclassed
        model, which Keras 3 saves under their attribute names (`/enc`), in the order their data sits."""
        found = []
        for child in self.groups.get("", []):
            path = f"/{child}"
            if child in _TOP_GROUPS or child in _NOT_LAYER_ATTRIBUTES or path in self.datasets:
                continue
            if any(k.startswith(path + "/") and "/vars/" in k[len(path):] for k in self.datasets):
                found.append(path)
        return sorted(found, key=lambda p: (self._first_offset(p + "/"), _hdf5.natural_key(p)))

    def _optimizer_name(self, owner: str, position: int | None, key: str) -> str:
        ds = self.datasets[key].obj
        scalar = tuple(ds.shape or ()) == ()
        base = owner.lstrip("/")
        if owner == "/optimizer" and scalar:
            if position == 0 and ds.dtype.kind in "iu":
                return "optimizer/iteration"
            if position == 1 and ds.dtype.kind == "f" and self.framework == "keras3":
                return "optimizer/learning_rate"
        return f"{base}/vars/{position}"

    def _info(self, key: str, name: str, role: str, layer: str | None, index: int | None) -> TensorInfo:
        return _hdf5.tensor_info(self.datasets[key].obj, key, name, role, layer, index)

    def read(self, key: str) -> np.ndarray:
        if key not in self.datasets:
            raise KeyError(key)
        entry = self.datasets[key]
        where = self.display if entry.shard is None else f"{self.display} (shard {entry.shard})"
        return _hdf5.read_dataset(entry.obj, where)

    def read_chunks(self, key: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
        if key not in self.datasets:
            raise KeyError(key)
        entry = self.datasets[key]
        where = self.display if entry.shard is None else f"{self.display} (shard {entry.shard})"
        return _hdf5.dataset_chunks(entry.obj, where, chunk_elems)


def make_manifest(fmt: str, path: Path, layout: Keras3Layout, producer: Mapping[str, Any],
                  metadata: Mapping[str, Any], shards: list[ShardInfo], notes: list[str]) -> Manifest:
    """The manifest of a Keras 3 store, shared by the weights and archive readers."""
    tensors, layers, order_known = layout.build()
    meta = dict(metadata)
    meta["layer_order"] = "model" if order_known else "guessed"
    if not order_known:
        if layout.attribute_layers():
            cls = layout.root_class or "a custom class"
            notes = notes + [f"layer order guessed from where each layer's data sits in the file: the model ({cls}) "
                             "is subclassed and its layers are saved under their attribute names, which "
                             "Keras 3 writes in alphabetical order, not model order"]
        else:
            notes = notes + ["layer order guessed from where each layer's data sits in the file (no model config in a bare weights file)"]
    return Manifest(format=fmt, path=str(path), tensors=tuple(tensors), producer=producer, metadata=meta,
                    layers=tuple(layers), shards=tuple(shards), notes=tuple(notes))


def read_weight_map(path: Path) -> dict[str, list[str]]:
    """The `weight_map` of a sharded index, shard names checked to be plain file names."""
    display = str(path)
    try:
        size = path.stat().st_size
        if size > _MAX_JSON_BYTES:
            raise CorruptArtifact(f"{display}: {size} bytes is too large for a shard index; expected {_EXPECT_JSON}")
        if path.is_dir():
            raise CorruptArtifact(f"{display}: is a directory; expected a file, {_EXPECT_JSON}")
        if not path.is_file() and path.exists():
            raise CorruptArtifact(f"{display}: not a regular file (a FIFO, socket or device); expected {_EXPECT_JSON}")
        data = json.loads(path.read_bytes())
    except RecursionError:
        raise CorruptArtifact(f"{display}: JSON nested too deeply to parse; expected {_EXPECT_JSON}") from None
    except OSError as exc:
        raise CorruptArtifact(f"{display}: cannot be read ({exc.strerror}); expected {_EXPECT_JSON}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorruptArtifact(f"{display}: not valid JSON ({exc}); expected {_EXPECT_JSON}") from None
    if not isinstance(data, dict) or not isinstance(data.get("weight_map"), dict):
        raise CorruptArtifact(f"{display}: JSON without a 'weight_map' object; expected {_EXPECT_JSON}")
    result: dict[str, list[str]] = {}
    for group, files in data["weight_map"].items():
        files = [files] if isinstance(files, str) else files
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise CorruptArtifact(f"{display}: weight_map entry '{group}' is not a file name or list of names; expected {_EXPECT_JSON}")
        for name in files:
            if not name or "/" in name or "\\" in name or name in (".", "..") or Path(name).is_absolute():
                raise UnsafeArtifact(
                    f"{display}: weight_map names shard '{name}', which is not a plain file name next to the index; "
                    "ckit refuses paths that leave the index's folder"
                )
        result[group] = files
    return result


class Keras3WeightsReader(ReaderBase):
    """An opened `.weights.h5` or sharded `.weights.json`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = str(path)
        self._files: list[Any] = []
        try:
            self.manifest = self._open()
        except CkitError:
            self.close()
            raise
        except Exception as exc:  # a damaged description: any attribute may be missing or odd
            self.close()
            raise CorruptArtifact(f"{self.display}: cannot read the HDF5 structure ({exc}); expected {_EXPECT}") from None

    def _open(self) -> Manifest:
        notes: list[str] = []
        shards: list[ShardInfo] = []
        sources: list[tuple[Any, str | None]] = []
        incomplete: dict[str, str] = {}
        if _is_json(self.path):
            weight_map = read_weight_map(self.path)
            names: list[str] = []
            for files in weight_map.values():
                names.extend(f for f in files if f not in names)
            missing: set[str] = set()
            for name in names:
                shard_path = self.path.with_name(name)
                if not shard_path.is_file():
                    shards.append(ShardInfo(str(shard_path), 0, False))
                    groups = sorted(g for g, files in weight_map.items() if name in files)
                    notes.append(
                        f"shard {name} named in the weight_map is missing: the variables it holds "
                        f"({', '.join(groups) or 'none listed'}) are not listed and cannot be read"
                    )
                    missing.add(name)
                    continue
                f = _hdf5.open_h5(shard_path, f"{self.display} (shard {name})", "a Keras 3 .weights.h5 shard")
                self._files.append(f)
                sources.append((f, name))
                shards.append(ShardInfo(str(shard_path), shard_path.stat().st_size, True))
            for group, files in weight_map.items():
                lost = [f for f in files if f in missing]
                if lost:
                    owner = "/" + group.strip("/")
                    owner = owner[: -len("/vars")] if owner.endswith("/vars") else owner
                    incomplete[owner if owner != "/" else ""] = lost[0]
        else:
            f = _hdf5.open_h5(self.path, self.display, _EXPECT)
            self._files.append(f)
            if not looks_like_keras3(f):
                kind = "a Keras 2 style .h5 (root attribute 'layer_names')" if (
                    "layer_names" in f.attrs or "model_weights" in f) else "an HDF5 file without Keras 3 groups"
                raise CorruptArtifact(
                    f"{self.display}: {kind} (root groups {sorted(f.keys())[:8]}); expected {_EXPECT}"
                )
            sources.append((f, None))
            shards.append(ShardInfo(str(self.path), self.path.stat().st_size, True))
        self._layout = Keras3Layout(sources, self.display, None, "keras3", incomplete)
        producer = {"framework": "keras3"}  # a bare weights file records no version or backend
        return make_manifest("keras3-weights", self.path, self._layout, producer, {}, shards, notes)

    def read_tensor(self, key: str) -> np.ndarray:
        return self._layout.read(key)

    def read_chunks(self, key: str, chunk_elems: int) -> Iterator[np.ndarray] | None:
        return self._layout.read_chunks(key, chunk_elems)

    def close(self) -> None:
        for f in self._files:
            try:
                f.close()
            except Exception:  # closing a broken file must not mask the real error
                pass
        self._files = []


def _is_json(path: Path) -> bool:
    if path.name.lower().endswith(".json"):
        return True
    try:
        if not path.is_file():  # never open a FIFO or device: it could block
            return False
        with open(path, "rb") as fh:
            return fh.read(64).lstrip()[:1] == b"{"
    except OSError:
        return False


class _Keras3WeightsFormat:
    name = "keras3-weights"
    description = "Keras 3 weights (.weights.h5, or sharded .weights.json + shard files)"
    suffixes: tuple[str, ...] = (".weights.h5", ".weights.json")

    def sniff(self, path: Path) -> bool:
        path = Path(path)
        try:
            if not path.is_file():
                return False
            if _hdf5.has_hdf5_magic(path):
                f = _hdf5.sniff_h5(path)
                return f is not None and looks_like_keras3(f)
            if path.stat().st_size <= _MAX_JSON_BYTES and _is_json(path):
                data = json.loads(path.read_bytes())
                return isinstance(data, dict) and isinstance(data.get("weight_map"), dict)
        except Exception:  # sniffing must never raise on foreign files
            return False
        return False

    def open(self, path: Path) -> Keras3WeightsReader:
        return Keras3WeightsReader(Path(path))

    def __repr__(self) -> str:
        return f"<format {self.name}>"


KERAS3_WEIGHTS = _Keras3WeightsFormat()
