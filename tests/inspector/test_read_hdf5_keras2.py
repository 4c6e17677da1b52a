"""The Keras 2 style HDF5 readers (h5-weights, h5-model) against h5py and tf_keras / Keras 3 themselves."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from inspector.errors import CkitError, CorruptArtifact, UnsafeArtifact
from inspector.formats import _hdf5
from inspector.formats.hdf5_keras2 import H5_MODEL, H5_WEIGHTS, canonical_weight_name
from inspector.registry import detect, get_format, open_artifact
from tests.inspector.keras_oracle import run_oracle

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


def fixture(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"fixture {path} is missing: run python fixtures/make_fixtures.py")
    return path


CASES = [
    *[(f"{m}/tf_keras/weights.h5", "h5-weights") for m in ("seed", "cnn", "lstm")],
    *[(f"{m}/tf_keras/model.h5", "h5-model") for m in ("seed", "cnn", "lstm")],
    *[(f"{m}/keras3/legacy.h5", "h5-model") for m in ("seed", "cnn", "lstm")],
    ("edge/legacy_optimizer/model.h5", "h5-model"),
    ("edge/many_layers/weights.h5", "h5-weights"),
]


def h5py_datasets(path: Path) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}

    def visit(name: str, obj: object) -> None:  # returning a value would stop visititems
        if isinstance(obj, h5py.Dataset):
            found["/" + name] = obj

    h5py.File(path, "r").visititems(visit)
    return found


@pytest.mark.parametrize("rel,fmt", CASES)
def test_every_dataset_matches_h5py(rel: str, fmt: str) -> None:
    path = fixture(*rel.split("/"))
    assert detect(path).name == fmt
    expected = h5py_datasets(path)
    with open_artifact(path) as reader:
        manifest = reader.manifest
        assert manifest.format == fmt
        assert sorted(t.key for t in manifest) == sorted(expected)
        for info in manifest:
            ds = expected[info.key]
            value = reader.read_tensor(info.key)
            oracle = ds[()]
            assert value.dtype == oracle.dtype, info.key
            assert value.shape == oracle.shape == info.shape, info.key
            assert value.tobytes() == np.asarray(oracle).tobytes(), info.key
            assert info.dtype == str(oracle.dtype)
            assert info.nbytes == oracle.nbytes
        # every layer in layer_names order, each weight once, indices 0..n-1
        for layer, weights in manifest.layer_weights():
            assert [t.index for t in weights] == list(range(len(weights))), layer


@pytest.mark.parametrize("rel,fmt", CASES[:6])
def test_manifest_reads_no_dataset_bytes(rel: str, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("manifest building read dataset bytes")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", refuse)
    monkeypatch.setattr(h5py.Dataset, "read_direct", refuse)
    monkeypatch.setattr(h5py.Dataset, "__array__", refuse)
    with get_format(fmt).open(fixture(*rel.split("/"))) as reader:
        assert len(reader.manifest) > 0


@pytest.fixture(scope="module")
def tf_keras_oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list, dict]]:
    paths = [fixture(m, "tf_keras", "model.h5") for m in ("seed", "cnn", "lstm")]
    return run_oracle("tf_keras", "name", paths, tmp_path_factory.mktemp("tf_keras_oracle"))


@pytest.fixture(scope="module")
def keras3_oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list, dict]]:
    paths = [fixture(m, "keras3", "legacy.h5") for m in ("seed", "cnn", "lstm")]
    return run_oracle("keras", "path", paths, tmp_path_factory.mktemp("keras3_oracle"))


@pytest.mark.parametrize("model", ["seed", "cnn", "lstm"])
def test_names_layers_and_order_match_tf_keras(model: str, tf_keras_oracle) -> None:
    layers, values = tf_keras_oracle[str(fixture(model, "tf_keras", "model.h5"))]
    for rel in (f"{model}/tf_keras/model.h5", f"{model}/tf_keras/weights.h5"):
        with open_artifact(fixture(*rel.split("/"))) as reader:
            manifest = reader.manifest
            assert list(manifest.layers) == [name for name, _ in layers]
            for i, (layer, weights) in enumerate(manifest.layer_weights()):
                assert layers[i][0] == layer
                assert [t.name for t in weights] == [n.removesuffix(":0") for n in layers[i][1]]
                for j, t in enumerate(weights):
                    assert np.array_equal(reader.read_tensor(t.key), values[f"{i}_{j}"]), t.key


@pytest.mark.parametrize("model", ["seed", "cnn", "lstm"])
def test_keras3_legacy_h5_matches_keras3(model: str, keras3_oracle) -> None:
    path = fixture(model, "keras3", "legacy.h5")
    layers, values = keras3_oracle[str(path)]
    with open_artifact(path) as reader:
        manifest = reader.manifest
        assert manifest.producer["framework"] == "keras3"
        assert manifest.metadata["model_config"]["class_name"] in ("Sequential", "Functional")
        assert list(manifest.layers) == [name for name, _ in layers]
        for i, (layer, weights) in enumerate(manifest.layer_weights()):
            assert len(weights) == len(layers[i][1])
            for j, (t, var_path) in enumerate(zip(weights, layers[i][1])):
                # Keras 3 paths carry the model name and nested model names in front; ours do not.
                assert var_path.endswith(t.name), (var_path, t.name)
                assert np.array_equal(reader.read_tensor(t.key), values[f"{i}_{j}"]), t.key


def test_canonical_names_for_keras3_paths() -> None:
    assert canonical_weight_name("dense/kernel:0", "dense") == "dense/kernel"
    assert canonical_weight_name("sequential_1/dense_4/kernel", "dense_4") == "dense_4/kernel"
    assert canonical_weight_name("sequential_1/lstm/lstm_cell/kernel", "lstm") == "lstm/lstm_cell/kernel"
    assert canonical_weight_name("head/dense_2/kernel", "head", {"head"}) == "dense_2/kernel"


def test_producer_and_configs() -> None:
    with open_artifact(fixture("cnn", "tf_keras", "model.h5")) as reader:
        m = reader.manifest
    assert m.producer == {"framework": "tf_keras", "keras_version": "2.21.0", "backend": "tensorflow"}
    assert m.metadata["model_config"]["config"]["name"] == "cnn"
    assert "loss" in m.metadata["training_config"]
    opt = m.by_role("optimizer")
    assert sorted(t.index for t in opt) == list(range(len(opt)))
    assert {t.name for t in opt if t.index == 0} == {"iteration"}


# --------------------------------------------------------------------------- attributes


def test_chunked_layer_names_fixture() -> None:
    path = fixture("edge", "many_layers", "weights.h5")
    with h5py.File(path, "r") as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
        names = [n.decode() if isinstance(n, bytes) else n for i in range(2) for n in f.attrs[f"layer_names{i}"]]
    with open_artifact(path) as reader:
        assert list(reader.manifest.layers) == [n for n in names if reader.manifest.layer_weights()]


def _write_keras2(path: Path, string_dtype, chunk: bool = False) -> None:
    layers = ["dense", "dense_1"]
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.21.0"
        names = np.array(layers, dtype=string_dtype)
        if chunk:
            f.attrs["layer_names0"] = names[:1]
            f.attrs["layer_names1"] = names[1:]
        else:
            f.attrs["layer_names"] = names
        for layer in layers:
            g = f.create_group(layer)
            g.attrs["weight_names"] = np.array([f"{layer}/kernel:0", f"{layer}/bias:0"], dtype=string_dtype)
            g.create_dataset(f"{layer}/kernel:0", data=np.arange(6, dtype="float32").reshape(2, 3))
            g.create_dataset(f"{layer}/bias:0", data=np.arange(3, dtype="float64"))


@pytest.mark.parametrize("string_dtype", ["S16", h5py.string_dtype("utf-8"), h5py.string_dtype("ascii")],
                         ids=["fixed", "vlen-utf8", "vlen-ascii"])
@pytest.mark.parametrize("chunk", [False, True], ids=["whole", "chunked"])
def test_fixed_and_variable_length_string_attributes(tmp_path: Path, string_dtype, chunk: bool) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, string_dtype, chunk)
    with h5py.File(path, "r") as f:
        key = "layer_names0" if chunk else "layer_names"
        assert (f.attrs[key].dtype.kind == "S") == (string_dtype == "S16")
    assert H5_WEIGHTS.sniff(path)
    with H5_WEIGHTS.open(path) as reader:
        m = reader.manifest
        assert m.layers == ("dense", "dense_1")
        assert [t.name for _, ws in m.layer_weights() for t in ws] == [
            "dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"]
        assert reader.read_tensor("/dense_1/dense_1/bias:0").dtype == np.float64


def test_read_attr_decodes_scalars_and_lists(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.attrs["fixed"] = np.bytes_(b"tensorflow")
        f.attrs["vlen"] = "tensorflow"
        f.attrs["empty"] = np.array([], dtype="float64")  # Keras' "no weights"
        assert _hdf5.read_attr(f, "fixed", "x") == "tensorflow"
        assert _hdf5.read_attr(f, "vlen", "x") == "tensorflow"
        assert _hdf5.as_list(_hdf5.read_attr(f, "empty", "x")) == []
        assert _hdf5.read_attr(f, "absent", "x") is None


def test_string_and_unlisted_datasets_are_other(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, h5py.string_dtype())
    with h5py.File(path, "a") as f:
        f.create_dataset("notes_fixed", data=np.array([b"ab", b"c"], dtype="S2"))
        f.create_dataset("notes_vlen", data=np.array(["xyz", "w"], dtype=object), dtype=h5py.string_dtype())
    with H5_WEIGHTS.open(path) as reader:
        m = reader.manifest
        assert m["/notes_fixed"].role == "other" and m["/notes_fixed"].dtype == "string"
        fixed = reader.read_tensor("/notes_fixed")
        vlen = reader.read_tensor("/notes_vlen")
        assert fixed.dtype == object and list(fixed) == [b"ab", b"c"]
        assert vlen.dtype == object and list(vlen) == [b"xyz", b"w"]
        assert any("not listed" in n for n in m.notes)
        with pytest.raises(KeyError):
            reader.read_tensor("/nope")


# --------------------------------------------------------------------------- bad input


def _open_error(path: Path, fmt=H5_WEIGHTS) -> CkitError:
    with pytest.raises(CkitError) as info:
        fmt.open(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return info.value


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    err = _open_error(path)
    assert isinstance(err, CorruptArtifact) and "the file is empty; expected a Keras .h5 weights or model file" in str(err)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    err = _open_error(path, H5_MODEL)
    assert "no HDF5 signature found (not an HDF5 file); expected a Keras .h5 weights or model file" in str(err)
    with pytest.raises(CorruptArtifact, match="no HDF5 signature"):
        open_artifact(path)  # detected by suffix, refused by content


def test_truncated_hdf5(tmp_path: Path) -> None:
    data = fixture("seed", "tf_keras", "weights.h5").read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: len(data) // 3])
    err = _open_error(path)
    assert isinstance(err, CorruptArtifact)
    assert "HDF5 signature present but the file cannot be opened" in str(err) and "truncated" in str(err)


def test_hdf5_that_is_not_keras(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f.attrs["creator"] = "someone"
        f.create_dataset("x", data=np.zeros(3))
    for fmt in (H5_WEIGHTS, H5_MODEL):
        assert not fmt.sniff(path)
        err = _open_error(path, fmt)
        assert "an HDF5 file without Keras layer attributes (root attributes ['creator'], groups ['x'])" in str(err)


def test_wrong_flavour_names_the_right_format() -> None:
    path = fixture("seed", "tf_keras", "model.h5")
    err = _open_error(path, H5_WEIGHTS)
    assert "this is a Keras h5-model file, not h5-weights" in str(err) and "--format h5-model" in str(err)
    # the fix the message suggests works
    with get_format("h5-model").open(path) as reader:
        assert reader.manifest.format == "h5-model"


def test_user_block_offset_is_found(tmp_path: Path) -> None:
    path = tmp_path / "ub.h5"
    with h5py.File(path, "w", userblock_size=1024) as f:
        f.attrs["layer_names"] = np.array([], dtype="S1")
    assert _hdf5.has_hdf5_magic(path)
    assert H5_WEIGHTS.sniff(path)


@pytest.mark.parametrize("kind", ["soft", "external"])
def test_links_are_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, "S16")
    (tmp_path / "other.h5").write_bytes(b"")
    with h5py.File(path, "a") as f:
        del f["dense/dense/kernel:0"]
        if kind == "soft":
            f["dense/dense/kernel:0"] = h5py.SoftLink("/dense_1/dense_1/kernel:0")
        else:
            f["dense/dense/kernel:0"] = h5py.ExternalLink("other.h5", "/secret")
    err = _open_error(path)
    assert isinstance(err, UnsafeArtifact)
    assert f"'/dense/dense/kernel:0' is an HDF5 {kind} link; ckit refuses links" in str(err)


def test_link_outside_weight_names_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, "S16")
    with h5py.File(path, "a") as f:
        f["extra"] = h5py.SoftLink("/dense")
    err = _open_error(path)
    assert "'/extra' is an HDF5 soft link" in str(err)


def test_external_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, "S16")
    with h5py.File(path, "a") as f:
        del f["dense/dense/bias:0"]
        f["dense"].create_dataset("dense/bias:0", shape=(3,), dtype="float64", external=[("/etc/hostname", 0, 24)])
    err = _open_error(path)
    assert isinstance(err, UnsafeArtifact)
    assert "stores its data in external file(s) '/etc/hostname'; ckit refuses external datasets" in str(err)


def test_virtual_dataset_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, "S16")
    with h5py.File(path, "a") as f:
        del f["dense/dense/bias:0"]
        layout = h5py.VirtualLayout(shape=(3,), dtype="float64")
        layout[:] = h5py.VirtualSource(".", "/dense_1/dense_1/bias:0", shape=(3,))
        f["dense"].create_virtual_dataset("dense/bias:0", layout)
    err = _open_error(path)
    assert "'/dense/dense/bias:0' is a virtual dataset; ckit refuses virtual datasets" in str(err)


def test_shape_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, "S16")
    with h5py.File(path, "a") as f:
        del f["dense/dense/bias:0"]
        f["dense"].create_dataset("dense/bias:0", shape=(1 << 40,), dtype="float32", chunks=(1 << 16,),
                                  compression="gzip")
    assert path.stat().st_size < 1 << 20
    err = _open_error(path)
    assert "declares 4398046511104 bytes" in str(err) and "refusing a potential shape/decompression bomb" in str(err)


def test_listed_layer_without_group(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, "S16")
    with h5py.File(path, "a") as f:
        del f["dense_1"]
    err = _open_error(path)
    assert "layer 'dense_1' is listed in layer_names but has no group at '/dense_1'" in str(err)


def test_listed_weight_without_dataset(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    _write_keras2(path, "S16")
    with h5py.File(path, "a") as f:
        del f["dense/dense/bias:0"]
    err = _open_error(path)
    assert "weight 'dense/bias:0' is listed in weight_names but '/dense/dense/bias:0' is missing" in str(err)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04junk", b"\x89HDF\r\n\x1a\n" + b"\0" * 100, None])
def test_sniff_never_raises(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "x.h5"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert not H5_WEIGHTS.sniff(path) and not H5_MODEL.sniff(path)
    assert not H5_WEIGHTS.sniff(tmp_path / "absent.h5")
