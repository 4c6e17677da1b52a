"""The artifacts a validation starts from, with the baseline logits they must reproduce.

Without ARTIFACT, with TensorFlow: the tutorial story, trained here by tf_keras and saved in
every format.  Without ARTIFACT or TensorFlow (jax, torch, a GPU machine): the tutorial model as
tf_keras trained and saved it in the four Keras 2 formats (the committed `fixtures/seed/tf_keras`
artifacts) with the logits tf_keras recorded on digits28 (`fixtures/validation/`), plus the two
Keras 3 formats saved here from it; where those files are absent (an installed wheel), or for
another model or data, Keras 3 trains.  With ARTIFACT: the user's file, reloaded once with the
first loader for its format to give the baseline.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inspector import errors
from inspector.errors import CkitError, MappingError

from .loaders import detect_format, predict
from .matrix import DEFAULT_MODEL, KERAS3_SOURCES, TF_KERAS_SOURCES, first_line, target_path
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
    worker.writers.update({fmt: trainer for fmt in TF_KERAS_SOURCES})
    worker.writers.update({fmt: "keras" for fmt in KERAS3_SOURCES})
    if trainer == "tf_keras":
        for fmt in TF_KERAS_SOURCES:
            path = target_path(root / fmt, fmt)
            worker.say(f"saving {fmt} with tf_keras -> {path.relative_to(worker.workdir)}")
            sources[fmt] = save_as(model, fmt, path)
        keras3_model = worker.fresh_model("keras")
        keras3_model.set_weights(model.get_weights())
    else:
        keras3_model = model
    sources.update(save_keras3(worker, keras3_model, root))
    return baseline, sources


def save_keras3(worker: Worker, model: Any, root: Path) -> dict[str, Path]:
    """The Keras 3 sources: `.weights.h5` and `.keras`, saved by Keras 3 itself."""
    sources = {}
    for fmt in KERAS3_SOURCES:
        path = target_path(root / fmt, fmt)
        worker.say(f"saving {fmt} with Keras 3 -> {path.relative_to(worker.workdir)}")
        sources[fmt] = save_as(model, fmt, path)
    return sources


def save_as(model: Any, fmt: str, path: Path) -> Path:
    """`model` saved in `fmt` by its own framework (the format follows from `path`'s name, as in matrix.FILENAMES)."""
    if fmt in ("h5-weights", "tf-checkpoint", "keras3-weights"):
        model.save_weights(str(path))
    else:
        model.save(str(path))
    return path


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


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RECORD = FIXTURES / "validation" / "seed_tf_keras_digits28.json"


def recorded(worker: Worker) -> tuple[np.ndarray, dict[str, Path], str] | None:
    """The tf_keras sources and their recorded logits, when this run can use them (else None, with a note why not).

    Each source file's sha256 is checked against the record: logits recorded from other bytes
    would make every row disagree for a reason that is not ckit's.
    """
    if worker.model_spec != DEFAULT_MODEL or worker.data.name != "digits28" or worker.options.data is not None:
        return None
    if not RECORD.is_file():
        worker.notes.append(
            f"the recorded tf_keras sources are not here ({RECORD.relative_to(FIXTURES.parent)} is in ckit's source "
            "tree): Keras 3 trained the model, so only the Keras 3 sources were validated"
        )
        return None
    record = json.loads(RECORD.read_text())
    for rel, digest in record["sha256"].items():
        path = FIXTURES / rel
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            worker.notes.append(
                f"fixtures/{rel} differs from the file whose logits were recorded; Keras 3 trained the model instead "
                "(remake the record: fixtures/make_fixtures.py --only validation)"
            )
            return None
    with np.load(RECORD.with_suffix(".npz")) as archive:
        baseline = archive["logits"]
    if baseline.shape[0] != len(worker.data.x_test):
        return None
    found = {fmt: FIXTURES / rel for fmt, rel in record["sources"].items()}
    worker.writers.update({fmt: "tf_keras" for fmt in found})
    worker.writers.update({fmt: "keras" for fmt in KERAS3_SOURCES})
    # Keras 3's own legacy-HDF5 reader takes the tf_keras weights; Keras 3 then saves its two formats.
    model = worker.fresh_model("keras")
    model.load_weights(str(found["h5-weights"]))
    worker.say(f"sources: the tf_keras artifacts in {found['h5-weights'].parent}, recorded logits from {RECORD.name}")
    found.update(save_keras3(worker, model, worker.workdir / "sources"))
    versions = record["recorded_with"]
    where = f"recorded by tf_keras {versions['tf_keras']} on {versions['device']}"
    return baseline, found, where
