"""The conversion pipeline: read -> map -> write to a temporary path -> verify -> move into place.

Nothing is lost: output is written inside a temporary directory next to the
destination and only moved into place after ckit's own reader has re-read it
and every tensor matched the source.  An existing destination is never
replaced unless `force` is given; a failed or interrupted conversion leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from inspector.errors import (
    CkitError,
    CorruptArtifact,
    MappingError,
    MissingData,
    OutputExists,
    UnsupportedFeature,
)
from inspector.dtypes import itemsize
from inspector.manifest import Manifest
from inspector.registry import open_artifact
from inspector.verify import array_digest

from .arch_json import check_layout_matches, read_model_config_file, with_model_config
from .layout import ModelLayout, WeightRef
from .model_config import model_config_of
from .flat import layout_change_notes, load_name_map, plan_conversion
from .naming import build_model, layout_from_manifest, layout_from_model, load_model_factory
from .registry import _SUFFIX_TARGETS, get_writer, infer_target
from .writers.base import WriteOptions

KERAS3_TARGETS = frozenset({"keras3-weights", "keras3-model"})
# The targets whose writers can split output into shards (--max-shard-size).
SHARDING_TARGETS = ("tf-checkpoint", "keras3-weights")
# The suffix each target's files carry, for suggesting a name ("" for a prefix or a directory).
_TARGET_SUFFIX = {
    "h5-weights": ".h5",
    "h5-model": ".h5",
    "keras3-weights": ".weights.h5",
    "keras3-model": ".keras",
    "safetensors": ".safetensors",
    "npz": ".npz",
    "tf-checkpoint": "",
    "saved-model": "",
}
STATE_FILE = "checkpoint"


@dataclass(frozen=True)
class ConvertResult:
    dst: Path
    format: str
    notes: tuple[str, ...]
    tensors: int  # everything written, all roles (with --no-verify: the model weights)
    bytes: int
    verified: bool
    by_role: dict[str, int] = field(default_factory=dict)  # {"weight": 6, "optimizer": 3, ...}

    def counts(self) -> str:
        """'10 tensors (6 weights, 3 optimizer, 1 counter)'."""
        words = {"weight": "weights", "optimizer": "optimizer", "counter": "counter", "metadata": "metadata",
                 "other": "other"}
        parts = [f"{n} {words.get(role, role) if not (role == 'weight' and n == 1) else 'weight'}"
                 for role, n in sorted(self.by_role.items(), key=lambda item: _ROLE_ORDER.get(item[0], 9)) if n]
        return f"{self.tensors} tensor{'s' if self.tensors != 1 else ''}" + (f" ({', '.join(parts)})" if parts else "")


_ROLE_ORDER = {"weight": 0, "optimizer": 1, "counter": 2, "other": 3, "metadata": 4}


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


class _RecordingReader:
    """Wraps a reader's read_tensor to remember a digest of each value the writer took."""

    def __init__(self, read: Callable[[str], np.ndarray]) -> None:
        self._read = read
        self.digests: dict[str, tuple[str, tuple[int, ...], int]] = {}

    def __call__(self, key: str) -> np.ndarray:
        value = self._read(key)
        self.digests[key] = array_digest(value)
        return value


def build_layout(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    target: str,
    model: str | None = None,
) -> ModelLayout:
    return _build_layout(manifest, read, target, model)[0]


def _build_layout(
    manifest: Manifest,
    read: Callable[[str], np.ndarray],
    target: str,
    model: str | None = None,
) -> tuple[ModelLayout, Any]:
    """The layout, and the live model built from `--model` (None without it)."""
    if model is None:
        return layout_from_manifest(manifest, read, target), None
    load_model_factory(model)  # a wrong --model fails before seconds of framework import
    if target in KERAS3_TARGETS:
        import keras

        live = build_model(model, keras)
        return layout_from_model(live, manifest, read, schema="keras3"), live
    try:
        import tf_keras
    except ImportError:
        # Without tf_keras (a Keras 3 only machine, e.g. JAX on a GPU) the training model is built
        # with Keras 3; a full-model .h5 then gets the Keras 3 flavour, which keras.models.load_model reads.
        import keras

        live = build_model(model, keras)
        return layout_from_model(live, manifest, read, schema="keras3"), live
    live = build_model(model, tf_keras)
    return layout_from_model(live, manifest, read, schema="keras2"), live


