"""`--config ARCH.json` is hostile input: every wrong JSON is one line naming what was found, and
nothing is written; a JSON that describes other weights names the first layer that differs.

The weights are humanactivity's real `har_model_save` (Keras 2.0.6, no suffix) and the JSONs are its
own `har_model_json` or that file changed the way a user's mix-up would change it. The conversions
that succeed are judged by the frameworks' loaders in tests/thirdparty/test_config_option.py.
"""

from __future__ import annotations

import copy
import json

import pytest

from converters.cli import main
from inspector import read_manifest
from tests.conftest import FIXTURES, only_line

WEIGHTS = FIXTURES / "thirdparty/humanactivity/har_model_save"
ARCH = FIXTURES / "thirdparty/humanactivity/har_model_json"
OTHER_ARCH = FIXTURES / "thirdparty/rnnmorph/eval_model.json"


def _refused(capsys, tmp_path, config, *, to="h5-model", dst="out.h5", extra=()):
    out = tmp_path / dst
    assert main(["convert", str(WEIGHTS), str(out), "--to", to, "--config", str(config), *extra]) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    return only_line(capsys.readouterr().err)


def _edited(tmp_path, edit, name="arch.json"):
    config = json.loads(ARCH.read_text())
    edit(config)
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def test_not_json_is_refused(tmp_path, capsys):
    line = _refused(capsys, tmp_path, FIXTURES / "thirdparty/humanactivity/LICENSE")
    assert "is not JSON (Expecting value: line 1 column 1" in line and "model.to_json()" in line


def test_weights_file_given_as_config_is_refused(tmp_path, capsys):
    line = _refused(capsys, tmp_path, WEIGHTS)
    assert f"--config {WEIGHTS} is an HDF5 file, not JSON" in line and "weights file as SRC" in line


@pytest.mark.parametrize("content, found", [
    ("[1, 2]", "holds a JSON list of 2 item(s)"),
    ('{"class_name": "Dense", "config": {"units": 3}}', "holds the config of a single 'Dense' object, not of a model"),
    ('{"weights": []}', "holds a JSON object without class_name (keys: weights)"),
    ('{"class_name": "Sequential", "config": {"name": "s"}}', "holds a Sequential config without a list of layers"),
])
def test_json_that_is_not_a_model_config_is_refused(tmp_path, capsys, content, found):
    path = tmp_path / "arch.json"
    path.write_text(content)
    line = _refused(capsys, tmp_path, path)
    assert found in line and "expected an architecture JSON as model.to_json() writes it" in line


def test_oversized_json_is_refused_before_it_is_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("converters.arch_json.MAX_CONFIG_BYTES", 1024)
    line = _refused(capsys, tmp_path, ARCH)
    assert f"--config {ARCH} is {ARCH.stat().st_size} bytes; expected an architecture JSON" in line
    assert "at most 1024 bytes" in line


def test_config_and_model_together_are_refused(tmp_path, capsys):
    line = _refused(capsys, tmp_path, ARCH, extra=("--model", "tests.thirdparty.archs:humanactivity"))
    assert "both --model" in line and "drop --config" in line


@pytest.mark.tf
@pytest.mark.parametrize("target, dst", [("h5-model", "m.h5"), ("safetensors", "w.safetensors")])
def test_json_of_another_model_names_the_first_missing_layer(tmp_path, capsys, target, dst):
    line = _refused(capsys, tmp_path, OTHER_ARCH, to=target, dst=dst)
    assert "does not describe" in line and "weights of layer 'conv1d_1'" in line and "no layer of that name" in line


@pytest.mark.tf
@pytest.mark.parametrize("target, dst", [("h5-weights", "w.h5"), ("keras3-model", "m.keras"), ("npz", "w.npz")])
def test_json_with_other_shapes_names_the_layer_and_shapes(tmp_path, capsys, target, dst):
    path = _edited(tmp_path, lambda c: c["config"][4]["config"].update(units=100))  # dense_1: 10000 units
    line = _refused(capsys, tmp_path, path, to=target, dst=dst)
    assert ("its layer 'dense_1' (Dense) builds weights of shapes [6, 100], [100], the artifact holds "
            "[6, 10000], [10000]") in line


@pytest.mark.tf
def test_json_with_an_extra_weighted_layer_is_refused(tmp_path, capsys):
    extra = {"class_name": "Dense", "config": {"name": "dense_extra", "units": 3}}
    path = _edited(tmp_path, lambda c: c["config"].append(extra))
    line = _refused(capsys, tmp_path, path)
    assert "its layer 'dense_extra' (Dense) builds weights of shapes [6, 3], [3], the artifact holds no weights" in line


