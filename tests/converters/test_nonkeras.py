"""Non-Keras TensorFlow artifacts (issue 8): flat targets, checkpoint passthrough, --map, foreign paths.

The oracle is TensorFlow itself: `tf.train.load_checkpoint` for the source tensors,
`tf.train.Checkpoint(...).restore`, `tf.compat.v1.train.Saver.restore` and
`tf.saved_model.load` for the outputs; safetensors' and numpy's own loaders for flat files.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from converters.convert import convert
from inspector.errors import CkitError, UnsafeArtifact, UnsupportedFeature
from tests.conftest import FIXTURES, ROOT, fixture_path

pytestmark = pytest.mark.tf

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# fixture directory -> the tensor bundle TensorFlow's reader opens for it
SOURCES = {
    "module_ckpt": "module_ckpt/ckpt-1",
    "manager": "manager/ckpt-2",
    "tf1_saver": "tf1_saver/model.ckpt-2",
    "tf1_saved_model": "tf1_saved_model/variables/variables",
    "module_saved_model": "module_saved_model/variables/variables",
    "foreign_posix": "foreign_posix/ckpt-1",
    "foreign_windows": "foreign_windows/ckpt-1",
    "empty_basename": "empty_basename/",
}


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def _source_tensors(tf, name: str) -> dict[str, np.ndarray]:
    """Every variable of a fixture as TensorFlow's own checkpoint reader returns it, by key."""
    # NewCheckpointReader opens a prefix as given (load_checkpoint would take "dir/" for a directory).
    reader = tf.compat.v1.train.NewCheckpointReader(str(FIXTURES / "nonkeras") + "/" + SOURCES[name])
    return {
        key: np.asarray(reader.get_tensor(key))
        for key in reader.get_variable_to_shape_map()
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH"
    }


def _load_flat(path):
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    from safetensors.numpy import load_file

    return load_file(str(path))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("target", ["safetensors", "npz"])
@pytest.mark.parametrize("name", list(SOURCES))
def test_every_tensor_byte_identical_in_flat_targets(tf, tmp_path, name, target):
    source = _source_tensors(tf, name)
    out = tmp_path / f"keys.{target}"
    result = convert(fixture_path("nonkeras", name), out, names="keys")
    assert result.verified and result.tensors == len(source)
    written = _load_flat(out)
    assert set(written) == {key.removesuffix(SUFFIX) for key in source}
    for key, value in source.items():
        assert _same(written[key.removesuffix(SUFFIX)], value), key
    # Nothing here is placed in a Keras layer, so the Keras scheme names every tensor by its path too.
    keras = tmp_path / f"keras.{target}"
    convert(fixture_path("nonkeras", name), keras)
    assert set(_load_flat(keras)) == set(written)


def test_safetensors_metadata_records_names_and_roles(tmp_path):
    from safetensors import safe_open

    out = tmp_path / "w.safetensors"
    convert(fixture_path("nonkeras", "module_ckpt"), out, names="keys")
    with safe_open(str(out), "np") as f:
        metadata = f.metadata()
    assert metadata["ckit.names"] == "keys" and metadata["source_format"] == "tf-checkpoint"
    roles = json.loads(metadata["ckit.roles"])
    assert roles["save_counter"] == "counter" and roles["critic_optimizer/_variables/1"] == "optimizer"
    # ... and ckit reads them back, so the file converts onward with its roles.
    from inspector.registry import read_manifest

    manifest = read_manifest(out)
    assert manifest.totals["by_role"] == {"counter": 1, "optimizer": 20, "weight": 11}
    again = tmp_path / "again.npz"
    convert(out, again, weights_only=True)
    assert sorted(_load_flat(again)) == sorted(k for k, r in _roles(manifest).items() if r == "weight")


def _roles(manifest):
    return {t.key: t.role for t in manifest.tensors}


