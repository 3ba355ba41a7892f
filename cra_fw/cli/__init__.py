"""The `cra-fw` command group.  Each sub-command lives in its own module and
only parses options, calls the library and maps the outcome to an exit status."""

from __future__ import annotations

import click

from cra_fw import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cra-fw")
def main() -> None:
    """Firmware compliance analyzer for the EU Cyber Resilience Act."""


def _register() -> None:
    # One line per command module; keep this list the only switch.
    from cra_fw.cli.scan import scan

    main.add_command(scan)


_register()
