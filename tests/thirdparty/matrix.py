"""Convert every third-party artifact to every ckit target and judge each output by the frameworks.

Shared by tests/thirdparty/test_corpus_convert.py and benchmarks/corpus_report.py. The rule of
issue 7: a conversion is either refused with a one-line ckit error, or its output, reloaded with
the framework's own loader, predicts what the source model predicts (max |diff| <= 1e-5) on fixed
inputs. Anything else is WRONG (written but not loadable, or loadable with other predictions) or
CRASH (an exception that is not a ckit error, or a refusal that admits an internal error).

How each output is reloaded (the oracle), all with `compile=False`:
  h5-weights     tf_keras `Model.load_weights` into the source model (weights reset to zero first)
  tf-checkpoint  tf_keras `Model.load_weights` (object-graph restore) into the reset source model
  safetensors    every array set, by its name, into the reset source model's variable of that name
                 (the tf_keras variable name without ':0', ckit's documented canonical name); a flat
                 file keeps a CuDNN-layout source as it is (textgenrnn's CuDNNLSTM, bias 8 x units),
                 so its arrays are set by name into the CuDNN model that wrote the file
                 (archs.CUDNN_FACTORIES) and carried into the reset source model (LSTM) by tf_keras's
                 own HDF5 loader, which re-lays CuDNN weights as it does for the original file
  h5-model       `tf_keras.models.load_model`
  saved-model    `tf_keras.models.load_model`
  keras3-weights Keras 3 `Model.load_weights` into the Keras 3 source model (reset to zero first)
  keras3-model   Keras 3 `keras.models.load_model`
The source model is the original full model loaded by tf_keras, or, for a weights-only file, the
package's architecture (tests/thirdparty/archs.py) with the original file loaded by tf_keras's
`load_weights`. The Keras 3 source model is the same architecture built with Keras 3 (for a full
model: Keras 3's own `load_model` of the original file, where Keras 3 can read it; for a TF 2.4
SavedModel with custom layers, `archs.revived_keras3`). Reference predictions come from the tf_keras
source model. Each framework runs in one subprocess for the whole matrix; no Python code from an
artifact is executed (no Lambda layers in the corpus, custom layers are re-declared in archs.py or,
in a SavedModel, run as its traced TF graphs, as tf_keras's `load_model` runs them; `safe_mode`
stays on).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tests.thirdparty.corpus import ROOT, Artifact, artifacts

TARGETS = ("h5-weights", "h5-model", "tf-checkpoint", "saved-model", "keras3-weights", "keras3-model", "safetensors")
FULL_MODEL_TARGETS = frozenset({"h5-model", "saved-model", "keras3-model"})
TOLERANCE = 1e-5
_DEST = {
    "h5-weights": "out.h5",
    "h5-model": "out.h5",
    "tf-checkpoint": "ckpt/out",
    "saved-model": "saved_model",
    "keras3-weights": "out.weights.h5",
    "keras3-model": "out.keras",
    "safetensors": "out.safetensors",
}
WEIGHTS_ONLY = ("deepcut", "textgenrnn", "reactionrnn", "chars2vec", "humanactivity", "rnnmorph")
# Keras 3 cannot rebuild these full models from their files (tf.keras 2.5's LSTM config carries
# `time_major`, which Keras 3 rejects; Keras 3 rebuilds the Keras 2.3 Sequential but then rejects
# its own input, the first layer's batch_input_shape being lost): their keras3-weights outputs are
# loaded into the keras3-model output ckit wrote, if any (itself judged by its own predictions).
# A TF 2.4 SavedModel is not a Keras 3 format either, and basic_pitch's custom layers exist only
# for tf.keras: its Keras 3 model is `archs.revived_keras3` (its recorded config rebuilt by Keras 3,
# each custom layer running its traced graph from the SavedModel).
_NO_KERAS3_SOURCE = ("ethnicolr", "inaspeechsegmenter")


@dataclass
class Case:
    artifact: str
    target: str
    status: str = ""  # exact | refused | WRONG | CRASH | unchecked (written, but no framework can load it to judge)
    detail: str = ""
    dst: str = ""
    diff: float | None = None
    seconds: float = 0.0  # the conversion's wall time

    @property
    def ok(self) -> bool:
        return self.status in ("exact", "refused")


@dataclass
class Matrix:
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall time

    def passed(self) -> int:
        return sum(c.ok for c in self.cases.values())


def factory_for(name: str) -> str | None:
    """The `--model` a user would pass for a weights-only source's full-model targets."""
    return f"tests.thirdparty.archs:{name}" if name in WEIGHTS_ONLY else None


