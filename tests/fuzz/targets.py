"""Fuzz targets: every reader, fed real fixtures with bytes changed (issue 9).

A target is an artifact from `fixtures/` and the one file of it to damage.  One input is a list of
edits (set a byte, flip a bit, truncate, duplicate a span) applied to that file in a scratch copy
of the artifact; then the artifact is opened, every tensor read and verified.  The only allowed
outcomes are success or a `CkitError` (ckit's one-line errors); anything else is an escape.  Time
and memory are bounded by the readers themselves (the HDF5 worker's limits), which is what the
harness checks: `run_one` fails on a run above `MAX_SECONDS`.

`tests/fuzz/test_fuzz.py` runs each target for a few seconds under hypothesis in CI;
`python -m tests.fuzz.run --seconds N` runs them as long as wanted and reports what escaped.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
# The bound for a quiet machine, counted in CPU seconds (ckit's and its HDF5 worker's), so
# a machine busy with other work does not turn a slow run into a finding; wall time is capped too.
MAX_SECONDS = 10.0
MAX_WALL_SECONDS = 60.0


@dataclass(frozen=True)
class Target:
    name: str
    artifact: str  # relative to fixtures/: what ckit opens (file or directory)
    damage: str  # relative to the artifact's directory copy: the file the edits apply to
    open_as: str = ""  # relative path to open inside the copy ("" = the artifact itself)


TARGETS = (
    Target("tf-checkpoint-index", "seed/tf_keras/ckpt", "weights.index", "weights"),
    Target("tf-checkpoint-data", "seed/tf_keras/ckpt", "weights.data-00000-of-00001", "weights"),
    Target("saved-model-pb", "seed/tf_keras/saved_model", "saved_model.pb"),
    Target("saved-model-keras-metadata", "seed/tf_keras/saved_model", "keras_metadata.pb"),
    Target("h5-weights", "seed/tf_keras/weights.h5", "weights.h5"),
    Target("h5-model", "seed/tf_keras/model.h5", "model.h5"),
    Target("h5-model-lstm", "lstm/tf_keras/model.h5", "model.h5"),
    Target("keras3-legacy-h5", "seed/keras3/legacy.h5", "legacy.h5"),
    Target("keras3-weights-h5", "seed/keras3/model.weights.h5", "model.weights.h5"),
    Target("keras3-weights-json", "seed/keras3/sharded", "model.weights.json", "model.weights.json"),
    Target("keras3-shard", "seed/keras3/sharded", "model_00001.weights.h5", "model.weights.json"),
    Target("keras3-model", "seed/keras3/model.keras", "model.keras"),
    Target("safetensors", "", "model.safetensors"),
    Target("npz", "seed/reference.npz", "reference.npz"),
)


def seed_safetensors(dst: Path) -> Path:
    """A safetensors file of the seed model's weights (there is no safetensors fixture to copy)."""
    import numpy as np

    from inspector.registry import open_artifact

    header, blobs, offset = {}, [], 0
    with open_artifact(FIXTURES / "seed" / "tf_keras" / "weights.h5") as reader:
        for t in reader.manifest.tensors:
            value = np.ascontiguousarray(reader.read_tensor(t.key), dtype="<f4")
            header[t.name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + value.nbytes]}
            blobs.append(value.tobytes())
            offset += value.nbytes
    raw = json.dumps(header).encode()
    dst.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    return dst


def prepare(target: Target, scratch: Path) -> tuple[Path, Path, bytes]:
    """A scratch copy of the target's artifact: (path to open, file to damage, its original bytes)."""
    scratch.mkdir(parents=True, exist_ok=True)
    if target.name == "safetensors":
        path = seed_safetensors(scratch / target.damage)
        return path, path, path.read_bytes()
    src = FIXTURES / target.artifact
    if src.is_dir():
        copy = scratch / src.name
        if not copy.exists():
            shutil.copytree(src, copy)
        opened = copy / target.open_as if target.open_as else copy
        damaged = copy / target.damage
    else:
        copy = scratch / src.name
        shutil.copyfile(src, copy)
        opened = damaged = copy
    return opened, damaged, damaged.read_bytes()


def mutate(original: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply edits (kind, position, value): 0 set byte, 1 flip bit, 2 truncate, 3 duplicate a span, 4 zero a span."""
    data = bytearray(original)
    for kind, position, value in edits:
        if not data:
            break
        pos = position % len(data)
        if kind == 0:
            data[pos] = value & 0xFF
        elif kind == 1:
            data[pos] ^= 1 << (value % 8)
        elif kind == 2:
            del data[pos:]
        elif kind == 3:
            span = bytes(data[pos : pos + 1 + value % 64])
            data[pos:pos] = span
        else:
            data[pos : pos + 1 + value % 64] = bytes(len(data[pos : pos + 1 + value % 64]))
    return bytes(data)


def run_one(opened: Path, damaged: Path, data: bytes) -> str:
    """Write `data`, then dump and verify the artifact.  'ok' or 'clean'; raises on an escape."""
    from inspector.errors import CkitError
    from inspector.render import render_json, render_table
    from inspector.verify import verify_artifact

    from inspector.registry import read_manifest

    import resource

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    damaged.write_bytes(data)
    start, start_cpu = time.monotonic(), cpu()
    try:
        manifest = read_manifest(opened)
        render_table(manifest).encode("utf-8")
        render_json(manifest)
        verify_artifact(opened)
        outcome = "ok"
    except CkitError as exc:
        assert "\n" not in str(exc), str(exc)
        outcome = "clean"
    elapsed, used = time.monotonic() - start, cpu() - start_cpu
    if used > MAX_SECONDS or elapsed > MAX_WALL_SECONDS:
        raise TimeoutError(f"{opened}: took {used:.1f} s of CPU, {elapsed:.1f} s of wall time "
                           f"(limits {MAX_SECONDS} s, {MAX_WALL_SECONDS} s)")
    return outcome
