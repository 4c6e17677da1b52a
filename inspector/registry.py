"""One list of the formats ckit reads, and how a path is matched to one of them.

The format is chosen by an explicit name, else by content (`Format.sniff`),
else by suffix.  Format modules are imported lazily so that, for example,
dumping a TF checkpoint never imports h5py.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any, Mapping

from . import collector
from .errors import UnknownFormat
from .formats.base import ArtifactReader, Format
from .manifest import Manifest

# format id -> (module under inspector.formats, attribute).  Order matters for
# sniffing: more specific formats first.
_FORMAT_MODULES: dict[str, tuple[str, str]] = {
    "tf-checkpoint": ("tf_bundle", "TF_CHECKPOINT"),
    "saved-model": ("saved_model", "SAVED_MODEL"),
    "keras3-model": ("keras_archive", "KERAS3_MODEL"),
    "keras3-weights": ("hdf5_keras3", "KERAS3_WEIGHTS"),
    "h5-model": ("hdf5_keras2", "H5_MODEL"),
    "h5-weights": ("hdf5_keras2", "H5_WEIGHTS"),
    "safetensors": ("safetensors", "SAFETENSORS"),
    "npz": ("npz", "NPZ"),
}

FORMAT_IDS: tuple[str, ...] = tuple(_FORMAT_MODULES)


def load_registered(package: str, table: Mapping[str, tuple[str, str]], name: str) -> Any | None:
    """Import the module that holds registry entry `name` and return the entry (None if unknown).

    Registries name (module, attribute) pairs instead of importing every format up front, so a
    command pays only for the format it touches.  The writers' registry uses this too.
    """
    if name not in table:
        return None
    module_name, attribute = table[name]
    return getattr(importlib.import_module(f"{package}.{module_name}"), attribute)


def get_format(name: str) -> Format:
    """The registered format called `name`."""
    fmt = load_registered(f"{__package__}.formats", _FORMAT_MODULES, name)
    if fmt is None:
        raise UnknownFormat(f"format '{name}' is not known; expected one of: {', '.join(FORMAT_IDS)}")
    return fmt


def detect(path: str | Path) -> Format:
    """The format of the artifact at `path`, by content first, then by what the path plainly targets.

    When no content matches but the path names one format (a `.index` file, a checkpoint
    prefix or directory, a folder with saved_model.pb, a `.keras` file, ...), that format is
    returned so that its `open` raises the precise error instead of a vague "not recognised".
    """
    path = Path(path)
    if not path.exists() and not _is_checkpoint_prefix(path):
        raise UnknownFormat(f"{path}: no such file or directory; expected a Keras/TensorFlow artifact")
    refuse_special_file(path)
    for name in FORMAT_IDS:
        fmt = get_format(name)
        if fmt.sniff(path):
            return fmt
    hinted = _targeted_format(path)
    if hinted is not None:
        return get_format(hinted)
    lowered = path.name.lower()
    for name in FORMAT_IDS:
        fmt = get_format(name)
        if any(lowered.endswith(suffix) for suffix in fmt.suffixes):
            return fmt
    if path.is_dir():
        raise UnknownFormat(
            f"{path}: a directory with no saved_model.pb, no 'checkpoint' file and no .index file; expected a "
            "SavedModel or checkpoint directory, or a file (.h5, .keras, .weights.h5, .weights.json, .safetensors); "
            "pass the artifact itself"
        )
    raise UnknownFormat(
        f"{path}: not a recognised artifact (content matches no format); expected one of "
        f"{', '.join(FORMAT_IDS)}; pass --format to choose one"
    )


_DATA_FILE = re.compile(r"\.data-\d{5}-of-\d{5}$")


def _targeted_format(path: Path) -> str | None:
    """The one format a path plainly aims at, from names alone (content failed every sniff)."""
    name = path.name.lower()
    if name.endswith(".index") or _DATA_FILE.search(path.name) or (not path.is_dir() and _is_checkpoint_prefix(path)):
        return "tf-checkpoint"
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "saved-model"
        try:
            if (path / "checkpoint").is_file() or any(child.name.endswith(".index") for child in path.iterdir()):
                return "tf-checkpoint"
        except OSError:
            return None
        return None
    if name.endswith(".keras"):
        return "keras3-model"
    if name.endswith((".weights.json", ".weights.h5")):
        return "keras3-weights"
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(".npz"):
        return "npz"
    if name == "saved_model.pb":
        return "saved-model"
    return None


def refuse_special_file(path: Path) -> None:
    """Refuse FIFOs, sockets and devices before anything opens them (opening a FIFO blocks)."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise UnknownFormat(
            f"{path}: not a regular file or directory (a FIFO, socket or device); expected a Keras/TensorFlow "
            "artifact file or directory; pass the artifact itself"
        )


def _is_checkpoint_prefix(path: Path) -> bool:
    # A checkpoint prefix names no file itself: "ckpt" stands for ckpt.index + ckpt.data-*.
    return path.with_name(path.name + ".index").exists()


def open_artifact(path: str | Path, format: str | None = None) -> ArtifactReader:
    """Open the artifact at `path` (format detected unless given).

    Files that lead out of the artifact through a symlink are refused unless
    `inspector.links.FOLLOW` is set (the CLIs' --follow-links).
    """
    from . import links

    if format:
        refuse_special_file(Path(path))
    links.check_before_open(path)
    fmt = get_format(format) if format else detect(path)
    with collector.paused():  # opening builds the manifest: many small objects, no cycles
        reader = fmt.open(Path(path))
    try:
        links.check_files(path, [shard.path for shard in reader.manifest.shards])
    except BaseException:
        reader.close()
        raise
    return reader


def read_manifest(path: str | Path, format: str | None = None) -> Manifest:
    """The manifest of the artifact at `path`; reads no tensor bytes."""
    with open_artifact(path, format) as reader:
        return reader.manifest
