"""Triage persistence, VEX import (CycloneDX, OpenVEX) and the CycloneDX 1.6 VEX writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cra_fw.records import Component, ImageInfo, ScanReport, ToolInfo
from cra_fw.vulns import findings_for, match_components
from cra_fw.vulns.importers import import_path
from cra_fw.vulns.triage import TriageDecision, TriageError, import_vex, record
from cra_fw.vulns.vex import build_vex, validate_vex, write

from .conftest import FEEDS

ZLIB = Component(
    "zlib",
    "1:1.2.13.dfsg-1",
    purl="pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=armhf",
    files=("L1:/lib/libz.so.1",),
)
GLIBC = Component("glibc", "2.36")


def test_triaged_advisory_stays_triaged_after_reimport_and_rematch(feed_db) -> None:
    (m,) = match_components([ZLIB], feed_db)
    assert m.advisory_id == "CVE-2023-45853" and m.triage is None and m.open
    record(
        feed_db,
        [
            TriageDecision(
                "CVE-2023-45853",
                "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1",
                "not_affected",
                "code_not_present",
                (),
                "libz does not contain MiniZip",
            )
        ],
    )
    # the NVD record changes upstream and is re-imported; the decision must survive
    stats = import_path(feed_db, FEEDS / "nvd/nvdcve-2.0-modified.json")
    assert stats.updated == 2
    import_path(feed_db, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    (m,) = match_components([ZLIB], feed_db)
    assert m.triage is not None
    assert (m.triage.state, m.triage.justification, m.triage.detail) == (
        "not_affected",
        "code_not_present",
        "libz does not contain MiniZip",
    )
    assert not m.open
    # the same component in a later release (qualifiers differ) keeps the decision
    other = Component("zlib", "1:1.2.13.dfsg-1", purl="pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=arm64")
    assert match_components([other], feed_db)[0].triage is not None
    # a different version does not inherit it
    newer = Component("zlib", "1.3")
    assert match_components([newer], feed_db)[0].triage is None


def test_triaged_component_finding_is_suppressed(feed_db) -> None:
    record(feed_db, [TriageDecision("CVE-2023-45853", ZLIB.purl, "not_affected", "code_not_present")])
    matches = match_components([ZLIB, GLIBC], feed_db)
    findings = {f.extra["component"]: f for f in findings_for([ZLIB, GLIBC], matches)}
    assert findings[ZLIB.purl].suppressed and "not_affected" in findings[ZLIB.purl].suppression_reason
    assert not findings["glibc@2.36"].suppressed


def test_triage_rejects_bad_values(feed_db) -> None:
    with pytest.raises(TriageError, match="state"):
        record(feed_db, [TriageDecision("CVE-1", "pkg:generic/x@1", "maybe")])
    with pytest.raises(TriageError, match="justification"):
        record(feed_db, [TriageDecision("CVE-1", "pkg:generic/x@1", "not_affected", "because")])
    with pytest.raises(TriageError, match="component"):
        record(feed_db, [TriageDecision("CVE-1", " ", "not_affected")])


def test_cyclonedx_vex_import(feed_db, tmp_path: Path) -> None:
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "components": [
            {
                "type": "library",
                "bom-ref": "c1",
                "name": "glibc",
                "version": "2.36",
                "purl": "pkg:generic/glibc@2.36",
            }
        ],
        "vulnerabilities": [
            {
                "id": "CVE-2023-4911",
                "analysis": {"state": "resolved", "response": ["update"], "detail": "patched"},
                "affects": [{"ref": "c1"}],
            },
            {"id": "CVE-2099-0001", "analysis": {"state": "bogus"}, "affects": [{"ref": "c1"}]},
        ],
    }
    path = tmp_path / "in.cdx.json"
    path.write_text(json.dumps(doc))
    assert import_vex(feed_db, path) == 1
    comp = Component("glibc", "2.36", purl="pkg:generic/glibc@2.36")
    (m,) = match_components([comp], feed_db)
    assert (m.triage.state, m.triage.response, m.triage.source) == (
        "resolved",
        ("update",),
        "vex:in.cdx.json",
    )


def test_openvex_import(feed_db, tmp_path: Path) -> None:
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex-1",
        "author": "QA",
        "timestamp": "2024-12-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2023-48795"},
                "products": [{"@id": "pkg:generic/dropbear@2022.83"}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
                "impact_statement": "chacha20-poly1305 and EtM MACs are disabled in this build",
            }
        ],
    }
    path = tmp_path / "in.openvex.json"
    path.write_text(json.dumps(doc))
    assert import_vex(feed_db, path) == 1
    (m,) = match_components([Component("dropbear", "2022.83", purl="pkg:generic/dropbear@2022.83")], feed_db)
    assert (m.triage.state, m.triage.justification) == ("not_affected", "code_not_reachable")


@pytest.mark.parametrize(
    ("content", "message"), [("{nope", "not JSON"), ("[1]", "JSON object"), ('{"hello": 1}', "neither")]
)
def test_vex_import_errors(feed_db, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(TriageError, match=message):
        import_vex(feed_db, path)


def _report(components, matches) -> ScanReport:
    report = ScanReport(
        image=ImageInfo("fw.bin", 1, "0" * 64, "0" * 128, "0" * 32),
        tool=ToolInfo("cra-fw", "0.1.0"),
        started="2026-01-01T00:00:00+00:00",
    )
    report.components = list(components)
    report.vulnerabilities = list(matches)
    return report


def test_vex_output_validates_and_carries_analysis(feed_db, tmp_path: Path) -> None:
    record(
        feed_db,
        [TriageDecision("CVE-2023-45853", ZLIB.purl, "not_affected", "code_not_present", (), "no MiniZip")],
    )
    comps = [
        ZLIB,
        GLIBC,
        Component("openssl", "1.0.2k", cpe="cpe:2.3:a:openssl:openssl:1.0.2k:*:*:*:*:*:*:*"),
    ]
    matches = match_components(comps, feed_db)
    path = write(_report(comps, matches), tmp_path)
    assert path == tmp_path / "vex.cdx.json"
    doc = json.loads(path.read_text())
    assert validate_vex(doc) == []
    vulns = {(v["id"], v["affects"][0]["ref"]): v for v in doc["vulnerabilities"]}
    assert set(vulns) == {
        ("CVE-2023-45853", ZLIB.purl),
        ("CVE-2023-4911", "component:glibc@2.36"),
        ("CVE-2022-0778", "component:openssl@1.0.2k"),
        ("CVE-2023-0286", "component:openssl@1.0.2k"),
    }
    zlib = vulns[("CVE-2023-45853", ZLIB.purl)]
    assert zlib["analysis"] == {
        "state": "not_affected",
        "justification": "code_not_present",
        "detail": "no MiniZip",
    }
    assert zlib["affects"][0]["versions"][0]["status"] == "unaffected"
    glibc = vulns[("CVE-2023-4911", "component:glibc@2.36")]
    assert glibc["analysis"] == {"state": "in_triage"}
    props = {p["name"]: p["value"] for p in glibc["properties"]}
    assert props["cra-fw:cisa-kev"] == "true" and props["cra-fw:cisa-kev:due-date"] == "2023-12-12"
    assert glibc["ratings"][0] == {
        "source": {"name": "NVD"},
        "method": "CVSSv31",
        "score": 7.8,
        "severity": "high",
        "vector": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
    }
    refs = {c["bom-ref"] for c in doc["components"]}
    assert all(v["affects"][0]["ref"] in refs for v in doc["vulnerabilities"])


def test_vex_validator_rejects_a_broken_document(feed_db) -> None:
    doc = build_vex(match_components([GLIBC], feed_db), [GLIBC])
    doc["vulnerabilities"][0]["analysis"]["state"] = "kinda_affected"
    assert validate_vex(doc) != []


def test_no_matches_writes_no_vex(tmp_path: Path) -> None:
    assert write(_report([GLIBC], []), tmp_path) is None
    assert not (tmp_path / "vex.cdx.json").exists()


def test_exported_vex_round_trips_into_triage(feed_db, tmp_path: Path) -> None:
    record(feed_db, [TriageDecision("CVE-2023-45853", ZLIB.purl, "not_affected", "code_not_present")])
    path = write(_report([ZLIB], match_components([ZLIB], feed_db)), tmp_path)
    other = tmp_path / "other.db"
    from cra_fw.feeddb import open_feed_db

    db2 = open_feed_db(other)
    assert import_vex(db2, path) == 1  # the in_triage-free, decided entry
    row = db2.conn.execute("SELECT advisory_id, component, state FROM triage").fetchone()
    assert row == ("CVE-2023-45853", "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1", "not_affected")


def test_triage_key_ignores_qualifiers_and_plus_encoding(feed_db) -> None:
    record(
        feed_db,
        [
            TriageDecision(
                "CVE-2023-4911",
                "pkg:deb/debian/libc6@2.36-9+deb12u2?arch=armhf",
                "exploitable",
                "",
                ("update",),
            )
        ],
    )
    comp = Component(
        "glibc", "2.36-9+deb12u2", purl="pkg:deb/debian/libc6@2.36-9%2Bdeb12u2?arch=arm64&distro=debian-12"
    )
    (m,) = match_components([comp], feed_db)
    assert m.triage is not None and m.triage.state == "exploitable" and m.open
