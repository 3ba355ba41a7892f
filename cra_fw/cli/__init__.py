"""The `cra-fw` command group.  Each sub-command lives in its own module and
only parses options, calls the library and maps the outcome to an exit status."""

from __future__ import annotations

import os
import sys

import click

from cra_fw import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cra-fw")
def main() -> None:
    """Firmware compliance analyzer for the EU Cyber Resilience Act."""


def _tools_on_path() -> None:
    # extractor helpers (jefferson, ubireader_*) are installed beside this interpreter:
    # make them reachable when the venv is used without being activated
    bindir = os.path.dirname(sys.executable)
    if bindir and bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _register() -> None:
    # One line per command module; keep this list the only switch.
    from cra_fw.cli.scan import scan, unpack

    main.add_command(scan)
    main.add_command(unpack)
    from cra_fw.cli.db import db

    main.add_command(db)
    from cra_fw.cli.triage import triage

    main.add_command(triage)
    from cra_fw.cli.verify import verify

    main.add_command(verify)
    from cra_fw.cli.ledger import COMMANDS as ledger_commands

    for command in ledger_commands:
        main.add_command(command)
    from cra_fw.cli.evidence import pack, sign, verify_evidence_cmd

    for command in (sign, verify_evidence_cmd, pack):
        main.add_command(command)
    from cra_fw.cli.sbom import sbom

    main.add_command(sbom)


_tools_on_path()
_register()
