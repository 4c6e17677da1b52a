"""npz writer: numpy's own archive format, one `.npy` member per tensor, written without pickle.

An `.npz` is a zip of `NAME.npy` members (numpy.lib.format); `numpy.load(path)`
gives a mapping NAME -> array.  Members are stored uncompressed with a fixed
timestamp, as `numpy.savez` stores them, so the same tensors give the same bytes.
Each value is streamed into its member, one tensor in memory at a time; object
arrays (which numpy could only store by pickling) are refused, so every file
loads with `allow_pickle=False`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from inspector.errors import UnsupportedFeature

from ..layout import ModelLayout, WeightRef
from .base import WriteOptions, WriteResult, fetch

_DATE = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: no clock in the output


def _check(ref: WeightRef) -> None:
    if ref.dtype in ("string", "resource", "variant") or ref.dtype.startswith("dtype_"):
        raise UnsupportedFeature(
            f"tensor '{ref.name}' has dtype {ref.dtype}, which an npz file can hold only by pickling; ckit "
            "writes npz without pickle; leave it out with --map (exclude) or choose a tf-checkpoint target"
        )


def write_npz(items: list[tuple[str, WeightRef]], layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
    """Write (member name, tensor) pairs to `dst` as an uncompressed .npz."""
    for _, ref in items:
        _check(ref)  # before the first byte is written
    with zipfile.ZipFile(dst, "x", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, ref in items:
            value = fetch(layout, ref)
            if value.dtype == object:
                _check(WeightRef(ref.name, "string", ref.shape, ref.source_key))
            if not value.flags.c_contiguous:  # (np.ascontiguousarray would make a scalar 1-d)
                value = value.copy(order="C")
            info = zipfile.ZipInfo(name + ".npy", date_time=_DATE)
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, value, allow_pickle=False)
            if options.progress:
                options.progress(ref, int(value.nbytes))
    return WriteResult(paths=(dst,))


class NpzWriter:
    """The `Writer` registered as `npz`; conversions reach `write_npz` through `converters.flat`."""

    name = "npz"
    description = "numpy .npz archive (flat name -> array, no pickle; numpy.load(path) reads it)"
    suffixes = (".npz",)

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        from .safetensors import optimizer_name

        items = [(ref.name, ref) for ref in layout.flat_weights()]
        if options.include_optimizer:
            items += [(optimizer_name(ref.name), ref) for ref in layout.optimizer if ref.name]
        return write_npz(items, layout, Path(dst), options)


NPZ_WRITER = NpzWriter()