def _write(writer: Any, target: str, layout: ModelLayout, live: Any, dst: Path, options: WriteOptions):
    """Write with the target's writer; a SavedModel given --model is saved from that live model
    (a subclassed model has no config to rebuild it from, and the user's model is the authority)."""
    if live is not None and target == "saved-model":
        from .writers.saved_model import export_keras3_model, is_keras3_model, write_saved_model_from_model

        if is_keras3_model(live):  # built with Keras 3 where tf_keras is missing: Keras 3 exports
            return export_keras3_model(live, layout, dst, options)
        return write_saved_model_from_model(live, layout, dst, options)
    return writer.write(layout, dst, options)


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
    names: str = "keras",
    name_map: str | Path | None = None,
    layout_mode: str | None = None,
    weights_only: bool = False,
    config: str | Path | None = None,
) -> ConvertResult:
    """Convert the artifact at `src` into format `to` (inferred from `dst`) at `dst`.

    `config` is an architecture JSON (`model.to_json()`) for a source that has none (a weights-only
    `.h5`) or whose own it replaces: it is read with `json` only, checked like an embedded config, and
    its layers must name the source's weights (`converters.arch_json`).

    `names`, `name_map`, `layout_mode` and `weights_only` shape the conversions that need no Keras
    layout (flat targets, checkpoint to checkpoint): see `converters.flat`.
    """
    dst = Path(dst)
    include_optimizer = include_optimizer and not weights_only
    loaded_map = load_name_map(name_map)
    given_config = _given_config(config, model)
    config_notes: list[str] = []
    created: list[Path] = []
    try:
        with open_artifact(src, source_format) as reader:
            manifest = reader.manifest
            if given_config is not None:
                manifest, config_notes = with_model_config(manifest, given_config, str(config))
            target = resolve_target(dst, to, manifest)
            writer = get_writer(target)
            check_destination_name(dst, target)
            check_shard_option(dst, target, max_shard_size)
            check_shards_present(manifest)
            _refuse_existing(dst, target, force)
            flat = plan_conversion(manifest, reader.read_tensor, target, model=model, names=names,
                                   name_map=loaded_map, layout=layout_mode, weights_only=not include_optimizer)
            if flat:  # no Keras layout: the plan records and verifies what it writes itself
                layout, live = flat.layout(), None
                if given_config is not None:  # names only here, but a JSON of other weights is still refused
                    config_notes += check_layout_matches(build_layout(manifest, reader.read_tensor, target),
                                                         str(config), str(src))
            else:
                layout, live = _build_layout(manifest, reader.read_tensor, target, model)
                if given_config is not None:
                    config_notes += check_layout_matches(layout, str(config), str(src))
                # Record what the writer takes through the layout's own reader, so values the layout
                # derives (a merged Keras 1 LSTM kernel, a re-laid CuDNN bias) are checked as written.
                recording = _RecordingReader(layout.read)
                layout = replace(layout, read=recording)
            parent = dst.parent
            created = _make_parents(parent, dst)
            staging: Path | None = None
            try:
                with _signals_deferred():  # a Ctrl-C here must not orphan the staging directory
                    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.ckit-", dir=parent))
                options = WriteOptions(
                    include_optimizer=include_optimizer, max_shard_size=max_shard_size, progress=progress
                )
                try:
                    if flat:
                        result = flat.write(staging / dst.name, options)
                        if verify:
                            flat.verify(staging / dst.name)
                        written = _count_output(staging / dst.name, target)
                    else:
                        result = _write(writer, target, layout, live, staging / dst.name, options)
                        written = _verify_output(layout, recording, staging / dst.name, target, manifest) if verify else (
                            _count_output(staging / dst.name, target))
                except CkitError as exc:
                    raise _restated(exc, staging, dst) from exc
                except OSError as exc:
                    raise CkitError(
                        f"cannot write {dst}: {_outside(_os_message(exc), staging, dst)}; expected a writable "
                        f"destination with free space; check {parent} and convert again"
                    ) from exc
                _move_into_place(result.paths, staging, parent, dst, target, force)
            finally:
                if staging is not None:
                    with _signals_deferred():  # nor half-way through removing it
                        shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        _remove_created(created)
        raise
    weights = flat.refs if flat else layout.flat_weights()
    notes = tuple(flat.notes if flat else layout.dropped + layout_change_notes(manifest, target, layout_mode))
    notes = (*config_notes, *notes, *result.notes)
    by_role = written.by_role if written is not None else {"weight": len(weights)}
    if not flat:
        notes += tuple(_optimizer_notes(layout, by_role.get("optimizer", 0), notes, target))
    if written is not None:
        notes += tuple(written.notes)
    return ConvertResult(
        dst=dst,
        format=target,
        notes=notes,
        tensors=sum(by_role.values()),
        bytes=written.bytes if written is not None else sum(
            int(np.prod(w.shape, dtype=np.int64)) * (itemsize(w.dtype) or 0) for w in weights),
        verified=verify,
        by_role=by_role,
    )


