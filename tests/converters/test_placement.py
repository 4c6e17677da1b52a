"""Verification proves placement, not just bytes (issue 7 item 1).

Models are built with tf_keras in a subprocess and saved by it; each known wrong output is PLANTED
into a conversion (the layout the writer is handed is changed the way a mapping or writer bug
would) and verification must fail with one line naming the misplaced tensor.  Known correct
outputs must pass, and Keras 3 / tf_keras must load them with the same weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from converters import convert as pipeline
from converters.convert import convert
from converters.layout import LayerNode, ModelLayout, WeightRef
from inspector.errors import CorruptArtifact

pytestmark = pytest.mark.tf

# One script per framework builds every model (architecture shared by name), so each runs once.
_ARCHITECTURES = r"""
import numpy as np

def build(k, name):
    if name == "td":
        i = k.Input((5, 6))
        x = k.layers.TimeDistributed(k.layers.Dense(4))(i)
        return k.Model(i, k.layers.Dense(2)(k.layers.Flatten()(x)))
    if name == "enc":  # an LSTM under a name that says nothing about its class
        i = k.Input((5, 3))
        return k.Model(i, k.layers.Dense(2)(k.layers.LSTM(4, name="encoder")(i)))
    if name == "mha":
        i = k.Input((4, 6))
        x = k.layers.MultiHeadAttention(num_heads=2, key_dim=3)(i, i)
        return k.Model(i, k.layers.Dense(2)(k.layers.Flatten()(x)))
    if name == "bidi":
        i = k.Input((5, 3))
        return k.Model(i, k.layers.Dense(2)(k.layers.Bidirectional(k.layers.LSTM(4))(i)))
    if name == "cnn":  # a Keras 2.0-era CNN: Conv/BN blocks, Sequential
        return k.Sequential([k.Input((12, 12, 1)), k.layers.Conv2D(4, 3), k.layers.BatchNormalization(),
                             k.layers.Activation("relu"), k.layers.Conv2D(6, 3), k.layers.BatchNormalization(),
                             k.layers.Flatten(), k.layers.Dense(3)])
    raise KeyError(name)

NAMES = ("td", "enc", "mha", "bidi", "cnn")
"""

_SAVE = _ARCHITECTURES + r"""
import sys
from pathlib import Path
import tf_keras as k
out = Path(sys.argv[1])
rng = np.random.default_rng(7)
for name in NAMES:
    m = build(k, name)
    m.set_weights([rng.standard_normal(w.shape).astype(w.dtype) for w in m.get_weights()])
    m.save_weights(str(out / f"{name}.h5"))
    m.save(str(out / f"{name}_model.h5"))
    np.savez(out / f"{name}_weights.npz", *m.get_weights())
