"""Keeps TensorFlow out of a jax or torch validation, the way an absent package is absent.

The GPU machines the jax and torch runs are for have no TensorFlow; a run here, where it is
installed, must not quietly use it (ckit's Keras 2 writers would, through --model), so the
same rows are checked wherever the run happens.

A blocked name is made absent, not forbidden: `sys.modules[name] = None` makes `import name`
raise ModuleNotFoundError and `importlib.util.find_spec(name)` return None, exactly what a
library probing for an optional dependency sees when it is not installed.  (PyTorch probes
`find_spec("tensorflow")` while Keras imports its torch backend; a finder that raised there
broke every torch run.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

BLOCKED = ("tensorflow", "tf_keras")


def block(names: Iterable[str] = BLOCKED) -> None:
    """Make `names` absent for the rest of this process; refuses if one of them is already imported."""
    loaded = [name for name in names if sys.modules.get(name) is not None]
    if loaded:
        raise RuntimeError(f"cannot hide {', '.join(loaded)}: already imported in this process")
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]  # None is the import system's "absent"