def _optimizer_notes(layout: ModelLayout, written: int, notes: tuple[str, ...], target: str) -> list[str]:
    """Nothing silent: optimizer state the output does not carry is named with its count, unless the
    writer already said so."""
    missing = len(layout.optimizer) - written
    if missing <= 0 or any("optimizer" in note for note in notes):
        return []
    return [
        f"optimizer state: {missing} of {len(layout.optimizer)} tensors not carried into {target} "
        "(it has no place for them); the target starts training with a fresh optimizer state"
    ]


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back for a few statements that must not be cut in half."""
    signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# --- checks before anything is written --------------------------------------------------------------


def _given_config(config: str | Path | None, model: str | None) -> dict[str, Any] | None:
    """The architecture JSON given with --config, read before the artifact is opened."""
    if config is None:
        return None
    if model is not None:
        raise UnsupportedFeature(
            f"both --model {model} and --config {config} were given; expected one of them, as each names the "
            "architecture; drop --config to let your model decide, or drop --model to use the JSON"
        )
    return read_model_config_file(config)


def _named_like(name: str) -> tuple[str, tuple[str, ...]] | None:
    """The suffix of `name` ckit knows and the targets it implies; None for an unknown suffix."""
    lower = name.lower()
    for suffix, implied in _SUFFIX_TARGETS:
        if lower.endswith(suffix):
            return name[: len(name) - len(suffix)], ("h5-weights", "h5-model") if implied == "h5-weights" else (implied,)
    if "." not in name:
        return name, ("tf-checkpoint", "saved-model")
    return None


def check_destination_name(dst: Path, target: str) -> None:
    """Refuse a DST whose suffix names another format than the target (a '.keras' that holds HDF5)."""
    named = _named_like(dst.name)
    if named is None:
        return  # an unknown suffix ("weights.bin", "model.ckpt-10") is the user's choice
    stem, implied = named
    if target in implied:
        return
    suggestion = (stem or "out") + _TARGET_SUFFIX.get(target, "")
    if stem == dst.name:
        found = "has no suffix, which names a tf-checkpoint prefix or a saved-model directory,"
    else:
        article = "an" if implied[0].startswith("h5") else "a"
        found = f"is named like {article} {' or '.join(implied)} file"
    raise UnsupportedFeature(
        f"DST '{dst.name}' {found} but the target is {target}; rename DST (e.g. {suggestion}) "
        "or change --to (ckconvert convert SRC DST --to FORMAT)"
    )


def check_shard_option(dst: Path, target: str, max_shard_size: int | None) -> None:
    """--max-shard-size only for targets that shard, and sharded Keras 3 weights only as X.weights.json."""
    if max_shard_size is None:
        return
    if target not in SHARDING_TARGETS:
        raise UnsupportedFeature(
            f"--max-shard-size was given, but {target} output cannot be split into shards; only "
            f"{' and '.join(SHARDING_TARGETS)} (DST ending .weights.json) shard; "
            "drop --max-shard-size or choose one of those targets"
        )
    if target == "keras3-weights" and not dst.name.endswith(".weights.json"):
        from .writers.hdf5_keras3 import sharded_name_message

        raise UnsupportedFeature(sharded_name_message(dst.name))


def check_shards_present(manifest: Manifest) -> None:
    """A missing or truncated data file is missing data, not a naming problem: say so first."""
    missing = [shard for shard in manifest.shards if not shard.present]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingData(
            f"{manifest.path}: data file '{missing[0].path}'{more} is missing or truncated; expected all "
            f"{len(manifest.shards)} data file(s) of this {manifest.format} artifact; copy the complete "
            "artifact and convert again"
        )


def _prefix_data_files(dst: Path) -> list[Path]:
    """Existing data shards of exactly the checkpoint prefix `dst` (`dst.data-NNNNN-of-NNNNN`)."""
    parent = dst.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(re.escape(dst.name) + r"\.data-\d{5}-of-\d{5}")
    return sorted(parent / name for name in os.listdir(parent) if pattern.fullmatch(name))


def _destination_paths(dst: Path, target: str) -> list[Path]:
    if target == "tf-checkpoint":
        return [dst.with_name(dst.name + ".index"), *_prefix_data_files(dst)]
    return [dst]


def _is_saved_model_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and (path / "saved_model.pb").is_file()


def _check_replaceable(final: Path, dst: Path, target: str, force: bool) -> None:
    """Refuse to replace `final` unless --force allows it and nothing but a file or a SavedModel goes."""
    if target == "tf-checkpoint" and final.name == STATE_FILE and final.parent == dst.parent:
        _check_state_file(final)
        return
    if not (final.exists() or final.is_symlink()):
        return
    if final.is_dir() and not final.is_symlink():
        saved_model = _is_saved_model_dir(final)
        if not (saved_model and target == "saved-model" and final == dst):
            what = (
                f"a SavedModel directory, which {target} output does not replace"
                if saved_model
                else "a directory that is not a SavedModel (no saved_model.pb)"
            )
            raise OutputExists(
                f"{final} is {what}; expected a file or a new destination; ckit will not delete it, even "
                "with --force: choose another DST or move that directory away"
            )
    if not force:
        raise OutputExists(f"{final} already exists; expected a new destination; pass --force to overwrite it")


def _check_state_file(path: Path) -> None:
    """Only TensorFlow's regular `checkpoint` state file may be updated, never anything else of that name."""
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink() or not path.is_file():
        kind = "a symbolic link" if path.is_symlink() else "a directory" if path.is_dir() else "not a regular file"
        raise OutputExists(
            f"{path} is {kind}; expected TensorFlow's `checkpoint` state file, the one file a tf-checkpoint "
            "conversion updates beside its prefix; ckit will not replace it, even with --force: move it away "
            "or write the checkpoint into another directory"
        )
    from .writers.tf_bundle import parse_checkpoint_state

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputExists(
            f"{path} cannot be read as TensorFlow's `checkpoint` state file ({_os_message(exc)}); expected a "
            "text file ckit can update; move it away or write the checkpoint into another directory"
        ) from None
    parse_checkpoint_state(text, str(path))


