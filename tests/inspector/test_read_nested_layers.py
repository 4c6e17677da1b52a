"""Layers that own other layers (Bidirectional, RNN cells) and subclassed models, read against the
frameworks themselves: the model is built with Keras 3 / tf_keras in a subprocess, saved in every
form, and ckit's manifest must list each layer's weights under the framework's own names, in the
framework's own `layer.weights` order, with bit-identical values.

The silent failure this guards: Keras 3 writes a layer's attribute sub-layers in dir() order, so
a Bidirectional's `backward_layer` comes first in the file; reading that order as the weights order
swapped the forward and backward weights of every converted model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inspector.registry import open_artifact

_COMMON = r"""
import json, sys
from pathlib import Path
import numpy as np
out = Path(sys.argv[1])
expected = {}
values = {}

def bidirectional(k):
    i = k.Input((7, 4))
    x = k.layers.Bidirectional(k.layers.LSTM(5))(i)
    return k.Model(i, k.layers.Dense(2)(x))

def record(tag, layers, names, strip_root=None):
    rows = []
    for layer_name, layer in layers:
        ws = []
        for j, w in enumerate(layer.weights):
            name = names(w)
            if strip_root and name.startswith(strip_root + "/"):
                name = name[len(strip_root) + 1:]
            ws.append(name)
            values[f"{tag}|{layer_name}|{j}"] = np.asarray(w.numpy())
        rows.append([layer_name, ws])
    expected[tag] = rows
"""

_KERAS3 = _COMMON + r"""
import keras

@keras.saving.register_keras_serializable(package="ckit_test")
class Net(keras.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.enc = keras.layers.Dense(8)
        self.dec = keras.layers.Dense(4)
        self.head = keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.dec(self.enc(x)))

m = bidirectional(keras)
m.save_weights(str(out / "bi.weights.h5"))
m.save(str(out / "bi.keras"))
(out / "sharded").mkdir()
m.save_weights(str(out / "sharded" / "bi.weights.json"), max_shard_size=0.000001)
record("k3_bi", [(l.name, l) for l in m.layers if l.weights], lambda w: w.path)

n = Net(name="net")
n(np.zeros((1, 3), "float32"))
n.save_weights(str(out / "s.weights.h5"))
n.save(str(out / "s.keras"))
record("k3_sub", [(a, getattr(n, a)) for a in ("enc", "dec", "head")], lambda w: w.path, strip_root="net")
np.savez(out / "k3_values.npz", **values)
(out / "k3_expected.json").write_text(json.dumps(expected))
"""

_TF_KERAS = _COMMON + r"""
import tensorflow as tf
import tf_keras

