"""What ckit's command-line tools share: error reporting and exit codes.

Results go to stdout, diagnostics to stderr.  Exit 0 on success, 1 when the
operation failed (bad artifact, failed check), 2 for usage errors (click's
convention).  A CkitError prints as one line; anything else prints one line
too unless --debug asks for the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import click

from .errors import CkitError


def run(group: click.Group, argv: Sequence[str] | None, prog: str) -> int:
    # Where a command does load TensorFlow (SavedModel output, config translation, validation),
    # its C++ start-up chatter would bury ckit's one-line results; a user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
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
