"""Writer for Keras 3 `.keras` archives: metadata.json, config.json and model.weights.h5 in one zip.

The archive is laid out as Keras 3.15 `model.save("x.keras")` lays it out:
members stored uncompressed (Keras opens the zip with the default
ZIP_STORED), metadata first, then the serialized model, then the weights
file, whose groups follow the Keras 3 model rebuilt from the config.  The
weights are streamed into a temporary file beside the destination and copied
into the zip, so memory holds one tensor at a time.
"""

from __future__ import annotations

import datetime
import json
import tempfile
import zipfile
from pathlib import Path

from inspector.errors import UnsupportedFeature

from ..keras3_config import keras3_model_config, refuse_keras2_only_activations
from ..layout import ModelLayout
from .base import WriteOptions, WriteResult
from .hdf5_keras3 import optimizer_notes, plan_from_model, write_h5

CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"

COMPILE_NOTE = (
    "the model is saved uncompiled: tf_keras training configs do not translate to Keras 3 compile "
    "configs; call model.compile(...) after loading"
)


class KerasArchiveWriter:
    """`keras3-model`: a `.keras` zip that `keras.models.load_model` opens with safe_mode on."""

    name = "keras3-model"
    description = "Keras 3 model archive (.keras: config.json + model.weights.h5)"
    suffixes = (".keras",)

    def write(self, layout: ModelLayout, dst: Path, options: WriteOptions) -> WriteResult:
        dst = Path(dst)
        if dst.suffix != ".keras":
            raise UnsupportedFeature(
                f"keras3-model writes '*.keras' files (Keras 3 refuses other names), got '{dst.name}'; "
                "rename the destination"
            )
        refuse_keras2_only_activations(layout)  # before Keras 3 rebuilds it with another function
        k3 = keras3_model_config(layout)
        plan = plan_from_model(layout, k3.model)
        notes = optimizer_notes(layout)
        config = k3.config
        if layout.training_config and not config.get("compile_config"):
            from ..keras3_config import keras3_compile_config

            compile_config, note = keras3_compile_config(layout.training_config, k3.model)
            if compile_config is not None:
                config = {**config, "compile_config": compile_config}
            else:
                notes.append(note or COMPILE_NOTE)

        import keras

        metadata = {
            "keras_version": keras.__version__,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        }
        with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".ckit-") as tmp:
            weights = Path(tmp) / WEIGHTS_MEMBER
            write_h5(plan, layout.read, weights, options.progress)
            with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(METADATA_MEMBER, json.dumps(metadata))
                zf.writestr(CONFIG_MEMBER, json.dumps(config))
                zf.write(weights, WEIGHTS_MEMBER)
        return WriteResult(paths=(dst,), notes=tuple(notes))


KERAS3_MODEL_WRITER = KerasArchiveWriter()
