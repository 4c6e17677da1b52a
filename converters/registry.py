"""One list of the formats ckit writes, and how a destination path picks one."""

from __future__ import annotations

from pathlib import Path

from inspector.errors import UnknownFormat
from inspector.registry import load_registered

from .writers.base import Writer

_WRITER_MODULES: dict[str, tuple[str, str]] = {
    "h5-weights": ("hdf5_keras2", "H5_WEIGHTS_WRITER"),
    "h5-model": ("hdf5_keras2", "H5_MODEL_WRITER"),
    "tf-checkpoint": ("tf_bundle", "TF_CHECKPOINT_WRITER"),
    "saved-model": ("saved_model", "SAVED_MODEL_WRITER"),
    "keras3-weights": ("hdf5_keras3", "KERAS3_WEIGHTS_WRITER"),
    "keras3-model": ("keras_archive", "KERAS3_MODEL_WRITER"),
    "safetensors": ("safetensors", "SAFETENSORS_WRITER"),
    "npz": ("npz", "NPZ_WRITER"),
}

TARGET_IDS: tuple[str, ...] = tuple(_WRITER_MODULES)

# Longest suffix first: ".weights.h5" must win over ".h5".
_SUFFIX_TARGETS: tuple[tuple[str, str], ...] = (
    (".weights.h5", "keras3-weights"),
    (".weights.json", "keras3-weights"),
    (".keras", "keras3-model"),
    (".safetensors", "safetensors"),
    (".npz", "npz"),
    (".h5", "h5-weights"),
    (".hdf5", "h5-weights"),
)


def get_writer(name: str) -> Writer:
    writer = load_registered(f"{__package__}.writers", _WRITER_MODULES, name)
    if writer is None:
        raise UnknownFormat(f"cannot write format '{name}'; expected one of: {', '.join(TARGET_IDS)}")
    return writer


def infer_target(dst: str | Path) -> str:
    """The target format a destination path implies (no suffix: a checkpoint prefix)."""
    name = Path(dst).name.lower()
    for suffix, target in _SUFFIX_TARGETS:
        if name.endswith(suffix):
            return target
    if "." not in name:
        return "tf-checkpoint"
    raise UnknownFormat(
        f"cannot tell the target format from '{Path(dst).name}' (suffix '{Path(dst).suffix}'); "
        f"pass --to with one of: {', '.join(TARGET_IDS)}"
    )