def _refuse_existing(dst: Path, target: str, force: bool) -> None:
    for path in _destination_paths(dst, target):
        _check_replaceable(path, dst, target, force)
    if target == "tf-checkpoint":
        _check_state_file(dst.parent / STATE_FILE)


def _make_parents(parent: Path, dst: Path) -> list[Path]:
    """Create DST's missing parent directories; return those created, deepest first."""
    missing = []
    here = parent
    while not here.exists() and not here.is_symlink() and here != here.parent:
        missing.append(here)
        here = here.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_created(missing)
        raise OutputExists(
            f"cannot create the directory {parent} for {dst.name} ({_os_message(exc)}); expected a directory "
            "or a path that can become one; choose another DST"
        ) from None
    return missing


def _remove_created(created: list[Path]) -> None:
    """Remove the directories a failed conversion created, deepest first, where they are still empty."""
    for directory in created:
        try:
            directory.rmdir()
        except OSError:
            break  # not empty (someone else wrote there) or gone: leave it and everything above


# --- messages ----------------------------------------------------------------------------------------


def _os_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    return " ".join(str(exc).split()) or type(exc).__name__


def _outside(message: str, staging: Path, dst: Path) -> str:
    """A message about the staged output, naming DST and its directory instead of ckit's staging path."""
    parent = dst.parent
    for stage in {str(staging), os.path.abspath(staging), str(staging.resolve())}:
        message = message.replace(f"{stage}{os.sep}{dst.name}", str(dst)).replace(stage, str(parent))
    return message.replace(staging.name + os.sep, "").replace(staging.name, str(parent))


def _restated(exc: CkitError, staging: Path, dst: Path) -> CkitError:
    message = _outside(" ".join(str(exc).split()), staging, dst)
    if message == str(exc):
        return exc
    try:
        return type(exc)(message)
    except Exception:  # noqa: BLE001 - an error class with another signature keeps its own words
        return CkitError(message)


