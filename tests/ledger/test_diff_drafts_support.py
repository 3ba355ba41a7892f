"""Release diff, report drafts and support-period checks."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from cra_fw.errors import LedgerError
from cra_fw.ledger.diff import diff_releases
from cra_fw.ledger.drafts import build_draft, to_markdown, write_draft
from cra_fw.ledger.store import add_product, file_report, list_cases, record_release, set_support
from cra_fw.ledger.support import (
    ENDING,
    MISSING,
    ON_MARKET_AFTER_END,
    SHORT,
    UPDATE_DUE,
    end_instant,
    support_status,
)
from cra_fw.records import Component, Severity
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


def test_diff_components_vulnerabilities_findings(ledger):
    add_product(ledger, "router", now=T0)
    import_feed(ledger, NVD)
    old = record_release(
        ledger,
        "router",
        "1.0",
        make_report(
            "a.bin",
            [GLIBC_236, ZLIB_1211, DROPBEAR],
            [finding("cred.empty", "/etc/shadow"), finding("svc.telnet", "/etc/inetd.conf", Severity.MEDIUM)],
        ),
        now=T0,
    )
    curl = Component("curl", "8.5.0", purl="pkg:generic/curl@8.5.0")
    zlib_old = Component("zlib", "1.2.10", purl="pkg:generic/zlib@1.2.10")
    new = record_release(
        ledger,
        "router",
        "2.0",
        make_report(
            "b.bin",
            [GLIBC_239, ZLIB_131, curl],
            [
                finding("svc.telnet", "/etc/inetd.conf", Severity.MEDIUM),
                finding("key.private", "/etc/ssl/key.pem"),
            ],
        ),
        now=T0,
    )
    d = diff_releases(ledger, old, new)
    assert [c.key for c in d.components_added] == ["curl@8.5.0"]
    assert [c.key for c in d.components_removed] == ["dropbear@2022.83"]
    assert [(c.name, c.old_version, c.new_version, c.upgraded) for c in d.components_changed] == [
        ("glibc", "2.36", "2.39", True),
        ("zlib", "1.2.11", "1.3.1", True),
    ]
    assert [(v.advisory_id, v.component.key) for v in d.vulns_fixed] == [
        ("CVE-2022-37434", "zlib@1.2.11"),
        ("CVE-2023-45853", "zlib@1.2.11"),
        ("CVE-2023-48795", "dropbear@2022.83"),
        ("CVE-2023-4911", "glibc@2.36"),
    ]
    assert d.vulns_introduced == ()
    assert [f.rule_id for f in d.findings_fixed] == ["cred.empty"]
    assert [f.rule_id for f in d.findings_introduced] == ["key.private"]  # telnet is in both: not listed
    # the other way round: what was fixed is introduced; a downgrade is marked as such
    back = diff_releases(ledger, new, old)
    assert [v.advisory_id for v in back.vulns_introduced] == [v.advisory_id for v in d.vulns_fixed]
    assert [(c.name, c.upgraded) for c in back.components_changed] == [("glibc", False), ("zlib", False)]
    third = record_release(
        ledger, "router", "2.1", make_report("c.bin", [GLIBC_239, ZLIB_131, curl, zlib_old]), now=T0
    )
    d3 = diff_releases(ledger, new, third)
    assert [c.key for c in d3.components_added] == ["zlib@1.2.10"] and d3.components_changed == ()
    assert [v.advisory_id for v in d3.vulns_introduced] == ["CVE-2022-37434", "CVE-2023-45853"]
    assert diff_releases(ledger, third, third).empty


def _case(ledger):
    add_product(ledger, "router", manufacturer="Example GmbH", model="R-1", markets=["DE", "FR"], now=T0)
    set_support(ledger, "router", "2031-10", now=T0)
    import_feed(ledger, NVD)
    import_feed(ledger, KEV)
    record_release(ledger, "router", "1.0", make_report("r1.bin", [GLIBC_236]), now=T0)
    [case] = list_cases(ledger)
    return case


def test_early_warning_draft_is_prefilled(ledger, tmp_path: Path):
    case = _case(ledger)
    now = T0 + timedelta(hours=5)
    draft = build_draft(ledger, case.id, "early-warning", now)
    assert (draft.advisory_id, draft.manufacturer, draft.product, draft.markets) == (
        "CVE-2023-4911",
        "Example GmbH",
        "router",
        ("DE", "FR"),
    )
    assert draft.due_at == "2026-11-03T09:30:00Z" and draft.time_left == "19h 00m"
    assert draft.affected_components == ("glibc@2.36",)
    assert [r.version for r in draft.affected_releases] == ["1.0"]
    assert draft.support_end == "2031-10" and draft.fixing_release is None
    assert not any("Manufacturer name" in item for item in draft.to_complete)  # it is recorded
    md, js = write_draft(draft, tmp_path / "drafts")
    assert md.name == "case-1-early-warning.md" and js.name == "case-1-early-warning.json"
    text = md.read_text()
    assert "Early warning" in text and "CVE-2023-4911" in text and "yes (listed in CISA KEV)" in text
    assert json.loads(js.read_text())["due_at"] == "2026-11-03T09:30:00Z"


def test_final_draft_needs_a_fix_and_names_it(ledger):
    case = _case(ledger)
    with pytest.raises(LedgerError, match="no fix yet"):
        build_draft(ledger, case.id, "final", T0)
    with pytest.raises(LedgerError, match="unknown stage"):
        build_draft(ledger, case.id, "preliminary", T0)
    file_report(ledger, case.id, "early-warning", filed_at=T0 + timedelta(hours=2), reference="EW-7")
    record_release(ledger, "router", "1.1", make_report("r2.bin", [GLIBC_239]), now=T0 + timedelta(days=4))
    draft = build_draft(ledger, case.id, "final", T0 + timedelta(days=5))
    assert draft.fixing_release.version == "1.1"
    assert draft.due_at == "2026-11-20T09:30:00Z"
    assert draft.previous_filings == (
        {"stage": "early-warning", "filed_at": "2026-11-02T11:30:00Z", "reference": "EW-7"},
    )
    assert "Fixing release 1.1" in to_markdown(draft)


def test_support_under_five_years_flagged_unless_justified(ledger):
    now = T0
    for name in ("five", "short", "justified", "none"):
        add_product(ledger, name, now=now)
    set_support(ledger, "five", "2031-10", start_month="2026-11", now=now)  # exactly 60 months
    set_support(ledger, "short", "2031-09", start_month="2026-11", now=now)  # 59 months
    set_support(
        ledger,
        "justified",
        "2028-10",
        start_month="2026-11",
        justification="single-season event device, expected use 2 years",
        now=now,
    )
    periods, issues = support_status(ledger, now)
    assert {p.product.name: p.months for p in periods} == {
        "five": 60,
        "short": 59,
        "justified": 24,
        "none": 0,
    }
    assert [(i.kind, i.product) for i in issues] == [(SHORT, "short"), (MISSING, "none")]
    assert issues[0].reference == "Article 13(8)"


def test_support_ending_ended_and_updates_due(ledger):
    add_product(ledger, "old", now=T0)
    add_product(ledger, "soon", now=T0)
    record_release(
        ledger, "old", "1.0", make_report("o.bin", [ZLIB_131]), now=T0, released_at=T0 - timedelta(days=2000)
    )
    set_support(ledger, "old", "2026-10", justification="legacy", now=T0)
    set_support(ledger, "soon", "2026-12", start_month="2021-12", now=T0)
    _periods, issues = support_status(ledger, T0, within_days=90)
    assert [(i.kind, i.product) for i in issues] == [(ON_MARKET_AFTER_END, "old"), (ENDING, "soon")]
    assert "old@1.0 is still on the market" in issues[0].detail
    assert "in 59 days" in issues[1].detail  # 2026-11-02 09:30 to 2027-01-01 00:00
    assert end_instant("2026-12").isoformat() == "2027-01-01T00:00:00+00:00"
    # an actively exploited vulnerability without a fixing release: a security update is due
    import_feed(ledger, NVD)
    import_feed(ledger, KEV)
    record_release(ledger, "soon", "5.0", make_report("s.bin", [GLIBC_236]), now=T0)
    _periods, issues = support_status(ledger, T0, within_days=30)
    assert [(i.kind, i.product) for i in issues] == [(ON_MARKET_AFTER_END, "old"), (UPDATE_DUE, "soon")]


def test_support_set_rejects_bad_months(ledger):
    add_product(ledger, "p", now=T0)
    with pytest.raises(LedgerError, match="YYYY-MM"):
        set_support(ledger, "p", "2031-13", now=T0)
    with pytest.raises(LedgerError, match="before its start"):
        set_support(ledger, "p", "2025-01", start_month="2026-01", now=T0)
