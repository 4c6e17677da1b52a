"""The conversion pipeline: read -> map -> write to a temporary path -> verify -> move into place.

Nothing is lost: output is written inside a temporary directory next to the
destination and only moved into place after ckit's own reader has re-read it
and every tensor matched the source.  An existing destination is never
replaced unless `force` is given; a failed or interrupted conversion leaves
nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from inspector.crc32c import crc32c
from inspector.errors import CkitError, CorruptArtifact, MappingError, OutputExists
from inspector.manifest import Manifest
from inspector.registry import open_artifact

from .layout import ModelLayout, WeightRef
from .naming import build_model, layout_from_manifest, layout_from_model, model_config_of
from .registry import get_writer, infer_target
from .writers.base import WriteOptions

KERAS3_TARGETS = frozenset({"keras3-weights", "keras3-model"})


@dataclass(frozen=True)
class ConvertResult:
    dst: Path
    format: str
    notes: tuple[str, ...]
    tensors: int
    bytes: int
    verified: bool


def resolve_target(dst: Path, to: str | None, source: Manifest) -> str:
    if to:
        get_writer(to)  # validates the name with a helpful error
        return to
    target = infer_target(dst)
    # ".h5" is both the weights file and the full model: keep the model when the source has one.
    if target == "h5-weights" and model_config_of(source) is not None and source.format in (
        "h5-model",
        "saved-model",
        "keras3-model",
    ):
        return "h5-model"
    return target


def _digest(value: np.ndarray) -> tuple[str, tuple[int, ...], int]:
    if value.dtype == object:
        payload = b"".join(bytes(v) if not isinstance(v, str) else v.encode() for v in value.reshape(-1))
        return ("string", tuple(value.shape), crc32c(payload))
    contiguous = np.ascontiguousarray(value)
    return (contiguous.dtype.str, tuple(value.shape), crc32c(memoryview(contiguous).cast("B")))


class _RecordingReader:
    """Wraps a reader's read_tensor to remember a digest of each value the writer took."""

    def __init__(self, read: Callable[[str], np.ndarray]) -> None:
        self._read = read
        self.digests: dict[str, tuple[str, tuple[int, ...], int]] = {}

    def __call__(self, key: str) -> np.ndarray:
        value = self._read(key)
        self.digests[key] = _digest(value)
        return value


def build_layout(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    target: str,
    model: str | None = None,
) -> ModelLayout:
    if model is None:
        return layout_from_manifest(manifest, read)
    if target in KERAS3_TARGETS:
        import keras

        return layout_from_model(build_model(model, keras), manifest, read, schema="keras3")
    try:
        import tf_keras
    except ImportError:
        # Without tf_keras (a Keras 3 only machine, e.g. JAX on a GPU) the training model is built
        # with Keras 3; a full-model .h5 then gets the Keras 3 flavour, which keras.models.load_model reads.
        import keras

        return layout_from_model(build_model(model, keras), manifest, read, schema="keras3")
    return layout_from_model(build_model(model, tf_keras), manifest, read, schema="keras2")


def convert(
    src: str | Path,
    dst: str | Path,
    to: str | None = None,
    *,
    source_format: str | None = None,
    model: str | None = None,
    force: bool = False,
    verify: bool = True,
    max_shard_size: int | None = None,
    include_optimizer: bool = True,
    progress: Callable[[WeightRef, int], None] | None = None,
) -> ConvertResult:
    """Convert the artifact at `src` into format `to` (inferred from `dst`) at `dst`."""
    dst = Path(dst)
    with open_artifact(src, source_format) as reader:
        manifest = reader.manifest
        target = resolve_target(dst, to, manifest)
        writer = get_writer(target)
        _refuse_existing(dst, target, force)
        recording = _RecordingReader(reader.read_tensor)
        layout = build_layout(manifest, recording, target, model)
        parent = dst.parent if str(dst.parent) else Path(".")
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.ckit-", dir=parent))
        try:
            options = WriteOptions(
                include_optimizer=include_optimizer, max_shard_size=max_shard_size, progress=progress
            )
            result = writer.write(layout, staging / dst.name, options)
            if verify:
                _verify_output(layout, recording, staging / dst.name, target)
            _move_into_place(result.paths, staging, parent, force)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    weights = layout.flat_weights()
    notes = tuple(layout.dropped) + tuple(result.notes)
    return ConvertResult(
        dst=dst,
        format=target,
        notes=notes,
        tensors=len(weights),
        bytes=sum(int(np.prod(w.shape, dtype=np.int64)) * _itemsize(w.dtype) for w in weights),
        verified=verify,
    )


