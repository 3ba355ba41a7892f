"""SARIF 2.1.0 writer: every finding of a ScanReport as a result in ``findings.sarif``.

Paths are the paths inside the firmware (relative URIs under the ``IMAGE`` base);
the layer chain goes into a logical location so a finding in a nested
filesystem is still unambiguous.  Suppressed findings stay, with a
``suppressions`` entry carrying the policy's reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cra_fw.paths import schema_path
from cra_fw.records import Finding, ScanReport, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/cra-fw/cra-fw"
FILENAME = "findings.sarif"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning reads properties.security-severity (CVSS-like 0-10) to rank results.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def schema() -> dict[str, Any]:
    """The official OASIS SARIF 2.1.0 JSON schema (errata01) shipped with cra-fw."""
    text = schema_path("sarif-schema-2.1.0.json").read_text(encoding="utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


def _uri(path: str) -> str:
    return quote(path.lstrip("/"), safe="/-._~!$&'()*+,;=:@")


def _rule(f: Finding) -> dict[str, Any]:
    return {
        "id": f.rule_id,
        "name": f.rule_id.replace(".", "/"),
        "shortDescription": {"text": f.title.split(":")[0][:200] or f.rule_id},
        "help": {"text": f.remediation or "See docs/checks.md."},
        "defaultConfiguration": {"level": _LEVEL[f.severity]},
        "properties": {
            "category": f.category,
            "cra_reference": list(f.cra_reference),
            "tags": ["security", f.category],
        },
    }


def _result(f: Finding, rule_index: int) -> dict[str, Any]:
    loc = f.location
    text = f.title + (f" — {f.evidence}" if f.evidence else "")
    result: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": text},
        "partialFingerprints": {"craFwFindingId/v1": f.id},
        "properties": {
            "severity": f.severity.value,
            "security-severity": _SECURITY_SEVERITY[f.severity],
            "category": f.category,
            "cra_reference": list(f.cra_reference),
            "remediation": f.remediation,
            "layer_chain": list(loc.layer_chain),
        },
    }
    if f.fingerprint:
        result["partialFingerprints"]["craFwEvidence/v1"] = f.fingerprint
    extra = {k: v for k, v in f.extra.items()}
    if extra:
        result["properties"]["extra"] = extra
    if loc.path:
        physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(loc.path), "uriBaseId": "IMAGE"}}
        if loc.line is not None and loc.line >= 1:
            physical["region"] = {"startLine": loc.line}
        elif loc.offset is not None and loc.offset >= 0:
            physical["region"] = {"byteOffset": loc.offset}
        location: dict[str, Any] = {"physicalLocation": physical}
        if loc.layer_chain:
            location["logicalLocations"] = [
                {"fullyQualifiedName": "/".join(loc.layer_chain) + ":" + loc.path, "kind": "module"}
            ]
        result["locations"] = [location]
    if f.suppressed:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f.suppression_reason or "suppressed by policy",
            }
        ]
    return result


def to_sarif(report: ScanReport) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dict."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for f in report.findings:
        if f.rule_id not in index:
            index[f.rule_id] = len(rules)
            rules.append(_rule(f))
        results.append(_result(f, index[f.rule_id]))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": report.tool.name or "cra-fw",
                "version": report.tool.version or "0",
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "originalUriBaseIds": {
            "IMAGE": {
                "description": {
                    "text": f"Root of the unpacked firmware image {report.image.name} (sha256 {report.image.sha256})"
                }
            }
        },
        "results": results,
        "properties": {
            "image": {"name": report.image.name, "sha256": report.image.sha256, "size": report.image.size}
        },
    }
    if report.started:
        invocation: dict[str, Any] = {
            "executionSuccessful": not report.errors,
            "startTimeUtc": report.started,
        }
        if report.finished:
            invocation["endTimeUtc"] = report.finished
        run["invocations"] = [invocation]
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def write(report: ScanReport, outdir: Path) -> Path:
    """Write ``OUTDIR/findings.sarif``; returns its path."""
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / FILENAME
    path.write_text(json.dumps(to_sarif(report), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
