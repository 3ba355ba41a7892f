"""`cra-fw dtrack upload`: send the scan's CycloneDX SBOM and VEX to Dependency-Track."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from cra_fw.cli.common import echo, fail
from cra_fw.exitcodes import EXIT_GATE, EXIT_OK


@click.group("dtrack")
def dtrack() -> None:
    """OWASP Dependency-Track hand-off."""


@dtrack.command("upload")
@click.argument("outdir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--url", required=True, help="Dependency-Track base URL, e.g. https://dtrack.example.com.")
@click.option(
    "--api-key-env",
    metavar="VAR",
    required=True,
    help="Environment variable holding the API key (never pass a key on the command line).",
)
@click.option("--project", "name", default="", help="Project name (with --version).")
@click.option("--version", "version", default="", help="Project version (with --project).")
@click.option("--project-uuid", default="", help="Project UUID instead of --project/--version.")
@click.option(
    "--parent",
    default="",
    metavar="NAME[@VERSION]|UUID",
    help="Parent project for --auto-create: a UUID, or a name with an optional @version.",
)
@click.option("--auto-create", is_flag=True, help="Create the project when it does not exist.")
@click.option("--no-vex", is_flag=True, help="Upload the SBOM only, not OUTDIR/vex.cdx.json.")
@click.option("--wait", is_flag=True, help="Wait until Dependency-Track has processed the uploads.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for processing.")
def upload_cmd(
    outdir: Path,
    url: str,
    api_key_env: str,
    name: str,
    version: str,
    project_uuid: str,
    parent: str,
    auto_create: bool,
    no_vex: bool,
    wait: bool,
    timeout: float,
) -> None:
    """Upload OUTDIR/sbom.cdx.json (and vex.cdx.json) from `cra-fw scan -o OUTDIR`.

    Exit status: 0 uploaded (and processed, with --wait); 1 the server refused or
    could not be reached; 2 usage error.
    """
    from cra_fw.dtrack import Client, DTrackError, Project, upload

    key = os.environ.get(api_key_env)
    if not key:
        fail(f"--api-key-env {api_key_env}: that environment variable is not set or empty")
    if not project_uuid and not (name and version):
        fail("give --project NAME and --version V, or --project-uuid UUID")
    if auto_create and project_uuid:
        fail("--auto-create needs --project and --version (a UUID names an existing project)")
    parent_name, _, parent_version = parent.partition("@")
    is_uuid = _is_uuid(parent)
    project = Project(
        name=name,
        version=version,
        uuid=project_uuid,
        parent_uuid=parent if is_uuid else "",
        parent_name="" if is_uuid else parent_name,
        parent_version="" if is_uuid else parent_version,
        auto_create=auto_create,
    )
    try:
        client = Client(url, key)
        result = upload(outdir, client, project, vex=not no_vex, wait=wait, timeout=timeout, log=echo)
    except DTrackError as exc:  # the server refused or failed: exit 1, as a failed check
        fail(str(exc), EXIT_GATE)
    if not result.vex_token and not no_vex:
        echo(f"note: no {outdir}/vex.cdx.json: only the SBOM was uploaded")
    sys.exit(EXIT_OK)


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
