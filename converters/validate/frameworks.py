"""The worker's frameworks: imported once, with the backend checked and the device described."""

from __future__ import annotations

import importlib
from typing import Any

from inspector.errors import CkitError

from . import blocker


def import_frameworks(backend: str) -> dict[str, Any]:
    """{"keras": keras} plus, on the tensorflow backend when installed, "tf" and "tf_keras"."""
    import logging
    import warnings

    # Framework chatter (deprecations, HDF5 "legacy format" advice) is noise in a report.
    warnings.filterwarnings("ignore")
    frameworks: dict[str, Any] = {}
    if backend != "tensorflow":
        blocker.block()
    else:
        try:
            import tensorflow as tf

            tf.get_logger().setLevel(logging.ERROR)
            frameworks["tf"] = tf
            import tf_keras

            frameworks["tf_keras"] = tf_keras
        except ImportError:
            pass
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    import keras

    if keras.backend.backend() != backend:
        raise CkitError(
            f"Keras 3 came up with the {keras.backend.backend()} backend, expected {backend}; "
            "unset KERAS_BACKEND in ~/.keras/keras.json or pass --backend"
        )
    frameworks["keras"] = keras
    _full_float32(backend)
    return frameworks


def _full_float32(backend: str) -> None:
    # A recorded baseline was computed in full float32 on a CPU; a GPU's TF32 matmuls (JAX's
    # default on Ampere and later) would move logits by ~1e-3 and measure the GPU, not the weights.
    if backend == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")
    elif backend == "torch":
        import torch

        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = False


def describe_device(backend: str, frameworks: dict[str, Any], wanted: str) -> str:
    """The device the frameworks compute on, described; refuses --device gpu without one."""
    if backend == "tensorflow":
        tf = frameworks["tf"] if "tf" in frameworks else importlib.import_module("tensorflow")
        gpus = tf.config.list_physical_devices("GPU")
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        seen = "cpu"
    elif backend == "jax":
        import jax

        devices = jax.devices()
        names = [d.device_kind for d in devices if d.platform == "gpu"]
        seen = ", ".join(sorted({d.platform for d in devices}))
    else:
        import torch

        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
        seen = "cpu"
    if wanted == "gpu" and not names:
        raise CkitError(
            f"--device gpu: the {backend} backend sees no GPU (devices: {seen}); use --device cpu or auto, "
            f"or install a CUDA build of {backend}"
        )
    return f"gpu: {names[0]}" if names else "cpu"
