"""Read every tensor of an artifact and report each one that is damaged."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import CkitError
from .manifest import Manifest
from .registry import open_artifact


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
            "problems": [{"key": p.key, "message": p.message} for p in self.problems],
        }


def verify_artifact(path: str | Path, format: str | None = None) -> VerifyReport:
    """Read every tensor (checking every checksum the format has); collect what fails."""
    problems: list[TensorProblem] = []
    checked = 0
    bytes_read = 0
    with open_artifact(path, format) as reader:
        manifest = reader.manifest
        for tensor in manifest.tensors:
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
    return VerifyReport(manifest=manifest, checked=checked, bytes_read=bytes_read, problems=tuple(problems))
