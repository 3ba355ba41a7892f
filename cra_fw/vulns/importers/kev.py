"""CISA Known Exploited Vulnerabilities catalog (JSON)."""

from __future__ import annotations

from typing import Any


def kev_rows(doc: dict[str, Any]) -> list[dict[str, str]]:
    """KEV catalog entries as ``kev`` table rows; entries without a cveID are skipped."""
    rows = []
    for entry in doc.get("vulnerabilities") or []:
        if not isinstance(entry, dict) or not str(entry.get("cveID", "")).startswith("CVE-"):
            continue
        rows.append(
            {
                "cve_id": str(entry["cveID"]),
                "vendor_project": str(entry.get("vendorProject", "")),
                "product": str(entry.get("product", "")),
                "name": str(entry.get("vulnerabilityName", "")),
                "date_added": str(entry.get("dateAdded", "")),
                "due_date": str(entry.get("dueDate", "")),
                "ransomware": str(entry.get("knownRansomwareCampaignUse", "")),
                "required_action": str(entry.get("requiredAction", ""))[:1000],
            }
        )
    return rows
