"""A TF1 SavedModel with one meta graph per tag set: every tag set and its signatures are listed."""

from __future__ import annotations

import pytest

from inspector.registry import read_manifest

pytestmark = pytest.mark.tf


def test_every_meta_graph_is_listed(tmp_path):
    import tensorflow as tf

    v1 = tf.compat.v1
    out = tmp_path / "sm"
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        w = v1.get_variable("w", [2, 1], initializer=v1.ones_initializer())
        y = tf.matmul(x, w)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(out))
            predict = v1.saved_model.predict_signature_def(inputs={"x": x}, outputs={"y": y})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": predict})
            builder.add_meta_graph(["train", "gpu"], signature_def_map={"train_step": predict})
            builder.save()
    manifest = read_manifest(out)
    assert manifest.metadata["tags"] == ["serve"]
    assert manifest.metadata["meta_graphs"] == [
        {"tags": ["serve"], "signatures": ["serving_default"]},
        {"tags": ["train", "gpu"], "signatures": ["train_step"]},
    ]
    assert [t.name for t in manifest.tensors] == ["w"]
