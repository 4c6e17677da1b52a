"""Each reader fuzzed for a few seconds in CI (hypothesis, deterministic), seeded from fixtures/.

Longer runs: `python -m tests.fuzz.run --seconds 3600` (see README, "Hostile input").
`CKIT_FUZZ_EXAMPLES=N` changes the examples per target here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Hypothesis keeps a cache directory; it belongs in /tmp, not in the checkout.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "ckit-hypothesis"))
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.fuzz.targets import TARGETS, Target, mutate, prepare, run_one  # noqa: E402

# HDF5 targets cost a worker process per input (~0.3 s); the others a few ms.
_EXAMPLES = int(os.environ.get("CKIT_FUZZ_EXAMPLES", "0"))

EDITS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 1 << 30), st.integers(0, 255)), min_size=1, max_size=6)


def _examples(target: Target) -> int:
    if _EXAMPLES:
        return _EXAMPLES
    return 3 if target.damage.endswith((".h5", ".keras", ".json")) and target.name != "keras3-weights-json" else 60


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_fuzz_reader(target: Target, tmp_path: Path) -> None:
    opened, damaged, original = prepare(target, tmp_path)

    @settings(max_examples=_examples(target), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(edits=EDITS)
    def one(edits: list[tuple[int, int, int]]) -> None:
        run_one(opened, damaged, mutate(original, edits))

    one()
