"""benchmarks/validate_gpu.sh, the GPU run's script, exercised on CPU: Keras 3 on JAX (and PyTorch where installed).

Without TensorFlow the run validates all six source formats: the four tf_keras fixtures against the logits
tf_keras recorded (fixtures/validation/), and the two Keras 3 formats saved from the same weights.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from converters.validate import KERAS3_SOURCES, TARGETS, TF_KERAS_SOURCES
from converters.validate.matrix import KERAS3_LOADERS, RECORDED_TOLERANCE
from tests.conftest import ROOT

RECORD = ROOT / "fixtures" / "validation" / "seed_tf_keras_digits28.json"


@pytest.mark.slow
def test_gpu_script_validates_every_source_on_cpu(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "PYTHON": sys.executable, "CKIT_WHEELS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks/validate_gpu.sh"), "--device", "cpu", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tensorflow: " in (tmp_path / "device.txt").read_text()
    timings = (tmp_path / "timings.txt").read_text().splitlines()
    assert timings[0].startswith("jax: exit 0, ") and "worker peak RSS" in timings[0]
    has_torch = importlib.util.find_spec("torch") is not None
    assert timings[1].startswith("torch: exit 0, " if has_torch else "torch: skipped (the torch package is not installed here)")

    record = json.loads(RECORD.read_text())
    report = json.loads((tmp_path / "report-jax.json").read_text())
    assert report["device"] == "cpu" and report["backend"] == "jax"
    assert report["baseline_source"] == "recorded by tf_keras 2.21.0 on cpu"
    assert report["baseline"]["accuracy"] == record["accuracy"]
    assert report["tolerance"] == RECORDED_TOLERANCE
    rows = report["results"]
    assert {r["source"] for r in rows} == set(TF_KERAS_SOURCES + KERAS3_SOURCES)
    for source in TF_KERAS_SOURCES + KERAS3_SOURCES:
        # Every target Keras 3 loads is reloaded and matches, from every source.
        assert {r["target"] for r in rows if r["source"] == source and r["ok"]} == set(KERAS3_LOADERS), source
        assert {r["target"] for r in rows if r["source"] == source} == set(TARGETS)
    for row in rows:
        assert row["ok"] is not False, row
        if row["ok"]:
            assert row["accuracy"] == record["accuracy"] and row["max_abs_logit_diff"] <= RECORDED_TOLERANCE
    # Keras 3 has no loader for the TF-format weights and SavedModel tf_keras saved: the framework's limitation.
    limits = {(r["source"], r["target"]) for r in rows if r["framework_limitation"]}
    assert limits == {("tf-checkpoint", "tf-checkpoint"), ("saved-model", "saved-model")}
    matrix = (tmp_path / "matrix-jax.txt").read_text()
    assert matrix.startswith("baseline (converters.zoo:seed_model on digits28, jax, cpu; recorded by tf_keras")
    assert "PASSED: 30 OK, 0 failed, 10 skipped, 2 framework limitation(s)" in matrix


def test_recorded_logits_are_what_the_record_says():
    """The recorded baseline's accuracy is its logits' accuracy on digits28, computed as the validator does."""
    from converters.datasets import load_dataset
    from converters.validate.scoring import metrics

    record = json.loads(RECORD.read_text())
    with np.load(RECORD.with_suffix(".npz")) as archive:
        logits = archive["logits"]
    accuracy, loss = metrics(logits, load_dataset("digits28").y_test)
    assert (accuracy, loss) == (record["accuracy"], record["loss"])
    assert record["sources"] == {"h5-weights": "seed/tf_keras/weights.h5", "tf-checkpoint": "seed/tf_keras/ckpt/weights",
                                 "h5-model": "seed/tf_keras/model.h5", "saved-model": "seed/tf_keras/saved_model"}
