"""Releases, monitor, cases and fixes on a real ledger with real feed imports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cra_fw.errors import LedgerError
from cra_fw.ledger.clocks import ClockState, Stage
from cra_fw.ledger.monitor import NEW, NOW_EXPLOITED, run_monitor
from cra_fw.ledger.store import (
    add_product,
    file_report,
    get_case,
    list_cases,
    list_releases,
    record_release,
    release_components,
    release_findings,
    release_scans,
    release_vulns,
    set_fix,
    withdraw_release,
)
from cra_fw.records import Severity
from tests.ledger.conftest import (
    DROPBEAR,
    GLIBC_236,
    GLIBC_239,
    KEV,
    NVD,
    T0,
    ZLIB_131,
    ZLIB_1211,
    finding,
    import_feed,
    make_report,
)


def _router(db):
    return add_product(db, "router", manufacturer="Example GmbH", model="R-1", markets=["de", "FR"], now=T0)


def test_release_records_sbom_findings_and_scan(ledger):
    _router(ledger)
    report = make_report("r1.bin", [GLIBC_236, ZLIB_1211, ZLIB_1211], [finding("cred.empty", "/etc/shadow")])
    rel = record_release(ledger, "router", "1.0", report, now=T0, report_path="/tmp/r/report.json")
    assert rel.label == "router@1.0" and rel.on_market_since == "2026-11-02T09:30:00Z"
    assert [c.key for c in release_components(ledger, rel.id)] == ["glibc@2.36", "zlib@1.2.11"]
    [f] = release_findings(ledger, rel.id)
    assert (f.rule_id, f.path, f.severity) == ("cred.empty", "/etc/shadow", "high")
    [scan] = release_scans(ledger, rel.id)
    assert scan.report_path == "/tmp/r/report.json"
    assert scan.summary["components"] == 3 and scan.summary["findings_high"] == 1
    assert release_vulns(ledger, rel.id) == []  # no feeds imported yet: nothing matched
    # a second release shares component rows with the first
    rel2 = record_release(ledger, "router", "1.1", make_report("r2.bin", [GLIBC_236]), now=T0)
    assert ledger.conn.execute("SELECT COUNT(*) FROM components").fetchone()[0] == 2
    assert [c.key for c in release_components(ledger, rel2.id)] == ["glibc@2.36"]


def test_release_errors_change_nothing(ledger):
    _router(ledger)
    record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236]), now=T0)
    before = ledger.conn.execute("SELECT COUNT(*) FROM releases").fetchone()[0]
    with pytest.raises(LedgerError, match="already recorded"):
        record_release(ledger, "router", "1.0", make_report("other.bin", [ZLIB_1211]), now=T0)
    with pytest.raises(LedgerError, match="no product named 'nas'"):
        record_release(ledger, "nas", "1.0", make_report("n.bin", [ZLIB_1211]), now=T0)
    assert ledger.conn.execute("SELECT COUNT(*) FROM releases").fetchone()[0] == before
    assert ledger.conn.execute("SELECT COUNT(*) FROM components").fetchone()[0] == 1


def test_monitor_opens_a_case_when_a_component_becomes_kev_listed(ledger):
    _router(ledger)
    add_product(ledger, "camera", now=T0)
    r1 = record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236, ZLIB_1211]), now=T0)
    record_release(ledger, "router", "1.1-beta", make_report("r1b.bin", [GLIBC_236]), now=T0, on_market=False)
    record_release(ledger, "camera", "3.0", make_report("c3.bin", [ZLIB_131, DROPBEAR]), now=T0)

    import_feed(ledger, NVD)
    t1 = T0 + timedelta(days=1)
    first = run_monitor(ledger, t1)
    assert first.components_matched == 4
    got = sorted((c.kind, c.advisory_id, c.component, c.releases) for c in first.changes)
    assert got == [
        (NEW, "CVE-2022-37434", "zlib@1.2.11", 1),
        (NEW, "CVE-2023-45853", "zlib@1.2.11", 1),
        (NEW, "CVE-2023-48795", "dropbear@2022.83", 1),
        (NEW, "CVE-2023-4911", "glibc@2.36", 2),
    ]
    assert first.cases_opened == () and list_cases(ledger) == []  # nothing actively exploited yet

    # nothing changed in the feeds: nothing to report
    assert run_monitor(ledger, t1 + timedelta(hours=1)).changes == ()

    import_feed(ledger, KEV)
    t2 = T0 + timedelta(days=2, hours=3)
    second = run_monitor(ledger, t2)
    assert [(c.kind, c.advisory_id, c.component, c.kev) for c in second.changes] == [
        (NOW_EXPLOITED, "CVE-2023-4911", "glibc@2.36", True)
    ]
    assert second.changes[0].release_labels == ("router@1.0", "router@1.1-beta")
    [case] = list_cases(ledger)
    assert second.cases_opened == (case.id,)
    assert (case.product, case.advisory_id, case.severity, case.components) == (
        "router",
        "CVE-2023-4911",
        "high",
        ("glibc@2.36",),
    )
    # only the release on the market is affected for Article 14 purposes; the beta was never placed on it
    assert case.release_ids == (r1.id,)
    assert case.aware_at == "2026-11-04T12:30:00Z"
    early, notif, final = case.clocks
    assert early.due.isoformat() == "2026-11-05T12:30:00+00:00"
    assert notif.due.isoformat() == "2026-11-07T12:30:00+00:00"
    assert final.due is None and case.stage == "early-warning"
    # a later monitor run keeps the same case and its awareness time
    assert run_monitor(ledger, t2 + timedelta(hours=5)).cases_opened == ()
    assert get_case(ledger, case.id).aware_at == "2026-11-04T12:30:00Z"


def test_fixing_release_starts_the_final_report_clock(ledger):
    _router(ledger)
    import_feed(ledger, NVD)
    import_feed(ledger, KEV)
    # the feeds are already there: recording the release opens the case at once
    r1 = record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236, ZLIB_1211]), now=T0)
    [case] = list_cases(ledger)
    assert case.aware_at == "2026-11-02T09:30:00Z" and case.release_ids == (r1.id,)
    file_report(ledger, case.id, Stage.EARLY_WARNING, filed_at=T0 + timedelta(hours=20))
    file_report(ledger, case.id, "notification", filed_at=T0 + timedelta(hours=70))
    assert get_case(ledger, case.id).stage == "awaiting-fix"
    with pytest.raises(LedgerError, match="no fix yet"):
        file_report(ledger, case.id, "final", filed_at=T0 + timedelta(days=4))

    # still vulnerable (same glibc), released later: not a fix, but now affected too
    r2 = record_release(
        ledger, "router", "1.1", make_report("r2.bin", [GLIBC_236, ZLIB_131]), now=T0 + timedelta(days=3)
    )
    case = get_case(ledger, case.id)
    assert case.fix_available_at == "" and case.release_ids == (r1.id, r2.id)

    fix_time = T0 + timedelta(days=5, hours=2)
    r3 = record_release(ledger, "router", "1.2", make_report("r3.bin", [GLIBC_239, ZLIB_131]), now=fix_time)
    case = get_case(ledger, case.id)
    assert case.fixing_release_id == r3.id
    assert case.fix_available_at == "2026-11-07T11:30:00Z"
    assert case.stage == "final"
    final = case.clocks[2]
    assert final.due.isoformat() == "2026-11-21T11:30:00+00:00"
    assert final.state(fix_time) == ClockState.RUNNING
    closed = file_report(ledger, case.id, "final", filed_at=fix_time + timedelta(days=1), reference="ENISA-1")
    assert closed.status == "closed" and closed.stage == "closed"
    with pytest.raises(LedgerError, match="already recorded as filed"):
        file_report(ledger, case.id, "final", filed_at=fix_time + timedelta(days=2))


def test_release_before_the_affected_one_is_not_a_fix(ledger):
    _router(ledger)
    import_feed(ledger, NVD)
    import_feed(ledger, KEV)
    # 0.9 (older, without glibc 2.36) exists before 1.0 is recorded: it cannot be the fix for 1.0
    record_release(
        ledger,
        "router",
        "0.9",
        make_report("r09.bin", [ZLIB_1211]),
        now=T0,
        released_at=T0 - timedelta(days=90),
    )
    record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236]), now=T0)
    [case] = list_cases(ledger)
    assert case.fix_available_at == "" and case.stage == "early-warning"


def test_withdrawn_releases_do_not_open_cases_and_manual_fix(ledger):
    _router(ledger)
    add_product(ledger, "nas", now=T0)
    record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236]), now=T0)
    nas = record_release(ledger, "nas", "2.0", make_report("n2.bin", [GLIBC_236]), now=T0)
    withdraw_release(ledger, nas, T0 + timedelta(hours=1))
    import_feed(ledger, NVD)
    import_feed(ledger, KEV)
    result = run_monitor(ledger, T0 + timedelta(days=1))
    assert [c.product for c in list_cases(ledger)] == ["router"]
    [case_id] = result.cases_opened
    mitigated = set_fix(ledger, case_id, T0 + timedelta(days=2))
    assert mitigated.fix_available_at == "2026-11-04T09:30:00Z" and mitigated.fixing_release_id is None
    assert mitigated.clocks[2].due.isoformat() == "2026-11-18T09:30:00+00:00"


def test_monitor_without_feeds_says_what_to_do(ledger):
    ledger.conn.execute("DROP TABLE advisories")
    with pytest.raises(LedgerError, match="cra-fw db import"):
        run_monitor(ledger, T0)


def test_list_releases(ledger):
    _router(ledger)
    record_release(ledger, "router", "2.0", make_report("b.bin", []), now=T0)
    record_release(
        ledger, "router", "1.0", make_report("a.bin", []), now=T0, released_at=T0 - timedelta(days=9)
    )
    assert [r.version for r in list_releases(ledger, "router")] == ["1.0", "2.0"]
    with pytest.raises(LedgerError, match="product add nas"):
        list_releases(ledger, "nas")


def test_release_with_nothing_identified_is_not_a_fix(ledger):
    _router(ledger)
    import_feed(ledger, NVD)
    import_feed(ledger, KEV)
    record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236]), now=T0)
    # e.g. an encrypted image: the scan found no components, which proves nothing
    record_release(ledger, "router", "1.1", make_report("enc.bin", []), now=T0 + timedelta(days=1))
    [case] = list_cases(ledger)
    assert case.fix_available_at == "" and case.fixing_release_id is None


def test_triaged_away_match_is_reported_gone_and_opens_no_case(ledger):
    from cra_fw.vulns.triage import TriageDecision, record

    _router(ledger)
    record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236, ZLIB_1211]), now=T0)
    import_feed(ledger, NVD)
    run_monitor(ledger, T0 + timedelta(hours=1))
    record(
        ledger,
        [TriageDecision("CVE-2023-4911", "glibc@2.36", "not_affected", justification="code_not_reachable")],
    )
    import_feed(ledger, KEV)
    result = run_monitor(ledger, T0 + timedelta(hours=2))
    assert [(c.kind, c.advisory_id, c.component) for c in result.changes] == [
        ("gone", "CVE-2023-4911", "glibc@2.36")
    ]
    assert result.cases_opened == () and list_cases(ledger) == []
    stored = ledger.conn.execute(
        "SELECT kind, advisory_id, releases FROM monitor_changes WHERE run_id = ?", (result.run_id,)
    ).fetchall()
    assert stored == [("gone", "CVE-2023-4911", 1)]


def test_without_feed_tables_the_scans_own_matches_are_kept(tmp_path):
    from cra_fw.db import open_db
    from cra_fw.ledger.schema import NAMESPACE
    from cra_fw.vulns.records import Triage, VulnMatch

    db = open_db(tmp_path / "ledger-only.db", [NAMESPACE])  # no feed tables in this file
    _router(db)

    def vm(advisory: str, kev: bool, triage: Triage | None = None) -> VulnMatch:
        return VulnMatch(
            "glibc@2.36",
            GLIBC_236.purl,
            "glibc",
            "2.36",
            advisory,
            (),
            "nvd",
            "s",
            Severity.HIGH,
            "",
            7.8,
            "",
            None,
            "",
            "cpe",
            "",
            kev=kev,
            kev_date_added="2023-11-21" if kev else "",
            triage=triage,
        )

    report = make_report("r1.bin", [GLIBC_236, ZLIB_131])
    report.vulnerabilities = [
        vm("CVE-2023-4911", True),
        vm("CVE-2099-0001", False, Triage("not_affected", "code_not_present")),
    ]
    rel = record_release(db, "router", "1.0", report, now=T0)
    assert [(v.advisory_id, v.kev, v.cvss_score) for v in release_vulns(db, rel.id)] == [
        ("CVE-2023-4911", True, 7.8)
    ]  # the triaged-away match is not kept
    [case] = list_cases(db)
    assert case.advisory_id == "CVE-2023-4911"
