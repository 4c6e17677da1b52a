"""What the validation matrix holds: the formats, where each is saved, and the loaders that prove each one."""

from __future__ import annotations

from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
DEVICES = ("auto", "cpu", "gpu")
DEFAULT_MODEL = "converters.zoo:seed_model"

# Bit-identical weights give identical logits on one device (every row of the default
# CPU run differs by exactly 0, tf_keras and Keras 3 alike); the tolerance leaves room
# for a GPU choosing a different kernel for a reloaded model, nothing more.
DEFAULT_TOLERANCE = 1e-5
# Against logits recorded elsewhere (tf_keras on a CPU, `fixtures/validation/`): the same weights
# through another framework's kernels.  Measured: see RECORDED_TOLERANCE_MEASURED in the README.
RECORDED_TOLERANCE = 1e-4
# Targets ckit writes only with TensorFlow's help; without tf_keras they are not attempted.
NEEDS_TF_TO_WRITE = frozenset({"saved-model"})
# Full-model formats carry the model's config; converting weights-only sources into them needs --model.
MODEL_FORMATS = frozenset({"h5-model", "saved-model", "keras3-model"})

# Where each format is saved inside a directory, by the frameworks and by ckit alike.
FILENAMES = {
    "h5-weights": "weights.h5",
    "h5-model": "model.h5",
    "tf-checkpoint": "ckpt/weights",
    "saved-model": "saved_model",
    "keras3-weights": "model.weights.h5",
    "keras3-model": "model.keras",
    "safetensors": "model.safetensors",
}
TARGETS = tuple(FILENAMES)
TF_KERAS_SOURCES = ("h5-weights", "tf-checkpoint", "h5-model", "saved-model")
KERAS3_SOURCES = ("keras3-weights", "keras3-model")

# The framework loaders each target is proven with, when tf_keras is there ...
TF_LOADERS: dict[str, tuple[str, ...]] = {
    "h5-weights": ("tf_keras.Model.load_weights",),
    "h5-model": ("tf_keras.models.load_model", "keras.models.load_model"),
    "tf-checkpoint": ("tf_keras.Model.load_weights",),
    "saved-model": ("tf_keras.models.load_model",),
    "keras3-weights": ("keras.Model.load_weights",),
    "keras3-model": ("keras.models.load_model",),
    "safetensors": ("tf_keras.Model.set_weights",),
}
# ... and with Keras 3 alone (jax, torch, or TensorFlow without tf_keras).
KERAS3_LOADERS: dict[str, tuple[str, ...]] = {
    "h5-weights": ("keras.Model.load_weights",),
    "h5-model": ("keras.models.load_model",),
    "keras3-weights": ("keras.Model.load_weights",),
    "keras3-model": ("keras.models.load_model",),
    "safetensors": ("keras.Model.set_weights",),
}


def target_path(directory: Path, fmt: str) -> Path:
    """Where `fmt` is saved under `directory` (its parent folders made)."""
    path = directory / FILENAMES[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def no_loader_reason(target: str, backend: str) -> str:
    return f"reloading {target} needs tf_keras (TensorFlow); Keras 3 on {backend} has no loader for it"


def first_line(exc: BaseException) -> str:
    """An exception as one line of at most 300 characters, for a matrix row or an error message."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
