"""The Keras 3 readers (keras3-weights, keras3-model) against h5py, zipfile and Keras itself."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import pytest

from inspector import keras_names as kn
from inspector.errors import CkitError, CorruptArtifact, UnsafeArtifact, UnsupportedFeature
from inspector.formats.hdf5_keras3 import KERAS3_WEIGHTS
from inspector.formats.keras_archive import KERAS3_MODEL
from inspector.registry import detect, open_artifact
from tests.inspector.keras_oracle import run_oracle

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
MODELS = ("seed", "cnn", "lstm")


def fixture(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"fixture {path} is missing: run python fixtures/make_fixtures.py")
    return path


def h5py_datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}

    def visit(name: str, obj: object) -> None:  # returning a value would stop visititems
        if isinstance(obj, h5py.Dataset):
            found["/" + name] = obj

    f.visititems(visit)
    return found


def oracle_files(path: Path) -> list[h5py.File]:
    """The HDF5 files behind an artifact, opened the plain way."""
    if path.suffix == ".keras":
        return [h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")]
    if path.suffix == ".json":
        weight_map = json.loads(path.read_text())["weight_map"]
        names = sorted({n for files in weight_map.values() for n in ([files] if isinstance(files, str) else files)})
        return [h5py.File(path.with_name(n), "r") for n in names]
    return [h5py.File(path, "r")]


CASES = [
    *[(f"{m}/keras3/model.weights.h5", "keras3-weights") for m in MODELS],
    ("seed/keras3/sharded/model.weights.json", "keras3-weights"),
    *[(f"{m}/keras3/model.keras", "keras3-model") for m in MODELS],
    *[(f"{m}/tf_keras/model.keras", "keras3-model") for m in MODELS],
]


@pytest.mark.parametrize("rel,fmt", CASES)
def test_every_dataset_matches_h5py(rel: str, fmt: str) -> None:
    path = fixture(*rel.split("/"))
    assert detect(path).name == fmt
    expected: dict[str, h5py.Dataset] = {}
    for f in oracle_files(path):
        for key, ds in h5py_datasets(f).items():
            assert key not in expected, f"{key} in two shards"
            expected[key] = ds
    with open_artifact(path) as reader:
        manifest = reader.manifest
        assert sorted(t.key for t in manifest) == sorted(expected)
        for info in manifest:
            oracle = np.asarray(expected[info.key][()])
            value = reader.read_tensor(info.key)
            assert value.dtype == oracle.dtype and value.shape == oracle.shape == info.shape, info.key
            assert value.tobytes() == oracle.tobytes(), info.key
            assert info.nbytes == oracle.nbytes
        for layer, weights in manifest.layer_weights():
            assert [t.index for t in weights] == list(range(len(weights))), layer
        opt = manifest.by_role("optimizer")
        assert sorted(t.index for t in opt) == list(range(len(opt)))


@pytest.mark.parametrize("rel", ["cnn/keras3/model.keras", "seed/keras3/sharded/model.weights.json",
                                 "lstm/tf_keras/model.keras"])
def test_manifest_reads_no_dataset_bytes(rel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("manifest building read dataset bytes")

    for method in ("__getitem__", "read_direct", "__array__"):
        monkeypatch.setattr(h5py.Dataset, method, refuse)
    with open_artifact(fixture(*rel.split("/"))) as reader:
        assert len(reader.manifest) > 0


def test_sharded_index_lists_its_shards() -> None:
    path = fixture("seed", "keras3", "sharded", "model.weights.json")
    weight_map = json.loads(path.read_text())["weight_map"]
    assert any(isinstance(v, list) and len(v) > 1 for v in weight_map.values()), "fixture should span shards"
    with open_artifact(path) as reader:
        m = reader.manifest
        names = {Path(s.path).name for s in m.shards}
        assert names == {n for v in weight_map.values() for n in v}
        assert all(s.present and s.bytes > 0 for s in m.shards)
        # the same weights as the unsharded save of the same model
        with open_artifact(fixture("seed", "keras3", "model.weights.h5")) as single:
            assert [(t.key, t.name, t.layer, t.index) for t in m] == [
                (t.key, t.name, t.layer, t.index) for t in single.manifest]
            for t in m:
                assert np.array_equal(reader.read_tensor(t.key), single.read_tensor(t.key))


@pytest.fixture(scope="module")
def keras3_oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list, dict]]:
    paths = [fixture(m, "keras3", "model.keras") for m in MODELS]
    return run_oracle("keras", "path", paths, tmp_path_factory.mktemp("keras3_archive_oracle"))


@pytest.mark.parametrize("model", MODELS)
def test_keras_archive_matches_keras3(model: str, keras3_oracle) -> None:
    path = fixture(model, "keras3", "model.keras")
    layers, values = keras3_oracle[str(path)]
    with open_artifact(path) as reader:
        m = reader.manifest
        assert m.metadata["layer_order"] == "model"
        assert m.producer["framework"] == "keras3" and m.producer["keras_version"].startswith("3.")
        assert list(m.layers) == [name for name, _ in layers]
        for i, (layer, weights) in enumerate(m.layer_weights()):
            assert len(weights) == len(layers[i][1]), layer
            for j, (t, var_path) in enumerate(zip(weights, layers[i][1])):
                assert var_path.endswith(t.name), (var_path, t.name)
                assert np.array_equal(reader.read_tensor(t.key), values[f"{i}_{j}"]), t.key


def _named(path: Path) -> list[tuple[str, str | None, int | None, bytes]]:
    with open_artifact(path) as reader:
        return [(t.name, t.layer, t.index, reader.read_tensor(t.key).tobytes())
                for _, ws in reader.manifest.layer_weights() for t in ws]


@pytest.mark.parametrize("model", MODELS)
def test_formats_of_one_model_agree(model: str) -> None:
    """One Keras 3 model saved three ways, one tf_keras model saved three ways: same names, order, bytes."""
    k3 = _named(fixture(model, "keras3", "model.keras"))
    assert _named(fixture(model, "keras3", "legacy.h5")) == k3
    assert _named(fixture(model, "keras3", "model.weights.h5")) == k3  # names from the `name` attrs
    tk = _named(fixture(model, "tf_keras", "model.keras"))
    assert _named(fixture(model, "tf_keras", "model.h5")) == tk
    assert _named(fixture(model, "tf_keras", "weights.h5")) == tk


def test_optimizer_and_metrics_roles() -> None:
    with open_artifact(fixture("seed", "keras3", "model.keras")) as reader:
        opt = sorted(reader.manifest.by_role("optimizer"), key=lambda t: t.index)
        assert [t.name for t in opt[:3]] == ["optimizer/iteration", "optimizer/learning_rate", "optimizer/vars/2"]
    with open_artifact(fixture("seed", "tf_keras", "model.keras")) as reader:
        m = reader.manifest
        assert m.producer["framework"] == "tf_keras"
        assert {t.key.split("/")[1] for t in m.by_role("other")} == {"metrics"}


def test_bare_weights_guess_layer_order_and_say_so() -> None:
    with open_artifact(fixture("cnn", "keras3", "model.weights.h5")) as reader:
        m = reader.manifest
    assert m.metadata["layer_order"] == "guessed"
    assert any("guessed" in n for n in m.notes)
    assert m.layers == ("conv2d", "batch_normalization", "conv2d_1", "batch_normalization_1", "head")


def test_weights_without_name_attributes_fall_back_to_group_names(tmp_path: Path) -> None:
    path = tmp_path / "old.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.ones((2, 3), "float32"))
        f.create_dataset("layers/dense/vars/1", data=np.ones(3, "float32"))
        f.create_dataset("layers/my_block/vars/0", data=np.ones(4, "float32"))
        f.create_dataset("layers/lstm/cell/vars/0", data=np.ones((3, 8), "float32"))
        f.create_dataset("layers/lstm/cell/vars/1", data=np.ones((2, 8), "float32"))
        f.create_dataset("layers/lstm/cell/vars/2", data=np.ones(8, "float32"))
    with KERAS3_WEIGHTS.open(path) as reader:
        names = {t.key: t.name for t in reader.manifest}
    assert names["/layers/dense/vars/1"] == "dense/bias"
    assert names["/layers/my_block/vars/0"] == "my_block/vars/0"
    assert names["/layers/lstm/cell/vars/1"] == "lstm/lstm_cell/recurrent_kernel"


def test_bfloat16_marker(tmp_path: Path) -> None:
    path = tmp_path / "bf.weights.h5"
    data = np.arange(6, dtype=np.float32).reshape(2, 3).astype(ml_dtypes.bfloat16)
    with h5py.File(path, "w") as f:  # as Keras' H5IOStore writes bfloat16: opaque bytes + dtype attr
        ds = f.create_dataset("layers/dense/vars/0", data=data)
        ds.attrs["dtype"] = "bfloat16"
    with KERAS3_WEIGHTS.open(path) as reader:
        info = reader.manifest["/layers/dense/vars/0"]
        assert info.dtype == "bfloat16" and info.nbytes == 12
        value = reader.read_tensor(info.key)
    assert value.dtype == ml_dtypes.bfloat16 and np.array_equal(value.astype(np.float32), data.astype(np.float32))


def test_keras_names_helpers() -> None:
    assert kn.to_snake_case("Conv2D") == "conv2d" and kn.to_snake_case("RMSprop") == "rm_sprop"
    assert kn.unique_group_names(["Dense", "Dropout", "Dense", "Dense"]) == ["dense", "dropout", "dense_1", "dense_2"]
    assert kn.class_for_group("batch_normalization_3") == "BatchNormalization"
    assert kn.variable_names("Dense", {"use_bias": False}) == ("kernel",)
    assert kn.variable_names("BatchNormalization", {"scale": False}) == ("beta", "moving_mean", "moving_variance")
    assert kn.variable_names("Unknown") is None
    assert kn.default_cell_name("GRU") == "gru_cell"


# --------------------------------------------------------------------------- archive variants and bad input


def _rezip(src: Path, dst: Path, *, compression: int = zipfile.ZIP_STORED, drop: tuple[str, ...] = (),
           extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            if info.filename not in drop:
                zout.writestr(info.filename, zin.read(info.filename))
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def test_deflated_weights_member_is_read_in_memory(tmp_path: Path) -> None:
    src = fixture("cnn", "keras3", "model.keras")
    path = _rezip(src, tmp_path / "deflated.keras", compression=zipfile.ZIP_DEFLATED)
    assert zipfile.ZipFile(path).getinfo("model.weights.h5").compress_type == zipfile.ZIP_DEFLATED
    assert _named(path) == _named(src)


def _error(path: Path, fmt) -> CkitError:
    with pytest.raises(CkitError) as info:
        fmt.open(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return info.value


def test_archive_without_weights(tmp_path: Path) -> None:
    path = _rezip(fixture("seed", "keras3", "model.keras"), tmp_path / "m.keras", drop=("model.weights.h5",))
    assert not KERAS3_MODEL.sniff(path)
    err = _error(path, KERAS3_MODEL)
    assert isinstance(err, CorruptArtifact)
    assert "the archive has no model.weights.h5 (members: metadata.json, config.json)" in str(err)
    with pytest.raises(CorruptArtifact, match="no model.weights.h5"):
        open_artifact(path)  # found by suffix, refused by content


def test_npz_weights_are_never_unpickled(tmp_path: Path) -> None:
    npz = io.BytesIO()
    np.savez(npz, a=np.array([{"x": 1}], dtype=object))
    path = _rezip(fixture("seed", "keras3", "model.keras"), tmp_path / "m.keras", drop=("model.weights.h5",),
                  extra={"model.weights.npz": npz.getvalue()})
    assert KERAS3_MODEL.sniff(path)
    err = _error(path, KERAS3_MODEL)
    assert isinstance(err, UnsupportedFeature)
    assert "model.weights.npz, whose values are pickled Python objects; ckit never unpickles" in str(err)


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil", "assets/../../evil"])
def test_zip_slip_member_is_refused(tmp_path: Path, member: str) -> None:
    path = _rezip(fixture("seed", "keras3", "model.keras"), tmp_path / "m.keras", extra={member: b"x"})
    err = _error(path, KERAS3_MODEL)
    assert isinstance(err, UnsafeArtifact)
    assert f"archive member '{member}' points outside the archive" in str(err) and "zip-slip" in str(err)


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"\0" * (8 << 20))
    err = _error(path, KERAS3_MODEL)
    assert isinstance(err, UnsafeArtifact)
    assert "archive member 'model.weights.h5' declares 8388608 bytes" in str(err) and "decompression bomb" in str(err)


@pytest.mark.parametrize("content,message", [
    (b"", "the file is empty; expected a Keras .keras archive"),
    (b"not a zip at all" * 10, "not a readable zip archive"),
])
def test_not_an_archive(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "m.keras"
    path.write_bytes(content)
    assert not KERAS3_MODEL.sniff(path)
    assert message in str(_error(path, KERAS3_MODEL))


def test_weights_member_that_is_not_hdf5(tmp_path: Path) -> None:
    path = _rezip(fixture("seed", "keras3", "model.keras"), tmp_path / "m.keras", drop=("model.weights.h5",),
                  extra={"model.weights.h5": b"garbage" * 100})
    err = _error(path, KERAS3_MODEL)
    assert "!model.weights.h5: no HDF5 signature found" in str(err)


def test_keras3_reader_on_keras2_file() -> None:
    path = fixture("seed", "tf_keras", "weights.h5")
    assert not KERAS3_WEIGHTS.sniff(path)
    err = _error(path, KERAS3_WEIGHTS)
    assert "a Keras 2 style .h5 (root attribute 'layer_names')" in str(err)


def test_soft_link_in_weights_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.ones(3, "float32"))
        f["layers/dense/vars/1"] = h5py.SoftLink("/layers/dense/vars/0")
    err = _error(path, KERAS3_WEIGHTS)
    assert isinstance(err, UnsafeArtifact) and "'/layers/dense/vars/1' is an HDF5 soft link" in str(err)


def _copy_sharded(tmp_path: Path) -> Path:
    src = fixture("seed", "keras3", "sharded", "model.weights.json")
    for item in src.parent.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    return tmp_path / src.name


def test_missing_shard_is_reported(tmp_path: Path) -> None:
    index = _copy_sharded(tmp_path)
    (tmp_path / "model_00001.weights.h5").unlink()
    with KERAS3_WEIGHTS.open(index) as reader:
        m = reader.manifest
    missing = [s for s in m.shards if not s.present]
    assert [Path(s.path).name for s in missing] == ["model_00001.weights.h5"]
    assert any("shard model_00001.weights.h5 named in the weight_map is missing" in n for n in m.notes)


def test_shard_path_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    index = tmp_path / "x.weights.json"
    index.write_text(json.dumps({"weight_map": {"/layers/dense/vars": ["../outside.weights.h5"]}}))
    err = _error(index, KERAS3_WEIGHTS)
    assert isinstance(err, UnsafeArtifact) and "names shard '../outside.weights.h5'" in str(err)


def test_index_without_weight_map(tmp_path: Path) -> None:
    index = tmp_path / "x.weights.json"
    index.write_text(json.dumps({"metadata": {}}))
    assert not KERAS3_WEIGHTS.sniff(index)
    assert "JSON without a 'weight_map' object" in str(_error(index, KERAS3_WEIGHTS))


def test_dataset_in_two_shards_is_corrupt(tmp_path: Path) -> None:
    index = _copy_sharded(tmp_path)
    with h5py.File(tmp_path / "model_00000.weights.h5", "r") as f:
        value = f["layers/dense/vars/0"][()]
    with h5py.File(tmp_path / "model_00001.weights.h5", "a") as f:
        f.create_dataset("layers/dense/vars/0", data=value)
    err = _error(index, KERAS3_WEIGHTS)
    assert "dataset '/layers/dense/vars/0' appears in shard model_00000.weights.h5 and in shard" in str(err)


@pytest.mark.parametrize("content", [b"", b"{not json", b"\x89HDF\r\n\x1a\n" + b"\0" * 64, b"PK\x03\x04"])
def test_sniff_never_raises(tmp_path: Path, content: bytes) -> None:
    for name in ("x.weights.h5", "x.weights.json", "x.keras"):
        path = tmp_path / name
        path.write_bytes(content)
        assert not KERAS3_WEIGHTS.sniff(path) and not KERAS3_MODEL.sniff(path)
    assert not KERAS3_WEIGHTS.sniff(tmp_path) and not KERAS3_MODEL.sniff(tmp_path / "absent.keras")
