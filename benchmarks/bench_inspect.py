"""Benchmark `ckinspect dump` against TensorFlow's inspect_checkpoint, side by side in one run.

Goals (issue 2): dump of the seed TF checkpoint >= 20x faster than
`python -m tensorflow.python.tools.inspect_checkpoint` (goal 40x), and a
512 MiB checkpoint dumps within 2x the seed's time (dump never reads data).
Goals (issue 10): dump start-up within 3x of `python -c pass`; a 20,000-variable
checkpoint dumps in <= 0.2 s; the cost per tensor at 1k, 20k and 100k variables.

Run: .venv/bin/python benchmarks/bench_inspect.py [--scaling]   (--scaling: only the issue-10 part)
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import BIN, PYTHON, ROOT, measure, table  # noqa: E402

SEED = ROOT / "fixtures/seed/tf_keras/ckpt/weights"


def make_big_checkpoint(directory: Path, mib: int = 512) -> Path:
    """A real tf_keras-shaped checkpoint of `mib` MiB written by ckit's bundle writer (streamed)."""
    from converters.writers.tf_bundle import BundleWriter

    prefix = directory / "big"
    rows = 2048
    per_tensor = rows * rows * 4
    count = mib * 1024 * 1024 // per_tensor
    value = np.random.default_rng(0).standard_normal((rows, rows), dtype=np.float32)
    with BundleWriter(prefix) as writer:
        for i in range(count):
            writer.add(f"layer_with_weights-{i}/kernel/.ATTRIBUTES/VARIABLE_VALUE", value)
    return prefix


# tf.train.Checkpoint of N variables in N/2 modules (kernel, bias): TensorFlow's own object graph.
MANY_VARIABLES = """
import sys
import numpy as np
import tensorflow as tf

class Layer(tf.Module):
    def __init__(self, i):
        super().__init__(name=f"dense_{i}")
        self.kernel = tf.Variable(np.full((4, 4), i, np.float32), name="kernel")
        self.bias = tf.Variable(np.zeros((4,), np.float32), name="bias")

tf.train.Checkpoint(layers=[Layer(i) for i in range(int(sys.argv[1]) // 2)]).write(sys.argv[2])
"""


def many_variables(directory: Path, count: int) -> Path:
    prefix = directory / f"many{count}"
    subprocess.run([PYTHON, "-c", MANY_VARIABLES, str(count), str(prefix)], check=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, stderr=subprocess.DEVNULL)
    return prefix


def scaling() -> None:
    """Start-up against the bare interpreter, and dump time per tensor as the tensor count grows."""
    ckinspect = str(BIN / "ckinspect")
    bare = measure("python -c pass", [PYTHON, "-c", "pass"], repeat=15)
    seed = measure("ckinspect dump (seed ckpt, 11 tensors)", [ckinspect, "dump", str(SEED)], repeat=15)
    # The same pair without `site` (-S): the development venv's editable install adds a path finder
    # that every interpreter start imports (pathlib, urllib, ...), in both commands; a user's
    # `pip install ckit` has none.  -S with the packages on PYTHONPATH shows the ratio without it.
    plain = {"PYTHONPATH": os.pathsep.join([str(ROOT), sysconfig.get_paths()["purelib"]])}
    bare_s = measure("python -S -c pass", [PYTHON, "-S", "-c", "pass"], repeat=15, env=plain)
    seed_s = measure("python -S -m inspector.cli dump (seed ckpt)", [PYTHON, "-S", "-m", "inspector.cli", "dump", str(SEED)],
                     repeat=15, env=plain)
    runs = [bare, seed]
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1_000, 20_000, 100_000):
            prefix = many_variables(Path(tmp), count)
            runs.append(measure(f"ckinspect dump ({count:,} variables)", [ckinspect, "dump", str(prefix)], repeat=5))
            runs.append(measure(f"ckinspect dump --json ({count:,} variables)", [ckinspect, "dump", "--json", str(prefix)],
                                repeat=5))
    print(table([bare_s, seed_s, *runs]))
    print()
    print(f"start-up: seed dump / python -c pass = {seed.seconds / bare.seconds:.1f}x (goal <= 3x)")
    print(f"start-up without site (-S): {seed_s.seconds / bare_s.seconds:.1f}x")
    for run, count in zip(runs[2::2], (1_000, 20_000, 100_000)):
        print(f"{count:>7,} variables: {run.seconds:.3f} s, {1e6 * (run.seconds - seed.seconds) / count:.1f} us per tensor"
              + (" (goal <= 0.2 s)" if count == 20_000 else ""))


def main() -> None:
    if "--scaling" in sys.argv:
        scaling()
        return
    ckinspect = str(BIN / "ckinspect")
    runs = [
        measure("TensorFlow inspect_checkpoint (seed ckpt)",
                [PYTHON, "-m", "tensorflow.python.tools.inspect_checkpoint", f"--file_name={SEED}"], repeat=3),
        measure("ckinspect dump (seed ckpt)", [ckinspect, "dump", str(SEED)], repeat=7),
        measure("ckinspect dump --json (seed ckpt)", [ckinspect, "dump", "--json", str(SEED)], repeat=7),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        big = make_big_checkpoint(Path(tmp))
        runs.append(measure("ckinspect dump (512 MiB ckpt)", [ckinspect, "dump", str(big)], repeat=7))
        runs.append(measure("TensorFlow inspect_checkpoint (512 MiB ckpt)",
                            [PYTHON, "-m", "tensorflow.python.tools.inspect_checkpoint", f"--file_name={big}"],
                            repeat=1))
    tf_seed, ck_seed, _, ck_big, _ = runs
    print(table(runs, baseline=tf_seed))
    print()
    print(f"speed-up on the seed checkpoint: {tf_seed.seconds / ck_seed.seconds:.1f}x (goal >= 20x, stretch 40x)")
    print(f"512 MiB dump / seed dump: {ck_big.seconds / ck_seed.seconds:.2f}x (goal <= 2x)")
    print()
    scaling()


if __name__ == "__main__":
    main()
