"""`cra-fw sbom check FILE` and `cra-fw sbom diff A B`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cra_fw.cli.common import echo


@click.group("sbom")
def sbom() -> None:
    """Check an SBOM against NTIA / BSI TR-03183-2, or compare two SBOMs."""


@sbom.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check_cmd(file: Path, as_json: bool) -> None:
    """List the NTIA minimum elements and BSI TR-03183-2 fields FILE lacks, per component.

    Exit status: 0 complete, 1 fields missing, 2 unreadable input."""
    from cra_fw.sbomcheck import check, load

    result = check(load(file))
    if as_json:
        echo(
            json.dumps(
                {
                    "format": result.doc.format,
                    "components": len(result.doc.components),
                    "ok": result.ok,
                    "missing": [m.__dict__ for m in result.missing],
                },
                indent=2,
            )
        )
    else:
        echo(f"{file}: {result.doc.format}, {len(result.doc.components)} components")
        doc_missing = result.missing_for("")
        for m in doc_missing:
            echo(f"  document: missing {m.field} ({m.standard})")
        by_comp: dict[str, list] = {}
        for m in result.missing:
            if m.component:
                by_comp.setdefault(m.component, []).append(m)
        for comp, items in sorted(by_comp.items()):
            echo(f"  {comp}: missing " + "; ".join(f"{m.field} ({m.standard})" for m in items))
        echo(
            "complete: no required field missing"
            if result.ok
            else f"incomplete: {len(result.missing)} missing field(s)"
        )
    sys.exit(0 if result.ok else 1)


@sbom.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def diff_cmd(old: Path, new: Path, as_json: bool) -> None:
    """Components added, removed or changed in version from OLD to NEW (CycloneDX or SPDX JSON).

    Exit status: 0 identical component sets, 1 differences, 2 unreadable input."""
    from cra_fw.sbomcheck import diff, load

    d = diff(load(old), load(new))
    if as_json:
        echo(
            json.dumps(
                {
                    "added": [list(x) for x in d.added],
                    "removed": [list(x) for x in d.removed],
                    "changed": [list(x) for x in d.changed],
                },
                indent=2,
            )
        )
    else:
        for name, v in d.added:
            echo(f"+ {name} {v}")
        for name, v in d.removed:
            echo(f"- {name} {v}")
        for name, a, b in d.changed:
            echo(f"~ {name} {a} -> {b}")
        if not (d.added or d.removed or d.changed):
            echo("no component changes")
    sys.exit(1 if (d.added or d.removed or d.changed) else 0)
