"""Telling a framework's limitation from a ckit failure, when a loader refuses a file.

A loader refusing a file another framework saved (for a user's artifact: a loader other than the
one that gave the baseline) is that framework's limitation, e.g. Keras 3 and an LSTM that tf_keras
saved (`Unrecognized keyword arguments passed to LSTM: {'time_major': False}`).  A converted file
refused with the same error as the file of its format that the format's own framework saves for
this model is too: ckit wrote what the framework writes.  Any other refusal is ckit's failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import sources
from .matrix import first_line, target_path
from .report import Result

if TYPE_CHECKING:
    from .worker import Worker


def classify(worker: Worker, source: str, target: str, loader: str, path: Path, error: str) -> Result:
    """The row for `loader` refusing `path` with `error`: a framework limitation (skipped) or a failure."""
    shown = error.replace(str(path), "<file>")
    writer = worker.writers.get(source)
    if source == target and (loader.split(".")[0] != writer if writer else loader != worker.loaders(source)[0]):
        worker.refusals[(loader, target)] = shown
        saved = f"the {target} {writer} saved" if writer else "the artifact as given"
        return Result(source, target, loader, ok=None, limitation=True,
                      note=f"framework limitation: {loader} cannot load {saved}: {error}")
    if source != target and (loader, target) not in worker.refusals:
        worker.refusals[(loader, target)] = refusal_of_framework_saved(worker, loader, target, path)
    if source != target and worker.refusals.get((loader, target)) == shown:
        saver = worker.writers.get(target) or worker.loaders(target)[0].split(".")[0]
        return Result(source, target, loader, ok=None, limitation=True,
                      note=f"framework limitation: {loader} refuses this model's {target} as {saver} saves it too: {error}")
    return Result(source, target, loader, ok=False, note=f"reload failed: {error}")


def refusal_of_framework_saved(worker: Worker, loader: str, target: str, path: Path) -> str:
    """What `loader` says about a `target` file the format's own framework saved ("" if it loads it).

    The file is ckit's `path` reloaded by the format's first loader and saved again by that
    framework, so it holds what the framework itself writes for this model.
    """
    native = worker.loaders(target)[0]
    if native.split(".")[0] == loader.split(".")[0]:
        return ""
    resaved = target_path(worker.workdir / "framework-saved" / target, target)
    try:
        model = worker.load(native, target, path).model
        if model is None:
            return ""
        sources.save_as(model, target, resaved)
    except Exception:  # noqa: BLE001 - no framework-saved file to compare with
        return ""
    try:
        worker.load(loader, target, resaved)
    except Exception as exc:  # noqa: BLE001 - the refusal is what is asked for
        return f"{type(exc).__name__}: {first_line(exc)}".replace(str(resaved), "<file>")
    return ""
