"""Benchmark `ckinspect stats` and `ckinspect diff` on a 512 MiB artifact, side by side in one run.

Goals (issue 10): stats and diff at >= 50% of the throughput of reading the file(s) once, peak
RSS <= 128 MiB.  Side by side: a plain read of the same bytes (`cat`), numpy on whole tensors
(ckit's reader, one tensor at a time), and the TensorFlow route (`tf.train.load_checkpoint` and
numpy per variable).  The artifact: the 512 MiB tf_keras weights file of bench_convert.py
(32 x Dense(2048)), converted to a TF checkpoint by ckconvert; stats reads the checkpoint, diff
compares the checkpoint with the .h5 it came from.

Every ckit command runs the code of the tree this file lives in (PYTHONPATH set to it), not
whatever `ckinspect` the environment installed.  Startup (interpreter, numpy, for diff of an
`.h5` the HDF5 worker process) is a fixed cost: the same commands on the seed fixtures measure
it, and the "per MiB" lines compare what is left with cat.  The load average is printed with
the figures: on a shared machine they mean little without it.

Run: .venv/bin/python benchmarks/bench_stats.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import PYTHON, ROOT, measure, table  # noqa: E402
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


# This tree's code, whatever is installed: `python -m inspector` / `-m converters` with PYTHONPATH.
TREE = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p), "CKIT_THREADS": "1"}
CKINSPECT = [PYTHON, "-m", "inspector"]
CKCONVERT = [PYTHON, "-c", "import sys; from converters.cli import main; sys.exit(main())"]
SEED = ROOT / "fixtures" / "seed" / "tf_keras"


def main() -> None:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=os.environ.get("CKIT_BENCH_DIR")) as tmp:
        h5 = Path(tmp) / "big.h5"
        (Path(tmp) / "make.py").write_text(MAKE_FILE)
        subprocess.run([PYTHON, str(Path(tmp) / "make.py"), str(h5)], check=True, stderr=subprocess.DEVNULL)
        prefix = Path(tmp) / "ckpt" / "big"
        subprocess.run([*CKCONVERT, "h5-to-tf", str(h5), str(prefix), "--quiet"], check=True,
                       env={**os.environ, **TREE})
        data = sorted(prefix.parent.glob("big.data-*"))
        data_mib = sum(p.stat().st_size for p in data) / 2**20
        read_one = measure("cat the checkpoint's data file (one read)", ["cat", *map(str, data)], repeat=5)
        stats = measure("ckinspect stats (512 MiB ckpt)", [*CKINSPECT, "stats", str(prefix)], repeat=5, env=TREE)
        stats_two = measure("ckinspect stats, two threads (CKIT_THREADS=2)", [*CKINSPECT, "stats", str(prefix)],
                            repeat=5, env={**TREE, "CKIT_THREADS": "2"})
        stats_small = measure("ckinspect stats (seed ckpt, 1 MiB: the fixed cost)",
                              [*CKINSPECT, "stats", str(SEED / "ckpt" / "weights")], repeat=9, env=TREE)
        numpy_whole = measure("numpy on whole tensors (ckit reader)", [PYTHON, "-c", NUMPY_STATS, str(prefix)],
                              repeat=3, env=TREE)
        tf_route = measure("TensorFlow load_checkpoint + numpy", [PYTHON, "-c", TF_STATS, str(prefix)], repeat=1)
        read_two = measure("cat the checkpoint and the .h5 (one read each)", ["cat", *map(str, data), str(h5)], repeat=5)
        diff = measure("ckinspect diff (512 MiB .h5 vs its ckpt)", [*CKINSPECT, "diff", str(h5), str(prefix)],
                       repeat=5, env=TREE)
        diff_two = measure("ckinspect diff, two threads (CKIT_THREADS=2)", [*CKINSPECT, "diff", str(h5), str(prefix)],
                           repeat=5, env={**TREE, "CKIT_THREADS": "2"})
        diff_small = measure("ckinspect diff (seed .h5 vs its ckpt: the fixed cost)",
                             [*CKINSPECT, "diff", str(SEED / "weights.h5"), str(SEED / "ckpt" / "weights")],
                             repeat=9, env=TREE)
    load_after = os.getloadavg()
    runs = [read_one, stats, stats_two, stats_small, numpy_whole, tf_route, read_two, diff, diff_two, diff_small]
    print(table(runs))
    print()
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in load_after)} after, on {os.cpu_count()} CPUs")
    print(f"stats throughput: {100 * read_one.seconds / stats.seconds:.0f}% of one read (goal >= 50%), "
          f"peak RSS {stats.peak_rss_mib:.0f} MiB (goal <= 128)")
    print(f"diff throughput: {100 * read_two.seconds / diff.seconds:.0f}% of one read of both (goal >= 50%), "
          f"peak RSS {diff.peak_rss_mib:.0f} MiB (goal <= 128)")
    for label, big, small, read in (("stats", stats, stats_small, read_one), ("diff", diff, diff_small, read_two)):
        mib = data_mib * (2 if label == "diff" else 1)  # the .h5 holds the same bytes
        work = big.seconds - small.seconds
        if work <= read.seconds / 4:  # the fixed cost's own noise is larger than the work: no figure
            print(f"{label} per MiB past the fixed cost: lost in the noise (a busy machine?)")
            continue
        print(f"{label} per MiB past the fixed cost: {1000 * work / mib:.2f} ms against cat's "
              f"{1000 * read.seconds / mib:.2f} ms ({100 * read.seconds / work:.0f}%); "
              f"fixed cost {small.seconds:.3f} s = {100 * small.seconds / (2 * read.seconds):.0f}% of the 50% budget")


if __name__ == "__main__":
    main()
