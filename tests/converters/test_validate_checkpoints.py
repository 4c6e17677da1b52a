"""`ckconvert validate` of tf.train.Checkpoint and CheckpointManager sources: restored the way they were written.

fixtures/validation/tf_checkpoint holds `tf.train.Checkpoint(model=m, optimizer=o).save()` of the seed model;
fixtures/validation/manager a CheckpointManager directory whose ckpt-1 is the untrained model and ckpt-2
(the latest) the seed weights.  Their logits must be the ones tf_keras recorded for the seed fixtures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from converters.validate import ValidateOptions, main_validate, run_validation
from inspector.errors import MappingError
from tests.conftest import ROOT

pytestmark = pytest.mark.tf

VALIDATION = ROOT / "fixtures" / "validation"


@pytest.fixture(scope="module")
def tf_keras_frameworks():
    import keras
    import tensorflow as tf
    import tf_keras

    return {"tf": tf, "tf_keras": tf_keras, "keras": keras}


def _recorded_logits() -> np.ndarray:
    with np.load(VALIDATION / "seed_tf_keras_digits28.npz") as archive:
        return archive["logits"]


@pytest.mark.parametrize(("source", "holder"), [
    (VALIDATION / "tf_checkpoint" / "ckpt-1", "model"),
    (VALIDATION / "manager", "model"),
    (ROOT / "fixtures" / "seed" / "tf_keras" / "ckpt" / "weights", ""),
])
def test_checkpoint_is_restored_as_written(tf_keras_frameworks, source, holder):
    from converters import zoo
    from converters.datasets import load_dataset
    from converters.validate.loaders import checkpoint_holder, checkpoint_prefix, restore_checkpoint

    prefix = checkpoint_prefix(source)
    assert checkpoint_holder(prefix) == holder
    tf_keras = tf_keras_frameworks["tf_keras"]
    tf_keras.backend.clear_session()
    predictor = restore_checkpoint("tf_keras.Model.load_weights", prefix, zoo.seed_model(tf_keras), tf_keras_frameworks)
    expected = f"tf.train.Checkpoint({holder}=tf_keras model).restore" if holder else "tf_keras.Model.load_weights"
    assert predictor.loader == expected
    # The latest of the manager's checkpoints, not the untrained ckpt-1: the seed model's recorded logits, exactly.
    assert np.array_equal(predictor(load_dataset("digits28").x_test), _recorded_logits())


def test_checkpoint_that_misses_model_weights_is_refused(tf_keras_frameworks):
    """The restore status alone passes when only the optimizer matched; every weight must be overwritten."""
    from converters import zoo
    from converters.validate.loaders import restore_checkpoint

    tf_keras = tf_keras_frameworks["tf_keras"]
    tf_keras.backend.clear_session()
    with pytest.raises(MappingError, match=r"ckpt-1: 4 of the model's 4 weights \(e\.g\. .*kernel.*\) are not in the checkpoint; "
                                          r"expected a checkpoint of this model"):
        # Read as a save_weights checkpoint (root = the model), as load_weights alone would.
        restore_checkpoint("tf_keras.Model.load_weights", VALIDATION / "tf_checkpoint" / "ckpt-1", zoo.seed_model(tf_keras),
                           tf_keras_frameworks, holder="")


def test_checkpoint_without_a_keras_model_says_so():
    from converters.validate.loaders import checkpoint_holder

    with pytest.raises(MappingError, match=r"multi_shard/ckpt-1: cannot tell which object holds the Keras model "
                                          r"\(root objects: save_counter, v0, v1, v2, v3, v4, v5\); expected a save_weights "
                                          r"checkpoint or a tf.train.Checkpoint with one Keras model in it"):
        checkpoint_holder(ROOT / "fixtures" / "edge" / "multi_shard" / "ckpt-1")


@pytest.mark.slow
def test_validate_a_checkpoint_manager_directory(tmp_path, capfd):
    record = json.loads((VALIDATION / "seed_tf_keras_digits28.json").read_text())
    code = main_validate(artifact=str(VALIDATION / "manager"), model="converters.zoo:seed_model", device="cpu",
                         backend="tensorflow", json_path=str(tmp_path / "r.json"))
    out, err = capfd.readouterr()
    assert code == 0, err[-2000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["baseline"]["accuracy"] == record["accuracy"]
    first = report["results"][0]
    assert (first["source"], first["target"], first["loader"]) == (
        "tf-checkpoint", "tf-checkpoint", "tf.train.Checkpoint(model=tf_keras model).restore")
    # Every conversion of it reloads to the same logits, bit for bit.
    assert all(r["ok"] and r["max_abs_logit_diff"] == 0.0 for r in report["results"])
    assert {r["target"] for r in report["results"]} == {"tf-checkpoint", "h5-weights", "h5-model", "saved-model",
                                                        "keras3-weights", "keras3-model", "safetensors"}