def test_weights_only_leaves_optimizer_and_counters_out(tmp_path):
    out = tmp_path / "w.safetensors"
    result = convert(fixture_path("nonkeras", "tf1_saver"), out, weights_only=True)
    assert sorted(_load_flat(out)) == ["net/hidden/bias", "net/hidden/kernel", "net/logits/bias", "net/logits/kernel"]
    assert any("10 optimizer tensor(s) left out as asked" in n for n in result.notes)
    assert any("1 counter tensor(s) left out" in n for n in result.notes)


def test_keras3_optimizer_names_carry_one_optimizer_prefix(tmp_path):
    out = tmp_path / "w.safetensors"
    convert(fixture_path("seed", "keras3", "model.keras"), out)
    names = list(_load_flat(out))
    assert any(n.startswith("optimizer/vars/") for n in names)
    assert not any(n.startswith("optimizer/optimizer/") for n in names)


def test_keras_source_keeps_keras_names_and_layer_record(tf, tmp_path):
    from safetensors import safe_open

    out = tmp_path / "w.safetensors"
    convert(fixture_path("seed", "tf_keras", "ckpt", "weights"), out)
    with safe_open(str(out), "np") as f:
        keys, metadata = set(f.keys()), f.metadata()
    layers = json.loads(metadata["ckit.layers"])
    assert [names for _, names in layers] == [["dense/kernel", "dense/bias"], ["dense_1/kernel", "dense_1/bias"]]
    assert {"dense/kernel", "dense_1/bias", "optimizer/iteration"} <= keys


# --- tf-checkpoint output restores with TensorFlow's own code ----------------------------------------


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "fixtures" / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _restored(tf, prefix: str, build: bool = True) -> dict[str, np.ndarray]:
    """The two-actor objects restored from `prefix` with the user's own tf.train.Checkpoint code."""
    import tf_keras

    objects = _fixture_module().nonkeras_trackables(tf, tf_keras.optimizers)
    status = tf.train.Checkpoint(**objects).restore(prefix)
    if build:  # optimizer slots are created lazily; restoration into them is deferred until then
        for net in ("actor", "critic"):
            objects[f"{net}_optimizer"].build(objects[net].trainable_variables)
        status.assert_consumed()
    values = {}
    for name in ("actor", "critic"):
        values.update({f"{name}:{v.name}:{i}": v.numpy() for i, v in enumerate(objects[name].variables)})
        values.update({f"{name}_optimizer:{i}": v.numpy() for i, v in enumerate(objects[f"{name}_optimizer"].variables)})
    values["step"] = objects["step"].numpy()
    return values


@pytest.mark.parametrize(
    "name, options",
    [("module_ckpt", {}), ("manager", {"max_shard_size": 1500})],
    ids=["module_ckpt", "manager-resharded"],
)
def test_checkpoint_output_restores_with_the_same_code(tf, tmp_path, name, options):
    out = tmp_path / "out" / "ckpt"
    result = convert(fixture_path("nonkeras", name), out, **options)
    assert result.format == "tf-checkpoint" and result.verified
    if options:
        assert len(list(out.parent.glob("ckpt.data-*"))) > 1  # really re-sharded
    source = _restored(tf, str(FIXTURES / "nonkeras" / SOURCES[name]))
    converted = _restored(tf, str(out))
    assert source.keys() == converted.keys()
    assert int(source["step"]) > 0
    for key in source:
        assert _same(source[key], converted[key]), key
    # The layout is the source's: the same keys, nothing rewritten into layer_with_weights-N.
    assert sorted(tf.train.list_variables(str(out))) == sorted(
        tf.train.list_variables(str(FIXTURES / "nonkeras" / SOURCES[name]))
    )


def test_weights_only_checkpoint_restores_the_modules(tf, tmp_path):
    out = tmp_path / "ckpt"
    convert(fixture_path("nonkeras", "module_ckpt"), out, weights_only=True)
    keys = [k for k, _ in tf.train.list_variables(str(out))]
    assert not any("optimizer" in k or k.startswith("save_counter") for k in keys)
    source = _restored(tf, str(FIXTURES / "nonkeras" / SOURCES["module_ckpt"]))
    converted = _restored(tf, str(out), build=False)
    for key in source:
        if key.startswith(("actor:", "critic:")) or key == "step":
            assert _same(source[key], converted[key]), key