def convert_all(workdir: Path, only: tuple[str, ...] = ()) -> Matrix:
    """Run ckit's converter for every artifact x target (in this process); classify refusals and crashes."""
    from converters.convert import convert
    from inspector.errors import CkitError

    matrix = Matrix()
    started = time.perf_counter()
    for art in artifacts():
        if only and art.name not in only:
            continue
        for target in TARGETS:
            case = Case(art.name, target)
            matrix.cases[(art.name, target)] = case
            dst = workdir / art.name / target / _DEST[target]
            dst.parent.mkdir(parents=True, exist_ok=True)
            model = factory_for(art.name) if target in FULL_MODEL_TARGETS else None
            began = time.perf_counter()
            try:
                convert(art.path, dst, to=target, model=model)
            except CkitError as exc:
                message = str(exc)
                bad = [w for w in ("internal error", "ckit bug", "Traceback") if w in message]
                if "\n" in message.strip() or bad:
                    case.status, case.detail = "CRASH", f"refusal is not a clean one-line error: {message[:700]}"
                else:
                    case.status, case.detail = "refused", message
                continue
            except Exception as exc:  # noqa: BLE001 - any non-ckit exception is the finding
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                case.status = "CRASH"
                case.detail = f"{type(exc).__name__}: {str(exc)[:300]} (at {Path(tb.filename).name}:{tb.lineno})"
                continue
            finally:
                case.seconds = time.perf_counter() - began
            case.dst = str(dst)
    matrix.seconds["convert"] = time.perf_counter() - started
    return matrix


