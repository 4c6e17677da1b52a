"""Benchmark `ckinspect stats` and `ckinspect diff` on a 512 MiB artifact, side by side in one run.

Goals (issue 10): stats and diff at >= 50% of the throughput of reading the file(s) once, peak
RSS <= 128 MiB.  Side by side: a plain read of the same bytes (`cat`), numpy on whole tensors
(ckit's reader, one tensor at a time), and the TensorFlow route (`tf.train.load_checkpoint` and
numpy per variable).  The artifact: the 512 MiB tf_keras weights file of bench_convert.py
(32 x Dense(2048)), converted to a TF checkpoint by ckconvert; stats reads the checkpoint, diff
compares the checkpoint with the .h5 it came from.

Run: .venv/bin/python benchmarks/bench_stats.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import BIN, PYTHON, measure, table  # noqa: E402
from bench_convert import MAKE_FILE  # noqa: E402  (the same 512 MiB tf_keras weights file)

# Whole tensors, numpy's own reductions: what a script without ckit's pieces would do.
NUMPY_STATS = """
import sys
import numpy as np
from inspector import open_artifact
with open_artifact(sys.argv[1]) as reader:
    for t in reader.manifest.tensors:
        if t.dtype != "float32":
            continue
        v = reader.read_tensor(t.key).astype(np.float64)
        v.min(); v.max(); v.mean(); v.std(); np.sqrt(np.dot(v.ravel(), v.ravel())); np.count_nonzero(v)
"""

TF_STATS = """
import sys
import numpy as np
import tensorflow as tf
reader = tf.train.load_checkpoint(sys.argv[1])
for name in reader.get_variable_to_shape_map():
    v = np.asarray(reader.get_tensor(name))
    if v.dtype.kind == "f":
        v = v.astype(np.float64)
        v.min(); v.max(); v.mean(); v.std(); np.count_nonzero(v)
"""


def main() -> None:
    ckinspect = str(BIN / "ckinspect")
    with tempfile.TemporaryDirectory(dir=os.environ.get("CKIT_BENCH_DIR")) as tmp:
        h5 = Path(tmp) / "big.h5"
        (Path(tmp) / "make.py").write_text(MAKE_FILE)
        subprocess.run([PYTHON, str(Path(tmp) / "make.py"), str(h5)], check=True, stderr=subprocess.DEVNULL)
        prefix = Path(tmp) / "ckpt" / "big"
        subprocess.run([str(BIN / "ckconvert"), "h5-to-tf", str(h5), str(prefix), "--quiet"], check=True)
        data = sorted(prefix.parent.glob("big.data-*"))
        read_one = measure("cat the checkpoint's data file (one read)", ["cat", *map(str, data)], repeat=5)
        stats = measure("ckinspect stats (512 MiB ckpt)", [ckinspect, "stats", str(prefix)], repeat=5)
        numpy_whole = measure("numpy on whole tensors (ckit reader)", [PYTHON, "-c", NUMPY_STATS, str(prefix)], repeat=3)
        tf_route = measure("TensorFlow load_checkpoint + numpy", [PYTHON, "-c", TF_STATS, str(prefix)], repeat=1)
        read_two = measure("cat the checkpoint and the .h5 (one read each)", ["cat", *map(str, data), str(h5)], repeat=5)
        diff = measure("ckinspect diff (512 MiB .h5 vs its ckpt)", [ckinspect, "diff", str(h5), str(prefix)], repeat=5)
    runs = [read_one, stats, numpy_whole, tf_route, read_two, diff]
    print(table(runs))
    print()
    print(f"stats throughput: {100 * read_one.seconds / stats.seconds:.0f}% of one read (goal >= 50%), "
          f"peak RSS {stats.peak_rss_mib:.0f} MiB (goal <= 128)")
    print(f"diff throughput: {100 * read_two.seconds / diff.seconds:.0f}% of one read of both (goal >= 50%), "
          f"peak RSS {diff.peak_rss_mib:.0f} MiB (goal <= 128)")


if __name__ == "__main__":
    main()
