"""Every third-party artifact, converted to every ckit target, is exact or refused (issue 7 "Done when").

Exact: the output, reloaded with the framework's own loader (into the source model for weights
targets), predicts what the source model predicts on fixed inputs, max |diff| <= 1e-5. Refused: a
one-line ckit error that does not admit an internal error or a ckit bug. The oracle and how each
target is reloaded: tests/thirdparty/matrix.py. The whole matrix runs once per module (ckit in
this process, then one tf_keras and one Keras 3 subprocess); each case is one test.

The cases that fail on main are in XFAIL, with what goes wrong. The marks are strict: whoever fixes
one sees its test pass unexpectedly and must delete its line. `benchmarks/corpus_report.py` prints
the same matrix as a table with the pass count.
"""

from __future__ import annotations

import pytest

from tests.thirdparty import archs
from tests.thirdparty.corpus import by_name
from tests.thirdparty.matrix import TARGETS, artifact_names, run_matrix

# (artifact, target) -> what goes wrong on main. Measured with benchmarks/corpus_report.py.
XFAIL: dict[tuple[str, str], str] = {}

CASES = [
    pytest.param(name, target, id=f"{name}-{target}",
                 marks=[pytest.mark.xfail(strict=True, reason=XFAIL[(name, target)])] if (name, target) in XFAIL else [])
    for name in artifact_names()
    for target in TARGETS
]


def test_xfail_table_names_real_cases():
    names = set(artifact_names())
    assert all(name in names and target in TARGETS for name, target in XFAIL), sorted(XFAIL)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    return run_matrix(tmp_path_factory.mktemp("corpus"))


@pytest.mark.tf
@pytest.mark.slow  # the matrix: ~70 conversions + two framework subprocesses, about 70 s of CPU
@pytest.mark.parametrize("artifact, target", CASES)
def test_conversion_is_exact_or_refused(matrix, artifact, target):
    case = matrix.cases[(artifact, target)]
    assert case.status in ("exact", "refused"), f"{artifact} -> {target}: {case.status}: {case.detail}"
    if case.status == "refused":
        assert case.detail and "\n" not in case.detail.strip()


@pytest.mark.tf
def test_cudnn_file_to_flat_target_for_the_lstm_model_with_model_option(tmp_path):
    """A flat target keeps a CuDNN file as it is (the matrix checks it against the CuDNN model that
    wrote it); a user who wants the weights of the LSTM model that runs on CPU passes that model:
    `--model` lays the flat file out as the model's variables, CuDNN weights re-laid for LSTM, and
    set by name into that model it predicts what tf_keras's own loader makes of the original file."""
    import numpy as np
    import tf_keras
    from safetensors.numpy import load_file

    from converters.convert import convert

    source = by_name("textgenrnn").path
    dst = tmp_path / "out.safetensors"
    assert convert(source, dst, model="tests.thirdparty.archs:textgenrnn").verified
    arrays = load_file(str(dst))
    assert arrays["rnn_1/lstm_cell/bias"].shape == (4 * 128,)  # the file's CuDNN bias is 8 x units
    xs = archs.inputs("textgenrnn")[0]
    reference = archs.textgenrnn(tf_keras)
    reference.load_weights(str(source))
    model = archs.textgenrnn(tf_keras)
    for w in model.weights:
        w.assign(arrays.pop(w.name.split(":")[0]))
    assert not arrays, sorted(arrays)  # every tensor of the file went to a variable
    np.testing.assert_allclose(np.asarray(model(xs, training=False)), np.asarray(reference(xs, training=False)),
                               atol=1e-5)
