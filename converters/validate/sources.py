"""The artifacts a validation starts from, with the baseline logits they must reproduce.

Without ARTIFACT: the tutorial story, trained here and saved in every format the
frameworks present can write.  With ARTIFACT: the user's file, reloaded once with
the first loader for its format to give the baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inspector import errors
from inspector.errors import CkitError, MappingError

from .loaders import detect_format, predict
from .matrix import KERAS3_SOURCES, TF_KERAS_SOURCES, first_line, target_path
from .scoring import check_labels

if TYPE_CHECKING:
    from .worker import Worker


def train_and_save(worker: Worker) -> tuple[np.ndarray, dict[str, Path]]:
    """Train the model (tf_keras where present, else Keras 3), save it in every format, return its logits."""
    options, data = worker.options, worker.data
    trainer = "tf_keras" if worker.has_tf_keras else "keras"
    model = worker.fresh_model(trainer, seed=options.seed)
    if data.x_train is not None:
        worker.say(
            f"training {worker.model_spec} with {trainer} ({worker.backend if trainer == 'keras' else 'tensorflow'}) "
            f"for {options.epochs} epoch(s) on {len(data.x_train)} {data.name} samples"
        )
        try:
            model.fit(data.x_train, data.y_train, epochs=options.epochs, batch_size=options.batch_size, verbose=0)
        except Exception as exc:  # noqa: BLE001 - the framework's own error, made one line
            raise MappingError(
                f"training {worker.model_spec} on {data.name} failed ({type(exc).__name__}: {first_line(exc)}); "
                "pass --data whose labels fit the model's outputs"
            ) from None
    else:
        worker.notes.append("the data has no x_train/y_train: the untrained model was validated")
    baseline = predict(model, data.x_test, trainer, worker.frameworks)
    check_labels(baseline, data.y_test, worker.model_spec)
    sources: dict[str, Path] = {}
    root = worker.workdir / "sources"
    if trainer == "tf_keras":
        for fmt in TF_KERAS_SOURCES:
            path = target_path(root / fmt, fmt)
            worker.say(f"saving {fmt} with tf_keras -> {path.relative_to(worker.workdir)}")
            if fmt in ("h5-weights", "tf-checkpoint"):
                model.save_weights(str(path))
            else:
                model.save(str(path))
            sources[fmt] = path
        keras3_model = worker.fresh_model("keras")
        keras3_model.set_weights(model.get_weights())
    else:
        keras3_model = model
    sources.update(save_keras3(worker, keras3_model, root))
    return baseline, sources


def save_keras3(worker: Worker, model: object, root: Path) -> dict[str, Path]:
    """The Keras 3 sources: `.weights.h5` and `.keras`, saved by Keras 3 itself."""
    sources = {}
    for fmt in KERAS3_SOURCES:
        path = target_path(root / fmt, fmt)
        worker.say(f"saving {fmt} with Keras 3 -> {path.relative_to(worker.workdir)}")
        if fmt == "keras3-weights":
            model.save_weights(str(path))  # type: ignore[attr-defined]
        else:
            model.save(str(path))  # type: ignore[attr-defined]
        sources[fmt] = path
    return sources


def load_user_artifact(worker: Worker, path: Path) -> tuple[np.ndarray, dict[str, Path]]:
    """The user's artifact as the one source; its first loader's logits are the baseline."""
    fmt = detect_format(path)
    loaders = worker.loaders(fmt)
    if not loaders:
        raise errors.UnsupportedFeature(
            f"{path} is a {fmt} artifact, which the {worker.backend} backend cannot load without TensorFlow; "
            "run with --backend tensorflow where TensorFlow and tf_keras are installed"
        )
    try:
        predictor = worker.load(loaders[0], fmt, path)
        worker.say(f"baseline: {path} ({fmt}) loaded with {predictor.loader} for {worker.model_spec}")
        baseline = predictor(worker.data.x_test)
    except CkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - the framework's message, made one line
        raise MappingError(
            f"{path} ({fmt}) does not fit model {worker.model_spec}: {loaders[0]} failed with "
            f"{type(exc).__name__}: {first_line(exc)}; pass the --model factory that built this artifact"
        ) from None
    check_labels(baseline, worker.data.y_test, worker.model_spec)
    return baseline, {fmt: path}
