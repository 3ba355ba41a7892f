"""The only module that wires the stages together.

image -> unpack -> inventory -> (identify -> vulns), checks, bundles -> writers.
A stage that fails on this image is recorded as a finding and an error line;
the scan goes on with what the others found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cra_fw import __version__, bundles, checks, identify, jsonout, vulns
from cra_fw.checks.policy import apply_to_report
from cra_fw.context import ScanContext, ScanOptions
from cra_fw.errors import InputError
from cra_fw.inventory import build_inventory
from cra_fw.records import Finding, ImageInfo, LayerStatus, Location, ScanReport, Severity, ToolInfo
from cra_fw.report import cyclonedx, html, sarif, spdx
from cra_fw.unpack import unpack_image
from cra_fw.vulns import vex

ProgressFn = Callable[[str], None]
Writer = Callable[[ScanReport, Path], "Path | None"]


def _identify(report: ScanReport, ctx: ScanContext) -> None:
    result = identify.run(ctx)
    report.components.extend(result.components)
    report.dependencies.extend(result.dependencies)
    report.findings.extend(result.findings)


def _vulns(report: ScanReport, ctx: ScanContext) -> None:
    result = vulns.run(list(report.components), ctx)
    report.vulnerabilities.extend(result.matches)
    report.findings.extend(result.findings)


def _checks(report: ScanReport, ctx: ScanContext) -> None:
    result = checks.run(ctx)
    report.findings.extend(result.findings)
    report.services.extend(result.services)
    report.hardening.extend(result.hardening)
    report.hardening_summary.extend(result.hardening_summary)


def _bundles(report: ScanReport, ctx: ScanContext) -> None:
    result = bundles.scan_embedded(ctx)
    report.bundles.extend(result.verdicts)
    report.findings.extend(result.findings)


# The analysis stages after inventory, in order (vulns reads identify's components).
ANALYSIS_STAGES: tuple[tuple[str, Callable[[ScanReport, ScanContext], None]], ...] = (
    ("identify", _identify),
    ("vulns", _vulns),
    ("checks", _checks),
    ("bundles", _bundles),
)
# The writers after report.json, in order.
WRITERS: tuple[tuple[str, Writer], ...] = (
    ("cyclonedx", cyclonedx.write),
    ("spdx", spdx.write),
    ("sarif", sarif.write),
    ("vex", vex.write),
    ("html", html.write),
)


def image_info(path: Path) -> ImageInfo:
    """Size and hashes of the image, in one pass over its bytes."""
    sha256, sha512, md5 = hashlib.sha256(), hashlib.sha512(), hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                size += len(block)
                sha256.update(block)
                sha512.update(block)
                md5.update(block)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    return ImageInfo(
        name=path.name,
        size=size,
        sha256=sha256.hexdigest(),
        sha512=sha512.hexdigest(),
        md5=md5.hexdigest(),
        path=str(path),
    )


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def scan(
    image: Path, outdir: Path, options: ScanOptions | None = None, progress: ProgressFn | None = None
) -> ScanReport:
    """Scan one image; write report.json (and the other outputs) into ``outdir``."""
    options = options or ScanOptions()
    say = progress or (lambda _m: None)
    image = Path(image)
    if not image.exists():
        raise InputError(f"{image}: no such file")
    if not image.is_file():
        raise InputError(f"{image}: not a regular file; give the firmware image file")
    outdir = Path(outdir).resolve()
    image = image.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    report = ScanReport(
        image=image_info(image),
        tool=ToolInfo("cra-fw", __version__),
        started=_now(),
        extractor=options.extractor,
    )
    if options.keep_extracted:
        workspace = outdir / "extracted"
        if workspace.exists():
            shutil.rmtree(workspace)
    else:
        workspace = Path(tempfile.mkdtemp(prefix=".work-", dir=outdir))
    report.workspace = workspace
    timings: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        if report.image.size == 0:
            report.findings.append(
                Finding(
                    rule_id="unpack.empty-input",
                    category="unpack",
                    severity=Severity.MEDIUM,
                    title="The image is empty (zero bytes)",
                    cra_reference=("Annex I Part II 1",),
                    location=Location(layer_chain=("L0:raw",), path=image.name),
                    remediation="Check the download or build step that produced this file.",
                )
            )
            report.errors.append(f"{image.name} is empty: nothing to analyse")
        else:
            unpacked = unpack_image(image, workspace, options, report.image.sha256, say)
            report.layers.extend(unpacked.layers)
            report.findings.extend(unpacked.findings)
            report.stats["sandboxed"] = 1.0 if unpacked.sandboxed else 0.0
            report.stats["extracted_bytes"] = float(unpacked.extracted_bytes)
            timings["unpack"] = time.monotonic() - t0
            if not any(la.status == LayerStatus.EXTRACTED for la in report.layers[1:]) and not any(
                la.status in (LayerStatus.IDENTIFIED, LayerStatus.UNSUPPORTED, LayerStatus.FAILED)
                and la.format not in ("padding",)
                for la in report.layers[1:]
            ):
                report.errors.append(
                    f"no known format found in {image.name}: not a firmware image, encrypted, or truncated"
                )
            t1 = time.monotonic()
            inventory = build_inventory(report.layers, unpacked.specials, options, say)
            report.files.extend(inventory.files)
            report.findings.extend(inventory.findings)
            timings["inventory"] = time.monotonic() - t1
            ctx = ScanContext(
                image=report.image,
                layers=report.layers,
                files=report.files,
                options=options,
                workspace=workspace,
            )
            if options.analyse:
                _run_analysis(report, ctx, timings, say)
                _apply_policy(report, options, say)
    finally:
        report.finished = _now()
        report.stats.update({f"seconds_{k}": round(v, 3) for k, v in timings.items()})
        if options.analyse:
            write_outputs(report, outdir, say)
        else:
            write_report_json(report, outdir)
        if not options.keep_extracted:
            shutil.rmtree(workspace, ignore_errors=True)
    return report


def _apply_policy(report: ScanReport, options: ScanOptions, say: ProgressFn) -> None:
    """Mark suppressed findings (kept, never deleted) before any writer runs."""
    if options.policy is None:
        return
    _policy, expired = apply_to_report(report, options.policy)
    for item in expired:
        say(f"policy: suppression expired, no longer applied: {item}")


def _stage_failed(report: ScanReport, name: str, exc: BaseException) -> None:
    message = f"{name} stage failed: {type(exc).__name__}: {exc}"[:500]
    report.errors.append(message)
    report.findings.append(
        Finding(
            rule_id=f"{name}.stage-failed",
            category=name,
            severity=Severity.INFO,
            title=f"The {name} analysis could not complete on this image",
            cra_reference=(),
            evidence=message,
            remediation="Report this as a cra-fw bug with the image if you can share it.",
        )
    )


def _run_analysis(report: ScanReport, ctx: ScanContext, timings: dict[str, float], say: ProgressFn) -> None:
    """Each stage in turn; ``seconds_<stage>`` is recorded for each that ran to the end."""
    for name, stage in ANALYSIS_STAGES:
        if name == "vulns" and not report.components:
            continue  # nothing to match (or identify failed, which is reported already)
        start = time.monotonic()
        say(f"{name}...")
        try:
            stage(report, ctx)
        except Exception as exc:  # noqa: BLE001 - a stage bug must not lose the scan
            _stage_failed(report, name, exc)
            continue
        timings[name] = time.monotonic() - start


def write_outputs(report: ScanReport, outdir: Path, say: ProgressFn | None = None) -> list[Path]:
    """report.json, then every writer."""
    written = [write_report_json(report, outdir)]
    for name, write in WRITERS:
        try:
            out = write(report, outdir)
        except Exception as exc:  # noqa: BLE001 - one writer must not lose the others
            report.errors.append(f"{name} writer failed: {type(exc).__name__}: {exc}"[:300])
            continue
        if out:
            written.append(Path(out))
    if report.errors:  # writers may have added errors: keep report.json complete
        write_report_json(report, outdir)
    return written


def write_report_json(report: ScanReport, outdir: Path) -> Path:
    path = outdir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(jsonout.dumps(report))
    os.replace(tmp, path)
    return path
