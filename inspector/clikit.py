"""What ckit's command-line tools share: error reporting and exit codes.

Results go to stdout, diagnostics to stderr.  Exit 0 on success, 1 when the
operation failed (bad artifact, failed check), 2 for usage errors (click's
convention).  A CkitError prints as one line; anything else prints one line
too unless --debug asks for the traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
from typing import Iterator, Sequence

import click

from .errors import CkitError


# TensorFlow's native start-up log (absl format "I0000 00:00:...  123 file.cc:45] ...", and the
# banners around it).  TF 2.21 writes these before its log level is read, so no setting stops them.
_NATIVE_LOG = re.compile(
    rb"^([IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] |WARNING: All log messages before absl::InitializeLog"
    rb"|To enable the following instructions: |This TensorFlow binary is optimized)"
)


class _NativeLogFilter:
    """Routes file descriptor 2 through a thread that drops TensorFlow's native log lines.

    Python's own stderr (ckit's messages, tracebacks) and child processes share fd 2, so
    everything else still reaches the terminal, in order.
    """

    def __init__(self) -> None:
        self.armed = False  # inside a command that may start filtering
        self._saved: int | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._saved is not None:
            return
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            read_end, write_end = os.pipe()
        except OSError:  # no usable fd 2: nothing to filter
            return
        os.dup2(write_end, 2)
        os.close(write_end)

        def pump() -> None:
            with os.fdopen(read_end, "rb") as lines:
                for line in lines:
                    if not _NATIVE_LOG.match(line):
                        os.write(saved, line)

        self._saved = saved
        self._thread = threading.Thread(target=pump, name="ckit-stderr-filter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._saved is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the pump sees EOF and ends
        if self._thread is not None:
            self._thread.join(timeout=5)
        os.close(self._saved)
        self._saved, self._thread = None, None


_FILTER = _NativeLogFilter()


class _StartFilterOnImport:
    """Starts the filter the moment TensorFlow is first imported, and finds nothing itself.

    A meta path finder needs only `find_spec`; subclassing importlib.abc.MetaPathFinder would
    import importlib.resources, tempfile, shutil, bz2 and lzma into every command's start-up."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == "tensorflow":
            _FILTER.start()
        return None


@contextlib.contextmanager
def native_logs_filtered(lazy: bool = False) -> Iterator[None]:
    """Filter TensorFlow's native log from fd 2 for the duration of a command.

    `lazy` waits until TensorFlow is imported (or `filter_native_logs_now` is called): a
    conversion that never loads TensorFlow then runs without the extra thread and pipe, and
    its stderr is untouched.
    """
    finder = _StartFilterOnImport() if lazy else None
    if finder is not None:
        sys.meta_path.insert(0, finder)
    else:
        _FILTER.start()
    _FILTER.armed = True
    try:
        yield
    finally:
        _FILTER.armed = False
        if finder is not None and finder in sys.meta_path:
            sys.meta_path.remove(finder)
        _FILTER.stop()


def filter_native_logs_now() -> None:
    """For commands that load TensorFlow in child processes (the validator's worker)."""
    if _FILTER.armed:
        _FILTER.start()


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C so `finally` blocks remove partial output."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _termination_unwinds() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception for the duration of a command (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _printable(text: object) -> str:
    """A message with names that were not valid UTF-8 (or control characters) escaped."""
    from .render import escape

    return escape(text)


def run(group: click.Group, argv: Sequence[str] | None, prog: str, filter_native_logs: bool = False) -> int:
    # Where a command does load TensorFlow (SavedModel output, config translation, validation),
    # its C++ start-up chatter would bury ckit's one-line results; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = list(sys.argv[1:] if argv is None else argv)
    # --debug and --follow-links are ckit's, not a command's: accepted anywhere on the line.
    debug = "--debug" in args
    if "--follow-links" in args:
        from . import links

        links.FOLLOW = True
    args = [a for a in args if a not in ("--debug", "--follow-links")]
    with _termination_unwinds():
        if filter_native_logs and not debug:
            with native_logs_filtered(lazy=True):
                return _run(group, args, prog, debug)
        return _run(group, args, prog, debug)


def _run(group: click.Group, args: list[str], prog: str, debug: bool) -> int:
    try:
        result = group.main(args=args, prog_name=prog, standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # click turns Ctrl-C into Abort; either way the conversion's `finally` has cleaned up.
        click.echo(f"{prog}: interrupted; nothing was written", err=True)
        return 130
    except Terminated as exc:
        click.echo(f"{prog}: terminated by signal {exc.signum}; nothing was written", err=True)
        return 128 + exc.signum
    except click.UsageError as exc:
        command = f" {exc.ctx.command_path.split(' ', 1)[1]}" if exc.ctx and " " in exc.ctx.command_path else ""
        click.echo(f"{prog}: error: {exc.format_message()} (see '{prog}{command} --help')", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except CkitError as exc:
        if debug:
            raise
        click.echo(f"{prog}: error: {_printable(exc)}", err=True)
        return 1
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(_printable(f"{prog}: error: {where}{exc.strerror or exc}"), err=True)
        return 1
    except Exception as exc:  # a bug in ckit: still one line, unless --debug
        if debug:
            raise
        click.echo(
            f"{prog}: internal error: {type(exc).__name__}: {_printable(exc)} (rerun with --debug for the traceback "
            "and report it)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


# Below this many bytes a run is over before a progress bar would help.
PROGRESS_MIN_BYTES = 64 << 20


def progress_for(total: int, stream=None):
    """A callback `advance(nbytes)` drawing a progress bar on stderr, or None.

    Only on a terminal, and only for artifacts large enough to take a while: redirected
    output and small files get no bar and no escape codes.
    """
    stream = stream if stream is not None else sys.stderr
    if total < PROGRESS_MIN_BYTES or not getattr(stream, "isatty", lambda: False)():
        return None
    done = [0, -1]

    def advance(nbytes: int) -> None:
        done[0] += nbytes
        percent = min(100, done[0] * 100 // max(total, 1))
        if percent != done[1]:
            done[1] = percent
            filled = percent * 30 // 100
            stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%")
            if percent >= 100:
                stream.write("\r" + " " * 40 + "\r")
            stream.flush()

    return advance
