"""A loader refusing a file: the framework's limitation (skipped, the run passes) or ckit's failure (the run fails).

Keras 3 cannot load an LSTM that tf_keras saved (`Unrecognized keyword arguments passed to LSTM:
{'time_major': False}`): that row, and the rows of ckit's files that Keras 3 refuses the same way, are
the framework's limitation.  A fault planted in ckit's file that Keras 3 refuses for another reason
stays a failure, even though tf_keras loads that file.
"""

from __future__ import annotations

import numpy as np
import pytest

from converters.validate import ValidateOptions, run_validation
from tests.conftest import ROOT

pytestmark = [pytest.mark.tf, pytest.mark.slow]

# Adds a keyword tf_keras's Layer accepts and Keras 3's refuses to the first Dense layer of ckit's h5-model.
TAMPER = '''
import json
import h5py

def plant(path, source, target):
    if target != "h5-model":
        return
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
        dense["config"]["implementation"] = 1
        f.attrs["model_config"] = json.dumps(config)
'''


def _tokens(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 100, (64, 20), dtype=np.int32)
    np.savez(tmp_path / "tokens.npz", x_test=x, y_test=(x[:, 0] % 10).astype(np.int64))
    return str(tmp_path / "tokens.npz")


def test_keras3_refusing_tf_keras_lstm_is_the_frameworks_limitation(tmp_path, capfd):
    report = run_validation(ValidateOptions(artifact=str(ROOT / "fixtures/lstm/tf_keras/weights.h5"),
                                            model="converters.zoo:lstm_model", data=_tokens(tmp_path),
                                            device="cpu", backend="tensorflow", targets=("h5-model",), progress=False))
    capfd.readouterr()
    assert [(r.source, r.target, r.loader) for r in report.results] == [
        ("h5-weights", "h5-weights", "tf_keras.Model.load_weights"),
        ("h5-weights", "h5-model", "tf_keras.models.load_model"),
        ("h5-weights", "h5-model", "keras.models.load_model"),
    ]
    (limit,) = [r for r in report.results if r.limitation]
    assert (limit.source, limit.target, limit.loader, limit.ok, limit.status) == (
        "h5-weights", "h5-model", "keras.models.load_model", None, "limit")
    assert limit.note == ("framework limitation: keras.models.load_model refuses this model's h5-model as tf_keras saves "
                          "it too: ValueError: Unrecognized keyword arguments passed to LSTM: {'time_major': False}")
    # tf_keras loads the same file, and every other row is checked: the run passes.
    assert any(r.target == "h5-model" and r.loader == "tf_keras.models.load_model" and r.ok for r in report.results)
    assert report.ok and not report.failures


def test_a_fault_keras3_refuses_only_in_ckits_file_is_a_failure(tmp_path, monkeypatch, capfd):
    (tmp_path / "plant_kwarg.py").write_text(TAMPER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    report = run_validation(ValidateOptions(artifact=str(ROOT / "fixtures/seed/tf_keras/weights.h5"),
                                            model="converters.zoo:seed_model", device="cpu", backend="tensorflow",
                                            tamper="plant_kwarg:plant", targets=("h5-model",), progress=False))
    capfd.readouterr()
    rows = {(r.target, r.loader): r for r in report.results}
    assert rows[("h5-model", "tf_keras.models.load_model")].ok  # tf_keras takes the planted keyword
    failure = rows[("h5-model", "keras.models.load_model")]
    assert failure.ok is False and not failure.limitation
    assert failure.note.startswith("reload failed: TypeError: Error when deserializing class 'Dense' using config=")
    assert report.failures == (failure,)