class Net2(tf_keras.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.enc = tf_keras.layers.Dense(8)
        self.dec = tf_keras.layers.Dense(4)
        self.head = tf_keras.layers.Dense(2)

    def call(self, x):
        return self.head(self.dec(self.enc(x)))

m = bidirectional(tf_keras)
m.save_weights(str(out / "tk_bi.h5"))
m.save_weights(str(out / "tk_bi.weights.h5"))
m.save_weights(str(out / "tk_bi_ckpt" / "weights"))
tf.saved_model.save(m, str(out / "tk_bi_sm"))
record("tk_bi", [(l.name, l) for l in m.layers if l.weights], lambda w: w.name.split(":")[0])

n = Net2(name="net2")
n(np.zeros((1, 3), "float32"))
n.save_weights(str(out / "tk_sub_ckpt" / "weights"))
tf.saved_model.save(n, str(out / "tk_sub_sm"))
tf.train.Checkpoint(net=n).write(str(out / "tk_sub_tc" / "weights"))
record("tk_sub", [(a, getattr(n, a)) for a in ("enc", "dec", "head")], lambda w: w.name.split(":")[0],
       strip_root="net2")
np.savez(out / "tk_values.npz", **values)
(out / "tk_expected.json").write_text(json.dumps(expected))
"""


def _run(script: str, out: Path) -> None:
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"building the models failed:\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("nested")
    _run(_KERAS3, out)
    _run(_TF_KERAS, out)
    expected = {**json.loads((out / "k3_expected.json").read_text()),
                **json.loads((out / "tk_expected.json").read_text())}
    values = {}
    for name in ("k3_values.npz", "tk_values.npz"):
        with np.load(out / name) as data:
            values.update({k: data[k] for k in data.files})
    return out, expected, values


def _listing(path: Path):
    reader = open_artifact(path)
    try:
        manifest = reader.manifest
        rows = [(layer, [t.name for t in ws]) for layer, ws in manifest.layer_weights() if ws]
        data = {(layer, i): reader.read_tensor(t.key) for layer, ws in manifest.layer_weights() for i, t in enumerate(ws)}
        indexes = {layer: [t.index for t in ws] for layer, ws in manifest.layer_weights()}
    finally:
        reader.close()
    return manifest, rows, data, indexes


def _check(path: Path, tag: str, built, ordered_layers: bool = True):
    _, expected, values = built
    manifest, rows, data, indexes = _listing(path)
    want = [(layer, names) for layer, names in expected[tag]]
    if ordered_layers:
        assert rows == want, f"{path.name}: layers/weights differ from the framework's layer.weights"
    else:
        assert sorted(rows) == sorted(want)
    for layer, names in want:
        assert indexes[layer] == list(range(len(names)))
        for j in range(len(names)):
            got, ref = data[(layer, j)], values[f"{tag}|{layer}|{j}"]
            assert got.dtype == ref.dtype and got.shape == ref.shape
            assert got.tobytes() == ref.tobytes(), f"{path.name}: {layer} weight {j} differs"
    return manifest


@pytest.mark.parametrize("artifact", ["bi.weights.h5", "bi.keras", "sharded/bi.weights.json"])
def test_keras3_bidirectional_forward_before_backward(built, artifact):
    out, expected, _ = built
    _check(out / artifact, "k3_bi", built)
    names = [n for _, ns in expected["k3_bi"] for n in ns]
    assert names[0] == "bidirectional/forward_lstm/lstm_cell/kernel"
    assert names[3] == "bidirectional/backward_lstm/lstm_cell/kernel"


@pytest.mark.parametrize("artifact", ["tk_bi.h5", "tk_bi.weights.h5", "tk_bi_ckpt/weights", "tk_bi_sm"])
def test_tf_keras_bidirectional_matches_tf_keras(built, artifact):
    _check(built[0] / artifact, "tk_bi", built)


def test_keras3_and_tf_keras_bidirectional_names_agree(built):
    _, expected, _ = built
    assert expected["k3_bi"] == expected["tk_bi"]
    out = built[0]
    listings = [_listing(out / a)[1] for a in ("bi.weights.h5", "bi.keras", "tk_bi.h5", "tk_bi_ckpt/weights", "tk_bi_sm")]
    assert all(rows == listings[0] for rows in listings)


@pytest.mark.parametrize("artifact", ["s.weights.h5", "s.keras"])
def test_keras3_subclassed_layers_are_attributes(built, artifact):
    manifest = _check(built[0] / artifact, "k3_sub", built, ordered_layers=False)
    assert set(manifest.layers) == {"enc", "dec", "head"}
    assert all(t.role == "weight" for t in manifest.tensors)
    assert manifest.totals["parameters"] == 3 * 8 + 8 + 8 * 4 + 4 + 4 * 2 + 2
    assert manifest.metadata["layer_order"] == "guessed"
    assert any("subclassed" in note for note in manifest.notes)
    assert not any("bare weights file" in note for note in manifest.notes)


@pytest.mark.parametrize("artifact", ["tk_sub_sm", "tk_sub_ckpt/weights", "tk_sub_tc/weights"])
def test_tf_keras_subclassed_layers_are_attributes(built, artifact):
    manifest = _check(built[0] / artifact, "tk_sub", built)
    assert list(manifest.layers) == ["enc", "dec", "head"]
    assert manifest.producer.get("framework") == "tf_keras"


def test_subclassed_names_agree_across_frameworks(built):
    _, expected, _ = built
    # Keras 3 and tf_keras name the same subclassed model's weights alike once the model's own
    # name is left out: `dense/kernel`, `dense_1/kernel`, ...
    assert expected["k3_sub"] == expected["tk_sub"]