# --- moving into place -------------------------------------------------------------------------------


def _move_into_place(
    paths: tuple[Path, ...], staging: Path, parent: Path, dst: Path, target: str, force: bool
) -> list[Path]:
    """Move every written path from the staging directory to its final place, all or nothing.

    What is replaced is first moved aside inside the staging directory (same file system) and
    only deleted with it once every new file is in place; any failure puts it all back.  A
    tf-checkpoint's `checkpoint` state file is merged with the one already there, and with
    --force the old data shards of the same prefix that the new bundle did not replace go too.
    """
    staged_root = staging.resolve()
    moves: list[tuple[Path, Path]] = []
    for path in paths:
        relative = Path(path).resolve().relative_to(staged_root)
        final = parent / relative
        _check_replaceable(final, dst, target, force)
        moves.append((Path(path), final))
    if target == "tf-checkpoint":
        _merge_state_file(moves, parent)
    finals = {final for _, final in moves}
    stale = [p for p in _prefix_data_files(dst) if p not in finals] if target == "tf-checkpoint" else []

    aside = staging / ".replaced"
    done: list[tuple[Path | None, Path, Path | None]] = []  # (placed new file, final, its old version aside)
    try:
        for n, (source, final) in enumerate(moves):
            saved = None
            if final.exists() or final.is_symlink():
                aside.mkdir(exist_ok=True)
                saved = aside / str(n)
                os.replace(final, saved)
            done.append((None, final, saved))
            os.replace(source, final)
            done[-1] = (final, final, saved)
        for n, old in enumerate(stale):  # only now that the new bundle is in place
            aside.mkdir(exist_ok=True)
            saved = aside / f"stale-{n}"
            os.replace(old, saved)
            done.append((None, old, saved))
    except BaseException as exc:
        for placed, final, saved in reversed(done):
            if placed is not None:
                if placed.is_dir() and not placed.is_symlink():
                    shutil.rmtree(placed, ignore_errors=True)
                else:
                    placed.unlink(missing_ok=True)
            if saved is not None:
                os.replace(saved, final)
        if isinstance(exc, OSError) and not isinstance(exc, CkitError):
            raise CkitError(
                f"cannot move the converted files into place at {dst} ({_outside(_os_message(exc), staging, dst)}); "
                f"expected a writable directory; nothing was changed: check {parent} and convert again"
            ) from exc
        raise
    return [final for _, final in moves]


def _merge_state_file(moves: list[tuple[Path, Path]], parent: Path) -> None:
    """Rewrite the staged `checkpoint` file so the existing one keeps listing its other checkpoints."""
    from .writers.tf_bundle import merge_checkpoint_state, parse_checkpoint_state

    for source, final in moves:
        if final.name != STATE_FILE or final.parent != parent or not final.is_file():
            continue
        new = parse_checkpoint_state(source.read_text(encoding="utf-8"))
        existing = parse_checkpoint_state(final.read_text(encoding="utf-8"), str(final))
        merged = merge_checkpoint_state(existing, new.model_checkpoint_path, time.time(), parent)
        source.write_text(merged.to_text(), encoding="utf-8")


@dataclass(frozen=True)
class _Written:
    """What verification found in the output: tensors by role, their bytes, and its notes."""

    by_role: dict[str, int]
    bytes: int
    notes: tuple[str, ...]


def _count_output(written: Path, target: str) -> _Written | None:
    from .placement import output_counts

    counted = output_counts(written, target)
    return _Written(by_role=counted[0], bytes=counted[1], notes=()) if counted else None


def _verify_output(
    layout: ModelLayout, recording: _RecordingReader, written: Path, target: str, source: Manifest | None = None
) -> _Written:
    """Prove by identity that the target's loader finds every weight where it came from
    (`converters.placement`), with the bytes the writer was handed."""
    from .placement import verify_output

    config = (layout.model_config or {}).get("config")
    names = {t.key: t.name for t in source.tensors} if source is not None else None
    by_role, nbytes, notes = verify_output(layout, recording.digests, written, target, config, names)
    return _Written(by_role=by_role, bytes=nbytes, notes=tuple(notes))


__all__ = ["ConvertResult", "convert", "build_layout", "resolve_target", "MappingError"]
