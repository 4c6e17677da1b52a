"""Read every tensor of an artifact and report each one that is damaged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import CkitError
from .manifest import Manifest
from .registry import open_artifact

# Formats whose tensor bytes carry no checksum at all: a flipped data byte reads back as a valid value.
_NO_CHECKSUMS = {
    "h5-weights": "HDF5 keeps no checksums for these datasets: damage inside tensor data cannot be detected",
    "h5-model": "HDF5 keeps no checksums for these datasets: damage inside tensor data cannot be detected",
    "keras3-weights": "HDF5 keeps no checksums for these datasets: damage inside tensor data cannot be detected",
    "safetensors": "safetensors keeps no checksums: damage inside tensor data cannot be detected",
}


@dataclass(frozen=True)
class TensorProblem:
    key: str
    message: str


@dataclass(frozen=True)
class VerifyReport:
    manifest: Manifest
    checked: int
    bytes_read: int
    problems: tuple[TensorProblem, ...] = field(default_factory=tuple)
    # False when the format stores no checksum over tensor data (HDF5, safetensors): "OK" then
    # means "structure and sizes are sound", not "bytes are as written".
    checksums: bool = True
    # One-line things the user must know about what verify could and could not check.
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {
            "format": self.manifest.format,
            "path": self.manifest.path,
            "ok": self.ok,
            "checked": self.checked,
            "bytes_read": self.bytes_read,
            "checksums": self.checksums,
            "notes": list(self.notes),
            "problems": [{"key": p.key, "message": p.message} for p in self.problems],
        }


def verify_artifact(path: str | Path, format: str | None = None) -> VerifyReport:
    """Read every tensor (checking every checksum the format has); collect what fails."""
    problems: list[TensorProblem] = []
    checked = 0
    bytes_read = 0
    with open_artifact(path, format) as reader:
        manifest = reader.manifest
        # Missing files first: their tensors may not even be listed (a lost Keras 3 shard).
        for shard in manifest.shards:
            if not shard.present:
                problems.append(TensorProblem(
                    shard.path,
                    "file is missing, so the tensors stored in it cannot be read; expected every file the "
                    "artifact names to be present (copy the complete artifact)",
                ))
        # Whole-file checks the format offers (a .keras member's CRC-32), once, before the tensors.
        integrity = getattr(reader, "check_integrity", None)
        if integrity is not None:
            try:
                integrity()
            except CkitError as exc:
                # Every tensor lives in the damaged file: one problem says it, not one per tensor.
                problems.append(TensorProblem(manifest.path, str(exc)))
        tensors = () if problems and integrity is not None and problems[-1].key == manifest.path else manifest.tensors
        for tensor in tensors:
            try:
                value = reader.read_tensor(tensor.key)
            except CkitError as exc:
                problems.append(TensorProblem(tensor.key, str(exc)))
                continue
            checked += 1
            bytes_read += int(getattr(value, "nbytes", 0))
            if tuple(value.shape) != tensor.shape:
                problems.append(
                    TensorProblem(tensor.key, f"read shape {list(value.shape)}, manifest says {list(tensor.shape)}")
                )
    note = _NO_CHECKSUMS.get(manifest.format)
    return VerifyReport(manifest=manifest, checked=checked, bytes_read=bytes_read, problems=tuple(problems),
                        checksums=note is None, notes=(note,) if note else ())
