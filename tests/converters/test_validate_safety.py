"""The validator never lets a framework rebuild code stored in a user's artifact."""

from __future__ import annotations

import pytest

from inspector.errors import UnsafeArtifact


def test_lambda_in_legacy_h5_is_refused_before_load_model(tmp_path):
    import tf_keras

    from converters.validate.loaders import refuse_code_in_config

    model = tf_keras.Sequential(
        [tf_keras.Input((4,)), tf_keras.layers.Lambda(lambda x: x * 2, name="doubler"), tf_keras.layers.Dense(2)]
    )
    path = tmp_path / "m.h5"
    model.save(path)
    with pytest.raises(UnsafeArtifact, match="'doubler' is a Lambda layer"):
        refuse_code_in_config(path, "h5-model", "tf_keras", {"tf_keras": tf_keras})


def test_plain_model_passes_the_check(tmp_path):
    import tf_keras

    from converters import zoo
    from converters.validate.loaders import refuse_code_in_config

    path = tmp_path / "m.h5"
    zoo.seed_model(tf_keras).save(path)
    refuse_code_in_config(path, "h5-model", "tf_keras", {"tf_keras": tf_keras})
