"""converters.validate: the whole tutorial story on CPU, a planted fault, the Keras-3-only path, and bad input.

The default validation is what CI runs: train 1 epoch on digits28, save in every
format, convert each into every other, reload with the frameworks' loaders.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from converters.datasets import write_fashion_mnist_cache
from converters.validate.report import Report, Result, format_matrix, from_dict, to_dict, write_tensorboard
from converters.validate import (
    KERAS3_SOURCES,
    TARGETS,
    TF_KERAS_SOURCES,
    ValidateOptions,
    main_validate,
    run_validation,
)
from inspector.errors import CkitError, MappingError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # tensorboard's protobuf import on py3.11

ROOT = Path(__file__).resolve().parents[2]
SEED_WEIGHTS = ROOT / "fixtures" / "seed" / "tf_keras" / "weights.h5"
CNN_WEIGHTS = ROOT / "fixtures" / "cnn" / "tf_keras" / "weights.h5"

TAMPER = '''
"""Plants one fault: adds 1.0 to the first class's bias in every converted {target} file."""
import h5py

def plant(path, source, target):
    if target != "{target}":
        return
    with h5py.File(path, "r+") as f:
        # The output layer's bias moves one logit by exactly 1.0.  (A first-layer kernel
        # entry could sit on a pixel that is 0 in every image and change nothing.)
        biases = []
        f.visititems(lambda name, obj: biases.append(obj) if isinstance(obj, h5py.Dataset) and obj.ndim == 1 else None)
        bias = biases[-1]
        value = bias[...]
        value[0] += 1.0
        bias[...] = value
