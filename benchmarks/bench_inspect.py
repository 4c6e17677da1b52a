"""Benchmark `ckinspect dump` against TensorFlow's inspect_checkpoint, side by side in one run.

Goals (issue 2): dump of the seed TF checkpoint >= 20x faster than
`python -m tensorflow.python.tools.inspect_checkpoint` (goal 40x), and a
512 MiB checkpoint dumps within 2x the seed's time (dump never reads data).

Run: .venv/bin/python benchmarks/bench_inspect.py
"""

from __future__ import annotations

import sys
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


def main() -> None:
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


if __name__ == "__main__":
    main()
