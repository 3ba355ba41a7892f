"""The command table: every entry resolves, and `scan` does not import the ledger."""

from __future__ import annotations

import subprocess
import sys

import click

from cra_fw.cli import COMMANDS, main


def test_every_command_resolves_to_a_click_command():
    for name in COMMANDS:
        cmd = main.get_command(None, name)
        assert isinstance(cmd, click.Command), name
    assert main.get_command(None, "no-such-command") is None


def test_scan_startup_does_not_import_unrelated_stages():
    code = (
        "import sys; from cra_fw.cli import main; main.get_command(None, 'scan'); "
        "mods = ('cra_fw.cli.ledger', 'cra_fw.cli.verify', 'sqlite_utils', 'cra_fw.serve', 'datasette', "
        "'dask', 'distributed', 'cra_fw.batch'); "
        "print(' '.join(m for m in mods if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