def _itemsize(dtype: str) -> int:
    from inspector.dtypes import itemsize

    return itemsize(dtype) or 0


def _destination_paths(dst: Path, target: str) -> list[Path]:
    if target == "tf-checkpoint":
        return [dst.with_name(dst.name + ".index")]
    return [dst]


def _refuse_existing(dst: Path, target: str, force: bool) -> None:
    if force:
        return
    for path in _destination_paths(dst, target):
        if path.exists():
            raise OutputExists(
                f"{path} already exists; expected a new destination; pass --force to overwrite it"
            )


def _move_into_place(paths: tuple[Path, ...], staging: Path, parent: Path, force: bool) -> list[Path]:
    """Move every written path from the staging directory to its final place."""
    finals = []
    for path in paths:
        relative = Path(path).resolve().relative_to(staging.resolve())
        final = parent / relative
        # The `checkpoint` state file lists a directory's checkpoints; TF itself rewrites it on
        # every save, so updating it is expected and not an overwrite of user data.
        if final.exists() and not force and relative.name != "checkpoint":
            raise OutputExists(f"{final} already exists; expected a new destination; pass --force to overwrite it")
        finals.append((Path(path), final))
    for source, final in finals:
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(source, final)
    return [final for _, final in finals]


def _pair_up(expected: list[WeightRef], produced: list) -> list:
    """The output tensor that should hold each expected weight: by canonical name when names are
    unambiguous on both sides (a reader may only guess layer order, e.g. Keras 3 weights files),
    else by position."""
    by_name = {t.name: t for t in produced}
    names = [ref.name for ref in expected]
    if len(by_name) == len(produced) and len(set(names)) == len(names) and all(n in by_name for n in names):
        return [by_name[n] for n in names]
    return produced


def _verify_output(layout: ModelLayout, recording: _RecordingReader, written: Path, target: str) -> None:
    """Re-read the output with ckit's own reader; every weight must match what the writer was given."""
    expected = layout.flat_weights()
    try:
        with open_artifact(written, target) as reader:
            manifest = reader.manifest
            produced = [t for _, tensors in manifest.layer_weights() for t in tensors]
            if not produced:
                produced = [t for t in manifest.tensors if t.role == "weight"]
            if len(produced) != len(expected):
                raise CorruptArtifact(
                    f"verification failed: {written.name} holds {len(produced)} model weights after writing, "
                    f"expected {len(expected)}; this is a ckit bug: please report it (--no-verify skips the check)"
                )
            produced = _pair_up(expected, produced)
            for ref, tensor in zip(expected, produced):
                got = _digest(reader.read_tensor(tensor.key))
                want = recording.digests.get(ref.source_key)
                if want is None or got != want:
                    raise CorruptArtifact(
                        f"verification failed: '{tensor.key}' in the output differs from source '{ref.source_key}' "
                        f"(dtype/shape/CRC32C {got} vs {want}); this is a ckit bug: "
                        "please report it (--no-verify skips the check)"
                    )
    except CkitError:
        raise
    except Exception as exc:  # the output must be readable by ckit itself
        raise CorruptArtifact(f"verification failed: ckit cannot re-read its own output {written.name}: {exc}") from exc


__all__ = ["ConvertResult", "convert", "build_layout", "resolve_target", "MappingError"]
