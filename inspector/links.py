"""Symlinks that lead out of an artifact are refused unless the user says `--follow-links`.

An artifact is a file or a directory of files (a SavedModel, a checkpoint, a
sharded weights index).  A downloaded one can hold a symlink such as
`variables/variables.data-00000-of-00001 -> /home/me/.ssh/id_rsa`; reading
it would dump or convert a file that is not part of the artifact.  The path
the user names is their choice and is always followed; the files the artifact
brings along must resolve inside the artifact's own directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import UnsafeArtifact

# Set by the CLIs' --follow-links (inspector.clikit) or by API users.
FOLLOW = False
_MAX_ENTRIES = 100_000


def _root(path: Path) -> Path:
    """The artifact's directory: the directory given, or the one holding the file given."""
    real = Path(os.path.realpath(path))
    return real if real.is_dir() else real.parent


def _inside(target: str, root: Path) -> bool:
    try:
        Path(target).relative_to(root)
        return True
    except ValueError:
        return False


def _refuse(link: Path, target: str, root: Path) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"{link}: a symlink to {target}, outside the artifact's directory {root}; ckit refuses files that lead "
        "out of the artifact (pass --follow-links to read them anyway)"
    )


def _candidates(path: Path) -> Iterable[Path]:
    """Files that belong to the artifact at `path`, as far as names tell before anything is read."""
    if path.is_dir():
        count = 0
        for base, dirs, files in os.walk(path):  # os.walk does not descend into symlinked directories
            for name in dirs + files:
                count += 1
                if count > _MAX_ENTRIES:
                    return
                yield Path(base) / name
        return
    parent = path.parent
    stem = path.name.split(".", 1)[0]
    try:
        siblings = list(os.scandir(parent if str(parent) else "."))
    except OSError:
        return
    for entry in siblings[:_MAX_ENTRIES]:
        # A checkpoint's .index/.data files and a sharded index's shards share the artifact's stem.
        if entry.name.startswith(stem) and entry.name != path.name:
            yield Path(entry.path)


def check_before_open(path: str | Path) -> None:
    """Refuse symlinks leading out of the artifact at `path` (before any of its bytes are read)."""
    if FOLLOW:
        return
    path = Path(path)
    if not path.exists() and not path.with_name(path.name + ".index").exists():
        return
    # A checkpoint prefix names no file: its files are its siblings sharing its stem.
    root = _root(path if path.exists() else path.parent)
    for candidate in _candidates(path):
        if candidate.is_symlink():
            target = os.path.realpath(candidate)
            if not _inside(target, root):
                raise _refuse(candidate, target, root)


def check_files(path: str | Path, files: Iterable[str]) -> None:
    """Refuse, after listing, any file the artifact names (its shards) that resolves outside it."""
    if FOLLOW:
        return
    path = Path(path)
    root = _root(path if path.exists() else path.parent)
    for name in files:
        if "!" in name and not Path(name).exists():
            continue  # a member inside an archive (model.keras!model.weights.h5)
        target = os.path.realpath(name)
        if Path(name).exists() and not _inside(target, root):
            raise _refuse(Path(name), target, root)
