"""ckit's inspector: read any Keras/TensorFlow artifact into one tensor manifest, without TensorFlow."""

from .api import Artifact, diff, open
from .errors import (
    ChecksumMismatch,
    CkitError,
    CorruptArtifact,
    MappingError,
    MissingData,
    MissingDependency,
    OutputExists,
    UnknownFormat,
    UnsafeArtifact,
    UnsupportedFeature,
)
from .manifest import SCHEMA, Manifest, ShardInfo, TensorInfo
from .registry import FORMAT_IDS, detect, get_format, open_artifact, read_manifest

__all__ = [
    "Artifact",
    "diff",
    "open",
    "SCHEMA",
    "FORMAT_IDS",
    "ChecksumMismatch",
    "CkitError",
    "CorruptArtifact",
    "Manifest",
    "MappingError",
    "MissingData",
    "MissingDependency",
    "OutputExists",
    "ShardInfo",
    "TensorInfo",
    "UnknownFormat",
    "UnsafeArtifact",
    "UnsupportedFeature",
    "detect",
    "get_format",
    "open_artifact",
    "read_manifest",
]
