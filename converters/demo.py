"""`make demo`: the main job on the embedded default, shown as the commands a user would type.

1. ckinspect dump of each kind of artifact the classic Keras tutorial writes (fixtures/seed);
2. ckconvert of the two files Keras 3 cannot open (TF-format weights, SavedModel) into Keras 3 formats;
3. ckconvert validate: train, save in every format, convert each into every other, reload each
   with the framework's own loader, and print the matrix.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "fixtures" / "seed"


_MODULES = {"ckinspect": "inspector.cli", "ckconvert": "converters.cli"}


def _show(prog: str, argv: list[str]) -> int:
    """Run one command in its own process, exactly as typed, so its output and notes stay with it."""
    shown = [str(Path(a).relative_to(ROOT)) if a.startswith(str(ROOT)) else a for a in argv]
    print(f"\n$ {prog} {' '.join(shown)}", flush=True)
    code = subprocess.run([sys.executable, "-m", _MODULES[prog], *argv]).returncode
    if code != 0:
        raise SystemExit(f"demo: '{prog} {' '.join(shown)}' failed with exit code {code}")
    return code


def main() -> int:
    return _demo()


def _demo() -> int:
    artifacts = [
        SEED / "tf_keras/ckpt/weights",
        SEED / "tf_keras/weights.h5",
        SEED / "tf_keras/model.h5",
        SEED / "tf_keras/saved_model",
        SEED / "keras3/model.weights.h5",
        SEED / "keras3/model.keras",
    ]
    print("== 1. What is in it? ==")
    _show("ckinspect", ["dump", str(artifacts[0])])
    for path in artifacts[1:]:
        _show("ckinspect", ["dump", str(path)])
    _show("ckinspect", ["verify", str(artifacts[0])])

    print("\n== 2. Can I have it in the other format? ==")
    with tempfile.TemporaryDirectory(prefix="ckit-demo-") as tmp:
        out = Path(tmp)
        _show("ckconvert", ["h5-to-tf", str(SEED / "tf_keras/weights.h5"), str(out / "from_h5" / "weights")])
        _show("ckconvert", ["tf-to-h5", str(SEED / "tf_keras/ckpt/weights"), str(out / "from_ckpt.h5")])
        _show("ckconvert", ["convert", str(SEED / "tf_keras/ckpt/weights"), str(out / "from_ckpt.weights.h5")])
        _show("ckconvert", ["convert", str(SEED / "tf_keras/saved_model"), str(out / "from_savedmodel.keras")])
        _show("ckconvert", ["convert", str(SEED / "keras3/model.keras"), str(out / "from_keras3.safetensors")])

    print("\n== 3. Is the converted file really the same model? ==")
    return _show("ckconvert", ["validate"])


if __name__ == "__main__":
    sys.exit(main())