_TF_KERAS_ORACLE = r"""
import json, sys, traceback
import numpy as np
import tensorflow as tf
import tf_keras
from tests.thirdparty import archs
from tests.thirdparty.corpus import by_name

job = json.loads(open(sys.argv[1]).read())
results, refs = {}, {}
customs = archs.custom_objects(tf_keras)

def source_model(name):
    art = by_name(name)
    if name in archs.FACTORIES:
        model = archs.FACTORIES[name](tf_keras)
        model.load_weights(str(art.path))
        return model
    return tf_keras.models.load_model(str(art.path), compile=False, custom_objects=customs)

def predict(model, xs):
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    out = [out[k] for k in sorted(out)] if isinstance(out, dict) else out
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o, dtype=np.float64) for o in out]

def zeroed(name):
    model = source_model(name)
    for w in model.weights:
        w.assign(np.zeros(w.shape, w.dtype.as_numpy_dtype))
    return model

def load_output(name, target, dst):
    if target in ("h5-weights", "tf-checkpoint"):
        model = zeroed(name)
        model.load_weights(dst)
        return model
    if target == "safetensors":
        from safetensors.numpy import load_file
        arrays = load_file(dst)
        if name in archs.CUDNN_FACTORIES:
            # A flat file keeps the source's CuDNN layout: by name into the CuDNN model that wrote it,
            # then tf_keras's own HDF5 loader carries those weights into the source model's LSTMs.
            cudnn = assign_by_name(archs.CUDNN_FACTORIES[name](tf_keras), arrays)
            carried = job["refs"] + f"/{name}-cudnn.h5"
            cudnn.save_weights(carried)
            model = zeroed(name)
            model.load_weights(carried)
            return model
        return assign_by_name(zeroed(name), arrays)
    return tf_keras.models.load_model(dst, compile=False, custom_objects=customs)

def assign_by_name(model, arrays):
    for w in model.weights:  # every variable is set from the file, or the load fails
        key = w.name.split(":")[0]
        if key not in arrays:
            raise LookupError(f"no tensor named {key!r} for variable {w.name} (file has {sorted(arrays)[:4]}...)")
        if arrays[key].shape != tuple(w.shape):
            raise ValueError(f"{key}: file shape {arrays[key].shape}, variable shape {tuple(w.shape)}")
        w.assign(arrays[key])
    return model

def file_layer_order(path):
    # The layers with weights, in the order the weights-only file stores them (tf_keras loads by it).
    import h5py
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
        return [n for n in names if len(f[n].attrs["weight_names"])]

def check_source(name, model, ref, xs):
    # The harness itself must be right: the rebuilt architecture stores its layers in the file's
    # order, and the fixed inputs reach the weights (zeroed weights predict something else).
    if name in archs.FACTORIES:
        order = [l.name for l in model.layers if l.weights]
        expected = file_layer_order(str(by_name(name).path))
        if order != expected:
            raise AssertionError(f"archs.{name} builds layers {order}, the file has {expected}")
    saved = [w.numpy() for w in model.weights]
    for w in model.weights:
        w.assign(np.zeros(w.shape, w.dtype.as_numpy_dtype))
    blank = predict(model, xs)
    for w, value in zip(model.weights, saved):
        w.assign(value)
    if max(float(np.max(np.abs(b - r))) for b, r in zip(blank, ref)) < 1e-3:
        raise AssertionError("the fixed inputs give the same predictions with zeroed weights")

for name in job["artifacts"]:
    xs = archs.inputs(name)
    try:
        model = source_model(name)
        ref = predict(model, xs)
        check_source(name, model, ref, xs)
    except Exception as exc:
        results[name] = {"source_error": f"{type(exc).__name__}: {exc}"[:400]}
        continue
    refs[name] = ref
    np.savez(job["refs"] + f"/{name}.npz", **{str(i): r for i, r in enumerate(ref)})
    results[name] = {}
    for target, dst in job["cases"].get(name, {}).items():
        try:
            got = predict(load_output(name, target, dst), xs)
            diff = max(float(np.max(np.abs(g - r))) for g, r in zip(got, ref)) if len(got) == len(ref) else float("inf")
            results[name][target] = {"diff": diff}
        except Exception as exc:
            results[name][target] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]}
print("RESULT " + json.dumps(results))
"""

_KERAS3_ORACLE = r"""
import json, sys
import numpy as np
import keras
from tests.thirdparty import archs
from tests.thirdparty.corpus import by_name

job = json.loads(open(sys.argv[1]).read())
results = {}
customs = archs.custom_objects(keras)

class Unjudgeable(Exception):
    pass

def predict(model, xs):
    out = model(xs if len(xs) > 1 else xs[0], training=False)
    out = [out[k] for k in sorted(out)] if isinstance(out, dict) else out
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(keras.ops.convert_to_numpy(o), dtype=np.float64) for o in out]

def keras3_source(name, cases):
    if name in archs.FACTORIES:
        return archs.FACTORIES[name](keras)
    if name in archs.REVIVED_KERAS3:
        return archs.revived_keras3(keras, str(by_name(name).path))
    if name in job["no_keras3_source"]:
        if "keras3-model" not in cases:
            raise Unjudgeable("Keras 3 cannot build this model (not from its file, and ckit wrote no .keras "
                              "for it), so nothing can load this .weights.h5 to check it")
        return keras.models.load_model(cases["keras3-model"], compile=False, custom_objects=customs)
    return keras.models.load_model(str(by_name(name).path), compile=False, custom_objects=customs)

for name in job["artifacts"]:
    cases = job["cases"].get(name, {})
    ref_file = job["refs"] + f"/{name}.npz"
    results[name] = {}
    try:
        ref_npz = np.load(ref_file)
    except OSError:
        continue
    ref = [ref_npz[str(i)] for i in range(len(ref_npz.files))]
    xs = archs.inputs(name)
    for target, dst in cases.items():
        try:
            if target == "keras3-weights":
                model = keras3_source(name, cases)
                for w in model.weights:
                    w.assign(np.zeros(w.shape, w.dtype))
                model.load_weights(dst)
            else:
                model = keras.models.load_model(dst, compile=False, custom_objects=customs)
            got = predict(model, xs)
            diff = max(float(np.max(np.abs(g - r))) for g, r in zip(got, ref)) if len(got) == len(ref) else float("inf")
            results[name][target] = {"diff": diff}
        except Unjudgeable as exc:
            results[name][target] = {"unchecked": str(exc)}
        except Exception as exc:
            results[name][target] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]}
print("RESULT " + json.dumps(results))
"""


