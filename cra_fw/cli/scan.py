"""`cra-fw scan IMAGE -o OUTDIR`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cra_fw.cli.common import EXIT_NOT_ANALYSED, EXIT_OK, fail, parse_size
from cra_fw.context import Limits, ScanOptions
from cra_fw.errors import CraFwError


@click.command()
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", "outdir", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: ./cra-fw-out/<image name>).")
@click.option("--extractor", type=click.Choice(["unblob", "binwalk"]), default="unblob", show_default=True,
              help="Extraction backend.")
@click.option("--keep-extracted", is_flag=True, help="Keep the unpacked tree in OUTDIR/extracted.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout instead of a summary.")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Parallel workers (default: CPUs).")
@click.option("--max-bytes", default="8G", show_default=True, help="Limit on total extracted bytes.")
@click.option("--max-ratio", type=float, default=200.0, show_default=True,
              help="Limit on extracted/input size for one extraction.")
@click.option("--max-depth", type=click.IntRange(1, 64), default=8, show_default=True, help="Nesting limit.")
@click.option("--max-files", type=click.IntRange(1), default=200_000, show_default=True,
              help="Limit on the number of extracted files.")
@click.option("--extractor-timeout", type=float, default=300.0, show_default=True,
              help="Seconds one extractor run may take.")
@click.option("--show-secrets", is_flag=True, help="Show secrets found in the image instead of fingerprints.")
@click.option("--redact", is_flag=True, help="Hide recovered passwords in findings.")
@click.option("--trust", "trust", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Trust anchor for update bundles found in the image (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
def scan(image: Path, outdir: Path | None, extractor: str, keep_extracted: bool, as_json: bool,
         workers: int | None, max_bytes: str, max_ratio: float, max_depth: int, max_files: int,
         extractor_timeout: float, show_secrets: bool, redact: bool, trust: tuple[Path, ...],
         quiet: bool) -> None:
    """Unpack IMAGE and analyse it; write OUTDIR/report.json and the other outputs."""
    from cra_fw.pipeline import scan as run_scan
    from cra_fw.report.text import summary

    outdir = outdir or Path("cra-fw-out") / image.name
    limits = Limits(max_total_bytes=parse_size(max_bytes), max_ratio=max_ratio, max_depth=max_depth,
                    max_files=max_files, extractor_timeout=extractor_timeout)
    kwargs = {"workers": workers} if workers else {}
    options = ScanOptions(extractor=extractor, limits=limits, keep_extracted=keep_extracted,
                          show_secrets=show_secrets, redact=redact, trust=trust, progress=not quiet, **kwargs)

    def progress(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    try:
        report = run_scan(image, outdir, options, progress)
    except CraFwError as exc:
        fail(str(exc))
    if as_json:
        sys.stdout.write((outdir / "report.json").read_text())
    else:
        click.echo(summary(report, outdir))
    for error in report.errors:
        click.echo(f"cra-fw: {error}", err=True)
    if report.errors and not report.files:
        sys.exit(EXIT_NOT_ANALYSED)
    sys.exit(EXIT_OK)
