"""CSAF 2.0 VEX out (validated against the OASIS CSAF 2.0 schema shipped in csaf-lib) and back in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from cra_fw.records import Component
from cra_fw.vulns import match_components
from cra_fw.vulns.csaf import build_csaf
from cra_fw.vulns.triage import TriageDecision, import_vex, list_decisions, record

DEB12 = "arch=armhf&distro=debian-12"
COMPONENTS = [
    # Debian fixed CVE-2024-45490 in +deb12u1 (fixed); CVE-2024-28757 only in +deb12u4 (known_affected)
    Component("expat", "2.5.0", purl=f"pkg:deb/debian/libexpat1@2.5.0-1%2Bdeb12u2?{DEB12}&upstream=expat"),
    # a glibc known only as ">= 2.36": CVE-2023-4911 is under investigation (possible)
    Component("glibc", "2.36", version_certainty="lower-bound", version_range="vers:generic/>=2.36"),
    # busybox 1.35.0: three NVD matches, one of which a person decided is not affected
    Component("busybox", "1.35.0", purl="pkg:generic/busybox@1.35.0"),
]


def _validator() -> Draft202012Validator:
    import csaf_lib

    base = Path(csaf_lib.__file__).parent / "verification" / "schemas"
    schemas = {name: json.loads((base / name).read_text()) for name in ("csaf_2_0.json",)}
    registry = Registry()
    for fname, url in (
        ("cvss_v2_0.json", "https://www.first.org/cvss/cvss-v2.0.json"),
        ("cvss_v3_0.json", "https://www.first.org/cvss/cvss-v3.0.json"),
        ("cvss_v3_1.json", "https://www.first.org/cvss/cvss-v3.1.json"),
    ):
        registry = registry.with_resource(url, Resource.from_contents(json.loads((base / fname).read_text())))
    return Draft202012Validator(
        schemas["csaf_2_0.json"], registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def validate_csaf(doc: dict) -> None:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    # the csaf_vex profile's own mandatory parts (CSAF 2.0 section 4.5, tests 6.1.27.x)
    assert doc["document"]["category"] == "csaf_vex"
    assert any(
        n["category"] in ("description", "details", "general", "summary") for n in doc["document"]["notes"]
    )
    for vuln in doc["vulnerabilities"]:
        assert vuln.get("cve") or vuln.get("ids")
        status = vuln["product_status"]
        assert set(status) & {"fixed", "known_affected", "known_not_affected", "under_investigation"}
        impact = {p for t in vuln.get("threats", []) if t["category"] == "impact" for p in t["product_ids"]}
        flagged = {p for f in vuln.get("flags", []) for p in f["product_ids"]}
        assert set(status.get("known_not_affected", [])) <= impact | flagged
        actions = {p for r in vuln.get("remediations", []) for p in r["product_ids"]}
        assert set(status.get("known_affected", [])) <= actions


@pytest.fixture
def matches(feed_db):
    record(
        feed_db,
        [
            TriageDecision(
                "CVE-2022-30065",
                "pkg:generic/busybox@1.35.0",
                "not_affected",
                "code_not_present",
                detail="the awk applet is not built",
            )
        ],
    )
    return match_components(COMPONENTS, feed_db)


def test_csaf_vex_validates_and_says_each_status(matches) -> None:
    doc = build_csaf(
        matches, COMPONENTS, title="t", tracking_id="cra-fw-test-1", timestamp="2026-12-01T00:00:00Z"
    )
    validate_csaf(doc)
    pid = {
        p["product_identification_helper"]["purl"]: p["product_id"]
        for p in doc["product_tree"]["full_product_names"]
        if "product_identification_helper" in p
    }
    expat = pid[COMPONENTS[0].purl]
    by_cve = {v["cve"]: v for v in doc["vulnerabilities"]}
    assert by_cve["CVE-2024-45490"]["product_status"] == {"fixed": [expat]}
    assert "2.5.0-1+deb12u1" in by_cve["CVE-2024-45490"]["remediations"][0]["details"]
    assert by_cve["CVE-2024-28757"]["product_status"] == {"known_affected": [expat]}
    assert by_cve["CVE-2024-28757"]["remediations"][0]["category"] == "vendor_fix"
    assert list(by_cve["CVE-2023-4911"]["product_status"]) == ["under_investigation"]
    busybox = pid["pkg:generic/busybox@1.35.0"]
    assert by_cve["CVE-2022-30065"]["product_status"] == {"known_not_affected": [busybox]}
    assert by_cve["CVE-2022-30065"]["flags"] == [
        {"label": "vulnerable_code_not_present", "product_ids": [busybox]}
    ]
    assert by_cve["CVE-2022-30065"]["scores"][0]["cvss_v3"]["baseScore"] == 7.8


def test_broken_document_does_not_validate(matches) -> None:
    doc = build_csaf(matches, COMPONENTS, title="t", tracking_id="x", timestamp="2026-12-01T00:00:00Z")
    del doc["document"]["tracking"]["revision_history"]
    assert list(_validator().iter_errors(doc))


def test_csaf_statement_imported_with_triage_persists(matches, tmp_path, feed_db) -> None:
    doc = build_csaf(matches, COMPONENTS, title="t", tracking_id="x", timestamp="2026-12-01T00:00:00Z")
    # a supplier's statement: CVE-2024-28757 does not affect their expat build
    vuln = next(v for v in doc["vulnerabilities"] if v["cve"] == "CVE-2024-28757")
    pid = vuln["product_status"].pop("known_affected")
    vuln["product_status"]["known_not_affected"] = pid
    vuln["flags"] = [{"label": "vulnerable_code_not_in_execute_path", "product_ids": pid}]
    vuln["threats"] = [
        {"category": "impact", "details": "external entities are disabled", "product_ids": pid}
    ]
    del vuln["remediations"]
    validate_csaf(doc)
    path = tmp_path / "supplier.csaf.json"
    path.write_text(json.dumps(doc))
    assert import_vex(feed_db, path) >= 1
    stored = {(d.advisory_id, d.component): d for d in list_decisions(feed_db)}
    expat_ref = "pkg:deb/debian/libexpat1@2.5.0-1%2Bdeb12u2"  # qualifiers dropped: any arch/distro
    decision = stored[("CVE-2024-28757", expat_ref)]
    assert (decision.state, decision.justification, decision.detail) == (
        "not_affected",
        "code_not_reachable",
        "external entities are disabled",
    )
    # the next match (any later scan) carries it: the match is no longer open
    (late,) = [m for m in match_components(COMPONENTS[:1], feed_db) if m.advisory_id == "CVE-2024-28757"]
    assert not late.open and late.triage.source == "vex:supplier.csaf.json"
