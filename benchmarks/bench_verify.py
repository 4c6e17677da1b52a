"""`ckinspect verify` of one 3 GiB tensor: peak RSS and throughput against `cat FILE > /dev/null`.

Builds a TF checkpoint in /tmp (not in the repository) holding one float32 tensor of 3 GiB
(`--gib` changes it), written with ckit's BundleWriter from a memory map so the setup itself
stays small, then times `cat` of the data shard and `ckinspect verify` of the checkpoint (every
CRC32C checked, chunk by chunk).  Page cache warm for both (one untimed run each first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import BIN, PYTHON, measure  # noqa: E402


def build(directory: Path, gib: float) -> Path:
    import numpy as np

    from converters.writers.tf_bundle import BundleWriter

    elements = int(gib * (1 << 30)) // 4
    raw = directory / "values.f32"
    step = 1 << 24
    rng = np.random.default_rng(0)
    with open(raw, "wb") as fh:
        for start in range(0, elements, step):
            fh.write(rng.standard_normal(min(step, elements - start), dtype=np.float32).tobytes())
    values = np.memmap(raw, dtype="<f4", mode="r", shape=(elements // 1024, 1024))
    prefix = directory / "big"
    with BundleWriter(prefix) as writer:
        writer.add("big/.ATTRIBUTES/VARIABLE_VALUE", values)
    del values
    raw.unlink()
    return prefix


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(args.build, args.gib)
        return 0
    directory = Path(tempfile.mkdtemp(prefix="ckit-bench-verify-", dir="/tmp"))
    try:
        # Built in a child: a forked process inherits its parent's peak RSS, which would then be
        # charged to `cat` and `ckinspect` below.
        import subprocess

        subprocess.run([PYTHON, __file__, "--build", str(directory), "--gib", str(args.gib)], check=True)
        prefix = directory / "big"
        data = next(directory.glob("big.data-*"))
        size = data.stat().st_size
        cat = measure("cat FILE > /dev/null", ["sh", "-c", f"cat '{data}' > /dev/null"], args.repeat)
        ckinspect = [str(BIN / "ckinspect")] if (BIN / "ckinspect").exists() else [PYTHON, "-m", "inspector"]
        verify = measure("ckinspect verify", [*ckinspect, "verify", str(prefix)], args.repeat,
                         env={"PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        mib = size / (1 << 20)
        print(f"one float32 tensor of {size / (1 << 30):.2f} GiB (TF checkpoint), page cache warm, "
              f"median of {args.repeat}")
        print("| what | median s | MiB/s | peak RSS MiB | vs cat |")
        print("|---|---:|---:|---:|---:|")
        for run in (cat, verify):
            print(f"| {run.label} | {run.seconds:.2f} | {mib / run.seconds:.0f} | {run.peak_rss_mib:.0f} | "
                  f"{cat.seconds / run.seconds:.0%} |")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
