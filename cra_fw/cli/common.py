"""What every command shares: the one error guard, the one terminal writer, size parsing.

Every line a command prints goes through :func:`echo`, which passes it through the
terminal sanitiser (:func:`cra_fw.report.terminal.safe`): strings from an image or a
bundle (file names, member names, signer names) cannot drive the terminal.  Every
error leaves through :func:`fail`: one line, exit status 2 (or the one given), never a
traceback; :class:`GuardedGroup` turns whatever a command raises into such a line.
"""

from __future__ import annotations

import errno
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from cra_fw.errors import CraFwError
from cra_fw.exitcodes import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE
from cra_fw.report.terminal import safe

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def path_option(name: str, help: str, *, multiple: bool = False, required: bool = False) -> Any:
    """A ``--name PATH`` option (``pathlib.Path``); ``multiple`` makes it repeatable (a tuple)."""
    return click.option(
        name,
        multiple=multiple,
        required=required,
        default=() if multiple else None,
        type=click.Path(path_type=Path),
        help=help,
    )


def parse_size(text: str) -> int:
    """'8G', '512M', '1000' -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text, re.IGNORECASE)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size like 512M or 8G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def echo(message: object = "", err: bool = False, nl: bool = True) -> None:
    """Print through the terminal sanitiser (the only way commands write to the terminal)."""
    click.echo(safe(str(message)), err=err, nl=nl)


def fail(message: str, status: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr, no traceback, then exit."""
    one_line = " ".join(str(message).split()) or "failed"
    echo(f"cra-fw: error: {one_line[:2000]}", err=True)
    sys.exit(status)


def describe(exc: BaseException) -> str:
    """What went wrong, in one line a user can act on."""
    if isinstance(exc, CraFwError):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the database cannot be used ({exc}): pass --db PATH or set CRA_FW_DB to a cra-fw database"
    if isinstance(exc, OSError):
        where = exc.filename or ""
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"{where}: cannot write or read here ({exc.strerror}); choose another path"
        if isinstance(exc, IsADirectoryError):
            return f"{where}: is a folder, not a file; choose another path"
        if isinstance(exc, NotADirectoryError | FileExistsError):
            return f"{where}: exists and is not a folder; choose another path"
        if exc.errno == errno.ENOSPC:
            return f"{where}: no space left on the device"
        return f"{where}: {exc.strerror or exc}".lstrip(": ")
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to be read"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"internal error ({type(exc).__name__}: {exc}); please report it with the command line"


class GuardedGroup(click.Group):
    """A click group whose every command runs inside the one error guard."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            # the reader went away (`cra-fw ... | head`): stop quietly, as a killed pipe writer does
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)
        except Exception as exc:  # noqa: BLE001 - the guard: every error is one line, exit 2
            fail(describe(exc))
