"""The scan stage: findings per vulnerable component, feed age warnings, the CI gate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cra_fw.context import ScanContext, ScanOptions
from cra_fw.gate import GateError, parse_fail_on_vuln, vuln_trips
from cra_fw.records import Component, ImageInfo, Layer, LayerStatus, Severity
from cra_fw.vulns import match_components, run
from cra_fw.vulns.triage import TriageDecision, record

from .conftest import load_all

IMAGE = ImageInfo("fw.bin", 10, "0" * 64, "0" * 128, "0" * 32)
LAYERS = [
    Layer("L0", None, "raw", 0, 10, "0" * 64, LayerStatus.EXTRACTED, 0),
    Layer("L1", "L0", "squashfs", 0, 10, "0" * 64, LayerStatus.EXTRACTED, 1),
]
COMPONENTS = [
    Component("busybox", "1.35.0", files=("L1:/bin/busybox",)),
    Component("glibc", "2.36", files=("L1:/lib/libc.so.6",)),
    Component("dnsmasq", "2.90", files=("L1:/usr/sbin/dnsmasq",)),
    Component("dropbear", "2022.83", files=("L1:/usr/sbin/dropbear",)),
]


def ctx_for(db_path: Path, max_age: int = 100000) -> ScanContext:
    return ScanContext(IMAGE, LAYERS, [], ScanOptions(db_path=db_path, feed_max_age_days=max_age))


def test_one_finding_per_vulnerable_component(tmp_path: Path) -> None:
    load_all(tmp_path / "f.db").conn.close()
    result = run(COMPONENTS, ctx_for(tmp_path / "f.db"))
    assert {(m.component_key, m.advisory_id) for m in result.matches} == {
        ("busybox@1.35.0", "CVE-2022-28391"),
        ("busybox@1.35.0", "CVE-2022-30065"),
        ("busybox@1.35.0", "CVE-2022-48174"),
        ("glibc@2.36", "CVE-2023-4911"),
        ("dropbear@2022.83", "CVE-2023-48795"),
    }
    vuln = [
        f
        for f in result.findings
        if f.category == "vulnerability"
        and f.rule_id.startswith("vuln.")
        and f.rule_id not in ("vuln.feed-stale", "vuln.feed-missing")
    ]
    by_comp = {f.extra["component"]: f for f in vuln}
    assert set(by_comp) == {"busybox@1.35.0", "glibc@2.36", "dropbear@2022.83"}  # dnsmasq 2.90: none
    busybox = by_comp["busybox@1.35.0"]
    assert busybox.rule_id == "vuln.known-vulnerability"
    assert busybox.severity is Severity.CRITICAL  # CVE-2022-48174, CVSS 9.8
    assert busybox.cra_reference == ("Annex I Part I (2)(a)", "Annex I Part II 1", "Annex I Part II 2")
    assert busybox.location.path == "/bin/busybox" and busybox.location.layer_chain == (
        "L0:raw",
        "L1:squashfs",
    )
    glibc = by_comp["glibc@2.36"]
    assert glibc.rule_id == "vuln.actively-exploited" and glibc.severity is Severity.CRITICAL
    assert "Article 14(2)" in glibc.cra_reference
    assert "actively exploited: CRA Article 14 reporting applies" in glibc.evidence
    assert by_comp["dropbear@2022.83"].severity is Severity.MEDIUM
    assert len({f.id for f in vuln}) == 3


def test_stale_feeds_warn(tmp_path: Path) -> None:
    load_all(tmp_path / "f.db").conn.close()
    now = datetime(2026, 7, 27, tzinfo=UTC)
    result = run(COMPONENTS[:1], ctx_for(tmp_path / "f.db", max_age=30), now=now)
    stale = {f.extra["feed"] for f in result.findings if f.rule_id == "vuln.feed-stale"}
    # newest data: nvd 2026-06-17 (40 days); osv 2024-09-18, kev and epss 2024-12-01 (about 600 days);
    # cve5 (the kernel CNA's records) 2024-05-29
    assert stale == {"nvd", "osv", "kev", "epss", "cve5"}
    fresh = run(COMPONENTS[:1], ctx_for(tmp_path / "f.db", max_age=45), now=now)
    assert {f.extra["feed"] for f in fresh.findings if f.rule_id == "vuln.feed-stale"} == {
        "osv",
        "kev",
        "epss",
        "cve5",
    }


def test_missing_database_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    result = run(COMPONENTS, ctx_for(tmp_path / "absent.db"))
    assert result.matches == ()
    assert [f.rule_id for f in result.findings] == ["vuln.no-database"]
    assert not (tmp_path / "absent.db").exists()


def test_corrupt_database_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(b"this is not sqlite" * 100)
    result = run(COMPONENTS, ctx_for(tmp_path / "bad.db"))
    assert [f.rule_id for f in result.findings] == ["vuln.database-error"]


def test_missing_feed_is_reported(tmp_path: Path) -> None:
    from cra_fw.feeddb import open_feed_db
    from cra_fw.vulns.importers import import_path

    from .conftest import FEEDS

    db = open_feed_db(tmp_path / "n.db")
    import_path(db, FEEDS / "nvd/nvdcve-2.0-fixture.json.gz")
    db.conn.close()
    result = run(COMPONENTS[:1], ctx_for(tmp_path / "n.db"))
    assert [f.fingerprint for f in result.findings if f.rule_id == "vuln.feed-missing"] == ["feed:kev"]


def test_fail_on_vuln_levels(feed_db) -> None:
    """The one gate (cra_fw.gate) on real matches: KEV trips every level, ``kev`` only KEV."""

    def trips(component: Component, level: str) -> bool:
        gates = parse_fail_on_vuln(level)
        return any(vuln_trips(m, gates) for m in match_components([component], feed_db))

    levels = ("critical", "high", "medium", "kev")
    assert [trips(Component("busybox", "1.35.0"), lvl) for lvl in levels] == [True, True, True, False]
    assert [trips(Component("openssl", "1.0.2k"), lvl) for lvl in levels] == [False, True, True, False]
    assert [trips(Component("glibc", "2.36"), lvl) for lvl in levels] == [True, True, True, True]
    assert [trips(Component("uclibc", "0.9.33.2"), lvl) for lvl in levels] == [True, True, True, False]
    assert [trips(Component("dropbear", "2022.83"), lvl) for lvl in levels] == [False, False, True, False]
    with pytest.raises(GateError):
        parse_fail_on_vuln("info")


def test_vuln_gate_ignores_triaged_away(feed_db) -> None:
    record(feed_db, [TriageDecision("CVE-2023-4911", "glibc@2.36", "not_affected", "requires_configuration")])
    glibc = match_components([Component("glibc", "2.36")], feed_db)
    assert glibc[0].triage is not None
    assert not any(vuln_trips(m, ("kev",)) for m in glibc)


def test_match_components_on_a_db_without_feed_tables(tmp_path: Path) -> None:
    import sqlite3

    import sqlite_utils

    db = sqlite_utils.Database(sqlite3.connect(str(tmp_path / "other.db"), isolation_level=None))
    db["other"].create({"x": int})
    assert match_components([Component("glibc", "2.36")], db) == []
    assert {"advisories", "cpe_match", "triage"} <= set(db.table_names())
