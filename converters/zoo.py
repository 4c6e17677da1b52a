"""The training models ckit ships: the tutorial's seed model and two harder ones.

Each factory takes the Keras module to build with (`tf_keras` for Keras 2,
`keras` for Keras 3), so fixtures, tests and the validator share one
definition.  `--model converters.zoo:seed_model` names one on the command line.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def _default_keras() -> ModuleType:
    import keras

    return keras


def seed_model(keras: ModuleType | None = None) -> Any:
    """Flatten(28x28) -> Dense(128, relu) -> Dropout(0.2) -> Dense(10): the classic tutorial model."""
    keras = keras or _default_keras()
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10),
        ]
    )
    compile_model(model, keras)
    return model


def cnn_model(keras: ModuleType | None = None) -> Any:
    """Functional CNN with BatchNormalization and a nested Sequential head."""
    keras = keras or _default_keras()
    inputs = keras.Input(shape=(28, 28), name="image")
    x = keras.layers.Reshape((28, 28, 1))(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    head = keras.Sequential(
        [keras.Input(shape=(16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)],
        name="head",
    )
    outputs = head(x)
    model = keras.Model(inputs, outputs, name="cnn")
    compile_model(model, keras)
    return model


def lstm_model(keras: ModuleType | None = None) -> Any:
    """Embedding(100, 8) -> LSTM(16) -> Dense(10) over sequences of 20 token ids."""
    keras = keras or _default_keras()
    model = keras.Sequential(
        [
            keras.Input(shape=(LSTM_SEQUENCE_LENGTH,), dtype="int32"),
            keras.layers.Embedding(LSTM_VOCABULARY, 8),
            keras.layers.LSTM(16),
            keras.layers.Dense(10),
        ]
    )
    compile_model(model, keras)
    return model


LSTM_SEQUENCE_LENGTH = 20
LSTM_VOCABULARY = 100


def sample_inputs(model_name: str, count: int = 32, seed: int = 0):
    """Deterministic inputs for comparing logits of one model across artifacts."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if model_name == "lstm":
        return rng.integers(0, LSTM_VOCABULARY, size=(count, LSTM_SEQUENCE_LENGTH), dtype=np.int32)
    return rng.random((count, 28, 28), dtype=np.float32)


def compile_model(model: Any, keras: ModuleType) -> None:
    """The tutorial's training setup: RMSprop, sparse CE from logits, accuracy."""
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


MODELS = {"seed": seed_model, "cnn": cnn_model, "lstm": lstm_model}
