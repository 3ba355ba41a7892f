"""The `cra-fw` command group.  Each sub-command lives in its own module and
only parses options, calls the library and maps the outcome to an exit status."""

from __future__ import annotations

import importlib
import os
import sys

import click

from cra_fw import __version__
from cra_fw.cli.common import GuardedGroup

# Command name -> "module:attribute".  Modules are imported only when their command
# runs, so `cra-fw scan` does not pay for the ledger's or the verifier's imports.
# Adding a command is adding one line here.
COMMANDS: dict[str, str] = {
    "scan": "cra_fw.cli.scan:scan",
    "unpack": "cra_fw.cli.scan:unpack",
    "db": "cra_fw.cli.db:db",
    "triage": "cra_fw.cli.triage:triage",
    "verify": "cra_fw.cli.verify:verify",
    "product": "cra_fw.cli.ledger:product",
    "release": "cra_fw.cli.ledger:release",
    "support": "cra_fw.cli.ledger:support",
    "monitor": "cra_fw.cli.ledger:monitor",
    "cases": "cra_fw.cli.ledger:cases",
    "case": "cra_fw.cli.ledger:case",
    "diff": "cra_fw.cli.ledger:diff",
    "export": "cra_fw.cli.ledger:export_cmd",
    "import": "cra_fw.cli.ledger:import_cmd",
    "sign": "cra_fw.cli.evidence:sign",
    "verify-evidence": "cra_fw.cli.evidence:verify_evidence_cmd",
    "pack": "cra_fw.cli.evidence:pack",
    "sbom": "cra_fw.cli.sbom:sbom",
    "dtrack": "cra_fw.cli.dtrack:dtrack",
    "serve": "cra_fw.cli.serve:serve",
    "batch": "cra_fw.cli.batch:batch",
}


class LazyGroup(GuardedGroup):
    """A click group whose sub-commands are imported on first use, each run inside the error guard."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        self.add_command(command, cmd_name)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cra-fw")
def main() -> None:
    """Firmware compliance analyzer for the EU Cyber Resilience Act."""


def _tools_on_path() -> None:
    # extractor helpers (jefferson, ubireader_*) are installed beside this interpreter:
    # make them reachable when the venv is used without being activated
    bindir = os.path.dirname(sys.executable)
    if bindir and bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


_tools_on_path()
