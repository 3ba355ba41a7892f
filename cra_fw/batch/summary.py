"""One image's scan, as the portfolio counts it; never a zero for what was not assessed."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from cra_fw.batch.loadreport import ReportLoadError, from_jsonable
from cra_fw.batch.records import ImageResult, ImageStatus
from cra_fw.gate import evaluate, not_analysed, vulns_assessed
from cra_fw.jsonout import dumps
from cra_fw.records import ScanReport, Severity
from cra_fw.report.annex1 import ASSESSMENT_GAPS, stages_run

RESULTS = Path(".batch") / "results"


def gate_options(fail_on: str | None, fail_on_vuln: tuple[str, ...]) -> tuple[str, ...]:
    """The gate as a comparable value: a stored verdict is reused only under the same gate."""
    return (f"fail-on={fail_on or ''}", f"fail-on-vuln={','.join(fail_on_vuln)}")


def _vulns_gap(report: ScanReport) -> str:
    for f in report.findings:
        if f.rule_id in ASSESSMENT_GAPS or f.rule_id == "vulns.stage-failed":
            return f.title
    if "identify" not in stages_run(report):
        return "no components were identified (identify stage did not run)"
    return "the vulnerability stage did not run"


def summarise(
    report: ScanReport,
    *,
    fail_on: str | None = None,
    fail_on_vuln: tuple[str, ...] = (),
    exit_status: int | None = None,
    **extra: object,
) -> ImageResult:
    """Counts for the portfolio; ``None`` wherever the scan could not assess."""
    empty = not_analysed(report)
    ran = stages_run(report)
    assessed = vulns_assessed(report) and not empty
    open_matches = [m for m in report.vulnerabilities if m.open] if assessed else []
    findings: dict[str, int] | None = None
    if not empty:
        findings = {sev.value: 0 for sev in Severity}
        for f in report.findings:
            if not f.suppressed:
                findings[f.severity.value] += 1
    gate = "none"
    result = evaluate(report, fail_on, fail_on_vuln)
    if result.not_analysed:
        gate = "not-analysed"
    elif fail_on or fail_on_vuln:
        gate = "pass" if result.passed else "fail"
    return ImageResult(
        sha256=report.image.sha256,
        name=report.image.name,
        size=report.image.size,
        status=ImageStatus.NOT_ANALYSED if empty else ImageStatus.ANALYSED,
        reason="; ".join(report.errors)[:500] if empty else "",
        exit_status=exit_status,
        components=len(report.components) if "identify" in ran and not empty else None,
        vulnerabilities=len(open_matches) if assessed else None,
        kev=sum(1 for m in open_matches if m.exploited_here) if assessed else None,
        findings=findings,
        gate=gate,
        gate_reasons=len(result.hits),
        vulns_not_assessed_reason="" if assessed else _vulns_gap(report),
        gate_options=gate_options(fail_on, fail_on_vuln),
        **extra,  # type: ignore[arg-type]
    )


def result_path(outdir: Path, sha256: str) -> Path:
    return Path(outdir) / RESULTS / f"{sha256}.json"


def save_result(outdir: Path, result: ImageResult) -> None:
    path = result_path(outdir, result.sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps(replace(result, paths=(), resumed=False)))
    os.replace(tmp, path)


def load_result(outdir: Path, sha256: str) -> ImageResult | None:
    """The stored result of an earlier run, when its outputs are still there."""
    path = result_path(outdir, sha256)
    if not (Path(outdir) / sha256 / "report.json").is_file():
        return None
    try:
        found = from_jsonable(ImageResult, json.loads(path.read_text()))
    except (OSError, ValueError, ReportLoadError):
        return None
    return found if isinstance(found, ImageResult) else None
