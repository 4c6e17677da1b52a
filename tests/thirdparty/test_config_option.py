"""`--config ARCH.json`: a weights-only file and the architecture JSON saved beside it, to full models.

The two real cases of the corpus: humanactivity (a suffix-less Keras 2.0.6 weights file and its
`model.to_json()`, a Keras <= 2.1 list-form Sequential) and rnnmorph (an `.h5` of weights and a
tf.keras 2.8 `Functional` JSON). Each output is reloaded with the framework's own loader and must
predict what the package's own model predicts (tests/thirdparty/matrix.py: the reference model is
the package's architecture with the original weights loaded by tf_keras; `.keras` is opened by
Keras 3 `load_model` in safe mode, `.h5` and SavedModel by `tf_keras.models.load_model`).

rnnmorph's JSON holds its custom `ReversedLSTM`, which ckit never imports, and Keras 2's
`hard_sigmoid`, which Keras 3 computes differently: its full-model targets are refused by name,
while weights targets still take their layer names and classes from the JSON.
"""

from __future__ import annotations

import pytest

from tests.thirdparty.corpus import THIRDPARTY, by_name
from tests.thirdparty.matrix import _DEST, Case, Matrix, judge

ARCH = {
    "humanactivity": THIRDPARTY / "humanactivity" / "har_model_json",
    "rnnmorph": THIRDPARTY / "rnnmorph" / "eval_model.json",
}
WRITTEN = [("humanactivity", "keras3-model"), ("humanactivity", "h5-model"), ("humanactivity", "saved-model"),
           ("rnnmorph", "h5-weights"), ("rnnmorph", "tf-checkpoint")]
# What each refusal must name: Keras 3 meets Keras 2's hard_sigmoid first (its own differs), tf_keras
# the custom class.
REFUSED = {
    ("rnnmorph", "keras3-model"): ("layer 'LSTM_1_forward' argument 'recurrent_activation' is Keras 2's 'hard_sigmoid'",),
    ("rnnmorph", "h5-model"): ("'LSTM_1_backward'", "'ReversedLSTM'", "custom code"),
}


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    from converters.convert import convert
    from inspector.errors import CkitError

    work = tmp_path_factory.mktemp("archjson")
    matrix = Matrix()
    notes = {}
    for name, target in [*WRITTEN, *REFUSED]:
        case = matrix.cases[(name, target)] = Case(name, target)
        dst = work / name / target / _DEST[target]
        dst.parent.mkdir(parents=True)
        try:
            result = convert(by_name(name).path, dst, to=target, config=ARCH[name])
        except CkitError as exc:
            case.status, case.detail = "refused", str(exc)
            continue
        case.dst, notes[(name, target)] = str(dst), result.notes
    return judge(matrix, work), notes


@pytest.mark.tf
@pytest.mark.parametrize("artifact, target", WRITTEN, ids=[f"{a}-{t}" for a, t in WRITTEN])
def test_weights_and_architecture_json_convert_exactly(judged, artifact, target):
    matrix, _ = judged
    case = matrix.cases[(artifact, target)]
    assert case.status == "exact", f"{artifact} -> {target}: {case.status}: {case.detail}"


@pytest.mark.tf
def test_what_cannot_be_rebuilt_is_named_and_not_built(judged):
    matrix, notes = judged
    for key, words in REFUSED.items():
        message = matrix.cases[key].detail
        assert matrix.cases[key].status == "refused" and "\n" not in message, (key, matrix.cases[key])
        assert all(word in message for word in words), message
    # The weights target used the JSON for names and said what it could not check (nothing was built).
    (note,) = [n for n in notes[("rnnmorph", "h5-weights")] if n.startswith("--config")]
    assert "weight shapes not checked" in note and "'ReversedLSTM'" in note
