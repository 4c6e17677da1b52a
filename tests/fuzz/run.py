"""Long fuzzing run: `python -m tests.fuzz.run --seconds 3600 [--target NAME] [--keep DIR]`.

Random edits of the fixtures (tests/fuzz/targets.py), round-robin over the targets, one process.
Each input runs under a memory limit (RLIMIT_AS, --memory-mb, default 1024: this harness process
with numpy; the HDF5 worker has its own 512 MiB) and a time limit; an escape (an exception other
than ckit's one-line errors, a run above 10 s, a MemoryError) is saved under --keep with its
traceback.  Prints how many inputs ran and what escaped.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.fuzz.targets import TARGETS, mutate, prepare, run_one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--target", action="append", help="target name (repeatable); default: all")
    parser.add_argument("--keep", type=Path, default=Path("fuzz-escapes"))
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    limit = args.memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    rng = random.Random(args.seed)
    targets = [t for t in TARGETS if not args.target or t.name in args.target]
    counts: dict[str, dict[str, int]] = {t.name: {} for t in targets}
    escapes = 0
    end = time.monotonic() + args.seconds
    with tempfile.TemporaryDirectory(prefix="ckit-fuzz-") as scratch:
        prepared = {t.name: prepare(t, Path(scratch) / t.name) for t in targets}
        while time.monotonic() < end:
            target = rng.choice(targets)
            opened, damaged, original = prepared[target.name]
            edits = [(rng.randrange(5), rng.randrange(1 << 30), rng.randrange(256))
                     for _ in range(rng.choice((1, 1, 1, 2, 3, 6)))]
            data = mutate(original, edits)
            try:
                outcome = run_one(opened, damaged, data)
            except BaseException as exc:  # noqa: BLE001 - an escape of any kind is what we look for
                if isinstance(exc, KeyboardInterrupt):
                    break
                outcome = f"escape:{type(exc).__name__}"
                escapes += 1
                args.keep.mkdir(parents=True, exist_ok=True)
                stem = args.keep / f"{target.name}-{escapes}{''.join(damaged.suffixes)}"
                stem.write_bytes(data)
                stem.with_suffix(stem.suffix + ".txt").write_text("".join(traceback.format_exception(exc)))
            counts[target.name][outcome] = counts[target.name].get(outcome, 0) + 1
    total = sum(sum(c.values()) for c in counts.values())
    for name, c in counts.items():
        print(f"{name:28} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    print(f"inputs: {total}, escapes: {escapes}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
