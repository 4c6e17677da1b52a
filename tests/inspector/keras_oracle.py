"""Ask tf_keras or Keras 3 itself what a saved model holds: the oracle of the Keras reader tests.

The frameworks run in a subprocess, one per framework for all models: tf_keras
and Keras 3 each register global state, and importing TensorFlow once per
model would dominate the test time.  Imported as `tests.inspector.keras_oracle`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_ORACLE = r"""
import json, sys
import numpy as np
import {module} as keras
out = {{}}
for model_path, values_path in zip(sys.argv[1::2], sys.argv[2::2]):
    model = keras.models.load_model(model_path, compile=False)
    layers = [l for l in model.layers if l.weights]
    np.savez(values_path, **{{f"{{i}}_{{j}}": w for i, l in enumerate(layers) for j, w in enumerate(l.get_weights())}})
    out[model_path] = [[l.name, [getattr(w, "{attr}") for w in l.weights]] for l in layers]
print(json.dumps(out))
"""


def run_oracle(module: str, attr: str, model_paths: list[Path], tmp: Path) -> dict[str, tuple[list, dict]]:
    """{model path: (layers with weights as [name, [variable names]], {"i_j": value})} from the framework."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    args = []
    for i, path in enumerate(model_paths):
        args += [str(path), str(tmp / f"values{i}.npz")]
    done = subprocess.run([sys.executable, "-c", _ORACLE.format(module=module, attr=attr), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    layers = json.loads(done.stdout.strip().splitlines()[-1])
    return {str(p): (layers[str(p)], dict(np.load(tmp / f"values{i}.npz"))) for i, p in enumerate(model_paths)}