def test_map_renames_checkpoint_objects_and_the_graph_follows(tf, tmp_path):
    import tf_keras

    name_map = tmp_path / "map.yaml"
    name_map.write_text('rename:\n  "^actor/": "policy/"\nexclude: ["optimizer"]\n')
    out = tmp_path / "ckpt"
    result = convert(fixture_path("nonkeras", "module_ckpt"), out, name_map=str(name_map))
    keys = {k for k, _ in tf.train.list_variables(str(out))}
    assert "policy/head/w" + SUFFIX in keys and not any(k.startswith("actor/") for k in keys)
    assert any("6 tensor(s) renamed, 20 excluded" in n for n in result.notes)
    assert any("the object graph follows the map (1 object name(s) changed)" in n for n in result.notes)
    # The renamed object restores under its new name with TensorFlow's own code.
    objects = _fixture_module().nonkeras_trackables(tf, tf_keras.optimizers)
    tf.train.Checkpoint(policy=objects["actor"], critic=objects["critic"], step=objects["step"]).restore(
        str(out)
    ).assert_consumed()
    source = _restored(tf, str(FIXTURES / "nonkeras" / SOURCES["module_ckpt"]))
    mine = {f"actor:{v.name}:{i}": v.numpy() for i, v in enumerate(objects["actor"].variables)}
    assert mine.keys() <= source.keys() and all(_same(source[k], v) for k, v in mine.items())


def test_map_that_breaks_paths_keeps_object_names(tf, tmp_path):
    name_map = tmp_path / "map.json"
    name_map.write_text(json.dumps({"rename": {"^actor/head/w$": "actor_head_w"}}))
    out = tmp_path / "ckpt"
    result = convert(fixture_path("nonkeras", "module_ckpt"), out, name_map=str(name_map))
    assert any("objects keep their names in the object graph" in n for n in result.notes)
    assert "actor_head_w" + SUFFIX in {k for k, _ in tf.train.list_variables(str(out))}
    source = _restored(tf, str(FIXTURES / "nonkeras" / SOURCES["module_ckpt"]))
    converted = _restored(tf, str(out))  # the source's own code, keys found through the graph
    assert all(_same(source[k], converted[k]) for k in source)


@pytest.mark.parametrize("name", ["tf1_saver", "empty_basename", "tf1_saved_model"])
def test_tf1_checkpoint_output_restores_with_a_saver(tf, tmp_path, name):
    out = tmp_path / "model.ckpt"
    convert(fixture_path("nonkeras", name), out, "tf-checkpoint")
    source = _source_tensors(tf, name)
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        variables = {key: v1.get_variable(key, shape=value.shape, dtype=tf.as_dtype(value.dtype)) for key, value in source.items()}
        saver = v1.train.Saver(variables)
        with v1.Session(graph=graph) as sess:
            saver.restore(sess, str(out))
            for key, variable in variables.items():
                assert _same(sess.run(variable), source[key]), key


def test_module_saved_model_to_checkpoint_restores_into_its_modules(tf, tmp_path):
    import tf_keras

    out = tmp_path / "ckpt"
    result = convert(fixture_path("nonkeras", "module_saved_model"), out)
    assert result.format == "tf-checkpoint"
    loaded = tf.saved_model.load(str(FIXTURES / "nonkeras" / "module_saved_model"))
    actor = _fixture_module().nonkeras_trackables(tf, tf_keras.optimizers)["actor"]
    scale = tf.Variable(0.0)
    tf.train.Checkpoint(encoder=actor, scale=scale).restore(str(out)).assert_nontrivial_match()
    assert _same(scale.numpy(), loaded.scale.numpy())
    pairs = [(actor.head, loaded.encoder.head)] + list(zip(actor.blocks, loaded.encoder.blocks))
    for mine, theirs in pairs:
        assert _same(mine.w.numpy(), theirs.w.numpy()) and _same(mine.b.numpy(), theirs.b.numpy())
    features = np.ones((2, 4), np.float32)
    assert np.allclose(loaded.signatures["serving_default"](features=features)["scores"], actor(features) * scale)


