"""A conversion imports a framework only when the target truly needs one (issue 7, "Also").

Every source kind converted to every target that needs no framework, in one subprocess where
TensorFlow, Keras, tf_keras, JAX and torch cannot be imported at all: each conversion must succeed
(verified), and none of them may even have been tried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("tensorflow", "keras", "tf_keras", "jax", "torch")
SOURCES = {
    "tf_keras weights.h5": "seed/tf_keras/weights.h5",
    "tf_keras model.h5": "seed/tf_keras/model.h5",
    "tf_keras checkpoint": "seed/tf_keras/ckpt/weights",
    "tf_keras SavedModel": "seed/tf_keras/saved_model",
    "tf_keras .keras": "seed/tf_keras/model.keras",
    "Keras 3 .weights.h5": "seed/keras3/model.weights.h5",
    "Keras 3 .keras": "seed/keras3/model.keras",
    "Keras 3 legacy .h5": "seed/keras3/legacy.h5",
    "nested CNN model.h5": "cnn/tf_keras/model.h5",
    "LSTM model.h5": "lstm/tf_keras/model.h5",
    "LSTM Keras 3 .keras": "lstm/keras3/model.keras",
}
# Targets whose files ckit writes natively and whose layer paths the source alone decides.
TARGETS = {"h5-weights": "o.h5", "keras3-weights": "o.weights.h5", "tf-checkpoint": "o", "safetensors": "o.safetensors"}

_SCRIPT = r"""
import json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # `import name` now raises ImportError, wherever it is tried
from converters.convert import convert
jobs, out = json.loads(sys.argv[1]), {{}}
for label, src, target, dst in jobs:
    try:
        result = convert(src, dst, to=target)
        out[label] = "verified" if result.verified else "not verified"
    except Exception as exc:
        out[label] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps(out))
"""


def test_native_targets_import_no_framework(tmp_path):
    jobs = []
    for source, rel in SOURCES.items():
        for target, name in TARGETS.items():
            jobs.append((f"{source} -> {target}", str(FIXTURES / rel), target, str(tmp_path / f"{len(jobs)}" / name)))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", _SCRIPT.format(blocked=BLOCKED), json.dumps(jobs)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    failed = {label: outcome for label, outcome in results.items() if outcome != "verified"}
    assert not failed, failed
    assert len(results) == len(SOURCES) * len(TARGETS)
