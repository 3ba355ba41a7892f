"""Ledger test helpers: real SQLite files, real feed imports, scan reports built from records."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cra_fw.ledger.store import open_ledger
from cra_fw.records import Component, Finding, ImageInfo, Location, ScanReport, Severity, ToolInfo

REPO = Path(__file__).resolve().parents[2]
FEEDS = REPO / "fixtures" / "feeds"
NVD = FEEDS / "nvd" / "nvdcve-2.0-fixture.json.gz"
KEV = FEEDS / "kev" / "known_exploited_vulnerabilities.json"

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def cpe(vendor: str, product: str, version: str) -> str:
    return f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*"


# Facts from the fixture feeds: glibc 2.36 is in CVE-2023-4911's NVD configurations (KEV-listed
# 2023-11-21); zlib up to 1.2.12 is in CVE-2022-37434 and up to 1.3 in CVE-2023-45853.
GLIBC_236 = Component("glibc", "2.36", purl="pkg:generic/glibc@2.36", cpe=cpe("gnu", "glibc", "2.36"))
GLIBC_239 = Component("glibc", "2.39", purl="pkg:generic/glibc@2.39", cpe=cpe("gnu", "glibc", "2.39"))
ZLIB_1211 = Component("zlib", "1.2.11", purl="pkg:generic/zlib@1.2.11", cpe=cpe("zlib", "zlib", "1.2.11"))
ZLIB_131 = Component("zlib", "1.3.1", purl="pkg:generic/zlib@1.3.1", cpe=cpe("zlib", "zlib", "1.3.1"))
DROPBEAR = Component("dropbear", "2022.83", purl="pkg:generic/dropbear@2022.83")


def finding(rule: str, path: str, severity: Severity = Severity.HIGH) -> Finding:
    return Finding(
        rule_id=rule,
        category="credentials",
        severity=severity,
        title=f"{rule} at {path}",
        cra_reference=("Annex I Part I (2)(d)",),
        location=Location(("L0:raw", "L1:squashfs"), path),
    )


def make_report(image: str, components: list[Component], findings: list[Finding] = ()) -> ScanReport:
    digest = hashlib.sha256(image.encode()).hexdigest()
    return ScanReport(
        image=ImageInfo(name=image, size=1000, sha256=digest, sha512="0" * 128, md5="0" * 32),
        tool=ToolInfo("cra-fw", "0.1.0"),
        started="2026-11-02T09:00:00Z",
        finished="2026-11-02T09:01:00Z",
        components=list(components),
        findings=list(findings),
    )


def import_feed(db, path: Path) -> None:
    from cra_fw.vulns.importers import import_path

    import_path(db, path)


@pytest.fixture
def ledger(tmp_path: Path):
    db = open_ledger(tmp_path / "ledger.db")
    yield db
    db.conn.close()
