"""`tree`: parameter counts equal Keras's own count_params(), per model and per layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from inspector.cli import main
from inspector.tree import read_tree
from tests.conftest import FIXTURES

_COUNTS = r"""
import importlib, json, sys
out = {}
for module, path in zip(sys.argv[1::2], sys.argv[2::2]):
    keras = importlib.import_module(module)
    model = keras.models.load_model(path, compile=False)
    out[path] = {"total": model.count_params(),
                 "layers": {l.name: l.count_params() for l in model.layers if l.built},
                 "classes": {l.name: type(l).__name__ for l in model.layers}}
print(json.dumps(out))
"""

TF_KERAS = [f"{m}/tf_keras/model.h5" for m in ("seed", "cnn", "lstm")] + ["seed/tf_keras/saved_model"]
KERAS3 = [f"{m}/keras3/model.keras" for m in ("seed", "cnn", "lstm")]


@pytest.fixture(scope="module")
def keras_counts():
    """{fixture: what the framework that wrote it counts}, one subprocess for both frameworks."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    args = [x for f in TF_KERAS for x in ("tf_keras", str(FIXTURES / f))]
    args += [x for f in KERAS3 for x in ("keras", str(FIXTURES / f))]
    done = subprocess.run([sys.executable, "-c", _COUNTS, *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    counts = {f: result[str(FIXTURES / f)] for f in TF_KERAS + KERAS3}
    return counts


@pytest.mark.tf
@pytest.mark.parametrize("fixture", TF_KERAS + KERAS3)
def test_parameter_counts_equal_keras(keras_counts, fixture):
    want = keras_counts[fixture]
    tree = read_tree(str(FIXTURES / fixture))
    assert tree.root.params == want["total"]
    layers = {node.name: node for node in tree.root.children}
    for name, count in want["layers"].items():
        if count:
            assert layers[name].params == count, name
        elif name in layers:
            assert layers[name].params == 0, name
    # Classes come from the recorded config and name what Keras instantiated.
    for name, class_name in want["classes"].items():
        if name in layers and layers[name].class_name:
            assert layers[name].class_name == class_name, name


def test_optimizer_state_is_apart_and_bytes_roll_up():
    tree = read_tree(str(FIXTURES / "lstm/tf_keras/model.h5"))
    assert tree.optimizer is not None
    assert tree.optimizer.params == 0  # optimizer state is not model parameters
    lstm = next(n for n in tree.root.children if n.name == "lstm")
    cell = lstm.children[0]
    assert (cell.name, [c.name for c in cell.children]) == ("lstm_cell", ["kernel", "recurrent_kernel", "bias"])
    assert lstm.bytes == sum(c.bytes for c in cell.children) == lstm.params * 4
    assert tree.root.bytes == sum(c.bytes for c in tree.root.children)


def test_cli_tree_fits_80_columns_and_json(capsys):
    path = str(FIXTURES / "cnn/tf_keras/model.h5")
    assert main(["tree", path]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines()[1:]), out
    assert "Conv2D" in out and "params" in out
    assert main(["tree", "--json", path]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "ckit.tree/1"
    assert doc["root"]["params"] == sum(c["params"] for c in doc["root"]["children"])


def test_weights_file_without_config_still_has_layers(capsys):
    tree = read_tree(str(FIXTURES / "edge/subclassed"))
    assert [n.name for n in tree.root.children] == ["hidden", "out"]
    assert tree.root.params == 784 * 16 + 16 + 16 * 10 + 10
