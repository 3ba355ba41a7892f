"""CycloneDX 1.6 VEX writer: ``OUTDIR/vex.cdx.json``.

One vulnerability entry per (advisory, component) with ratings, the KEV flag,
the range that matched, and the triage analysis (``in_triage`` when nobody has
decided yet).  The document is validated against the CycloneDX 1.6 schema
shipped with cyclonedx-python-lib before it is written.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cra_fw.errors import CraFwError
from cra_fw.records import Component, ScanReport
from cra_fw.vulns.records import VulnMatch

FILENAME = "vex.cdx.json"
_SOURCES = {
    "nvd": ("NVD", "https://nvd.nist.gov/vuln/detail/"),
    "osv": ("OSV", "https://osv.dev/vulnerability/"),
}


class VexError(CraFwError):
    """The VEX document failed schema validation (a bug: please report it)."""


def _bom_ref(key: str, purl: str) -> str:
    return purl or f"component:{key}"


def _rating(match: VulnMatch) -> list[dict[str, Any]]:
    ratings = []
    name = "NVD" if match.source == "nvd" else "OSV"
    if match.cvss_v31_vector or match.cvss_v31_score is not None:
        rating: dict[str, Any] = {
            "source": {"name": name},
            "method": "CVSSv31" if match.cvss_v31_vector.startswith("CVSS:3.1") else "CVSSv3",
        }
        if match.cvss_v31_score is not None:
            rating["score"] = match.cvss_v31_score
        if match.severity is not None:
            rating["severity"] = match.severity.value
        if match.cvss_v31_vector:
            rating["vector"] = match.cvss_v31_vector
        ratings.append(rating)
    if match.cvss_v4_vector or match.cvss_v4_score is not None:
        rating = {"source": {"name": name}, "method": "CVSSv4"}
        if match.cvss_v4_score is not None:
            rating["score"] = match.cvss_v4_score
        if match.cvss_v4_vector:
            rating["vector"] = match.cvss_v4_vector
        ratings.append(rating)
    if not ratings and match.severity is not None:
        ratings.append({"source": {"name": name}, "severity": match.severity.value, "method": "other"})
    return ratings


def _vuln_entry(match: VulnMatch) -> dict[str, Any]:
    src_name, src_url = _SOURCES.get(match.source, ("NVD", "https://nvd.nist.gov/vuln/detail/"))
    if match.advisory_id.startswith("CVE-"):
        src_name, src_url = _SOURCES["nvd"]
    entry: dict[str, Any] = {
        "bom-ref": f"{match.advisory_id}/{_bom_ref(match.component_key, match.component_purl)}",
        "id": match.advisory_id,
        "source": {"name": src_name, "url": src_url + match.advisory_id},
    }
    if match.aliases:
        entry["references"] = [
            {"id": alias, "source": {"name": "OSV", "url": _SOURCES["osv"][1] + alias}}
            for alias in match.aliases
        ]
    ratings = _rating(match)
    if ratings:
        entry["ratings"] = ratings
    if match.summary:
        entry["description"] = match.summary
    if match.fixed_version:
        entry["recommendation"] = f"Upgrade {match.component_name} to {match.fixed_version} or later."
    triage = match.triage
    analysis: dict[str, Any] = {"state": triage.state if triage else "in_triage"}
    if triage is None and match.possible:
        analysis["detail"] = f"Possible match: {match.settle}"
    if triage:
        if triage.justification:
            analysis["justification"] = triage.justification
        if triage.response:
            analysis["response"] = list(triage.response)
        if triage.detail:
            analysis["detail"] = triage.detail
    entry["analysis"] = analysis
    status = "unaffected" if triage and triage.dismisses else "affected"
    entry["affects"] = [
        {
            "ref": _bom_ref(match.component_key, match.component_purl),
            "versions": [{"version": match.component_version or "unknown", "status": status}],
        }
    ]
    props = [
        {"name": "cra-fw:match-method", "value": match.match_method},
        {"name": "cra-fw:matched-range", "value": match.matched_range},
        {"name": "cra-fw:match-certainty", "value": "possible" if match.possible else "certain"},
    ]
    if match.version_certainty != "exact":
        props.append({"name": "cra-fw:version-certainty", "value": match.version_certainty})
    if triage and triage.source:
        props.append({"name": "cra-fw:analysis-source", "value": triage.source})
    if match.kev and match.possible:
        props.append({"name": "cra-fw:cisa-kev", "value": "true (not established: version uncertain)"})
    elif match.kev:
        props += [
            {"name": "cra-fw:cisa-kev", "value": "true"},
            {"name": "cra-fw:cisa-kev:date-added", "value": match.kev_date_added},
            {"name": "cra-fw:cisa-kev:due-date", "value": match.kev_due_date},
            {"name": "cra-fw:cra", "value": match.actively_exploited},
        ]
    if match.epss is not None:
        props.append({"name": "cra-fw:epss", "value": f"{match.epss:.5f}"})
    entry["properties"] = props
    return entry


def build_vex(
    matches: Iterable[VulnMatch],
    components: Iterable[Component] = (),
    tool_version: str = "",
    timestamp: str = "",
) -> dict[str, Any]:
    """The CycloneDX 1.6 VEX document for the matches, as a dict."""
    matches = list(matches)
    comp_entries: dict[str, dict[str, Any]] = {}
    by_key = {c.key: c for c in components}
    for m in matches:
        ref = _bom_ref(m.component_key, m.component_purl)
        if ref in comp_entries:
            continue
        comp = by_key.get(m.component_key)
        entry: dict[str, Any] = {"type": "library", "bom-ref": ref, "name": m.component_name}
        if m.component_version:
            entry["version"] = m.component_version
        if m.component_purl:
            entry["purl"] = m.component_purl
        if comp is not None and comp.cpe:
            entry["cpe"] = comp.cpe
        comp_entries[ref] = entry
    from cra_fw import __version__

    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp or datetime.now(UTC).replace(microsecond=0).isoformat(),
            "tools": {
                "components": [
                    {"type": "application", "name": "cra-fw", "version": tool_version or __version__}
                ]
            },
        },
        "components": list(comp_entries.values()),
        "vulnerabilities": [_vuln_entry(m) for m in matches],
    }


def validate_vex(doc: dict[str, Any]) -> list[str]:
    """Schema errors of a VEX document against CycloneDX 1.6 (empty when valid)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))
    return [str(error)] if error else []


def write(report: ScanReport, outdir: Path) -> Path | None:
    """Write ``vex.cdx.json`` for a scan's vulnerabilities (nothing when there are none)."""
    matches = list(report.vulnerabilities)
    if not matches:
        return None
    from cra_fw.feeddb import parse_date

    stamp = parse_date(report.finished or report.started)
    doc = build_vex(matches, report.components, report.tool.version, stamp.isoformat() if stamp else "")
    errors = validate_vex(doc)
    if errors:
        raise VexError(f"VEX document does not validate against CycloneDX 1.6: {errors[0][:300]}")
    path = Path(outdir) / FILENAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)
    return path
