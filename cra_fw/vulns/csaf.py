"""CSAF 2.0 VEX (profile ``csaf_vex``): ``OUTDIR/vex.csaf.json``, and reading such documents back.

One product per component (purl and CPE as identification helpers), one vulnerability per
advisory with every component's status: ``known_affected`` (a match, with the fix as the action
statement), ``fixed`` (resolved, e.g. a distribution's backport), ``known_not_affected`` (with a
flag and the impact statement), ``under_investigation`` (a possible match: the version is not
known exactly).  The BSI's TR-03183-3 and the CRA's reporting point to CSAF for VEX.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cra_fw.records import Component, ScanReport
from cra_fw.vulns.records import VulnMatch

FILENAME = "vex.csaf.json"

# CycloneDX justification -> CSAF VEX flag label
_FLAG = {
    "code_not_present": "vulnerable_code_not_present",
    "code_not_reachable": "vulnerable_code_not_in_execute_path",
    "requires_configuration": "vulnerable_code_cannot_be_controlled_by_adversary",
    "requires_dependency": "vulnerable_code_cannot_be_controlled_by_adversary",
    "requires_environment": "vulnerable_code_cannot_be_controlled_by_adversary",
    "protected_by_compiler": "inline_mitigations_already_exist",
    "protected_at_runtime": "inline_mitigations_already_exist",
    "protected_at_perimeter": "inline_mitigations_already_exist",
    "protected_by_mitigating_control": "inline_mitigations_already_exist",
}
# and back (CSAF -> CycloneDX), for `triage import`
_JUSTIFICATION = {
    "component_not_present": "code_not_present",
    "vulnerable_code_not_present": "code_not_present",
    "vulnerable_code_not_in_execute_path": "code_not_reachable",
    "vulnerable_code_cannot_be_controlled_by_adversary": "requires_configuration",
    "inline_mitigations_already_exist": "protected_by_mitigating_control",
}


def status_of(match: VulnMatch) -> str:
    """The CSAF product status of one match."""
    state = match.triage.state if match.triage else ""
    if state in ("resolved", "resolved_with_pedigree"):
        return "fixed"
    if state in ("not_affected", "false_positive"):
        return "known_not_affected"
    if state == "in_triage" or (match.possible and not state):
        return "under_investigation"
    return "known_affected"


def _severity(score: float) -> str:
    if score == 0:
        return "NONE"
    return "LOW" if score < 4 else "MEDIUM" if score < 7 else "HIGH" if score < 9 else "CRITICAL"


def _product_name(c: Component | None, m: VulnMatch) -> str:
    return (
        f"{m.component_name} {m.component_version}".strip() if c is None else f"{c.name} {c.version}".strip()
    )


def build_csaf(
    matches: Iterable[VulnMatch],
    components: Iterable[Component] = (),
    *,
    title: str,
    tracking_id: str,
    timestamp: str,
    tool_version: str = "",
    publisher: str = "",
    namespace: str = "",
) -> dict[str, Any]:
    """The CSAF 2.0 VEX document for the matches."""
    from cra_fw import __version__

    matches = list(matches)
    by_key = {c.key: c for c in components}
    products: dict[str, dict[str, Any]] = {}
    pid_of: dict[str, str] = {}
    for m in matches:
        ref = m.component_purl or m.component_key
        if ref in pid_of:
            continue
        pid = f"CSAFPID-{len(pid_of) + 1:04d}"
        pid_of[ref] = pid
        comp = by_key.get(m.component_key)
        helper: dict[str, Any] = {}
        if m.component_purl:
            helper["purl"] = m.component_purl
        if comp is not None and comp.cpe:
            helper["cpe"] = comp.cpe
        product: dict[str, Any] = {"name": _product_name(comp, m), "product_id": pid}
        if helper:
            product["product_identification_helper"] = helper
        products[pid] = product
    vulns: dict[str, list[VulnMatch]] = {}
    for m in matches:
        vulns.setdefault(m.advisory_id, []).append(m)
    out_vulns = [_vulnerability(adv, ms, pid_of) for adv, ms in sorted(vulns.items())]
    stamp = timestamp
    doc: dict[str, Any] = {
        "document": {
            "category": "csaf_vex",
            "csaf_version": "2.0",
            "title": title,
            "lang": "en",
            "publisher": {
                "category": "vendor" if publisher else "other",
                "name": publisher or "cra-fw (publisher not configured)",
                "namespace": namespace or "urn:cra-fw:publisher-not-configured",
            },
            "notes": [
                {
                    "category": "summary",
                    "title": "What this document says",
                    "text": "The status of each known vulnerability for the components found in the analysed "
                    "firmware: known_affected (matched), fixed (e.g. a distribution's backported fix), "
                    "known_not_affected (with the reason), under_investigation (a possible match: the "
                    "component's version is known only as a bound).",
                }
            ],
            "tracking": {
                "id": tracking_id,
                "status": "final",
                "version": "1",
                "initial_release_date": stamp,
                "current_release_date": stamp,
                "revision_history": [{"date": stamp, "number": "1", "summary": "Generated by cra-fw."}],
                "generator": {
                    "date": stamp,
                    "engine": {"name": "cra-fw", "version": tool_version or __version__},
                },
            },
        },
        "product_tree": {"full_product_names": list(products.values())},
    }
    if out_vulns:
        doc["vulnerabilities"] = out_vulns
    return doc


def _vulnerability(advisory: str, matches: list[VulnMatch], pid_of: dict[str, str]) -> dict[str, Any]:
    first = matches[0]
    entry: dict[str, Any] = {}
    if advisory.startswith("CVE-"):
        entry["cve"] = advisory
    ids = [a for a in (advisory, *first.aliases) if not a.startswith("CVE-")]
    if ids:
        entry["ids"] = [
            {"system_name": "OSV" if "-" in i else "cra-fw", "text": i} for i in dict.fromkeys(ids)
        ]
    if first.summary:
        entry["notes"] = [{"category": "description", "title": "Summary", "text": first.summary}]
    status: dict[str, list[str]] = {}
    flags: dict[str, list[str]] = {}
    threats: list[dict[str, Any]] = []
    remediations: list[dict[str, Any]] = []
    for m in matches:
        pid = pid_of[m.component_purl or m.component_key]
        st = status_of(m)
        if pid in status.get(st, []):
            continue
        status.setdefault(st, []).append(pid)
        if st == "known_not_affected":
            triage = m.triage
            label = _FLAG.get(triage.justification if triage else "", "component_not_present")
            if triage and triage.state == "not_affected" and triage.justification:
                flags.setdefault(label, []).append(pid)
            threats.append(
                {
                    "category": "impact",
                    "details": (triage.detail if triage and triage.detail else f"Not affected ({label}).")[
                        :4000
                    ],
                    "product_ids": [pid],
                }
            )
        elif st == "known_affected":
            remediations.append(
                {
                    "category": "vendor_fix" if m.fixed_version else "none_available",
                    "details": f"Update {m.component_name} to {m.fixed_version} or later."
                    if m.fixed_version
                    else "No fixed version is known; assess the exposure or record a decision.",
                    "product_ids": [pid],
                }
            )
            if m.kev:
                threats.append(
                    {
                        "category": "exploit_status",
                        "details": f"Listed in CISA KEV (added {m.kev_date_added}, due {m.kev_due_date}): "
                        "actively exploited; CRA Article 14 reporting applies.",
                        "product_ids": [pid],
                    }
                )
        elif st == "fixed" and m.triage and m.triage.detail:
            remediations.append(
                {"category": "vendor_fix", "details": m.triage.detail[:4000], "product_ids": [pid]}
            )
        elif st == "under_investigation" and m.settle:
            threats.append({"category": "impact", "details": m.settle[:4000], "product_ids": [pid]})
    entry["product_status"] = status
    if flags:
        entry["flags"] = [{"label": label, "product_ids": pids} for label, pids in sorted(flags.items())]
    if threats:
        entry["threats"] = threats
    if remediations:
        entry["remediations"] = remediations
    if first.cvss_v31_vector.startswith(("CVSS:3.0/", "CVSS:3.1/")) and first.cvss_v31_score is not None:
        pids = sorted({pid_of[m.component_purl or m.component_key] for m in matches})
        entry["scores"] = [
            {
                "products": pids,
                "cvss_v3": {
                    "version": first.cvss_v31_vector[5:8],
                    "vectorString": first.cvss_v31_vector,
                    "baseScore": first.cvss_v31_score,
                    "baseSeverity": _severity(first.cvss_v31_score),
                },
            }
        ]
    return entry


def write(report: ScanReport, outdir: Path, publisher: str = "", namespace: str = "") -> Path | None:
    """Write ``vex.csaf.json`` for a scan's (or an SBOM's) vulnerabilities; nothing when there are none."""
    matches = [v for v in report.vulnerabilities if isinstance(v, VulnMatch)]
    if not matches:
        return None
    stamp = (report.finished or report.started).replace("+00:00", "Z")
    doc = build_csaf(
        matches,
        report.components,
        title=f"Vulnerability status of the components of {report.image.name}",
        tracking_id=f"cra-fw-{report.image.sha256[:16]}-{stamp[:10]}",
        timestamp=stamp,
        tool_version=report.tool.version,
        publisher=publisher,
        namespace=namespace,
    )
    path = Path(outdir) / FILENAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)
    return path


def decisions_from_csaf(doc: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(advisory, component purl, CycloneDX state, justification, detail) per product status."""
    purls: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "product_id" in node:
                helper = node.get("product_identification_helper") or {}
                if isinstance(helper, dict) and helper.get("purl"):
                    purls[str(node["product_id"])] = str(helper["purl"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc.get("product_tree") or {})
    out = []
    for vuln in doc.get("vulnerabilities") or []:
        if not isinstance(vuln, dict):
            continue
        advisory = str(vuln.get("cve") or next((i.get("text") for i in vuln.get("ids") or [] if i), "") or "")
        if not advisory:
            continue
        flag_of: dict[str, str] = {}
        for flag in vuln.get("flags") or []:
            for pid in flag.get("product_ids") or []:
                flag_of[str(pid)] = str(flag.get("label", ""))
        impact: dict[str, str] = {}
        for threat in vuln.get("threats") or []:
            if threat.get("category") == "impact":
                for pid in threat.get("product_ids") or []:
                    impact[str(pid)] = str(threat.get("details", ""))
        status = vuln.get("product_status") or {}
        for key, state in (
            ("fixed", "resolved"),
            ("first_fixed", "resolved"),
            ("known_not_affected", "not_affected"),
            ("known_affected", "exploitable"),
            ("first_affected", "exploitable"),
            ("last_affected", "exploitable"),
            ("under_investigation", "in_triage"),
        ):
            for pid in status.get(key) or []:
                purl = purls.get(str(pid))
                if not purl:
                    continue
                justification = (
                    _JUSTIFICATION.get(flag_of.get(str(pid), ""), "") if state == "not_affected" else ""
                )
                if state == "not_affected" and not justification:
                    justification = "code_not_present" if str(pid) not in impact else "requires_environment"
                out.append((advisory, purl, state, justification, impact.get(str(pid), "")))
    return out
