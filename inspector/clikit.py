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


@contextlib.contextmanager
def native_logs_filtered() -> Iterator[None]:
    """Route file descriptor 2 through a filter that drops TensorFlow's native log lines.

    Python's own stderr (ckit's messages, tracebacks) and child processes share fd 2, so
    everything else still reaches the terminal, in order.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:  # no usable fd 2: nothing to filter
        yield
        return
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not _NATIVE_LOG.match(line):
                    os.write(saved, line)

    thread = threading.Thread(target=pump, name="ckit-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump sees EOF and ends
        thread.join(timeout=5)
        os.close(saved)


def run(group: click.Group, argv: Sequence[str] | None, prog: str, filter_native_logs: bool = False) -> int:
    # Where a command does load TensorFlow (SavedModel output, config translation, validation),
    # its C++ start-up chatter would bury ckit's one-line results; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if filter_native_logs and not debug:
        with native_logs_filtered():
            return _run(group, args, prog, debug)
    return _run(group, args, prog, debug)


def _run(group: click.Group, args: list[str], prog: str, debug: bool) -> int:
    try:
        result = group.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(f"{prog}: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except CkitError as exc:
        if debug:
            raise
        click.echo(f"{prog}: error: {exc}", err=True)
        return 1
    except OSError as exc:
        if debug:
            raise
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        click.echo(f"{prog}: error:{where}: {exc.strerror or exc}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug in ckit: still one line, unless --debug
        if debug:
            raise
        click.echo(
            f"{prog}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback "
            "and report it)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


def debug_option(function):
    return click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")(function)