def _run_oracle(script: str, job: dict, workdir: Path, tag: str) -> dict:
    job_path = workdir / f"job-{tag}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run([sys.executable, "-c", script, str(job_path)], capture_output=True, text=True,
                          env=env, timeout=900, cwd=str(ROOT))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{tag} oracle failed (exit {done.returncode}): {done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def judge(matrix: Matrix, workdir: Path) -> Matrix:
    """Reload every written output in the frameworks (one subprocess each) and classify it."""
    refs = workdir / "refs"
    refs.mkdir(exist_ok=True)
    names = sorted({c.artifact for c in matrix.cases.values()})
    written = [c for c in matrix.cases.values() if c.dst]
    tf_cases: dict[str, dict[str, str]] = {}
    k3_cases: dict[str, dict[str, str]] = {}
    for case in written:
        table = k3_cases if case.target.startswith("keras3") else tf_cases
        table.setdefault(case.artifact, {})[case.target] = _loadable(case)
    started = time.perf_counter()
    tf_result = _run_oracle(_TF_KERAS_ORACLE, {"artifacts": names, "cases": tf_cases, "refs": str(refs)}, workdir, "tf_keras")
    matrix.seconds["tf_keras"] = time.perf_counter() - started
    started = time.perf_counter()
    k3_result = _run_oracle(_KERAS3_ORACLE, {"artifacts": names, "cases": k3_cases, "refs": str(refs),
                                             "no_keras3_source": list(_NO_KERAS3_SOURCE)}, workdir, "keras3")
    matrix.seconds["keras3"] = time.perf_counter() - started
    for case in written:
        if "source_error" in tf_result.get(case.artifact, {}):
            case.status, case.detail = "unchecked", "source model: " + tf_result[case.artifact]["source_error"]
            continue
        result = (k3_result if case.target.startswith("keras3") else tf_result).get(case.artifact, {}).get(case.target)
        if result is None:
            case.status, case.detail = "unchecked", "no reload result"
        elif "unchecked" in result:
            case.status, case.detail = "unchecked", f"written, but cannot be judged: {result['unchecked']}"
        elif "error" in result:
            case.status, case.detail = "WRONG", f"written, but the framework cannot load it: {result['error']}"
        elif result["diff"] <= TOLERANCE:
            case.status, case.diff = "exact", result["diff"]
        else:
            case.status, case.diff = "WRONG", result["diff"]
            case.detail = f"written and reported verified, but predictions differ by {result['diff']:.3g}"
    return matrix


def _loadable(case: Case) -> str:
    """The path a loader takes: a checkpoint's prefix, a SavedModel's directory, else the file."""
    return case.dst


def run_matrix(workdir: Path, only: tuple[str, ...] = ()) -> Matrix:
    return judge(convert_all(workdir, only), workdir)


def artifact_names() -> list[str]:
    return [a.name for a in artifacts()]


def describe(art: Artifact) -> str:
    return f"{art.name} ({art.record['package']} {art.record['version']}, {art.keras_version})"
