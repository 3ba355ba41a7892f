"""Writers: report.json, SBOMs, SARIF, VEX, HTML."""

from __future__ import annotations

from dataclasses import dataclass

from cra_fw.records import ScanReport

# Said by every SBOM writer for a component listed without a version, so that a reviewer
# does not read the gap as an omission of the tool.
VERSION_UNKNOWN = "unknown: the image holds no record of this release"


def application(report: ScanReport) -> ApplicationIdentity | None:
    """The image's own application (``identify.application`` finding), for the SBOMs' top component."""
    for finding in report.findings:
        if finding.rule_id == "identify.application":
            extra = finding.extra
            return ApplicationIdentity(
                name=str(extra.get("name", "")),
                version=str(extra.get("version", "")),
                device=str(extra.get("device", "")),
                source=str(extra.get("source", "")),
            )
    return None


@dataclass(frozen=True)
class ApplicationIdentity:
    name: str
    version: str
    device: str
    source: str