@pytest.mark.tf
@pytest.mark.parametrize("target, dst", [("h5-model", "m.h5"), ("keras3-model", "m.keras")])
def test_lambda_layer_in_the_json_is_refused_for_full_models(tmp_path, capsys, target, dst):
    import tf_keras

    # tf_keras's own serialisation of a Lambda layer: its config carries the function's bytecode.
    lambda_layer = tf_keras.layers.serialize(tf_keras.layers.Lambda(lambda x: x * 2, name="lambda_1"))
    assert lambda_layer["config"]["function_type"] == "lambda"
    path = _edited(tmp_path, lambda c: c["config"].insert(4, lambda_layer))
    line = _refused(capsys, tmp_path, path, to=target, dst=dst)
    assert "'lambda_1'" in line and "Lambda layer" in line


@pytest.mark.tf
def test_h5_to_tf_takes_config_and_checks_it(tmp_path, capsys):
    assert main(["h5-to-tf", str(WEIGHTS), str(tmp_path / "w"), "--config", str(ARCH)]) == 0
    assert read_manifest(tmp_path / "w").format == "tf-checkpoint"
    assert "weight shapes not checked" not in capsys.readouterr().err


@pytest.mark.tf
def test_config_replaces_an_embedded_one_with_a_note(tmp_path, capsys):
    import h5py

    source = FIXTURES / "seed/tf_keras/model.h5"
    with h5py.File(source, "r") as f:
        embedded = json.loads(f.attrs["model_config"])
    same, changed = tmp_path / "same.json", tmp_path / "changed.json"
    same.write_text(json.dumps(embedded))
    edited = copy.deepcopy(embedded)
    dropout = next(layer for layer in edited["config"]["layers"] if layer["class_name"] == "Dropout")
    dropout["config"]["rate"] = 0.375
    changed.write_text(json.dumps(edited))

    assert main(["convert", str(source), str(tmp_path / "a.h5"), "--to", "h5-model", "--config", str(same)]) == 0
    assert "replaced by --config" not in capsys.readouterr().err
    assert main(["convert", str(source), str(tmp_path / "b.h5"), "--to", "h5-model", "--config", str(changed)]) == 0
    assert f"the model config in {source} was replaced by --config {changed} (they differ)" in capsys.readouterr().err
    with h5py.File(tmp_path / "b.h5", "r") as f:
        written = json.loads(f.attrs["model_config"])
    rates = [layer["config"]["rate"] for layer in written["config"]["layers"] if layer["class_name"] == "Dropout"]
    assert rates == [0.375]


@pytest.mark.tf
def test_keras3_and_tf_keras_json_beside_weights_convert_exactly(tmp_path):
    """Both JSON schemas as the frameworks write them: Keras 3 `model.to_json()` beside Keras 3
    `save_weights`, tf_keras `model.to_json()` beside a `save_weights` checkpoint; each output reloaded
    by its framework predicts the seed model's logits."""
    import keras
    import numpy as np
    import tf_keras

    reference = np.load(FIXTURES / "seed/reference.npz")
    k3_json, k2_json = tmp_path / "k3.json", tmp_path / "k2.json"
    k3_json.write_text(keras.models.load_model(FIXTURES / "seed/keras3/model.keras", compile=False).to_json())
    k2_json.write_text(tf_keras.models.load_model(FIXTURES / "seed/tf_keras/model.h5", compile=False).to_json())
    cases = [
        (FIXTURES / "seed/keras3/model.weights.h5", k3_json, "m.keras", keras, "logits_keras3"),
        (FIXTURES / "seed/keras3/model.weights.h5", k3_json, "m.h5", tf_keras, "logits_keras3"),
        (FIXTURES / "seed/tf_keras/ckpt/weights", k2_json, "c.keras", keras, "logits_tf_keras"),
    ]
    for weights, arch, dst, framework, logits in cases:
        to = "h5-model" if dst.endswith(".h5") else None
        assert main(["convert", str(weights), str(tmp_path / dst), "--config", str(arch),
                     *(["--to", to] if to else [])]) == 0
        model = framework.models.load_model(tmp_path / dst, compile=False)
        np.testing.assert_allclose(np.asarray(model(reference["inputs"])), reference[logits], atol=1e-5,
                                   err_msg=f"{weights.name} + {arch.name} -> {dst}")
