"""Optimizer state travels between Keras 2 formats and restores into tf_keras's own optimizer."""

from __future__ import annotations

import numpy as np
import pytest

from converters import zoo
from converters.convert import convert
from tests.conftest import FIXTURES


def _optimizer_values(model) -> list[np.ndarray]:
    return [np.asarray(v) for v in model.optimizer.variables]


@pytest.mark.parametrize("source", ["tf_keras/model.h5", "tf_keras/ckpt/weights"])
@pytest.mark.parametrize("model_name", ["seed", "cnn", "lstm"])
def test_slots_and_iterations_restore_into_tf_keras(tmp_path, model_name, source):
    import tf_keras

    # The reference: tf_keras restoring its own training checkpoint (optimizer built first, so that
    # load_weights restores the slots at once rather than deferring them).
    reference = zoo.MODELS[model_name](tf_keras)
    reference.optimizer.build(reference.trainable_variables)
    reference.load_weights(str(FIXTURES / model_name / "tf_keras/ckpt/weights"))
    expected = _optimizer_values(reference)
    assert int(expected[0]) > 0, "the fixture was trained: its iteration count is not zero"

    result = convert(FIXTURES / model_name / source, tmp_path / "w", to="tf-checkpoint")
    assert not any("optimizer" in note for note in result.notes), result.notes
    model = zoo.MODELS[model_name](tf_keras)
    model.optimizer.build(model.trainable_variables)
    model.load_weights(str(tmp_path / "w")).assert_existing_objects_matched()
    got = _optimizer_values(model)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.tobytes() == e.tobytes()


def test_dropped_optimizer_state_is_reported(tmp_path):
    result = convert(FIXTURES / "seed/tf_keras/ckpt/weights", tmp_path / "w.h5", to="h5-weights")
    assert any("optimizer state (6 tensors) dropped" in note for note in result.notes), result.notes


@pytest.mark.parametrize("model_name", ["seed", "cnn"])
def test_checkpoint_optimizer_state_restores_from_h5_model(tmp_path, model_name):
    import tf_keras

    reference = zoo.MODELS[model_name](tf_keras)
    reference.optimizer.build(reference.trainable_variables)
    reference.load_weights(str(FIXTURES / model_name / "tf_keras/ckpt/weights"))
    dst = tmp_path / "m.h5"
    convert(FIXTURES / model_name / "tf_keras/ckpt/weights", dst, to="h5-model", model=f"converters.zoo:{model_name}_model")
    model = tf_keras.models.load_model(str(dst))  # compiled: restores optimizer_weights too
    got, expected = _optimizer_values(model), _optimizer_values(reference)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.tobytes() == e.tobytes()
