"""Shared timing harness for the benchmarks: run a command in a child, time it, take its peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BIN = Path(sys.executable).parent


@dataclass
class Run:
    label: str
    seconds: float  # median wall time
    peak_rss_mib: float  # largest max-RSS over the repetitions
    runs: int


def measure(label: str, argv: list[str], repeat: int = 3, env: dict | None = None) -> Run:
    """Median wall time and peak RSS of `argv` over `repeat` runs (output discarded, failures fatal)."""
    times, peaks = [], []
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    # Users' interpreters cache bytecode (pip compiles site-packages at install); a sandbox that
    # sets PYTHONDONTWRITEBYTECODE would charge ckit's own modules a recompile on every run.
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    if repeat > 1:  # one untimed run first: bytecode written, files in the page cache
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full_env)
    for _ in range(repeat):
        # Flush the previous run's dirty pages first: otherwise their write-back lands on
        # whichever command happens to run next and the order of the runs decides the result.
        os.sync()
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=full_env)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"{label}: {' '.join(argv)} failed ({child.returncode}):\n{stderr[-2000:]}")
        times.append(elapsed)
        peaks.append(usage.ru_maxrss / 1024)  # Linux reports KiB
    return Run(label, statistics.median(times), max(peaks), repeat)


def table(runs: list[Run], baseline: Run | None = None) -> str:
    lines = ["| what | median s | peak RSS MiB | runs |" + (" vs baseline |" if baseline else ""),
             "|---|---:|---:|---:|" + ("---:|" if baseline else "")]
    for run in runs:
        ratio = f" {baseline.seconds / run.seconds:.1f}x faster |" if baseline and run is not baseline else (" baseline |" if baseline else "")
        lines.append(f"| {run.label} | {run.seconds:.3f} | {run.peak_rss_mib:.0f} | {run.runs} |{ratio}")
    return "\n".join(lines)
