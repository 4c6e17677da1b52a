"""The exceptions ckit raises, one tree for the whole project.

    CkitError                      base; str(e) is a one-line, user-facing message
    ├── UnknownFormat (ValueError)     no reader recognises the artifact
    ├── CorruptArtifact (ValueError)   bytes on disk contradict the format
    │   └── ChecksumMismatch           a CRC32C does not match
    ├── MissingData (FileNotFoundError) a file the artifact needs is absent (data shard, member)
    ├── UnsafeArtifact (ValueError)    the artifact asks for something we refuse (links, pickles, ..)
    ├── UnsupportedFeature (NotImplementedError)  valid input ckit cannot handle yet
    ├── MappingError (ValueError)      tensors cannot be matched between source and target
    ├── OutputExists (FileExistsError) destination exists and --force was not given
    └── MissingDependency (ImportError) an optional extra is needed

Foreign errors (h5py, protobuf, zipfile, OSError) are translated where they
enter, so callers only ever catch CkitError.  Every message follows the Keras
rule: what was found, what was expected, what to do.
"""

from __future__ import annotations


class CkitError(Exception):
    """Base of every error ckit raises on purpose."""


class UnknownFormat(CkitError, ValueError):
    """No registered format recognises the artifact."""


class CorruptArtifact(CkitError, ValueError):
    """The bytes on disk contradict the format's rules."""


class ChecksumMismatch(CorruptArtifact):
    """A stored CRC32C does not match the bytes it covers."""


class MissingData(CkitError, FileNotFoundError):
    """A file the artifact refers to is absent or too short."""


class UnsafeArtifact(CkitError, ValueError):
    """The artifact contains something ckit refuses to follow or execute."""


class UnsupportedFeature(CkitError, NotImplementedError):
    """Valid input that ckit does not handle (yet)."""


class MappingError(CkitError, ValueError):
    """Tensors cannot be matched between a source and a target layout."""


class OutputExists(CkitError, FileExistsError):
    """The destination exists and overwriting was not asked for."""


class MissingDependency(CkitError, ImportError):
    """An optional dependency is needed for this operation."""


def first_line(exc: BaseException) -> str:
    """The first line of a foreign exception's message (its class name when it has none), for
    one-line errors that quote what a framework or library said."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def require(module: str, extra: str | None, purpose: str):
    """Import an optional heavy module, or say how to install it: ckit's extra that brings it
    (`extra`, one of pyproject's optional-dependencies), or the package itself for a core dependency."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = f"pip install 'ckit[{extra}]'" if extra else f"pip install {module} (a ckit dependency)"
        raise MissingDependency(
            f"{purpose} needs the Python package '{module}', which is not installed ({exc}); install it with: {how}"
        ) from None
