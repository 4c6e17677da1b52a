"""The data the validator trains and evaluates on: ckit's digits28, Keras's Fashion-MNIST cache, or a user's .npz.

Nothing here downloads: Fashion-MNIST is read from the files Keras's own
`fashion_mnist.load_data()` leaves in its cache, and only when they are there.
Images come back as float32 in [0, 1], labels as int64 class ids.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspector.errors import CkitError, CorruptArtifact, MissingData, first_line

DATASETS = ("digits28", "fashion_mnist")

# Keras keeps Fashion-MNIST under <cache>/datasets/fashion-mnist with these names.
FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

# idx type byte -> numpy dtype (big-endian where it matters), from the MNIST file format.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Dataset:
    """Test data (always) and training data (when there is some), ready to feed a model."""

    name: str
    x_test: np.ndarray
    y_test: np.ndarray
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    source: str = ""  # the file or directory it was read from

    @property
    def has_train(self) -> bool:
        return self.x_train is not None and self.y_train is not None

    def __repr__(self) -> str:
        train = f"{len(self.x_train)} train, " if self.has_train else ""
        return f'<Dataset "{self.name}": {train}{len(self.x_test)} test, samples {self.x_test.shape[1:]}>'


def load_dataset(name: str = "digits28", *, data: str | Path | None = None, cache_dir: str | Path | None = None) -> Dataset:
    """The dataset the validator uses: `data` (an .npz) wins over `name`."""
    if data is not None:
        return load_npz(data)
    if name == "digits28":
        return load_npz(digits28_path(), name="digits28")
    if name in ("fashion_mnist", "fashion-mnist"):
        return load_fashion_mnist(cache_dir)
    raise CkitError(
        f"dataset '{name}' is not known; expected one of: {', '.join(DATASETS)}, or pass --data file.npz"
    )


def digits28_path() -> Path:
    """Where ckit's own small dataset lives: inside the package (source tree and installs alike)."""
    path = Path(__file__).resolve().parent / "data" / "digits28.npz"
    if not path.is_file():
        raise MissingData(
            f"ckit's dataset {path} is missing; reinstall ckit, or pass --data file.npz or --dataset fashion_mnist"
        )
    return path


def load_npz(path: str | Path, *, name: str | None = None) -> Dataset:
    """A dataset from an .npz holding x_test, y_test and optionally x_train, y_train."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MissingData(f"data file {path} does not exist; pass an .npz with x_test and y_test") from None
    except (OSError, ValueError) as exc:
        raise CorruptArtifact(
            f"data file {path} is not a readable .npz ({first_line(exc)}); save it with numpy.savez(path, x_test=..., y_test=...)"
        ) from None
    with archive:
        keys = set(archive.files)
        missing = {"x_test", "y_test"} - keys
        if missing:
            raise MissingData(
                f"data file {path} has arrays {sorted(keys)} but no {', '.join(sorted(missing))}; "
                "save it with numpy.savez(path, x_test=..., y_test=..., x_train=..., y_train=...)"
            )
        has_train = {"x_train", "y_train"} <= keys
        arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test") if key in keys}
    if not has_train:
        arrays.pop("x_train", None)
        arrays.pop("y_train", None)
    return _dataset(name or path.stem, str(path), arrays)


def load_fashion_mnist(cache_dir: str | Path | None = None) -> Dataset:
    """Fashion-MNIST from Keras's dataset cache (never downloaded)."""
    directory = fashion_mnist_dir(cache_dir)
    arrays = {}
    for key, filename in FASHION_MNIST_FILES.items():
        path = directory / filename
        if not path.is_file():
            raise MissingData(
                f"Fashion-MNIST is not in the Keras cache: {path} is missing; ckit never downloads, so run "
                "keras.datasets.fashion_mnist.load_data() once on a machine with network access "
                "(or pass --data file.npz, or leave --dataset out for ckit's digits28)"
            )
        arrays[key] = read_idx_gz(path)
    return _dataset("fashion_mnist", str(directory), arrays)


def fashion_mnist_dir(cache_dir: str | Path | None = None) -> Path:
    """Keras's cache directory for Fashion-MNIST: `cache_dir`, else $KERAS_HOME, else ~/.keras."""
    if cache_dir is not None:
        base = Path(cache_dir)
        # Accept the cache root, its datasets/ folder, or the fashion-mnist folder itself.
        for candidate in (base, base / "fashion-mnist", base / "datasets" / "fashion-mnist"):
            if (candidate / FASHION_MNIST_FILES["x_test"]).is_file():
                return candidate
        return base / "datasets" / "fashion-mnist"
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(keras_home) / "datasets" / "fashion-mnist"


def read_idx_gz(path: str | Path) -> np.ndarray:
    """One array from a gzip-compressed idx file (the MNIST container format)."""
    path = Path(path)
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise CorruptArtifact(f"{path}: not a readable gzip file ({first_line(exc)}); delete it and let Keras fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise CorruptArtifact(f"{path}: no idx header (expected 00 00 <type> <ndim>); delete it and let Keras fetch it again")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptArtifact(f"{path}: idx header declares {ndim} dimensions but the file ends after {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise CorruptArtifact(
            f"{path}: idx header declares shape {shape} ({expected} bytes) but holds {len(raw) - header} bytes of data; "
            "delete it and let Keras fetch it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx_gz(path: str | Path, array: np.ndarray) -> Path:
    """Write `array` as a gzip-compressed idx file, the inverse of `read_idx_gz` (for test caches)."""
    codes = {np.dtype(dtype).newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise CkitError(f"idx files hold {sorted(str(d) for d in codes)}, not {array.dtype}; cast the array first")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path = Path(path)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(array.dtype.newbyteorder(">")).tobytes())
    return path


def write_fashion_mnist_cache(root: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Lay out x_train, y_train, x_test, y_test the way Keras's cache under `root` holds Fashion-MNIST."""
    directory = Path(root) / "datasets" / "fashion-mnist"
    directory.mkdir(parents=True, exist_ok=True)
    for key, filename in FASHION_MNIST_FILES.items():
        write_idx_gz(directory / filename, arrays[key])
    return directory


def _dataset(name: str, source: str, arrays: dict[str, np.ndarray]) -> Dataset:
    for split in ("train", "test"):
        if f"x_{split}" not in arrays:
            continue
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
            raise CorruptArtifact(
                f"data {source}: x_{split} has shape {x.shape} and y_{split} has shape {y.shape}; expected "
                f"x_{split} of shape (N, ...) and y_{split} of shape (N,) with the same N"
            )
        if len(x) == 0:
            raise CorruptArtifact(f"data {source}: x_{split} is empty; expected at least one sample")
        if not np.issubdtype(y.dtype, np.integer):
            raise CorruptArtifact(
                f"data {source}: y_{split} has dtype {y.dtype}; expected integer class ids (save labels with .astype('int64'))"
            )
        arrays[f"x_{split}"] = _scale(x)
        arrays[f"y_{split}"] = y.astype(np.int64)
    if "x_train" in arrays and arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise CorruptArtifact(
            f"data {source}: x_train samples have shape {arrays['x_train'].shape[1:]} but x_test samples "
            f"{arrays['x_test'].shape[1:]}; expected the same sample shape"
        )
    return Dataset(name=name, source=source, **arrays)


def _scale(x: np.ndarray) -> np.ndarray:
    # uint8 images are pixel values (the tutorial divides by 255); integer token ids stay integers.
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32)
    return x.astype(np.int32)

