"""Benchmark `ckconvert h5-to-tf` against the route users take today and against `cp`.

The file: a 512 MiB Keras 2 HDF5 weights file (32 x Dense(2048)) written by
tf_keras.  The routes, side by side in one run:
  - cp of the same file (the floor: just moving the bytes);
  - TensorFlow: build the model in tf_keras, load_weights(h5), save_weights(prefix);
  - ckconvert h5-to-tf (native, verified: the output is re-read and compared).
Goals (issue 3): >= 3x faster than the TF route (goal 5x), within 3x of cp (goal 2x),
peak RSS <= 25% of the file (goal <= 64 MiB).

Run: .venv/bin/python benchmarks/bench_convert.py
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import BIN, PYTHON, measure, table  # noqa: E402

WIDTH, DEPTH = 2048, 32

MODEL_SOURCE = f"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tf_keras
def build():
    layers = [tf_keras.Input(shape=({WIDTH},))]
    layers += [tf_keras.layers.Dense({WIDTH}, use_bias=False) for _ in range({DEPTH})]
    return tf_keras.Sequential(layers)
"""

TF_ROUTE = MODEL_SOURCE + """
model = build()
model.load_weights(sys.argv[1])
model.save_weights(sys.argv[2])
"""

MAKE_FILE = MODEL_SOURCE + """
model = build()
model.save_weights(sys.argv[1])
"""


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("CKIT_BENCH_DIR")) as tmp:
        tmp = Path(tmp)
        src = tmp / "big.h5"
        (tmp / "make.py").write_text(MAKE_FILE)
        (tmp / "tf_route.py").write_text(TF_ROUTE)
        measure("make the 512 MiB file", [PYTHON, str(tmp / "make.py"), str(src)], repeat=1)
        size_mib = src.stat().st_size / 2**20

        def fresh(name: str) -> Path:
            out = tmp / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            return out

        runs = [
            measure("TensorFlow route (tf_keras load_weights + save_weights)",
                    [PYTHON, str(tmp / "tf_route.py"), str(src), str(fresh("tf") / "w")], repeat=1),
            measure("cp", ["cp", str(src), str(tmp / "copy.h5")], repeat=3),
            measure("ckconvert h5-to-tf (verified)",
                    ["sh", "-c", f'rm -rf "{tmp}/ck"; mkdir "{tmp}/ck"; exec "{BIN}/ckconvert" h5-to-tf "{src}" "{tmp}/ck/w"'],
                    repeat=3),
            measure("ckconvert h5-to-tf --no-verify",
                    ["sh", "-c", f'rm -rf "{tmp}/ck2"; mkdir "{tmp}/ck2"; exec "{BIN}/ckconvert" h5-to-tf --no-verify "{src}" "{tmp}/ck2/w"'],
                    repeat=3),
        ]
        tf_route, cp, ck, ck_nv = runs
        print(f"file: {size_mib:.0f} MiB Keras 2 HDF5 ({DEPTH} x Dense({WIDTH}))\n")
        print(table(runs, baseline=tf_route))
        print()
        print(f"ckconvert vs TF route: {tf_route.seconds / ck.seconds:.1f}x faster (goal >= 3x, stretch 5x)")
        print(f"ckconvert vs cp: {ck.seconds / cp.seconds:.1f}x the time of cp (goal <= 3x, stretch 2x)")
        print(f"ckconvert peak RSS: {ck.peak_rss_mib:.0f} MiB = {100 * ck.peak_rss_mib / size_mib:.0f}% of the file "
              "(goal <= 25%, stretch <= 64 MiB)")


if __name__ == "__main__":
    main()
