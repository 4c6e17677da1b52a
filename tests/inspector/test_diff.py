"""`diff`: every fixture equals each of its conversions; a planted change is named exactly."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

import inspector
from converters.convert import convert
from inspector.cli import main
from tests.conftest import FIXTURES, only_line

# Each source format of each model; targets that need no TensorFlow to write.
SOURCES = [
    "tf_keras/weights.h5",
    "tf_keras/ckpt/weights",
    "tf_keras/model.h5",
    "tf_keras/saved_model",
    "keras3/model.weights.h5",
    "keras3/model.keras",
    "keras3/legacy.h5",
]
TARGETS = {
    "h5-weights": "out.h5",
    "h5-model": "out.h5",
    "tf-checkpoint": "out",
    "keras3-weights": "out.weights.h5",
    "keras3-model": "out.keras",
    "safetensors": "out.safetensors",
}
HAS_CONFIG = {"tf_keras/model.h5", "tf_keras/saved_model", "keras3/model.keras", "keras3/legacy.h5"}


@pytest.mark.parametrize("model", ["seed", "cnn", "lstm"])
@pytest.mark.parametrize("source", SOURCES)
def test_every_conversion_diffs_equal(tmp_path, model, source):
    src = FIXTURES / model / source
    if not src.exists() and not src.with_name(src.name + ".index").exists():
        pytest.skip(f"{model} has no {source}")
    compared = 0
    for target, name in TARGETS.items():
        if target in ("h5-model", "keras3-model") and source not in HAS_CONFIG:
            continue  # a weights-only source cannot become a full model without --model
        out = tmp_path / target / name
        out.parent.mkdir()
        convert(src, out, target)
        report = inspector.diff(src, out)
        assert report.equal, (target, report.to_json())
        with inspector.open(src) as art:
            weights = sum(1 for t in art.tensors if t.role == "weight")
        assert report.compared >= weights  # every weight was paired and compared, not skipped
        compared += 1
    assert compared >= 4


def _planted_copy(tmp_path, layer: str, weight: str, index: tuple, delta: float):
    copy = tmp_path / "changed.h5"
    shutil.copy(FIXTURES / "seed/tf_keras/weights.h5", copy)
    with h5py.File(copy, "r+") as f:
        ds = f[layer][layer][weight]
        value = ds[()]
        before = float(value[index])
        value[index] += delta
        ds[...] = value
    return copy, before


def test_planted_change_is_named_exactly(tmp_path, capsys):
    ckpt = FIXTURES / "seed/tf_keras/ckpt/weights"
    changed, before = _planted_copy(tmp_path, "dense", "kernel:0", (300, 17), 0.5)
    report = inspector.diff(changed, ckpt)
    assert not report.equal and not report.only_a and not report.only_b
    (change,) = report.changed
    assert change.a.name == "dense/kernel" and change.kinds == ("values",)
    assert change.values.differing == 1
    assert change.values.first_index == (300, 17)
    assert change.values.b_value == pytest.approx(before)
    assert change.values.max_abs == pytest.approx(0.5, rel=1e-6)

    assert main(["diff", str(changed), str(ckpt)]) == 1
    out = capsys.readouterr().out
    assert "dense/kernel  1 element of 100,352 differs" in out
    assert "first at [300,17]" in out
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith(("A: ", "B: ")))
    # Within tolerance, the same pair is equal.
    assert main(["diff", "--atol", "0.6", str(changed), str(ckpt)]) == 0
    assert "EQUAL (atol 0.6, rtol 0): 4 tensors compared" in capsys.readouterr().out


def test_diff_json_schema(tmp_path, capsys):
    changed, _ = _planted_copy(tmp_path, "dense_1", "bias:0", (3,), np.nan)
    assert main(["diff", "--json", str(changed), str(FIXTURES / "seed/keras3/model.weights.h5")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "ckit.diff/1"
    assert doc["equal"] is False
    names = {c["name"]: c for c in doc["changed"]}
    # keras3 and tf_keras fixtures are two trainings: every weight differs; the NaN is reported as inf.
    assert set(names) == {"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"}
    assert names["dense_1/bias"]["values"]["max_abs"] == "inf"
    assert doc["a"]["format"] == "h5-weights" and doc["b"]["format"] == "keras3-weights"


def test_weights_only_and_optimizer_state(capsys):
    ckpt = str(FIXTURES / "seed/tf_keras/ckpt/weights")
    saved = str(FIXTURES / "seed/tf_keras/saved_model")
    report = inspector.diff(ckpt, saved)
    assert report.equal and report.compared > 4  # optimizer slots compared too
    assert inspector.diff(ckpt, saved, weights_only=True).compared == 4


def test_unmatched_names_suggest_a_map_that_then_pairs_them(tmp_path, capsys):
    from safetensors.numpy import save_file

    src = FIXTURES / "seed/tf_keras/weights.h5"
    with inspector.open(src) as art:
        arrays = {t.name.replace("dense_1/", "fc2/").replace("dense/", "fc1/"): art.read(t.key) for t in art.tensors}
    renamed = tmp_path / "renamed.safetensors"
    save_file(arrays, str(renamed))

    assert main(["diff", "--json", str(src), str(renamed)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["only_a"]) == 4 and len(doc["only_b"]) == 4
    suggested = doc["suggested_map"]
    assert suggested == {"rename": {"^dense/bias$": "fc1/bias", "^dense/kernel$": "fc1/kernel",
                                    "^dense_1/bias$": "fc2/bias", "^dense_1/kernel$": "fc2/kernel"}}
    assert main(["diff", str(src), str(renamed)]) == 1
    assert "pass --map FILE" in capsys.readouterr().out

    map_file = tmp_path / "map.json"
    map_file.write_text(json.dumps(suggested))
    assert main(["diff", "--map", str(map_file), str(src), str(renamed)]) == 0
    assert "EQUAL: 4 tensors compared" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys):
    assert main(["diff", str(FIXTURES / "seed/tf_keras/weights.h5")]) == 2
    assert "Missing argument" in only_line(capsys.readouterr().err)
    assert main(["diff", "--atol", "-1", "a", "b"]) == 2
    capsys.readouterr()


def test_missing_artifact_is_one_line_exit_1(tmp_path, capsys):
    assert main(["diff", str(tmp_path / "nope.h5"), str(FIXTURES / "seed/tf_keras/weights.h5")]) == 1
    assert "no such file" in only_line(capsys.readouterr().err)
