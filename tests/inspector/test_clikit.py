"""The CLI plumbing: TensorFlow's native log lines are filtered from stderr, nothing else is."""

from __future__ import annotations

import subprocess
import sys

FILTER_SCRIPT = """
import os, sys
from inspector.clikit import native_logs_filtered
with native_logs_filtered():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
    os.write(2, b"I0000 00:00:1795672571.843780   23899 port.cc:153] oneDNN custom operations are on.\\n")
    os.write(2, b"E0000 00:00:1795672573.810501   23899 cuda_platform.cc:52] failed call to cuInit\\n")
    print("note: kept", file=sys.stderr)
    os.write(2, b"ckconvert: error: also kept\\n")
print("after", file=sys.stderr)
"""


def test_native_log_lines_are_dropped_and_the_rest_kept_in_order():
    result = subprocess.run([sys.executable, "-c", FILTER_SCRIPT], capture_output=True, text=True, check=True)
    assert result.stderr.splitlines() == ["note: kept", "ckconvert: error: also kept", "after"]


def test_ckconvert_saved_model_output_is_quiet(tmp_path):
    from tests.conftest import FIXTURES

    result = subprocess.run(
        [sys.executable, "-m", "converters.cli", "convert", str(FIXTURES / "seed/tf_keras/model.h5"),
         str(tmp_path / "sm"), "--to", "saved-model"],
        capture_output=True, text=True,
        env={k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote saved-model")
    assert "I0000" not in result.stderr and "absl::InitializeLog" not in result.stderr
    assert all(line.startswith("note: ") for line in result.stderr.splitlines()), result.stderr
