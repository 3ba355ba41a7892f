"""`cra-fw scan IMAGE -o OUTDIR` and `cra-fw unpack IMAGE -o OUTDIR`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from cra_fw.cli.common import echo, parse_size
from cra_fw.cli.evidence import check_gate_values, finish_scan, gate_options
from cra_fw.context import Limits, ScanOptions
from cra_fw.exitcodes import EXIT_NOT_ANALYSED, EXIT_OK
from cra_fw.gate import not_analysed
from cra_fw.records import ScanReport

_UNPACK_OPTIONS = [
    click.argument("image", type=click.Path(path_type=Path)),
    click.option(
        "-o",
        "--output",
        "outdir",
        type=click.Path(path_type=Path),
        default=None,
        help="Output folder (default: ./cra-fw-out/<image name>).",
    ),
    click.option(
        "--extractor",
        type=click.Choice(["unblob", "binwalk"]),
        default="unblob",
        show_default=True,
        help="Extraction backend.",
    ),
    click.option(
        "--force",
        is_flag=True,
        help="OUTDIR holds an earlier scan: remove cra-fw's own files from it first (others stay).",
    ),
    click.option("--keep-extracted", is_flag=True, help="Keep the unpacked tree in OUTDIR/extracted."),
    click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout instead of a summary."),
    click.option(
        "--workers", type=click.IntRange(1, 64), default=None, help="Parallel workers (default: CPUs)."
    ),
    click.option("--max-bytes", default="8G", show_default=True, help="Limit on total extracted bytes."),
    click.option(
        "--max-ratio",
        type=float,
        default=200.0,
        show_default=True,
        help="Limit on extracted/input size for one extraction.",
    ),
    click.option(
        "--max-depth", type=click.IntRange(1, 64), default=8, show_default=True, help="Nesting limit."
    ),
    click.option(
        "--max-files",
        type=click.IntRange(1),
        default=200_000,
        show_default=True,
        help="Limit on the number of extracted files.",
    ),
    click.option(
        "--extractor-timeout",
        type=click.FloatRange(min=1),
        default=300.0,
        show_default=True,
        help="Seconds one extractor run may take.",
    ),
    click.option(
        "--timeout",
        "scan_timeout",
        type=click.FloatRange(min=0),
        default=0,
        help="Seconds the whole scan may take (default: no limit); what it stops is a finding.",
    ),
    click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr."),
]


def _with(options: list) -> Callable:
    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _options(params: dict, analyse: bool) -> ScanOptions:
    db = params.get("db")
    limits = Limits(
        max_total_bytes=parse_size(params["max_bytes"]),
        max_ratio=params["max_ratio"],
        max_depth=params["max_depth"],
        max_files=params["max_files"],
        extractor_timeout=params["extractor_timeout"],
        scan_timeout=params["scan_timeout"],
    )
    extra = {"workers": params["workers"]} if params.get("workers") else {}
    return ScanOptions(
        extractor=params["extractor"],
        limits=limits,
        keep_extracted=params["keep_extracted"],
        show_secrets=params.get("show_secrets", False),
        redact=params.get("redact", False),
        trust=tuple(params.get("trust", ())),
        progress=not params["quiet"],
        analyse=analyse,
        policy=params.get("policy"),
        db_path=Path(db) if db else None,
        replace_outputs=params["force"],
        **extra,
    )


def _run(params: dict, analyse: bool) -> ScanReport:
    from cra_fw.pipeline import scan as run_scan
    from cra_fw.report.terminal import summary, use_colour

    image: Path = params["image"]
    outdir = params["outdir"] or Path("cra-fw-out") / image.name
    quiet = params["quiet"]

    def progress(message: str) -> None:
        if not quiet:
            echo(message, err=True)

    report = run_scan(image, outdir, _options(params, analyse), progress)
    if params["as_json"]:
        sys.stdout.write((Path(outdir) / "report.json").read_text())
    else:
        echo(summary(report, colour=use_colour(sys.stdout), outdir=Path(outdir)))
    for error in report.errors:
        echo(f"cra-fw: {error}", err=True)
    return report


def _exit_for(report: ScanReport) -> None:
    sys.exit(EXIT_NOT_ANALYSED if not_analysed(report) else EXIT_OK)


@click.command()
@_with(_UNPACK_OPTIONS)
@click.option("--show-secrets", is_flag=True, help="Show secrets found in the image instead of fingerprints.")
@click.option("--redact", is_flag=True, help="Hide recovered passwords in findings.")
@click.option(
    "--trust",
    "trust",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Trust anchor for update bundles found in the image (repeatable).",
)
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Policy file (YAML/TOML): fail-on default and suppressions with reason and expiry.",
)
@click.option(
    "--db",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CRA_FW_DB",
    help="Vulnerability/ledger database (default: $CRA_FW_DB or ~/.local/share/cra-fw/cra-fw.db).",
)
@click.option(
    "--csaf", "csaf", is_flag=True, help="Also write OUTDIR/vex.csaf.json (CSAF 2.0, profile csaf_vex)."
)
@click.option(
    "--build-sbom",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The build's SBOM (CycloneDX/SPDX): report what it declares that the image lacks, and the reverse.",
)
@click.option(
    "--cve-check",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Yocto cve-check JSON: CVEs the build reports Patched (resolved) or Ignored (not affected).",
)
@click.option("--csaf-publisher", default="", help="Publisher name in the CSAF document (e.g. your company).")
@click.option("--csaf-namespace", default="", help="Publisher namespace URL in the CSAF document.")
@gate_options
def scan(**params: object) -> None:
    """Unpack IMAGE and analyse it; write OUTDIR/report.json and the other outputs."""
    from cra_fw.checks.policy import load_policy

    fail_on_vuln = check_gate_values(params["fail_on_vuln"])
    fail_on = params["fail_on"]
    if fail_on is None and params.get("policy"):
        fail_on = load_policy(params["policy"]).fail_on
    report = _run(params, analyse=True)
    outdir = params["outdir"] or Path("cra-fw-out") / params["image"].name
    if params["build_sbom"] or params["cve_check"] or params["csaf"]:
        from cra_fw.pipeline import write_outputs

        if params["build_sbom"] or params["cve_check"]:
            from cra_fw.vulns.sbommatch import amend_report, write_build_diff

            diff = amend_report(report, params["build_sbom"], params["cve_check"])  # errors: the CLI guard
            if diff is not None:
                echo(write_build_diff(diff, Path(outdir), Path(params["build_sbom"])), err=True)
        if params["csaf"]:
            from cra_fw.vulns.csaf import write as write_csaf

            write_csaf(report, Path(outdir), str(params["csaf_publisher"]), str(params["csaf_namespace"]))
        # again, so report.json carries the amended matches and lists these outputs with their hashes
        write_outputs(report, Path(outdir))
    sys.exit(
        finish_scan(
            report,
            Path(outdir),
            fail_on=fail_on,
            fail_on_vuln=fail_on_vuln,
            junit=params["junit"],
            pack=params["pack"],
            db_path=_options(params, True).db_path,
        )
    )


@click.command()
@_with(_UNPACK_OPTIONS)
def unpack(**params: object) -> None:
    """Unpack IMAGE and inventory its files only; write OUTDIR/report.json."""
    _exit_for(_run(params, analyse=False))
