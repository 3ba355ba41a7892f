"""The only module that wires the stages together.

image -> unpack -> inventory -> (identify -> vulns), checks, bundles -> writers.
A stage that fails on this image is recorded as a finding and an error line;
the scan goes on with what the others found.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cra_fw import __version__
from cra_fw.context import ScanContext, ScanOptions
from cra_fw.errors import CraFwError, InputError
from cra_fw.inventory import build_inventory
from cra_fw.records import Finding, ImageInfo, LayerStatus, Location, ScanReport, Severity, ToolInfo
from cra_fw.report import jsonout
from cra_fw.unpack import unpack_image

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class StageSpec:
    """An analysis stage after inventory: ``module:function`` taking a ScanContext."""

    name: str
    target: str


# Order matters only where a stage reads another's output (vulns reads components).
ANALYSIS_STAGES: tuple[StageSpec, ...] = (
    StageSpec("identify", "cra_fw.identify:run"),
    StageSpec("checks", "cra_fw.checks:run"),
    StageSpec("bundles", "cra_fw.bundles:scan_embedded"),
)
VULN_STAGE = StageSpec("vulns", "cra_fw.vulns:run")
WRITERS: tuple[StageSpec, ...] = (
    StageSpec("cyclonedx", "cra_fw.report.cyclonedx:write"),
    StageSpec("spdx", "cra_fw.report.spdx:write"),
    StageSpec("sarif", "cra_fw.report.sarif:write"),
    StageSpec("vex", "cra_fw.vulns.vex:write"),
    StageSpec("html", "cra_fw.report.html:write"),
)


def _load(target: str) -> Callable | None:
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, func_name, None)


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
    from cra_fw.checks.policy import apply_to_report

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
    for spec in ANALYSIS_STAGES:
        func = _load(spec.target)
        if func is None:
            continue
        start = time.monotonic()
        say(f"{spec.name}...")
        try:
            result = func(ctx)
        except (CraFwError, Exception) as exc:  # noqa: BLE001 - a stage bug must not lose the scan
            _stage_failed(report, spec.name, exc)
            continue
        timings[spec.name] = time.monotonic() - start
        _merge(report, result)
        if spec.name == "identify":
            vuln = _load(VULN_STAGE.target)
            if vuln is not None and report.components:
                start = time.monotonic()
                try:
                    _merge(report, vuln(list(report.components), ctx))
                except (CraFwError, Exception) as exc:  # noqa: BLE001
                    _stage_failed(report, "vulns", exc)
                timings["vulns"] = time.monotonic() - start


_FIELD_MAP = {
    "components": "components",
    "dependencies": "dependencies",
    "findings": "findings",
    "matches": "vulnerabilities",
    "services": "services",
    "hardening": "hardening",
    "verdicts": "bundles",
    "hardening_summary": "hardening_summary",
}


def _merge(report: ScanReport, result: object) -> None:
    """Append a stage result's record lists to the report by field name."""
    if result is None:
        return
    for attr, target in _FIELD_MAP.items():
        values = getattr(result, attr, None)
        if values:
            getattr(report, target).extend(values)


def write_outputs(report: ScanReport, outdir: Path, say: ProgressFn | None = None) -> list[Path]:
    """report.json, then every writer that is installed."""
    written = [write_report_json(report, outdir)]
    for spec in WRITERS:
        func = _load(spec.target)
        if func is None:
            continue
        try:
            out = func(report, outdir)
        except (CraFwError, Exception) as exc:  # noqa: BLE001 - one writer must not lose the others
            report.errors.append(f"{spec.name} writer failed: {type(exc).__name__}: {exc}"[:300])
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