def test_layout_keras_is_asked_for_and_noted(tmp_path):
    out = tmp_path / "w"
    result = convert(fixture_path("seed", "tf_keras", "ckpt", "weights"), out, layout_mode="keras")
    assert any("layout changed as asked (--layout keras)" in n for n in result.notes)
    plain = convert(fixture_path("seed", "tf_keras", "ckpt", "weights"), tmp_path / "k" / "w")
    assert not any("layout" in n for n in plain.notes)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"name_map": "MAP", "to": "h5-weights"}, "--map was given, but h5-weights output"),
        ({"names": "keys", "to": "keras3-weights"}, "--names keys was given"),
        ({"layout_mode": "keep", "to": "safetensors"}, "--layout keep was given, but the target is safetensors"),
    ],
)
def test_options_only_flat_conversions_honour_are_refused_elsewhere(tmp_path, options, message):
    if options.get("name_map") == "MAP":
        (tmp_path / "m.json").write_text("{}")
        options = {**options, "name_map": str(tmp_path / "m.json")}
    to = options.pop("to")
    suffix = {"h5-weights": ".h5", "keras3-weights": ".weights.h5", "safetensors": ".safetensors"}[to]
    with pytest.raises(UnsupportedFeature, match=message):
        convert(fixture_path("seed", "tf_keras", "weights.h5"), tmp_path / f"out{suffix}", to, **options)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["m.json"] if "name_map" in options else [])


def test_npz_refuses_strings_and_never_unpickles(tmp_path):
    with pytest.raises(UnsupportedFeature, match="which an npz file can hold only by pickling"):
        convert(fixture_path("edge", "dtypes", "ckpt-1"), tmp_path / "d.npz")
    assert list(tmp_path.iterdir()) == []
    evil = tmp_path / "evil.npz"
    np.savez(evil, ok=np.zeros(2), bad=np.array([{"a": 1}], dtype=object))
    from inspector.registry import open_artifact

    with pytest.raises(UnsafeArtifact, match="ckit never unpickles"):
        open_artifact(evil)


def test_npz_output_reads_back_and_converts_onward(tmp_path):
    npz = tmp_path / "w.npz"
    convert(fixture_path("nonkeras", "tf1_saver"), npz)
    st = tmp_path / "w.safetensors"
    result = convert(npz, st)
    assert result.verified and result.tensors == 15
    for key, value in _load_flat(npz).items():
        assert _same(_load_flat(st)[key], value)


def test_map_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rename: [1, 2]\n")
    with pytest.raises(CkitError, match="'rename' is a list") as info:
        convert(fixture_path("nonkeras", "tf1_saver"), tmp_path / "x.npz", name_map=str(bad))
    assert "\n" not in str(info.value)
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps({"rename": {"/(kernel|bias)$": ""}}))
    with pytest.raises(CkitError, match="turns both"):
        convert(fixture_path("nonkeras", "tf1_saver"), tmp_path / "x.npz", name_map=str(clash))


def test_flat_file_of_path_names_converts_back_to_a_name_based_checkpoint(tf, tmp_path):
    st = tmp_path / "w.safetensors"
    convert(fixture_path("nonkeras", "tf1_saver"), st, names="keys")
    out = tmp_path / "model.ckpt"
    result = convert(st, out, "tf-checkpoint")
    assert any("name-based (TF1) checkpoint" in n for n in result.notes)
    source = _source_tensors(tf, "tf1_saver")
    reader = tf.compat.v1.train.NewCheckpointReader(str(out))
    assert sorted(reader.get_variable_to_shape_map()) == sorted(source)
    assert all(_same(np.asarray(reader.get_tensor(k)), v) for k, v in source.items())


