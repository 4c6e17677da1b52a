"""Runs the HDF5 library in a child process (`_h5worker.py`) with a time and a memory limit.

Why a child: the HDF5 C library parses metadata with loops and offsets taken
from the file, so one changed byte can crash it (SIGSEGV), make it loop
forever (no Python signal handler runs while it does) or make it allocate
gigabytes.  In a child, each of those becomes a one-line error naming the
file, and Ctrl-C/SIGTERM reach ckit's own Python code at once (it kills the
child on the way out).  docs/ARCHITECTURE.md has the measurements.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import CorruptArtifact, MissingDependency, UnsafeArtifact

_WORKER = str(Path(__file__).with_name("_h5worker.py"))
# `python -c` puts the current directory first on sys.path: drop it, so nothing in the user's
# working directory can shadow numpy or h5py inside the worker.
_BOOT = "import sys, runpy; del sys.path[0]; runpy.run_path(sys.argv[1], run_name='__main__')"

# Address-space limit of the worker while it parses metadata: the interpreter with numpy and
# h5py maps about 150 MiB, a large real model's metadata needs a few MiB more.
METADATA_MEMORY = int(os.environ.get("CKIT_HDF5_MEMORY_MB", "512")) << 20
# CPU-time limit for parsing one file's metadata (RLIMIT_CPU in the worker, so a loaded machine
# does not turn a slow parse into an error).  Real files take well under a second; the limit
# stays below the 10 s a hang may cost.  Wall time is capped too, at WALL_FACTOR times this.
METADATA_SECONDS = float(os.environ.get("CKIT_HDF5_TIMEOUT", "8"))
WALL_FACTOR = 3
# Starting the worker (interpreter, numpy, h5py) parses nothing from the file: a generous limit.
STARTUP_SECONDS = 120
# Reading data h5py must decode (chunked, filtered, strings): per byte on top of the base.
READ_SECONDS_PER_GIB = 20.0
_MAX_HEADER = 256 << 20  # a description of a million objects fits many times over


class WorkerError(Exception):
    """The worker answered with an error (the HDF5 library refused the file)."""

    def __init__(self, message: str, memory: bool = False) -> None:
        super().__init__(message)
        self.memory = memory


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Worker:
    """One child process holding one HDF5 file open.  Not thread-safe; one request at a time."""

    def __init__(self, display: str) -> None:
        self.display = display
        self._proc: subprocess.Popen | None = None
        self._cpu = METADATA_SECONDS

    def _start(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        env = dict(os.environ)
        env["CKIT_H5_WORKER_AS"] = str(METADATA_MEMORY)
        # One BLAS thread: numpy's default maps a buffer per core, wasted address space here.
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _BOOT, _WORKER],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                close_fds=True,
            )
        except OSError as exc:
            raise CorruptArtifact(f"{self.display}: cannot start the HDF5 reader process ({exc.strerror})") from None
        ready = False
        try:
            reply = self._reply(time.monotonic() + STARTUP_SECONDS, "starting", STARTUP_SECONDS, 0)[0]
            ready = bool(reply.get("ready"))
        finally:
            if not ready:
                self.close()
        return self._proc

    def request(self, header: dict, payload: bytes | memoryview = b"", *, seconds: float,
                memory: int, max_reply: int, what: str) -> tuple[dict, bytearray]:
        """Send one request; the reply header and payload.  Kills the child on timeout, crash or signal."""
        proc = self._start()
        header = dict(header, memory=memory, cpu=seconds, nbytes=len(payload))
        self._cpu = seconds
        raw = json.dumps(header).encode("ascii")
        done = False
        try:
            try:
                assert proc.stdin is not None
                proc.stdin.write(struct.pack("<I", len(raw)) + raw)
                if len(payload):
                    proc.stdin.write(payload)
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it died: reading the reply finds out how
            reply, data = self._reply(time.monotonic() + WALL_FACTOR * seconds, what, WALL_FACTOR * seconds, max_reply)
            done = True
        finally:
            if not done:  # timeout, crash, Ctrl-C, SIGTERM: the child never outlives the request
                self.close()
        if not reply.get("ok"):
            raise WorkerError(str(reply.get("error") or "unknown error"), memory=bool(reply.get("memory")))
        return reply, data

    def _reply(self, deadline: float, what: str, seconds: float, max_reply: int) -> tuple[dict, bytearray]:
        head = self._read_exact(4, deadline, what, seconds)
        (size,) = struct.unpack("<I", head)
        if size > _MAX_HEADER:
            raise CorruptArtifact(f"{self.display}: the HDF5 reader process sent a {size}-byte reply header")
        try:
            reply = json.loads(bytes(self._read_exact(size, deadline, what, seconds)))
        except ValueError:
            raise CorruptArtifact(f"{self.display}: the HDF5 reader process sent an unreadable reply") from None
        if not isinstance(reply, dict):
            raise CorruptArtifact(f"{self.display}: the HDF5 reader process sent an unreadable reply")
        nbytes = int(reply.get("nbytes", 0))
        if nbytes > max_reply:
            raise CorruptArtifact(
                f"{self.display}: {what} produced {nbytes} bytes, more than the {max_reply} the file can hold"
            )
        data = self._read_exact(nbytes, deadline, what, seconds) if nbytes else bytearray()
        return reply, data

    def _read_exact(self, count: int, deadline: float, what: str, seconds: float) -> bytearray:
        """`count` bytes of the reply; `seconds` is the wall-clock limit the deadline stands for."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        buffer = bytearray(count)
        view = memoryview(buffer)
        got = 0
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while got < count:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(timeout=left):
                    raise CorruptArtifact(
                        f"{self.display}: the HDF5 library did not finish {what} within {seconds:g} s "
                        "(a damaged file can make it loop forever); the file is damaged or not a Keras file "
                        "(CKIT_HDF5_TIMEOUT raises the limit)"
                    )
                chunk = os.readv(fd, [view[got:got + (1 << 24)]])
                if chunk == 0:
                    raise self._died(what)
                got += chunk
        return buffer

    def _died(self, what: str) -> Exception:
        proc = self._proc
        assert proc is not None
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code == -signal.SIGXCPU:
            return CorruptArtifact(
                f"{self.display}: the HDF5 library did not finish {what} within {self._cpu:g} s of CPU time "
                "(a damaged file can make it loop forever); the file is damaged or not a Keras file "
                "(CKIT_HDF5_TIMEOUT raises the limit)"
            )
        if code is not None and code < 0:
            return CorruptArtifact(
                f"{self.display}: the HDF5 library crashed ({_signal_name(-code)}) while {what}; "
                "the file is damaged: re-save it or restore it from a backup"
            )
        if code == 0 or code is None:
            return CorruptArtifact(f"{self.display}: the HDF5 reader process stopped while {what}; the file may be damaged")
        return CorruptArtifact(
            f"{self.display}: the HDF5 library failed (exit status {code}; out of memory or h5py missing) "
            f"while {what}; the file is damaged or needs more than {METADATA_MEMORY >> 20} MiB to parse "
            "(CKIT_HDF5_MEMORY_MB raises the limit)"
        )

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def check_h5py() -> None:
    """Fail early, in ckit's own words, when h5py is not installed (the worker imports it)."""
    import importlib.util

    if importlib.util.find_spec("h5py") is None:
        raise MissingDependency(
            "reading HDF5 files needs the Python package 'h5py', which is not installed; "
            "install it with: pip install h5py (a ckit dependency)"
        )


__all__ = ["Worker", "WorkerError", "UnsafeArtifact", "check_h5py", "METADATA_MEMORY", "METADATA_SECONDS",
           "READ_SECONDS_PER_GIB"]
