"""`cra-fw triage`: record decisions about matched vulnerabilities (persisted, VEX in and out)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cra_fw.cli.common import echo, fail
from cra_fw.cli.db import DB_OPTION
from cra_fw.db import default_path
from cra_fw.errors import CraFwError
from cra_fw.exitcodes import EXIT_USAGE


class _TriageGroup(click.Group):
    """`cra-fw triage CVE --component ...` records a decision; `import` and `list` are sub-commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["set", *args]
        return super().parse_args(ctx, args)


@click.group("triage", cls=_TriageGroup)
def triage() -> None:
    """Record triage decisions: `cra-fw triage CVE-ID --component PURL --state not_affected ...`,
    `cra-fw triage import VEXFILE`, `cra-fw triage list`."""


@triage.command("set")
@DB_OPTION
@click.argument("advisory")
@click.option("--component", required=True, help="Component purl (or name@version) the decision is about.")
@click.option(
    "--state",
    required=True,
    type=click.Choice(
        ["not_affected", "false_positive", "exploitable", "in_triage", "resolved", "resolved_with_pedigree"]
    ),
)
@click.option(
    "--justification",
    default="",
    type=click.Choice(
        [
            "",
            "code_not_present",
            "code_not_reachable",
            "requires_configuration",
            "requires_dependency",
            "requires_environment",
            "protected_by_compiler",
            "protected_at_runtime",
            "protected_at_perimeter",
            "protected_by_mitigating_control",
        ]
    ),
)
@click.option(
    "--response",
    "responses",
    multiple=True,
    type=click.Choice(["can_not_fix", "will_not_fix", "update", "rollback", "workaround_available"]),
)
@click.option("--detail", default="", help="Free-text reasoning shown in the VEX output.")
def set_cmd(
    db_path: Path | None,
    advisory: str,
    component: str,
    state: str,
    justification: str,
    responses: tuple[str, ...],
    detail: str,
) -> None:
    """Record one decision for ADVISORY (e.g. CVE-2023-45853) on one component."""
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.triage import TriageDecision, record

    if state == "not_affected" and not justification:
        fail("--state not_affected needs --justification (e.g. code_not_present)")
    record(
        open_feed_db(db_path),
        [TriageDecision(advisory, component, state, justification, responses, detail, "cli")],
    )
    echo(f"recorded: {advisory} on {component}: {state}" + (f" ({justification})" if justification else ""))


@triage.command("import")
@DB_OPTION
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_cmd(db_path: Path | None, files: tuple[Path, ...]) -> None:
    """Import decisions from CycloneDX VEX, OpenVEX or CSAF 2.0 VEX FILES."""
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.triage import import_vex

    database = open_feed_db(db_path)
    failed = False
    for file in files:
        try:
            count = import_vex(database, file)
        except CraFwError as exc:
            echo(f"cra-fw: error: {exc}", err=True)
            failed = True
            continue
        echo(f"{file}: {count} decision(s) imported")
    if failed:
        sys.exit(EXIT_USAGE)


@triage.command("list")
@DB_OPTION
def list_cmd(db_path: Path | None) -> None:
    """List the recorded decisions."""
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.triage import list_decisions

    target = db_path or default_path()
    decisions = list_decisions(open_feed_db(target, readonly=True)) if Path(target).exists() else []
    for d in decisions:
        extra = f" ({d.justification})" if d.justification else ""
        echo(f"{d.advisory_id}\t{d.component}\t{d.state}{extra}\t{d.source}")
