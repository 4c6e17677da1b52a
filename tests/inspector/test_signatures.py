"""`signatures` (no TensorFlow) equals what TensorFlow's own loaders report, TF1 and TF2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from inspector.cli import main
from inspector.signatures import read_signatures
from tests.conftest import FIXTURES, only_line

# TensorFlow reports: the TF2 loader's callable signatures, and every MetaGraphDef as TF's
# SavedModel loader reads it (tf.compat.v1.saved_model.loader.load, one graph per tag set).
_ORACLE = r"""
import json, sys
import tensorflow as tf
from tensorflow.python.tools import saved_model_utils

def spec(info):
    shape = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
    return {"dtype": tf.as_dtype(info.dtype).name if info.dtype else "invalid", "shape": shape, "tensor": info.name}

out = {}
for path in sys.argv[1:]:
    graphs = []
    for tags in saved_model_utils.get_saved_model_tag_sets(path):
        with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
            meta = tf.compat.v1.saved_model.loader.load(sess, list(tags), path)
        graphs.append({"tags": list(tags), "signatures": {
            key: {"method": sig.method_name,
                  "inputs": {k: spec(v) for k, v in sig.inputs.items()},
                  "outputs": {k: spec(v) for k, v in sig.outputs.items()}}
            for key, sig in meta.signature_def.items()}})
    callable_sigs = {}
    if [g["tags"] for g in graphs] == [["serve"]]:  # TF2 SavedModels: their callable signatures too
        for key, fn in tf.saved_model.load(path, tags=["serve"]).signatures.items():
            ins = fn.structured_input_signature[1]
            outs = fn.structured_outputs
            callable_sigs[key] = {
                "inputs": {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None] for k, v in ins.items()},
                "outputs": {k: [v.dtype.name, v.shape.as_list() if v.shape.rank is not None else None] for k, v in outs.items()}}
    out[path] = {"graphs": graphs, "callable": callable_sigs}
print(json.dumps(out))
"""

_TF1_WRITER = r"""
import sys
import tensorflow as tf
path = sys.argv[1]
with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
    ids = tf.compat.v1.placeholder(tf.int64, None, name="ids")  # unknown rank
    w = tf.compat.v1.get_variable("w", initializer=tf.ones([3, 2]))
    y = tf.matmul(x, w, name="y")
    sess.run(tf.compat.v1.global_variables_initializer())
    builder = tf.compat.v1.saved_model.Builder(path)
    predict = tf.compat.v1.saved_model.predict_signature_def({"x": x, "ids": ids}, {"y": y})
    regress = tf.compat.v1.saved_model.regression_signature_def(
        tf.compat.v1.placeholder(tf.string, [None], name="examples"), tf.reduce_sum(y, axis=1, keepdims=True))
    builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": predict, "regress": regress})
    builder.add_meta_graph(["train", "gpu"], signature_def_map={"predict": predict})
    builder.save()
"""


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """The fixtures' SavedModels (Keras, Keras 3 export, tf.Module, TF1 builder) plus a TF1 one with two meta
    graphs written by TensorFlow here."""
    tf1 = tmp_path_factory.mktemp("tf1") / "saved_model"
    done = subprocess.run([sys.executable, "-c", _TF1_WRITER, str(tf1)], capture_output=True, text=True,
                          env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    paths = [str(FIXTURES / "seed/tf_keras/saved_model"), str(FIXTURES / "seed/keras3/export"),
             str(FIXTURES / "cnn/tf_keras/saved_model"), str(FIXTURES / "nonkeras/tf1_saved_model"),
             str(FIXTURES / "nonkeras/module_saved_model"), str(tf1)]
    done = subprocess.run([sys.executable, "-c", _ORACLE, *paths], capture_output=True, text=True, env=_env(),
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.tf
def test_signatures_equal_tensorflow(saved_models):
    for path, want in saved_models.items():
        got = read_signatures(path)
        assert sorted(tuple(m.tags) for m in got.meta_graphs) == sorted(tuple(g["tags"]) for g in want["graphs"])
        for graph in want["graphs"]:
            (meta,) = [m for m in got.meta_graphs if list(m.tags) == graph["tags"]]
            assert {s.key for s in meta.signatures} == set(graph["signatures"]), path
            for sig in meta.signatures:
                expected = graph["signatures"][sig.key]
                assert sig.method == expected["method"]
                for mine, theirs in ((sig.inputs, expected["inputs"]), (sig.outputs, expected["outputs"])):
                    assert {s.name: {"dtype": s.dtype, "shape": None if s.shape is None else list(s.shape),
                                     "tensor": s.tensor} for s in mine} == theirs, (path, sig.key)
        for key, expected in want["callable"].items():  # TF2's loader: callable signatures, None = unknown dim
            (sig,) = [s for m in got.meta_graphs if "serve" in m.tags for s in m.signatures if s.key == key]
            for mine, theirs in ((sig.inputs, expected["inputs"]), (sig.outputs, expected["outputs"])):
                assert {s.name: [s.dtype, None if s.shape is None else [None if d < 0 else d for d in s.shape]]
                        for s in mine} == theirs


def test_tf1_meta_graphs_in_the_cli(saved_models, capsys):
    tf1 = next(p for p in saved_models if not p.startswith(str(FIXTURES)))
    assert main(["signatures", tf1]) == 0
    out = capsys.readouterr().out
    assert "tag-set: serve" in out and "tag-set: train, gpu" in out
    assert "signature 'regress'  method tensorflow/serving/regress" in out
    assert "inputs ids: int64 (unknown rank)  ids:0" in out
    assert main(["signatures", "--json", tf1]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "ckit.signatures/1" and len(doc["meta_graphs"]) == 2


def test_signatures_of_a_checkpoint_is_a_one_line_error(capsys):
    assert main(["signatures", str(FIXTURES / "seed/tf_keras/ckpt")]) == 1
    line = only_line(capsys.readouterr().err)
    assert "a tf-checkpoint artifact has no signatures; expected a SavedModel directory" in line


def test_signatures_import_no_tensorflow():
    code = ("import sys\nfrom inspector.signatures import read_signatures\n"
            f"read_signatures({str(FIXTURES / 'seed/keras3/export')!r})\n"
            "assert 'tensorflow' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=FIXTURES.parent)