"""

# Load converted files with the framework's own loader (Keras 3 or tf_keras, one process for both);
# print each model's weights' CRCs.
_LOAD = _ARCHITECTURES + r"""
import json, sys, zlib
import keras
import tf_keras
out = {}
for framework, name, path in json.loads(sys.argv[1]):
    m = build(keras if framework == "keras3" else tf_keras, name)
    m.load_weights(path)
    out[path] = [zlib.crc32(np.ascontiguousarray(w).tobytes()) for w in m.get_weights()]
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("placement")
    done = subprocess.run([sys.executable, "-c", _SAVE, str(out)], capture_output=True, text=True, env=_env(),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _load_crcs(jobs: list[tuple[str, str, Path]]) -> dict[str, list[int]]:
    done = subprocess.run([sys.executable, "-c", _LOAD, json.dumps([(f, n, str(p)) for f, n, p in jobs])],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _crcs(npz: Path) -> list[int]:
    import zlib

    data = np.load(npz)
    return [zlib.crc32(np.ascontiguousarray(data[f"arr_{i}"]).tobytes()) for i in range(len(data.files))]


# -- planting: change the layout the writer is handed, as a mapping or writer bug would ----------------


def _plant(monkeypatch, change) -> None:
    real = pipeline._build_layout

    def planted(manifest, read, target, model=None):
        layout, live = real(manifest, read, target, model)
        return change(layout), live

    monkeypatch.setattr(pipeline, "_build_layout", planted)


def _map_nodes(layout: ModelLayout, change) -> ModelLayout:
    return replace(layout, layers=tuple(change(node) for node in layout.layers))


def _swap_sources(node: LayerNode, first: str, second: str) -> LayerNode:
    """Two same-shape weights whose values trade places (names stay): what a misordered pairing does."""
    flat = node.flat_weights()
    a = next((r for r in flat if r.name.endswith(first)), None)
    b = next((r for r in flat if r.name.endswith(second)), None)
    if a is None or b is None:
        return node
    keys = {a.name: b.source_key, b.name: a.source_key}

    def walk(n: LayerNode) -> LayerNode:
        refs = tuple(replace(r, source_key=keys[r.name]) if r.name in keys else r for r in n.weights)
        return replace(n, weights=refs, children=tuple(walk(c) for c in n.children))

    return walk(node)


def _one_line_failure(info) -> str:
    message = str(info.value)
    assert "\n" not in message and message.startswith("verification failed: "), message
    assert "this is a ckit bug" in message
    return message


def test_timedistributed_without_its_layer_level_fails(saved, tmp_path, monkeypatch):
    # Planted: the TimeDistributed layer handed to the writer as a plain Dense, so its kernel is
    # written as layer_with_weights-0/kernel where tf_keras tracks layer_with_weights-0/layer/kernel.
    _plant(monkeypatch, lambda layout: _map_nodes(layout, lambda n: LayerNode(
        name=n.name, class_name="Dense", weights=tuple(n.flat_weights())) if n.name.startswith("time_distributed") else n))
    with pytest.raises(CorruptArtifact) as info:
        convert(saved / "td_model.h5", tmp_path / "ck", to="tf-checkpoint")
    message = _one_line_failure(info)
    assert "must be at 'layer_with_weights-0/layer/kernel'" in message
    assert not list(tmp_path.iterdir())  # nothing is left behind


def test_lstm_from_weights_only_h5_losing_its_cell_fails(saved, tmp_path, monkeypatch):
    # Planted: the LSTM named `encoder` (no config in a weights-only file) flattened into a plain layer,
    # so its variables lose the /cell/ level tf_keras tracks them under.
    def flatten(node: LayerNode) -> LayerNode:
        if node.name != "encoder":
            return node
        return LayerNode(name=node.name, class_name=None, weights=tuple(node.flat_weights()))

    _plant(monkeypatch, lambda layout: _map_nodes(layout, flatten))
    with pytest.raises(CorruptArtifact) as info:
        convert(saved / "enc.h5", tmp_path / "ck", to="tf-checkpoint")
    assert "must be at 'layer_with_weights-0/cell/kernel'" in _one_line_failure(info)


@pytest.mark.parametrize("target, dst", [("h5-weights", "w.h5"), ("keras3-weights", "w.weights.h5"),
                                         ("tf-checkpoint", "ck")])
def test_bidirectional_forward_backward_swapped_fails(saved, tmp_path, monkeypatch, target, dst):
    def swap(node: LayerNode) -> LayerNode:
        if node.name != "bidirectional":
            return node
        flat = node.flat_weights()
        half = len(flat) // 2
        keys = [r.source_key for r in flat[half:]] + [r.source_key for r in flat[:half]]
        swapped = {id(r): replace(r, source_key=k) for r, k in zip(flat, keys)}

        def walk(n: LayerNode) -> LayerNode:
            return replace(n, weights=tuple(swapped[id(r)] for r in n.weights), children=tuple(walk(c) for c in n.children))

        return walk(node)

    _plant(monkeypatch, lambda layout: _map_nodes(layout, swap))
    with pytest.raises(CorruptArtifact) as info:
        convert(saved / "bidi_model.h5", tmp_path / dst, to=target)
    message = _one_line_failure(info)
    assert "forward_lstm" in message or "backward_lstm" in message


@pytest.mark.parametrize("target, dst", [("h5-weights", "w.h5"), ("h5-model", "m.h5")])
def test_multi_head_attention_query_key_swapped_fails(saved, tmp_path, monkeypatch, target, dst):
    _plant(monkeypatch, lambda layout: _map_nodes(
        layout, lambda n: _swap_sources(n, "query/kernel", "key/kernel") if n.name.startswith("multi_head") else n))
    with pytest.raises(CorruptArtifact) as info:
        convert(saved / "mha_model.h5", tmp_path / dst, to=target)
    assert "query/kernel" in _one_line_failure(info) or "key/kernel" in str(info.value)


def test_cudnn_layout_bias_copied_unchanged_fails(saved, tmp_path, monkeypatch):
    # Planted: a CuDNN-layout bias (input and recurrent biases, 8 x units) copied where the target's
    # LSTM cell takes 4 x units.
    def cudnn(layout: ModelLayout) -> ModelLayout:
        doubled: dict[str, WeightRef] = {}

        def walk(n: LayerNode) -> LayerNode:
            refs = []
            for r in n.weights:
                if n.name in ("encoder", "lstm_cell") and r.attribute == "bias":
                    r = replace(r, shape=(2 * r.shape[0],), source_key=r.source_key + "#cudnn")
                    doubled[r.source_key] = r
                refs.append(r)
            # The layer known as an LSTM (as a CuDNNLSTM converted for tf_keras would be).
            cls = "LSTM" if n.name == "encoder" else n.class_name
            return replace(n, class_name=cls, weights=tuple(refs), children=tuple(walk(c) for c in n.children))

        read = layout.read

        def read_cudnn(key: str):
            if key.endswith("#cudnn"):
                bias = read(key[: -len("#cudnn")])
                return np.concatenate([bias, np.zeros_like(bias)])
            return read(key)

        return replace(layout, layers=tuple(walk(n) for n in layout.layers), read=read_cudnn)

    _plant(monkeypatch, cudnn)
    with pytest.raises(CorruptArtifact) as info:
        convert(saved / "enc.h5", tmp_path / "ck", to="tf-checkpoint")
    message = _one_line_failure(info)
    assert "must be at 'layer_with_weights-0/cell/bias'" in message and "CuDNN-layout bias" in message


def test_keras3_writer_swapping_two_groups_fails(saved, tmp_path, monkeypatch):
    # Planted in the writer itself: the Keras 3 group plan puts the backward RNN's variables into
    # forward_layer and the forward's into backward_layer (same shapes, so only placement tells).
    from converters.writers import hdf5_keras3

    real = hdf5_keras3.write_h5

    def swapped(plan, read, dst, progress):
        plan = list(plan)
        q = next(i for i, g in enumerate(plan) if g.path.endswith("/forward_layer/cell"))
        k = next(i for i, g in enumerate(plan) if g.path.endswith("/backward_layer/cell"))
        plan[q], plan[k] = replace(plan[q], weights=plan[k].weights), replace(plan[k], weights=plan[q].weights)
        return real(plan, read, dst, progress)

    monkeypatch.setattr(hdf5_keras3, "write_h5", swapped)
    with pytest.raises(CorruptArtifact) as info:
        convert(saved / "bidi_model.h5", tmp_path / "w.weights.h5")
    assert "must be at 'layers/bidirectional/forward_layer/cell/vars/0'" in _one_line_failure(info)


# -- correct outputs pass, and the frameworks' loaders agree ---------------------------------------------


def test_correct_outputs_verify_and_load(saved, tmp_path):
    """Known correct outputs pass verification, and the frameworks' own loaders restore every weight:
    a Keras 2 CNN with BatchNormalization, MultiHeadAttention, Bidirectional and TimeDistributed to
    Keras 3 .weights.h5; the same to tf_keras HDF5 and TF checkpoints (an LSTM named so that
    nothing but its variables says what it is, from a weights-only .h5)."""
    jobs = []
    for name in ("cnn", "mha", "bidi", "td"):
        k3 = tmp_path / f"{name}.weights.h5"
        result = convert(saved / f"{name}_model.h5", k3)
        assert result.verified and result.format == "keras3-weights"
        jobs.append(("keras3", name, k3))
    for name in ("cnn", "bidi"):
        h5 = tmp_path / f"{name}.h5"
        assert convert(saved / f"{name}.h5", h5, to="h5-weights").verified
        jobs.append(("tf_keras", name, h5))
    for name, source in (("bidi", "bidi.h5"), ("td", "td_model.h5"), ("mha", "mha_model.h5"), ("enc", "enc.h5")):
        ck = tmp_path / f"{name}_ck"
        assert convert(saved / source, ck, to="tf-checkpoint").verified
        jobs.append(("tf_keras", name, ck))
    loaded = _load_crcs(jobs)
    for _, name, path in jobs:
        assert loaded[str(path)] == _crcs(saved / f"{name}_weights.npz"), (name, path)
