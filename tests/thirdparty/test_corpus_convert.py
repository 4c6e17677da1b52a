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

from tests.thirdparty.matrix import TARGETS, artifact_names, run_matrix

# (artifact, target) -> what goes wrong on main. Measured with benchmarks/corpus_report.py.
XFAIL = {
    ("textgenrnn", "safetensors"):
        "issue 7: a flat target copies the file's tensors as they are: CuDNNLSTM weights stay in the CuDNN "
        "layout (rnn_1/kernel, bias 8 x units; the Keras targets re-lay them for LSTM), so no name matches "
        "the LSTM model",
    ("basic_pitch", "keras3-weights"):
        "issue 7: a Keras 3 .weights.h5 is written for a TF 2.4 SavedModel of custom layers (CQT2010v2, "
        "HarmonicStacking, ...) that Keras 3 cannot build, so no loader can prove it (the .keras target "
        "is refused for the same layers): neither exact nor refused",
}

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
