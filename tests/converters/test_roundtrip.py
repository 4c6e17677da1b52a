"""Every source format to every target format, proved by the frameworks' own loaders.

For each (model x source x target) the source is loaded with its own
framework (the reference) and the converted artifact with the target's
loader, as a user would.  Every weight must be bit-identical and the logits
must match on the reference inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from converters.convert import convert
from inspector import open_artifact
from inspector.errors import MappingError
from tests.conftest import FIXTURES
from tests.converters.loaders import load

# (fixture path under fixtures/MODEL, source format, carries a model config)
SOURCES = [
    ("tf_keras/weights.h5", "h5-weights", False),
    ("tf_keras/ckpt/weights", "tf-checkpoint", False),
    ("tf_keras/model.h5", "h5-model", True),
    ("tf_keras/saved_model", "saved-model", True),
    ("keras3/model.weights.h5", "keras3-weights", False),
    ("keras3/model.keras", "keras3-model", True),
    ("keras3/legacy.h5", "h5-model", True),
]
TARGETS = {
    "h5-weights": "out.h5",
    "h5-model": "out.h5",
    "tf-checkpoint": "out",
    "saved-model": "out_savedmodel",
    "keras3-weights": "out.weights.h5",
    "keras3-model": "out.keras",
}
NEEDS_CONFIG = {"h5-model", "saved-model", "keras3-model"}
MODELS = ["seed", "cnn", "lstm"]
IDS = [s[0] for s in SOURCES]


def _source_loader(source: str, source_format: str) -> str:
    if source.startswith("keras3/"):
        return "keras3-model" if source_format != "keras3-weights" else "keras3-weights"
    return source_format


@pytest.fixture(scope="module")
def reference():
    """The source artifact restored by its own framework, once per (model, source)."""
    cache: dict = {}

    def get(model_name: str, source: str, source_format: str):
        key = (model_name, source)
        if key not in cache:
            inputs = np.load(FIXTURES / model_name / "reference.npz")["inputs"]
            path = FIXTURES / model_name / source
            loader_target = _source_loader(source, source_format)
            if source == "keras3/legacy.h5":
                loader_target = "h5-model"
            cache[key] = (inputs, load(loader_target, path, model_name, inputs))
        return cache[key]

    return get


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("source,source_format,has_config", SOURCES, ids=IDS)
@pytest.mark.parametrize("model_name", MODELS)
def test_convert_and_reload(tmp_path, reference, model_name, source, source_format, has_config, target):
    src = FIXTURES / model_name / source
    dst = tmp_path / TARGETS[target]
    # A weights-only source has no architecture: the user names the training model, as the error says.
    model = f"converters.zoo:{model_name}_model" if target in NEEDS_CONFIG and not has_config else None
    result = convert(src, dst, to=target, model=model)
    assert result.format == target and result.verified

    inputs, expected = reference(model_name, source, source_format)
    got = load(target, dst, model_name, inputs)
    if got.layer_weights is not None:
        assert len(got.layer_weights) == len(expected.layer_weights)
        for got_layer, want_layer in zip(got.layer_weights, expected.layer_weights):
            assert [w.shape for w in got_layer] == [w.shape for w in want_layer]
            for g, w in zip(got_layer, want_layer):
                assert g.dtype == w.dtype and g.tobytes() == w.tobytes()
    # Same weights on the same CPU; tf_keras and Keras 3 kernels agree to float32 rounding.
    np.testing.assert_allclose(got.logits, expected.logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("target", sorted(NEEDS_CONFIG))
def test_weights_only_source_needs_model_for_full_model_targets(tmp_path, target):
    dst = tmp_path / TARGETS[target]
    with pytest.raises(MappingError, match="pass --model"):
        convert(FIXTURES / "seed/tf_keras/weights.h5", dst, to=target)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source,source_format,has_config", SOURCES, ids=IDS)
@pytest.mark.parametrize("model_name", MODELS)
def test_safetensors_is_bit_identical(tmp_path, model_name, source, source_format, has_config):
    from safetensors.numpy import load_file

    src = FIXTURES / model_name / source
    dst = tmp_path / "out.safetensors"
    convert(src, dst)
    loaded = load_file(str(dst))
    with open_artifact(src) as reader:
        weights = reader.manifest.model_weights()
        assert len(weights) > 0
        for tensor in weights:
            assert tensor.name in loaded, f"{tensor.name} missing from safetensors output"
            expected = reader.read_tensor(tensor.key)
            assert loaded[tensor.name].dtype == expected.dtype
            assert loaded[tensor.name].tobytes() == expected.tobytes()


@pytest.mark.parametrize("target", ["h5-weights", "tf-checkpoint", "keras3-weights"])
@pytest.mark.parametrize("model_name", MODELS)
def test_safetensors_written_by_ckit_converts_onward(tmp_path, reference, model_name, target):
    # ckit records layer order in the safetensors metadata, so the file is a full source too.
    middle = tmp_path / "mid.safetensors"
    convert(FIXTURES / model_name / "tf_keras/ckpt/weights", middle)
    dst = tmp_path / TARGETS[target]
    convert(middle, dst, to=target)
    inputs, expected = reference(model_name, "tf_keras/ckpt/weights", "tf-checkpoint")
    got = load(target, dst, model_name, inputs)
    np.testing.assert_allclose(got.logits, expected.logits, atol=1e-5, rtol=1e-5)
