"""benchmarks/validate_gpu.sh, the GPU run's script, exercised on CPU with Keras 3 on JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_gpu_script_runs_the_jax_validation_on_cpu(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "PYTHON": sys.executable, "CKIT_WHEELS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks/validate_gpu.sh"), "--device", "cpu", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    rows = report["results"]
    assert report["device"].startswith("cpu")
    assert any(r["ok"] is True and r["target"] == "keras3-model" for r in rows)
    # Every row either passed or says why it was skipped (the TensorFlow-only rows on JAX).
    assert all(r["ok"] is not False for r in rows)
    assert "PASSED" in (tmp_path / "matrix.txt").read_text()
