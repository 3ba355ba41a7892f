"""Exit statuses and helpers shared by the commands."""

from __future__ import annotations

import re
import sys
from typing import NoReturn

import click

EXIT_OK = 0
EXIT_GATE = 1  # a --fail-on / --fail-on-vuln gate failed
EXIT_USAGE = 2  # bad options or an input that cannot be read (click uses 2 too)
EXIT_NOT_ANALYSED = 3  # the image was read but nothing in it could be analysed

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """'8G', '512M', '1000' -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text, re.IGNORECASE)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size like 512M or 8G")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def fail(message: str, status: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr, no traceback, then exit."""
    click.echo(f"cra-fw: error: {message}", err=True)
    sys.exit(status)
