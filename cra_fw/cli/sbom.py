"""`cra-fw sbom check FILE`, `cra-fw sbom diff A B` and `cra-fw sbom match FILE`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from cra_fw.cli.common import echo
from cra_fw.cli.evidence import gate_options


@click.group("sbom")
def sbom() -> None:
    """Check an SBOM against NTIA / BSI TR-03183-2, compare two SBOMs, or match one against the
    vulnerability database."""


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


@sbom.command("match")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: ./cra-fw-out/<SBOM name>).",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CRA_FW_DB",
    help="Vulnerability database (default: $CRA_FW_DB or ~/.local/share/cra-fw/cra-fw.db).",
)
@click.option(
    "--cve-check",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Yocto cve-check JSON: CVEs the build reports Patched (resolved) or Ignored (not affected).",
)
@click.option("--csaf", is_flag=True, help="Also write OUTDIR/vex.csaf.json (CSAF 2.0 VEX).")
@click.option(
    "--force", is_flag=True, help="Replace an earlier run's outputs in OUTDIR (cra-fw's own files only)."
)
@click.option(
    "--max-age", "max_age", type=int, default=7, show_default=True, help="Days after which a feed is stale."
)
@gate_options
def match_cmd(
    file: Path,
    outdir: Path | None,
    db_path: Path | None,
    cve_check: Path | None,
    csaf: bool,
    force: bool,
    max_age: int,
    fail_on: str | None,
    fail_on_vuln: tuple[str, ...],
    junit: Path | None,
    pack: bool,
) -> None:
    """Match the components of SBOM FILE (CycloneDX or SPDX JSON: Yocto create-spdx, Syft, cra-fw)
    against the vulnerability database; write report.json, vex.cdx.json and the gate as a scan does.

    Exit status: as `cra-fw scan` (0 pass, 1 gate failed, 2 unreadable input)."""
    from cra_fw.cli.evidence import check_gate_values, finish_scan
    from cra_fw.vulns.sbommatch import sbom_report

    gates = check_gate_values(fail_on_vuln)
    outdir = outdir or Path("cra-fw-out") / file.name
    from cra_fw.pipeline import prepare_outdir, write_outputs

    report = sbom_report(file, db_path, cve_check=cve_check, max_age_days=max_age)  # errors: the CLI guard
    prepare_outdir(outdir, replace=force)
    if csaf:
        from cra_fw.vulns.csaf import write as write_csaf

        write_csaf(report, outdir)
    write_outputs(report, outdir)  # last: report.json lists every output with its hash
    open_certain = [m for m in report.vulnerabilities if m.open and not m.possible]
    echo(
        f"{file}: {len(report.components)} components, {len(open_certain)} open vulnerabilities, "
        f"{sum(1 for m in report.vulnerabilities if m.possible and m.open)} possible, "
        f"{sum(1 for m in report.vulnerabilities if not m.open)} resolved or not affected; report: {outdir / 'report.json'}"
    )
    for f in report.findings:
        if f.rule_id in ("vuln.no-database", "vuln.database-error", "vuln.feed-missing"):
            echo(f"cra-fw: {f.title}", err=True)
    sys.exit(
        finish_scan(
            report, outdir, fail_on=fail_on, fail_on_vuln=gates, junit=junit, pack=pack, db_path=db_path
        )
    )