'''


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default validation, as `ckconvert validate --json FILE --logdir DIR` runs it."""
    tmp = tmp_path_factory.mktemp("default")
    options = dict(json_path=str(tmp / "report.json"), logdir=str(tmp / "tb"), device="cpu", backend="tensorflow")
    return tmp, options


@pytest.mark.tf
@pytest.mark.slow
def test_default_validation_passes(default_run, capfd):
    tmp, options = default_run
    assert main_validate(**options) == 0
    out, err = capfd.readouterr()
    data = json.loads((tmp / "report.json").read_text())

    # The JSON form named in the issue.
    assert set(data["baseline"]) == {"accuracy", "loss"}
    assert data["device"] == "cpu" and data["backend"] == "tensorflow" and data["ok"] is True
    assert data["baseline"]["accuracy"] > 0.5  # 1 epoch on digits28 learns something
    rows = data["results"]
    for row in rows:
        assert {"source", "target", "loader", "accuracy", "loss", "max_abs_logit_diff", "ok"} <= set(row)
        assert row["source"] in TARGETS and row["target"] in TARGETS
        assert row["ok"] is not False, row
    checked = [r for r in rows if r["ok"]]
    assert {r["source"] for r in checked} == set(TF_KERAS_SOURCES + KERAS3_SOURCES)
    for row in checked:
        assert row["accuracy"] == data["baseline"]["accuracy"]
        assert row["max_abs_logit_diff"] <= data["tolerance"]
    # Every source is reloaded as saved, and converted into each other format ckit writes.
    for source in TF_KERAS_SOURCES + KERAS3_SOURCES:
        targets = {r["target"] for r in rows if r["source"] == source}
        assert targets == set(TARGETS), source
    loaders = {r["loader"] for r in checked}
    assert {"tf_keras.Model.load_weights", "tf_keras.models.load_model", "keras.models.load_model",
            "keras.Model.load_weights"} <= loaders
    # Keras 3 refuses TF-format weights; ckit's conversions make them loadable.
    assert any(r["source"] == "tf-checkpoint" and r["target"] == "keras3-weights" and r["ok"] for r in rows)
    assert any(r["source"] == "saved-model" and r["target"] == "keras3-model" and r["ok"] for r in rows)

    # The matrix on stdout, progress on stderr.
    assert out.startswith("baseline (converters.zoo:seed_model on digits28, tensorflow, cpu)")
    assert "source" in out and "max|Δlogit|" in out and "PASSED" in out
    assert "validate: [" in err and "tf-checkpoint -> keras3-weights" in err
    assert "validate: [" not in out

    # TensorBoard scalars carry the same figures.
    scalars = _read_scalars(tmp / "tb")
    assert scalars["baseline/accuracy"] == pytest.approx(data["baseline"]["accuracy"])
    first = checked[0]
    tag = f"{first['source']}/{first['target']}/{first['loader']}"
    assert scalars[f"{tag}/accuracy"] == pytest.approx(first["accuracy"])
    assert scalars[f"{tag}/ok"] == 1.0


@pytest.mark.tf
@pytest.mark.slow
def test_planted_fault_is_reported(tmp_path, monkeypatch, capfd):
    """One weight changed in a converted file: that row fails, the rest stay OK, exit code 1."""
    (tmp_path / "plant_fault.py").write_text(TAMPER.replace("{target}", "keras3-weights"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    options = ValidateOptions(artifact=str(SEED_WEIGHTS), model="converters.zoo:seed_model", device="cpu",
                              backend="tensorflow", tamper="plant_fault:plant", progress=False)
    report = run_validation(options)
    assert not report.ok
    (failure,) = [r for r in report.failures if r.target == "keras3-weights"]
    assert failure.source == "h5-weights" and failure.loader == "keras.Model.load_weights"
    assert failure.max_abs_logit_diff == pytest.approx(1.0) and failure.note == ""
    # Every other artifact that was reloaded still matches the baseline exactly.
    reloaded = [r for r in report.results if r is not failure and r.accuracy is not None]
    assert reloaded and all(r.ok for r in reloaded)
    assert any(r.source == r.target == "h5-weights" for r in reloaded)

    capfd.readouterr()
    monkeypatch.setattr("converters.validate.run.run_validation", lambda options: report)
    assert main_validate(artifact=str(SEED_WEIGHTS), model="converters.zoo:seed_model") == 1
    out, err = capfd.readouterr()
    assert "FAILED: " in out
    assert "ckconvert validate: FAIL h5-weights -> keras3-weights (keras.Model.load_weights): " in err
    assert "largest logit difference 1 exceeds the tolerance 1e-05" in err


@pytest.mark.slow
def test_keras3_only_on_jax_cpu_with_fashion_mnist(tmp_path, monkeypatch, capfd):
    """The GPU script's path (--backend jax), on CPU: Keras 3 rows checked, TensorFlow rows skipped with the reason.

    The data is Fashion-MNIST from a tiny Keras cache, which also proves --dataset fashion_mnist end to end.
    """
    pytest.importorskip("jax")
    rng = np.random.default_rng(2)
    write_fashion_mnist_cache(tmp_path / "keras_home", {
        "x_train": rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), "y_train": rng.integers(0, 10, 64, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (32, 28, 28), dtype=np.uint8), "y_test": rng.integers(0, 10, 32, dtype=np.uint8),
    })
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    report = run_validation(ValidateOptions(backend="jax", device="cpu", dataset="fashion_mnist",
                                            json_path=str(tmp_path / "r.json")))
    err = capfd.readouterr().err
    assert "on 64 fashion_mnist samples" in err
    assert report.ok and report.backend == "jax" and report.device == "cpu" and report.dataset == "fashion_mnist"
    assert {r.source for r in report.results} == set(KERAS3_SOURCES)
    checked = [r for r in report.results if r.ok]
    assert {"keras3-weights", "keras3-model", "h5-weights", "h5-model", "safetensors"} <= {r.target for r in checked}
    assert all(r.loader.startswith("keras.") for r in checked)
    assert all(r.max_abs_logit_diff == 0.0 for r in checked)  # one backend, one device: bit-identical
    reloads = [r for r in report.results if r.target == "tf-checkpoint"]
    assert reloads and all(r.ok is None and "needs tf_keras (TensorFlow)" in r.note for r in reloads)
    writes = [r for r in report.results if r.target == "saved-model"]
    assert writes and all(r.ok is None and "writing saved-model needs TensorFlow" in r.note for r in writes)
    assert any("TensorFlow rows skipped" in note for note in report.notes)
    assert json.loads((tmp_path / "r.json").read_text())["backend"] == "jax"


@pytest.mark.tf
@pytest.mark.slow
def test_user_savedmodel_without_keras_metadata(capfd):
    """Keras 3's model.export() SavedModel: the baseline comes from its serving signature."""
    report = run_validation(ValidateOptions(artifact=str(ROOT / "fixtures" / "seed" / "keras3" / "export"),
                                            model="converters.zoo:seed_model", device="cpu", backend="tensorflow"))
    capfd.readouterr()
    assert report.ok and report.artifact.endswith("export")
    assert report.results[0].loader == "tf.saved_model.load serving_default"
    assert {r.target for r in report.results if r.ok} == set(TARGETS)


# -- bad input: one-line messages saying what does not fit and how to fix it ---------------------


def test_model_factory_that_cannot_be_imported():
    with pytest.raises(MappingError, match=r"--model 'no_such_module:f': cannot import module 'no_such_module' "
                                          r"\(No module named 'no_such_module'\); expected an importable module: "
                                          r"run from the directory that holds it or add it to PYTHONPATH"):
        run_validation(ValidateOptions(model="no_such_module:f", progress=False))


def test_model_spec_without_function():
    with pytest.raises(MappingError, match=r"--model 'converters.zoo' is not of the form module:function; "
                                          r"expected e.g. --model yourpkg.models:build"):
        run_validation(ValidateOptions(model="converters.zoo", progress=False))


def test_artifact_needs_model():
    with pytest.raises(CkitError, match=r"needs the model that reads it; pass --model module:function"):
        run_validation(ValidateOptions(artifact=str(SEED_WEIGHTS)))


def test_artifact_missing(tmp_path):
    with pytest.raises(CkitError, match=r"artifact .*nope.h5 does not exist"):
        run_validation(ValidateOptions(artifact=str(tmp_path / "nope.h5"), model="converters.zoo:seed_model"))


def test_unknown_backend_and_device():
    with pytest.raises(CkitError, match=r"--backend mxnet is not a Keras 3 backend ckit validates with; expected one of: tensorflow, jax, torch"):
        run_validation(ValidateOptions(backend="mxnet"))
    with pytest.raises(CkitError, match=r"--device tpu is not known; expected one of: auto, cpu, gpu"):
        run_validation(ValidateOptions(device="tpu"))


def test_missing_fashion_mnist_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert main_validate(dataset="fashion_mnist") == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("ckconvert validate: error: Fashion-MNIST is not in the Keras cache") and err.count("\n") == 1


def test_factory_without_that_function():
    with pytest.raises(MappingError, match=r"--model 'converters.zoo:no_model': module 'converters.zoo' has no function "
                                          r"'no_model'; expected a function that builds the training model"):
        run_validation(ValidateOptions(model="converters.zoo:no_model", progress=False))


def test_data_with_the_wrong_shape(tmp_path):
    pytest.importorskip("jax")
    np.savez(tmp_path / "flat.npz", x_test=np.zeros((4, 32), np.float32), y_test=np.zeros(4, np.int64))
    with pytest.raises(MappingError, match=r"data x_test has samples of shape \(32,\) but model converters.zoo:seed_model \(keras\) "
                                          r"expects \(28, 28\); pass --data with x_test of shape \(N, 28, 28\)"):
        run_validation(ValidateOptions(data=str(tmp_path / "flat.npz"), backend="jax", device="cpu", progress=False))


def test_labels_beyond_the_model_outputs(tmp_path):
    pytest.importorskip("jax")
    np.savez(tmp_path / "d.npz", x_test=np.zeros((4, 28, 28), np.float32), y_test=np.array([0, 1, 2, 12]))
    with pytest.raises(MappingError, match=r"the labels run from 0 to 12 but model converters.zoo:seed_model outputs 10 class scores"):
        run_validation(ValidateOptions(data=str(tmp_path / "d.npz"), backend="jax", device="cpu", progress=False))


def test_gpu_without_one_fails_clearly(monkeypatch):
    pytest.importorskip("jax")
    # Hiding the GPUs the way --device cpu does makes this hold on a GPU machine too.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    with pytest.raises(CkitError, match=r"--device gpu: the jax backend sees no GPU \(devices: cpu\); use --device cpu or auto, "
                                       r"or install a CUDA build of jax"):
        run_validation(ValidateOptions(device="gpu", backend="jax", progress=False))


@pytest.mark.tf
def test_artifact_that_does_not_fit_the_model():
    with pytest.raises(MappingError, match=r"weights.h5 \(h5-weights\) does not fit model converters.zoo:seed_model: "
                                          r"tf_keras.Model.load_weights failed with .*; pass the --model factory that built this artifact"):
        run_validation(ValidateOptions(artifact=str(CNN_WEIGHTS), model="converters.zoo:seed_model", device="cpu",
                                       backend="tensorflow", progress=False))


def test_backend_not_installed():
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    with pytest.raises(CkitError, match=r"--backend torch: the Python package 'torch' is not installed; install it or pass "
                                       r"another --backend \(tensorflow, jax\)"):
        run_validation(ValidateOptions(backend="torch"))


def test_unknown_target():
    with pytest.raises(CkitError, match=r"targets onnx are not formats the validator checks; expected some of: h5-weights, "):
        run_validation(ValidateOptions(targets=("onnx", "h5-model")))


def test_workdir_must_be_empty(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(CkitError, match=r"workdir .* is not empty; expected an empty or new directory for the artifacts"):
        run_validation(ValidateOptions(workdir=str(tmp_path), backend="jax"))
    assert (tmp_path / "old.txt").read_text() == "keep me"


def test_timeout_stops_the_worker():
    with pytest.raises(CkitError, match=r"validation did not finish within 0.5 s; raise the timeout or use smaller --data"):
        run_validation(ValidateOptions(timeout_s=0.5, progress=False))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise RuntimeError('no GPU here')", r"--model factories:build raised RuntimeError when building with keras: "
                                              r"no GPU here; the factory must take the keras module"),
        ("return 42", r"--model factories:build returned int, expected a Keras model"),
    ],
)
def test_factory_that_does_not_build_a_model(tmp_path, monkeypatch, body, message):
    pytest.importorskip("jax")
    (tmp_path / "factories.py").write_text(f"def build(keras):\n    {body}\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(CkitError, match=message):
        run_validation(ValidateOptions(model="factories:build", backend="jax", device="cpu", progress=False))


def test_tf_artifact_on_a_backend_without_tensorflow():
    pytest.importorskip("jax")
    with pytest.raises(CkitError, match=r"weights is a tf-checkpoint artifact, which the jax backend cannot load without "
                                       r"TensorFlow; run with --backend tensorflow"):
        run_validation(ValidateOptions(artifact=str(ROOT / "fixtures" / "seed" / "tf_keras" / "ckpt" / "weights"),
                                       model="converters.zoo:seed_model", backend="jax", device="cpu", progress=False))


def test_safetensors_names_that_fit_no_weight(tmp_path):
    from safetensors.numpy import save_file

    from converters.validate.loaders import safetensors_in_model_order

    class Weight:
        def __init__(self, name):
            self.name = name

    class Model:
        weights = [Weight("dense/kernel:0"), Weight("dense/bias:0")]

    save_file({"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32)}, str(tmp_path / "m.safetensors"))
    with pytest.raises(MappingError, match=r"m.safetensors: cannot tell which tensor is which weight \(file keys \['a', 'b'\]"):
        safetensors_in_model_order(tmp_path / "m.safetensors", Model(), "tf_keras")
    save_file({"dense/bias": np.ones(2, np.float32), "dense/kernel": np.zeros(3, np.float32), "optimizer/dense/kernel": np.zeros(3, np.float32)},
              str(tmp_path / "n.safetensors"))
    kernel, bias = safetensors_in_model_order(tmp_path / "n.safetensors", Model(), "tf_keras")
    assert kernel.shape == (3,) and bias.tolist() == [1.0, 1.0]


# -- the report's printers ----------------------------------------------------------------------

REPORT = Report(
    baseline_accuracy=0.75,
    baseline_loss=0.5,
    device="cpu",
    backend="tensorflow",
    model="m:f",
    dataset="d",
    tolerance=1e-5,
    results=(
        Result("h5-weights", "h5-weights", "tf_keras.Model.load_weights", 0.75, 0.5, 0.0, True),
        Result("h5-weights", "keras3-weights", "keras.Model.load_weights", 0.5, 0.9, 2.5, False),
        Result("h5-weights", "tf-checkpoint", "-", ok=None, note="needs TensorFlow"),
    ),
)


def test_matrix_table():
    text = format_matrix(REPORT)
    lines = text.splitlines()
    assert lines[0] == "baseline (m:f on d, tensorflow, cpu): loss 0.5000, accuracy 0.7500"
    assert lines[1].split() == ["source", "target", "loader", "loss", "accuracy", "max|Δlogit|", "OK"]
    assert lines[3].split() == ["h5-weights", "=", "tf_keras.Model.load_weights", "0.5000", "0.7500", "0", "OK"]
    assert lines[4].split()[-1] == "FAIL" and lines[5].endswith("skip  needs TensorFlow")
    assert lines[6].startswith("FAILED: 1 OK, 1 failed, 1 skipped")


def test_json_round_trip_and_verdict():
    data = to_dict(REPORT)
    assert data["baseline"] == {"accuracy": 0.75, "loss": 0.5}
    assert data["results"][1]["max_abs_logit_diff"] == 2.5 and data["ok"] is False
    assert from_dict(json.loads(json.dumps(data))) == REPORT
    only_skips = Report(0.1, 0.2, "cpu", results=(REPORT.results[2],))
    assert not only_skips.ok  # nothing proven is not a pass


def test_tensorboard_scalars(tmp_path):
    write_tensorboard(REPORT, tmp_path)
    scalars = _read_scalars(tmp_path)
    assert scalars["baseline/loss"] == 0.5
    assert scalars["h5-weights/keras3-weights/keras.Model.load_weights/max_abs_logit_diff"] == 2.5
    assert scalars["h5-weights/keras3-weights/keras.Model.load_weights/ok"] == 0.0
    assert not any(tag.startswith("h5-weights/tf-checkpoint") for tag in scalars)


def test_json_on_stdout_moves_the_matrix_to_stderr(monkeypatch, capsys):
    monkeypatch.setattr("converters.validate.run.run_validation", lambda options: REPORT)
    assert main_validate(json_path="-") == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["results"][1]["ok"] is False
    assert err.startswith("baseline (m:f on d") and "FAIL h5-weights -> keras3-weights" in err


def test_main_validate_refuses_unknown_options():
    with pytest.raises(TypeError, match=r"main_validate got unknown options \['colour'\]"):
        main_validate(colour="red")


def _read_scalars(logdir: Path) -> dict[str, float]:
    """Parse the event file by hand (TFRecord framing), so the check does not depend on TensorFlow."""
    import struct

    from tensorboard.compat.proto import event_pb2

    (path,) = Path(logdir).glob("events.out.tfevents.*")
    raw = path.read_bytes()
    scalars, offset = {}, 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<Q", raw, offset)
        event = event_pb2.Event.FromString(raw[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            scalars[value.tag] = value.simple_value
    assert all(math.isfinite(v) for v in scalars.values())
    return scalars