def test_keras_model_in_a_checkpoint_keeps_the_checkpoint_layout(tf, tmp_path):
    """tf.train.Checkpoint(model=, optimizer=) of a Keras 3 model: restored by that same code, not load_weights."""
    import keras

    from converters import zoo

    source = fixture_path("edge", "keras3_tf_checkpoint", "ckpt-1")
    out = tmp_path / "ckpt"
    result = convert(source, out)
    assert not any("layout" in n for n in result.notes)

    def restored(prefix):
        model = zoo.seed_model(keras)  # compiled with the tutorial's RMSprop, as the fixture was
        model.optimizer.build(model.trainable_variables)
        tf.train.Checkpoint(model=model, optimizer=model.optimizer).restore(str(prefix)).assert_existing_objects_matched()
        return [v.numpy() for v in model.weights] + [v.numpy() for v in model.optimizer.variables]

    mine, theirs = restored(out), restored(source)
    assert len(mine) == len(theirs) and all(_same(a, b) for a, b in zip(mine, theirs))
    assert any(np.any(v != 0) for v in theirs[len(theirs) // 2 :])  # trained: optimizer state is not all zero


def test_cli_options_reach_the_conversion(tmp_path, capsys):
    from converters.cli import main

    name_map = tmp_path / "m.yml"
    name_map.write_text("rename:\n  '^net/': ''\n")
    out = tmp_path / "w.npz"
    args = ["convert", str(FIXTURES / "nonkeras" / "tf1_saver"), str(out), "--names", "keys", "--weights-only",
            "--map", str(name_map)]
    assert main(args) == 0
    assert sorted(_load_flat(out)) == ["hidden/bias", "hidden/kernel", "logits/bias", "logits/kernel"]
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote npz {out}: 4 tensors")
    assert "note: --map" in captured.err
    assert main(["convert", str(FIXTURES / "nonkeras" / "tf1_saver"), str(tmp_path / "c"), "--layout", "odd"]) == 2


@pytest.mark.parametrize("name", ["module_ckpt", "edge_keras3"])
def test_safetensors_with_path_names_converts_back_into_the_same_checkpoint(tf, tmp_path, name):
    source = FIXTURES / "edge" / "keras3_tf_checkpoint" / "ckpt-1" if name == "edge_keras3" else (
        FIXTURES / "nonkeras" / SOURCES[name]
    )
    st = tmp_path / "w.safetensors"
    convert(source, st, names="keys")
    back = tmp_path / "back" / "ckpt"
    result = convert(st, back)
    assert any("object graph recorded in the safetensors file" in n for n in result.notes)
    assert sorted(tf.train.list_variables(str(back))) == sorted(tf.train.list_variables(str(source)))
    if name == "module_ckpt":  # the source's own tf.train.Checkpoint code restores the round trip
        want, got = _restored(tf, str(source)), _restored(tf, str(back))
        assert all(_same(want[k], got[k]) for k in want)
    reader_a = tf.compat.v1.train.NewCheckpointReader(str(source))
    reader_b = tf.compat.v1.train.NewCheckpointReader(str(back))
    for key in reader_a.get_variable_to_shape_map():
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert _same(np.asarray(reader_a.get_tensor(key)), np.asarray(reader_b.get_tensor(key))), key


@pytest.mark.parametrize("name", ["foreign_posix", "foreign_windows"])
def test_foreign_state_file_checkpoint_restores(tf, tmp_path, name):
    out = tmp_path / "ckpt"
    result = convert(fixture_path("nonkeras", name), out)
    assert any("does not exist here; read the checkpoint of that name beside it" in n for n in result.notes)
    w, b = tf.Variable(np.zeros((2, 3), np.float32)), tf.Variable(np.zeros(3, np.float32))
    tf.train.Checkpoint(w=w, b=b).restore(str(out)).assert_nontrivial_match()  # written with .write(): no save_counter
    assert _same(w.numpy(), np.arange(6, dtype=np.float32).reshape(2, 3)) and _same(b.numpy(), np.ones(3, np.float32))
