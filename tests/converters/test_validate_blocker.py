"""The jax/torch worker's TensorFlow blocker makes TensorFlow absent, as an uninstalled package is.

PyTorch calls `importlib.util.find_spec("tensorflow")` while Keras imports its torch backend
(torch._dynamo.trace_rules); that probe must see None, and `import tensorflow` must still fail.
Checked in a child process, since blocking is for the rest of a process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

PROBE = '''
import importlib.util
# What a library does at import time to decide whether an optional dependency is there.
SEEN = {name: importlib.util.find_spec(name) for name in ("tensorflow", "tf_keras", "numpy")}
'''

CHECK = '''
import importlib.util, sys
from converters.validate.blocker import block

block()
import probe  # the find_spec calls run during this import

assert probe.SEEN["tensorflow"] is None, probe.SEEN
assert probe.SEEN["tf_keras"] is None, probe.SEEN
assert probe.SEEN["numpy"] is not None  # only the blocked names vanish
for name in ("tensorflow", "tf_keras", "tensorflow.python"):
    try:
        __import__(name)
    except ModuleNotFoundError as exc:
        assert name.split(".")[0] in str(exc), exc
    else:
        raise AssertionError(f"import {name} succeeded behind the blocker")
# A dotted probe behaves as for any absent package: the parent import fails.
try:
    importlib.util.find_spec("tensorflow.python")
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("find_spec('tensorflow.python') found something behind the blocker")
print("blocked")
'''


def test_blocked_names_look_uninstalled(tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    env_path = f"{tmp_path}:{ROOT}"
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECK)], capture_output=True, text=True,
                            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "blocked"


def test_blocking_after_import_is_refused(tmp_path):
    code = (
        "import sys, types\n"
        "sys.modules['tf_keras'] = types.ModuleType('tf_keras')  # as if already imported\n"
        "from converters.validate.blocker import block\n"
        "try:\n"
        "    block()\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, cwd=tmp_path, timeout=120)
    assert result.stdout.strip() == "cannot hide tf_keras: already imported in this process", result.stderr[-2000:]
