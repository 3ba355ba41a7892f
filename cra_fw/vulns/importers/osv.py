"""OSV records: one JSON file, a folder of them, or an ecosystem's ``all.zip``."""

from __future__ import annotations

from typing import Any

from cra_fw.vulns.cvss import v3_base_score
from cra_fw.vulns.store import AdvisoryRow, OsvRangeRow, ParsedAdvisory


def _ranges(advisory_id: str, affected: dict) -> list[OsvRangeRow]:
    pkg = affected.get("package") or {}
    ecosystem = str(pkg.get("ecosystem", ""))
    name = str(pkg.get("name", ""))
    if not name:
        return []
    rows: list[OsvRangeRow] = []
    for rng in affected.get("ranges") or []:
        rtype = str((rng or {}).get("type", ""))
        if rtype not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits, not versions
        introduced = ""
        open_range = False
        for event in rng.get("events") or []:
            if not isinstance(event, dict):
                continue
            if "introduced" in event:
                introduced, open_range = str(event["introduced"]), True
            elif "fixed" in event and open_range:
                rows.append(
                    OsvRangeRow(advisory_id, ecosystem, name, rtype, introduced, fixed=str(event["fixed"]))
                )
                open_range = False
            elif "last_affected" in event and open_range:
                rows.append(
                    OsvRangeRow(
                        advisory_id,
                        ecosystem,
                        name,
                        rtype,
                        introduced,
                        last_affected=str(event["last_affected"]),
                    )
                )
                open_range = False
            elif "limit" in event and open_range:
                rows.append(
                    OsvRangeRow(advisory_id, ecosystem, name, rtype, introduced, limit=str(event["limit"]))
                )
                open_range = False
        if open_range:
            rows.append(OsvRangeRow(advisory_id, ecosystem, name, rtype, introduced))
    versions = tuple(str(v) for v in affected.get("versions") or [] if isinstance(v, (str, int)))
    if versions:
        rows.append(OsvRangeRow(advisory_id, ecosystem, name, "VERSIONS", versions=versions))
    return rows


def parse_osv(record: dict[str, Any]) -> ParsedAdvisory:
    """One OSV record to an advisory with its package ranges."""
    advisory_id = str(record["id"])
    v3_vector = v4_vector = ""
    for sev in record.get("severity") or []:
        if not isinstance(sev, dict):
            continue
        if sev.get("type") == "CVSS_V3":
            v3_vector = str(sev.get("score", ""))
        elif sev.get("type") == "CVSS_V4":
            v4_vector = str(sev.get("score", ""))
    text_severity = str((record.get("database_specific") or {}).get("severity", "") or "")
    rows: list[OsvRangeRow] = []
    for affected in record.get("affected") or []:
        if isinstance(affected, dict):
            rows.extend(_ranges(advisory_id, affected))
    advisory = AdvisoryRow(
        id=advisory_id,
        source="osv",
        published=str(record.get("published", "")),
        modified=str(record.get("modified", "")),
        summary=str(record.get("summary") or record.get("details") or "")[:2000],
        cvss31_vector=v3_vector,
        cvss31_score=v3_base_score(v3_vector) if v3_vector else None,
        cvss4_vector=v4_vector,
        severity=text_severity if isinstance(text_severity, str) else "",
        aliases=tuple(str(a) for a in (record.get("aliases") or []) + (record.get("upstream") or [])),
        withdrawn=bool(record.get("withdrawn")),
    )
    return ParsedAdvisory(advisory, osv_ranges=tuple(dict.fromkeys(rows)))
